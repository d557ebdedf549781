"""SORM data: K verifying rollouts from every step prefix of every sampled solution (V* labels).

What is stored is raw: per prefix, how many rollouts reached the gold answer and how many of
those used the prefix's intermediate result R_i, plus one correct and one incorrect rollout text
(the local refiner's targets and drafts). The paper's post-processing (propagation, consistency,
balancing) is applied afterwards by `postprocess`, so each rule can be switched off for ablation
without sampling again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..formats import join_steps, student_prompt
from ..tasks.answers import is_correct
from ..tasks.steps import step_result, step_uses_result
from .shards import run_sharded


def prefix_prompt(question: str, steps: list[str], i: int) -> str:
    """The student prompt followed by steps 1..i (i >= 1), ready for a continuation."""
    return student_prompt(question) + join_steps(steps[:i]) + "\n"


def solutions_of(records: list[dict]) -> list[dict]:
    """Flatten question records into one entry per distinct sampled solution with steps."""
    out = []
    for r in records:
        for s in r["samples"]:
            if s["steps"]:
                out.append(
                    {
                        "problem_id": r["problem_id"],
                        "question": r["question"],
                        "gold": r["gold"],
                        "text": s["text"],
                        "steps": s["steps"],
                        "correct": s["correct"],
                        "count": s.get("count", 1),
                        "logprob": s.get("logprob"),
                    }
                )
    return out


def _rollout_stats(continuations, gold: str, result: str | None, prefix_text: str) -> dict:
    correct = consistent = 0
    pos: str | None = None
    neg: str | None = None
    for c in continuations:
        full = prefix_text + "\n" + c.text
        if is_correct(full, gold):
            correct += 1
            if result is None or step_uses_result(c.text, result):
                consistent += 1
                pos = pos or c.text
        else:
            neg = neg or c.text
    return {"k": len(continuations), "correct": correct, "consistent_correct": consistent, "pos": pos, "neg": neg}


def label_solutions(
    backend, solutions: list[dict], k: int, temperature: float, max_new_tokens: int, seed: int, calculator: bool = False
) -> list[dict]:
    """Rollouts for every prefix P_i (i < L) of each solution; identical prefixes are rolled out once."""
    unique: dict[tuple[str, str], tuple[str, int, dict]] = {}
    for sol in solutions:
        for i in range(1, len(sol["steps"])):
            key = (sol["problem_id"], join_steps(sol["steps"][:i]))
            unique.setdefault(key, (prefix_prompt(sol["question"], sol["steps"], i), i, sol))
    keys = list(unique)
    outputs = (
        backend.generate(
            [unique[key][0] for key in keys],
            n=k,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
            calculator=calculator,
        )
        if keys
        else []
    )
    stats = {}
    for key, continuations in zip(keys, outputs):
        _, i, sol = unique[key]
        stats[key] = _rollout_stats(continuations, sol["gold"], step_result(sol["steps"][i - 1]), key[1])
    labelled = []
    for sol in solutions:
        prefixes = [stats[(sol["problem_id"], join_steps(sol["steps"][:i]))] for i in range(1, len(sol["steps"]))]
        labelled.append({**sol, "results": [step_result(s) for s in sol["steps"]], "rollouts": prefixes})
    return labelled


def build_sorm_labels(
    backend,
    records: list[dict],
    folder: str | Path,
    k: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 192,
    seed: int = 0,
    shard_size: int = 64,
    calculator: bool = False,
    on_shard: Callable | None = None,
) -> list[dict]:
    """Label every distinct sample of `records` (ORM-data format) in resumable shards of solutions."""
    solutions = solutions_of(records)

    def process(shard, index):
        return label_solutions(backend, shard, k, temperature, max_new_tokens, seed * 7919 + index, calculator)

    return run_sharded(solutions, shard_size, Path(folder), process, on_shard)


def rollout_cost(labelled: list[dict]) -> dict:
    """How many prefixes and rollouts the labels took (duplicates counted once per solution)."""
    prefixes = sum(len(r["rollouts"]) for r in labelled)
    return {
        "solutions": len(labelled),
        "prefixes": prefixes,
        "rollouts": sum(p["k"] for r in labelled for p in r["rollouts"]),
    }
