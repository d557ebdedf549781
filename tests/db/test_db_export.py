"""What the store hands the exporters: annotated cases as plain records (the formats live in
glore_engine.exports, tested in tests/engine/test_exports.py); the store → exporter round trip."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def annotated(store, eval_run):
    """Annotations of every kind: ratings, first error only, no error, unusable verdicts, incomplete."""
    run_id, ids = eval_run
    store.save_annotation(ids[0], verdict="solution", first_error_step=-1)
    store.save_annotation(
        ids[1], step_ratings=[1, {"rating": -1, "unsure": True}, 0], verdict="found_error", note="b wrong"
    )
    store.save_annotation(ids[2], first_error_step=2, verdict="found_error")
    store.save_annotation(ids[3], verdict="bad_problem")
    store.save_annotation(ids[4], step_ratings=[None, 1, None], note="unfinished")
    return run_id, ids


def test_annotated_cases_as_plain_records(store, annotated):
    run_id, ids = annotated
    records = [row.record() for row in store.annotated_cases(run_id)]
    assert [r["case_id"] for r in records] == ids
    r = records[1]
    assert json.loads(json.dumps(r)) == r  # plain values only: strings, numbers, lists, dicts
    assert r["steps"] == ["a = 1", "b = a + 1", "#### 2"] and r["question"] == "Q1?" and r["problem_id"] == "p1"
    assert r["step_ratings"][1] == {"rating": -1, "unsure": True} and r["note"] == "b wrong"
    assert r["first_error_index"] is None and records[2]["first_error_index"] == 2
    assert r["annotator"] == "default" and r["updated_at"].endswith("+00:00")
    assert r["draft_correct"] is False and r["run_id"] == run_id


def test_the_store_has_no_export_formats_of_its_own(store):
    """One definition of every interchange format, in the engine: the store only hands over records."""
    import glore_db

    assert not hasattr(store, "export_annotations") and not hasattr(glore_db, "EXPORT_FORMATS")
    with pytest.raises(ImportError):
        import glore_db.export


@pytest.mark.parametrize("fmt, count", [("trl", 3), ("processbench", 3), ("prm800k", 5), ("csv", 5)])
def test_store_to_exporter_round_trip(store, annotated, tmp_path, fmt, count):
    from glore_engine.exports import export_annotations

    run_id, _ = annotated
    rows = [row.record() for row in store.annotated_cases(run_id)]
    assert export_annotations(rows, fmt, tmp_path / f"out.{fmt}") == count


def test_annotated_cases_filter_by_annotator(store, annotated):
    run_id, ids = annotated
    store.save_annotation(ids[0], annotator="bob", verdict="solution")
    assert [r.annotation.annotator for r in store.annotated_cases(run_id, annotator="bob")] == ["bob"]
    assert len(store.annotated_cases(run_id)) == 6
