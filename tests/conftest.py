"""Settings every test shares: offline hubs, and which tests run.

The fast suite runs by default. End-to-end (`e2e`) and browser tests run with `--slow` (what
`make test` and CI use) or when `-m` names their marker: `pytest -m e2e`, `pytest -m browser`.
"""

from __future__ import annotations

import os

import pytest

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "GLORE_THREADS": "1",  # what configure() picks in CLI/app tests, as the _one_thread fixture below
}.items():
    os.environ.setdefault(key, value)

SLOW_MARKS = ("e2e", "browser")


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the e2e and browser tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    markexpr = config.getoption("-m") or ""
    for item in items:
        for mark in SLOW_MARKS:
            if item.get_closest_marker(mark) and mark not in markexpr:
                item.add_marker(pytest.mark.skip(reason=f"{mark} test: run with --slow or -m {mark}"))


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (the CI box has 2 shared cores)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
