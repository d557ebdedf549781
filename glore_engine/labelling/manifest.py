"""Stage folders: the records a data stage wrote, and the manifest that says what produced them.

An ORM-data folder holds `orm-data.jsonl`, a SORM-labels folder `sorm-labels.jsonl`, each beside
`manifest.json` (kind, student, tokenizer fingerprint, task, config, stats) and the `shards/`
they were assembled from. Labels belong to the student that sampled them: a model that learns
from a folder must share its tokenizer and task, which `load_records(..., base=...)` checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import to_dict
from ..errors import DataError

MANIFEST = "manifest.json"


def write_manifest(folder: Path, kind: str, student: str, config, stats: dict) -> None:
    from ..models.causal_lm import load_tokenizer
    from ..models.tokenizer import fingerprint
    from ..tasks.model_task import task_config_from_card, task_dict

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
    from ..models.causal_lm import load_tokenizer
    from ..models.tokenizer import fingerprint
    from ..tasks.model_task import task_config_from_card, task_dict

    tok = fingerprint(load_tokenizer(base))
    if manifest.get("tokenizer") != tok:
        raise DataError(
            f"{what} were made with tokenizer {manifest.get('tokenizer')} but {base} uses {tok}: "
            "labels belong to the student that sampled them"
        )
    if manifest.get("task") and manifest["task"] != task_dict(task_config_from_card(base)):
        raise DataError(f"{what} come from another task ({manifest['task']}) than {base} was trained on")


def load_records(path: str | Path, kind: str, base: str | None = None) -> list[dict]:
    """The records of a finished stage folder; with `base`, checked against the model that will use them."""
    from .shards import read_jsonl

    records_file, manifest = read_manifest(path, kind)
    if base:
        check_compatible(manifest, base, f"{kind} in {records_file.parent}")
    return list(read_jsonl(records_file))


def write_records(folder: Path, kind: str, records: list[dict], student: str, config, stats: dict) -> Path:
    """Finish a stage folder: the records file (atomically), then its manifest; returns the records file."""
    from .shards import write_jsonl_atomic

    path = folder / f"{kind}.jsonl"
    write_jsonl_atomic(path, records)
    write_manifest(folder, kind, student, config, stats)
    return path
