"""side_by_side: independent calls in worker threads, one core each, results in order, errors raised."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from glore_engine.side_by_side import independent, on_cpu, side_by_side


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_calls_overlap_on_their_own_threads_and_keep_their_order(two_threads):
    started = threading.Barrier(2, timeout=5)  # each call waits for the other: only side by side passes

    def call(k):
        started.wait()
        return k, threading.current_thread().name, torch.get_num_threads()

    results = side_by_side([lambda: call(0), lambda: call(1)])
    assert [r[0] for r in results] == [0, 1]
    assert len({r[1] for r in results}) == 2 and all(r[2] == 1 for r in results)  # a core each
    assert torch.get_num_threads() == 2  # the caller's count is back


def test_more_calls_than_threads_wait_for_a_worker(two_threads):
    results = side_by_side([lambda k=k: (time.sleep(0.01), k)[1] for k in range(5)])
    assert results == list(range(5))


def test_one_thread_or_disabled_runs_them_in_the_caller(two_threads):
    me = threading.current_thread().name
    assert side_by_side([lambda: threading.current_thread().name] * 2, enabled=False) == [me, me]
    torch.set_num_threads(1)
    assert side_by_side([lambda: threading.current_thread().name] * 2) == [me, me]


def test_an_error_is_raised_once_every_call_ended(two_threads):
    finished = []

    def slow():
        time.sleep(0.2)
        finished.append(True)

    def bad():
        raise ValueError("refiner failed")

    with pytest.raises(ValueError, match="refiner failed"):
        side_by_side([bad, slow])
    assert finished == [True]
    assert torch.get_num_threads() == 2


def test_on_cpu_names_torch_backends_on_the_cpu_only():
    class Backend:
        def __init__(self, device):
            self.device = torch.device(device) if device else None

    assert on_cpu(Backend("cpu"), Backend("cpu"))
    assert not on_cpu(Backend("cpu"), Backend(None))  # no device: a vLLM engine or a remote one


def test_backends_sharing_an_object_or_a_tokenizer_are_not_independent():
    class Backend:
        device = torch.device("cpu")

        def __init__(self, tokenizer):
            self.tokenizer = tokenizer

    a, b = Backend(object()), Backend(object())
    assert independent(a, b)
    assert not independent(a, a)  # one backend for both refiners
    assert not independent(a, Backend(a.tokenizer))  # two backends over one tokenizer object
