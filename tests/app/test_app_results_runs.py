"""Results and Runs without a server: one id column, reopened cases, fresh stores, heartbeat status,
and step tables whose headers stay on one line."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert

from glore_app import results_tab, review, runs_tab
from glore_app.render import step_rows, steps_table
from glore_app.ui import pick_run_text, run_choices
from glore_db import Store
from glore_db.lifecycle import HEARTBEAT_TIMEOUT_S
from glore_db.models import Run, utcnow

LONG_STEP = "She buys " + "a very long list of groceries and sundries " * 12 + "= <<3*4=12>>12"


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'glore.db'}") as s:
        yield s


def add_case(store, run_id: int, **values):
    case = {"index": 0, "question": "Q?", "gold": "12", "draft": "a = 1\n#### 12", "data": {}, **values}
    store.add_cases(run_id, [case])
    return store.cases(run_id)[-1]


def test_results_table_has_one_id_column(store):
    with store.run("eval") as run:
        case = add_case(store, run.id, index=7)
    (row,) = results_tab.case_table(store.cases(run.id))
    assert len(row) == len(results_tab.COLUMNS) and results_tab.COLUMNS.count("case") == 1
    assert "#" not in results_tab.COLUMNS and row[0] == case.id and 7 not in row


def test_a_fresh_store_says_how_to_make_a_run(store):
    text = pick_run_text(store)
    assert "glore-train eval --limit 100" in text and "glore-train import FILE" in text
    assert "glore.db" in text  # which store it looked in
    with store.run("sft"):
        pass
    assert "glore-train eval" in pick_run_text(store)  # a run without cases is not an evaluation run
    with store.run("eval") as run:
        add_case(store, run.id)
    assert pick_run_text(store) == "Pick an evaluation run."


def test_a_case_opens_in_inspect_with_its_problem_draft_and_gold(store):
    with store.run("eval") as run:
        case = add_case(store, run.id, question="How many?", gold="12", draft="3*4=<<3*4=12>>12\n#### 12")

    assert results_tab.inspect_boxes(case) == ("How many?", "3*4=<<3*4=12>>12\n#### 12", "12")


def stale_run(store, age_s: float) -> int:
    beat = utcnow() - timedelta(seconds=age_s)
    row = dict(kind="sft", status="RUNNING", config={}, summary={}, pid=os.getpid(), host="other-host")
    with store.engine.begin() as conn:
        return conn.execute(insert(Run).values(heartbeat_at=beat, **row).returning(Run.id)).scalar_one()


def test_the_runs_tab_shows_a_run_that_stopped_beating_as_interrupted(store):
    dead, alive = stale_run(store, HEARTBEAT_TIMEOUT_S + 60), stale_run(store, 5)
    rows = {row[0]: row for row in runs_tab.run_rows(store.list_runs())}
    status, duration = runs_tab.RUN_COLUMNS.index("status"), runs_tab.RUN_COLUMNS.index("duration")
    assert rows[dead][status] == "INTERRUPTED" and "no heartbeat since" in rows[dead][-1]
    assert rows[alive][status] == "RUNNING" and re.fullmatch(r"running, heartbeat \d+ s ago", rows[alive][duration])
    labels = {run_id: label for label, run_id in run_choices(store, with_cases=False)}
    assert "INTERRUPTED" in labels[dead] and "RUNNING" in labels[alive]
    assert "INTERRUPTED" in runs_tab.run_header(store.get_run(dead))


def test_step_table_headers_stay_on_one_line_and_the_step_takes_the_width():
    rows = step_rows([LONG_STEP, "#### 12"], [0.9, 0.2], [0.8, 0.3], 0.5)
    for table in (
        steps_table(rows),
        review.annotation_table(_case([LONG_STEP, "#### 12"]), {"step_ratings": []}, 0, show_scores=True),
    ):
        headers = re.findall(r"<th([^>]*)>([^<]*)</th>", table)
        assert {"SORM", "ORM"} <= {name for _, name in headers}
        for style, name in headers:
            assert ("overflow-wrap:anywhere" if name == "step" else "white-space:nowrap") in style, name
        first_row = table.split("</tr>")[1]
        assert first_row.count("white-space:nowrap") == len(headers) - 1  # every cell but the step text


def _case(steps):
    from types import SimpleNamespace

    return SimpleNamespace(steps=steps, data={"draft": {"sorm_steps": [0.9, 0.2], "orm_steps": [0.8, 0.3]}})
