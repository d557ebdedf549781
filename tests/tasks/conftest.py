"""Fixtures for the task tests: the GSM8K copy beside the repo, skipped where it is absent."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The project is not installed in the venv and pytest's rootdir is not on sys.path by default;
# redundant once pyproject sets `pythonpath = ["."]` or the package is installed editable.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GSM8K_DIR = (REPO / ".." / "shared" / "data" / "gsm8k").resolve()


@pytest.fixture
def gsm8k_dir() -> Path:
    if not (GSM8K_DIR / "train.jsonl").is_file() or not (GSM8K_DIR / "test.jsonl").is_file():
        pytest.skip(f"GSM8K copy not found at {GSM8K_DIR}")
    return GSM8K_DIR
