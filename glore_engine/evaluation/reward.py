"""Table T1: reward models against V* labels of held-out samples, plus within-question discrimination.

Columns: step-level accuracy (balanced V* labels), final-answer accuracy, pooled AUC, AUC within
a question, best-of-N rerank accuracy, and ProcessBench first-error metrics. Reference rows: the
student's summed log-probability of its own sample (no training) and a random pick.

`run_reward_eval` is the stage: it loads the named reward models and logs every row. The labels it
scores come from the held-out split (`HELD_OUT`), sampled and rolled out like the training labels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..config import NON_NEGATIVE, UNIT, check_bounds
from ..labelling.postprocess import LabelRules, apply_rules, first_error
from ..records import LabelledSolution
from ..tracking import Tracker, ensure, log_numbers
from .metrics import (
    auc,
    best_of_n,
    fmt,
    markdown_table,
    predicted_first_error,
    processbench,
    random_pick,
    within_question_auc,
)

# T1's held-out questions (OrmDataConfig keys): the test split, which the student never trained on.
HELD_OUT: dict[str, Any] = {"split": "test", "data_seed": 0, "n_questions": 300}

T1_HEADERS = [
    "model",
    "step acc",
    "final acc",
    "AUC",
    "AUC within q",
    "best-of-N",
    "error acc",
    "correct acc",
    "first-error F1",
]


@dataclass
class RewardEvalConfig:
    threshold: float = 0.5  # step score below which a step counts as an error
    consistency: bool = True  # label rules for the held-out V* labels (balancing is always on)
    propagate: bool = True
    seed: int = 0  # balancing's seeded downsampling

    def __post_init__(self):
        check_bounds(self, threshold=UNIT, seed=NON_NEGATIVE)

    def rules(self) -> LabelRules:
        return LabelRules(consistency=self.consistency, propagate=self.propagate, balance=True, seed=self.seed)


@dataclass
class RewardEval:
    name: str
    step_accuracy: float | None
    final_accuracy: float | None
    auc: float | None
    within_auc: float | None
    best_of_n: float
    first_error: dict = field(default_factory=dict)

    def row(self) -> list[str]:
        fe = self.first_error
        return [
            self.name,
            fmt(self.step_accuracy, True),
            fmt(self.final_accuracy, True),
            fmt(self.auc),
            fmt(self.within_auc),
            fmt(self.best_of_n, True),
            fmt(fe.get("error_acc"), True),
            fmt(fe.get("correct_acc"), True),
            fmt(fe.get("f1"), True),
        ]

    def metrics(self) -> dict:
        out = {
            "step_accuracy": self.step_accuracy,
            "final_accuracy": self.final_accuracy,
            "auc": self.auc,
            "within_question_auc": self.within_auc,
            "best_of_n": self.best_of_n,
        }
        out.update({f"first_error/{k}": v for k, v in self.first_error.items()})
        return {k: v for k, v in out.items() if v is not None}


def _groups(records: list[LabelledSolution], scores: list[float]):
    by_q = defaultdict(list)
    for r, s in zip(records, scores):
        by_q[r.problem_id].append((s, r.correct, r.count))
    return list(by_q.values())


def evaluate_scores(
    name: str, records: list[LabelledSolution], step_scores: list[list[float]], threshold: float = 0.5
) -> RewardEval:
    """records: rollout-labelled test solutions after apply_rules; step_scores: one list per record."""
    step_hits = step_total = 0.0
    for r, scores in zip(records, step_scores):
        for y, m, s in zip(r.labels, r.mask, scores):
            if m > 0:
                step_hits += m * ((s >= threshold) == bool(y))
                step_total += m
    finals = [scores[-1] for scores in step_scores]
    correct = [r.correct for r in records]
    final_acc = sum((f >= threshold) == y for f, y in zip(finals, correct)) / max(len(records), 1)
    groups = _groups(records, finals)
    gold_first = [first_error(r.labels) if not r.correct else -1 for r in records]
    pred_first = [predicted_first_error(scores, threshold) for scores in step_scores]
    return RewardEval(
        name,
        step_hits / step_total if step_total else None,
        final_acc,
        auc(finals, correct),
        within_question_auc([[(s, y) for s, y, _ in g] for g in groups]),
        best_of_n(groups),
        processbench(pred_first, gold_first),
    )


def logprob_baseline(records: list[LabelledSolution]) -> RewardEval:
    """The student's summed log-probability of its own sample: ranks, but has no step scores."""
    scores = [r.logprob or 0.0 for r in records]
    correct = [r.correct for r in records]
    groups = _groups(records, scores)
    return RewardEval(
        "student log-prob (no training)",
        None,
        None,
        auc(scores, correct),
        within_question_auc([[(s, y) for s, y, _ in g] for g in groups]),
        best_of_n(groups),
    )


def random_baseline(records: list[LabelledSolution]) -> RewardEval:
    groups = _groups(records, [0.0] * len(records))
    return RewardEval("random sample", None, None, None, 0.5, random_pick(groups))


def evaluate_reward_models(
    scorers: dict, labelled: list[LabelledSolution], rules: LabelRules | None = None, threshold: float = 0.5
) -> tuple[list[RewardEval], str]:
    """T1 for every named scorer on rollout-labelled held-out solutions; returns rows and Markdown."""
    from ..models.reward_model import score_together

    records = apply_rules(labelled, rules or LabelRules())
    rows = [random_baseline(records), logprob_baseline(records)]
    items = [(r.question, r.steps) for r in records]
    for name, scores in zip(scorers, score_together(list(scorers.values()), items)):
        rows.append(evaluate_scores(name, records, scores, threshold))
    n_q = len({r.problem_id for r in records})
    caption = (
        f"T1 on {len(records)} distinct held-out samples of {n_q} questions "
        f"(threshold {threshold}; step acc on balanced V* labels)"
    )
    return rows, caption + "\n\n" + markdown_table(T1_HEADERS, [row.row() for row in rows])


def run_reward_eval(
    models: dict[str, str], labelled: list[LabelledSolution], config: RewardEvalConfig, tracker: Tracker | None = None
) -> tuple[list[RewardEval], str]:
    """T1 for reward models given as {name: checkpoint folder}; every row's metrics logged as name/metric."""
    from ..models.reward_model import load_scorers

    tracker = ensure(tracker)
    scorers = load_scorers(models)
    rows, table = evaluate_reward_models(scorers, labelled, config.rules(), config.threshold)
    for row in rows:
        log_numbers(tracker, {f"{row.name}/{key}": value for key, value in row.metrics().items()})
    tracker.set_summary({"tables_md": {"T1": table}})
    return rows, table
