"""Case filters of the Results tab, as SQL conditions so counts and pages stay in the database."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, exists, func, or_, select

from .models import Annotation, EvalCase

FILTERS = (
    "draft_wrong",
    "fixed_by_global",
    "fixed_by_local",
    "broken_by_refinement",
    "reranker_wrong",
    "disagreement",
    "tag",
    "annotated",
    "unannotated",
    "case_ids",
)


def _annotated_by(value: Any) -> ColumnElement[bool]:
    """Some annotation of the case exists; a string value names the annotator, True means anyone."""
    cond = Annotation.case_id == EvalCase.id
    if isinstance(value, str):
        cond = and_(cond, Annotation.annotator == value)
    return exists(select(Annotation.id).where(cond))


def _disagreement(value: Any) -> ColumnElement[bool]:
    """The SORM's first error (data["first_error"], missing = -1 = none) differs from the human's mark.

    The Results tab uses glore_engine.evaluation.processbench's rule instead (through case_ids): it
    also reads a first error from the step ratings and leaves unscored cases out."""
    sorm_first = func.coalesce(EvalCase.data["first_error"].as_integer(), -1)
    cond = and_(
        Annotation.case_id == EvalCase.id,
        Annotation.first_error_step.is_not(None),
        Annotation.first_error_step != sorm_first,
    )
    if isinstance(value, str):
        cond = and_(cond, Annotation.annotator == value)
    return exists(select(Annotation.id).where(cond))


def _has_tag(tag: str) -> ColumnElement[bool]:
    """Tags are a JSON list; match the tag's own JSON encoding inside the text (portable, no JSON1)."""
    needle = json.dumps(str(tag)).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(EvalCase.tags, String).like(f"%{needle}%", escape="\\")


def _condition(name: str, value: Any) -> ColumnElement[bool]:
    c = EvalCase
    if name == "draft_wrong":
        return c.draft_correct.is_(False)
    if name == "fixed_by_global":
        return and_(c.draft_correct.is_(False), c.global_correct.is_(True))
    if name == "fixed_by_local":
        return and_(c.draft_correct.is_(False), c.local_correct.is_(True))
    if name == "broken_by_refinement":
        return and_(c.draft_correct.is_(True), c.final_correct.is_(False))
    if name == "reranker_wrong":
        return and_(c.any_correct.is_(True), c.final_correct.is_(False))
    if name == "disagreement":
        return _disagreement(value)
    if name == "tag":
        return _has_tag(value)
    if name == "annotated":
        return _annotated_by(value)
    if name == "case_ids":  # cases picked by a rule computed outside SQL (glore_engine's first-error rule)
        return EvalCase.id.in_([int(i) for i in value])
    return ~_annotated_by(value)  # "unannotated"


def case_conditions(filters: Mapping[str, Any] | None) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter dict; a falsy value switches its filter off (but case_ids=[] matches none)."""
    unknown = sorted(set(filters or {}) - set(FILTERS))
    if unknown:
        raise ValueError(f"unknown case filter(s) {unknown}; known: {', '.join(FILTERS)}")
    items = (filters or {}).items()
    return [_condition(n, v) for n, v in items if v or (n == "case_ids" and v is not None)]


def is_failure() -> ColumnElement[bool]:
    """Cases a reviewer should see first: the draft or the final answer is wrong."""
    return or_(EvalCase.draft_correct.is_(False), EvalCase.final_correct.is_(False))
