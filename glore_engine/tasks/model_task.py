"""The task a model was trained on (read from its card) and problems that match it: evaluation and sampling
use the synthetic task at the difficulty the model's student trained on."""

from __future__ import annotations

from pathlib import Path

from ..models.checkpoint import read_card

TASK_KEYS = ("task_min_steps", "task_max_steps", "max_count", "max_multiplier", "max_price")


def task_config_from_card(model_path: str | Path | None):
    """The synthetic TaskConfig recorded in a student's (or its descendants') card, else the default."""
    from .synthetic import TaskConfig

    card = read_card(model_path) if model_path and Path(model_path).is_dir() else None
    config = (card.config if card else {}) or {}
    task = config.get("task") or {k: config[k] for k in TASK_KEYS if k in config}
    if not task:
        return TaskConfig()
    return TaskConfig(
        min_steps=task.get("task_min_steps", 2),
        max_steps=task.get("task_max_steps", 4),
        max_count=task.get("max_count", 20),
        max_multiplier=task.get("max_multiplier", 5),
        max_price=task.get("max_price", 10),
    )


def task_dict(config) -> dict:
    """TaskConfig -> the keys cards carry (so descendants of a student keep its task)."""
    return {
        "task_min_steps": config.min_steps,
        "task_max_steps": config.max_steps,
        "max_count": config.max_count,
        "max_multiplier": config.max_multiplier,
        "max_price": config.max_price,
    }


def task_description(config) -> str:
    """The synthetic task at a TaskConfig's difficulty, in words for people (card, app header)."""
    return (
        f"synthetic GSM8K-format arithmetic word problems of {config.min_steps}-{config.max_steps} steps "
        f"(counts up to {config.max_count}, multipliers up to {config.max_multiplier}, prices up to "
        f"${config.max_price}), solved one step per line with calculator annotations like <<3+4=7>> and a "
        "final '#### n' line. Other problems (real GSM8K ones included) and drafts in other formats are "
        "outside what these models know: their drafts and scores there mean little"
    )


def task_card(model_path: str | Path | None) -> dict:
    """What the models of a family were trained on, with one test problem and its solution to copy."""
    from .synthetic import generate

    config = task_config_from_card(model_path)
    example = generate("test", 1, seed=0, config=config)[0]
    return {
        "description": task_description(config),
        "example_problem": example.question,
        "example_solution": example.solution,
        **task_dict(config),
    }


def load_eval_problems(data: str, split: str, limit: int | None, seed: int = 0, model_path=None):
    """Problems for evaluation or sampling: synthetic (at the model's difficulty), a JSONL path or a hub id."""
    from ..errors import DataError
    from . import load_problems
    from .synthetic import generate

    if data == "synthetic":
        problems = generate(split, limit or 500, seed=seed, config=task_config_from_card(model_path))
    else:
        problems = load_problems(data, split=split, limit=limit)
    if not problems:
        raise DataError(f"no problems in {data} ({split})")
    return problems
