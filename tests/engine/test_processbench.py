"""ProcessBench against first-error labels: the metrics, the one agreement rule, files and annotations."""

from __future__ import annotations

import json

import pytest

from glore_engine.errors import DataError
from glore_engine.evaluation.processbench import (
    LabelledDraft,
    case_scores,
    disagreeing_cases,
    evaluate_first_errors,
    first_errors_agree,
    from_annotations,
    processbench_eval,
    read_processbench,
)


class FixedScorer:
    """Scores from a table keyed by the problem text (a reward model stand-in)."""

    def __init__(self, table):
        self.table = table

    def score(self, items):
        return [self.table[q] for q, _steps in items]


def drafts():
    return [
        LabelledDraft("a", "qa", ["s1", "s2", "s3"], 1),  # error at step 2
        LabelledDraft("b", "qb", ["s1", "s2"], 0),
        LabelledDraft("c", "qc", ["s1", "s2"], -1),  # correct
        LabelledDraft("d", "qd", ["s1"], -1),
    ]


def test_metrics_by_hand():
    scores = [[0.9, 0.2, 0.1], [0.8, 0.3], [0.9, 0.9], [0.1]]  # first errors 1, 1, -1, 0
    result = evaluate_first_errors("m", drafts(), scores, [0.5] * 4)
    # erroneous: a right (1 == 1), b wrong (1 != 0) -> 1/2; correct: c right, d flagged -> 1/2
    assert (result.n, result.n_wrong) == (4, 2)
    assert result.error_acc == pytest.approx(0.5) and result.correct_acc == pytest.approx(0.5)
    assert result.f1 == pytest.approx(0.5) and result.agreement == pytest.approx(0.5)
    assert first_errors_agree([0.9, 0.2, 0.1], 0.5, 1) and not first_errors_agree([0.9, 0.2], 0.1, 1)


def test_undefined_sides_are_none_not_zero():
    only_correct = [LabelledDraft("c", "qc", ["s"], -1)]
    result = evaluate_first_errors("m", only_correct, [[0.9]], [0.5])
    assert result.error_acc is None and result.f1 is None and result.correct_acc == 1.0
    assert result.row()[3] == "-" and result.row()[5] == "-"


def test_table_with_stored_scores_row():
    items = [LabelledDraft(d.id, d.problem, d.steps, d.label, stored_sorm=[0.9] * len(d.steps)) for d in drafts()]
    scorer = FixedScorer({"qa": [0.9, 0.2, 0.1], "qb": [0.1, 0.1], "qc": [0.9, 0.9], "qd": [0.9]})
    rows, table = processbench_eval({"SORM": scorer}, items)
    assert [r.name for r in rows] == ["SORM", "stored SORM scores"]
    assert rows[0].error_acc == 1.0 and rows[0].correct_acc == 1.0 and rows[0].agreement == 1.0
    assert rows[1].error_acc == 0.0 and rows[1].correct_acc == 1.0
    assert "| SORM | 4 | 2 | 100.0 | 100.0 | 100.0 | 100.0 |" in table
    with pytest.raises(DataError, match="no labelled drafts"):
        processbench_eval({"SORM": scorer}, [])


def test_read_processbench_file(tmp_path):
    path = tmp_path / "pb.jsonl"
    path.write_text(
        json.dumps({"id": "x", "problem": "p", "steps": ["a", "b"], "label": 1, "final_answer_correct": False})
        + "\n\n"
        + json.dumps({"problem": "p", "steps": ["a"], "label": 3})
        + "\n"
    )
    with pytest.raises(DataError, match=r"pb.jsonl:3: 'label' must be -1 or a step index below 1"):
        read_processbench(path)
    path.write_text(json.dumps({"id": "x", "problem": "p", "steps": ["a", "b"], "label": 1}) + "\n")
    assert read_processbench(path) == [LabelledDraft("x", "p", ["a", "b"], 1, None)]


def record(case_id, steps, first, ratings=None, verdict="found_error", sorm=None):
    row = {
        "case_id": case_id,
        "problem_id": None,
        "question": f"q{case_id}",
        "steps": steps,
        "draft_correct": None,
        "first_error_index": first,
        "step_ratings": ratings or [],
        "verdict": verdict,
    }
    if sorm is not None:
        row.update(case_scores({"draft": {"sorm_steps": sorm}, "steps": steps, "threshold": 0.5}))
    return row


def test_annotations_follow_the_export_rules_and_the_filter_uses_the_same_rule():
    rows = [
        record(1, ["a", "b"], 1, sorm=[0.9, 0.1]),  # agrees
        record(2, ["a", "b"], 0, sorm=[0.9, 0.1]),  # SORM says 1, human 0
        record(3, ["a", "b"], None, ratings=[{"rating": 1}, {"rating": -1}], sorm=[0.9, 0.9]),  # from ratings: 1
        record(4, ["a"], 0, verdict="bad_problem", sorm=[0.9]),  # no label
        record(5, ["a", "b"], -1),  # labelled, no stored scores
    ]
    labelled = from_annotations(rows)
    assert [(d.id, d.label) for d in labelled] == [("case-1", 1), ("case-2", 0), ("case-3", 1), ("case-5", -1)]
    assert disagreeing_cases(rows) == [2, 3]
    assert case_scores({"draft": {"sorm_steps": [0.1]}, "steps": ["a", "b"]}) == {}  # misaligned: none
