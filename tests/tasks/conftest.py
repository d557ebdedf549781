"""Fixtures for the task tests: the GSM8K copy beside the repo, skipped where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GSM8K_DIR = (REPO / ".." / "shared" / "data" / "gsm8k").resolve()


@pytest.fixture
def gsm8k_dir() -> Path:
    if not (GSM8K_DIR / "train.jsonl").is_file() or not (GSM8K_DIR / "test.jsonl").is_file():
        pytest.skip(f"GSM8K copy not found at {GSM8K_DIR}")
    return GSM8K_DIR
