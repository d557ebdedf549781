"""Drafts from any model, brought in as a case set: read a JSONL or CSV, split, grade, score, store.

A row holds the question, the draft (one reasoning step per line), and optionally the gold answer,
the model that wrote the draft and an id. GSM8K's own rows (`question`, `answer`) are read as a gold
solution used as the draft, with the gold answer taken from its `####` line.

Drafts are split into steps by the pipeline's rule (tasks.steps.split_steps), graded with the
project's grader when the gold is known (tasks.answers.is_correct), scored by an ORM and a SORM
when they are given, else left unscored for annotation only. The result is one list of cases in the
format of db.Store.add_cases, stored in one call (one transaction): an interrupted import leaves no
case behind. Bad rows are counted and reported by line number; the good ones are imported.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .pipeline import CRITIQUE_THRESHOLD, MAX_QUESTION_CHARS, first_below
from .tasks.answers import canonical, extract_answer, is_correct
from .tasks.steps import split_steps
from .tracking import Tracker, ensure, log_numbers

MAX_DRAFT_CHARS = 20_000  # far beyond any reward model's context; a 1 MB "draft" is a broken row
MAX_FIELD_CHARS = 1_000  # gold, model and id
MAX_BAD_SHOWN = 20
SCORE_BATCH = 64
# Accepted column names, first found wins; `answer` alone is GSM8K's gold solution (see read_drafts).
QUESTION_KEYS = ("question", "problem", "prompt")
DRAFT_KEYS = ("draft", "solution", "completion", "response", "output")
GOLD_KEYS = ("gold", "gold_answer", "ground_truth_answer", "reference")
MODEL_KEYS = ("model", "generator")
ID_KEYS = ("id", "problem_id", "idx")


@dataclass(frozen=True)
class DraftRow:
    """One good row of a drafts file."""

    line: int  # 1-based line of the file (CSV: the line the record starts on)
    question: str
    draft: str
    gold: str | None = None  # canonical number
    model: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import read, kept and left out."""

    path: str
    rows: int = 0  # rows read (good + bad)
    imported: int = 0
    bad: list[BadRow] = field(default_factory=list)
    graded: int = 0
    correct: int = 0
    scored: int = 0
    unscored: list[BadRow] = field(default_factory=list)  # good rows the scorers refused, and why
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "rows": self.rows,
            "imported": self.imported,
            "bad_rows": len(self.bad),
            "graded": self.graded,
            "correct": self.correct,
            "scored": self.scored,
            "seconds": round(self.seconds, 3),
        }

    def lines(self, limit: int = MAX_BAD_SHOWN) -> list[str]:
        """Text for people: one line of totals, then the bad rows by line number."""
        out = [
            f"imported {self.imported} of {self.rows} rows from {self.path} in {self.seconds:.1f} s "
            f"({self.graded} graded, {self.correct} correct; {self.scored} scored)"
        ]
        if self.bad:
            out.append(f"{len(self.bad)} bad row(s) left out:")
            out += [f"  line {b.line}: {b.reason}" for b in self.bad[:limit]]
            if len(self.bad) > limit:
                out.append(f"  ... and {len(self.bad) - limit} more")
        if self.unscored:
            out.append(f"{len(self.unscored)} imported row(s) left unscored:")
            out += [f"  line {b.line}: {b.reason}" for b in self.unscored[:limit]]
        return out


# ---- reading ------------------------------------------------------------------------------------
def _first(record: dict, keys: tuple[str, ...], empty_ok: bool = False) -> tuple[str | None, Any]:
    """The first of `keys` with a value; empty_ok: else the first present but empty (an "empty" row)."""
    for key in keys:
        if record.get(key) not in (None, ""):
            return key, record[key]
    if empty_ok:
        for key in keys:
            if record.get(key) is not None:
                return key, record[key]
    return None, None


def _text(value: Any, name: str, limit: int) -> str:
    """A field as text: strings as they are, numbers as written; anything else is a bad row."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"'{name}' must be text, got {type(value).__name__}")
    text = str(value)
    if len(text) > limit:
        raise DataError(f"'{name}' is {len(text):,} characters; the limit is {limit:,}")
    return text


def parse_row(record: Any, line: int) -> DraftRow:
    """One record -> DraftRow, or DataError with the reason (no line number: the caller adds it)."""
    if not isinstance(record, dict):
        raise DataError("expected an object with 'question' and 'draft'")
    q_key, question = _first(record, QUESTION_KEYS, empty_ok=True)
    d_key, draft = _first(record, DRAFT_KEYS, empty_ok=True)
    g_key, gold = _first(record, GOLD_KEYS)
    if d_key is None and record.get("answer") not in (None, ""):
        # GSM8K: `answer` is a gold solution ending "#### n": the draft, and its answer the gold
        d_key, draft = "answer", record["answer"]
        if g_key is None:
            g_key, gold = "answer", extract_answer(str(draft)) if isinstance(draft, str) else None
            if gold is None:
                raise DataError("'answer' has no '#### n' line to read the gold answer from")
    elif g_key is None and record.get("answer") not in (None, ""):
        g_key, gold = "answer", record["answer"]
    if q_key is None:
        raise DataError("missing 'question'")
    if d_key is None:
        raise DataError("missing 'draft'")
    question = _text(question, q_key, MAX_QUESTION_CHARS).strip()
    draft = _text(draft, d_key, MAX_DRAFT_CHARS)
    if not question:
        raise DataError("empty 'question'")
    if not split_steps(draft):
        raise DataError(f"empty '{d_key}': a draft needs at least one non-empty line")
    gold_text = None
    if g_key is not None:
        raw = _text(gold, g_key, MAX_FIELD_CHARS)
        gold_text = canonical(raw.rsplit("####", 1)[-1].strip())
        if gold_text is None:
            raise DataError(f"gold answer {raw[:40]!r} is not a number")
    _, model = _first(record, MODEL_KEYS)
    _, row_id = _first(record, ID_KEYS)
    return DraftRow(
        line=line,
        question=question,
        draft="\n".join(split_steps(draft)),  # one step per line, as the pipeline writes drafts
        gold=gold_text,
        model=None if model is None else _text(model, "model", MAX_FIELD_CHARS),
        id=None if row_id is None else _text(row_id, "id", MAX_FIELD_CHARS),
    )


def _jsonl_records(handle: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_DRAFT_CHARS * 4:
            yield number, DataError(f"the line is {len(line):,} characters; a row's limit is {MAX_DRAFT_CHARS:,}")
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, DataError(f"not valid JSON ({exc.msg})")


def _csv_records(handle: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(64 * 1024 * 1024)  # a huge cell is a bad row (reported), not a crashed import
    reader = csv.DictReader(handle)
    if not reader.fieldnames:
        return
    start = 2
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, DataError(f"unreadable CSV ({exc})")
            start = reader.line_num + 1
            continue
        if None in record:
            yield start, DataError(f"{len(record[None])} more cell(s) than the header has")
        elif any(v is not None and v.strip() for v in record.values()):
            yield start, {k: v for k, v in record.items() if v is not None}
        start = reader.line_num + 1


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise DataError(f"{path}: expected a .jsonl or .csv file of drafts")


def read_drafts(path: str | Path) -> tuple[list[DraftRow], list[BadRow]]:
    """The good rows and the bad ones (with their line numbers and reasons) of a drafts file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    kind = file_kind(path)
    good: list[DraftRow] = []
    bad: list[BadRow] = []
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        records = _jsonl_records(handle) if kind == "jsonl" else _csv_records(handle)
        for line, record in records:
            try:
                if isinstance(record, DataError):
                    raise record
                good.append(parse_row(record, line))
            except DataError as exc:
                bad.append(BadRow(line, str(exc)))
    if not good and not bad:
        raise DataError(f"{path} has no rows")
    return good, bad


# ---- grading, scoring, cases --------------------------------------------------------------------
@dataclass
class DraftScores:
    orm: list[float]
    sorm: list[float]


def score_drafts(
    rows: list[DraftRow],
    orm,
    sorm,
    batch_size: int = SCORE_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> list[DraftScores | str]:
    """ORM and SORM step scores per row, in batches; a row the scorers refuse gets the reason instead."""
    from .models.reward_model import score_together

    out: list[DraftScores | str] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        items = [(r.question, split_steps(r.draft)) for r in chunk]
        try:
            out += [DraftScores(o, s) for o, s in zip(*score_together([orm, sorm], items))]
        except DataError:  # one draft too long for the scorers: score the batch one by one
            for item in items:
                try:
                    orm_steps, sorm_steps = score_together([orm, sorm], [item])
                    out.append(DraftScores(orm_steps[0], sorm_steps[0]))
                except DataError as exc:
                    out.append(str(exc))
        if progress:
            progress(len(out), len(rows))
    return out


def draft_case(
    row: DraftRow, index: int, scores: DraftScores | str | None = None, threshold: float = CRITIQUE_THRESHOLD
) -> dict[str, Any]:
    """A stored case (db.Store.add_cases format) for one imported draft.

    The draft is the case's final answer too (there is no refinement), so the review queue puts
    wrong drafts first. `data["draft"]` has the pipeline Candidate's fields, so the Annotate tab shows
    the scores beside the steps; `data["first_error"]` is the SORM's, at `threshold`.
    """
    steps = split_steps(row.draft)
    correct = is_correct(row.draft, row.gold) if row.gold is not None else None
    draft: dict[str, Any] = {
        "kind": "draft",
        "text": row.draft,
        "steps": steps,
        "answer": extract_answer(row.draft),
        "orm_steps": [],
        "sorm_steps": [],
        "correct": correct,
    }
    data: dict[str, Any] = {"source": "import", "model": row.model, "line": row.line, "steps": steps}
    data["threshold"] = threshold
    if isinstance(scores, DraftScores):
        draft["orm_steps"], draft["sorm_steps"] = list(scores.orm), list(scores.sorm)
        data["first_error"] = first_below(scores.sorm, threshold)
        data["first_error_orm"] = first_below(scores.orm, threshold)
    elif isinstance(scores, str):
        data["unscored"] = scores
    data["draft"] = draft
    return {
        "index": index,
        "problem_id": row.id,
        "question": row.question,
        "gold": row.gold,
        "draft": row.draft,
        "data": data,
        "draft_correct": correct,
        "final_correct": correct,
        "any_correct": correct,
    }


def import_drafts(
    path: str | Path,
    tracker: Tracker | None = None,
    scorers: tuple[Any, Any] | None = None,
    threshold: float = CRITIQUE_THRESHOLD,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Read, grade, optionally score (scorers = (orm, sorm) RewardScorers) and store a drafts file.

    Every case goes to the tracker in one log_cases call (one transaction in the store).
    A file with no good row is a DataError that names the first bad lines.
    """
    tracker = ensure(tracker)
    started = time.perf_counter()
    rows, bad = read_drafts(path)
    report = ImportReport(str(path), rows=len(rows) + len(bad), bad=bad)
    if not rows:
        shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:3])
        raise DataError(f"{path}: no good rows ({len(bad)} bad: {shown})")
    scores: list[DraftScores | str | None] = [None] * len(rows)
    if scorers is not None:
        scores = list(score_drafts(rows, *scorers, progress=progress))
    cases = [draft_case(r, i, s, threshold) for i, (r, s) in enumerate(zip(rows, scores))]
    report.imported = tracker.log_cases(cases) or len(cases)
    report.graded = sum(c["draft_correct"] is not None for c in cases)
    report.correct = sum(bool(c["draft_correct"]) for c in cases)
    report.scored = sum(isinstance(s, DraftScores) for s in scores)
    report.unscored = [BadRow(r.line, s) for r, s in zip(rows, scores) if isinstance(s, str)]
    report.seconds = time.perf_counter() - started
    log_numbers(tracker, {"import/" + k: v for k, v in report.summary().items() if k != "file"})
    tracker.set_summary({"import": report.summary(), "bad_rows": [b.__dict__ for b in bad[:100]]})
    return report


def load_scorers(family: str | None = None, orm: str | None = None, sorm: str | None = None):
    """(orm, sorm) RewardScorers from a family folder or two checkpoints; None when none is given."""
    if family and (orm or sorm):
        raise DataError("give a family folder or --orm and --sorm, not both")
    if family:
        from .family import require_family

        folder = require_family(family)
        orm, sorm = str(folder / "orm"), str(folder / "sorm")
    if not orm and not sorm:
        return None
    if not (orm and sorm):
        raise DataError("scoring needs both an ORM and a SORM (or a family folder)")
    from .models.reward_model import load_scorers, share_backbones

    pair = load_scorers({"orm": orm}, roles=("orm",))["orm"], load_scorers({"sorm": sorm}, roles=("sorm",))["sorm"]
    share_backbones(pair)
    return pair


def write_drafts(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Rows as a drafts JSONL (what read_drafts reads); returns how many (tests and the benchmark)."""
    from .exports import write_jsonl

    return write_jsonl(rows, path)
