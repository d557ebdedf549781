import json

import pytest

from glore_engine.errors import DataError
from glore_engine.tasks import DEFAULT_SYNTHETIC_N, Problem, load_problems

RECORD = {"question": "Tom has 2 bags of 3 pens. How many pens?", "answer": "He has 2*3=<<2*3=6>>6 pens.\n#### 6"}


def test_synthetic_source():
    problems = load_problems("synthetic", split="dev", limit=5, seed=3)
    assert next(p.id for p in problems) == "synth-dev-3-00000" and len(problems) == 5
    assert all(isinstance(p, Problem) for p in problems)


def test_synthetic_default_size():
    assert len(load_problems("synthetic", split="test")) == DEFAULT_SYNTHETIC_N


def test_jsonl_file_and_folder(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(RECORD) + "\n" + json.dumps(RECORD) + "\n")
    assert [p.id for p in load_problems(str(tmp_path / "train.jsonl"), limit=1)] == ["gsm8k-train-0"]
    assert len(load_problems(str(tmp_path), split="train")) == 2
    with pytest.raises(DataError, match="no such file"):
        load_problems(str(tmp_path), split="test")


def test_hub_id(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda name, config, split: [RECORD])
    assert load_problems("openai/gsm8k", split="train")[0].id == "gsm8k-train-0"


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="unknown problem source"):
        load_problems("gsm9k")
    with pytest.raises(DataError, match="no such file"):
        load_problems(str(tmp_path / "absent.jsonl"))
    with pytest.raises(DataError, match="limit"):
        load_problems("synthetic", limit=0)
