"""Imported drafts: rows read from JSONL and CSV, bad rows by line, grading, scoring, one transaction."""

from __future__ import annotations

import json

import pytest

from glore_db import Store
from glore_engine.drafts import draft_case, import_drafts, load_scorers, read_drafts
from glore_engine.errors import DataError
from glore_engine.tracking import NullTracker

GOOD = {
    "id": "q1",
    "question": "Ann has 3 apples and buys 4 more. How many apples does she have?",
    "draft": "She has 3 + 4 = 7 apples.\n#### 7",
    "gold": "7",
    "model": "other-llm",
}


def write_lines(path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_good_and_bad_rows_by_line(tmp_path):
    wrong = {**GOOD, "id": "q2", "draft": "She has 3 + 4 = 8 apples.\n#### 8"}
    path = write_lines(
        tmp_path / "d.jsonl",
        [
            json.dumps(GOOD),
            json.dumps({"draft": "x = 1\n#### 1"}),  # 2: no question
            json.dumps({"question": "What is 1 + 1?"}),  # 3: no draft
            "",  # blank lines are skipped, not bad
            json.dumps({"question": "What is 1 + 1?", "draft": " \n  \n"}),  # 5: empty draft
            json.dumps({"question": "What is 1 + 1?", "draft": "2 = 1 + 1\n" * 100_000}),  # 6: 1 MB draft
            "{not json",  # 7
            json.dumps({"question": "What is 1 + 1?", "draft": "1 + 1 = 2", "gold": "two"}),  # 8: gold not a number
            json.dumps(["a", "list"]),  # 9
            json.dumps(wrong),  # 10
        ],
    )
    good, bad = read_drafts(path)
    assert [(r.line, r.id) for r in good] == [(1, "q1"), (10, "q2")]
    assert [b.line for b in bad] == [2, 3, 5, 6, 7, 8, 9]
    reasons = {b.line: b.reason for b in bad}
    assert "missing 'question'" in reasons[2] and "missing 'draft'" in reasons[3]
    assert "empty" in reasons[5] and "limit" in reasons[6] and "JSON" in reasons[7]
    tracker = NullTracker()
    report = import_drafts(path, tracker)
    assert (report.rows, report.imported, len(report.bad), report.graded, report.correct) == (9, 2, 7, 2, 1)
    assert "line 6:" in "\n".join(report.lines())
    first, second = tracker.cases
    assert first["draft_correct"] is True and second["draft_correct"] is False
    assert first["data"]["steps"] == ["She has 3 + 4 = 7 apples.\n#### 7"]
    assert first["data"]["model"] == "other-llm" and first["problem_id"] == "q1"


def test_gsm8k_rows_and_csv(tmp_path):
    gsm = {"question": "Tom has 2 cats and 3 dogs. How many pets?", "answer": "2+3=<<2+3=5>>5 pets\n#### 5"}
    good, bad = read_drafts(write_lines(tmp_path / "g.jsonl", [json.dumps(gsm)]))
    assert not bad and good[0].gold == "5" and good[0].draft == gsm["answer"]
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(
        'question,draft,gold,model\n"Ann has 3, then 4 more. Total?","3 + 4 = 7\n#### 7",7,m\n,"x\n#### 1",1,m\n',
        encoding="utf-8",
    )
    good, bad = read_drafts(csv_path)
    assert [(r.line, r.gold, r.model) for r in good] == [(2, "7", "m")]
    assert [(b.line, b.reason) for b in bad] == [(4, "empty 'question'")]
    with pytest.raises(DataError, match="jsonl or .csv"):
        read_drafts(write_lines(tmp_path / "d.txt", ["x"]))


def test_no_gold_is_ungraded_and_no_good_row_is_an_error(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps({"question": "What is 2 + 2?", "draft": "2 + 2 = 4"})])
    tracker = NullTracker()
    report = import_drafts(path, tracker)
    assert report.graded == 0 and tracker.cases[0]["draft_correct"] is None
    assert "first_error" not in tracker.cases[0]["data"]  # unscored: annotation only
    with pytest.raises(DataError, match="no good rows"):
        import_drafts(write_lines(tmp_path / "bad.jsonl", ["{}"]), NullTracker())


def test_scored_import_stores_scores_and_first_error(tmp_path, tiny_family):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD)] * 3)
    scorers = load_scorers(str(tiny_family))
    tracker = NullTracker()
    seen = []
    report = import_drafts(path, tracker, scorers, threshold=0.5, progress=lambda d, t: seen.append((d, t)))
    assert report.scored == 3 and seen[-1] == (3, 3)
    case = tracker.cases[0]
    sorm = case["data"]["draft"]["sorm_steps"]
    assert len(sorm) == 1 and case["data"]["first_error"] == (0 if sorm[0] < 0.5 else -1)
    assert sorm == pytest.approx(scorers[1].score([(GOOD["question"], [GOOD["draft"]])])[0], abs=1e-5)


def test_one_transaction_nothing_half_written(tmp_path, monkeypatch):
    """Ctrl-C while the cases are being written leaves none of them stored."""
    import glore_db.store as store_module

    path = write_lines(tmp_path / "d.jsonl", [json.dumps({**GOOD, "id": f"q{i}"}) for i in range(50)])
    url = f"sqlite:///{tmp_path / 'glore.db'}"
    real = store_module.EvalCase
    made = []

    def interrupted(**values):
        made.append(1)
        if len(made) == 30:
            raise KeyboardInterrupt
        return real(**values)

    monkeypatch.setattr(store_module, "EvalCase", interrupted)
    with Store(url) as store, pytest.raises(KeyboardInterrupt), store.run("import") as run:
        import_drafts(path, run)
    monkeypatch.setattr(store_module, "EvalCase", real)
    with Store(url) as store:
        assert store.get_run(run.id).status == "INTERRUPTED"
        assert store.count_cases(run.id) == 0


def test_stored_case_opens_in_the_store(tmp_path):
    from glore_engine.drafts import DraftRow

    case = draft_case(DraftRow(1, "What is 2 + 2?", "2 + 2 = 4\n#### 4", gold="4"), 0)
    with Store(f"sqlite:///{tmp_path / 'g.db'}") as store:
        run_id = store.start_run("import")
        store.add_cases(run_id, [case])
        row = store.cases(run_id)[0]
    assert row.steps == ["2 + 2 = 4\n#### 4"] and row.final_correct is True
