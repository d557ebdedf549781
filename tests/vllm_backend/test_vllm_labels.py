"""ORM samples and SORM labels from vLLM agree with the transformers backend within sampling noise.

"Within noise" is a two-proportion z-test per quantity: |z| < 3.29 (two-sided p = 0.001 per test).
SORM labels are compared per step on the prefix-level V* label (some rollout verifies the prefix,
with the consistency rule, before propagation), which is independent across prefixes.
"""

from __future__ import annotations

import math

from glore_engine.records import LabelledSolution

Z_LIMIT = 3.29


def z_score(pos_a: int, n_a: int, pos_b: int, n_b: int) -> float:
    pooled = (pos_a + pos_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return 0.0 if se == 0 else (pos_a / n_a - pos_b / n_b) / se


def step_positives(labelled: list[LabelledSolution]) -> dict[int, tuple[int, int]]:
    """step i -> (prefixes whose rollouts verified them, prefixes)."""
    out: dict[int, list[int]] = {}
    for record in labelled:
        for i, stats in enumerate(record.rollouts, start=1):
            entry = out.setdefault(i, [0, 0])
            entry[0] += stats.consistent_correct > 0
            entry[1] += 1
    return {i: (p, n) for i, (p, n) in out.items()}


def test_orm_samples_agree_within_noise(engine, hf, problems):
    from glore_engine.labelling.orm_data import orm_stats, sample_questions

    ours = sample_questions(engine, problems, n=8, temperature=1.0, max_new_tokens=192, seed=0)
    theirs = sample_questions(hf, problems, n=8, temperature=1.0, max_new_tokens=192, seed=0)
    a, b = orm_stats(ours), orm_stats(theirs)
    n = len(problems) * 8
    assert a["samples"] == b["samples"] == n
    z = z_score(round(a["sample_accuracy"] * n), n, round(b["sample_accuracy"] * n), n)
    assert abs(z) < Z_LIMIT, (a, b, z)
    assert 0.05 < a["sample_accuracy"] < 0.95  # a mixed student: the test can see a difference
    tokens = lambda records: [s.n_tokens for r in records for s in r.samples]  # noqa: E731
    mean_a, mean_b = sum(tokens(ours)) / len(tokens(ours)), sum(tokens(theirs)) / len(tokens(theirs))
    assert abs(mean_a - mean_b) < 0.15 * mean_b  # tokens per distinct sample mean the same


def test_sorm_labels_agree_within_noise_per_step(engine, hf, problems):
    from glore_engine.labelling.orm_data import sample_questions
    from glore_engine.labelling.rollouts import label_solutions, solutions_of

    records = sample_questions(hf, problems, n=4, temperature=1.0, max_new_tokens=192, seed=1)
    solutions = solutions_of(records)  # the same samples for both backends
    ours = step_positives(label_solutions(engine, solutions, 8, 1.0, 192, seed=0))
    theirs = step_positives(label_solutions(hf, solutions, 8, 1.0, 192, seed=0))
    assert ours.keys() == theirs.keys()
    compared = 0
    for step, (pos_a, n_a) in ours.items():
        pos_b, n_b = theirs[step]
        assert n_a == n_b
        if n_a >= 30:
            compared += 1
            z = z_score(pos_a, n_a, pos_b, n_b)
            assert abs(z) < Z_LIMIT, (step, pos_a, pos_b, n_a, z)
    assert compared >= 2
