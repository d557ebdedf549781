"""bench/gpu_check.sh end to end on CPU (`--smoke`), with sqlalchemy, gradio, datasets, vLLM and the
CLI made unimportable, as on the bare CUDA image the check is written for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("sqlalchemy", "gradio", "datasets", "vllm", "click", "glore_db", "glore_app", "train_cli")


def blocker(folder: Path) -> dict:
    """An environment whose Python cannot import BLOCKED (a sitecustomize on PYTHONPATH), and says so."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "blocked.txt"
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        f"for name in {BLOCKED!r}:\n"
        "    sys.modules[name] = None  # `import name` now raises ImportError\n"
        f"open({str(marker)!r}, 'w').write('on')\n"
    )
    return {**os.environ, "PYTHONPATH": str(folder), "PYTHON": sys.executable}


def test_without_a_gpu_the_check_says_so_in_one_line(tmp_path):
    env = blocker(tmp_path / "site")
    run = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--work", str(tmp_path / "w")],
        check=False,
        cwd=ROOT,
        env={**env, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and run.stderr.strip() == (
        "error: no CUDA device; run with --smoke to check the script on CPU"
    )


@pytest.mark.e2e
def test_the_gpu_check_runs_end_to_end_on_cpu_without_the_store_the_app_or_datasets(tmp_path):
    env = blocker(tmp_path / "site")
    out = tmp_path / "out"
    run = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--smoke", "--work", str(tmp_path / "work")],
        check=False,
        cwd=ROOT,
        env={**env, "OUT": str(out), "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / "site" / "blocked.txt").read_text() == "on"
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["smoke"] is True and report["device"] == "CPU"
    for key in (
        "train_tokens_per_s",
        "orm_sample_tokens_per_s",
        "rollouts_per_s",
        "sampler_tokens_per_s",
        "generate_tokens_per_s",
        "scoring_solutions_per_s",
        "scoring_per_prefix_solutions_per_s",
        "pipeline_problems_per_s",
    ):
        assert report[key] > 0, key
    assert report["pipeline_metrics"]["T3/n_problems"] == 4
    table = run.stdout[run.stdout.index("| what | measured | detail |") :]
    for row in ("student SFT", "sampling, model.generate", "scoring, one pass per solution", "pipeline"):
        assert f"| {row}" in table
