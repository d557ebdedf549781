"""Shared set-up for the benchmarks: a model (trained or demo-size random), problems, timing."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", help="policy folder (default: the bundled student, else a random demo-size model)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is printed")
    return p


def load_policy(path: str | None):
    """(model, tokenizer, label): a trained policy when available, else a random demo-size Llama."""
    from glore_engine.bundled import BUNDLE_DIR, has_bundle
    from glore_engine.models.causal_lm import create_policy, load_causal_lm
    from glore_engine.runtime import configure

    configure()
    if path is None and has_bundle():
        path = str(BUNDLE_DIR / "student")
    if path:
        model, tok, _ = load_causal_lm(path)
        return model, tok, path
    import torch

    from glore_engine.testing import tiny_tokenizer

    tok = tiny_tokenizer(n_problems=2000)
    torch.manual_seed(0)
    return create_policy("demo", tok).eval(), tok, "random demo-size model (untrained)"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def median_rate(fn, repeat: int) -> float:
    """Median over `repeat` runs of fn() -> (units, seconds): this VM's timings vary by 20-30 %."""
    import statistics

    rates = []
    for _ in range(repeat):
        units, seconds = fn()
        rates.append(units / seconds)
    return statistics.median(rates)


def problems(n: int, split: str = "test"):
    from glore_engine.tasks.synthetic import generate

    return generate(split, n, seed=0)
