"""Resumable, sharded jobs: each shard's records land in their own file, written atomically.

A killed job reruns only the shards without a file; shard k always holds the same items and is
processed with a seed derived from k, so a resumed job produces exactly the same records.

That holds only while the job is the same one, so the folder records what made it: `job.json`
holds the job's config and a fingerprint of its items, written before the first shard, and a
job with another config or other items is refused instead of reusing shards that are not its
own. Beside each shard, `shard-k.cost.json` holds what generating it cost, so a resumed job's
cost is the whole job's, not only the part done after the resume.

The same property splits a job: the processes of a launch (rank r of n takes every n-th shard still
to do) and the parts of a job spread over machines (`Part(index, count)`: part i takes shards i,
i + count, ...) write their shards into one folder, and any set of them adds up to the one-process
result; `labelling.merge` joins the parts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import distributed
from ..errors import ConfigError, DataError
from ..generation.base import GenerationStats

SHARD_SEED_STRIDE = 7919  # (seed, shard) -> distinct seeds while a job has fewer than 7,919 shards
JOB = "job.json"
LAYOUT = "layout.json"  # how many items and shards the job has (implied by job.json; read by a merge)
ITEMS_KEY = "items"  # the job key that stands for the items' fingerprint
COUNTED = ("prompts", "samples", "prompt_tokens", "generated_tokens", "seconds")


@dataclass(frozen=True)
class Part:
    """Part `index` of `count` of a sharded job (a SLURM array task); Part() is the whole job."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"--shard-index must be within [0, {self.count}) and --num-shards positive")

    @property
    def whole(self) -> bool:
        return self.count == 1


WHOLE = Part()


def shard_seed(seed: int, shard: int) -> int:
    """The sampling seed of shard `shard` of a job seeded with `seed`: fixed per shard, so a resume matches."""
    return seed * SHARD_SEED_STRIDE + shard


def clear_shards(folder: str | Path) -> None:
    """Discard the shards an earlier run left in folder/shards (they may come from another config)."""
    import shutil

    distributed.on_main(lambda: shutil.rmtree(Path(folder) / "shards", ignore_errors=True))


def shard_path(folder: Path, k: int) -> Path:
    return folder / f"shard-{k:05d}.jsonl"


def read_shards(folder: str | Path, n_shards: int) -> list[dict]:
    """The records of shards 0..n_shards-1 in order; a missing shard is named."""
    folder = Path(folder)
    missing = [k for k in range(n_shards) if not shard_path(folder, k).is_file()]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise DataError(f"{folder} lacks {len(missing)} of {n_shards} shards ({shown}): run their parts first")
    return [r for k in range(n_shards) for r in read_jsonl(shard_path(folder, k))]


def items_fingerprint(items: list) -> str:
    """A short hash of the items a job processes (records, or dataclasses such as problems)."""
    rows = [dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x for x in items]  # type: ignore[arg-type]
    text = json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_UNSET = object()


def _short(value) -> str:
    text = "(unset)" if value is _UNSET else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def differing_keys(saved: dict, wanted: dict) -> list[str]:
    """'key saved -> wanted' for every key whose value differs (or that only one side has)."""
    keys = sorted(set(saved) | set(wanted))
    pairs = [(k, saved.get(k, _UNSET), wanted.get(k, _UNSET)) for k in keys]
    return [f"{k} {_short(a)} -> {_short(b)}" for k, a, b in pairs if a != b]


def check_job(folder: str | Path, config: dict, items: list | None = None) -> None:
    """Refuse to resume `folder` when its shards were made by another job (config, or items when given).

    A folder without shards passes; shards without a `job.json` (no record of what made them) do not.
    """
    folder = Path(folder)
    shards = sorted(folder.glob("shard-*.jsonl"))
    if not (folder / JOB).is_file():
        if shards:
            raise DataError(
                f"cannot resume {folder}: its {len(shards)} shards carry no record of the config that made them; "
                "start over (without --resume, or in another folder)"
            )
        return
    saved = json.loads((folder / JOB).read_text())
    wanted = {**config, ITEMS_KEY: items_fingerprint(items) if items is not None else saved.get(ITEMS_KEY)}
    wanted = json.loads(json.dumps(wanted, default=str))  # compared as saved: tuples are lists, paths strings
    diff = differing_keys(saved, wanted)
    if diff:
        raise DataError(
            f"cannot resume {folder}: its shards were made with another config ({'; '.join(diff)}); "
            "resume with the same settings, or start over (without --resume, or in another folder)"
        )


def _start_job(folder: Path, config: dict, items: list) -> None:
    """Check the folder belongs to this job, or record that it does before any shard is written."""
    check_job(folder, config, items)
    if not (folder / JOB).is_file():
        job = {**config, ITEMS_KEY: items_fingerprint(items)}
        _write_json_atomic(folder / JOB, json.loads(json.dumps(job, default=str)))


def _write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # parts on other machines may write it too
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _cost_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + ".cost.json")


def job_cost(folder: str | Path) -> tuple[GenerationStats, float]:
    """What generating the job's finished shards cost, summed: (backend counts, wall seconds)."""
    total, wall = GenerationStats(), 0.0
    for shard in sorted(Path(folder).glob("shard-*.jsonl")):
        cost_file = _cost_path(shard)
        if cost_file.is_file():
            cost = json.loads(cost_file.read_text())
            total.add(GenerationStats(**{k: cost.get(k, 0) for k in COUNTED}))
            wall += cost.get("wall_s", 0.0)
    return total, wall


def _write_shard(path: Path, process: Callable, shard: list, k: int, stats: GenerationStats | None) -> None:
    """Process one shard and write its records, its cost first: a shard file always has its cost beside it."""
    before, started = (dataclasses.replace(stats) if stats is not None else None), time.perf_counter()
    records = process(shard, k)
    if stats is not None and before is not None:
        cost = {name: getattr(stats, name) - getattr(before, name) for name in COUNTED}
        _write_json_atomic(_cost_path(path), {**cost, "wall_s": time.perf_counter() - started})
    write_jsonl_atomic(path, records)


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
    config: dict | None = None,
    stats: GenerationStats | None = None,
    part: Part = WHOLE,
) -> list[dict]:
    """Process items shard by shard into folder/shard-00000.jsonl...; returns all records in order.

    `config` is what, besides the items, decides the records (a DataError if the folder's shards
    were made with another); `stats` (the backend's running counts) gives each shard its cost.
    This process takes its share of the shards (of `part`, then of the launch's ranks) and waits for
    the others; a whole job returns every record, a part returns [] (merge the parts later).
    on_shard(done_shards, total_shards, was_cached) reports progress over the cached shards and
    this process's own.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    job = {"shard_size": shard_size, **(config or {})}
    n_shards = (len(items) + shard_size - 1) // shard_size

    def start() -> None:
        _start_job(folder, job, items)
        _write_json_atomic(folder / LAYOUT, {"items": len(items), "shards": n_shards})  # what a merge expects

    distributed.on_main(start)
    check_job(folder, job, items)  # every rank (and every part) checks the job it joins
    # the part's shards still to do, listed by every rank before any writes, then dealt round-robin:
    # a resumed job keeps its ranks equally busy (who runs shard k does not change its records)
    shards = list(range(part.index, n_shards, part.count))
    cached = {k for k in shards if shard_path(folder, k).is_file()}
    distributed.barrier()
    mine = set(distributed.my_share([k for k in shards if k not in cached]))
    reported = [k for k in shards if k in cached or k in mine]
    for done, k in enumerate(reported, 1):
        if k in mine:
            _write_shard(shard_path(folder, k), process, items[k * shard_size : (k + 1) * shard_size], k, stats)
        if on_shard:
            on_shard(done, len(reported), k in cached)
    distributed.barrier()
    return read_shards(folder, n_shards) if part.whole else []
