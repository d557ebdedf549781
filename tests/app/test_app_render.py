"""Pure rendering: categories, first error, diffs, maths text, verdicts, the whole Inspect view."""

from __future__ import annotations

import re

import pytest

from glore_app import render
from glore_engine.pipeline import Candidate, GloreResult

RED_LIKE = ("#ff0000", "#d55e00", "red")


def cand(kind, steps, sorm, orm, answer="10", correct=None, kept=0, unchanged=False):
    return Candidate(kind, "\n".join(steps), steps, answer, orm, sorm, correct, kept, unchanged)


def result(threshold=0.5, first=1, local_kept=1, choice="local"):
    draft = cand("draft", ["a = 3*4 = 12", "b = 12-2 = 11", "#### 11"], [0.9, 0.3, 0.2], [0.8, 0.4, 0.35], "11", False)
    glob = cand("global", ["a = 12", "b = 10", "#### 10"], [0.9, 0.8, 0.7], [0.9, 0.6, 0.55], "10", True)
    local = cand(
        "local",
        ["a = 3*4 = 12", "b = 12-2 = 10", "#### 10"],
        [0.9, 0.9, 0.9],
        [0.9, 0.7, 0.7],
        "10",
        True,
        kept=local_kept,
    )
    return GloreResult(
        "Tom has $5 and 3 boxes of 4. What is $x+1$?", "10", threshold, draft, first, 1, True, glob, local, choice
    )


@pytest.mark.parametrize("score", [0.5, 0.61, 0.75, 0.99, 1.0])
def test_good_scores_are_never_an_error_category(score):
    for orm in (None, 0.1, 0.9):
        category = render.step_category(0, score, orm, threshold=0.5, first=-1)
        assert category in ("ok", "doubtful")
        assert not any(red in render.CATEGORIES[category]["colour"].lower() for red in RED_LIKE)


def test_categories_around_the_first_error():
    rows = render.step_rows(["s1", "s2", "s3", "s4"], [0.95, 0.55, 0.2, 0.9], [0.9, 0.9, 0.9, 0.9], 0.5)
    assert [r.category for r in rows] == ["ok", "doubtful", "first_error", "after_error"]
    assert render.step_category(0, None, None, 0.5, -1) == "unscored"


def test_every_category_has_a_text_label_and_a_distinct_colour():
    colours = [c["colour"] for k, c in render.CATEGORIES.items() if k != "unscored"]
    assert len(set(colours)) == len(colours)
    assert all(c["label"] and c["symbol"] for c in render.CATEGORIES.values())


@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.85, 1.0])
def test_first_error_index_is_within_range(threshold):
    scores = [0.9, 0.3, 0.2]
    first = render.first_error(scores, threshold)
    assert first == -1 or 0 <= first < len(scores)
    if first >= 0:
        assert scores[first] < threshold and all(s >= threshold for s in scores[:first])


def test_steps_table_marks_first_error_with_label():
    html = render.steps_table(render.step_rows(["a", "b"], [0.9, 0.1], [0.9, 0.9], 0.5))
    assert html.count('class="glore-step glore-') == 2
    assert 'data-category="first_error"' in html and "first error" in html
    assert "\n\n" not in html  # one Markdown HTML block
    assert "no steps" in render.steps_table([])


def test_math_text_escapes_html_and_shields_money():
    text = render.math_text("5+8=$<<5+8=13>>13 <b>x</b> and $x^2$ cost $5\nnext")
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "&lt;&lt;5+8=13&gt;&gt;" in text
    assert "$x^2$" in text  # maths kept for KaTeX
    assert text.count(render.MONEY) == 2
    assert text.count("$") == 2  # only the maths delimiters remain in the source
    assert "<br>" in text


def test_diff_keeps_local_prefix_and_marks_changes():
    draft = ["a = 12", "b = 11", "#### 11"]
    rows = render.diff_steps(draft, ["a = 12", "b = 10", "#### 10"], kept=1)
    assert [r.op for r in rows] == ["kept", "changed", "changed"]
    rows = render.diff_steps(draft, ["a = 12", "b = 11", "c = 1", "#### 11"])
    assert [r.op for r in rows] == ["same", "same", "added", "same"]
    assert [r.op for r in render.diff_steps(draft, ["#### 11"])] == ["removed", "removed", "same"]
    html = render.diff_html(render.diff_steps(["x <1>"], ["y <1>"]))
    assert "&lt;1&gt;" in html and "<del" in html and "<ins" in html and "changed" in html


def test_verdict_texts():
    assert "refine" in render.when_text(0.3, 0.5)
    assert "stand" in render.when_text(0.7, 0.5)
    assert "step 2" in render.where_text([0.9, 0.3], [0.9, 0.9], 0.5)
    assert "no error" in render.where_text([0.9, 0.8], [0.9, 0.9], 0.5)


def test_inspect_view_rethreshold_needs_no_models():
    r = result()
    at_run = render.inspect_view(r)
    assert at_run.first_error == 1 and 'data-category="first_error"' in at_run.draft_table
    lower = render.inspect_view(r, 0.1)
    assert lower.first_error == -1 and "first_error" not in re.findall(r'data-category="(\w+)"', lower.draft_table)
    assert "Run again" in lower.verdict  # the local refinement came from another step
    higher = render.inspect_view(r, 0.95)
    assert higher.first_error == 0
    for card, kind in ((at_run.global_card, "global"), (at_run.local_card, "local"), (at_run.rerank_card, "rerank")):
        assert f'data-kind="{kind}"' in card and ("ORM score" in card or "ORM picks" in card)
    assert "kept" in at_run.local_card and "✓ correct" in at_run.local_card
    assert "picks <strong>local</strong>" in at_run.rerank_card


def test_rerank_card_flags_a_wrong_choice():
    r = result(choice="draft")
    assert "Reranker wrong" in render.rerank_card(r)
    assert "draft itself" in render.rerank_card(r)


def test_unchanged_local_refinement_is_explained():
    r = result(first=-1)
    r.local_refinement = Candidate(
        "local",
        r.draft.text,
        r.draft.steps,
        "11",
        r.draft.orm_steps,
        r.draft.sorm_steps,
        False,
        kept_steps=3,
        unchanged=True,
    )
    assert "not run" in render.inspect_view(r, 0.1).local_card


HOSTILE = "<img src=x onerror=alert(1)>"
MARKDOWN_IMAGE = "![x](http://evil.example/x.png)"
TAGS = ("<img", "<script", "<a ", "<iframe", "<svg")


def no_markup_from_user(*texts: str) -> None:
    for text in texts:
        assert not any(tag in text.lower() for tag in TAGS), text
        assert "![" not in text and "](http" not in text, text


def hostile_result():
    evil = f"{HOSTILE} {MARKDOWN_IMAGE}"
    draft = cand("draft", [f"a = 1 {evil}", "#### 1"], [0.9, 0.2], [0.8, 0.3], evil, False)
    glob = cand("global", [f"b {evil}", "#### 2"], [0.9, 0.8], [0.9, 0.6], evil, True)
    local = cand("local", [f"a = 1 {evil}", f"c {evil}"], [0.9, 0.9], [0.9, 0.7], evil, True, kept=1)
    return GloreResult(f"Q {evil}?", evil, 0.5, draft, 1, 1, True, glob, local, "global")


@pytest.mark.parametrize("threshold", [None, 0.05, 0.95])
def test_user_text_never_becomes_markup_in_the_inspect_view(threshold):
    view = render.inspect_view(hostile_result(), threshold)
    no_markup_from_user(view.question, view.draft_table, view.verdict, view.global_card, view.local_card)
    no_markup_from_user(view.rerank_card)
    assert "&lt;img" in view.question and "&lt;img" in view.global_card  # shown as text, not dropped


def test_plain_text_escapes_html_markdown_and_money():
    text = render.plain_text(f"{HOSTILE} {MARKDOWN_IMAGE} **bold** `code` $5 | a_b")
    no_markup_from_user(text)
    assert "**" not in text and "`" not in text and "_" not in text and "$" not in text
    assert render.plain_text(None) == ""


def test_user_text_never_becomes_markup_in_the_annotate_tab():
    from types import SimpleNamespace

    from glore_app import review

    evil = f"{HOSTILE} {MARKDOWN_IMAGE}"
    case = SimpleNamespace(
        id=1,
        index=0,
        problem_id=evil,
        question=evil,
        gold=evil,
        steps=[evil, "#### 1"],
        data={},
        draft_correct=False,
        global_correct=None,
        local_correct=True,
        final_correct=True,
    )
    fields = {"step_ratings": [], "first_error_step": 0, "verdict": "found_error"}
    pos = review.QueuePosition(1, 1, 3, 0)
    no_markup_from_user(
        review.case_header(case),
        review.annotation_table(case, fields, 0, True),
        review.progress_text(pos, evil),
        review.annotation_summary(fields),
    )


def test_error_messages_are_shown_as_text():
    from glore_app.ui import guarded

    @guarded(2, status_at=1)
    def fails():
        raise ValueError(f"verdict must be one of found_error, got {HOSTILE!r}")

    _, status = fails()
    no_markup_from_user(status)
    assert "&lt;img" in status


def test_run_names_are_shown_as_text():
    from datetime import datetime, timezone

    from glore_app.runs_tab import run_header
    from glore_db import RunInfo

    evil = f"{HOSTILE} {MARKDOWN_IMAGE}"
    now = datetime.now(timezone.utc)
    run = RunInfo(1, "eval", evil, {}, "FAILED", now, now, evil, None, evil, 1, "h")
    no_markup_from_user(run_header(run))


def test_warnings_come_before_the_scores_and_mark_them_unreliable():
    plain = render.inspect_view(result())
    assert "glore-warning" not in plain.draft_table and "unreliable" not in plain.verdict
    r = result()
    r.warnings = ["This problem is unlike the ones these models were trained on: <b>x</b> `<<3+4=7>>`"]
    view = render.inspect_view(r)
    assert view.draft_table.index("glore-warning") < view.draft_table.index("glore-steps")  # before the scores
    assert "unlike the ones" in view.draft_table and "<b>x</b>" not in view.draft_table  # shown as text
    assert view.verdict.startswith("**The scores below are unreliable here, not a verdict**")
