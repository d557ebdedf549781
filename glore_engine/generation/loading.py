"""Open a policy checkpoint as a sampling backend."""

from __future__ import annotations

from ..models.checkpoint import POLICY_ROLES


def open_policy_backend(
    model: str, backend: str = "transformers", batch_size: int = 256, device: str = "", roles=POLICY_ROLES
):
    """(backend, tokenizer, card) for a policy folder or hub id."""
    from ..errors import ConfigError
    from ..models.causal_lm import load_causal_lm
    from ..runtime import pick_device
    from . import make_backend

    if not model:
        raise ConfigError("no model given: pass --model PATH (a checkpoint folder or hub id)")
    device = pick_device(device or None)
    if backend == "vllm":
        from ..models.causal_lm import load_tokenizer
        from ..models.checkpoint import check_role

        card = check_role(model, roles)
        return make_backend("vllm", model_path=model), load_tokenizer(model), card
    lm, tokenizer, card = load_causal_lm(model, roles=roles, device=device)
    return make_backend(backend, lm, tokenizer, batch_size=batch_size), tokenizer, card
