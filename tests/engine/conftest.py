"""Fixtures for the engine tests: one tiny tokenizer, tiny policies and one tiny family per session.

Everything is built from config on CPU (never downloaded). e2e tests run with `--slow` or
`-m e2e` (tests/conftest.py).
"""

from __future__ import annotations

import pytest
from engine_helpers import Script, make_policy


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    """folder/{student,orm,sorm,refiner-global,refiner-local}: random tiny models sharing one tokenizer."""
    from glore_engine.testing import make_tiny_family

    return make_tiny_family(tmp_path_factory.mktemp("family"))


@pytest.fixture(scope="session")
def tokenizer(tiny_family):
    """The family's tokenizer (byte-level BPE, digits split, eos = pad = bos)."""
    from glore_engine.models.causal_lm import load_tokenizer

    return load_tokenizer(str(tiny_family / "student"))


@pytest.fixture(scope="session")
def policy(tokenizer):
    """A varied-output tiny random policy (shared: tests must not train it)."""
    return make_policy(tokenizer, seed=0)


@pytest.fixture
def script(tokenizer):
    """script(prompt, text, eos=False, max_positions=512) -> (backend over a scripted model, Script)."""
    from glore_engine.generation.hf_backend import TransformersBackend

    made = []

    def make(prompt, text, eos=False, max_positions=512, **backend_kwargs):
        model = make_policy(tokenizer, seed=1, std=None, max_positions=max_positions)
        s = Script(model, tokenizer, prompt, text, eos=eos)
        made.append(s)
        return TransformersBackend(model, tokenizer, **backend_kwargs), s

    yield make
    for s in made:
        s.remove()
