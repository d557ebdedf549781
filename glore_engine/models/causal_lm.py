"""Causal LMs: create a small Llama from a preset, or load any local HF folder or hub id; save with a card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, one_line
from .checkpoint import (
    POLICY_ROLES,
    Card,
    atomic_save,
    check_role,
    looks_local,
    read_card,
    require_folder,
    unreadable_weights,
    write_card,
)
from .tokenizer import fingerprint, prepare_tokenizer


@dataclass(frozen=True)
class ArchPreset:
    """A from-scratch Llama architecture: tiny (tests), demo (the bundled family, 0.89M parameters), small, medium."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int = 512
    vocab_size: int = 1024  # tokenizer training target; the trained vocabulary may be smaller


ARCH_PRESETS = {
    "tiny": ArchPreset(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=512),
    "demo": ArchPreset(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=352),
    "small": ArchPreset(hidden_size=256, num_layers=6, num_heads=8, intermediate_size=704),
    "medium": ArchPreset(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=1408),  # 26M: GPU check
}


def is_preset(name: str) -> bool:
    return name in ARCH_PRESETS


def create_policy(preset: str | ArchPreset, tokenizer):
    """A randomly initialised LlamaForCausalLM sized by the preset, matching the tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    arch = ARCH_PRESETS[preset] if isinstance(preset, str) else preset
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_heads,
        intermediate_size=arch.intermediate_size,
        max_position_embeddings=arch.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"could not load a tokenizer from {name_or_path}: {one_line(exc)}") from exc
    return prepare_tokenizer(tok)


def load_causal_lm(name_or_path: str | Path, roles=POLICY_ROLES, device: str = "cpu", dtype=None):
    """(model, tokenizer, card) for a local checkpoint folder or a hub id; checks the card's role."""
    import torch
    from transformers import AutoModelForCausalLM

    name = str(name_or_path)
    card = None
    if looks_local(name):
        folder = require_folder(name)
        card = check_role(folder, roles)
        name = str(folder)
    dtype = dtype or (torch.float32 if device == "cpu" else torch.bfloat16)
    tokenizer = load_tokenizer(name)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
    except unreadable_weights() as exc:
        raise CheckpointError(
            f"cannot read the weights in {name}: {one_line(exc)} (a truncated or corrupt file?)"
        ) from exc
    except (OSError, ValueError) as exc:
        hint = "" if looks_local(name) else " (no hub access here? pass a local model folder)"
        raise CheckpointError(f"could not load a causal LM from {name}: {one_line(exc)}{hint}") from exc
    model.to(device).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, card


def save_causal_lm(model, tokenizer, folder: str | Path, card: Card, dtype=None, state_dict=None) -> Path:
    """Save an HF folder (safetensors) + card atomically; dtype (e.g. float16) casts a copy for shipping.

    state_dict: the weights to write instead of model's own (gathered from FSDP / ZeRO-3 shards).
    """
    card.tokenizer = card.tokenizer or fingerprint(tokenizer)

    def save(tmp: Path) -> None:
        to_save = model
        if dtype is not None:
            import copy

            to_save = copy.deepcopy(model).to(dtype)
        to_save.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        write_card(tmp, card)

    return atomic_save(folder, save)


def preset_or_checkpoint(base: str, tokenizer_factory=None, device: str = "cpu"):
    """Resolve a student base: a preset name builds a fresh model (tokenizer from tokenizer_factory)."""
    if is_preset(base):
        if tokenizer_factory is None:
            raise CheckpointError(f"preset {base!r} needs a tokenizer to be trained first")
        tokenizer = prepare_tokenizer(tokenizer_factory(ARCH_PRESETS[base]))
        return create_policy(base, tokenizer).to(device), tokenizer, None
    return load_causal_lm(base, device=device)


__all__ = [
    "ARCH_PRESETS",
    "ArchPreset",
    "Card",
    "count_parameters",
    "create_policy",
    "is_preset",
    "load_causal_lm",
    "load_tokenizer",
    "preset_or_checkpoint",
    "read_card",
    "save_causal_lm",
]
