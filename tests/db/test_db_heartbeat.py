"""Heartbeats: a run whose process stopped beating reads INTERRUPTED, whichever host or pid it names."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from glore_db import Store
from glore_db.lifecycle import HEARTBEAT_INTERVAL_S, HEARTBEAT_TIMEOUT_S, Heartbeat
from glore_db.models import Run, utcnow

REPO = Path(__file__).resolve().parents[2]


def foreign_run(store: Store, beat_age_s: float | None, **values) -> int:
    """A RUNNING row written as another process would: this pid (so "alive": a reused pid), another
    host (a shared database), its last heartbeat beat_age_s ago."""
    beat = None if beat_age_s is None else utcnow() - timedelta(seconds=beat_age_s)
    row = dict(kind="sft", status="RUNNING", config={}, summary={}, pid=os.getpid(), host="other-host")
    row.update(created_at=utcnow() - timedelta(hours=1), heartbeat_at=beat, **values)
    with store.engine.begin() as conn:
        return conn.execute(insert(Run).values(**row).returning(Run.id)).scalar_one()


def stored_status(store: Store, run_id: int) -> str:
    with store.engine.connect() as conn:
        return conn.execute(select(Run.status).where(Run.id == run_id)).scalar_one()


def test_the_timeout_leaves_room_for_several_missed_beats():
    assert HEARTBEAT_TIMEOUT_S >= 5 * HEARTBEAT_INTERVAL_S


def test_a_stale_heartbeat_reads_interrupted_in_every_query(db_url, tmp_path):
    store = Store(db_url)
    stale = foreign_run(store, HEARTBEAT_TIMEOUT_S + 60)
    fresh = foreign_run(store, 1.0)
    child = foreign_run(store, HEARTBEAT_TIMEOUT_S + 60, parent_id=fresh)
    (tmp_path / "labels.jsonl").write_text("{}\n")
    store.log_artifact(stale, "labels", tmp_path / "labels.jsonl")

    info = store.get_run(stale)
    assert info.status == "INTERRUPTED" and "no heartbeat since" in info.error
    assert info.finished_at == info.heartbeat_at and info.duration_s is not None
    assert store.get_run(fresh).status == "RUNNING"
    assert {r.id: r.status for r in store.list_runs()} == {stale: "INTERRUPTED", fresh: "RUNNING", child: "INTERRUPTED"}
    assert [r.id for r in store.list_runs(status="RUNNING")] == [fresh]
    assert [r.id for r in store.list_runs(status="INTERRUPTED")] == [child, stale]
    assert [c.status for c in store.children(fresh)] == ["INTERRUPTED"]
    assert store.find_artifact("labels", status="RUNNING") is None
    assert store.find_artifact("labels", status="INTERRUPTED").run_id == stale

    assert stored_status(store, stale) == "RUNNING"  # reads did not write...
    reopened = Store(db_url)  # ...opening the store writes it down for any reader
    assert stored_status(reopened, stale) == "INTERRUPTED" and stored_status(reopened, fresh) == "RUNNING"
    assert reopened.get_run(stale).error == info.error and reopened.reconcile() == []


def test_rows_from_before_heartbeats_keep_the_pid_rule(db_url):
    store = Store(db_url)
    legacy = foreign_run(store, None)
    assert store.get_run(legacy).status == "RUNNING" and Store(db_url).get_run(legacy).status == "RUNNING"


def test_a_live_process_keeps_its_run_running_and_a_killed_one_reads_interrupted(db_url):
    """A child process opens a run and beats every 0.2 s; its row is made to name another host, so
    only the heartbeat can tell. Alive past the 2 s timeout: RUNNING. Killed (-9): INTERRUPTED."""
    code = (
        "import sys, time\n"
        "from glore_db import Store\n"
        "store = Store(sys.argv[1], heartbeat_interval_s=0.2)\n"
        "with store.run('train') as run:\n"
        "    print(run.id, flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, db_url], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        run_id = int(proc.stdout.readline())
        reader = Store(db_url, heartbeat_timeout_s=2.0, reconcile=False)
        with reader.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET host = 'other-host' WHERE id = ?", (run_id,))
        deadline = time.monotonic() + 60
        while True:  # until the child has outlived the timeout, beating
            info = reader.get_run(run_id)
            assert info.status == "RUNNING", info.error
            if (info.heartbeat_at - info.created_at).total_seconds() > 3.0:
                break
            assert time.monotonic() < deadline, "the child's heartbeat never advanced"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 60
        while reader.get_run(run_id).status == "RUNNING":
            assert time.monotonic() < deadline, "a killed run still reads RUNNING"
            time.sleep(0.2)
        info = reader.get_run(run_id)
        assert info.status == "INTERRUPTED" and "no heartbeat since" in info.error
        assert [r.id for r in reader.list_runs(status="INTERRUPTED")] == [run_id]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_run_beats_while_open_and_stops_when_closed(db_url):
    store = Store(db_url, heartbeat_interval_s=0.05)
    with store.run("sft") as run:
        first = store.get_run(run.id).heartbeat_at
        deadline = time.monotonic() + 30
        while store.get_run(run.id).heartbeat_at == first:
            assert time.monotonic() < deadline, "no heartbeat while the run was open"
            time.sleep(0.05)
    last = store.get_run(run.id).heartbeat_at
    time.sleep(0.3)
    assert store.get_run(run.id).heartbeat_at == last and store.get_run(run.id).status == "FINISHED"


def test_the_heartbeat_thread_runs_only_while_runs_are_open():
    beats: list[list[int]] = []
    heartbeat = Heartbeat(beats.append, interval_s=0.02)
    heartbeat.add(7)
    heartbeat.add(8)
    deadline = time.monotonic() + 30
    while not beats:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert beats[0] == [7, 8]
    heartbeat.remove(7)
    heartbeat.remove(8)
    deadline = time.monotonic() + 30
    while any(t.name == "glore-heartbeat" and t is heartbeat._thread for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the heartbeat thread outlived its runs"
        time.sleep(0.02)


def test_a_failing_beat_is_retried_not_fatal():
    calls: list[int] = []

    def beat(run_ids):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database is locked")

    heartbeat = Heartbeat(beat, interval_s=0.02)
    heartbeat.add(1)
    deadline = time.monotonic() + 30
    while len(calls) < 3:
        assert time.monotonic() < deadline, "the heartbeat stopped after a failed beat"
        time.sleep(0.02)
    heartbeat.remove(1)


def test_an_in_memory_store_never_goes_stale():
    with Store("sqlite://", heartbeat_timeout_s=0.0) as mem:
        run_id = mem.start_run("sft")
        time.sleep(0.01)
        assert mem.get_run(run_id).status == "RUNNING"


def test_a_store_from_before_heartbeats_gets_the_column(tmp_path):
    path = tmp_path / "old.db"
    Store(f"sqlite:///{path}").start_run("sft")
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN heartbeat_at")
    store = Store(f"sqlite:///{path}")
    (run,) = store.list_runs()
    assert run.heartbeat_at is None and run.status == "RUNNING"  # this process is alive: the pid rule keeps it
    assert store.get_run(store.start_run("orm")).heartbeat_at is not None
