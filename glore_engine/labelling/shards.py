"""Resumable, sharded jobs: each shard's records land in their own file, written atomically.

A killed job reruns only the shards without a file; shard k always holds the same items and is
processed with a seed derived from k, so a resumed job produces exactly the same records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import DataError

SHARD_SEED_STRIDE = 7919  # (seed, shard) -> distinct seeds while a job has fewer than 7,919 shards


def shard_seed(seed: int, shard: int) -> int:
    """The sampling seed of shard `shard` of a job seeded with `seed`: fixed per shard, so a resume matches."""
    return seed * SHARD_SEED_STRIDE + shard


def clear_shards(folder: str | Path) -> None:
    """Discard the shards an earlier run left in folder/shards (they may come from another config)."""
    import shutil

    shutil.rmtree(Path(folder) / "shards", ignore_errors=True)


def write_jsonl_atomic(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Records of a JSONL file; a malformed line names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from exc


def run_sharded(
    items: list,
    shard_size: int,
    folder: str | Path,
    process: Callable[[list, int], list[dict]],
    on_shard: Callable[[int, int, bool], None] | None = None,
) -> list[dict]:
    """Process items shard by shard into folder/shard-00000.jsonl...; returns all records in order.

    on_shard(done_shards, total_shards, was_cached) reports progress.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_shards = (len(items) + shard_size - 1) // shard_size
    records: list[dict] = []
    for k in range(n_shards):
        path = folder / f"shard-{k:05d}.jsonl"
        cached = path.is_file()
        if not cached:
            write_jsonl_atomic(path, process(items[k * shard_size : (k + 1) * shard_size], k))
        records.extend(read_jsonl(path))
        if on_shard:
            on_shard(k + 1, n_shards, cached)
    return records
