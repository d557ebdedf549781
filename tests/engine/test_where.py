"""The where study: marks against the V* first error of wrong drafts, and local fixes from each rule."""

from __future__ import annotations

import pytest
from engine_helpers import problems, wrong

from glore_engine.errors import DataError
from glore_engine.evaluation.where import DEFAULT_RULES, MarkRule, position, report_metrics, where_study, where_table
from glore_engine.family import GloreModels
from glore_engine.pipeline import GlorePipeline


@pytest.fixture(scope="module")
def pipeline(tiny_family):
    return GlorePipeline(GloreModels.from_folder(tiny_family), max_new_tokens=16)


@pytest.fixture(scope="module")
def results(pipeline):
    probs = problems(6, seed=4, split="test")
    drafts = [wrong(p.solution) if i % 3 else p.solution for i, p in enumerate(probs)]
    return pipeline.run_batch([p.question for p in probs], [p.answer for p in probs], drafts=drafts)


def test_position_of_a_mark_against_the_real_error():
    assert [position(m, 2) for m in (-1, 0, 2, 3)] == ["none", "before", "exact", "after"]


def test_every_rule_accounts_for_every_wrong_draft(pipeline, results):
    report = where_study(pipeline, results, k=2, seed=0)
    assert report.n == sum(r.draft.correct is False for r in results) == 4
    assert sum(report.errors_by_step.values()) == report.n
    for outcome in report.rules:
        assert outcome.exact + outcome.before + outcome.after + outcome.none == report.n
        assert 0 <= outcome.fixed <= report.n - outcome.none
        assert sum(outcome.exact_by_step.values()) == outcome.exact
    vstar = report.rules[-1]
    assert vstar.key == "vstar" and vstar.exact == report.n  # the V* mark is the reference itself
    weakest = next(o for o in report.rules if o.key == "sorm_0.5_weakest")
    assert weakest.none == 0  # the fallback always marks a step


def test_rule_marks_follow_the_critics_scores(results):
    r = next(r for r in results if r.draft.correct is False)
    assert MarkRule("sorm", 1.01).marks(r) == 0  # everything is below 1.01: the first step
    assert MarkRule("orm", -1.0).marks(r) == -1  # nothing below -1, no fallback: no mark
    scores = r.draft.orm_steps
    assert MarkRule("orm", -1.0, weakest=True).marks(r) == scores.index(min(scores))


def test_earlier_and_moved_back_marks(results):
    from dataclasses import replace

    r = next(r for r in results if r.draft.correct is False)
    draft = replace(
        r.draft, steps=["a", "b", "c", "d"], sorm_steps=[0.9, 0.8, 0.3, 0.1], orm_steps=[0.9, 0.4, 0.6, 0.7]
    )
    r = replace(r, draft=draft)
    assert MarkRule("sorm", 0.5).marks(r) == 2 and MarkRule("orm", 0.5).marks(r) == 1
    assert MarkRule("earlier", 0.5).marks(r) == 1  # the ORM's mark comes first
    assert MarkRule("sorm", 0.5, back=1).marks(r) == 1 and MarkRule("sorm", 0.5, back=5).marks(r) == 0
    assert MarkRule("sorm", 0.05, back=1).marks(r) == -1  # no mark stays no mark
    assert MarkRule("earlier", 0.05, weakest=True).marks(r) == 1  # both weakest steps: SORM 3, ORM 1
    assert MarkRule("earlier", 0.5, True, back=1).key == "earlier_0.5_weakest_back1"
    assert MarkRule("sorm", 0.5, True, back=1).name == "SORM < 0.5, else the weakest step, 1 step earlier"


def test_table_and_metrics_name_every_rule(pipeline, results):
    report = where_study(pipeline, results, rules=DEFAULT_RULES[:2], k=2, seed=0)
    table = where_table(report)
    assert "| SORM < 0.5 |" in table and "| SORM < 0.5, else the weakest step |" in table
    assert "| (global refinement, no mark) |" in table
    metrics = report_metrics(report)
    assert metrics["where/wrong_drafts"] == 4 and 0 <= metrics["where/sorm_0.5/after"] <= 1


def test_no_wrong_drafts_is_a_data_error(pipeline, results):
    with pytest.raises(DataError, match="no wrong drafts"):
        where_study(pipeline, [r for r in results if r.draft.correct], k=2)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("vstar", MarkRule("vstar")),
        ("sorm<0.7", MarkRule("sorm", 0.7)),
        ("SORM<0.5, weakest", MarkRule("sorm", 0.5, weakest=True)),
        ("orm<0.6,weakest,back=1", MarkRule("orm", 0.6, weakest=True, back=1)),
        ("earlier<0.5,weakest", MarkRule("earlier", 0.5, weakest=True)),
    ],
)
def test_a_rule_is_read_from_its_command_line_spelling(text, rule):
    assert MarkRule.parse(text) == rule


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sorm", "write vstar, or CRITIC<THRESHOLD"),
        ("prm<0.5", "write vstar, or CRITIC<THRESHOLD"),
        ("sorm<high", "is not a number"),
        ("sorm<1.5", "within 0..1"),
        ("sorm<0.5,earliest", "unknown option 'earliest'"),
        ("sorm<0.5,back=-1", "unknown option 'back=-1'"),
        ("vstar,weakest", "write vstar, or CRITIC<THRESHOLD"),
    ],
)
def test_a_misspelt_rule_is_a_data_error_that_says_why(text, says):
    with pytest.raises(DataError, match=says.replace("(", r"\(")):
        MarkRule.parse(text)
