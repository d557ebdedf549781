"""Annotation endpoints for scripts and gradio_client (no UI): the review queue, rating a step, saving
fields. They share the Annotate tab's worker, so a script and a browser tab never overwrite each other.

Steps are 0-based indices here. With --auth the annotator is the logged-in user (another name is
refused). A wrong type or a refused value comes back as one line (gradio_client raises AppError).
"""

from __future__ import annotations

import dataclasses
import functools

import gradio as gr

from . import review
from .state import Workbench
from .ui import EXPECTED, annotator_for, error_text

ANNOTATE_QUEUE = {"concurrency_id": "annotate", "concurrency_limit": 1}


def annotation_dict(row) -> dict:
    data = dataclasses.asdict(row)
    data["created_at"], data["updated_at"] = row.created_at.isoformat(), row.updated_at.isoformat()
    return data


def _reported(fn):
    """Engine/store errors and wrong types reach the client as their own one-line message."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (*EXPECTED, TypeError) as exc:
            raise gr.Error(error_text(exc)) from None

    return call


def whole_number(name: str, value) -> int:
    """An id or index given as a JSON number: 3 or 3.0, never 1.5, "3", true or null."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return value


def rating_value(value) -> int | None:
    if value is None:
        return None
    value = whole_number("rating", value)
    if value not in (-1, 0, 1):
        raise ValueError(f"rating must be -1, 0, 1 or null (clear), got {value!r}")
    return value


def register(bench: Workbench) -> None:
    """Add the endpoints to the Blocks being built."""

    def review_queue(run_id: int, annotator: str = "default", request: gr.Request = None) -> dict:  # type: ignore[assignment]
        """The run's review queue (failures first), the cases this annotator saved, and where to resume."""
        run_id, who, store = whole_number("run_id", run_id), annotator_for(request, annotator), bench.store()
        done = sorted({a.case_id for a in store.annotations(run_id, who)})
        return {
            "queue": store.review_queue(run_id, who),
            "annotated": done,
            "resume": review.resume(store, run_id, who),
        }

    def rate_step(
        case_id: int,
        step_index: int,
        rating: int | None,
        annotator: str = "default",
        unsure: bool = False,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Rate one step, by its 0-based index, -1, 0, +1 or null (clear), with an unsure flag; saved at once."""
        if not isinstance(unsure, bool):
            raise ValueError(f"unsure must be true or false, got {unsure!r}")
        row = bench.store().rate_step(
            whole_number("case_id", case_id),
            whole_number("step_index", step_index),
            rating_value(rating),
            annotator_for(request, annotator),
            unsure=unsure,
        )
        return annotation_dict(row)

    def save_annotation(case_id: int, fields: dict, annotator: str = "default", request: gr.Request = None) -> dict:  # type: ignore[assignment]
        """Upsert the given fields (step_ratings, first_error_step (0-based index, -1: no error), verdict,
        note, tags); the others stay."""
        if not isinstance(fields, dict):
            raise ValueError(f"fields must be an object of annotation fields, got {type(fields).__name__}")
        row = bench.store().save_annotation(
            whole_number("case_id", case_id), annotator_for(request, annotator), **fields
        )
        return annotation_dict(row)

    for fn in (review_queue, rate_step, save_annotation):
        gr.api(_reported(fn), api_name=fn.__name__, **ANNOTATE_QUEUE)
