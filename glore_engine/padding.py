"""Length runs: items sorted by length, cut into runs that are each padded only to their own longest.

A batch padded to its longest item pays for the padding in every matmul (and for its square in
attention): the refiners' prompts of a 50-draft Inspect batch were 61-67 % real tokens, a batch of
50 drafts for the reward models about two thirds. Each extra run is one more forward pass, so a
batch is cut into at most MOST_RUNS runs of at least FEWEST_ITEMS items. The prompt prefill
(`generation/decoding.py`) and reward-model scoring (`models/reward_model.py`) both cut this way.
"""

from __future__ import annotations

import math

MOST_RUNS = 4
FEWEST_ITEMS = 8


def length_runs(order: list[int], batch_size: int | None = None, most: int | None = None) -> list[list[int]]:
    """`order` (item indices sorted by length) cut into runs of near-equal size, in order: up to
    `most` (MOST_RUNS) runs of at least FEWEST_ITEMS items, and more where a run would exceed batch_size."""
    if not order:
        return []
    most = MOST_RUNS if most is None else most
    count = max(1, min(most, len(order) // FEWEST_ITEMS))
    if batch_size:
        count = max(count, math.ceil(len(order) / batch_size))
    base, extra = divmod(len(order), count)
    runs, start = [], 0
    for k in range(count):
        size = base + (1 if k < extra else 0)
        runs.append(order[start : start + size])
        start += size
    return runs
