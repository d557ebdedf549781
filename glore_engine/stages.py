"""The data stages of GLoRe as library calls: ORM samples, SORM rollout labels, refinement data.

Each stage writes its records under a folder with a manifest (what produced them: student,
tokenizer fingerprint, task, config), is resumable shard by shard, reports progress, and logs
its cost (rollouts, tokens, tokens/s, wall time) to the tracker. The CLI and `demo` call these.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .config import to_dict
from .errors import DataError
from .tracking import Tracker, ensure

MANIFEST = "manifest.json"


@dataclass
class OrmDataConfig:
    student: str = ""  # the policy that samples (CLI: --sample-student, default the --base model)
    data: str = "synthetic"
    n_questions: int = 2000
    data_seed: int = 1  # synthetic: 1 draws questions the student did not train on (its SFT used seed 0)
    n: int = 8  # samples per question
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256
    shard_size: int = 256
    calculator: bool = False
    split: str = "train"
    backend: str = "transformers"  # or "vllm" on a GPU machine (optional extra)


@dataclass
class SormLabelConfig:
    k: int = 8  # verifying rollouts per prefix
    temperature: float = 1.0
    max_new_tokens: int = 192
    seed: int = 0
    batch_size: int = 512
    shard_size: int = 128  # solutions per shard (the unit of resume)
    n_questions: int = 0  # label the samples of the first n questions (0: all)
    calculator: bool = False
    backend: str = "transformers"  # or "vllm" on a GPU machine (optional extra)


# ---- manifests -----------------------------------------------------------------------------------
def write_manifest(folder: Path, kind: str, student: str, config, stats: dict) -> None:
    from .models.causal_lm import load_tokenizer
    from .models.tokenizer import fingerprint
    from .tasks.model_task import task_config_from_card, task_dict

    manifest = {
        "kind": kind,
        "student": str(student),
        "tokenizer": fingerprint(load_tokenizer(student)),
        "task": task_dict(task_config_from_card(student)),
        "config": to_dict(config),
        "stats": stats,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def read_manifest(path: str | Path, kind: str) -> tuple[Path, dict]:
    """(records file, manifest) of a stage folder (or its JSONL file)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{folder} has no {MANIFEST}: not a GLoRe {kind} folder")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("kind") != kind:
        raise DataError(f"{folder} holds {manifest.get('kind')} data, not {kind}")
    records = folder / f"{kind}.jsonl"
    if not records.is_file():
        raise DataError(f"{records} is missing (an unfinished run? rerun the stage to complete it)")
    return records, manifest


def check_compatible(manifest: dict, base: str, what: str) -> None:
    """Labels must come from the same tokenizer and task as the model that learns from them."""
    from .models.causal_lm import load_tokenizer
    from .models.tokenizer import fingerprint
    from .tasks.model_task import task_config_from_card, task_dict

    tok = fingerprint(load_tokenizer(base))
    if manifest.get("tokenizer") != tok:
        raise DataError(
            f"{what} were made with tokenizer {manifest.get('tokenizer')} but {base} uses {tok}: "
            "labels belong to the student that sampled them"
        )
    if manifest.get("task") and manifest["task"] != task_dict(task_config_from_card(base)):
        raise DataError(f"{what} come from another task ({manifest['task']}) than {base} was trained on")


def load_records(path: str | Path, kind: str, base: str | None = None) -> list[dict]:
    from .labelling.shards import read_jsonl

    records_file, manifest = read_manifest(path, kind)
    if base:
        check_compatible(manifest, base, f"{kind} in {records_file.parent}")
    return list(read_jsonl(records_file))


# ---- stages ------------------------------------------------------------------------------------
def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, dynamic_ncols=True)


def _fresh_shards(folder: Path, resume: bool) -> None:
    if not resume:
        import shutil

        shutil.rmtree(folder / "shards", ignore_errors=True)


def _log_cost(tracker: Tracker, prefix: str, stats, seconds: float) -> dict:
    cost = {
        f"{prefix}/samples": stats.samples,
        f"{prefix}/generated_tokens": stats.generated_tokens,
        f"{prefix}/tokens_per_s": stats.generated_tokens / max(seconds, 1e-9),
        f"{prefix}/samples_per_s": stats.samples / max(seconds, 1e-9),
        f"{prefix}/wall_s": seconds,
    }
    for key, value in cost.items():
        tracker.log_metric(key, value)
    return cost


def make_orm_data(
    config: OrmDataConfig,
    folder: str | Path,
    tracker: Tracker | None = None,
    progress: bool = True,
    resume: bool = True,
) -> list[dict]:
    """N samples per training question, graded and deduplicated, in folder/orm-data.jsonl.

    resume=False discards shards an earlier run left in folder (they may come from another config).
    """
    from .generation.loading import open_policy_backend
    from .labelling.orm_data import build_orm_data, orm_stats
    from .labelling.shards import write_jsonl_atomic
    from .tasks.model_task import load_eval_problems

    tracker, folder = ensure(tracker), Path(folder)
    _fresh_shards(folder, resume)
    problems = load_eval_problems(config.data, config.split, config.n_questions, config.data_seed, config.student)
    backend, _, _ = open_policy_backend(config.student, config.backend, batch_size=config.batch_size)
    started = time.perf_counter()
    with _progress_bar(len(problems), "ORM samples", progress) as bar:

        def on_shard(done, total, cached):
            bar.update(min(done * config.shard_size, len(problems)) - bar.n)

        records = build_orm_data(
            backend,
            problems,
            folder / "shards",
            n=config.n,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            shard_size=config.shard_size,
            calculator=config.calculator,
            on_shard=on_shard,
        )
    stats = {**orm_stats(records), **_log_cost(tracker, "sampling", backend.stats, time.perf_counter() - started)}
    for key in ("questions", "distinct_samples", "sample_accuracy", "mixed_questions"):
        tracker.log_metric(f"data/{key}", stats[key])
    write_jsonl_atomic(folder / "orm-data.jsonl", records)
    write_manifest(folder, "orm-data", config.student, config, stats)
    tracker.log_artifact("orm-data", str(folder / "orm-data.jsonl"), {"questions": len(records)})
    return records


def make_sorm_labels(
    config: SormLabelConfig,
    student: str,
    orm_records: list[dict],
    folder: str | Path,
    tracker: Tracker | None = None,
    progress: bool = True,
    resume: bool = True,
) -> list[dict]:
    """K rollouts per step prefix of every distinct sample, in folder/sorm-labels.jsonl (resumable)."""
    from .generation.loading import open_policy_backend
    from .labelling.postprocess import LabelRules, apply_rules, label_stats
    from .labelling.rollouts import build_sorm_labels, rollout_cost, solutions_of
    from .labelling.shards import write_jsonl_atomic

    tracker, folder = ensure(tracker), Path(folder)
    records = orm_records[: config.n_questions] if config.n_questions else orm_records
    n_solutions = len(solutions_of(records))
    if not n_solutions:
        raise DataError("no sampled solutions with steps to label")
    _fresh_shards(folder, resume)
    backend, _, _ = open_policy_backend(student, config.backend, batch_size=config.batch_size)
    started = time.perf_counter()
    with _progress_bar(n_solutions, "SORM rollouts", progress) as bar:

        def on_shard(done, total, cached):
            bar.update(min(done * config.shard_size, n_solutions) - bar.n)
            bar.set_postfix(tok_s=f"{backend.stats.tokens_per_second:,.0f}", refresh=False)

        labelled = build_sorm_labels(
            backend,
            records,
            folder / "shards",
            k=config.k,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            shard_size=config.shard_size,
            calculator=config.calculator,
            on_shard=on_shard,
        )
    seconds = time.perf_counter() - started
    cost = _log_cost(tracker, "rollouts", backend.stats, seconds)
    stats = {**rollout_cost(labelled), **cost, **label_stats(apply_rules(labelled, LabelRules()))}
    tracker.log_metric("data/solutions", stats["solutions"])
    tracker.log_metric("data/prefixes", stats["prefixes"])
    write_jsonl_atomic(folder / "sorm-labels.jsonl", labelled)
    write_manifest(folder, "sorm-labels", student, config, stats)
    tracker.log_artifact("sorm-labels", str(folder / "sorm-labels.jsonl"), {"solutions": len(labelled)})
    return labelled
