"""Maths word problems: GSM8K and the synthetic task, final answers, steps and a safe calculator."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .answers import answers_match, canonical, extract_answer, is_correct, parse_number
from .calculator import evaluate, format_number
from .gsm8k import load_hub, load_jsonl
from .problem import Problem
from .steps import final_answer, split_steps, step_result, step_uses_result
from .svamp import is_svamp_source, load_svamp
from .synthetic import SPLITS, TaskConfig, generate, split_of

DEFAULT_SYNTHETIC_N = 1000

__all__ = [
    "DEFAULT_SYNTHETIC_N",
    "SPLITS",
    "Problem",
    "TaskConfig",
    "answers_match",
    "canonical",
    "evaluate",
    "extract_answer",
    "final_answer",
    "format_number",
    "generate",
    "is_correct",
    "load_hub",
    "load_jsonl",
    "load_problems",
    "load_svamp",
    "mix_problems",
    "parse_number",
    "split_of",
    "split_steps",
    "step_result",
    "step_uses_result",
]


def load_problems(source: str, split: str = "test", limit: int | None = None, seed: int = 0) -> list[Problem]:
    """Problems from "synthetic", "svamp" (or a SVAMP.json path), a .jsonl file, a folder holding
    <split>.jsonl, or a hub id ("openai/gsm8k"). SVAMP's split is the project's own (tasks.svamp)."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    path = Path(source)
    if source == "synthetic":
        problems = generate(split, limit or DEFAULT_SYNTHETIC_N, seed=seed)
    elif is_svamp_source(source):
        problems = load_svamp(source, split=split, limit=limit)  # one fixed split: a seed must not move it
    elif path.is_dir():
        problems = load_jsonl(path / f"{split}.jsonl", limit=limit)
    elif source.endswith(".jsonl") or path.exists():
        problems = load_jsonl(path, limit=limit)  # the split is the file's own: its stem names the ids
    elif _looks_like_hub_id(source):
        problems = load_hub(split, name=source, limit=limit)
    else:
        raise DataError(
            f"unknown problem source {source!r}: use 'synthetic', 'svamp', a .jsonl path, a folder with "
            f"{split}.jsonl, or a hub dataset id such as 'openai/gsm8k'"
        )
    if not problems:
        raise DataError(f"{source} ({split}) gave no problems")
    return problems


def _looks_like_hub_id(source: str) -> bool:
    owner, _, name = source.partition("/")
    return bool(owner and name) and "/" not in name and not source.startswith((".", "~"))


def mix_problems(main: list[Problem], extra: list[Problem]) -> list[Problem]:
    """main with extra spread evenly through it (stable), so any prefix holds both in proportion."""
    if not extra or not main:
        return main + extra
    # each problem's place on [0, 1): main at (i + 0.5) / len(main), extra at (j + 0.5) / len(extra)
    keyed = [((i + 0.5) / len(main), 0, p) for i, p in enumerate(main)]
    keyed += [((j + 0.5) / len(extra), 1, p) for j, p in enumerate(extra)]
    return [p for _, _, p in sorted(keyed, key=lambda t: (t[0], t[1]))]
