"""Independent model calls side by side, one core each, instead of one after the other on all cores.

Why: a second intra-op thread buys a small model's decode step little (the demo's refiners step at
about the same speed on one thread as on two: its matmuls are too small to split well), while two
generate calls in two threads overlap almost fully: torch releases the GIL inside every op. On 2 cores the global and the local refinement of 50 drafts took 1.6-1.8 s side
by side against 2.2-2.4 s one after the other (`bench/bench_soak.py` shows what it does to Inspect).

Results are the same as one after the other: each call runs its own batch, only the thread differs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

__all__ = ["independent", "on_cpu", "side_by_side"]


def on_cpu(*backends) -> bool:
    """True when every backend runs torch on the CPU (a GPU or vLLM engine is left alone)."""
    return all(str(getattr(b, "device", "")) == "cpu" for b in backends)


def independent(*backends) -> bool:
    """On the CPU, and no two of them one object or one tokenizer object: a fast tokenizer changes its
    padding settings on every padded call, so two threads may not share one ("Already borrowed")."""
    objects = [id(b) for b in backends] + [id(getattr(b, "tokenizer", b)) for b in backends]
    return on_cpu(*backends) and len(set(objects)) == len(objects)


def side_by_side(calls: list[Callable[[], Any]], enabled: bool = True) -> list[Any]:
    """Each call's result, in order. With torch running on 2 or more threads and `enabled`, the calls
    run in as many worker threads as there are threads (a call waits for a free worker beyond that),
    sharing the threads out among them; else one after the other. The first call's error is raised
    once every call has ended."""
    import torch

    threads = torch.get_num_threads()
    workers = min(len(calls), threads)
    if not enabled or workers < 2:
        return [call() for call in calls]
    share = max(1, threads // workers)

    def run(call: Callable[[], Any]) -> Any:
        torch.set_num_threads(share)  # this worker's own count (OpenMP's is per thread)
        with torch.inference_mode():
            return call()

    futures = [_pool(workers).submit(run, call) for call in calls]
    try:
        wait(futures)
        return [future.result() for future in futures]
    except BaseException:  # Ctrl-C while waiting: the calls not yet started never start
        for future in futures:
            future.cancel()
        raise
    finally:
        torch.set_num_threads(threads)  # a worker's set_num_threads also changed the process default


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """Long-lived workers: a thread per call would take a fresh malloc arena each time (RSS grew by
    230 MB per 50-request burst of the app that way)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="glore-side-by-side")
