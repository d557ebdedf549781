"""One decode step of a Llama-family model with fused projections: a third of the ops of its forward.

On a small model much of a decode step goes to dispatching ops: each of transformers' Llama layers
runs about 60 per new token (RMSNorm in six, rotary in eight, three projections for q, k and v, two
for gate and up), each through a module call. This step reads the same weights as one matrix for
q/k/v (q pre-scaled by the attention's scaling) and one for gate/up, normalises with
`F.rms_norm`, and rotates q and k together: about 20 per layer. Attention is `attention._decode`
on the same `SharedPrefixKV` the prefill filled, so the prefix stays shared across samples. On the
demo's policies (4 layers, width 128; 32 rows after 200-token prompts, 2 threads) a step took
7.3-8.6 ms through the model's forward and 4.9-5.2 ms here; what is left is mostly matmuls
(2.5 of 3.6 ms in a profile on one thread).

Only for float32 models whose layers are exactly Llama's (Llama, Qwen2, Mistral without an active
sliding window): `FusedStep.build` returns None for anything else, and the decoder keeps the
model's own forward. Prefill keeps the model's forward too: it is bound by matmuls, where fusing buys nothing.
The fused weights are a copy, so models above FUSE_MAX_BYTES keep their forward (there matmuls
dominate the step anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import attention

FUSE_MAX_BYTES = 1 << 30
MODEL_TYPES = ("llama", "qwen2", "mistral")
_LAYER_PARTS = {"self_attn", "mlp", "input_layernorm", "post_attention_layernorm"}
_ATTENTION_PARTS = {"q_proj", "k_proj", "v_proj", "o_proj"}
_MLP_PARTS = {"gate_proj", "up_proj", "down_proj", "act_fn"}
_RMS_NORMS = {"LlamaRMSNorm", "Qwen2RMSNorm", "MistralRMSNorm"}  # one formula: x * rsqrt(mean(x^2) + eps) * w
_SILU = {"SiLU", "SiLUActivation"}


@dataclass
class _Layer:
    attention: Any  # the model's attention module: SharedPrefixKV keys its cache by it
    norm_in: Any  # (Hd,) input RMSNorm weight
    norm_mid: Any  # (Hd,) post-attention RMSNorm weight
    qkv: Any  # ((H + 2 Hkv) D, Hd): q rows pre-scaled
    qkv_bias: Any  # ((H + 2 Hkv) D,) or None
    o: Any  # (Hd, H D)
    o_bias: Any
    gate_up: Any  # (2 I, Hd)
    gate_up_bias: Any
    down: Any  # (Hd, I)
    down_bias: Any


class FusedStep:
    """step(tokens (B,), positions (B,), kv) -> logits (B, V), equal to the model's forward within float error.

    Call `ready()` before each chunk: it refuses while the model is in training mode or has hooks
    (a forward hook, an adapter's wrapper: the fused copy would skip them), and re-fuses when any
    weight changed since the last fusing (a training step between two samplings bumps its version).
    """

    def __init__(self, model):
        config = model.config
        self.model = model
        self.layers: list[_Layer] = []
        self._stamp: tuple = ()
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = model.model.norm.variance_epsilon
        half = self.head_dim // 2
        self._sign = model.model.norm.weight.new_ones(self.head_dim)  # rotate_half(x) = roll(x) * sign
        self._sign[:half] = -1.0

    @classmethod
    def build(cls, model) -> FusedStep | None:
        """The fused step for a supported model, else None (the caller keeps the model's forward)."""
        return cls(model) if _supported(model) else None

    def ready(self) -> bool:
        """True when the step may stand in for the model's forward now, with weights fused from the current ones."""
        import torch

        if self.model.training or _hooked(self.model):
            return False
        stamp = tuple((p.data_ptr(), p._version) for p in self.model.parameters())
        if stamp != self._stamp:
            with torch.no_grad():
                self.layers = [_fuse(layer) for layer in self.model.model.layers]
            self._stamp = stamp
        return True

    def __call__(self, tokens, positions, kv):
        import torch
        import torch.nn.functional as F

        body = self.model.model
        B, H, Hkv, D = tokens.shape[0], self.heads, self.kv_heads, self.head_dim
        h = body.embed_tokens(tokens[:, None])  # (B, 1, Hd)
        cos, sin = body.rotary_emb(h, positions[:, None])  # (B, 1, D) each
        cos, sin = cos[:, None], (sin * self._sign)[:, None]  # (B, 1, 1, D)
        width = (h.shape[-1],)
        for layer in self.layers:
            x = F.rms_norm(h, width, layer.norm_in, self.eps)
            qkv = F.linear(x, layer.qkv, layer.qkv_bias).view(B, H + 2 * Hkv, 1, D)
            qk = qkv[:, : H + Hkv]  # (B, H + Hkv, 1, D)
            qk = torch.addcmul(qk * cos, qk.roll(D // 2, -1), sin)  # rotary, q and k at once
            q, k, v = qk[:, :H], qk[:, H:], qkv[:, H + Hkv :]
            out = attention._decode(layer.attention, q, k, v, 1.0, kv)  # (B, 1, H, D)
            h = h + F.linear(out.view(B, 1, H * D), layer.o, layer.o_bias)
            x = F.rms_norm(h, width, layer.norm_mid, self.eps)
            gate, up = F.linear(x, layer.gate_up, layer.gate_up_bias).chunk(2, dim=-1)  # (B, 1, I) each
            h = h + F.linear(F.silu(gate) * up, layer.down, layer.down_bias)
        h = F.rms_norm(h[:, 0], width, body.norm.weight, self.eps)  # (B, Hd)
        return self.model.lm_head(h).float()  # (B, V)


def _supported(model) -> bool:
    """Exactly Llama's layers: anything extra (q/k norms, sliding windows, logit scaling) is another model."""
    import torch

    config = model.config
    if getattr(config, "model_type", None) not in MODEL_TYPES or getattr(config, "hidden_act", None) != "silu":
        return False
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    if getattr(config, "pretraining_tp", 1) != 1:
        return False
    body = getattr(model, "model", None)
    if body is None or not all(hasattr(body, part) for part in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return False
    params = list(model.parameters())
    if sum(p.numel() * p.element_size() for p in params) > FUSE_MAX_BYTES:
        return False
    if any(p.dtype != torch.float32 for p in params):  # Llama's RMSNorm upcasts half precision its own way
        return False
    for layer in body.layers:
        parts = dict(layer.named_children())
        attn, mlp = parts.get("self_attn"), parts.get("mlp")
        if set(parts) != _LAYER_PARTS or attn is None or mlp is None:
            return False
        if set(dict(mlp.named_children())) != _MLP_PARTS or type(mlp.act_fn).__name__ not in _SILU:
            return False
        linears = [getattr(attn, name, None) for name in _ATTENTION_PARTS]
        linears += [getattr(mlp, name) for name in ("gate_proj", "up_proj", "down_proj")]
        if any(type(m) is not torch.nn.Linear for m in linears):  # an adapter's wrapper is not Llama's layer
            return False
        norms = [layer.input_layernorm, layer.post_attention_layernorm, body.norm]
        if any(type(m).__name__ not in _RMS_NORMS for m in norms):
            return False
    return True


def _hooked(model) -> bool:
    """Any forward hook, on any module or global: the fused step would run without it."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _fuse(layer) -> _Layer:
    import torch

    attn, mlp = layer.self_attn, layer.mlp
    scaling = attn.scaling
    q_weight = attn.q_proj.weight * scaling  # the scores' scaling, folded into q (rotary is linear)
    qkv = torch.cat([q_weight, attn.k_proj.weight, attn.v_proj.weight])
    qkv_bias = None
    if attn.q_proj.bias is not None:
        qkv_bias = torch.cat([attn.q_proj.bias * scaling, attn.k_proj.bias, attn.v_proj.bias])
    gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
    gate_up_bias = None if mlp.gate_proj.bias is None else torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias])
    return _Layer(
        attention=attn,
        norm_in=layer.input_layernorm.weight,
        norm_mid=layer.post_attention_layernorm.weight,
        qkv=qkv,
        qkv_bias=qkv_bias,
        o=attn.o_proj.weight,
        o_bias=attn.o_proj.bias,
        gate_up=gate_up,
        gate_up_bias=gate_up_bias,
        down=mlp.down_proj.weight,
        down_bias=mlp.down_proj.bias,
    )
