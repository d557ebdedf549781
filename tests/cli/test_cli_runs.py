"""`glore-train runs`: which store is open, and runs whose process died read INTERRUPTED."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import insert

from glore_db.lifecycle import HEARTBEAT_TIMEOUT_S
from glore_db.models import Run, utcnow


def test_every_command_says_which_store_is_open(cli):
    result = cli("runs", "list")
    assert f"store: {cli.url}" in result.stderr and "store:" not in result.stdout


def test_a_run_with_a_stale_heartbeat_lists_as_interrupted(cli):
    """A row left RUNNING by a process on another host (or whose pid was reused) whose heartbeat stopped."""
    with cli.store() as store, store.engine.begin() as conn:
        beat = utcnow() - timedelta(seconds=HEARTBEAT_TIMEOUT_S + 60)
        row = dict(kind="sft", status="RUNNING", config={}, summary={}, pid=os.getpid(), host="other-host")
        run_id = conn.execute(insert(Run).values(heartbeat_at=beat, **row).returning(Run.id)).scalar_one()
    out = cli("runs", "list", "--status", "INTERRUPTED").stdout
    assert f"│ {run_id} " in out and "INTERRUPTED" in out
    assert "sft" not in cli("runs", "list", "--status", "RUNNING").stdout
    shown = cli("runs", "show", run_id).stdout
    assert "INTERRUPTED" in shown and "no heartbeat since" in shown
