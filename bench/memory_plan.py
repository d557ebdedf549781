"""Memory per GPU for the shipped configs (configs/<model>/*.yaml): the arithmetic behind README's
"Scale-out" tables. Batch sizes and lengths are read from the configs, architectures are the models'
own config.json values; nothing is measured here, every figure is this arithmetic:

  parameters      from the architecture (embeddings, attention with grouped KV heads, SwiGLU MLP, norms)
  model states    per parameter: DDP 4 (fp32 weights) + 4 (fp32 gradients) + 8 (AdamW m, v) = 16 bytes;
                  ZeRO-2: 2 (bf16 weights, on every GPU) + (2 bf16 gradients + 4 fp32 master + 8 AdamW) / N;
                  ZeRO-3 / FSDP: 16 / N
  activations     bf16, no activation checkpointing, fused attention (no T x T matrix): per token and
                  layer the tensors kept for backward, 6h + 2 kv d + 4i values (norm inputs and outputs,
                  q, k, v, attention output; gate, up, SiLU and product of the MLP), 2 bytes each; plus
                  10 bytes per vocabulary entry and token for the LM head's logits (bf16, fp32 in the
                  loss, fp32 gradient); the reward models' value head reads hidden states instead, and
                  their likelihood features run without gradients in chunks of 1 GiB (3 GiB at most)
  tokens per GPU  (batch / N) x max_length: every row padded to the longest, taken as max_length
  KV cache        per token 2 (K, V) x layers x kv heads x head dim x 2 bytes; rows x (prompt + new tokens)
  overhead        2 GiB per GPU for the CUDA context and allocator slack

    python bench/memory_plan.py            # markdown tables for LLaMA-2 7B, 13B and Qwen2.5-Math-1.5B
    python bench/memory_plan.py --summary  # one table, the models side by side (README)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
OVERHEAD = 2 * GIB
FEATURES = 3 * GIB  # reward models: chunked likelihood features (glore_engine.models.reward_model)
PROMPT_TOKENS = 256  # GSM8K question, or question + step prefix, as the sampler pads a chunk
PIPELINE_ROWS = 128  # GloreModels.load(batch_size=128): rows per forward pass in `glore-train eval`
PIPELINE_CONTEXT = 768  # refiner prompt (question + draft) + new tokens
GPU_GIB = 80  # the card the configs are sized for: A100 / H100 80 GB (81,920 MiB)


@dataclass(frozen=True)
class Arch:
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    tied: bool

    @property
    def parameters(self) -> int:
        h, d = self.hidden, self.head_dim
        attention = h * self.heads * d * 2 + h * self.kv_heads * d * 2  # q, o; k, v
        layer = attention + 3 * h * self.intermediate + 2 * h
        return self.layers * layer + self.vocab * h * (1 if self.tied else 2) + h

    def activation_bytes(self, lm_head: bool = True) -> int:
        """Bytes kept for backward per token (training)."""
        per_layer = 6 * self.hidden + 2 * self.kv_heads * self.head_dim + 4 * self.intermediate
        return self.layers * per_layer * 2 + (10 * self.vocab if lm_head else 0)

    @property
    def kv_bytes(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


# From each model's config.json on the Hugging Face hub.
ARCHS = {
    "llama2-7b": Arch(32000, 4096, 32, 32, 32, 128, 11008, tied=False),
    "llama2-13b": Arch(32000, 5120, 40, 40, 40, 128, 13824, tied=False),
    "qwen2.5-math-1.5b": Arch(151936, 1536, 28, 12, 2, 128, 8960, tied=True),
}
# How each model's training is launched: (strategy, GPUs). Sampling always runs one model per GPU.
PLANS = {
    "llama2-7b": ("zero2", 8),
    "llama2-13b": ("zero2", 8),
    "qwen2.5-math-1.5b": ("ddp", 1),
}
STRATEGY_NAMES = {"ddp": "DDP", "zero2": "ZeRO-2", "zero3": "ZeRO-3 / FSDP"}


def model_states(strategy: str, params: int, gpus: int) -> float:
    if strategy == "ddp":
        return 16 * params
    if strategy == "zero2":
        return 2 * params + 14 * params / gpus
    if strategy == "zero3":
        return 16 * params / gpus
    raise ValueError(f"unknown strategy {strategy!r}")


def read(model: str, stage: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "configs" / model / f"{stage}.yaml").read_text()) or {}


@dataclass
class Row:
    job: str
    setting: str
    states: float  # bytes
    working: float  # activations or KV cache, bytes
    what: str  # what `working` is

    @property
    def total(self) -> float:
        return self.states + self.working + OVERHEAD


def plan(model: str, strategy: str | None = None, gpus: int | None = None) -> list[Row]:
    """Per-GPU memory of every job of one model's configs."""
    arch = ARCHS[model]
    strategy = strategy or PLANS[model][0]
    gpus = gpus or PLANS[model][1]
    params = arch.parameters
    rows = []
    launch = f"{STRATEGY_NAMES[strategy]}, {gpus} GPU" + ("s" if gpus > 1 else "")

    def train_row(job: str, stage: str, sequences_key: str = "batch_size", per_sequence: int = 1, lm_head=True):
        cfg = read(model, stage)
        sequences = cfg[sequences_key] * per_sequence
        per_gpu = sequences / gpus
        tokens = per_gpu * cfg["max_length"]
        extra = 0 if lm_head else FEATURES
        rows.append(
            Row(
                job,
                f"{launch}; {per_gpu:g} x {cfg['max_length']} tokens per GPU",
                model_states(strategy, params, gpus),
                tokens * arch.activation_bytes(lm_head) + extra,
                "activations",
            )
        )

    train_row("student SFT", "sft")
    orm = read(model, "orm")
    train_row("ORM / SORM, whole model", "orm", per_sequence=orm["sample"]["n"], lm_head=False)
    rows.append(
        Row(
            "ORM / SORM, frozen backbone (lr 0)",
            "fp32 weights on each GPU; no backbone gradients or AdamW states",
            4 * params,
            FEATURES,
            "likelihood features",
        )
    )
    train_row("global / local refiner", "refine-global")
    for job, cfg in (("ORM samples", orm["sample"]), ("SORM rollouts", read(model, "sorm")["label"])):
        context = PROMPT_TOKENS + cfg["max_new_tokens"]
        rows.append(
            Row(
                job,
                f"one GPU; {cfg['batch_size']} rows x {context} tokens",
                2 * params,
                cfg["batch_size"] * context * arch.kv_bytes + cfg["batch_size"] * arch.vocab * 12,
                "KV cache",
            )
        )
    rows.append(
        Row(
            "pipeline (`glore-train eval`)",
            f"five models, one GPU; {PIPELINE_ROWS} rows x {PIPELINE_CONTEXT} tokens",
            5 * 2 * params,
            PIPELINE_ROWS * PIPELINE_CONTEXT * arch.kv_bytes,
            "KV cache",
        )
    )
    return rows


def table(model: str) -> str:
    arch = ARCHS[model]
    lines = [
        f"**{model}**: {arch.parameters / 1e9:.2f}B parameters; activations "
        f"{arch.activation_bytes() / 2**20:.1f} MiB a token in training; KV cache {arch.kv_bytes / 1024:.0f} KiB "
        f"a token; host RAM per training process {4 * arch.parameters / GIB:.0f} GiB (loaded in fp32 on CPU)",
        "",
        "| job | setting | model states | activations / KV cache | per GPU | fits 80 GB |",
        "|---|---|---|---|---|---|",
    ]
    for r in plan(model):
        fits = "yes" if r.total <= GPU_GIB * GIB else "no"
        lines.append(
            f"| {r.job} | {r.setting} | {r.states / GIB:.1f} GiB | {r.working / GIB:.1f} GiB {r.what} "
            f"| {r.total / GIB:.1f} GiB | {fits} |"
        )
    return "\n".join(lines)


def summary() -> str:
    """One table: jobs as rows, models as columns; each cell states + working + overhead = total."""
    plans = {m: plan(m) for m in ARCHS}
    heads = [f"{m} ({STRATEGY_NAMES[PLANS[m][0]]}, {PLANS[m][1]} GPU{'s' if PLANS[m][1] > 1 else ''})" for m in ARCHS]
    lines = ["| job | " + " | ".join(heads) + " |", "|---" * (len(ARCHS) + 1) + "|"]
    for i, row in enumerate(plans[next(iter(ARCHS))]):
        cells = []
        for m in ARCHS:
            r = plans[m][i]
            cells.append(f"{r.states / GIB:.1f} + {r.working / GIB:.1f} + 2 = **{r.total / GIB:.0f} GiB**")
        lines.append(f"| {row.job} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    import sys

    if "--summary" in sys.argv:
        print(summary())
        return
    print("\n\n".join(table(m) for m in ARCHS))


if __name__ == "__main__":
    main()
