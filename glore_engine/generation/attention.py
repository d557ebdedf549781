"""Attention for sampling n continuations of each prompt: the prompt's keys and values are stored once.

Registered with transformers' AttentionInterface, so any causal LM whose attention layers dispatch
through `config._attn_implementation` (Llama, Qwen2, Mistral, GPT-NeoX, GPT-2, ...) runs it with
its own projections, rotary embeddings and MLPs. The function keeps the KV cache itself:

- prefill: the P left-padded prompts, causal attention; their keys and values are kept as the
  prefix, (P, Hkv, W, D), once per prompt rather than once per sample.
- decode: each of the B sampled rows (row = prompt g, sample j) adds one key and value to its own
  suffix buffer, (B, Hkv, S, D), allocated once for the whole decode (no concatenation per step).
  A row's query meets its prompt's prefix through one matmul per prompt for all its samples, and its
  own suffix; one softmax over both.

Reading a prompt's cache once for its n samples, instead of n times, is what makes long prefixes
(SORM rollouts from step prefixes) cheap: decode attention is bound by memory reads, not FLOPs.
"""

from __future__ import annotations

from typing import Any

NAME = "glore_shared_prefix"


class Unsupported(Exception):
    """The model asked for something this attention does not do (sliding window, soft-capping, sinks)."""


class SharedPrefixKV:
    """The KV cache of one chunk: prefixes per prompt, suffixes per sampled row, and who is who.

    Row r of the batch is sample `slot[r]` of prompt `group[r]`; `flat = group * n + slot` indexes a
    (P * n) grid of sample slots, so the queries of one prompt's samples can be laid side by side.
    """

    def __init__(self, prompt_mask, n: int, max_new_tokens: int):
        self.key_mask = prompt_mask.bool()  # (P, W) False at left padding
        self.prefix_bias = _bias(self.key_mask)  # (P, 1, 1, W) 0 or -inf
        self.n = n
        self.max_new_tokens = max_new_tokens
        self.step = -1  # -1 while prefilling; then the suffix column being written
        self.capacity = 0  # suffix columns allocated (grows by doubling: matmuls run over whole buffers)
        self.suffix_bias: Any = None  # (capacity,) 0 for written columns, -inf beyond
        self.flat: Any = None  # (B,) grid slot of each row; None while every slot of every prompt is alive
        self.prefix: dict[int, tuple] = {}  # id(attention module) -> (K, V), each (P, Hkv, W, D)
        self.suffix: dict[int, tuple] = {}  # id(attention module) -> (K, V), each (B, Hkv, capacity, D)

    @property
    def prompts(self) -> int:
        return self.key_mask.shape[0]

    def start_decoding(self) -> None:
        if not self.prefix:
            raise Unsupported("the model's attention layers do not dispatch through the attention interface")
        self.step = 0
        self._grow()

    def advance(self) -> None:
        """The step's token is written in every layer: the next step writes the next column."""
        self.step += 1
        if self.step >= self.capacity:
            self._grow()
        self.suffix_bias[self.step] = 0.0

    def _grow(self) -> None:
        import torch

        old = self.capacity
        self.capacity = max(16, 2 * old)
        device = self.key_mask.device
        self.suffix_bias = torch.full((self.capacity,), float("-inf"), device=device)
        self.suffix_bias[: self.step + 1] = 0.0
        self.suffix = {k: (_widen(sk, self.capacity), _widen(sv, self.capacity)) for k, (sk, sv) in self.suffix.items()}

    def keep(self, rows) -> None:
        """Keep only batch rows `rows` (B',), and drop prompts none of whose samples is left."""
        import torch

        flat = self.flat if self.flat is not None else torch.arange(self.prompts * self.n, device=rows.device)
        flat = flat[rows]  # (B',)
        groups, slot = flat // self.n, flat % self.n
        alive, new_group = torch.unique(groups, return_inverse=True)  # (P',), (B',)
        if len(alive) < self.prompts:
            self.key_mask, self.prefix_bias = self.key_mask[alive], self.prefix_bias[alive]
            self.prefix = {k: (pk[alive], pv[alive]) for k, (pk, pv) in self.prefix.items()}
        self.flat = None if len(flat) == self.prompts * self.n else new_group * self.n + slot
        self.suffix = {k: (sk[rows], sv[rows]) for k, (sk, sv) in self.suffix.items()}


def _bias(mask):
    """Additive attention bias (P, 1, 1, W) from a key mask (P, W)."""
    import torch

    bias = torch.zeros(mask.shape, device=mask.device).masked_fill_(~mask, float("-inf"))
    return bias[:, None, None, :]


def _widen(buffer, capacity: int):
    """The same rows and columns in a zero buffer of `capacity` columns (unwritten columns stay finite)."""
    out = buffer.new_zeros((*buffer.shape[:2], capacity, buffer.shape[3]))
    out[:, :, : buffer.shape[2]] = buffer
    return out


def shared_prefix_attention(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, glore_kv=None, **kwargs
):
    """query (B, H, q, D), key and value (B, Hkv, q, D) -> ((B, q, H, D), None), as transformers expects."""
    if glore_kv is None:
        raise Unsupported(f"{NAME} runs only inside the GLoRe sampler")
    for name in ("softcap", "s_aux", "position_bias"):
        if kwargs.get(name) is not None:
            raise Unsupported(f"the model's attention uses {name}")
    window = kwargs.get("sliding_window")
    if window is not None and window < glore_kv.key_mask.shape[1] + glore_kv.max_new_tokens:
        raise Unsupported(f"sliding-window attention ({window} tokens)")
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if glore_kv.step < 0:
        return _prefill(module, query, key, value, scaling, glore_kv), None
    return _decode(module, query, key, value, scaling, glore_kv), None


def _prefill(module, query, key, value, scaling: float, kv: SharedPrefixKV):
    """Causal attention over the left-padded prompts; their K/V become the shared prefix."""
    import torch
    import torch.nn.functional as F

    _, H, W, _ = query.shape
    # contiguous once here: as the transposed views the projections give, every decode step copied them
    kv.prefix[id(module)] = (key.contiguous(), value.contiguous())  # (P, Hkv, W, D) each
    causal = torch.ones(W, W, dtype=torch.bool, device=query.device).tril()  # (W, W)
    # padding queries attend to themselves only: every row keeps a finite softmax
    mask = (causal & kv.key_mask[:, None, :]) | torch.eye(W, dtype=torch.bool, device=query.device)  # (P, W, W)
    key, value = _repeat_heads(key, H), _repeat_heads(value, H)  # (P, H, W, D)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask[:, None], scale=scaling)  # (P, H, W, D)
    return out.transpose(1, 2).contiguous()  # (P, W, H, D)


def _repeat_heads(x, heads: int):
    """(P, Hkv, W, D) -> (P, H, W, D) for grouped-query attention."""
    groups = heads // x.shape[1]
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


def _decode(module, query, key, value, scaling: float, kv: SharedPrefixKV):
    """One new token per row: attend to the row's prompt (shared) and to the row's own samples so far."""
    import torch

    B, H, _, D = query.shape
    Hkv = key.shape[1]
    G = H // Hkv  # query heads per key/value head
    sk, sv = _suffix_buffers(module, key, kv)  # (B, Hkv, C, D) each, C = capacity
    sk[:, :, kv.step] = key[:, :, 0]
    sv[:, :, kv.step] = value[:, :, 0]
    pk, pv = kv.prefix[id(module)]  # (P, Hkv, W, D)
    P, W = pk.shape[0], pk.shape[2]
    q = (query * scaling).view(B, Hkv, G, D)  # (B, Hkv, G, D)

    # whole contiguous buffers: a matmul over a column slice would copy it first
    scores_suffix = q @ sk.transpose(-1, -2) + kv.suffix_bias  # (B, Hkv, G, C)
    scores_prefix = _to_grid(q, kv, P) @ pk.transpose(-1, -2) + kv.prefix_bias  # (P, Hkv, n*G, W)
    scores = torch.cat([_from_grid(scores_prefix, kv, P, G), scores_suffix], dim=-1)  # (B, Hkv, G, W + C)
    probs = scores.softmax(-1, dtype=torch.float32).to(sv.dtype)
    probs_prefix, probs_suffix = probs.split([W, kv.capacity], dim=-1)  # (B, Hkv, G, W), (B, Hkv, G, C)

    out = probs_suffix @ sv  # (B, Hkv, G, D)
    out_prefix = _to_grid(probs_prefix, kv, P) @ pv  # (P, Hkv, n*G, D)
    out = out + _from_grid(out_prefix, kv, P, G)  # (B, Hkv, G, D)
    return out.view(B, 1, H, D)


def _suffix_buffers(module, key, kv: SharedPrefixKV):
    buffers = kv.suffix.get(id(module))
    if buffers is None:
        B, Hkv, _, D = key.shape
        shape = (B, Hkv, kv.capacity, D)
        buffers = kv.suffix[id(module)] = (key.new_zeros(shape), key.new_zeros(shape))
    return buffers


def _to_grid(x, kv: SharedPrefixKV, P: int):
    """Rows (B, Hkv, G, X) -> prompt grid (P, Hkv, n*G, X); slots of finished samples are zeros."""
    _, Hkv, G, X = x.shape
    n = kv.n
    if kv.flat is not None:
        grid = x.new_zeros(P * n, Hkv, G, X)
        grid[kv.flat] = x
        x = grid
    return x.view(P, n, Hkv, G, X).transpose(1, 2).reshape(P, Hkv, n * G, X)


def _from_grid(x, kv: SharedPrefixKV, P: int, G: int):
    """Prompt grid (P, Hkv, n*G, X) -> rows (B, Hkv, G, X)."""
    _, Hkv, _, X = x.shape
    n = kv.n
    rows = x.view(P, Hkv, n, G, X).transpose(1, 2).reshape(P * n, Hkv, G, X)
    return rows if kv.flat is None else rows[kv.flat]


def register() -> str:
    """Register the attention function with transformers (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, shared_prefix_attention)
    return NAME
