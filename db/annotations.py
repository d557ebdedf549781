"""Human annotations: field validation and a race-free upsert of the (case, annotator) row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import VERDICTS, Annotation, utcnow

FIELDS = ("step_ratings", "first_error_step", "verdict", "note", "tags")
RATINGS = (-1, 0, 1, None)


def normalize_rating(item: Any) -> dict[str, Any]:
    """{"rating": -1|0|1|None, "unsure": bool} from such a dict or a bare rating."""
    if isinstance(item, Mapping):
        rating, unsure = item.get("rating"), bool(item.get("unsure", False))
    else:
        rating, unsure = item, False
    # bool is an int: True would silently become +1, so refuse it.
    if isinstance(rating, bool) or rating not in RATINGS:
        raise ValueError(f"step rating must be -1, 0, 1 or None, got {rating!r}")
    return {"rating": rating, "unsure": unsure}


def normalize_fields(fields: Mapping[str, Any], n_steps: int | None = None) -> dict[str, Any]:
    """Validated annotation fields; only the ones given, so a save can update part of a row."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown annotation field(s) {unknown}; known: {', '.join(FIELDS)}")
    out = dict(fields)
    if "step_ratings" in out:
        out["step_ratings"] = [normalize_rating(r) for r in out["step_ratings"] or []]
        if n_steps is not None and len(out["step_ratings"]) > n_steps:
            raise ValueError(f"{len(out['step_ratings'])} step ratings for a draft of {n_steps} steps")
    if out.get("first_error_step") is not None:
        step = out["first_error_step"]
        last = n_steps - 1 if n_steps is not None else None
        if isinstance(step, bool) or not isinstance(step, int) or step < -1 or (last is not None and step > last):
            raise ValueError(f"first_error_step must be -1 (no error) or a step index 0..{last}, got {step!r}")
    if out.get("verdict") is not None and out["verdict"] not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)} or None, got {out['verdict']!r}")
    if "tags" in out:
        out["tags"] = [str(t) for t in out["tags"] or []]
    return out


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
