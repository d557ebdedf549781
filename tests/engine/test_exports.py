"""Label exports (TRL stepwise, ProcessBench, Math-Shepherd) read back through `datasets`."""

from __future__ import annotations

import pytest

from glore_engine.errors import ConfigError
from glore_engine.exports import SHEPHERD_TAG, export_labels
from glore_engine.formats import student_prompt
from glore_engine.labelling.postprocess import LabelRules


def stats(k, correct, consistent=None):
    return {
        "k": k,
        "correct": correct,
        "consistent_correct": correct if consistent is None else consistent,
        "pos": None,
        "neg": None,
    }


LABELLED = [
    # wrong at step 2: P_1 verified by 3 of 4 rollouts, P_2 by none
    {
        "problem_id": "q1",
        "question": "How many apples?",
        "gold": "10",
        "correct": False,
        "steps": ["3*4=12", "12-3=9", "So 9.\n#### 9"],
        "rollouts": [stats(4, 3), stats(4, 0)],
    },
    # right throughout; P_1's only correct rollout ignores R_1 (consistency matters)
    {
        "problem_id": "q2",
        "question": "How many pears?",
        "gold": "5",
        "correct": True,
        "steps": ["2+3=5", "#### 5"],
        "rollouts": [stats(4, 1, consistent=0)],
    },
    # wrong at step 1
    {
        "problem_id": "q3",
        "question": "How many figs?",
        "gold": "4",
        "correct": False,
        "steps": ["2*3=7", "7-3=4 ... no\n#### 3"],
        "rollouts": [stats(2, 0)],
    },
]


def load(path, tmp_path):
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))


def test_trl_round_trip_keeps_soft_labels_apart(tmp_path):
    path = tmp_path / "out" / "trl.jsonl"
    assert export_labels(LABELLED, "trl", path) == 3
    ds = load(path, tmp_path)
    assert len(ds) == 3 and {"prompt", "completions", "labels", "soft_labels"} <= set(ds.column_names)
    row = ds[0]
    assert row["prompt"] == student_prompt("How many apples?")
    assert row["completions"] == LABELLED[0]["steps"]
    assert row["labels"] == [True, False, False]
    assert row["soft_labels"] == pytest.approx([0.75, 0.0, 0.0])
    assert ds[1]["labels"] == [True, True] and ds[1]["soft_labels"] == pytest.approx([0.0, 1.0])
    assert ds[2]["labels"] == [False, False] and ds[2]["problem_id"] == "q3"
    assert ds.features["labels"].feature.dtype == "bool" and ds.features["soft_labels"].feature.dtype == "float64"


def test_trl_export_keeps_every_label_and_follows_the_rules(tmp_path):
    # balancing would drop labels; exports never balance, whatever the rules say
    export_labels(LABELLED, "trl", tmp_path / "a.jsonl", LabelRules(balance=True))
    assert sum(len(r) for r in load(tmp_path / "a.jsonl", tmp_path)["labels"]) == 7
    export_labels(LABELLED, "trl", tmp_path / "b.jsonl", LabelRules(propagate=False, consistency=False))
    ds = load(tmp_path / "b.jsonl", tmp_path)
    assert ds[1]["labels"] == [True, True] and ds[1]["soft_labels"] == pytest.approx([0.25, 1.0])


def test_processbench_round_trip(tmp_path):
    path = tmp_path / "pb.jsonl"
    export_labels(LABELLED, "processbench", path)
    ds = load(path, tmp_path)
    assert ds["id"] == ["q1-0", "q2-1", "q3-2"]
    assert ds["problem"] == ["How many apples?", "How many pears?", "How many figs?"]
    assert ds["label"] == [1, -1, 0]  # first wrong step, -1 for a right solution
    assert ds["final_answer_correct"] == [False, True, False]
    assert ds[0]["steps"] == LABELLED[0]["steps"]


def test_math_shepherd_round_trip(tmp_path):
    path = tmp_path / "ms.jsonl"
    export_labels(LABELLED, "math-shepherd", path)
    ds = load(path, tmp_path)
    first = ds[0]
    assert (
        first["input"]
        == f"How many apples? 3*4=12 {SHEPHERD_TAG}\n12-3=9 {SHEPHERD_TAG}\nSo 9.\n#### 9 {SHEPHERD_TAG}\n"
    )
    assert first["label"] == "How many apples? 3*4=12 +\n12-3=9 -\nSo 9.\n#### 9 -\n"
    assert first["input"].count(SHEPHERD_TAG) == 3
    assert first["label"] == first["input"].replace(f" {SHEPHERD_TAG}\n", " \0\n").replace("\0", "+", 1).replace(
        "\0", "-"
    )
    assert ds[1]["label"] == "How many pears? 2+3=5 +\n#### 5 +\n"


def test_every_row_carries_the_schema_version(tmp_path):
    for fmt in ("trl", "processbench", "math-shepherd"):
        export_labels(LABELLED, fmt, tmp_path / f"{fmt}.jsonl")
        assert set(load(tmp_path / f"{fmt}.jsonl", tmp_path)["schema_version"]) == {1}


def test_an_unknown_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown export format"):
        export_labels(LABELLED, "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
