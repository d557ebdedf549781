import json

import pytest

import glore_engine.tasks.gsm8k as gsm8k
from glore_engine.errors import DataError
from glore_engine.tasks.answers import canonical, extract_answer
from glore_engine.tasks.gsm8k import load_hub, load_jsonl
from glore_engine.tasks.steps import split_steps, step_result

RECORD = {"question": "Tom has 2 bags of 3 pens. How many pens?", "answer": "He has 2*3=<<2*3=6>>6 pens.\n#### 6"}


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("split, count", [("train", 7473), ("test", 1319)])
def test_every_gold_solution_parses(gsm8k_dir, split, count):
    problems = load_jsonl(gsm8k_dir / f"{split}.jsonl")
    assert len(problems) == count
    raw = [json.loads(line) for line in (gsm8k_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    for problem, record in zip(problems, raw):
        gold = record["answer"].rsplit("####", 1)[1].strip()
        assert problem.answer == canonical(gold) == canonical(problem.answer)
        assert extract_answer(record["answer"]) == problem.answer
        steps = split_steps(problem.solution)
        assert len(steps) >= 1 and len(steps) == problem.meta["n_steps"]
        assert steps[-1].splitlines()[-1] == f"#### {gold}"
        assert step_result(steps[-1]) is not None
        assert problem.meta["source"] == "gsm8k"
    assert problems[17].id == f"gsm8k-{split}-17"


def test_load_jsonl_fields_limit_and_blank_lines(tmp_path):
    lines = [json.dumps(RECORD), "", json.dumps({**RECORD, "answer": "A\n\n  B = 1,080  \n#### 1,080"})]
    path = write_jsonl(tmp_path / "mini.jsonl", lines)
    problems = load_jsonl(path)
    assert [p.id for p in problems] == ["gsm8k-mini-0", "gsm8k-mini-2"]  # ids keep the line index
    assert problems[1].answer == "1080" and problems[1].solution == "A\nB = 1,080\n#### 1,080"
    assert problems[1].meta == {"source": "gsm8k", "n_steps": 2}
    assert [p.id for p in load_jsonl(path, limit=1, split_name="dev")] == ["gsm8k-dev-0"]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"question": "q", "answer": ', "mini.jsonl:2: not valid JSON"),
        (json.dumps({"question": "q"}), "mini.jsonl:2: missing key 'answer'"),
        (json.dumps({"answer": "#### 3"}), "mini.jsonl:2: missing key 'question'"),
        (json.dumps({"question": "q", "answer": "3"}), "mini.jsonl:2: no '####' final answer"),
        (json.dumps({"question": "q", "answer": "#### three"}), "mini.jsonl:2: final answer 'three' is not a number"),
        (json.dumps({"question": 5, "answer": "#### 3"}), "mini.jsonl:2: 'question' must be a non-empty string"),
        (json.dumps([1, 2]), "mini.jsonl:2: expected a JSON object"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, message):
    path = write_jsonl(tmp_path / "mini.jsonl", [json.dumps(RECORD), bad_line])
    with pytest.raises(DataError, match=message):
        load_jsonl(path)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="has no problems"):
        load_jsonl(write_jsonl(tmp_path / "empty.jsonl", ["", "  "]))
    with pytest.raises(DataError, match="no such file"):
        load_jsonl(tmp_path / "absent.jsonl")


def test_load_hub_wraps_failures(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("hub unreachable")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="Pass a JSONL path"):
        load_hub("test")


def test_load_hub_rows(monkeypatch):
    import datasets

    calls = []

    def fake(name, config, split):
        calls.append((name, config, split))
        return [RECORD, RECORD, RECORD]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    problems = load_hub("test", limit=2)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [p.id for p in problems] == ["gsm8k-test-0", "gsm8k-test-1"] and problems[0].answer == "6"
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: [{"question": "q"}])
    with pytest.raises(DataError, match=r"openai/gsm8k\[test\]\[0\]: missing key 'answer'"):
        gsm8k.load_hub("test")
