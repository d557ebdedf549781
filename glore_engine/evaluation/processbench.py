"""ProcessBench for any reward model against first-error labels: human ones from Annotate, or a file.

A labelled draft has steps and a first-error label (0-based, -1 = no error). A reward model's first
error is the first step it scores below the threshold (metrics.predicted_first_error). ProcessBench's
metrics (Zheng et al., 2024): accuracy on the erroneous drafts (the exact step found), accuracy on
the correct ones (no step flagged), their harmonic mean F1; beside them, agreement: the share of all
drafts whose model first error is the labelled one.

`first_errors_agree` is the one definition of "the model's first error is the human's": eval-rm
--processbench / --run and the Results tab's "first error: SORM ≠ human" filter both use it.
Annotated cases become labelled drafts by the ProcessBench export's own rules
(exports.annotations_to_processbench), so the benchmark is exactly what Export writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..exports import annotations_to_processbench
from ..tracking import Tracker, ensure, log_numbers
from .metrics import fmt, markdown_table, predicted_first_error, processbench

HEADERS = ["model", "drafts", "erroneous", "error acc", "correct acc", "F1", "agreement"]
STORED = "stored SORM scores"


@dataclass(frozen=True)
class LabelledDraft:
    """One ProcessBench row, with the SORM scores stored with its case when it came from a run."""

    id: str
    problem: str
    steps: list[str]
    label: int  # first wrong step, 0-based; -1 = none
    final_answer_correct: bool | None = None
    stored_sorm: list[float] | None = None
    threshold: float | None = None  # the threshold the stored scores were marked at


def first_errors_agree(step_scores: list[float], threshold: float, label: int) -> bool:
    """Whether a reward model's first error (first step below threshold, -1 none) is the labelled one."""
    return predicted_first_error(step_scores, threshold) == label


def case_scores(data: Mapping[str, Any]) -> dict[str, Any]:
    """The SORM step scores and threshold stored with a case (eval runs and scored imports), else {}."""
    draft = data.get("draft")
    sorm = draft.get("sorm_steps") if isinstance(draft, Mapping) else None
    steps = data.get("steps")
    if not sorm or (isinstance(steps, list) and len(sorm) != len(steps)):
        return {}
    return {"sorm_steps": [float(s) for s in sorm], "threshold": float(data.get("threshold", 0.5))}


def from_annotations(records: Iterable[Mapping[str, Any]]) -> list[LabelledDraft]:
    """Annotated case records (AnnotatedCase.record(), plus case_scores) that carry a first-error label."""
    out = []
    for row in records:
        exported = annotations_to_processbench([row])
        if not exported:
            continue  # no label: not said, bad problem, gave up, or contradicting ratings
        pb = exported[0]
        out.append(
            LabelledDraft(
                f"case-{row['case_id']}",
                pb["problem"],
                list(pb["steps"]),
                int(pb["label"]),
                pb["final_answer_correct"],
                row.get("sorm_steps"),
                row.get("threshold"),
            )
        )
    return out


def disagreeing_cases(records: Iterable[Mapping[str, Any]]) -> list[int]:
    """Case ids whose stored SORM first error is not the human's (cases without scores or label: left out)."""
    return [
        int(d.id.removeprefix("case-"))
        for d in from_annotations(records)
        if d.stored_sorm is not None and not first_errors_agree(d.stored_sorm, d.threshold or 0.5, d.label)
    ]


def read_processbench(path: str | Path) -> list[LabelledDraft]:
    """ProcessBench JSONL rows (`problem`, `steps`, `label`; `id`, `final_answer_correct` optional)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                out.append(_labelled_row(line, f"{path}:{number}"))
    if not out:
        raise DataError(f"{path} has no rows")
    return out


def _labelled_row(line: str, where: str) -> LabelledDraft:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with 'problem', 'steps' and 'label'")
    problem, steps, label = row.get("problem"), row.get("steps"), row.get("label")
    if not isinstance(problem, str) or not problem.strip():
        raise DataError(f"{where}: 'problem' must be a non-empty string")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DataError(f"{where}: 'steps' must be a non-empty list of strings")
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        raise DataError(f"{where}: 'label' must be -1 or a step index below {len(steps)}, got {label!r}")
    correct = row.get("final_answer_correct")
    return LabelledDraft(str(row.get("id", where)), problem, steps, label, None if correct is None else bool(correct))


@dataclass(frozen=True)
class FirstErrorEval:
    name: str
    n: int
    n_wrong: int
    error_acc: float | None
    correct_acc: float | None
    f1: float | None
    agreement: float | None

    def row(self) -> list[str]:
        return [
            self.name,
            str(self.n),
            str(self.n_wrong),
            fmt(self.error_acc, True),
            fmt(self.correct_acc, True),
            fmt(self.f1, True),
            fmt(self.agreement, True),
        ]

    def metrics(self) -> dict[str, float]:
        values = {
            "error_acc": self.error_acc,
            "correct_acc": self.correct_acc,
            "f1": self.f1,
            "agreement": self.agreement,
            "n": self.n,
        }
        return {k: v for k, v in values.items() if v is not None}


def evaluate_first_errors(
    name: str, drafts: list[LabelledDraft], step_scores: list[list[float]], thresholds: list[float]
) -> FirstErrorEval:
    """ProcessBench metrics and agreement of one model's step scores against the labels."""
    predicted = [predicted_first_error(s, t) for s, t in zip(step_scores, thresholds)]
    gold = [d.label for d in drafts]
    pb = processbench(predicted, gold)
    agree = sum(first_errors_agree(s, t, d.label) for s, t, d in zip(step_scores, thresholds, drafts))
    # undefined, not 0, where a side has no drafts
    error_acc = pb["error_acc"] if pb["n_wrong"] else None
    correct_acc = pb["correct_acc"] if pb["n_right"] else None
    f1 = pb["f1"] if error_acc is not None and correct_acc is not None else None
    return FirstErrorEval(
        name, len(drafts), pb["n_wrong"], error_acc, correct_acc, f1, agree / len(drafts) if drafts else None
    )


def processbench_eval(
    scorers: Mapping[str, Any], drafts: list[LabelledDraft], threshold: float = 0.5
) -> tuple[list[FirstErrorEval], str]:
    """Every named scorer (RewardScorer-like: .score(items)) on the labelled drafts, plus the stored
    SORM scores of run cases when every draft has them; rows and a Markdown table."""
    if not drafts:
        raise DataError("no labelled drafts: annotate first errors (Annotate tab) or pass a ProcessBench file")
    rows = []
    items = [(d.problem, d.steps) for d in drafts]
    for name, scorer in scorers.items():
        rows.append(evaluate_first_errors(name, drafts, scorer.score(items), [threshold] * len(drafts)))
    stored = [d for d in drafts if d.stored_sorm is not None]
    if stored:
        scores = [d.stored_sorm or [] for d in stored]
        rows.append(evaluate_first_errors(STORED, stored, scores, [d.threshold or 0.5 for d in stored]))
    n_wrong = sum(d.label >= 0 for d in drafts)
    caption = (
        f"ProcessBench on {len(drafts)} labelled drafts ({n_wrong} with an error; threshold {threshold}): "
        "error acc = exact first error found on erroneous drafts, correct acc = no step flagged on "
        "correct ones, F1 = their harmonic mean, agreement = model first error = label on all drafts"
    )
    return rows, caption + "\n\n" + markdown_table(HEADERS, [r.row() for r in rows])


def run_processbench_eval(
    models: Mapping[str, str], drafts: list[LabelledDraft], threshold: float = 0.5, tracker: Tracker | None = None
) -> tuple[list[FirstErrorEval], str]:
    """`glore-train eval-rm --processbench/--run`: reward models given as {name: checkpoint}, logged."""
    from ..models.reward_model import load_scorers

    tracker = ensure(tracker)
    scorers = load_scorers(models)
    rows, table = processbench_eval(scorers, drafts, threshold)
    for row in rows:
        log_numbers(tracker, {f"{row.name}/processbench/{k}": v for k, v in row.metrics().items()})
    tracker.set_summary({"tables_md": {"ProcessBench": table}})
    return rows, table
