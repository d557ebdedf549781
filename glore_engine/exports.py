"""SORM labels in the formats peers read (SPEC section 6): TRL stepwise, ProcessBench, Math-Shepherd."""

from __future__ import annotations

from pathlib import Path

from .formats import student_prompt
from .labelling.postprocess import LabelRules, apply_rules, first_error

SCHEMA_VERSION = 1
FORMATS = ("trl", "processbench", "math-shepherd")
SHEPHERD_TAG = "ки"


def to_trl(record: dict) -> dict:
    """TRL stepwise supervision; soft values in their own field (TRL casts labels to int)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "prompt": student_prompt(record["question"]),
        "completions": list(record["steps"]),
        "labels": [bool(y) for y in record["labels"]],
        "soft_labels": [float(v) for v in record["soft_labels"]],
        "problem_id": record["problem_id"],
    }


def to_processbench(record: dict, index: int) -> dict:
    label = -1 if record["correct"] else first_error(record["labels"])
    return {
        "schema_version": SCHEMA_VERSION,
        "id": f"{record['problem_id']}-{index}",
        "problem": record["question"],
        "steps": list(record["steps"]),
        "final_answer_correct": bool(record["correct"]),
        "label": label,
    }


def to_math_shepherd(record: dict) -> dict:
    text = "".join(f"{s} {SHEPHERD_TAG}\n" for s in record["steps"])
    label = "".join(f"{s} {'+' if y else '-'}\n" for s, y in zip(record["steps"], record["labels"]))
    return {
        "schema_version": SCHEMA_VERSION,
        "input": f"{record['question']} {text}",
        "label": f"{record['question']} {label}",
    }


def export_labels(labelled: list[dict], fmt: str, path: str | Path, rules: LabelRules | None = None) -> int:
    """Write post-processed labels (balancing off: every step keeps its label) as JSONL; returns rows."""
    from .errors import ConfigError
    from .labelling.shards import write_jsonl_atomic

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    rules = rules or LabelRules()
    records = apply_rules(labelled, LabelRules(rules.consistency, rules.propagate, False, rules.seed))
    if fmt == "trl":
        rows = [to_trl(r) for r in records]
    elif fmt == "processbench":
        rows = [to_processbench(r, i) for i, r in enumerate(records)]
    else:
        rows = [to_math_shepherd(r) for r in records]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(Path(path), rows)
    return len(rows)
