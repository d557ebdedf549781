"""A GLoRe family: the five models the pipeline runs, how a family folder is laid out, loading one.

A family folder holds one sub-folder per member (`student/ orm/ sorm/ refiner-global/
refiner-local/`), each a checkpoint whose card names its role. This module is the one definition
of that layout; the bundle, the app, the CLI and the test helpers read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CheckpointError

if TYPE_CHECKING:
    from .generation.base import Backend
    from .models.reward_model import RewardScorer


@dataclass(frozen=True)
class Member:
    folder: str  # sub-folder of a family folder
    role: str  # the role its checkpoint card carries
    key: str  # its key in GloreModels.paths


MEMBERS = (
    Member("student", "policy", "student"),
    Member("orm", "orm", "orm"),
    Member("sorm", "sorm", "sorm"),
    Member("refiner-global", "refiner-global", "global"),
    Member("refiner-local", "refiner-local", "local"),
)
MEMBER_FOLDERS = tuple(m.folder for m in MEMBERS)
REWARD_MEMBERS = ("orm", "sorm")


def missing_members(folder: str | Path) -> list[str]:
    """Members absent from a family folder (a member is a sub-folder with its config.json)."""
    return [m for m in MEMBER_FOLDERS if not (Path(folder) / m / "config.json").is_file()]


def require_family(folder: str | Path) -> Path:
    """The folder, or a CheckpointError naming the members it lacks."""
    missing = missing_members(folder)
    if missing:
        raise CheckpointError(
            f"no model family in {folder} (missing: {', '.join(missing)}); "
            "run `glore-train demo` to train one, or pass a family folder"
        )
    return Path(folder)


@dataclass
class GloreModels:
    """The five checkpoints of a family, loaded once; every model must share one tokenizer."""

    student: Backend
    orm: RewardScorer
    sorm: RewardScorer
    global_refiner: Backend
    local_refiner: Backend
    paths: dict[str, str] = field(default_factory=dict)  # member key -> checkpoint folder

    @classmethod
    def load(
        cls,
        student: str,
        orm: str,
        sorm: str,
        global_refiner: str,
        local_refiner: str,
        device: str | None = None,
        batch_size: int = 128,
    ) -> GloreModels:
        from .generation.hf_backend import TransformersBackend
        from .models.causal_lm import load_causal_lm
        from .models.reward_model import RewardScorer, load_reward_model, share_backbones
        from .models.tokenizer import fingerprint
        from .runtime import pick_device

        device = pick_device(device)
        paths = {"student": student, "orm": orm, "sorm": sorm, "global": global_refiner, "local": local_refiner}
        policies, scorers, prints = {}, {}, {}
        for member in MEMBERS:
            path = paths[member.key]
            if member.folder in REWARD_MEMBERS:
                model, tok, _ = load_reward_model(path, roles=(member.role,), device=device)
                scorers[member.key] = RewardScorer(model, tok, batch_size=batch_size)
            else:
                lm, tok, _ = load_causal_lm(path, roles=(member.role,), device=device)
                policies[member.key] = TransformersBackend(lm, tok, batch_size=batch_size)
            prints[member.key] = fingerprint(tok)
        if len(set(prints.values())) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in prints.items())
            raise CheckpointError(f"these models do not share one tokenizer ({detail}); train them from one student")
        share_backbones([scorers["orm"], scorers["sorm"]])  # one frozen base: one backbone pass scores both
        return cls(policies["student"], scorers["orm"], scorers["sorm"], policies["global"], policies["local"], paths)

    @classmethod
    def bundled(cls, **kwargs) -> GloreModels:
        """The demo family shipped inside the package (see glore_engine/bundled/BUNDLE.md)."""
        from .bundled import require_bundle

        return cls.from_folder(require_bundle(), **kwargs)

    @classmethod
    def from_folder(cls, folder: str | Path, **kwargs) -> GloreModels:
        """A family laid out as folder/{student,orm,sorm,refiner-global,refiner-local}."""
        folder = Path(folder)
        student, orm, sorm, glob, loc = (str(folder / m.folder) for m in MEMBERS)
        return cls.load(student, orm, sorm, glob, loc, **kwargs)


def export_family(trained: dict[str, str | Path], folder: str | Path) -> Path:
    """Save each trained member (member folder name -> checkpoint) as fp16 safetensors under folder/<member>."""
    import torch

    from .models.causal_lm import load_causal_lm, save_causal_lm
    from .models.checkpoint import read_card
    from .models.reward_model import load_reward_model, save_reward_model

    folder = Path(folder)
    for member in MEMBERS:
        source = trained[member.folder]
        card = read_card(source)
        if card is None:
            raise CheckpointError(f"{source} has no checkpoint card: not a model this project trained")
        if member.folder in REWARD_MEMBERS:
            model, tok, _ = load_reward_model(source)
            save_reward_model(model, tok, folder / member.folder, card, dtype=torch.float16)
        else:
            lm, tok, _ = load_causal_lm(source, roles=(card.role,))
            save_causal_lm(lm, tok, folder / member.folder, card, dtype=torch.float16)
    return folder
