"""The "when" curve: what refining only the drafts the ORM doubts buys, against refining every draft.

For an ORM threshold t, a draft whose ORM score is below t is refined (global and local), and the
ORM then picks the highest-scoring of {draft, global, local}; any other draft is the final answer
as it stands. "Always refine" reranks all three for every draft: the pipeline's headline method.
Everything here is computed from an evaluation's stored cases (their candidates' ORM scores and
correctness), so no model runs and any stored evaluation can be swept afterwards.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .metrics import markdown_table

DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PLOT_THRESHOLDS = tuple(i / 100 for i in range(101))  # 0.00, 0.01, ..., 1.00
REFINEMENT_KINDS = ("global", "local")


@dataclass(frozen=True)
class WhenCase:
    """One evaluated problem as the sweep needs it: the draft and its refinements, scored and judged."""

    draft_score: float
    draft_correct: bool
    refinements: tuple[tuple[float, bool], ...]  # (ORM score, correct) of the global and local refinement

    def final_correct(self, refine: bool) -> bool:
        """Correctness of the answer given: the draft, or the ORM's pick among draft and refinements.

        Ties go to the draft (it comes first), as in the pipeline's rerank.
        """
        if not refine:
            return self.draft_correct
        best_score, best_correct = self.draft_score, self.draft_correct
        for score, correct in self.refinements:
            if score > best_score:
                best_score, best_correct = score, correct
        return best_correct


@dataclass(frozen=True)
class WhenPoint:
    """The outcome of one policy over all cases; threshold None is "always refine"."""

    threshold: float | None
    n: int
    refined: int  # drafts refined
    correct: int  # final answers correct
    broken: int  # correct drafts whose final answer is wrong
    fixed: int  # wrong drafts whose final answer is right
    correct_drafts: int
    wrong_drafts: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def refined_share(self) -> float:
        return self.refined / self.n if self.n else 0.0

    @property
    def broken_rate(self) -> float:
        """Of the correct drafts, the share the rerank replaced by a wrong refinement."""
        return self.broken / self.correct_drafts if self.correct_drafts else 0.0

    @property
    def fixed_rate(self) -> float:
        """Of the wrong drafts, the share whose final answer is right."""
        return self.fixed / self.wrong_drafts if self.wrong_drafts else 0.0

    @property
    def label(self) -> str:
        return "always" if self.threshold is None else f"ORM < {self.threshold:g}"

    def record(self) -> dict[str, Any]:
        """Flat values for CSV and JSON: the counts and the rates."""
        return {
            **asdict(self),
            "accuracy": self.accuracy,
            "refined_share": self.refined_share,
            "broken_rate": self.broken_rate,
            "fixed_rate": self.fixed_rate,
        }


def _score(candidate: Mapping[str, Any]) -> float:
    if "orm_score" in candidate:
        return float(candidate["orm_score"])
    steps = candidate.get("orm_steps") or []
    return float(steps[-1]) if steps else 0.0  # a stepless candidate scores 0, as in the pipeline


def when_case(data: Mapping[str, Any]) -> WhenCase | None:
    """A stored case's data (pipeline.to_case) as a WhenCase; None when correctness is unknown (no gold)."""
    by_kind: dict[Any, Any] = {c.get("kind"): c for c in data.get("candidates") or [] if isinstance(c, Mapping)}
    if not by_kind:  # cases stored before the candidates list: the full candidate records
        by_kind = {
            "draft": data.get("draft"),
            "global": data.get("global_refinement"),
            "local": data.get("local_refinement"),
        }
    draft = by_kind.get("draft")
    refinements = [by_kind.get(k) for k in REFINEMENT_KINDS]
    if not isinstance(draft, Mapping) or not all(isinstance(r, Mapping) for r in refinements):
        raise DataError("a stored case lacks its draft or refinements: it is not a pipeline evaluation case")
    if draft.get("correct") is None:
        return None
    return WhenCase(
        _score(draft),
        bool(draft["correct"]),
        tuple((_score(r), bool(r.get("correct"))) for r in refinements if isinstance(r, Mapping)),
    )


def when_cases(datas: Iterable[Mapping[str, Any]]) -> list[WhenCase]:
    """Every judged case; cases without a gold answer cannot say what a policy gains and are left out."""
    return [c for c in (when_case(d) for d in datas) if c is not None]


def when_point(cases: Sequence[WhenCase], threshold: float | None) -> WhenPoint:
    """Refine the drafts scored below threshold (all of them for None), rerank, and count the outcome."""
    refined = correct = broken = fixed = 0
    for case in cases:
        refine = threshold is None or case.draft_score < threshold
        final = case.final_correct(refine)
        refined += refine
        correct += final
        broken += case.draft_correct and not final
        fixed += not case.draft_correct and final
    good = sum(c.draft_correct for c in cases)
    return WhenPoint(threshold, len(cases), refined, correct, broken, fixed, good, len(cases) - good)


def when_curve(cases: Sequence[WhenCase], thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> list[WhenPoint]:
    """One point per threshold (ascending), then "always refine" last."""
    if not cases:
        raise DataError("no judged cases: the when curve needs evaluation cases with gold answers")
    return [when_point(cases, t) for t in sorted(set(thresholds))] + [when_point(cases, None)]


def parse_thresholds(text: str) -> list[float]:
    """ "0.1,0.5,0.9" -> [0.1, 0.5, 0.9]; each in [0, 1]."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DataError(f"thresholds must be numbers separated by commas, got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise DataError(f"thresholds must be between 0 and 1, got {text!r}")
    return values


def when_table(points: Sequence[WhenPoint]) -> str:
    """Markdown: one row per policy, rates in % with the counts behind them."""
    rows = [
        [
            p.label,
            f"{100 * p.accuracy:.1f}",
            f"{100 * p.refined_share:.1f}",
            f"{p.broken} ({100 * p.broken_rate:.1f} %)",
            f"{p.fixed} ({100 * p.fixed_rate:.1f} %)",
        ]
        for p in points
    ]
    n = points[0].n if points else 0
    good = points[0].correct_drafts if points else 0
    title = f"When to refine: {n} problems, {good} correct drafts, {n - good} wrong"
    headers = ["refine when", "accuracy %", "refined %", "correct drafts broken", "wrong drafts fixed"]
    return title + "\n\n" + markdown_table(headers, rows)


def write_csv(points: Sequence[WhenPoint], path: str | Path) -> Path:
    """The curve as CSV, one row per policy (threshold empty for "always")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [p.record() for p in points]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    tmp.replace(path)  # a half-written CSV never takes the name
    return path


def run_curve(store, run_id: int, thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> list[WhenPoint]:
    """The curve of one stored evaluation run (store: anything with glore_db.Store's `cases`)."""
    cases = store.cases(run_id, limit=None)
    if not cases:
        raise DataError(f"run {run_id} has no evaluation cases: `glore-train eval` stores them")
    return when_curve(when_cases(c.data for c in cases), thresholds)
