"""Helpers shared by the engine tests: tiny policies, a scripted model, hand-made problems."""

from __future__ import annotations

QUESTION = "Tom has 3 boxes of 4 apples. He eats 2 apples. How many apples are left?"
SOLUTION = "Tom has 3*4=<<3*4=12>>12 apples.\nHe eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10"


def make_policy(tokenizer, seed: int = 0, std: float | None = 0.3, max_positions: int = 512):
    """A tiny random Llama; std re-draws every matrix so greedy output is varied, not one repeated token."""
    import torch

    from glore_engine.models.causal_lm import ARCH_PRESETS, create_policy

    preset = ARCH_PRESETS["tiny"]
    if max_positions != preset.max_positions:
        from dataclasses import replace

        preset = replace(preset, max_positions=max_positions)
    torch.manual_seed(seed)
    model = create_policy(preset, tokenizer).eval()
    if std:
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim >= 2:
                    p.normal_(std=std)
    return model


class Script:
    """Forces a model to emit a scripted token sequence after a given prompt (a forward hook).

    The k-th new token is script[k], with k read from the row's position ids, so it works with
    the KV cache, n samples per prompt and rows dropping out. Past the script's end it emits
    `filler` forever (no newline, no EOS), so every stop the test sees comes from the script.
    """

    def __init__(self, model, tokenizer, prompt: str, text: str, eos: bool = False, filler: str = "x"):
        self.model = model
        self.prompt_len = len(tokenizer(prompt).input_ids)
        self.ids = tokenizer(text, add_special_tokens=False).input_ids + ([tokenizer.eos_token_id] if eos else [])
        self.filler = tokenizer(filler, add_special_tokens=False).input_ids[0]
        self.calls: list[tuple[int, int]] = []  # (batch, sequence length) of every forward
        self.handle = model.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        import torch

        ids = kwargs["input_ids"]
        self.calls.append(tuple(ids.shape))
        k = kwargs["position_ids"][:, -1] + 1 - self.prompt_len  # index of the token to emit, per row
        table = torch.tensor(self.ids + [self.filler], device=ids.device)
        target = table[k.clamp(0, len(self.ids))]
        logits = output.logits
        bias = torch.zeros_like(logits[:, -1])
        bias[torch.arange(bias.shape[0]), target] = 1e4
        logits[:, -1] = logits[:, -1] + bias
        return output

    def remove(self):
        self.handle.remove()


def problems(n: int = 6, seed: int = 0, split: str = "train"):
    from glore_engine.tasks.synthetic import generate

    return generate(split, n, seed=seed)


def wrong(solution: str) -> str:
    """A gold solution with its final answer off by one."""
    lines = solution.splitlines()
    return "\n".join(lines[:-1] + [f"#### {int(lines[-1].removeprefix('####').strip()) + 1}"])
