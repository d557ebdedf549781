"""Annotation endpoints for scripts and gradio_client (no UI): the review queue, rating a step, saving
fields. They share the Annotate tab's worker, so a script and a browser tab never overwrite each other."""

from __future__ import annotations

import dataclasses
import functools

import gradio as gr

from . import review
from .state import Workbench
from .ui import EXPECTED, error_text

ANNOTATE_QUEUE = {"concurrency_id": "annotate", "concurrency_limit": 1}


def annotation_dict(row) -> dict:
    data = dataclasses.asdict(row)
    data["created_at"], data["updated_at"] = row.created_at.isoformat(), row.updated_at.isoformat()
    return data


def _reported(fn):
    """Engine/store errors reach the client as their own one-line message."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EXPECTED as exc:
            raise gr.Error(error_text(exc)) from None

    return call


def register(bench: Workbench) -> None:
    """Add the endpoints to the Blocks being built."""

    def review_queue(run_id: int, annotator: str = "default") -> dict:
        """The run's review queue (failures first), the cases this annotator saved, and where to resume."""
        store = bench.store()
        done = sorted({a.case_id for a in store.annotations(run_id, annotator)})
        return {
            "queue": store.review_queue(run_id, annotator),
            "annotated": done,
            "resume": review.resume(store, run_id, annotator),
        }

    def rate_step(
        case_id: int, step: int, rating: int | None, annotator: str = "default", unsure: bool = False
    ) -> dict:
        """Rate one step (0-based) -1, 0, +1 or None (clear), with an unsure flag; saved at once."""

        def change(fields):
            out = review.with_rating(fields, step, rating)
            out["step_ratings"][step]["unsure"] = bool(unsure)
            return out

        return annotation_dict(bench.update_annotation(case_id, annotator, change))

    def save_annotation(case_id: int, fields: dict, annotator: str = "default") -> dict:
        """Upsert the given fields (step_ratings, first_error_step, verdict, note, tags); others stay."""
        return annotation_dict(bench.update_annotation(case_id, annotator, lambda _current: dict(fields)))

    for fn in (review_queue, rate_step, save_annotation):
        gr.api(_reported(fn), api_name=fn.__name__, **ANNOTATE_QUEUE)
