"""The vLLM backend against the transformers backend on the bundled student, in the vLLM venv.

`make test-vllm` (part of `make test`) runs these in .venv-vllm with GLORE_REQUIRE_VLLM=1: there a
missing vLLM is an error, not a skip. In the main venv (no vLLM) they skip with that reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glore_engine.generation.vllm_backend import vllm_available

HAVE_VLLM = vllm_available()
if not HAVE_VLLM and os.environ.get("GLORE_REQUIRE_VLLM") == "1":
    raise RuntimeError("GLORE_REQUIRE_VLLM=1 but vLLM is not importable here: run `make vllm-venv`")

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    if HAVE_VLLM:
        return
    skip = pytest.mark.skip(reason="vLLM is not installed here; `make test-vllm` runs these in .venv-vllm")
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def student() -> str:
    from glore_engine.bundled import BUNDLE_DIR

    return str(BUNDLE_DIR / "student")


@pytest.fixture(scope="session")
def engine(student):
    """The vLLM backend (one engine for the whole session)."""
    from glore_engine.generation.vllm_backend import VLLMBackend

    return VLLMBackend(student, batch_size=256)


@pytest.fixture(scope="session")
def hf(student):
    from glore_engine.generation.hf_backend import TransformersBackend
    from glore_engine.models.causal_lm import load_causal_lm

    model, tokenizer, _ = load_causal_lm(student)
    return TransformersBackend(model, tokenizer, batch_size=256)


@pytest.fixture(scope="session")
def problems(student):
    """64 held-out synthetic problems at the student's difficulty."""
    from glore_engine.tasks.model_task import load_eval_problems

    return load_eval_problems("synthetic", "test", 64, 0, student)


@pytest.fixture(scope="session")
def prompts(problems):
    from glore_engine.formats import student_prompt

    return [student_prompt(p.question) for p in problems]
