"""Several processes, one result: who owns the store and the files, and how the others wait.

A job started by `torchrun --nproc_per_node N` (or `accelerate launch` with a working multi-process
backend) has RANK / WORLD_SIZE in its environment. Rank 0 is the main process: it records the run,
writes checkpoints and merged data; the other ranks compute their share and wait at a barrier
where rank 0 writes. Without those variables every helper here is a no-op, so one-process code
never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def cpu_only() -> bool:
    """Several processes and no GPU: accelerate opens a gloo group only when told cpu=True (without
    it each torchrun rank would train alone, as DistributedType.NO)."""
    import torch

    return world_size() > 1 and not torch.cuda.is_available()


def _state():
    """accelerate's process state: it opens the process group (gloo on CPU, nccl on GPUs) once."""
    from datetime import timedelta

    from accelerate import PartialState

    # a data stage's ranks meet at a barrier only when all their shards are done: allow hours, not
    # the 30 minutes of torch's default
    return PartialState(cpu=cpu_only(), timeout=timedelta(hours=12))


def barrier() -> None:
    if world_size() > 1:
        _state().wait_for_everyone()


def broadcast(value: T) -> T:
    """Rank 0's value on every rank (a picklable object: a run id, a path, a list of records)."""
    if world_size() == 1:
        return value
    import torch.distributed as dist

    _state()
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(write: Callable[[], T]) -> T:
    """Run `write` (a save, a merge) on rank 0 only; every rank waits for it and gets its result."""
    result = write() if is_main() else None
    barrier()
    return broadcast(result)  # type: ignore[return-value]


def my_share(items: list[T]) -> list[T]:
    """This rank's share of a list every rank holds alike: elements r, r + world, ..."""
    return items[rank() :: world_size()]


def gather(value: T) -> list[T]:
    """Every rank's value, in rank order, on every rank (picklable objects: a share of results)."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    _state()
    out: list = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


R = TypeVar("R")


def map_batches(
    items: list[T],
    size: int,
    run: Callable[[int, list[T]], list[R]],
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """`run(start, items[start : start + size])` over the batches of `size` items; every rank gets all
    the results, in item order. Under a multi-process launch rank r runs batches r, r + n, ... only.

    A batch whose result depends on nothing but its items and its start (seed it by its start, never
    by a counter of calls) makes the result one process's, whatever the number of processes.
    progress(done, total): after each of this rank's batches, items done by this rank.
    """
    mine: dict[int, list[R]] = {}
    for start in my_share(list(range(0, len(items), size))):
        mine[start] = run(start, items[start : start + size])
        if progress:
            progress(sum(len(r) for r in mine.values()), len(items))
    by_start = {start: batch for share in gather(mine) for start, batch in share.items()}
    return [r for start in sorted(by_start) for r in by_start[start]]
