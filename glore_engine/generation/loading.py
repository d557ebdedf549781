"""Open a policy checkpoint as a sampling backend."""

from __future__ import annotations

from ..models.checkpoint import POLICY_ROLES


def open_policy_backend(model: str, backend: str = "auto", batch_size: int = 256, device: str = "", roles=POLICY_ROLES):
    """(backend, tokenizer, card) for a policy folder or hub id; "auto": vLLM on a GPU where installed."""
    from ..errors import ConfigError
    from ..models.causal_lm import load_causal_lm
    from ..runtime import pick_device
    from . import make_backend, resolve_backend

    if not model:
        raise ConfigError("no model given: pass --model PATH (a checkpoint folder or hub id)")
    backend = resolve_backend(backend)
    if backend == "vllm":
        from ..models.checkpoint import check_role
        from .vllm_backend import VLLMBackend

        card = check_role(model, roles)
        engine = VLLMBackend(model, batch_size=batch_size)
        return engine, engine.tokenizer, card
    device = pick_device(device or None)
    lm, tokenizer, card = load_causal_lm(model, roles=roles, device=device)
    return make_backend(backend, lm, tokenizer, batch_size=batch_size), tokenizer, card
