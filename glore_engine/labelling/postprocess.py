"""The paper's post-processing of rollout labels, each rule a switch (docs/method.md section 2.2).

- consistency: a rollout verifies P_i only if it uses the intermediate result R_i;
- propagation: a positive step makes every earlier step positive;
- balancing: per prefix length, keep as many negative as positive labels (seeded downsampling).
The soft value (fraction of verifying rollouts) is kept beside the hard label.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace

from ..records import LabelledSolution


@dataclass(frozen=True)
class LabelRules:
    consistency: bool = True
    propagate: bool = True
    balance: bool = True
    seed: int = 0


def step_labels(record: LabelledSolution, rules: LabelRules) -> tuple[list[int], list[float]]:
    """Hard V* labels and soft values for every step of one labelled solution."""
    hard, soft = [], []
    for stats in record.rollouts:
        hits = stats.consistent_correct if rules.consistency else stats.correct
        hard.append(int(hits > 0))
        soft.append(hits / stats.k if stats.k else 0.0)
    hard.append(int(record.correct))  # the whole solution: its own final answer decides
    soft.append(float(record.correct))
    if rules.propagate:
        for i in range(len(hard) - 1, 0, -1):
            if hard[i]:
                hard[i - 1] = 1
    return hard, soft


def balance_masks(labels: list[list[int]], seed: int) -> list[list[float]]:
    """Per prefix length, drop labels of the majority class at random until both classes are equal."""
    by_length: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for r, row in enumerate(labels):
        for i, y in enumerate(row):
            by_length[(i, y)].append((r, i))
    masks = [[1.0] * len(row) for row in labels]
    rng = random.Random(seed)
    for length in {i for i, _ in by_length}:
        pos, neg = by_length.get((length, 1), []), by_length.get((length, 0), [])
        if not pos or not neg:
            continue  # one class only at this length: nothing to balance against, keep all
        major, minor = (pos, neg) if len(pos) > len(neg) else (neg, pos)
        for r, i in rng.sample(major, len(major) - len(minor)):
            masks[r][i] = 0.0
    return masks


def apply_rules(records: list[LabelledSolution], rules: LabelRules) -> list[LabelledSolution]:
    """Copies of the labelled solutions with `labels`, `soft_labels` and `mask` filled in."""
    pairs = [step_labels(r, rules) for r in records]
    hards = [h for h, _ in pairs]
    masks = balance_masks(hards, rules.seed) if rules.balance else [[1.0] * len(h) for h in hards]
    return [replace(r, labels=h, soft_labels=s, mask=m) for r, (h, s), m in zip(records, pairs, masks)]


def first_error(labels: list[int]) -> int:
    """Index of the first negative step, or -1 when every step is positive."""
    for i, y in enumerate(labels):
        if not y:
            return i
    return -1


def label_stats(records: list[LabelledSolution]) -> dict:
    """Positive rates by prefix length after the rules, and how many labels balancing kept."""
    out: dict = {}
    total = kept = 0
    for r in records:
        for i, (y, m) in enumerate(zip(r.labels, r.mask)):
            key = f"step{i + 1}"
            out.setdefault(key, [0, 0])
            out[key][0] += y
            out[key][1] += 1
            total += 1
            kept += m > 0
    rates = {f"positive_rate/{k}": p / n for k, (p, n) in out.items() if n}
    return {**rates, "labels": total, "labels_kept": kept}
