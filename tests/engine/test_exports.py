"""Label exports (TRL stepwise, ProcessBench, Math-Shepherd) read back through `datasets`."""

from __future__ import annotations

import pytest

from glore_engine.errors import ConfigError
from glore_engine.exports import SCHEMA_VERSION, SHEPHERD_TAG, export_labels
from glore_engine.formats import student_prompt
from glore_engine.labelling.postprocess import LabelRules
from glore_engine.records import solutions_from_json


def stats(k, correct, consistent=None):
    return {
        "k": k,
        "correct": correct,
        "consistent_correct": correct if consistent is None else consistent,
        "pos": None,
        "neg": None,
    }


LABELLED = solutions_from_json(
    [
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
)


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
    assert row["completions"] == LABELLED[0].steps
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
    assert ds[0]["steps"] == LABELLED[0].steps


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
        assert set(load(tmp_path / f"{fmt}.jsonl", tmp_path)["schema_version"]) == {SCHEMA_VERSION}


def test_an_unknown_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown export format"):
        export_labels(LABELLED, "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


# ---- annotated cases (human labels) --------------------------------------------------------------
STEPS = ["a = 1", "b = a + 1", "#### 2"]


def human(index=0, ratings=(), first=None, verdict=None, **extra) -> dict:
    """A plain annotated-case record, as the store's AnnotatedCase.record() hands it over."""
    record = {
        "case_id": 10 + index,
        "run_id": 1,
        "index": index,
        "problem_id": f"p{index}",
        "question": f"Q{index}?",
        "gold": "2",
        "draft": "\n".join(STEPS),
        "steps": list(STEPS),
        "soft_labels": None,
        "draft_correct": verdict == "solution",
        "final_correct": True,
        "annotator": "ann",
        "step_ratings": [r if isinstance(r, dict) else {"rating": r, "unsure": False} for r in ratings],
        "first_error_index": first,
        "verdict": verdict,
        "note": None,
        "tags": [],
        "updated_at": "2024-05-01T12:00:00+00:00",
    }
    return {**record, **extra}


HUMAN = [
    human(0, verdict="solution", first=-1),
    human(1, ratings=[1, {"rating": -1, "unsure": True}, 0], verdict="found_error", note="b wrong"),
    human(2, first=2, verdict="found_error"),
    human(3, verdict="bad_problem"),
    human(4, ratings=[None, 1, None], note="unfinished"),
]


def read_jsonl(path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_trl_stepwise_record_for_sorm_labels_and_human_labels(tmp_path):
    """The same draft with the same labels is the same TRL record, whoever labelled it."""
    from glore_engine.exports import export_annotations

    sorm = LABELLED[0]
    export_labels([sorm], "trl", tmp_path / "sorm.jsonl")
    person = human(0, question=sorm.question, steps=list(sorm.steps), problem_id="q1", first=1, verdict="found_error")
    export_annotations([person], "trl", tmp_path / "human.jsonl")
    (from_sorm,), (from_human,) = read_jsonl(tmp_path / "sorm.jsonl"), read_jsonl(tmp_path / "human.jsonl")
    shared = ("schema_version", "prompt", "completions", "labels", "problem_id")
    assert {k: from_sorm[k] for k in shared} == {k: from_human[k] for k in shared}
    assert from_human["prompt"] == student_prompt("How many apples?")


def test_human_trl_stepwise_round_trips_through_datasets(tmp_path):
    from glore_engine.exports import SCHEMA_VERSION, export_annotations

    path = tmp_path / "trl.jsonl"
    assert export_annotations(HUMAN, "trl", path) == 3  # bad_problem and unfinished left out
    ds = load(path, tmp_path)
    assert ds["prompt"][0] == student_prompt("Q0?") and ds["completions"][0] == STEPS
    assert ds["labels"] == [[True, True, True], [True, False, True], [True, True, False]]
    assert set(ds["schema_version"]) == {SCHEMA_VERSION}


def test_human_soft_labels_ride_along(tmp_path):
    from glore_engine.exports import export_annotations

    export_annotations([human(first=1, soft_labels=[1, 0.25, 0])], "trl", tmp_path / "soft.jsonl")
    (record,) = read_jsonl(tmp_path / "soft.jsonl")
    assert record["labels"] == [True, False, False] and record["soft_labels"] == [1.0, 0.25, 0.0]


def test_human_processbench_labels_are_0_based(tmp_path):
    from glore_engine.exports import export_annotations

    path = tmp_path / "pb.jsonl"
    assert export_annotations(HUMAN, "processbench", path) == 3
    ds = load(path, tmp_path)
    assert list(zip(ds["id"], ds["label"], ds["final_answer_correct"])) == [
        ("p0", -1, True),
        ("p1", 1, False),
        ("p2", 2, False),
    ]


def test_prm800k_and_csv_name_the_0_based_first_error_index(tmp_path):
    import csv

    from glore_engine.exports import export_annotations

    rows = [human(1, ratings=[1, -1], first=1, verdict="found_error")]  # the UI says "step 2"
    export_annotations(rows, "prm800k", tmp_path / "prm.jsonl")
    (record,) = read_jsonl(tmp_path / "prm.jsonl")
    assert record["label"]["first_error_index"] == 1 and "first_error_step" not in record["label"]
    assert [(s["rating"], s["unsure"]) for s in record["label"]["steps"]] == [(1, False), (-1, False), (None, False)]
    export_annotations(rows, "csv", tmp_path / "a.csv")
    with (tmp_path / "a.csv").open(newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["first_error_index"] == "1" and "first_error_step" not in row


def test_prm800k_keeps_every_annotation_raw(tmp_path):
    from glore_engine.exports import export_annotations

    path = tmp_path / "prm.jsonl"
    assert export_annotations(HUMAN, "prm800k", path) == 5
    records = {r["question"]["problem_id"]: r for r in read_jsonl(path)}
    p1 = records["p1"]
    assert p1["annotator"] == "ann" and p1["timestamp"] == "2024-05-01T12:00:00+00:00" and p1["note"] == "b wrong"
    assert p1["question"] == {"problem": "Q1?", "ground_truth_answer": "2", "problem_id": "p1"}
    assert records["p3"]["label"]["finish_reason"] == "bad_problem"
    ds = load(path, tmp_path)
    assert ds.num_rows == 5 and ds[1]["label"]["steps"][1]["rating"] == -1


def test_contradictory_labels_are_left_out_of_label_formats_and_flagged_in_raw_ones(tmp_path):
    import csv

    from glore_engine.exports import export_annotations, label_conflict

    bad = human(0, ratings=[1, 1], first=1, verdict="found_error")  # step 2: +1 and "first error"
    assert "step 2" in label_conflict(bad) and label_conflict(HUMAN[1]) is None
    rows = [bad, HUMAN[2]]
    assert export_annotations(rows, "trl", tmp_path / "t.jsonl") == 1
    assert export_annotations(rows, "processbench", tmp_path / "p.jsonl") == 1
    assert [r["id"] for r in read_jsonl(tmp_path / "p.jsonl")] == ["p2"]
    export_annotations(rows, "prm800k", tmp_path / "r.jsonl")
    conflicts = [r["label"]["conflict"] for r in read_jsonl(tmp_path / "r.jsonl")]
    assert "first error" in conflicts[0] and conflicts[1] is None
    export_annotations(rows, "csv", tmp_path / "c.csv")
    with (tmp_path / "c.csv").open(newline="", encoding="utf-8") as handle:
        assert [bool(r["conflict"]) for r in csv.DictReader(handle)] == [True, False]


@pytest.mark.parametrize(
    "text, cell",
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-5", "-5"),  # a plain number is no formula
        ("+2.5", "+2.5"),
        ("plain text = fine", "plain text = fine"),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path, text, cell):
    import csv

    from glore_engine.exports import export_annotations

    row = human(0, first=-1, note=text, question=text, gold=text, annotator=text, tags=[text])
    export_annotations([row], "csv", tmp_path / "x.csv")
    with (tmp_path / "x.csv").open(newline="", encoding="utf-8") as handle:
        (out,) = list(csv.DictReader(handle))
    assert out["note"] == cell and out["question"] == cell and out["gold"] == cell and out["annotator"] == cell
    assert out["first_error_index"] == "-1"  # numbers are written as numbers


def test_an_unknown_annotation_format_is_refused(tmp_path):
    from glore_engine.exports import export_annotations

    with pytest.raises(ConfigError, match="unknown export format 'parquet'"):
        export_annotations(HUMAN, "parquet", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_jsonl_writes_are_atomic(tmp_path):
    from glore_engine.exports import write_jsonl

    path = tmp_path / "data.jsonl"
    assert write_jsonl([{"a": 1}], path) == 1

    def broken():
        yield {"a": 2}
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), path)
    assert read_jsonl(path) == [{"a": 1}] and [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]
