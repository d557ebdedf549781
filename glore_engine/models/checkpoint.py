"""Checkpoint folders: a Hugging Face folder (safetensors) plus a JSON card saying what it is.

Roles: "policy" (student), "orm", "sorm", "refiner-global", "refiner-local". Loading checks the
role, so a reward model given where a policy is expected (or the reverse) is a clear error.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CheckpointError

CARD_NAME = "glore_card.json"
POLICY_ROLES = ("policy", "refiner-global", "refiner-local")
REWARD_ROLES = ("orm", "sorm")
ROLES = POLICY_ROLES + REWARD_ROLES


@dataclass
class Card:
    role: str
    base: str  # preset name, path or hub id it started from
    run_id: int | None = None
    config: dict = field(default_factory=dict)
    tokenizer: str = ""  # tokenizer fingerprint
    created_at: str = ""
    metrics: dict = field(default_factory=dict)
    glore_version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def write_card(folder: str | Path, card: Card) -> None:
    from .. import __version__

    card.created_at = card.created_at or time.strftime("%Y-%m-%dT%H:%M:%S")
    card.glore_version = card.glore_version or __version__
    Path(folder, CARD_NAME).write_text(card.to_json())


def read_card(folder: str | Path) -> Card | None:
    """The card of a local checkpoint folder, or None for a plain HF folder or hub id."""
    path = Path(folder, CARD_NAME)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return Card(**{k: v for k, v in data.items() if k in Card.__dataclass_fields__})
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint card ({exc})") from exc


def check_role(folder: str | Path, expected: tuple[str, ...] | str) -> Card | None:
    """Raise CheckpointError when a checkpoint's card names a role outside `expected`."""
    expected = (expected,) if isinstance(expected, str) else expected
    card = read_card(folder)
    if card is not None and card.role not in expected:
        want = " or ".join(expected)
        raise CheckpointError(f"{folder} is a checkpoint of role '{card.role}'; expected role {want}")
    return card


WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
SUPPORTED = "a Hugging Face model folder: config.json, tokenizer files and model.safetensors (or pytorch_model.bin)"


def looks_local(name_or_path: str) -> bool:
    """A path (exists, or is spelled like one) rather than a hub id such as 'org/model'.

    Hub ids are 'name' or 'org/name'; 'runs/student' is taken for a path when a folder 'runs' is here,
    so a typo fails at once instead of being tried on the hub.
    """
    p = Path(name_or_path)
    return (
        p.exists()
        or name_or_path.startswith((".", "/", "~"))
        or "\\" in name_or_path
        or name_or_path.count("/") > 1
        or name_or_path.lower().endswith(WEIGHT_FILES)
        or ("/" in name_or_path and Path(name_or_path.split("/", 1)[0]).is_dir())
    )


def require_folder(path: str | Path, what: str = "model") -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{what} not found: {path}{_near_miss(path)}")
    if not path.is_dir():
        raise CheckpointError(f"{what} path {path} is a file, not a folder: pass its folder ({SUPPORTED})")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} is not a Hugging Face model folder (no config.json); expected {SUPPORTED}")
    return path


def _near_miss(path: Path) -> str:
    """' (did you mean runs/student?)' when a sibling's name is close: the usual cause is a typo."""
    import difflib

    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return ""
    names = [p.name for p in parent.iterdir() if p.is_dir()]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.75)
    return f" (did you mean {parent / close[0]}?)" if close else ""


def unreadable_weights() -> tuple[type[BaseException], ...]:
    """What from_pretrained raises on a truncated or corrupt weights file (safetensors; torch.load for .bin)."""
    import pickle

    from safetensors import SafetensorError

    return (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError)


def atomic_save(folder: str | Path, save) -> Path:
    """Run save(tmp_dir), then swap tmp_dir into place: a crash or full disk never leaves half a model."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not save checkpoint to {folder}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder
