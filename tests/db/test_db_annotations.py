"""What the store refuses in an annotation: out-of-range steps, wrong types, oversized text, and a
first-error mark that contradicts the step ratings. A refused save changes nothing."""

from __future__ import annotations

import pytest

from glore_db import ANNOTATION_LIMITS


def ratings_of(row) -> list:
    return [r["rating"] for r in row.step_ratings]


@pytest.mark.parametrize("step", [-1, -3, 3, 99])
def test_rate_step_refuses_a_step_outside_the_draft(store, eval_run, step):
    _, ids = eval_run
    store.rate_step(ids[1], 0, 1)
    store.rate_step(ids[1], 2, 1)
    with pytest.raises(ValueError, match=r"step index .* out of range: case \d+ has 3 steps \(0\.\.2\)"):
        store.rate_step(ids[1], step, -1)
    assert ratings_of(store.get_annotation(ids[1])) == [1, None, 1]  # step 2 (the last) untouched


@pytest.mark.parametrize("step", [1.5, "1", None, True])
def test_rate_step_refuses_a_step_that_is_not_an_integer(store, eval_run, step):
    _, ids = eval_run
    with pytest.raises(ValueError, match="step index must be an integer"):
        store.rate_step(ids[1], step, 1)
    assert store.annotations() == []


def test_rate_step_sets_one_step_and_keeps_the_rest(store, eval_run):
    _, ids = eval_run
    store.rate_step(ids[1], 2, -1, unsure=True)
    row = store.rate_step(ids[1], 0, 1)
    assert row.step_ratings == [
        {"rating": 1, "unsure": False},
        {"rating": None, "unsure": False},
        {"rating": -1, "unsure": True},
    ]
    assert ratings_of(store.rate_step(ids[1], 2, None)) == [1, None, None]  # clear
    assert store.get_annotation(ids[1]).step_ratings[2]["unsure"] is True  # unsure kept when not given


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"note": {"text": "a dict"}}, "note must be text"),
        ({"note": "x" * (ANNOTATION_LIMITS["note"] + 1)}, "note is"),
        ({"note": "x" * 1_000_000}, "at most"),
        ({"tags": "units"}, "tags must be a list"),
        ({"tags": [{"a": 1}]}, "tag must be text"),
        ({"tags": ["x" * (ANNOTATION_LIMITS["tag"] + 1)]}, "tag is"),
        ({"tags": [f"t{i}" for i in range(ANNOTATION_LIMITS["tags"] + 1)]}, "tags"),
        ({"step_ratings": [1.0]}, "rating"),
        ({"step_ratings": "+1"}, "step_ratings must be a list"),
        ({"step_ratings": [{"rating": 1, "unsure": "no"}]}, "unsure must be true or false"),
        ({"first_error_step": 1.0}, "first_error_step"),
        ({"verdict": ["solution"]}, "verdict"),
    ],
)
def test_wrong_types_and_oversized_fields_are_refused(store, eval_run, fields, message):
    _, ids = eval_run
    with pytest.raises(ValueError, match=message):
        store.save_annotation(ids[0], **fields)
    assert store.annotations() == []


def test_a_note_at_the_limit_is_kept_whole(store, eval_run):
    _, ids = eval_run
    note = "é" * ANNOTATION_LIMITS["note"]
    assert store.save_annotation(ids[0], note=note).note == note


@pytest.mark.parametrize(
    "annotator, message",
    [
        ("x" * 100_000, "annotator name is 100000 characters"),
        ("x" * (ANNOTATION_LIMITS["annotator"] + 1), "at most"),
        ("", "annotator name is empty"),
        ("   ", "annotator name is empty"),
        (None, "annotator name must be text"),
        ({"name": "a"}, "annotator name must be text"),
        ("ann\nbob", "control characters"),
    ],
)
def test_bad_annotator_names_are_refused(store, eval_run, annotator, message):
    _, ids = eval_run
    with pytest.raises(ValueError, match=message):
        store.save_annotation(ids[0], annotator, verdict="solution")
    with pytest.raises(ValueError, match=message):
        store.rate_step(ids[0], 0, 1, annotator)
    assert store.annotations() == []


def test_annotator_names_are_stored_stripped(store, eval_run):
    _, ids = eval_run
    assert store.save_annotation(ids[0], "  ann  ", verdict="solution").annotator == "ann"
    assert store.get_annotation(ids[0], "ann").verdict == "solution"


def test_a_first_error_rated_good_is_refused_in_either_order(store, eval_run):
    _, ids = eval_run
    store.rate_step(ids[1], 1, 1)
    with pytest.raises(ValueError, match=r"step 2 is rated \+1 .* first error"):
        store.save_annotation(ids[1], first_error_step=1)
    assert store.get_annotation(ids[1]).first_error_step is None

    store.save_annotation(ids[2], first_error_step=1)
    for rating in (1, 0):
        with pytest.raises(ValueError, match="first error"):
            store.rate_step(ids[2], 1, rating)
    assert ratings_of(store.get_annotation(ids[2])) == []


def test_a_bad_step_before_the_first_error_is_refused(store, eval_run):
    _, ids = eval_run
    store.save_annotation(ids[1], first_error_step=2)
    with pytest.raises(ValueError, match=r"step 1 is rated −1 but the first error is marked at step 3"):
        store.rate_step(ids[1], 0, -1)
    with pytest.raises(ValueError, match="step 1 is rated"):
        store.save_annotation(ids[1], step_ratings=[-1, None, -1])
    store.rate_step(ids[2], 1, -1)
    with pytest.raises(ValueError, match=r"step 2 is rated −1 but the draft is marked as having no error"):
        store.save_annotation(ids[2], first_error_step=-1)


def test_consistent_labels_are_accepted(store, eval_run):
    _, ids = eval_run
    store.rate_step(ids[1], 0, 1)
    store.rate_step(ids[1], 1, -1)
    row = store.save_annotation(ids[1], first_error_step=1, verdict="found_error")
    assert (ratings_of(row), row.first_error_step) == ([1, -1], 1)
    assert ratings_of(store.rate_step(ids[1], 2, 1)) == [1, -1, 1]  # a good step after the error is fine
    assert store.save_annotation(ids[1], first_error_step=-1, step_ratings=[1, 0, 1]).first_error_step == -1
