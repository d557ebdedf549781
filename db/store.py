"""The run store: one Store class over one database, returning plain records, never live ORM rows."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from . import annotations as ann
from .engine import display_url, make_engine, readable_errors, resolve_url, sqlite_path
from .errors import StoreError
from .filters import case_conditions, is_failure
from .hashing import content_hash
from .lifecycle import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    Heartbeat,
    RunHandle,
    as_seen,
    run_context,
    stale_cutoff,
)
from .lifecycle import stale_text as _stale_text
from .models import Annotation, Artifact, EvalCase, Metric, Run, RunStatus, utcnow
from .records import (
    AnnotatedCase,
    AnnotationRow,
    ArtifactInfo,
    CaseRow,
    MetricRow,
    RunInfo,
    annotation_row,
    artifact_info,
    case_row,
    metric_row,
    run_info,
)
from .schema import create_or_upgrade

RECONCILE_TEXT = "process ended without closing the run"
FINAL_STATUSES = {s.value for s in RunStatus} - {RunStatus.RUNNING.value}
CASE_FLAGS = ("draft_correct", "global_correct", "local_correct", "final_correct")
CASE_KEYS = {"index", "problem_id", "question", "gold", "draft", "data", "tags", "any_correct", *CASE_FLAGS}


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this host (signal 0 probes without killing)."""
    if not pid or pid <= 0:
        return False
    if os.name == "nt":  # signal 0 would terminate the process there: never reconcile on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _any_correct(item: Mapping[str, Any], data: Mapping[str, Any]) -> bool | None:
    """Some candidate is correct: from data["candidates"] when present, else from the three flags."""
    candidates = data.get("candidates")
    if isinstance(candidates, list) and any(isinstance(c, Mapping) and "correct" in c for c in candidates):
        return any(bool(c.get("correct")) for c in candidates if isinstance(c, Mapping))
    flags = [item.get(k) for k in ("draft_correct", "global_correct", "local_correct")]
    return None if all(f is None for f in flags) else any(bool(f) for f in flags)


def _optional(convert, value):
    return None if value is None else convert(value)


def _case_values(run_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    """A row for eval_cases from an evaluator's dict; flags fall back to the same keys inside data."""
    unknown = sorted(set(item) - CASE_KEYS)
    if unknown:
        raise ValueError(f"unknown eval case key(s) {unknown}; known: {', '.join(sorted(CASE_KEYS))}")
    if "index" not in item:
        raise ValueError("every eval case needs an 'index'")
    data = dict(item.get("data") or {})
    # bool() and str() because evaluators hand over numpy bools and integer problem ids.
    values = {k: _optional(bool, item.get(k, data.get(k))) for k in CASE_FLAGS}
    values.update(
        run_id=run_id,
        index=int(item["index"]),
        problem_id=_optional(str, item.get("problem_id")),
        question=item.get("question") or "",
        gold=_optional(str, item.get("gold")),
        draft=item.get("draft") or "",
        data=data,
        tags=[str(t) for t in item.get("tags") or []],
    )
    values["any_correct"] = item["any_correct"] if "any_correct" in item else _any_correct(values, data)
    return values


class Store:
    """Runs, metrics, artifacts, eval cases and annotations in one SQLAlchemy database.

    `url` is any SQLAlchemy url; default $GLORE_DB, else sqlite:///$GLORE_HOME/glore.db.
    `busy_timeout_s` is how long a write waits for another writer before raising StoreError.
    Runs this store starts get a heartbeat every `heartbeat_interval_s`; a RUNNING run whose heartbeat
    is older than `heartbeat_timeout_s` reads INTERRUPTED (db.lifecycle). An in-memory database lives
    and dies with this process, so there nothing goes stale and nothing beats.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        busy_timeout_s: float = 30.0,
        echo: bool = False,
        reconcile: bool = True,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
        heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
    ):
        self.url = resolve_url(url)
        self.engine = make_engine(self.url, busy_timeout_s=busy_timeout_s, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        in_memory = self.engine.url.get_backend_name() == "sqlite" and sqlite_path(self.engine.url) is None
        # (one shared connection in memory: a second thread's commit would end the first's transaction)
        self.heartbeat_timeout_s: float | None = None if in_memory else heartbeat_timeout_s
        self._heartbeat = None if in_memory else Heartbeat(self.beat, heartbeat_interval_s)
        try:
            with readable_errors(self.url):
                create_or_upgrade(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        if reconcile:
            self.reconcile()

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections (the store can still be used; it reconnects)."""
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on error, driver errors made readable."""
        with readable_errors(self.url), self._sessions() as session, session.begin():
            yield session

    # ----- runs -------------------------------------------------------------------------------

    def start_run(
        self,
        kind: str,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        parent_id: int | None = None,
        output_dir: str | Path | None = None,
    ) -> int:
        """Insert a RUNNING run owned by this process; return its id."""
        row = Run(
            kind=kind,
            name=name,
            config=dict(config or {}),
            status=RunStatus.RUNNING.value,
            parent_id=parent_id,
            output_dir=None if output_dir is None else str(output_dir),
            pid=os.getpid(),
            host=socket.gethostname(),
            summary={},
            heartbeat_at=utcnow(),
        )
        with self._session() as s:
            s.add(row)
            s.flush()
            run_id = row.id
        if self._heartbeat is not None:  # this process keeps it alive until finish_run
            self._heartbeat.add(run_id)
        return run_id

    def beat(self, run_ids: Sequence[int]) -> None:
        """Stamp the heartbeat of these runs (those still RUNNING): their process is alive."""
        with self._session() as s:
            s.execute(
                update(Run)
                .where(Run.id.in_(list(run_ids)), Run.status == RunStatus.RUNNING.value)
                .values(heartbeat_at=utcnow())
            )

    def finish_run(
        self, run_id: int, status: str = "FINISHED", error: str | None = None, summary: Mapping[str, Any] | None = None
    ) -> RunInfo:
        """Close a run with a final status (FINISHED, FAILED, INTERRUPTED), merging any summary."""
        status = getattr(status, "value", status)
        if status not in FINAL_STATUSES:
            raise ValueError(f"final run status must be one of {sorted(FINAL_STATUSES)}, got {status!r}")
        if self._heartbeat is not None:  # first: should the write fail, the run goes stale, not RUNNING on
            self._heartbeat.remove(run_id)
        with self._session() as s:
            row = self._run_row(s, run_id)
            row.status, row.error, row.finished_at = status, error, utcnow()
            if summary:
                row.summary = {**(row.summary or {}), **summary}
            return run_info(row)

    def set_summary(self, run_id: int, summary: Mapping[str, Any]) -> None:
        """Merge keys into a run's summary."""
        with self._session() as s:
            row = self._run_row(s, run_id)
            row.summary = {**(row.summary or {}), **summary}

    def set_output_dir(self, run_id: int, output_dir: str | Path) -> None:
        """Record where a run writes its files."""
        with self._session() as s:
            self._run_row(s, run_id).output_dir = str(output_dir)

    def run(
        self,
        kind: str,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        parent_id: int | None = None,
        output_dir: str | Path | None = None,
    ):
        """Context manager around a run: FINISHED on success, INTERRUPTED on Ctrl-C/SIGTERM, else FAILED."""
        return run_context(self, kind, name=name, config=config, parent_id=parent_id, output_dir=output_dir)

    def handle(self, run_id: int) -> RunHandle:
        """A handle on an existing run, to log into it from elsewhere (e.g. a worker thread)."""
        self.get_run(run_id)
        return RunHandle(self, run_id)

    def reconcile(self) -> list[int]:
        """Mark INTERRUPTED, in the database, the RUNNING runs whose process is gone: a stale heartbeat
        (any host), or a pid of this host that no longer exists. Reads show stale runs INTERRUPTED
        anyway; this writes it down for other readers, and catches a dead local pid at once."""
        running = Run.status == RunStatus.RUNNING.value
        with self._session() as s:
            stale = list(s.execute(select(Run.id, Run.heartbeat_at).where(running, self._stale_condition())))
            for run_id, heartbeat_at in stale:
                s.execute(
                    update(Run)
                    .where(Run.id == run_id, running)
                    .values(
                        status=RunStatus.INTERRUPTED.value, error=_stale_text(heartbeat_at), finished_at=heartbeat_at
                    )
                )
            local = select(Run.id, Run.pid).where(running, Run.host == socket.gethostname())
            dead = [run_id for run_id, pid in s.execute(local) if not pid_alive(pid)]
            if dead:
                s.execute(
                    update(Run)
                    .where(Run.id.in_(dead), running)
                    .values(status=RunStatus.INTERRUPTED.value, error=RECONCILE_TEXT, finished_at=utcnow())
                )
        return sorted([run_id for run_id, _ in stale] + dead)

    def _stale_condition(self):
        """SQL: the heartbeat is older than the timeout (never true without a timeout or a heartbeat)."""
        cutoff = stale_cutoff(self.heartbeat_timeout_s)
        if cutoff is None:
            return false()
        return and_(Run.heartbeat_at.is_not(None), Run.heartbeat_at < cutoff)

    def _seen(self, row: Run) -> RunInfo:
        """A run row as readers see it (a stale heartbeat reads INTERRUPTED, see db.lifecycle)."""
        return as_seen(run_info(row), stale_cutoff(self.heartbeat_timeout_s))

    def _status_column(self):
        """SQL for the status readers see, to filter on (the same rule as _seen)."""
        stale = and_(Run.status == RunStatus.RUNNING.value, self._stale_condition())
        return case((stale, RunStatus.INTERRUPTED.value), else_=Run.status)

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its metrics, artifacts rows, cases and annotations (files stay on disk)."""
        with self._session() as s:
            s.delete(self._run_row(s, run_id))

    def get_run(self, run_id: int) -> RunInfo:
        """One run; KeyError if there is none with this id."""
        with self._session() as s:
            return self._seen(self._run_row(s, run_id))

    def list_runs(self, kind: str | None = None, status: str | None = None, limit: int = 100) -> list[RunInfo]:
        """Newest runs first, optionally of one kind and status."""
        query = select(Run).order_by(Run.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(Run.kind == kind)
        if status is not None:
            query = query.where(self._status_column() == getattr(status, "value", status))
        with self._session() as s:
            return [self._seen(r) for r in s.scalars(query)]

    def children(self, run_id: int) -> list[RunInfo]:
        """Runs opened inside this one, oldest first."""
        with self._session() as s:
            return [self._seen(r) for r in s.scalars(select(Run).where(Run.parent_id == run_id).order_by(Run.id))]

    def _run_row(self, s: Session, run_id: int) -> Run:
        row = s.get(Run, run_id)
        if row is None:
            raise KeyError(f"no run with id {run_id} in {display_url(self.url)}")
        return row

    # ----- metrics and artifacts --------------------------------------------------------------

    def log_metric(self, run_id: int, key: str, value: float, step: int | None = None) -> None:
        """Log one scalar of a run."""
        self.log_metrics(run_id, {key: value}, step=step)

    def log_metrics(self, run_id: int, values: Mapping[str, float], step: int | None = None) -> None:
        """Log several scalars at one step; float() accepts numpy and torch scalars."""
        now = utcnow()
        rows = [Metric(run_id=run_id, key=k, step=step, value=float(v), created_at=now) for k, v in values.items()]
        with self._session() as s:
            s.add_all(rows)

    def metrics(self, run_id: int, key: str | None = None) -> list[MetricRow]:
        """A run's metrics in logging order, optionally one key."""
        query = select(Metric).where(Metric.run_id == run_id).order_by(Metric.id)
        if key is not None:
            query = query.where(Metric.key == key)
        with self._session() as s:
            return [metric_row(m) for m in s.scalars(query)]

    def metric_series(self, run_id: int) -> dict[str, list[tuple[int | None, float]]]:
        """{key: [(step, value), ...]} in logging order: what a plot needs."""
        series: dict[str, list[tuple[int | None, float]]] = {}
        for m in self.metrics(run_id):
            series.setdefault(m.key, []).append((m.step, m.value))
        return series

    def log_artifact(
        self, run_id: int, kind: str, path: str | Path, meta: Mapping[str, Any] | None = None
    ) -> ArtifactInfo:
        """Record a file or folder a run produced, hashing its content now."""
        path = Path(path).resolve()
        sha256, size = content_hash(path)
        row = Artifact(run_id=run_id, kind=kind, path=str(path), sha256=sha256, bytes=size, meta=dict(meta or {}))
        with self._session() as s:
            s.add(row)
            s.flush()
            return artifact_info(row)

    def artifacts(self, run_id: int, kind: str | None = None) -> list[ArtifactInfo]:
        """A run's artifacts in logging order, optionally of one kind."""
        query = select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.id)
        if kind is not None:
            query = query.where(Artifact.kind == kind)
        with self._session() as s:
            return [artifact_info(a) for a in s.scalars(query)]

    def find_artifact(self, kind: str, run_id: int | None = None, status: str | None = None) -> ArtifactInfo | None:
        """The newest artifact of a kind, optionally of one run or of runs with a status."""
        query = select(Artifact).where(Artifact.kind == kind).order_by(Artifact.id.desc()).limit(1)
        if run_id is not None:
            query = query.where(Artifact.run_id == run_id)
        if status is not None:
            query = query.join(Run, Run.id == Artifact.run_id).where(
                self._status_column() == getattr(status, "value", status)
            )
        with self._session() as s:
            row = s.scalars(query).first()
            return None if row is None else artifact_info(row)

    # ----- eval cases -------------------------------------------------------------------------

    def add_cases(self, run_id: int, cases: Sequence[Mapping[str, Any]]) -> int:
        """Bulk insert an evaluation's cases; return how many."""
        rows = [_case_values(run_id, item) for item in cases]
        if not rows:
            return 0
        with self._session() as s:
            self._run_row(s, run_id)
            s.add_all(EvalCase(**r) for r in rows)
        return len(rows)

    def _case_query(self, run_id: int, filters: Mapping[str, Any] | None):
        return select(EvalCase).where(EvalCase.run_id == run_id, *case_conditions(filters))

    def cases(
        self, run_id: int, filters: Mapping[str, Any] | None = None, limit: int | None = 100, offset: int = 0
    ) -> list[CaseRow]:
        """One page of a run's cases in index order; see db.filters.FILTERS for the filter keys."""
        query = self._case_query(run_id, filters).order_by(EvalCase.index).offset(offset).limit(limit)
        with self._session() as s:
            return [case_row(c) for c in s.scalars(query)]

    def count_cases(self, run_id: int, filters: Mapping[str, Any] | None = None) -> int:
        """How many of a run's cases pass the filters."""
        query = select(func.count()).select_from(self._case_query(run_id, filters).subquery())
        with self._session() as s:
            return s.scalar(query) or 0

    def get_case(self, case_id: int) -> CaseRow:
        """One case; KeyError if missing."""
        with self._session() as s:
            return case_row(self._case_row(s, case_id))

    def set_case_tags(self, case_id: int, tags: Sequence[str]) -> CaseRow:
        """Replace a case's tags."""
        with self._session() as s:
            row = self._case_row(s, case_id)
            row.tags = list(dict.fromkeys(str(t) for t in tags))
            return case_row(row)

    def _case_row(self, s: Session, case_id: int) -> EvalCase:
        row = s.get(EvalCase, case_id)
        if row is None:
            raise KeyError(f"no eval case with id {case_id} in {display_url(self.url)}")
        return row

    # ----- annotations ------------------------------------------------------------------------

    def save_annotation(self, case_id: int, annotator: str = "default", **fields: Any) -> AnnotationRow:
        """Insert or update this annotator's annotation of a case; only the given fields change."""
        return self.update_annotation(case_id, annotator, lambda _current: fields)

    def rate_step(
        self, case_id: int, step: int, rating: int | None, annotator: str = "default", unsure: bool | None = None
    ) -> AnnotationRow:
        """Rate one step (a 0-based index inside the draft) -1, 0, +1 or None (clear); unsure None keeps it."""
        return self._update(
            case_id,
            annotator,
            lambda current, n_steps: ann.with_rating(
                current, ann.check_step_index(step, n_steps, case_id), rating, unsure
            ),
        )

    def update_annotation(
        self, case_id: int, annotator: str, change: Callable[[dict[str, Any]], Mapping[str, Any]]
    ) -> AnnotationRow:
        """Read-modify-write of one annotation in one transaction, safe across processes.

        change(current editable fields) -> the fields to save. The row is written (locked) before it
        is read, so a second writer, in this process or another, waits and then sees this one's save.
        Refused (ValueError, nothing written): bad fields or names (db.annotations) and a first-error
        mark the ratings contradict (db.annotations.check_labels).
        """
        return self._update(case_id, annotator, lambda current, _n_steps: change(current))

    def _update(self, case_id: int, annotator: str, change) -> AnnotationRow:
        annotator = ann.check_annotator(annotator)
        try:
            return self._update_once(case_id, annotator, change)
        except IntegrityError:
            # Only the select-then-insert fallback can race: the other writer inserted, so this try updates.
            return self._update_once(case_id, annotator, change)

    def _update_once(self, case_id: int, annotator: str, change) -> AnnotationRow:
        with self._session() as s:
            n_steps = len(case_row(self._case_row(s, case_id)).steps)
            ann.upsert(s, case_id, annotator, {})  # takes the write lock (SQLite) or the row lock first
            current = ann.editable_fields(self._annotation_row(s, case_id, annotator))
            fields = ann.normalize_fields(dict(change(current, n_steps)), n_steps)
            ann.check_labels({**current, **fields})
            ann.upsert(s, case_id, annotator, fields)
            return annotation_row(self._saved_annotation(s, case_id, annotator))

    def get_annotation(self, case_id: int, annotator: str = "default") -> AnnotationRow | None:
        """This annotator's annotation of a case, or None."""
        with self._session() as s:
            row = self._annotation_row(s, case_id, annotator)
            return None if row is None else annotation_row(row)

    def _saved_annotation(self, s: Session, case_id: int, annotator: str) -> Annotation:
        row = self._annotation_row(s, case_id, annotator)
        if row is None:  # the upsert just wrote it in this transaction
            raise StoreError(f"annotation of case {case_id} by {annotator!r} vanished while saving")
        return row

    def _annotation_row(self, s: Session, case_id: int, annotator: str) -> Annotation | None:
        query = select(Annotation).where(Annotation.case_id == case_id, Annotation.annotator == annotator)
        return s.scalars(query.execution_options(populate_existing=True)).first()

    def _annotation_query(self, run_id: int | None, annotator: str | None):
        query = select(EvalCase, Annotation).join(Annotation, Annotation.case_id == EvalCase.id)
        if run_id is not None:
            query = query.where(EvalCase.run_id == run_id)
        if annotator is not None:
            query = query.where(Annotation.annotator == annotator)
        return query.order_by(EvalCase.run_id, EvalCase.index, Annotation.annotator)

    def annotations(self, run_id: int | None = None, annotator: str | None = None) -> list[AnnotationRow]:
        """Annotations, optionally of one run's cases and one annotator, in case order."""
        with self._session() as s:
            return [annotation_row(a) for _, a in s.execute(self._annotation_query(run_id, annotator))]

    def annotated_cases(self, run_id: int | None = None, annotator: str | None = None) -> list[AnnotatedCase]:
        """Cases joined with their annotations: what the exporters write."""
        with self._session() as s:
            rows = s.execute(self._annotation_query(run_id, annotator))
            return [AnnotatedCase(case_row(c), annotation_row(a)) for c, a in rows]

    def review_queue(self, run_id: int, annotator: str = "default") -> list[int]:
        """Case ids in review order: failures (draft or final wrong) first, then the rest, by index.

        The order is the same for every annotator, so reviewers can compare and split a queue.
        """
        order = case((is_failure(), 0), else_=1)
        query = select(EvalCase.id).where(EvalCase.run_id == run_id).order_by(order, EvalCase.index)
        with self._session() as s:
            return list(s.scalars(query))

    def next_unannotated(self, run_id: int, annotator: str = "default", after_case_id: int | None = None) -> int | None:
        """The next case in the review queue this annotator has not saved, wrapping around; None when done."""
        queue = self.review_queue(run_id, annotator)
        done = {a.case_id for a in self.annotations(run_id, annotator)}
        start = queue.index(after_case_id) + 1 if after_case_id in queue else 0
        for case_id in queue[start:] + queue[:start]:
            if case_id not in done and case_id != after_case_id:
                return case_id
        return None
