"""Every interchange format, in one place: SORM labels (TRL stepwise, ProcessBench, Math-Shepherd) and
human-annotated cases (TRL stepwise, ProcessBench, PRM800K-like JSONL, CSV).

One record builder per format (stepwise_record, processbench_record, ...), so a draft labelled by
rollouts and the same draft labelled by a person give the same record. Annotated cases come in as
plain records (the store's AnnotatedCase.record(): no store import here).

Steps are numbered from 0 in every file (`first_error_index`, ProcessBench `label`; -1 = no error);
only text for people says "step 1". Every record carries SCHEMA_VERSION:
  1: first release;
  2: `first_error_step` renamed `first_error_index` (PRM800K, CSV), TRL prompts of annotated cases
     are the student prompt (as for SORM labels), `conflict` in PRM800K and CSV.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .formats import student_prompt
from .labelling.postprocess import LabelRules, apply_rules, first_error
from .records import LabelledSolution

SCHEMA_VERSION = 2
FORMATS = ("trl", "processbench", "math-shepherd")  # SORM labels
ANNOTATION_FORMATS = ("trl", "trl_stepwise", "processbench", "prm800k", "csv")
SHEPHERD_TAG = "ки"
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
    "first_error_index",
    "step_ratings",
    "conflict",
    "note",
    "tags",
    "updated_at",
)


# ---- one builder per format --------------------------------------------------------------------
def stepwise_record(
    question: str,
    steps: Sequence[str],
    labels: Sequence[bool],
    soft_labels: Sequence[float] | None = None,
    problem_id: str | None = None,
) -> dict[str, Any]:
    """TRL stepwise supervision: the student prompt, one completion per step, a bool per step.

    Soft values go in their own field (TRL casts `labels` to int)."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "prompt": student_prompt(question),
        "completions": list(steps),
        "labels": [bool(y) for y in labels],
    }
    if soft_labels is not None:
        record["soft_labels"] = [float(v) for v in soft_labels]
    record["problem_id"] = problem_id
    return record


def processbench_record(
    record_id: str, question: str, steps: Sequence[str], label: int, correct: bool
) -> dict[str, Any]:
    """ProcessBench: `label` = the 0-based index of the first wrong step, -1 if none."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": record_id,
        "problem": question,
        "steps": list(steps),
        "final_answer_correct": bool(correct),
        "label": label,
    }


def math_shepherd_record(question: str, steps: Sequence[str], labels: Sequence[bool]) -> dict[str, Any]:
    text = "".join(f"{s} {SHEPHERD_TAG}\n" for s in steps)
    label = "".join(f"{s} {'+' if y else '-'}\n" for s, y in zip(steps, labels))
    return {"schema_version": SCHEMA_VERSION, "input": f"{question} {text}", "label": f"{question} {label}"}


# ---- SORM labels ---------------------------------------------------------------------------------
def to_trl(record: LabelledSolution) -> dict:
    labels = [bool(y) for y in record.labels]
    return stepwise_record(record.question, record.steps, labels, record.soft_labels, record.problem_id)


def to_processbench(record: LabelledSolution, index: int) -> dict:
    label = -1 if record.correct else first_error(record.labels)
    return processbench_record(f"{record.problem_id}-{index}", record.question, record.steps, label, record.correct)


def to_math_shepherd(record: LabelledSolution) -> dict:
    return math_shepherd_record(record.question, record.steps, [bool(y) for y in record.labels])


def export_labels(labelled: list[LabelledSolution], fmt: str, path: str | Path, rules: LabelRules | None = None) -> int:
    """Write post-processed labels (balancing off: every step keeps its label) as JSONL; returns rows."""
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
    return write_jsonl(rows, path)


# ---- human labels --------------------------------------------------------------------------------
# An annotated case is a mapping with: case_id, run_id, index, problem_id, question, gold, draft, steps,
# soft_labels (list or None), draft_correct, final_correct, annotator, step_ratings ([{"rating": -1|0|1|
# None, "unsure": bool}]), first_error_index (0-based, -1 no error, None not said), verdict, note, tags,
# updated_at (ISO text).
def _ratings(row: Mapping[str, Any]) -> list[int | None]:
    """Raw per-step ratings, padded with None to the number of steps."""
    n = len(row["steps"])
    raw = [r.get("rating") for r in (row.get("step_ratings") or [])[:n]]
    return raw + [None] * (n - len(raw))


def label_conflict(row: Mapping[str, Any]) -> str | None:
    """Why the first-error mark and the ratings disagree (1-based step in the text), or None.

    The store refuses such saves; rows written before that rule, or around the store, still get here.
    """
    first, ratings = row.get("first_error_index"), _ratings(row)
    if first is None:
        return None
    if first == -1:
        bad = [i for i, r in enumerate(ratings) if r == -1]
        return f"step {bad[0] + 1} is rated -1 but the draft is marked as having no error" if bad else None
    if first < len(ratings) and ratings[first] in (0, 1):
        return f"step {first + 1} is rated {ratings[first]:+d} and marked as the first error"
    if -1 in ratings[:first]:
        return f"step {ratings.index(-1) + 1} is rated -1 before the first error marked at step {first + 1}"
    return None


def human_first_error(row: Mapping[str, Any]) -> int | None:
    """The annotator's first wrong step (0-based), -1 if none, None if the annotation does not say."""
    if row.get("first_error_index") is not None:
        return row["first_error_index"]
    ratings = _ratings(row)
    if -1 in ratings:
        return ratings.index(-1)
    if (ratings and None not in ratings) or row.get("verdict") == "solution":
        return -1
    return None


def human_step_labels(row: Mapping[str, Any]) -> list[bool | None]:
    """Good/bad per step (None = unknown): from the first error, overridden by explicit ratings."""
    first = human_first_error(row)
    labels: list[bool | None] = [
        None if first is None else (first == -1 or i < first) for i in range(len(row["steps"]))
    ]
    for i, rating in enumerate(_ratings(row)):
        if rating is not None:
            labels[i] = rating >= 0
    return labels


def _labelled(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Rows a label format can use: a verdict about the draft, steps, and no conflict."""
    for row in rows:
        if row.get("verdict") not in NO_LABEL_VERDICTS and row["steps"] and label_conflict(row) is None:
            yield row


def annotations_to_trl(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """TRL stepwise supervision; rows without a full set of labels are left out."""
    records = []
    for row in _labelled(rows):
        known = human_step_labels(row)
        if None in known:
            continue
        labels = [bool(y) for y in known]
        soft = row.get("soft_labels")
        usable_soft = isinstance(soft, list) and len(soft) == len(labels) and None not in soft
        records.append(
            stepwise_record(row["question"], row["steps"], labels, soft if usable_soft else None, row["problem_id"])
        )
    return records


def annotations_to_processbench(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ProcessBench records: label = the human's first wrong step (0-based), -1 if the draft is right."""
    records = []
    for row in _labelled(rows):
        label = human_first_error(row)
        if label is None:
            continue
        correct = row["draft_correct"] if row.get("draft_correct") is not None else label == -1
        record_id = row.get("problem_id") or f"case-{row['case_id']}"
        records.append(processbench_record(record_id, row["question"], row["steps"], label, correct))
    return records


def annotations_to_prm800k(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PRM800K-like records: raw ratings and unsure flags per step, verdict as finish_reason."""
    records = []
    for row in rows:
        steps = row["steps"]
        unsure = [bool(r.get("unsure")) for r in (row.get("step_ratings") or [])[: len(steps)]]
        unsure += [False] * (len(steps) - len(unsure))
        records.append(
            {
                "schema_version": SCHEMA_VERSION,
                "question": {
                    "problem": row["question"],
                    "ground_truth_answer": row["gold"],
                    "problem_id": row["problem_id"],
                },
                "label": {
                    "steps": [{"text": t, "rating": r, "unsure": u} for t, r, u in zip(steps, _ratings(row), unsure)],
                    "finish_reason": row.get("verdict"),
                    "first_error_index": row.get("first_error_index"),
                    "conflict": label_conflict(row),
                },
                "annotator": row["annotator"],
                "note": row.get("note"),
                "timestamp": row["updated_at"],
            }
        )
    return records


# ---- CSV ----------------------------------------------------------------------------------------
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def neutralise_cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula, prefixed with ' (shown as text); numbers stay."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    values = {
        "schema_version": SCHEMA_VERSION,
        **{key: row.get(key) for key in CSV_COLUMNS if key not in ("schema_version", "step_ratings", "tags")},
        "step_ratings": json.dumps(row.get("step_ratings") or [], ensure_ascii=False),
        "tags": json.dumps(row.get("tags") or [], ensure_ascii=False),
        "conflict": label_conflict(row),
    }
    return {key: neutralise_cell(value) for key, value in values.items()}


def annotations_to_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """One CSV line per annotation (lists as JSON text, formulas neutralised), atomically; returns lines."""
    count = 0
    with _atomic(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(_csv_row(row))
            count += 1
    return count


_JSONL = {
    "trl": annotations_to_trl,
    "trl_stepwise": annotations_to_trl,
    "processbench": annotations_to_processbench,
    "prm800k": annotations_to_prm800k,
}


def export_annotations(rows: Iterable[Mapping[str, Any]], fmt: str, path: str | Path) -> int:
    """Write annotated cases (plain records) in a named format; return how many records were written."""
    if fmt not in ANNOTATION_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r} for annotations (choose from {', '.join(ANNOTATION_FORMATS)})"
        )
    if fmt == "csv":
        return annotations_to_csv(rows, path)
    return write_jsonl(_JSONL[fmt](rows), path)


# ---- writing ------------------------------------------------------------------------------------
@contextmanager
def _atomic(path: str | Path, newline: str | None = None) -> Iterator[Any]:
    """A text file written beside `path` and moved over it only once complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
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
