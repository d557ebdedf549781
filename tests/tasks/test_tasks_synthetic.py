import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glore_engine.errors import ConfigError
from glore_engine.tasks.answers import extract_answer
from glore_engine.tasks.calculator import evaluate, format_number
from glore_engine.tasks.families import FAMILIES
from glore_engine.tasks.steps import split_steps, step_result
from glore_engine.tasks.synthetic import SPLITS, TaskConfig, generate, split_of

ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")


@pytest.fixture(scope="module")
def train():
    return generate("train", 400, seed=0)


def test_deterministic(train):
    assert generate("train", 400, seed=0) == train
    assert generate("train", 50, seed=0) == train[:50]  # a smaller n is a prefix
    assert [p.question for p in generate("train", 50, seed=1)] != [p.question for p in train[:50]]


def test_deterministic_across_processes(train):
    # str hashes are salted per process: a fresh interpreter must give the same problems
    code = "from glore_engine.tasks.synthetic import generate; print(generate('train', 5, seed=0)[4].question)"
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == train[4].question


def test_format(train):
    for p in train:
        steps = split_steps(p.solution)
        assert 2 <= len(steps) <= 4 and len(steps) == p.meta["n_steps"] == p.n_steps
        assert p.solution.splitlines()[-1] == f"#### {p.answer}"
        for step in steps:
            ((expr, result),) = ANNOTATION.findall(step)  # exactly one annotation per step
            value = evaluate(expr)
            assert value.denominator == 1 and value >= 0 and format_number(value) == result
            assert f"{expr}=" in step  # the expression is also written out, GSM8K style
            assert len(step.split("\n")[0].rstrip(".").split(". ")) == 1  # one sentence
        assert step_result(steps[-1]) == p.answer == extract_answer(p.solution)
        assert p.meta["source"] == "synthetic" and p.meta["template"] in FAMILIES


def test_ids_unique_questions_and_families(train):
    assert [p.id for p in train[:2]] == ["synth-train-0-00000", "synth-train-0-00001"]
    assert len({p.question for p in train}) == len(train)
    assert {p.meta["template"] for p in train} == set(FAMILIES)
    assert {p.meta["n_steps"] for p in train} == {2, 3, 4}


def test_includes_borrows_and_two_digit_divisions(train):
    borrows = divisions = 0
    for p in train:
        for expr, _ in ANNOTATION.findall(p.solution):
            a, op, b = re.fullmatch(r"(\d+)([-+*/])(\d+)", expr).groups()
            borrows += op == "-" and int(a) % 10 < int(b) % 10
            divisions += op == "/" and int(a) >= 10
    assert borrows > 40 and divisions > 20


def test_splits_share_no_question(train):
    dev, test = generate("dev", 150, seed=0), generate("test", 150, seed=0)
    test_other_seed = generate("test", 150, seed=7)
    questions = {
        name: {p.question for p in ps}
        for name, ps in [("train", train), ("dev", dev), ("test", test + test_other_seed)]
    }
    assert not questions["train"] & questions["test"]
    assert not questions["train"] & questions["dev"]
    assert not questions["dev"] & questions["test"]
    assert all(split_of(q) == name for name, qs in questions.items() for q in qs)


def test_knobs():
    config = TaskConfig(min_steps=3, max_steps=3, max_count=6, max_multiplier=3, max_price=4, templates=["comparisons"])
    problems = generate("test", 60, seed=2, config=config)
    for p in problems:
        assert p.meta["n_steps"] == 3 and p.meta["template"] == "comparisons"
        assert max(int(n) for n in re.findall(r"\d+", p.question)) <= 6  # counts and multipliers only
        assert all(int(b) <= 3 for b in re.findall(r"[*/](\d+)=", p.solution))
    shopping = generate("test", 60, seed=2, config=TaskConfig(max_price=3, max_multiplier=2, templates=["shopping"]))
    prices = [int(x) for p in shopping for x in re.findall(r"\$(\d+) each", p.question)]
    assert prices and max(prices) <= 3


def test_one_and_five_steps_in_every_family():
    for name in FAMILIES:
        for k in (1, 5):
            for p in generate("dev", 10, config=TaskConfig(min_steps=k, max_steps=k, templates=[name])):
                assert p.n_steps == k


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_steps": 0},
        {"min_steps": 4, "max_steps": 3},
        {"max_steps": 9},
        {"max_count": 1},
        {"max_multiplier": 1},
        {"max_price": 0},
        {"max_count": 2.5},
        {"max_price": True},
        {"templates": []},
        {"templates": ["poetry"]},
        {"templates": "shopping"},
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        TaskConfig(**kwargs)


def test_bad_generate_arguments():
    with pytest.raises(ConfigError, match="unknown split"):
        generate("validation", 5)
    with pytest.raises(ConfigError):
        generate("train", -1)
    assert generate("train", 0) == []


def test_too_few_distinct_problems_is_an_error():
    tight = TaskConfig(min_steps=1, max_steps=1, max_count=2, max_multiplier=2, templates=["teams"])
    with pytest.raises(ConfigError, match="could only make"):
        generate("test", 50, config=tight)


def test_splits_constant():
    assert SPLITS == ("train", "dev", "test")
