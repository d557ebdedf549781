"""Fixtures for the glore-train tests: a CliRunner bound to a fresh store and GLORE_HOME, a tiny family.

e2e tests run with `--slow` or `-m e2e` (tests/conftest.py).
"""

from __future__ import annotations

import pytest
from cli_helpers import Cli


@pytest.fixture
def cli(tmp_path, monkeypatch):
    return Cli(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    from glore_engine.testing import make_tiny_family

    return make_tiny_family(tmp_path_factory.mktemp("family"))


@pytest.fixture(scope="session")
def student(tiny_family):
    return str(tiny_family / "student")


@pytest.fixture(scope="session")
def crafted(tiny_family, tmp_path_factory):
    """ORM-data and SORM-label folders for the tiny student, made by hand so they hold mixed questions,
    first errors and positive rollouts (a random student samples nothing correct)."""
    from glore_engine.labelling.manifest import write_manifest
    from glore_engine.labelling.orm_data import OrmDataConfig
    from glore_engine.labelling.rollouts import SormLabelConfig
    from glore_engine.labelling.shards import write_jsonl_atomic
    from glore_engine.tasks.steps import split_steps
    from glore_engine.tasks.synthetic import generate

    folder = tmp_path_factory.mktemp("crafted")
    student = str(tiny_family / "student")
    records, labelled = [], []
    for p in generate("train", 6, seed=1):
        lines = p.solution.splitlines()
        bad = "\n".join(lines[:-1] + [f"#### {int(lines[-1][5:]) + 1}"])
        samples = [
            {
                "text": t,
                "steps": split_steps(t),
                "answer": None,
                "correct": c,
                "count": 1,
                "logprob": -1.0,
                "n_tokens": 10,
                "finished": True,
            }
            for t, c in ((p.solution, True), (bad, False))
        ]
        records.append(
            {"problem_id": p.id, "question": p.question, "gold": p.answer, "n_samples": 2, "samples": samples}
        )
        for s in samples:
            steps = s["steps"]
            rollouts = [
                {
                    "k": 2,
                    "correct": 1,
                    "consistent_correct": 1,
                    "neg": "x\n#### 0",
                    "pos": "\n".join(steps[i + 1 :]) if s["correct"] else "\n".join(split_steps(p.solution)[i + 1 :]),
                }
                for i in range(len(steps) - 1)
            ]
            if not s["correct"]:
                rollouts[-1] = {**rollouts[-1], "correct": 0, "consistent_correct": 0, "pos": None}
            labelled.append(
                {
                    "problem_id": p.id,
                    "question": p.question,
                    "gold": p.answer,
                    "text": s["text"],
                    "steps": steps,
                    "correct": s["correct"],
                    "count": 1,
                    "logprob": -1.0,
                    "results": [None] * len(steps),
                    "rollouts": rollouts,
                }
            )
    for kind, rows, config in (
        ("orm-data", records, OrmDataConfig(student=student)),
        ("sorm-labels", labelled, SormLabelConfig()),
    ):
        (folder / kind).mkdir()
        write_jsonl_atomic(folder / kind / f"{kind}.jsonl", rows)
        write_manifest(folder / kind, kind, student, config, {"rows": len(rows)})
    return folder


@pytest.fixture(scope="session")
def other_student(tmp_path_factory):
    """A policy with its own tokenizer: labels of the tiny student do not belong to it."""
    import torch

    from glore_engine.models.causal_lm import create_policy, save_causal_lm
    from glore_engine.models.checkpoint import Card
    from glore_engine.testing import tiny_tokenizer

    tok = tiny_tokenizer(n_problems=40, seed=9)
    torch.manual_seed(0)
    return str(
        save_causal_lm(
            create_policy("tiny", tok),
            tok,
            tmp_path_factory.mktemp("other") / "student",
            Card(role="policy", base="tiny"),
        )
    )
