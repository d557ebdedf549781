"""The model worker: Inspect requests queue here, and all that are waiting run as one pipeline batch.

Why: every pipeline stage is batched (one generate call for all drafts, one scoring pass, ...), so
fifty requests that arrive together cost little more than one; served one at a time, the last one
waited for all the others. "Together" is a short gather window: a burst's requests arrive a few
milliseconds apart, and the first one no longer runs alone while the rest wait for it. Each caller still gets its own result, or its own error: a batch that
fails is rerun request by request, so one bad request never fails the rest.

Nothing here imports gradio or torch; the worker is tested as plain Python.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from glore_engine.errors import GloreError
from glore_engine.pipeline import CRITIQUE_THRESHOLD

log = logging.getLogger("glore.app")
MAX_BATCH = 64  # requests in one pipeline batch; the Inspect event admits this many at once
# The gather window. A burst's requests reach the worker over some milliseconds (HTTP, gradio's queue):
# taken the moment the first one came, it ran alone and the rest waited a whole batch for it. So the
# worker waits until no new request came for GATHER_QUIET_S, but holds the first one GATHER_MAX_S at most.
GATHER_QUIET_S = 0.15
GATHER_MAX_S = 0.5


@dataclass
class InspectRequest:
    """One caller's problem; `result` resolves to its GloreResult or raises its error."""

    question: str
    draft: str | None = None
    gold: str | None = None
    threshold: float = CRITIQUE_THRESHOLD
    on_stage: Callable[[str], None] | None = None
    result: Future = field(default_factory=Future, repr=False)
    # The caller's context (gradio's progress bar finds its event there), for on_stage in the worker.
    context: contextvars.Context = field(default_factory=contextvars.copy_context, repr=False)

    def report(self, text: str) -> None:
        """Tell the caller a stage finished; a caller that went away does not stop the batch."""
        if self.on_stage is None:
            return
        try:
            self.context.run(self.on_stage, text)
        except Exception:
            log.debug("stage report to a caller failed", exc_info=True)


RunBatch = Callable[[list[InspectRequest]], list]


class BatchWorker:
    """One thread that serves queued requests in batches of up to max_batch, one batch at a time.

    run_batch(requests) -> one result per request, in order; the requests of one call share a
    threshold (the pipeline takes one per batch), so a queue with several thresholds runs one batch each.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        max_batch: int = MAX_BATCH,
        name: str = "glore-model-worker",
        gather_quiet_s: float = GATHER_QUIET_S,
        gather_max_s: float = GATHER_MAX_S,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be 1 or more, got {max_batch}")
        if gather_quiet_s < 0 or gather_max_s < 0:
            raise ValueError("the gather window cannot be negative")
        self.run_batch, self.max_batch = run_batch, max_batch
        self.gather_quiet_s, self.gather_max_s = gather_quiet_s, gather_max_s
        self.batch_sizes: list[int] = []  # every batch served, in order (figures and tests)
        self._queue: queue.Queue[InspectRequest | None] = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: InspectRequest) -> Future:
        if self._closed.is_set():
            raise GloreError("the model worker has stopped (the app is shutting down)")
        self._queue.put(request)
        return request.result

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop once the requests already queued are served; later ones are refused with a clear error."""
        self._closed.set()
        self._queue.put(None)
        self._thread.join(timeout)

    # ---- the worker thread --------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self.serve(batch)
            except BaseException as exc:  # never leave a caller waiting forever
                for request in batch:
                    if not request.result.done():
                        request.result.set_exception(exc)
                raise

    def _take(self) -> list[InspectRequest] | None:
        """Wait for one request, then take every other one waiting or arriving within the gather window
        (until none came for gather_quiet_s, gather_max_s after the first at most; up to max_batch)."""
        first = self._queue.get()
        if first is None:
            self._fail_queued()
            return None
        batch = [first]
        start = last = time.monotonic()
        deadline, longest_gap = start + self.gather_max_s, 0.0
        while len(batch) < self.max_batch:
            wait = min(self.gather_quiet_s, deadline - time.monotonic())
            try:
                request = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if request is None:  # closing: serve what was taken, then stop
                self._queue.put(None)
                break
            batch.append(request)
            now = time.monotonic()
            longest_gap, last = max(longest_gap, now - last), now
        log.info(
            "model worker: %d request(s), gathered in %.0f ms (longest wait for the next %.0f ms)",
            len(batch),
            1000 * (time.monotonic() - start),
            1000 * longest_gap,
        )
        return batch

    def _fail_queued(self) -> None:
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return
            if request is not None:
                request.result.set_exception(GloreError("the app shut down before this request ran"))

    def serve(self, batch: list[InspectRequest]) -> None:
        """Run the batch, one pipeline call per threshold, and resolve every request's future."""
        groups: dict[float, list[InspectRequest]] = {}
        for request in batch:
            groups.setdefault(request.threshold, []).append(request)
        for group in groups.values():
            self._serve_group(group)

    def _serve_group(self, group: list[InspectRequest]) -> None:
        try:
            results = self._run(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].result.set_exception(exc)
                return
            log.info("a batch of %d failed (%s); rerunning its requests one by one", len(group), exc)
            for request in group:
                self._serve_group([request])
            return
        for request, result in zip(group, results):
            request.result.set_result(result)

    def _run(self, group: list[InspectRequest]) -> list:
        self.batch_sizes.append(len(group))
        results = list(self.run_batch(group))
        if len(results) != len(group):
            raise RuntimeError(f"the pipeline returned {len(results)} results for {len(group)} requests")
        return results
