"""Tables of the run store: runs, their metrics and artifacts, eval cases and human annotations."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware now; SQLite hands it back naive, the records module re-attaches UTC."""
    return datetime.now(timezone.utc)


class RunStatus(str, Enum):
    """Life cycle of a run; RUNNING is never a final state."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"


VERDICTS = ("found_error", "solution", "bad_problem", "give_up")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Run(Base):
    """One command invocation (train, sample, label, evaluate, ...) with its config and outcome."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True, default=RunStatus.RUNNING.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    output_dir: Mapped[str | None] = mapped_column(Text)
    # SET NULL, not CASCADE: deleting a parent run should not silently delete its children.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None]
    host: Mapped[str | None] = mapped_column(String(255))
    # Written every few seconds by the process running it (db.lifecycle.Heartbeat); a RUNNING run
    # whose heartbeat is older than the store's timeout reads INTERRUPTED. None: rows from before.
    heartbeat_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)

    metrics: Mapped[list[Metric]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    artifacts: Mapped[list[Artifact]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    cases: Mapped[list[EvalCase]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Metric(Base):
    """One scalar logged by a run (loss, accuracy, ...), optionally at a training step."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key", "run_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    step: Mapped[int | None]
    value: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A file or folder a run produced (checkpoint, labels, samples, table) with its content hash."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int]
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvalCase(Base):
    """One evaluated problem: draft, per-step scores, refinements, the reranker's choice."""

    __tablename__ = "eval_cases"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_eval_cases_run_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int]
    problem_id: Mapped[str | None] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text, default="")
    gold: Mapped[str | None] = mapped_column(String(200))
    draft: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    # Copies of flags inside `data`, as columns so the Results tab can filter in SQL.
    draft_correct: Mapped[bool | None] = mapped_column(index=True)
    global_correct: Mapped[bool | None] = mapped_column(index=True)
    local_correct: Mapped[bool | None] = mapped_column(index=True)
    final_correct: Mapped[bool | None] = mapped_column(index=True)
    # Some candidate (draft, refinement, best-of-n sample) is correct: "reranker wrong" needs it.
    any_correct: Mapped[bool | None] = mapped_column(index=True)

    annotations: Mapped[list[Annotation]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Annotation(Base):
    """A human's judgement of a case's draft: per-step ratings, first error, verdict (PRM800K-like)."""

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("case_id", "annotator", name="uq_annotations_case_annotator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("eval_cases.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(String(100), default="default")
    step_ratings: Mapped[list[Any]] = mapped_column(default=list)
    first_error_step: Mapped[int | None]  # -1 = the annotator found no error
    verdict: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
