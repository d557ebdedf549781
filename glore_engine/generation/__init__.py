"""Sampling backends: transformers (default) and vLLM (optional, GPU only, imported when chosen)."""

from __future__ import annotations

from .base import Backend, GenerationStats, Sample

BACKENDS = ("transformers", "vllm")


def make_backend(kind: str, model=None, tokenizer=None, model_path: str | None = None, **kwargs) -> Backend:
    """A backend by name; vLLM needs the model's folder and is imported only here."""
    from ..errors import ConfigError

    if kind == "transformers":
        from .hf_backend import TransformersBackend

        return TransformersBackend(model, tokenizer, **kwargs)
    if kind == "vllm":
        from .vllm_backend import VLLMBackend

        if model_path is None:
            raise ConfigError("the vllm backend needs the model folder (model_path)")
        return VLLMBackend(model_path, **kwargs)
    raise ConfigError(f"unknown generation backend {kind!r} (choose from {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "GenerationStats", "Sample", "make_backend"]
