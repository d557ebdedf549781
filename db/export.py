"""Exporters of annotated cases: TRL stepwise, ProcessBench, PRM800K-like JSONL, and CSV.

Labels from a human annotation: steps before the first error are good, the first error and later
steps bad; a per-step rating, where given, wins (+1 and 0 good, -1 bad). PRM800K keeps raw ratings.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .records import AnnotatedCase, AnnotationRow

SCHEMA_VERSION = 1
# The annotator judged the problem, not the draft: no step labels to learn from.
NO_LABEL_VERDICTS = ("bad_problem", "give_up")
CSV_COLUMNS = (
    "schema_version",
    "case_id",
    "run_id",
    "index",
    "problem_id",
    "question",
    "gold",
    "draft",
    "draft_correct",
    "final_correct",
    "annotator",
    "verdict",
    "first_error_step",
    "step_ratings",
    "note",
    "tags",
    "updated_at",
)


def _ratings(annotation: AnnotationRow, n_steps: int) -> list[int | None]:
    """Raw per-step ratings, padded with None to the number of steps."""
    raw = [r.get("rating") for r in annotation.step_ratings[:n_steps]]
    return raw + [None] * (n_steps - len(raw))


def human_first_error(annotation: AnnotationRow, n_steps: int) -> int | None:
    """The annotator's first wrong step, -1 if none, None if the annotation does not say."""
    if annotation.first_error_step is not None:
        return annotation.first_error_step
    ratings = _ratings(annotation, n_steps)
    if -1 in ratings:
        return ratings.index(-1)
    if (n_steps and None not in ratings) or annotation.verdict == "solution":
        return -1
    return None


def step_labels(annotation: AnnotationRow, n_steps: int) -> list[bool | None]:
    """Good/bad per step (None = unknown): from the first error, overridden by explicit ratings."""
    first = human_first_error(annotation, n_steps)
    labels: list[bool | None] = [None if first is None else (first == -1 or i < first) for i in range(n_steps)]
    for i, rating in enumerate(_ratings(annotation, n_steps)):
        if rating is not None:
            labels[i] = rating >= 0
    return labels


def _usable(row: AnnotatedCase) -> bool:
    return row.annotation.verdict not in NO_LABEL_VERDICTS


def to_trl_stepwise(rows: Iterable[AnnotatedCase]) -> list[dict[str, Any]]:
    """TRL stepwise supervision; rows without a full set of labels are left out."""
    records = []
    for row in filter(_usable, rows):
        steps = row.case.steps
        labels = step_labels(row.annotation, len(steps))
        if not steps or None in labels:
            continue
        record = {"schema_version": SCHEMA_VERSION, "prompt": row.case.question, "completions": steps, "labels": labels}
        soft = row.case.data.get("soft_labels")
        if isinstance(soft, list) and len(soft) == len(steps) and None not in soft:
            record["soft_labels"] = [float(v) for v in soft]  # separate: TRL casts `labels` to int
        records.append(record)
    return records


def to_processbench(rows: Iterable[AnnotatedCase]) -> list[dict[str, Any]]:
    """ProcessBench records: label = the human's first wrong step, -1 if the draft is right."""
    records = []
    for row in filter(_usable, rows):
        steps = row.case.steps
        label = human_first_error(row.annotation, len(steps))
        if not steps or label is None:
            continue
        correct = row.case.draft_correct if row.case.draft_correct is not None else label == -1
        records.append(
            {
                "schema_version": SCHEMA_VERSION,
                "id": row.case.problem_id or f"case-{row.case.id}",
                "problem": row.case.question,
                "steps": steps,
                "final_answer_correct": bool(correct),
                "label": label,
            }
        )
    return records


def to_prm800k(rows: Iterable[AnnotatedCase]) -> list[dict[str, Any]]:
    """PRM800K-like records: raw ratings and unsure flags per step, verdict as finish_reason."""
    records = []
    for row in rows:
        case, note = row.case, row.annotation
        steps = case.steps
        unsure = [bool(r.get("unsure")) for r in note.step_ratings[: len(steps)]]
        unsure += [False] * (len(steps) - len(unsure))
        records.append(
            {
                "schema_version": SCHEMA_VERSION,
                "question": {"problem": case.question, "ground_truth_answer": case.gold, "problem_id": case.problem_id},
                "label": {
                    "steps": [
                        {"text": t, "rating": r, "unsure": u}
                        for t, r, u in zip(steps, _ratings(note, len(steps)), unsure)
                    ],
                    "finish_reason": note.verdict,
                    "first_error_step": note.first_error_step,
                },
                "annotator": note.annotator,
                "note": note.note,
                "timestamp": note.updated_at.isoformat(),
            }
        )
    return records


@contextmanager
def _atomic(path: str | Path, newline: str | None = None) -> Iterator[Any]:
    """A text file written beside `path` and moved over it only once complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write one JSON object per line, atomically; return how many."""
    count = 0
    with _atomic(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _csv_row(row: AnnotatedCase) -> dict[str, Any]:
    case, note = row.case, row.annotation
    return {
        "schema_version": SCHEMA_VERSION,
        "case_id": case.id,
        "run_id": case.run_id,
        "index": case.index,
        "problem_id": case.problem_id,
        "question": case.question,
        "gold": case.gold,
        "draft": case.draft,
        "draft_correct": case.draft_correct,
        "final_correct": case.final_correct,
        "annotator": note.annotator,
        "verdict": note.verdict,
        "first_error_step": note.first_error_step,
        "step_ratings": json.dumps(note.step_ratings),
        "note": note.note,
        "tags": json.dumps(note.tags),
        "updated_at": note.updated_at.isoformat(),
    }


def to_csv(rows: Iterable[AnnotatedCase], path: str | Path) -> int:
    """One CSV line per annotation (lists as JSON text), atomically; return how many."""
    count = 0
    with _atomic(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(_csv_row(row))
            count += 1
    return count


JSONL_FORMATS: dict[str, Callable[[Iterable[AnnotatedCase]], list[dict[str, Any]]]] = {
    "trl": to_trl_stepwise,
    "trl_stepwise": to_trl_stepwise,
    "processbench": to_processbench,
    "prm800k": to_prm800k,
}
FORMATS = (*JSONL_FORMATS, "csv")


def export_rows(rows: Sequence[AnnotatedCase], fmt: str, path: str | Path) -> int:
    """Write rows in a named format; return how many records were written."""
    if fmt == "csv":
        return to_csv(rows, path)
    if fmt not in JSONL_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    return write_jsonl(JSONL_FORMATS[fmt](rows), path)
