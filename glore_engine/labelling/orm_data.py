"""ORM data: N student samples per training question at temperature 1, graded by final answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..formats import student_prompt
from ..tasks.answers import extract_answer, is_correct
from ..tasks.steps import split_steps
from .shards import run_sharded


@dataclass
class SampleConfig:
    model: str = ""  # policy checkpoint folder (or hub id)
    data: str = "synthetic"  # "synthetic", a GSM8K-format .jsonl path, or a hub dataset id
    split: str = "test"
    limit: int = 500  # problems
    data_seed: int = 0
    n: int = 8  # samples per problem
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256  # rows per forward pass (prompts x n)
    backend: str = "transformers"  # or "vllm" (GPU, optional extra)
    calculator: bool = False  # GSM8K-paper calculator: the engine writes the result of <<expr=
    device: str = ""  # "" picks cuda when present


def dedup_samples(samples, gold: str) -> list[dict]:
    """Distinct texts with their multiplicity: correct samples often repeat word for word."""
    merged: dict[str, dict] = {}
    for s in samples:
        entry = merged.get(s.text)
        if entry is None:
            merged[s.text] = {
                "text": s.text,
                "steps": split_steps(s.text),
                "answer": extract_answer(s.text),
                "correct": is_correct(s.text, gold),
                "logprob": s.logprob,
                "n_tokens": s.n_tokens,
                "finished": s.finished,
                "count": 1,
            }
        else:
            entry["count"] += 1
    return list(merged.values())


def sample_questions(
    backend, problems, n: int, temperature: float, max_new_tokens: int, seed: int, calculator: bool = False
) -> list[dict]:
    """One record per problem: its distinct samples, each with steps, correctness and log-probability."""
    prompts = [student_prompt(p.question) for p in problems]
    outputs = backend.generate(
        prompts, n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, calculator=calculator
    )
    return [
        {
            "problem_id": p.id,
            "question": p.question,
            "gold": p.answer,
            "n_samples": n,
            "samples": dedup_samples(samples, p.answer),
        }
        for p, samples in zip(problems, outputs)
    ]


def build_orm_data(
    backend,
    problems,
    folder: str | Path,
    n: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    shard_size: int = 256,
    calculator: bool = False,
    on_shard: Callable | None = None,
) -> list[dict]:
    """Sample and grade in resumable shards under folder; returns one record per problem."""

    def process(shard, k):
        return sample_questions(backend, shard, n, temperature, max_new_tokens, seed * 7919 + k, calculator)

    return run_sharded(problems, shard_size, folder, process, on_shard)


def orm_stats(records: list[dict]) -> dict:
    """Counts that tell whether the data can teach within-question discrimination."""
    samples = [s for r in records for s in r["samples"]]
    mixed = [r for r in records if {s["correct"] for s in r["samples"]} == {True, False}]
    total = sum(s["count"] for s in samples)
    return {
        "questions": len(records),
        "distinct_samples": len(samples),
        "samples": total,
        "sample_accuracy": sum(s["count"] for s in samples if s["correct"]) / max(total, 1),
        "mixed_questions": len(mixed),
        "mixed_distinct_samples": sum(len(r["samples"]) for r in mixed),
    }
