"""Optional vLLM sampler for GPU machines (`pip install glore-workbench[vllm]`). Never needed on CPU."""

from __future__ import annotations

import time

from ..errors import ConfigError
from .base import GenerationStats, Sample


def _cut_after_answer(text: str) -> tuple[str, bool]:
    """Keep the text up to and including the `####` answer line."""
    lines = text.split("\n")
    for k, line in enumerate(lines):
        if line.lstrip().startswith("####"):
            return "\n".join(lines[: k + 1]), True
    return text, False


class VLLMBackend:
    """Same interface as TransformersBackend; seeds are per request, so batching never changes samples."""

    def __init__(self, model_path: str, gpu_memory_utilization: float = 0.85, dtype: str = "auto", **_):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ConfigError(
                "the vllm backend needs vLLM: pip install 'glore-workbench[vllm]' on a GPU machine"
            ) from exc
        self.llm = LLM(model=str(model_path), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization)
        self.tokenizer = self.llm.get_tokenizer()
        self.stats = GenerationStats()

    def generate(self, prompts, n=1, temperature=0.0, max_new_tokens=256, stop=None, seed=None, calculator=False):
        from vllm import SamplingParams

        if calculator:
            raise ConfigError("calculator mode is only available with the transformers backend")
        started = time.perf_counter()
        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                max_tokens=max_new_tokens,
                stop=stop or None,
                logprobs=0,
                seed=None if seed is None else seed * 1_000_003 + i,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for out in outputs:
            samples = []
            for c in out.outputs:
                text, answered = _cut_after_answer(c.text)
                logprob = float(c.cumulative_logprob or 0.0)
                samples.append(
                    Sample(
                        text=text.strip("\n"),
                        n_tokens=len(c.token_ids),
                        logprob=logprob,
                        finished=answered or c.finish_reason == "stop",
                    )
                )
                self.stats.generated_tokens += len(c.token_ids)
            self.stats.prompt_tokens += len(out.prompt_token_ids or [])
            results.append(samples)
        self.stats.prompts += len(prompts)
        self.stats.samples += len(prompts) * n
        self.stats.seconds += time.perf_counter() - started
        return results
