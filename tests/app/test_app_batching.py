"""The model worker batches queued Inspect requests; each caller gets its own result or its own error."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from glore_app.batching import BatchWorker, InspectRequest
from glore_engine.errors import DataError, GloreError


class Gate:
    """A fake run_batch that answers each request with its own question, upper-cased; the first
    batch waits until released, so the requests submitted meanwhile queue up behind it."""

    def __init__(self, fail_on: str | None = None):
        self.release, self.started = threading.Event(), threading.Event()
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, requests):
        self.calls.append([r.question for r in requests])
        self.started.set()
        self.release.wait(10)
        if any(r.question == self.fail_on for r in requests):
            raise DataError(f"cannot do {self.fail_on}")
        return [r.question.upper() for r in requests]


def test_queued_requests_run_as_one_batch_each_with_its_own_result():
    gate = Gate()
    worker = BatchWorker(gate)
    try:
        first = worker.submit(InspectRequest("q0"))
        assert gate.started.wait(10)
        rest = [worker.submit(InspectRequest(f"q{i}")) for i in range(1, 6)]
        gate.release.set()
        assert first.result(10) == "Q0"
        assert [f.result(10) for f in rest] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
        assert gate.calls == [["q0"], ["q1", "q2", "q3", "q4", "q5"]] and worker.batch_sizes == [1, 5]
    finally:
        worker.close()


def test_requests_arriving_within_the_gather_window_share_the_first_ones_batch():
    """A burst's requests come a few milliseconds apart: the first waits for them instead of running alone."""
    gate = Gate()
    gate.release.set()
    worker = BatchWorker(gate, gather_quiet_s=2.0, gather_max_s=10.0)
    try:
        futures = []
        for i in range(5):
            futures.append(worker.submit(InspectRequest(f"q{i}")))
            time.sleep(0.01)
        assert [f.result(30) for f in futures] == ["Q0", "Q1", "Q2", "Q3", "Q4"]
        assert gate.calls == [["q0", "q1", "q2", "q3", "q4"]]
    finally:
        worker.close()


def test_the_gather_window_is_bounded_and_ends_when_the_batch_is_full():
    gate = Gate()
    gate.release.set()
    worker = BatchWorker(gate, gather_quiet_s=30.0, gather_max_s=0.2)
    try:
        start = time.monotonic()
        assert worker.submit(InspectRequest("alone")).result(30) == "ALONE"
        assert time.monotonic() - start < 10  # the bound, not the 30 s quiet gap
    finally:
        worker.close()
    worker = BatchWorker(gate, max_batch=2, gather_quiet_s=30.0, gather_max_s=30.0)
    try:
        start = time.monotonic()
        futures = [worker.submit(InspectRequest(q)) for q in ("a", "b")]
        assert [f.result(20) for f in futures] == ["A", "B"] and time.monotonic() - start < 10
    finally:
        worker.close()


def test_closing_ends_the_gather_window():
    gate = Gate()
    gate.release.set()
    worker = BatchWorker(gate, gather_quiet_s=30.0, gather_max_s=30.0)
    future = worker.submit(InspectRequest("q"))
    start = time.monotonic()
    worker.close(timeout=20)
    assert future.result(1) == "Q" and time.monotonic() - start < 10


def test_a_failing_request_fails_alone():
    gate = Gate(fail_on="bad")
    worker = BatchWorker(gate)
    try:
        first = worker.submit(InspectRequest("q0"))
        assert gate.started.wait(10)
        futures = [worker.submit(InspectRequest(q)) for q in ("q1", "bad", "q3")]
        gate.release.set()
        assert first.result(10) == "Q0"
        assert futures[0].result(10) == "Q1" and futures[2].result(10) == "Q3"
        with pytest.raises(DataError, match="cannot do bad"):
            futures[1].result(10)
        assert gate.calls[1] == ["q1", "bad", "q3"]  # tried together, then one by one
        assert sorted(gate.calls[2:]) == [["bad"], ["q1"], ["q3"]]
    finally:
        worker.close()


def test_batches_are_split_by_threshold_and_capped():
    gate = Gate()
    worker = BatchWorker(gate, max_batch=3)
    try:
        worker.submit(InspectRequest("q0"))
        assert gate.started.wait(10)
        futures = [worker.submit(InspectRequest(f"q{i}", threshold=0.5 if i % 2 else 0.7)) for i in range(1, 6)]
        gate.release.set()
        assert [f.result(10) for f in futures] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
        # taken three at a time (q1-q3, then q4-q5), each batch run once per threshold
        assert gate.calls[1:] == [["q1", "q3"], ["q2"], ["q4"], ["q5"]]
    finally:
        worker.close()


def test_stage_reports_reach_the_callers_context():
    import contextvars

    who = contextvars.ContextVar("who", default="worker")
    seen = []

    def run_batch(requests):
        for r in requests:
            r.report("draft written")
        return [None for _ in requests]

    worker = BatchWorker(run_batch)
    try:
        who.set("caller")
        worker.submit(InspectRequest("q", on_stage=lambda text: seen.append((who.get(), text)))).result(10)
    finally:
        worker.close()
    assert seen == [("caller", "draft written")]


def test_closing_serves_what_is_queued_and_refuses_more():
    gate = Gate()
    worker = BatchWorker(gate)
    running = worker.submit(InspectRequest("q0"))
    assert gate.started.wait(10)
    queued = worker.submit(InspectRequest("q1"))
    closer = threading.Thread(target=worker.close)
    closer.start()
    gate.release.set()
    closer.join(10)
    assert (running.result(10), queued.result(10)) == ("Q0", "Q1")
    with pytest.raises(GloreError, match="stopped"):
        worker.submit(InspectRequest("q2"))


def test_workbench_answers_concurrent_inspects_each_with_its_own_result(tiny_family, sample):
    """The real pipeline: eight callers at once, their own question, gold and draft back."""
    from glore_app.state import Workbench
    from glore_engine.tasks import generate

    bench = Workbench(tiny_family, max_new_tokens=8)
    problems = generate("test", 8)
    try:
        bench.preload()
        with ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(bench.inspect, p.question, draft=p.solution, gold=p.answer, threshold=0.5) for p in problems
            ]
            results = [f.result(120) for f in futures]
        for p, r in zip(problems, results):
            assert (r.question, r.gold, r.draft.text) == (p.question, p.answer, p.solution)
            assert r.draft.correct is True and len(r.draft.sorm_steps) == len(r.draft.steps) > 0
        sizes = bench.worker().batch_sizes
        assert sum(sizes) == 8 and len(sizes) < 8  # some requests shared a batch
        with pytest.raises(DataError, match="no steps"):
            bench.inspect(sample["question"], draft="   \n  ")
    finally:
        bench.close()
