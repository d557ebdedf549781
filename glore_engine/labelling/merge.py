"""Assemble a data stage run as parts on several machines (`--shard-index i --num-shards n`).

Each part writes its shards into `<stage folder>/shards/` beside `job.json` (what made them: kind,
config, a fingerprint of the items) and `layout.json` (how many items and shards). `merge_stage`
checks that every folder given holds shards of the same job and that together they hold every
shard, then writes the stage's records and manifest as one process would have: shard k is seeded
by k alone, so the result is identical.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from ..errors import DataError
from .shards import JOB, LAYOUT, read_shards, shard_path


def read_job(folder: Path) -> tuple[dict, dict]:
    """(job, layout) of a sharded stage folder."""
    shards = folder / "shards"
    if not (shards / JOB).is_file() or not (shards / LAYOUT).is_file():
        raise DataError(f"{folder} has no shards/{JOB}: not the folder of a sharded ORM-data or SORM-labels stage")
    return json.loads((shards / JOB).read_text()), json.loads((shards / LAYOUT).read_text())


def gather_parts(folder: Path, others: list[Path], job: dict, n_shards: int) -> int:
    """Copy the shards of `others` (same job, checked) into folder/shards; returns how many were copied."""
    copied = 0
    for other in others:
        if read_job(other)[0] != job:
            raise DataError(f"{other} holds shards of another job than {folder}: parts must share one config")
        for k in range(n_shards):
            src, dst = shard_path(other / "shards", k), shard_path(folder / "shards", k)
            if src.is_file() and not dst.is_file():
                cost = src.with_name(f"shard-{k:05d}.cost.json")
                if cost.is_file():  # the cost first, as a part writes it: a shard always has its cost beside it
                    _copy(cost, dst.with_name(cost.name))
                _copy(src, dst)
                copied += 1
    return copied


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.rename(dst)


def stage_stats(kind: str, records: list[dict]) -> dict:
    """The manifest's stats of a merged stage (the generation cost stays with each part's run)."""
    from ..records import samples_from_json, solutions_from_json
    from .orm_data import orm_stats
    from .postprocess import LabelRules, apply_rules, label_stats
    from .rollouts import rollout_cost

    if kind == "orm-data":
        return orm_stats(samples_from_json(records))
    labelled = solutions_from_json(records)
    return {**rollout_cost(labelled), **label_stats(apply_rules(labelled, LabelRules()))}


def merge_stage(folder: str | Path, others: list[str | Path] | None = None) -> tuple[Path, dict]:
    """Write folder's records file and manifest from every part's shards; returns (records file, layout)."""
    from .manifest import write_records
    from .orm_data import KIND as ORM_KIND
    from .orm_data import OrmDataConfig
    from .rollouts import KIND as SORM_KIND
    from .rollouts import SormLabelConfig

    folder = Path(folder)
    job, layout = read_job(folder)
    kind = job.get("kind")
    if kind not in (ORM_KIND, SORM_KIND):
        raise DataError(f"{folder}: cannot merge shards of kind {kind!r}")
    gather_parts(folder, [Path(o) for o in others or []], job, layout["shards"])
    records = read_shards(folder / "shards", layout["shards"])
    if len(records) != layout["items"]:  # one record per item (question or solution)
        raise DataError(f"{folder}: the shards hold {len(records)} records, the job {layout['items']}")
    config_cls = OrmDataConfig if kind == ORM_KIND else SormLabelConfig
    config = config_cls(**{f.name: job[f.name] for f in dataclasses.fields(config_cls) if f.name in job})
    stats = {**stage_stats(kind, records), "merged_shards": layout["shards"]}
    path = write_records(folder, kind, records, job["student"], config, stats)
    return path, {"kind": kind, **layout}
