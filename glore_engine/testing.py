"""Tiny, untrained model families built from a config in seconds: for tests and UI development.

They produce gibberish, but every shape, role, card and file is real, so code paths are exercised
exactly as with trained models.
"""

from __future__ import annotations

from pathlib import Path

from .family import MEMBERS


def tiny_tokenizer(n_problems: int = 200, seed: int = 0):
    from .models.tokenizer import prepare_tokenizer, train_tokenizer
    from .tasks.synthetic import generate
    from .training.student import tokenizer_corpus

    return prepare_tokenizer(train_tokenizer(tokenizer_corpus(generate("train", n_problems, seed=seed)), 512))


def make_tiny_family(folder: str | Path, seed: int = 0, preset: str = "tiny") -> Path:
    """folder/{student,orm,sorm,refiner-global,refiner-local}: random tiny models sharing one tokenizer."""
    import torch

    from .models.causal_lm import create_policy, save_causal_lm
    from .models.checkpoint import Card
    from .models.reward_model import RewardModel, save_reward_model

    folder = Path(folder)
    tokenizer = tiny_tokenizer(seed=seed)
    torch.manual_seed(seed)
    for member in MEMBERS:
        name = member.folder
        lm = create_policy(preset, tokenizer)
        if name in ("orm", "sorm"):
            model = RewardModel(lm, tokenizer=tokenizer)
            torch.nn.init.normal_(model.head.weight, std=0.5)  # non-constant scores, like a trained head
            save_reward_model(model, tokenizer, folder / name, Card(role=name, base=preset))
        else:
            save_causal_lm(lm, tokenizer, folder / name, Card(role=member.role, base=preset))
    return folder
