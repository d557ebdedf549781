"""Exports of annotated cases: TRL stepwise, ProcessBench, PRM800K-like, CSV; datasets round-trips."""

from __future__ import annotations

import csv
import json

import pytest

from glore_db.export import human_first_error, step_labels, write_jsonl
from glore_db.records import AnnotationRow


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


def _read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _load(path, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset  # only the test may import datasets

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))


def _annotation(**fields) -> AnnotationRow:
    base = {
        "id": 1,
        "case_id": 1,
        "annotator": "a",
        "step_ratings": [],
        "first_error_step": None,
        "verdict": None,
        "note": None,
        "tags": [],
        "created_at": None,
        "updated_at": None,
    }
    return AnnotationRow(**{**base, **fields})


def test_labels_from_first_error_and_ratings():
    assert step_labels(_annotation(first_error_step=1), 3) == [True, False, False]
    assert step_labels(_annotation(first_error_step=-1), 2) == [True, True]
    rated = _annotation(first_error_step=1, step_ratings=[{"rating": 0}, {"rating": -1}, {"rating": 1}])
    assert step_labels(rated, 3) == [True, False, True]  # explicit ratings win over "after the error"
    assert human_first_error(_annotation(step_ratings=[{"rating": 1}, {"rating": -1}]), 3) == 1
    assert human_first_error(_annotation(step_ratings=[{"rating": 1}] * 3), 3) == -1
    assert human_first_error(_annotation(verdict="solution"), 3) == -1
    assert human_first_error(_annotation(step_ratings=[{"rating": 1}]), 3) is None
    assert step_labels(_annotation(), 2) == [None, None]


def test_trl_stepwise(store, annotated, tmp_path, monkeypatch):
    run_id, _ = annotated
    path = tmp_path / "trl.jsonl"
    assert store.export_annotations(run_id, "trl", path) == 3  # bad_problem and unfinished left out
    records = _read_jsonl(path)
    assert records[0] == {
        "schema_version": 1,
        "prompt": "Q0?",
        "completions": ["a = 1", "b = a + 1", "#### 2"],
        "labels": [True, True, True],
    }
    assert [r["labels"] for r in records[1:]] == [[True, False, True], [True, True, False]]
    ds = _load(path, monkeypatch, tmp_path)
    assert ds.num_rows == 3 and set(ds.column_names) == {"schema_version", "prompt", "completions", "labels"}
    assert ds[1]["labels"] == [True, False, True]


def test_trl_soft_labels(store, tmp_path):
    run_id = store.start_run("eval")
    store.add_cases(run_id, [{"index": 0, "question": "Q", "draft": "x\n#### 1", "data": {"soft_labels": [1, 0.25]}}])
    store.save_annotation(store.cases(run_id)[0].id, first_error_step=1)
    store.export_annotations(run_id, "trl_stepwise", tmp_path / "soft.jsonl")
    record = _read_jsonl(tmp_path / "soft.jsonl")[0]
    assert record["labels"] == [True, False] and record["soft_labels"] == [1.0, 0.25]


def test_processbench(store, annotated, tmp_path, monkeypatch):
    run_id, _ = annotated
    path = tmp_path / "pb.jsonl"
    assert store.export_annotations(run_id, "processbench", path) == 3
    records = _read_jsonl(path)
    assert [(r["id"], r["label"], r["final_answer_correct"]) for r in records] == [
        ("p0", -1, True),
        ("p1", 1, False),
        ("p2", 2, False),
    ]
    assert set(records[0]) == {"schema_version", "id", "problem", "steps", "final_answer_correct", "label"}
    ds = _load(path, monkeypatch, tmp_path)
    assert ds["label"] == [-1, 1, 2] and ds[0]["steps"] == ["a = 1", "b = a + 1", "#### 2"]


def test_prm800k(store, annotated, tmp_path, monkeypatch):
    run_id, _ids = annotated
    path = tmp_path / "prm.jsonl"
    assert store.export_annotations(run_id, "prm800k", path) == 5  # every annotation, raw
    records = {r["question"]["problem_id"]: r for r in _read_jsonl(path)}
    p1 = records["p1"]
    assert p1["schema_version"] == 1 and p1["annotator"] == "default" and p1["timestamp"]
    assert p1["question"] == {"problem": "Q1?", "ground_truth_answer": "2", "problem_id": "p1"}
    assert [(s["rating"], s["unsure"]) for s in p1["label"]["steps"]] == [(1, False), (-1, True), (0, False)]
    assert p1["label"]["finish_reason"] == "found_error"
    assert records["p3"]["label"]["finish_reason"] == "bad_problem"
    assert [s["rating"] for s in records["p0"]["label"]["steps"]] == [None, None, None]
    ds = _load(path, monkeypatch, tmp_path)
    assert ds.num_rows == 5 and ds[1]["label"]["steps"][1]["rating"] == -1


def test_csv(store, annotated, tmp_path):
    run_id, ids = annotated
    path = tmp_path / "out" / "notes.csv"
    assert store.export_annotations(run_id, "csv", path) == 5
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["case_id"] == str(ids[1]) and rows[1]["note"] == "b wrong"
    assert json.loads(rows[1]["step_ratings"])[1] == {"rating": -1, "unsure": True}
    assert rows[0]["schema_version"] == "1"


def test_export_filters_by_annotator_and_rejects_unknown_format(store, annotated, tmp_path):
    run_id, ids = annotated
    store.save_annotation(ids[0], annotator="bob", verdict="solution")
    assert store.export_annotations(run_id, "prm800k", tmp_path / "bob.jsonl", annotator="bob") == 1
    with pytest.raises(ValueError, match="unknown export format"):
        store.export_annotations(run_id, "parquet", tmp_path / "x")


def test_write_jsonl_is_atomic(tmp_path):
    path = tmp_path / "data.jsonl"
    assert write_jsonl([{"a": 1}], path) == 1

    def broken():
        yield {"a": 2}
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), path)
    assert _read_jsonl(path) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]
