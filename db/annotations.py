"""Human annotations: field validation, limits, label consistency and a race-free upsert of the
(case, annotator) row.

Every writer (the app, its API, the CLI, a script) goes through normalize_fields and check_labels,
so a label the store holds always makes sense: typed values, steps inside the draft, text within
LIMITS, and a first-error mark that agrees with the step ratings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import VERDICTS, Annotation, utcnow

FIELDS = ("step_ratings", "first_error_step", "verdict", "note", "tags")
RATINGS = (-1, 0, 1)
RATING_TEXT = {1: "+1", 0: "0", -1: "−1"}
# In characters. The annotator column is String(100); a note is a paragraph or two, not a file.
LIMITS = {"annotator": 100, "note": 10_000, "tag": 64, "tags": 50}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int: refuse it as a number


def _check_text(what: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; at most {limit} are kept")
    return value


def check_annotator(name: Any) -> str:
    """The annotator's name, stripped: 1..LIMITS["annotator"] characters, no control characters."""
    name = _check_text("annotator name", name, 10**9).strip()
    if not name:
        raise ValueError("annotator name is empty")
    if len(name) > LIMITS["annotator"]:
        raise ValueError(f"annotator name is {len(name)} characters; at most {LIMITS['annotator']} are allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("annotator name has control characters (newline, tab, ...)")
    return name


def check_step_index(step: Any, n_steps: int, case_id: int) -> int:
    """A 0-based step index inside a draft of n_steps steps."""
    if not _is_int(step):
        raise ValueError(f"step index must be an integer (0-based), got {step!r}")
    if not 0 <= step < n_steps:
        span = f"0..{n_steps - 1}" if n_steps else "none"
        raise ValueError(f"step index {step} is out of range: case {case_id} has {n_steps} steps ({span})")
    return step


def normalize_rating(item: Any) -> dict[str, Any]:
    """{"rating": -1|0|1|None, "unsure": bool} from such a dict or a bare rating."""
    if isinstance(item, Mapping):
        rating, unsure = item.get("rating"), item.get("unsure", False)
    else:
        rating, unsure = item, False
    if rating is not None and not (_is_int(rating) and rating in RATINGS):
        raise ValueError(f"step rating must be -1, 0, 1 or None, got {rating!r}")
    if not isinstance(unsure, bool):
        raise ValueError(f"a step's unsure must be true or false, got {unsure!r}")
    return {"rating": rating, "unsure": unsure}


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"tags must be a list of text, got {type(value).__name__}")
    if len(value) > LIMITS["tags"]:
        raise ValueError(f"{len(value)} tags; at most {LIMITS['tags']} are kept")
    return [_check_text("a tag", str(t) if _is_int(t) else t, LIMITS["tag"]) for t in value]


def normalize_fields(fields: Mapping[str, Any], n_steps: int | None = None) -> dict[str, Any]:
    """Validated annotation fields; only the ones given, so a save can update part of a row."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown annotation field(s) {unknown}; known: {', '.join(FIELDS)}")
    out = dict(fields)
    if "step_ratings" in out:
        ratings = out["step_ratings"] or []
        if not isinstance(ratings, list | tuple):
            raise ValueError(f"step_ratings must be a list, got {type(ratings).__name__}")
        out["step_ratings"] = [normalize_rating(r) for r in ratings]
        if n_steps is not None and len(out["step_ratings"]) > n_steps:
            raise ValueError(f"{len(out['step_ratings'])} step ratings for a draft of {n_steps} steps")
    if out.get("first_error_step") is not None:
        step = out["first_error_step"]
        last = n_steps - 1 if n_steps is not None else None
        if not _is_int(step) or step < -1 or (last is not None and step > last):
            raise ValueError(f"first_error_step must be -1 (no error) or a step index 0..{last}, got {step!r}")
    verdict = out.get("verdict")
    if verdict is not None and (not isinstance(verdict, str) or verdict not in VERDICTS):
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)} or None, got {verdict!r}")
    if out.get("note") is not None:
        out["note"] = _check_text("note", out["note"], LIMITS["note"])
    if "tags" in out:
        out["tags"] = _tags(out["tags"])
    return out


def check_labels(fields: Mapping[str, Any]) -> None:
    """Refuse a first-error mark the step ratings contradict (labels would disagree on export).

    The first error may be rated −1 or left unrated, never +1 or 0 (both count as good steps);
    no step before it may be rated −1; a draft marked "no error" has no step rated −1.
    Steps are named 1-based here, as the app shows them.
    """
    first = fields.get("first_error_step")
    if first is None:
        return
    ratings = [r.get("rating") for r in fields.get("step_ratings") or []]
    bad = [i for i, r in enumerate(ratings) if r == -1]
    if first == -1:
        if bad:
            raise ValueError(
                f"step {bad[0] + 1} is rated −1 but the draft is marked as having no error: "
                "mark its first error, or change the rating"
            )
        return
    if first < len(ratings) and ratings[first] in (0, 1):
        raise ValueError(
            f"step {first + 1} is rated {RATING_TEXT[ratings[first]]} and marked as the first error: "
            "rate it −1 (or clear its rating), or move the first-error mark"
        )
    if bad and bad[0] < first:
        raise ValueError(
            f"step {bad[0] + 1} is rated −1 but the first error is marked at step {first + 1}: "
            f"move the mark to step {bad[0] + 1}, or change the rating"
        )


def editable_fields(row: Annotation | None) -> dict[str, Any]:
    """The editable fields of an annotation (ORM row or AnnotationRow), or empty ones for None."""
    if row is None:
        return {"step_ratings": [], "first_error_step": None, "verdict": None, "note": None, "tags": []}
    return {
        "step_ratings": [dict(r) for r in row.step_ratings or []],
        "first_error_step": row.first_error_step,
        "verdict": row.verdict,
        "note": row.note,
        "tags": list(row.tags or []),
    }


def with_rating(fields: Mapping[str, Any], step: int, rating: int | None, unsure: bool | None = None) -> dict:
    """step_ratings with one step (a checked 0-based index) set, padded with unrated steps."""
    ratings = [dict(r) for r in fields.get("step_ratings") or []]
    ratings += [{"rating": None, "unsure": False} for _ in range(step + 1 - len(ratings))]
    keep = bool(ratings[step].get("unsure")) if unsure is None else unsure
    ratings[step] = {"rating": rating, "unsure": keep}
    return {"step_ratings": ratings}


def upsert(session: Session, case_id: int, annotator: str, values: dict[str, Any]) -> None:
    """Insert or update the row in one statement where the dialect can, so concurrent saves never clash."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        row = {
            "step_ratings": [],
            "tags": [],
            **values,
            "case_id": case_id,
            "annotator": annotator,
            "created_at": now,
            "updated_at": now,
        }
        stmt = (
            insert(Annotation)
            .values(**row)
            .on_conflict_do_update(index_elements=["case_id", "annotator"], set_={**values, "updated_at": now})
        )
        session.execute(stmt)
        return
    _select_then_write(session, case_id, annotator, values, now)


def _select_then_write(session: Session, case_id: int, annotator: str, values: dict, now) -> None:
    """Fallback for dialects without ON CONFLICT: lock the row if it exists, else insert it."""
    query = select(Annotation).where(Annotation.case_id == case_id, Annotation.annotator == annotator)
    row = session.scalars(query.with_for_update()).first()
    if row is None:
        session.add(Annotation(case_id=case_id, annotator=annotator, created_at=now, updated_at=now, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
    session.flush()
