"""Stepping a transformers causal LM through one chunk: prefill the prompts once, then one token per row.

Two decoders with one interface (prefill, expand, step, keep):
- SharedPrefixDecoder: the model's own layers with `attention.shared_prefix_attention`, which keeps
  the KV cache itself (one prefix per prompt, a pre-allocated suffix per sampled row) and needs no
  attention mask from transformers. Used for every model whose attention dispatches through
  transformers' AttentionInterface.
- CacheDecoder: transformers' DynamicCache and a growing attention mask; works for any causal LM.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..padding import length_runs
from . import attention


def cache_keyword(model) -> str:
    """transformers renamed `past_key_values` to `cache` in 5.x; accept both."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def supports_shared_prefix(model) -> bool:
    """True when every layer is full attention through the attention interface (no sliding or linear layers)."""
    config = model.config
    if not getattr(model, "_supports_attention_backend", False):
        return False
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return all(t == "full_attention" for t in layer_types)


class SharedPrefixDecoder:
    """prefill (P, W) prompts -> (P, V) logits; expand to n rows each; step (B,) tokens -> (B, V) logits."""

    def __init__(self, model, max_new_tokens: int, fused_step=None):
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.fused_step = fused_step  # fused.FusedStep for Llama-family models, else None: the model's forward
        self.kv: attention.SharedPrefixKV | None = None

    def prefill(self, ids, mask, positions):
        """ids, mask, positions (P, W) -> logits (P, V).

        Prompts of similar length are prefilled together, each group only as wide as its longest
        prompt, then their keys and values are left-padded into one (P, Hkv, W, D) prefix: padding
        cost the full width in every matmul and the square of it in attention (the refiners' prompts
        of a 50-draft batch are 61-67 % real tokens; `padding.length_runs`)."""
        import torch

        self.kv = attention.SharedPrefixKV(mask, 1, self.max_new_tokens)
        lengths = mask.sum(-1)  # (P,)
        width = mask.shape[1]
        logits = None
        parts: dict[int, list] = {}
        order = torch.argsort(lengths, stable=True).tolist()
        for run in length_runs(order):
            rows = torch.tensor(run, device=mask.device)  # (R,)
            w = int(lengths[rows].max())
            part = attention.SharedPrefixKV(mask[rows, width - w :], 1, self.max_new_tokens)
            out = self._forward(ids[rows, width - w :], positions[rows, width - w :], part)  # (R, V)
            if logits is None:
                logits = out.new_empty(mask.shape[0], out.shape[1])  # (P, V)
            logits[rows] = out
            for key, kv in part.prefix.items():
                parts.setdefault(key, []).append((rows, kv))
        for key, pieces in parts.items():
            self.kv.prefix[key] = tuple(_left_padded(pieces, i, mask.shape[0], width) for i in (0, 1))
        self.kv.start_decoding()
        assert logits is not None
        return logits

    def expand(self, n: int) -> None:
        """Each prompt now has n sampled rows (rows p*n .. p*n+n-1)."""
        assert self.kv is not None
        self.kv.n = n

    def step(self, tokens, positions):
        """tokens, positions (B,) -> logits (B, V); writes suffix column kv.step."""
        assert self.kv is not None
        if self.fused_step is not None:
            logits = self.fused_step(tokens, positions, self.kv)
        else:
            logits = self._forward(tokens[:, None], positions[:, None])
        self.kv.advance()
        return logits

    def keep(self, rows) -> None:
        """Keep batch rows `rows` (B',)."""
        assert self.kv is not None
        self.kv.keep(rows)

    def _forward(self, ids, positions, kv=None):
        config = self.model.config
        previous = config._attn_implementation
        config._attn_implementation = attention.NAME  # for this call only: the model stays as it was
        try:
            kv = kv if kv is not None else self.kv
            out = self.model(input_ids=ids, position_ids=positions, use_cache=False, logits_to_keep=1, glore_kv=kv)
        finally:
            config._attn_implementation = previous
        return out.logits[:, -1].float()  # (B, V)


def _left_padded(pieces, i: int, prompts: int, width: int):
    """Keys (i=0) or values (i=1) of each group, (R, Hkv, w, D), at their rows of one (P, Hkv, W, D)."""
    first = pieces[0][1][i]
    out = first.new_zeros(prompts, first.shape[1], width, first.shape[3])
    for rows, kv in pieces:
        out[rows, :, width - kv[i].shape[2] :] = kv[i]
    return out


class CacheDecoder:
    """The same interface over transformers' DynamicCache (any causal LM)."""

    def __init__(self, model, max_new_tokens: int):
        self.model = model
        self._cache_kw = cache_keyword(model)
        self.cache: Any = None
        self.mask: Any = None  # (B, T) attention mask over prompt and generated tokens

    def prefill(self, ids, mask, positions):
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.model.config)
        self.mask = mask
        return self._forward(ids, positions)

    def expand(self, n: int) -> None:
        if n > 1:
            self.cache.batch_repeat_interleave(n)
            self.mask = self.mask.repeat_interleave(n, 0)

    def step(self, tokens, positions):
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)  # (B, T + 1)
        return self._forward(tokens[:, None], positions[:, None])

    def keep(self, rows) -> None:
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]

    def _forward(self, ids, positions):
        kwargs = {self._cache_kw: self.cache, "use_cache": True, "logits_to_keep": 1}
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions, **kwargs)
        return out.logits[:, -1].float()  # (B, V)
