"""The "when" curve from hand-made cases: every number below is checked by hand in the comments."""

from __future__ import annotations

import csv

import pytest

from glore_engine.errors import DataError
from glore_engine.evaluation.pipeline_eval import t3_rows
from glore_engine.evaluation.when import (
    WhenCase,
    parse_thresholds,
    run_curve,
    when_case,
    when_cases,
    when_curve,
    when_point,
    when_table,
    write_csv,
)
from glore_engine.pipeline import Candidate, GloreResult, to_case

# (draft score, draft correct, (global score, correct), (local score, correct))
CASES = [
    WhenCase(0.9, True, ((0.95, False), (0.2, False))),  # A: refined only above 0.9, then broken
    WhenCase(0.3, False, ((0.8, True), (0.1, False))),  # B: refined above 0.3, then fixed
    WhenCase(0.6, True, ((0.4, False), (0.6, False))),  # C: a tie with the local keeps the draft
    WhenCase(0.1, False, ((0.05, True), (0.0, False))),  # D: the ORM prefers its wrong draft
]


def counts(p):
    return p.refined, p.correct, p.broken, p.fixed


def test_points_counted_by_hand():
    # t = 0.2: only D (0.1) is refined and keeps its draft -> A, C right: 2 of 4, nothing broken or fixed
    assert counts(when_point(CASES, 0.2)) == (1, 2, 0, 0)
    # t = 0.5: B and D refined; B fixed -> A, B, C right: 3 of 4
    assert counts(when_point(CASES, 0.5)) == (2, 3, 0, 1)
    # t = 0.95: all four refined; A broken, B fixed, C kept by the tie -> B, C right: 2 of 4
    assert counts(when_point(CASES, 0.95)) == (4, 2, 1, 1)
    # t = 0.9: "below" is strict, so A (0.9) is not refined -> as at 0.5 plus C (0.6) refined and kept
    assert counts(when_point(CASES, 0.9)) == (3, 3, 0, 1)
    # t = 0: nothing refined, the greedy drafts as they are
    assert counts(when_point(CASES, 0.0)) == (0, 2, 0, 0)


def test_always_refine_is_the_last_point_and_rates_use_their_own_base():
    points = when_curve(CASES, [0.5, 0.2])
    assert [p.threshold for p in points] == [0.2, 0.5, None]
    always = points[-1]
    assert counts(always) == (4, 2, 1, 1) and always.label == "always"
    assert always.accuracy == 0.5 and always.refined_share == 1.0
    assert always.correct_drafts == 2 and always.wrong_drafts == 2
    assert always.broken_rate == 0.5 and always.fixed_rate == 0.5  # 1 of 2 correct, 1 of 2 wrong drafts
    mid = points[1]
    assert mid.accuracy == 0.75 and mid.refined_share == 0.5 and mid.fixed_rate == 0.5 and mid.broken_rate == 0.0
    assert mid.label == "ORM < 0.5"


def test_accuracy_is_the_drafts_plus_fixed_minus_broken():
    for p in when_curve(CASES, [i / 20 for i in range(21)]):
        assert p.correct == p.correct_drafts + p.fixed - p.broken


def test_table_rows_and_csv(tmp_path):
    points = when_curve(CASES, [0.5])
    table = when_table(points)
    assert table.startswith("When to refine: 4 problems, 2 correct drafts, 2 wrong")
    assert "| ORM < 0.5 | 75.0 | 50.0 | 0 (0.0 %) | 1 (50.0 %) |" in table
    assert "| always | 50.0 | 100.0 | 1 (50.0 %) | 1 (50.0 %) |" in table
    path = write_csv(points, tmp_path / "out" / "when.csv")
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [r["threshold"] for r in rows] == ["0.5", ""]
    assert rows[0]["accuracy"] == "0.75" and rows[1]["broken"] == "1" and rows[1]["refined_share"] == "1.0"
    assert not (tmp_path / "out" / "when.csv.tmp").exists()


def cand(kind, correct, score):
    return Candidate(kind, "a\n#### 1", ["a", "#### 1"], "1", orm_steps=[0.5, score], correct=correct)


def result(draft, glob, loc):
    choice = max([draft, glob, loc], key=lambda c: c.orm_score).kind
    return GloreResult("Q", "1", 0.5, draft, -1, -1, draft.orm_score < 0.5, glob, loc, choice)


def stored(case: WhenCase) -> GloreResult:
    (gs, gc), (ls, lc) = case.refinements
    return result(cand("draft", case.draft_correct, case.draft_score), cand("global", gc, gs), cand("local", lc, ls))


def test_stored_cases_read_back_and_always_refine_is_glore():
    results = [stored(c) for c in CASES]
    datas = [to_case(r, i).data for i, r in enumerate(results)]
    assert when_cases(datas) == CASES
    glore = dict(t3_rows(results))["draft + global + local (ORM) = GLoRe"]
    greedy = dict(t3_rows(results))["greedy draft"]
    points = when_curve(when_cases(datas), [0.0])
    assert points[-1].accuracy == glore and points[0].accuracy == greedy


def test_cases_without_the_candidates_list_use_the_full_records():
    data = to_case(stored(CASES[1]), 0).data
    del data["candidates"]
    assert when_case(data) == CASES[1]


def test_cases_without_gold_are_left_out_and_none_left_is_an_error():
    data = to_case(stored(CASES[0]), 0).data
    for c in data["candidates"]:
        c["correct"] = None
    assert when_cases([data]) == []
    with pytest.raises(DataError, match="no judged cases"):
        when_curve([], [0.5])
    with pytest.raises(DataError, match="not a pipeline evaluation case"):
        when_case({"candidates": [{"kind": "draft", "orm_score": 0.5, "correct": True}]})


@pytest.mark.parametrize("text", ["", "0.5,x", "1.5", "-0.1"])
def test_bad_thresholds_are_one_line_errors(text):
    with pytest.raises(DataError, match="thresholds must"):
        parse_thresholds(text)


def test_parse_thresholds():
    assert parse_thresholds("0.1, 0.5,0.9") == [0.1, 0.5, 0.9]


def test_run_curve_reads_a_store(tmp_path):
    from glore_db import Store

    with Store(f"sqlite:///{tmp_path / 'g.db'}") as store:
        with store.run("eval") as run:
            store.add_cases(run.id, [to_case(stored(c), i).to_json() for i, c in enumerate(CASES)])
        with store.run("sft") as empty:
            pass
        assert counts(run_curve(store, run.id, [0.5])[0]) == (2, 3, 0, 1)
        with pytest.raises(DataError, match=f"run {empty.id} has no evaluation cases"):
            run_curve(store, empty.id)
