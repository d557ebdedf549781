"""glore-train when: the curve of a stored evaluation run as a table and a CSV, and its errors."""

from __future__ import annotations

import csv

from glore_engine.pipeline import Candidate, GloreResult, to_case

# (draft score, correct), (global score, correct), (local score, correct)
CASES = [
    ((0.9, True), (0.95, False), (0.2, False)),  # refined only above 0.9, then broken
    ((0.3, False), (0.8, True), (0.1, False)),  # refined above 0.3, then fixed
    ((0.6, True), (0.4, False), (0.6, False)),  # a tie keeps the draft
    ((0.1, False), (0.05, True), (0.0, False)),  # the ORM keeps its wrong draft
]


def case(i, trio):
    draft, glob, loc = (
        Candidate(kind, "a\n#### 1", ["a", "#### 1"], "1", orm_steps=[0.5, s], correct=ok)
        for kind, (s, ok) in zip(("draft", "global", "local"), trio)
    )
    choice = max([draft, glob, loc], key=lambda c: c.orm_score).kind
    return to_case(GloreResult("Q", "1", 0.5, draft, -1, -1, False, glob, loc, choice), i).to_json()


def eval_run(cli) -> int:
    with cli.store() as store, store.run("eval", name="synthetic") as run:
        store.add_cases(run.id, [case(i, t) for i, t in enumerate(CASES)])
    return run.id


def test_when_prints_the_table_of_the_newest_eval_run(cli):
    eval_run(cli)
    newest = eval_run(cli)
    result = cli("when", "--thresholds", "0.2,0.5,0.95")
    assert result.stdout.startswith(f"run {newest}\n")  # (stderr first says which store is open)
    assert "When to refine: 4 problems, 2 correct drafts, 2 wrong" in result.output
    assert "| ORM < 0.2 | 50.0 | 25.0 | 0 (0.0 %) | 0 (0.0 %) |" in result.output
    assert "| ORM < 0.5 | 75.0 | 50.0 | 0 (0.0 %) | 1 (50.0 %) |" in result.output
    assert "| ORM < 0.95 | 50.0 | 100.0 | 1 (50.0 %) | 1 (50.0 %) |" in result.output
    assert "| always | 50.0 | 100.0 | 1 (50.0 %) | 1 (50.0 %) |" in result.output


def test_when_writes_csv_for_a_given_run(cli, tmp_path):
    run_id = eval_run(cli)
    out = tmp_path / "when.csv"
    result = cli("when", "--run", run_id, "--csv", out)
    assert f"curve written to {out}" in result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 10 and rows[-1]["threshold"] == ""  # nine default thresholds, then "always"
    by_t = {r["threshold"]: r for r in rows}
    assert by_t["0.5"]["correct"] == "3" and by_t["0.5"]["refined"] == "2" and by_t[""]["broken"] == "1"


def test_when_errors_are_one_line(cli):
    result = cli("when", code=1)
    assert "no finished eval run in the store" in result.output
    assert "no run with id 99" in cli("when", "--run", 99, code=1).output
    with cli.store() as store, store.run("sft") as run:
        pass
    assert f"run {run.id} has no evaluation cases" in cli("when", "--run", run.id, code=1).output
    run_id = eval_run(cli)
    result = cli("when", "--run", run_id, "--thresholds", "0.5,2", code=1)
    assert "thresholds must be between 0 and 1" in result.output and "Traceback" not in result.output
