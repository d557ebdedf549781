"""Peers on one workload: SORM rollouts, K = 8 from every step prefix of 128 solutions of the bundled student.

Three engines on the same prompts (T = 1, up to 192 new tokens, the SORM labelling defaults):
1. `model.generate(num_return_sequences=K)`, 64 prefixes (512 rows) per call;
2. this project's sampler (`generation/hf_backend.py`), batch 512 rows;
3. vLLM (`LLM.generate`, n = K, prefix caching on), in the vLLM venv: this script starts itself there
   as a subprocess (`--vllm-python`, default .venv-vllm/bin/python) and sends it the prompts.
vLLM runs its rounds first and is shut down before the others run: an idle vLLM engine keeps
polling for work and takes the cores from torch's threads (a first run that interleaved the
engines measured the sampler at a tenth of its speed). Then rounds interleave generate and the
sampler. The medians of `--repeat` rounds are printed, with tokens/s, rollouts/s and the ratios.

    python bench/bench_peers.py                 # or: make bench-peers
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import parser

ROOT = Path(__file__).resolve().parents[1]
K, TEMPERATURE, MAX_NEW_TOKENS, BATCH_ROWS = 8, 1.0, 192, 512


# ---- the workload --------------------------------------------------------------------------------
def rollout_prompts(backend, student: str, n_solutions: int) -> list[str]:
    """Every distinct step prefix (P_1 .. P_{L-1}) of one T=1 sample per problem, as label_solutions builds them."""
    from glore_engine.formats import join_steps, student_prompt
    from glore_engine.labelling.rollouts import prefix_prompt
    from glore_engine.tasks.model_task import load_eval_problems
    from glore_engine.tasks.steps import split_steps

    problems = load_eval_problems("synthetic", "test", n_solutions, 0, student)
    drafts = backend.generate([student_prompt(p.question) for p in problems], n=1, temperature=1.0, seed=0)
    unique: dict[tuple, str] = {}
    for p, (draft,) in zip(problems, drafts):
        steps = split_steps(draft.text)
        for i in range(1, len(steps)):
            unique.setdefault((p.id, join_steps(steps[:i])), prefix_prompt(p.question, steps, i))
    return list(unique.values())


# ---- the engines ---------------------------------------------------------------------------------
def run_generate(model, tok, prompts: list[str], seed: int) -> tuple[int, int, float]:
    """(tokens, rollouts, seconds) of model.generate on batches of prompts, K sequences each."""
    import torch

    tok.padding_side = "left"
    per_call = BATCH_ROWS // K
    tokens, started = 0, time.perf_counter()
    torch.manual_seed(seed)
    with torch.inference_mode():
        for start in range(0, len(prompts), per_call):
            enc = tok(prompts[start : start + per_call], padding=True, return_tensors="pt")
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=TEMPERATURE,
                top_k=0,
                top_p=1.0,
                num_return_sequences=K,
                max_new_tokens=MAX_NEW_TOKENS,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
            new = out[:, enc.input_ids.shape[1] :]  # (rows, T)
            tokens += int(_lengths(new, tok.eos_token_id).sum())
    return tokens, len(prompts) * K, time.perf_counter() - started


def _lengths(new, eos_id: int):
    """Tokens per row up to and including its first EOS (rows without one: all of them)."""
    is_eos = (new == eos_id).int()  # (rows, T)
    first = is_eos.argmax(1)
    return (first + 1).where(is_eos.any(1), new.new_full(first.shape, new.shape[1]))


def run_sampler(model, tok, prompts: list[str], seed: int) -> tuple[int, int, float]:
    from glore_engine.generation.hf_backend import TransformersBackend

    backend = TransformersBackend(model, tok, batch_size=BATCH_ROWS)
    started = time.perf_counter()
    backend.generate(prompts, n=K, temperature=TEMPERATURE, max_new_tokens=MAX_NEW_TOKENS, seed=seed)
    return backend.stats.generated_tokens, backend.stats.samples, time.perf_counter() - started


class VLLMPeer:
    """This script in --serve-vllm mode under the vLLM venv's python; one JSON line per request."""

    def __init__(self, python: str, student: str):
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--serve-vllm", student],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.info = self._read()

    def run(self, prompts: list[str], seed: int) -> tuple[int, int, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"prompts": prompts, "seed": seed}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        return reply["tokens"], reply["rollouts"], reply["seconds"]

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"the vLLM peer exited (code {self.proc.wait()})")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def serve_vllm(student: str) -> None:
    """Runs under the vLLM venv: load the engine once, then answer one request per input line."""
    from vllm import LLM, SamplingParams

    started = time.perf_counter()
    llm = LLM(
        model=student,
        dtype="float32",
        max_model_len=512,
        seed=0,
        enable_prefix_caching=True,
        max_num_seqs=BATCH_ROWS,
        kv_cache_memory_bytes=1 << 30,
    )
    import vllm

    print(json.dumps({"load_seconds": time.perf_counter() - started, "version": vllm.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        params = SamplingParams(n=K, temperature=TEMPERATURE, max_tokens=MAX_NEW_TOKENS)
        llm.reset_prefix_cache()  # every round starts cold, as the other engines do
        t = time.perf_counter()
        outputs = llm.generate(request["prompts"], params, use_tqdm=False)
        seconds = time.perf_counter() - t
        tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
        rollouts = sum(len(o.outputs) for o in outputs)
        print(json.dumps({"tokens": tokens, "rollouts": rollouts, "seconds": seconds}), flush=True)


# ---- the run --------------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-vllm":
        return serve_vllm(sys.argv[2])
    p = parser(__doc__)
    p.add_argument("--solutions", type=int, default=128)
    p.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    args = p.parse_args()
    import torch

    from glore_engine.bundled import BUNDLE_DIR
    from glore_engine.generation.hf_backend import TransformersBackend
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.runtime import configure

    configure()
    if args.threads:
        torch.set_num_threads(args.threads)
    student = args.model or str(BUNDLE_DIR / "student")
    model, tok, _ = load_causal_lm(student)
    prompts = rollout_prompts(TransformersBackend(model, tok), student, args.solutions)
    peer = VLLMPeer(args.vllm_python, student)
    print(f"model: {student}; {len(prompts)} prefixes of {args.solutions} solutions, K={K}, T={TEMPERATURE}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; vLLM {peer.info['version']} loaded in {peer.info['load_seconds']:.0f} s"
    )
    engines = {
        "model.generate(num_return_sequences=K)": lambda seed: run_generate(model, tok, prompts, seed),
        "GLoRe sampler (hf_backend)": lambda seed: run_sampler(model, tok, prompts, seed),
        "vLLM (LLM.generate, n=K)": lambda seed: peer.run(prompts, seed),
    }
    runs: dict[str, list] = {name: [] for name in engines}
    for r in range(args.repeat):
        for name, run in engines.items():
            tokens, rollouts, seconds = run(r)
            runs[name].append((tokens, rollouts, seconds))
            print(f"round {r + 1}: {name:42} {tokens / seconds:9,.0f} tokens/s  {seconds:6.1f} s", flush=True)
    peer.close()
    report(runs)


def report(runs: dict[str, list]) -> None:
    rates = {
        name: (
            statistics.median(t / s for t, _, s in rs),
            statistics.median(n / s for _, n, s in rs),
            sum(t for t, _, _ in rs) / sum(n for _, n, _ in rs),
        )
        for name, rs in runs.items()
    }
    base = next(iter(rates.values()))[0]
    print(f"\n{'engine':42} {'tokens/s':>10} {'rollouts/s':>11} {'tokens/rollout':>15} {'x generate':>11}")
    for name, (tps, rps, per) in rates.items():
        print(f"{name:42} {tps:10,.0f} {rps:11,.1f} {per:15.1f} {tps / base:11.2f}")
    names = list(rates)
    ours, vllm = rates[names[1]][0], rates[names[2]][0]
    print(f"\nGLoRe sampler / vLLM tokens/s: x{ours / vllm:.2f} (medians of {len(runs[names[0]])} rounds)")


if __name__ == "__main__":
    main()
