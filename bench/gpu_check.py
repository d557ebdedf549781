"""One GPU check: a 26M-parameter family trained and run on the synthetic task with bf16 autocast.

Trains the student (preset `medium`) for --train-seconds, then every other stage briefly through the
engine's own functions (no CLI, no store: nothing here imports sqlalchemy, gradio, datasets or
vLLM), and prints one table: training tokens/s, sampling tokens/s against `model.generate` on the
same prompts, one-pass scoring against scoring every prefix, rollouts/s, and peak GPU memory per
phase. `bench/gpu_check.sh` runs it under an 8-minute limit; `--smoke` runs tiny sizes on any device
(the test suite runs it on CPU).

    python bench/gpu_check.py [--smoke] [--train-seconds 150] [--work DIR] [--report FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if TYPE_CHECKING:
    from glore_engine.records import QuestionSamples


@dataclass(frozen=True)
class Sizes:
    preset: str
    n_train: int
    batch_size: int
    calibration_steps: int  # a short run that times the steps (the first 10 left out)
    min_steps: int
    max_steps: int
    eval_problems: int
    orm_questions: int
    n: int
    label_questions: int
    k: int
    rm_steps: int
    refiner_steps: int
    compare_prompts: int
    score_solutions: int
    pipeline_problems: int
    rows: int  # sampler rows per forward pass
    max_new_tokens: int


FULL = Sizes("medium", 20000, 64, 40, 300, 100_000, 256, 512, 8, 64, 8, 100, 150, 256, 1024, 128, 512, 128)
SMOKE = Sizes("tiny", 300, 8, 20, 6, 30, 8, 8, 2, 4, 2, 2, 2, 8, 16, 4, 64, 32)


class Report:
    """Rows of the table, printed as they come (a run cut short still shows what it measured)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.rows: list[tuple[str, str, str]] = []
        self.facts: dict = {}

    def add(self, what: str, value: str, detail: str = "", **facts) -> None:
        self.rows.append((what, value, detail))
        self.facts.update(facts)
        print(f"  {what:38} {value:>22}  {detail}", flush=True)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"rows": self.rows, **self.facts}, indent=2))

    def table(self) -> str:
        lines = ["| what | measured | detail |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows]
        return "\n".join(lines)


@contextmanager
def phase(device: str, seen: dict, name: str):
    """Wall time and peak GPU memory of one phase."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize()
        seen[name] = torch.cuda.max_memory_allocated() / 2**30
    seen[f"{name}_s"] = time.perf_counter() - start


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def with_gold(records: list[QuestionSamples], problems) -> list[QuestionSamples]:
    """Smoke only: a student trained for a few steps writes nothing correct; each question's gold
    solution joins its samples so the ORM, the SORM labels and both refiners get data."""
    from glore_engine.generation.base import Sample
    from glore_engine.labelling.orm_data import dedup_samples

    gold = {p.id: p for p in problems}
    for r in records:
        p = gold[r.problem_id]
        r.samples += dedup_samples([Sample(p.solution, 0, -1.0, True)], p.answer)
    return records


class StepClock:
    """A tracker that notes when each logged training step ended."""

    def __init__(self):
        self.times: dict[int, float] = {}

    def log_metric(self, key, value, step=None):
        if key == "train/loss" and step is not None:
            self.times[step] = time.perf_counter()

    def log_artifact(self, kind, path, meta=None):
        pass

    def set_summary(self, summary):
        pass


def train_family(sizes: Sizes, work: Path, report: Report, device: str, seconds: float, smoke: bool) -> dict:
    """Student (timed), ORM data, SORM labels, ORM, SORM, refiners: the family's folders."""
    from dataclasses import replace

    from glore_engine.labelling.orm_data import OrmDataConfig, make_orm_data
    from glore_engine.labelling.pairing import global_pairs, local_triples
    from glore_engine.labelling.rollouts import SormLabelConfig, make_sorm_labels
    from glore_engine.tasks.model_task import load_eval_problems
    from glore_engine.tracking import NullTracker
    from glore_engine.training.refiner import RefinerConfig, train_refiner
    from glore_engine.training.reward import RewardConfig, train_reward_model
    from glore_engine.training.student import StudentConfig, train_student

    peaks: dict = {}
    base = StudentConfig(
        base=sizes.preset,
        n_train=sizes.n_train,
        batch_size=sizes.batch_size,
        max_count=40,
        max_steps=sizes.calibration_steps,
        warmup_steps=min(30, sizes.min_steps // 2),
        save_every=0,
        log_every=50,
    )
    clock = StepClock()  # how many steps fit in `seconds` here, the first ten (warm-up) left out
    train_student(replace(base, log_every=10), work / "calibration", clock, progress=False)
    (first, t0), (last, t1) = min(clock.times.items()), max(clock.times.items())
    steps = min(sizes.max_steps, max(sizes.min_steps, int(seconds * (last - first) / (t1 - t0))))
    tracker = NullTracker()
    with phase(device, peaks, "sft"):
        student, result = train_student(replace(base, max_steps=steps), work / "student", tracker, progress=False)
    params = tracker.last("model/parameters") or 0
    report.add(
        "student SFT, bf16 autocast" if device.startswith("cuda") else "student SFT (fp32, CPU)",
        f"{result.tokens / result.seconds:,.0f} tokens/s",
        f"{params / 1e6:.2f}M parameters, {steps} steps x {sizes.batch_size}, {result.seconds:.0f} s, "
        f"loss {result.final_loss:.3f}",
        train_tokens_per_s=result.tokens / result.seconds,
        parameters=params,
        sft_steps=steps,
        sft_seconds=result.seconds,
    )
    student = str(student)
    sample = OrmDataConfig(
        student=student,
        n_questions=sizes.orm_questions,
        n=sizes.n,
        max_new_tokens=sizes.max_new_tokens,
        batch_size=sizes.rows,
    )
    tracker = NullTracker()
    with phase(device, peaks, "orm_samples"):
        records = make_orm_data(sample, work / "orm-data", tracker, progress=False, resume=False)
    report.add(
        "ORM samples (stage)",
        f"{tracker.last('sampling/tokens_per_s'):,.0f} tokens/s",
        f"{sizes.orm_questions} questions x {sizes.n}, accuracy {tracker.last('data/sample_accuracy'):.1%}",
        orm_sample_tokens_per_s=tracker.last("sampling/tokens_per_s"),
    )
    if smoke:
        records = with_gold(records, load_eval_problems("synthetic", "train", len(records), 1, student))
    label = SormLabelConfig(
        k=sizes.k, max_new_tokens=sizes.max_new_tokens, batch_size=sizes.rows, n_questions=sizes.label_questions
    )
    tracker = NullTracker()
    with phase(device, peaks, "sorm_rollouts"):
        labelled = make_sorm_labels(
            label, student, records, work / "sorm-labels", tracker, progress=False, resume=False
        )
    rollouts = tracker.last("rollouts/samples") or 0
    report.add(
        "SORM rollouts (stage)",
        f"{rollouts / peaks['sorm_rollouts_s']:,.0f} rollouts/s",
        f"{tracker.last('rollouts/tokens_per_s'):,.0f} tokens/s; {len(labelled)} solutions, K = {sizes.k}",
        rollouts_per_s=rollouts / peaks["sorm_rollouts_s"],
    )
    family = {"student": student}
    rm = {"base": student, "max_steps": sizes.rm_steps, "batch_size": 8, "warmup_steps": 2, "save_every": 0}
    with phase(device, peaks, "reward_training"):
        family["orm"] = str(
            train_reward_model(RewardConfig(role="orm", **rm), records, work / "orm", progress=False)[0]
        )
        family["sorm"] = str(
            train_reward_model(RewardConfig(role="sorm", **rm), labelled, work / "sorm", progress=False)[0]
        )
    refiner = {"base": student, "max_steps": sizes.refiner_steps, "batch_size": 16, "warmup_steps": 5, "save_every": 0}
    with phase(device, peaks, "refiner_training"):
        for kind, examples in (("global", global_pairs(records)), ("local", local_triples(labelled))):
            config = RefinerConfig(kind=kind, **refiner)
            family[kind] = str(train_refiner(config, examples, work / kind, progress=False)[0])
    family["peaks"] = peaks
    return family


def student_accuracy(family: dict, sizes: Sizes, report: Report, device: str) -> None:
    from glore_engine.evaluation.student import evaluate_student
    from glore_engine.generation.loading import open_policy_backend
    from glore_engine.tasks.model_task import load_eval_problems

    backend, _, _ = open_policy_backend(family["student"], batch_size=sizes.rows, device=device)
    problems = load_eval_problems("synthetic", "test", sizes.eval_problems, 0, family["student"])
    result = evaluate_student(backend, problems, k=0, max_new_tokens=sizes.max_new_tokens)
    report.add(
        "student greedy accuracy",
        f"{result.greedy_accuracy:.1%}",
        f"{sizes.eval_problems} synthetic test problems",
        greedy_accuracy=result.greedy_accuracy,
    )


def sampler_vs_generate(family: dict, sizes: Sizes, report: Report, device: str) -> None:
    """The same prompts, n samples each at T = 1, through this project's sampler and `model.generate`."""
    import torch

    from glore_engine.formats import student_prompt
    from glore_engine.generation.hf_backend import TransformersBackend
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.tasks.model_task import load_eval_problems

    model, tok, _ = load_causal_lm(family["student"], device=device)
    prompts = [
        student_prompt(p.question)
        for p in load_eval_problems("synthetic", "test", sizes.compare_prompts, 3, family["student"])
    ]
    backend = TransformersBackend(model, tok, batch_size=sizes.rows)
    backend.generate(prompts[:4], n=sizes.n, temperature=1.0, max_new_tokens=8, seed=0)  # warm-up
    sync(device)
    start = time.perf_counter()
    outs = backend.generate(prompts, n=sizes.n, temperature=1.0, max_new_tokens=sizes.max_new_tokens, seed=0)
    sync(device)
    ours = sum(s.n_tokens for samples in outs for s in samples) / (time.perf_counter() - start)
    per_call = max(1, sizes.rows // sizes.n)
    tokens, start = 0, time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(prompts), per_call):
            enc = tok(prompts[i : i + per_call], padding=True, return_tensors="pt").to(device)
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                num_return_sequences=sizes.n,
                max_new_tokens=sizes.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
            new = out[:, enc.input_ids.shape[1] :]
            ended = (new == tok.eos_token_id).int()
            # each row's tokens up to and including its first EOS (the rest is padding)
            tokens += int(torch.where(ended.any(1), ended.argmax(1) + 1, new.shape[1]).sum())
    sync(device)
    theirs = tokens / (time.perf_counter() - start)
    report.add(
        "sampling, this project's sampler",
        f"{ours:,.0f} tokens/s",
        f"{len(prompts)} prompts x {sizes.n} at T = 1, {sizes.rows} rows a batch",
        sampler_tokens_per_s=ours,
    )
    report.add(
        "sampling, model.generate",
        f"{theirs:,.0f} tokens/s",
        f"same prompts, num_return_sequences = {sizes.n}; sampler x{ours / theirs:.2f}",
        generate_tokens_per_s=theirs,
    )


def scoring(family: dict, sizes: Sizes, report: Report, device: str) -> None:
    from glore_engine.models.reward_model import RewardScorer, load_reward_model
    from glore_engine.tasks.model_task import load_eval_problems
    from glore_engine.tasks.steps import split_steps

    model, tok, _ = load_reward_model(family["sorm"], device=device)
    scorer = RewardScorer(model, tok, batch_size=128)
    problems = load_eval_problems("synthetic", "test", sizes.score_solutions, 4, family["student"])
    items = [(p.question, split_steps(p.solution)) for p in problems]
    prefixes = [(q, steps[: i + 1]) for q, steps in items for i in range(len(steps))]
    scorer.score(items[:8])  # warm-up
    rates = []
    for batch in (items, prefixes):
        sync(device)
        start = time.perf_counter()
        scorer.score(batch)
        sync(device)
        rates.append(len(items) / (time.perf_counter() - start))
    report.add(
        "scoring, one pass per solution",
        f"{rates[0]:,.0f} solutions/s",
        f"SORM, {len(items)} solutions; one pass per prefix {rates[1]:,.0f}/s (x{rates[0] / rates[1]:.1f})",
        scoring_solutions_per_s=rates[0],
        scoring_per_prefix_solutions_per_s=rates[1],
    )


def pipeline(family: dict, sizes: Sizes, report: Report, device: str, peaks: dict) -> None:
    from glore_engine.evaluation.pipeline_eval import evaluate_pipeline
    from glore_engine.family import GloreModels
    from glore_engine.pipeline import GlorePipeline
    from glore_engine.tasks.model_task import load_eval_problems

    models = GloreModels.load(*(family[k] for k in ("student", "orm", "sorm", "global", "local")), device=device)
    problems = load_eval_problems("synthetic", "test", sizes.pipeline_problems, 0, family["student"])
    with phase(device, peaks, "pipeline"):
        results, tables = evaluate_pipeline(GlorePipeline(models, max_new_tokens=sizes.max_new_tokens), problems)
    metrics = tables["metrics"]
    greedy = next((v for k, v in metrics.items() if k.startswith("T3/greedy")), float("nan"))
    glore = next((v for k, v in metrics.items() if k.startswith("T3/") and "GLoRe" in k), float("nan"))
    report.add(
        "pipeline (draft, scores, 2 refinements, rerank)",
        f"{len(results) / peaks['pipeline_s']:,.1f} problems/s",
        f"{len(results)} problems; greedy {greedy:.1%} -> GLoRe {glore:.1%}",
        pipeline_problems_per_s=len(results) / peaks["pipeline_s"],
        pipeline_metrics=metrics,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and a few steps (any device)")
    parser.add_argument("--train-seconds", type=float, help="the student's training budget (150; --smoke: 2)")
    parser.add_argument("--work", default="/tmp/glore-gpu-check", help="folder for the family (about 0.6 GB)")
    parser.add_argument("--report", help="JSON file of the figures (default: WORK/gpu_check.json)")
    parser.add_argument("--device", default="", help="default: cuda (required unless --smoke)")
    args = parser.parse_args(argv)

    import torch

    from glore_engine.runtime import configure, seed_everything

    configure(threads=1 if args.smoke else None)  # smoke runs beside the test suite on small CPUs
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.smoke:
        print("error: no CUDA device; run with --smoke to check the script on CPU", file=sys.stderr)
        return 2
    import accelerate
    import transformers

    work = Path(args.work)
    report = Report(Path(args.report) if args.report else work / "gpu_check.json")
    card = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    versions = (
        f"torch {torch.__version__}, transformers {transformers.__version__}, accelerate {accelerate.__version__}"
    )
    print(f"GLoRe GPU check on {card} ({versions}){' [smoke]' if args.smoke else ''}", flush=True)
    report.facts.update(device=card, versions=versions, smoke=args.smoke)
    seed_everything(0)
    sizes = SMOKE if args.smoke else FULL
    started = time.perf_counter()
    seconds = args.train_seconds or (2.0 if args.smoke else 150.0)
    family = train_family(sizes, work, report, device, seconds, args.smoke)
    peaks = family.pop("peaks")
    with phase(device, peaks, "greedy_eval"):
        student_accuracy(family, sizes, report, device)
    with phase(device, peaks, "sampler_vs_generate"):
        sampler_vs_generate(family, sizes, report, device)
    with phase(device, peaks, "scoring"):
        scoring(family, sizes, report, device)
    pipeline(family, sizes, report, device, peaks)
    if device.startswith("cuda"):
        worst = max((k for k in peaks if not k.endswith("_s")), key=lambda k: peaks[k])
        detail = ", ".join(f"{k} {v:.1f}" for k, v in peaks.items() if not k.endswith("_s"))
        report.add("peak GPU memory", f"{peaks[worst]:.1f} GiB", f"by phase (GiB): {detail}", peak_gib=peaks)
    report.add("total wall time", f"{time.perf_counter() - started:.0f} s", "", wall_s=time.perf_counter() - started)
    print("\n" + report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
