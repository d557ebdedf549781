"""Plain records the Store returns: frozen dataclasses, safe to keep after the session closes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, overload

from .models import Annotation, Artifact, EvalCase, Metric, Run


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: datetime | None) -> datetime | None: ...
def _utc(value: datetime | None) -> datetime | None:
    """SQLite drops the timezone on the way back; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


@dataclass(frozen=True)
class RunInfo:
    """A run row: what ran, with which config, how it ended."""

    id: int
    kind: str
    name: str | None
    config: dict[str, Any]
    status: str
    created_at: datetime
    finished_at: datetime | None
    output_dir: str | None
    parent_id: int | None
    error: str | None
    pid: int | None
    host: str | None
    summary: dict[str, Any] = field(default_factory=dict)
    heartbeat_at: datetime | None = None  # last sign of life from the process running it

    @property
    def duration_s(self) -> float | None:
        """Wall time of a finished run (an interrupted one: until its last heartbeat); None while it runs."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()


@dataclass(frozen=True)
class MetricRow:
    """One logged scalar."""

    id: int
    run_id: int
    key: str
    step: int | None
    value: float
    created_at: datetime


@dataclass(frozen=True)
class ArtifactInfo:
    """A file or folder a run produced, with its content hash and size."""

    id: int
    run_id: int
    kind: str
    path: str
    sha256: str
    bytes: int
    meta: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class CaseRow:
    """One evaluated problem with its draft, scores, candidates and correctness flags."""

    id: int
    run_id: int
    index: int
    problem_id: str | None
    question: str
    gold: str | None
    draft: str
    data: dict[str, Any]
    tags: list[Any]
    draft_correct: bool | None
    global_correct: bool | None
    local_correct: bool | None
    final_correct: bool | None
    any_correct: bool | None

    @property
    def steps(self) -> list[str]:
        """The draft's steps: data["steps"] when the evaluator stored them, else the draft's lines."""
        steps = self.data.get("steps")
        if isinstance(steps, list):
            return [str(s) for s in steps]
        return [line for line in self.draft.splitlines() if line.strip()]


@dataclass(frozen=True)
class AnnotationRow:
    """A human's judgement of one case's draft."""

    id: int
    case_id: int
    annotator: str
    step_ratings: list[dict[str, Any]]
    first_error_step: int | None
    verdict: str | None
    note: str | None
    tags: list[Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AnnotatedCase:
    """A case joined with one annotation of it: the unit every exporter writes."""

    case: CaseRow
    annotation: AnnotationRow

    def record(self) -> dict[str, Any]:
        """Plain values (JSON types only) for glore_engine.exports.export_annotations.

        Steps are 0-based indices here and in every file: first_error_index -1 means "no error",
        None "not said".
        """
        case, note = self.case, self.annotation
        soft = case.data.get("soft_labels")
        return {
            "case_id": case.id,
            "run_id": case.run_id,
            "index": case.index,
            "problem_id": case.problem_id,
            "question": case.question,
            "gold": case.gold,
            "draft": case.draft,
            "steps": case.steps,
            "soft_labels": list(soft) if isinstance(soft, list) else None,
            "draft_correct": case.draft_correct,
            "final_correct": case.final_correct,
            "annotator": note.annotator,
            "step_ratings": [dict(r) for r in note.step_ratings],
            "first_error_index": note.first_error_step,
            "verdict": note.verdict,
            "note": note.note,
            "tags": list(note.tags),
            "updated_at": note.updated_at.isoformat(),
        }


def run_info(row: Run) -> RunInfo:
    return RunInfo(
        id=row.id,
        kind=row.kind,
        name=row.name,
        config=dict(row.config or {}),
        status=row.status,
        created_at=_utc(row.created_at),
        finished_at=_utc(row.finished_at),
        output_dir=row.output_dir,
        parent_id=row.parent_id,
        error=row.error,
        pid=row.pid,
        host=row.host,
        summary=dict(row.summary or {}),
        heartbeat_at=_utc(row.heartbeat_at),
    )


def metric_row(row: Metric) -> MetricRow:
    return MetricRow(
        id=row.id, run_id=row.run_id, key=row.key, step=row.step, value=row.value, created_at=_utc(row.created_at)
    )


def artifact_info(row: Artifact) -> ArtifactInfo:
    return ArtifactInfo(
        id=row.id,
        run_id=row.run_id,
        kind=row.kind,
        path=row.path,
        sha256=row.sha256,
        bytes=row.bytes,
        meta=dict(row.meta or {}),
        created_at=_utc(row.created_at),
    )


def case_row(row: EvalCase) -> CaseRow:
    return CaseRow(
        id=row.id,
        run_id=row.run_id,
        index=row.index,
        problem_id=row.problem_id,
        question=row.question,
        gold=row.gold,
        draft=row.draft,
        data=dict(row.data or {}),
        tags=list(row.tags or []),
        draft_correct=row.draft_correct,
        global_correct=row.global_correct,
        local_correct=row.local_correct,
        final_correct=row.final_correct,
        any_correct=row.any_correct,
    )


def annotation_row(row: Annotation) -> AnnotationRow:
    return AnnotationRow(
        id=row.id,
        case_id=row.case_id,
        annotator=row.annotator,
        step_ratings=[dict(r) for r in row.step_ratings or []],
        first_error_step=row.first_error_step,
        verdict=row.verdict,
        note=row.note,
        tags=list(row.tags or []),
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )
