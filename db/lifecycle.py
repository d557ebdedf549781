"""The `with store.run(...)` life cycle: a run always ends FINISHED, FAILED or INTERRUPTED.

A process can also die without closing its run (kill -9, a power cut, an OOM kill). So while a run
is open its process stamps the run's heartbeat every HEARTBEAT_INTERVAL_S seconds from a daemon
thread (Heartbeat); a RUNNING run whose heartbeat is older than HEARTBEAT_TIMEOUT_S reads
INTERRUPTED in every store query (stale), whichever host or pid the row names: a shared database
seen from another host, or a pid reused by an unrelated process, cannot keep a dead run RUNNING.
Times are the writer's clock, so hosts sharing a store need clocks within the timeout of each other.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .models import RunStatus, utcnow
from .records import ArtifactInfo, RunInfo

if TYPE_CHECKING:
    from .store import Store

INTERRUPTED_TEXT = "interrupted (Ctrl-C or SIGTERM)"
# A beat waits at most the store's busy timeout (30 s in the CLI) for another writer, so the timeout
# leaves room for a couple of slow beats before a live run could read stale.
HEARTBEAT_INTERVAL_S = 10.0
HEARTBEAT_TIMEOUT_S = 90.0
log = logging.getLogger("glore.db")


def stale_text(heartbeat_at: datetime | None) -> str:
    since = "no heartbeat" if heartbeat_at is None else f"no heartbeat since {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"{since}: the process ended (killed or crashed) without closing the run"


def stale_cutoff(timeout_s: float | None) -> datetime | None:
    """Heartbeats older than this are stale; None: nothing is ever stale."""
    return None if timeout_s is None else utcnow() - timedelta(seconds=timeout_s)


def as_seen(info: RunInfo, cutoff: datetime | None) -> RunInfo:
    """The run as readers should see it: a RUNNING run with a stale heartbeat is INTERRUPTED, ended at
    its last heartbeat. Rows without a heartbeat (older stores) keep their status."""
    if info.status != RunStatus.RUNNING.value or cutoff is None or info.heartbeat_at is None:
        return info
    if info.heartbeat_at >= cutoff:
        return info
    return dataclasses.replace(
        info, status=RunStatus.INTERRUPTED.value, finished_at=info.heartbeat_at, error=stale_text(info.heartbeat_at)
    )


class Heartbeat:
    """One daemon thread per store stamping the heartbeat of the runs this process has open.

    `beat(run_ids)` writes the stamp; the thread runs only while some run is open, and dies with
    the process, which is the point: a killed process stops beating.
    """

    def __init__(self, beat: Callable[[list[int]], None], interval_s: float = HEARTBEAT_INTERVAL_S):
        self._beat, self.interval_s = beat, interval_s
        self._runs: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    def add(self, run_id: int) -> None:
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="glore-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, run_id: int) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval_s)
            with self._lock:
                run_ids = sorted(self._runs)
                if not run_ids:
                    self._thread = None
                    return
            try:
                self._beat(run_ids)
                self._failing = False
            except Exception as exc:  # a locked or vanished store: try again next interval
                if not self._failing:
                    log.warning("could not record the heartbeat of runs %s: %s", run_ids, exc)
                self._failing = True


class RunHandle:
    """What a command holds while its run is open: log metrics and artifacts, open child runs."""

    def __init__(self, store: Store, run_id: int):
        self._store = store
        self.id = run_id

    def __repr__(self) -> str:
        return f"RunHandle(id={self.id})"

    @property
    def info(self) -> RunInfo:
        """The run row as it is now."""
        return self._store.get_run(self.id)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Log one scalar."""
        self._store.log_metrics(self.id, {key: value}, step=step)

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Log several scalars at the same step in one transaction."""
        self._store.log_metrics(self.id, values, step=step)

    def log_artifact(self, kind: str, path: str | Path, meta: dict[str, Any] | None = None) -> ArtifactInfo:
        """Record a file or folder with its sha256 and size."""
        return self._store.log_artifact(self.id, kind, path, meta=meta)

    def set_summary(self, summary: Mapping[str, Any] | None = None, **items: Any) -> None:
        """Merge keys into the run's summary (measured tables, final numbers)."""
        self._store.set_summary(self.id, {**(summary or {}), **items})

    def log_cases(self, cases: Sequence[Mapping[str, Any]]) -> int:
        """Store an evaluation's cases (see Store.add_cases); return how many."""
        return self._store.add_cases(self.id, cases)

    def set_output_dir(self, path: str | Path) -> None:
        """Record where the run writes its files."""
        self._store.set_output_dir(self.id, path)

    def child(
        self,
        kind: str,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        output_dir: str | Path | None = None,
    ):
        """A nested run (a pipeline stage) whose parent is this run; use it as a context manager."""
        return run_context(self._store, kind, name=name, config=config, parent_id=self.id, output_dir=output_dir)


def error_text(exc: BaseException) -> str:
    """One summary line for tables, then the traceback for whoever debugs it."""
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return head + "\n\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"received signal {signum}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises KeyboardInterrupt (so `kill` marks the run); restores the old handler."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        # None means a handler installed outside Python; the default is the closest we can restore.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _close_after_error(store: Store, run_id: int, status: RunStatus, text: str, exc: BaseException) -> None:
    """Mark the run without hiding the exception that ended it if the store itself fails now."""
    try:
        store.finish_run(run_id, status=status.value, error=text)
    except Exception as close_exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"(could not mark run {run_id} {status.value}: {close_exc})")


@contextmanager
def run_context(
    store: Store,
    kind: str,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    parent_id: int | None = None,
    output_dir: str | Path | None = None,
) -> Iterator[RunHandle]:
    """Open a run, yield its handle, and close it with the status the block earned; re-raise errors."""
    run_id = store.start_run(kind, name=name, config=config, parent_id=parent_id, output_dir=output_dir)
    with sigterm_as_interrupt():
        try:
            yield RunHandle(store, run_id)
        except KeyboardInterrupt as exc:
            _close_after_error(store, run_id, RunStatus.INTERRUPTED, INTERRUPTED_TEXT, exc)
            raise
        except SystemExit as exc:
            if exc.code in (0, None):  # sys.exit(0) inside a command is a normal end
                store.finish_run(run_id)
            else:
                _close_after_error(store, run_id, RunStatus.FAILED, error_text(exc), exc)
            raise
        except BaseException as exc:
            _close_after_error(store, run_id, RunStatus.FAILED, error_text(exc), exc)
            raise
    store.finish_run(run_id)
