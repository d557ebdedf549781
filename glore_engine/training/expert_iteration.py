"""Expert Iteration: RL fine-tuning of the SFT student by sampling, filtering and fine-tuning again.

Each round: sample K solutions per training question at T=1 from the current policy, keep the
correct distinct ones, fine-tune on gold + kept (from the SFT student or the previous round's
model), then measure greedy accuracy and pass@K on the evaluation split. The next round samples
from the model just trained. Round r lives in folder/round-<r>: sampling shards (a killed round
resumes at its first missing shard), the training state (resumes at the last checkpoint), the
model, and done.json once the round is complete (a rerun skips it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import NON_NEGATIVE, POSITIVE, check_bounds, check_choice, to_dict
from ..errors import ConfigError, DataError
from ..formats import student_prompt
from ..generation import BACKENDS
from ..records import QuestionSamples
from ..tracking import Tracker, ensure
from .loop import OptimConfig, clear_state
from .sft import run_sft

INITS = ("sft", "previous")


@dataclass
class EIConfig(OptimConfig):
    student: str = ""  # the SFT student: round 1 samples from it
    rounds: int = 2
    k: int = 8  # samples per question and round
    temperature: float = 1.0
    init: str = "sft"  # each round fine-tunes from "sft" (the student) or "previous" (the last round's model)
    accumulate: bool = True  # train on the kept samples of every round so far, not the last one's only
    gold: bool = True  # the questions' gold solutions join the kept samples
    data: str = "synthetic"  # where the questions come from (synthetic, svamp, a GSM8K .jsonl, a hub id)
    split: str = "train"
    n_questions: int = 2000
    mix: str = ""  # another source whose whole `split` joins the questions (e.g. "svamp", as in the student's SFT)
    data_seed: int = 0  # synthetic: 0 = the student's own SFT questions (the demo's ORM data draws seed 1)
    max_new_tokens: int = 256
    sample_batch_size: int = 256
    shard_size: int = 256
    calculator: bool = False
    backend: str = "transformers"  # sampling backend ("vllm" on a GPU machine)
    eval_data: str = "synthetic"  # "" skips the per-round evaluation
    eval_split: str = "test"
    eval_limit: int = 500
    eval_k: int = 8
    eval_start: bool = True  # also evaluate the SFT student (round 0), the baseline of the table
    max_length: int = 384
    seed: int = 0
    # the fine-tuning of each round (OptimConfig), lighter than the student's SFT
    max_steps: int = 300
    lr: float = 1e-3
    warmup_steps: int = 20

    def __post_init__(self):
        super().__post_init__()
        if self.init not in INITS:
            raise ConfigError(f"ei init must be one of {list(INITS)}, not {self.init!r}")
        check_bounds(
            self,
            rounds=POSITIVE,
            k=POSITIVE,
            n_questions=POSITIVE,
            max_new_tokens=POSITIVE,
            sample_batch_size=POSITIVE,
            shard_size=POSITIVE,
            eval_limit=POSITIVE,
            eval_k=POSITIVE,
            max_length=POSITIVE,
            temperature=NON_NEGATIVE,
            data_seed=NON_NEGATIVE,
            seed=NON_NEGATIVE,
        )
        check_choice(self, "backend", BACKENDS)


@dataclass
class RoundResult:
    round: int
    model: str  # the policy after this round ("" for round 0, the SFT student itself)
    metrics: dict = field(default_factory=dict)  # data/* (what was sampled and kept), eval/* (greedy, pass@K)
    seconds: float = 0.0


@dataclass
class EIResult:
    model: str  # the last round's policy: the EI student
    rounds: list[RoundResult] = field(default_factory=list)

    def table(self, k: int) -> str:
        """Markdown: greedy and pass@K per round (round 0 = the SFT student)."""
        lines = [
            f"| round | model | greedy | pass@{k} | greedy by steps | train solved | kept / questions | train examples |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rounds:
            m = r.metrics
            kept = f"{m['data/kept']} / {m['data/questions']}" if "data/kept" in m else "-"
            steps = sorted(int(key.rsplit("=", 1)[1]) for key in m if key.startswith("eval/greedy_accuracy/steps="))
            by_steps = " / ".join(f"{s}: {_pct(m[f'eval/greedy_accuracy/steps={s}'])}" for s in steps) or "-"
            lines.append(
                f"| {r.round} | {'SFT student' if r.round == 0 else Path(r.model).parent.name} "
                f"| {_pct(m.get('eval/greedy_accuracy'))} | {_pct(m.get(f'eval/pass@{k}'))} | {by_steps} "
                f"| {_pct(m.get('data/solved'))} | {kept} | {m.get('data/train_examples', '-')} |"
            )
        return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


# ---- data ------------------------------------------------------------------------------------------
def kept_solutions(records: list[QuestionSamples]) -> dict[str, list[str]]:
    """problem_id -> its correct distinct sampled solutions (finished ones only), in sample order."""
    kept: dict[str, list[str]] = {}
    for record in records:
        texts = [s.text for s in record.samples if s.correct and s.finished]
        kept[record.problem_id] = list(dict.fromkeys(texts))
    return kept


def ei_pairs(problems, kept_by_round: list[dict[str, list[str]]], gold: bool = True) -> list[tuple[str, str]]:
    """(prompt, solution) pairs: per question its gold solution (if gold) and every distinct kept sample.

    A sample identical to the gold solution, or kept in two rounds, appears once.
    """
    pairs = []
    for problem in problems:
        texts = [problem.solution] if gold else []
        for kept in kept_by_round:
            texts.extend(kept.get(problem.id, []))
        for text in dict.fromkeys(t.strip() for t in texts):
            pairs.append((student_prompt(problem.question), text))
    if not pairs:
        raise DataError("expert iteration has nothing to train on: no gold and no correct sample")
    return pairs


# ---- one round ---------------------------------------------------------------------------------------
def sample_round(
    config: EIConfig, round_index: int, policy: str, problems, folder: Path, progress: bool = True
) -> list[QuestionSamples]:
    """K graded, deduplicated samples per question from `policy`, in resumable shards under folder."""
    from tqdm.auto import tqdm

    from ..generation.loading import open_policy_backend
    from ..labelling.orm_data import build_orm_data

    backend, _, _ = open_policy_backend(policy, config.backend, batch_size=config.sample_batch_size)
    with tqdm(total=len(problems), desc="EI samples", disable=not progress, dynamic_ncols=True) as bar:

        def on_shard(done, total, cached):
            bar.update(min(done * config.shard_size, len(problems)) - bar.n)

        return build_orm_data(
            backend,
            problems,
            folder,
            n=config.k,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed + 1000 * round_index,  # each round draws new samples
            shard_size=config.shard_size,
            calculator=config.calculator,
            on_shard=on_shard,
            job={"policy": str(policy), "batch_size": config.sample_batch_size, "backend": config.backend},
        )


def train_round(
    config: EIConfig,
    base: str,
    pairs: list[tuple[str, str]],
    folder: Path,
    round_index: int,
    tracker: Tracker,
    progress: bool = True,
    run_id: int | None = None,
) -> Path:
    """Fine-tune `base` on the round's pairs; the model lands in folder/model with a policy card."""
    from ..models.causal_lm import load_causal_lm, save_causal_lm
    from ..models.checkpoint import Card
    from ..tasks.model_task import task_config_from_card, task_dict

    if (folder / "model" / "glore_card.json").is_file():  # saved (atomically) before a kill
        return folder / "model"
    model, tokenizer, _ = load_causal_lm(base)
    result = run_sft(
        model,
        tokenizer,
        pairs,
        config,
        folder,
        seed=config.seed + round_index,
        max_length=config.max_length,
        tracker=tracker,
        resume=True,
        progress=progress,
        desc=f"EI round {round_index}",
    )
    card = Card(
        role="policy",
        base=base,
        run_id=run_id,
        # the student's task travels with its descendants (evaluation draws problems at its difficulty)
        config={**to_dict(config), "ei_round": round_index, "task": task_dict(task_config_from_card(config.student))},
        metrics={
            "train_loss": result.final_loss,
            "train_examples": len(pairs),
            "train_seconds": round(result.seconds, 1),
        },
    )
    model_dir = save_causal_lm(model, tokenizer, folder / "model", card)
    clear_state(folder)
    tracker.log_metric("train/seconds", result.seconds)
    tracker.log_artifact("model", str(model_dir), {"role": "policy", "ei_round": round_index})
    return model_dir


def evaluate_round(config: EIConfig, policy: str) -> dict:
    """eval/greedy_accuracy, eval/pass@K and both by step count, on the evaluation split."""
    from ..evaluation.student import evaluate_student
    from ..generation.loading import open_policy_backend
    from ..tasks.model_task import load_eval_problems

    if not config.eval_data:
        return {}
    problems = load_eval_problems(config.eval_data, config.eval_split, config.eval_limit, 0, config.student)
    backend, _, _ = open_policy_backend(policy, config.backend, batch_size=config.sample_batch_size)
    result = evaluate_student(
        backend,
        problems,
        k=config.eval_k,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        calculator=config.calculator,
    )
    return {f"eval/{k}": v for k, v in result.metrics().items()}


def run_round(
    config: EIConfig,
    round_index: int,
    policy: str,
    problems,
    folder: Path,
    earlier_kept: list[dict[str, list[str]]],
    tracker: Tracker | None = None,
    progress: bool = True,
    run_id: int | None = None,
) -> tuple[RoundResult, dict[str, list[str]]]:
    """Round r: sample from `policy`, keep the correct, fine-tune, evaluate; returns (result, kept)."""
    tracker = ensure(tracker)
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    records = sample_round(config, round_index, policy, problems, folder / "samples", progress)
    kept = kept_solutions(records)
    pairs = ei_pairs(problems, [*earlier_kept, kept] if config.accumulate else [kept], config.gold)
    n_samples = sum(r.n_samples for r in records)
    n_correct = sum(s.count for r in records for s in r.samples if s.correct)
    metrics = {
        "data/questions": len(records),
        "data/sample_accuracy": n_correct / max(n_samples, 1),
        "data/solved": sum(bool(v) for v in kept.values()) / max(len(kept), 1),  # pass@K on training questions
        "data/kept": sum(len(v) for v in kept.values()),
        "data/train_examples": len(pairs),
    }
    for key, value in metrics.items():
        tracker.log_metric(key, value)
    base = config.student if config.init == "sft" else policy
    model = train_round(config, base, pairs, folder, round_index, tracker, progress, run_id)
    metrics.update(evaluate_round(config, str(model)))
    for key, value in metrics.items():
        if key.startswith("eval/"):
            tracker.log_metric(key, value)
    result = RoundResult(round_index, str(model), metrics, round(time.perf_counter() - started, 1))
    return result, kept


# ---- the loop ----------------------------------------------------------------------------------------
def expert_iteration(
    config: EIConfig, folder: str | Path, tracker: Tracker | None = None, progress: bool = True
) -> EIResult:
    """config.rounds rounds of EI from config.student into folder; finished rounds are not redone.

    Each round is a child run of `tracker` ("ei-round"); the parent gets the per-round eval series,
    with the round as the step.
    """
    from ..tasks.model_task import load_eval_problems

    if not config.student:
        raise ConfigError("expert iteration needs --student: the SFT policy to start from")
    tracker, folder = ensure(tracker), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    problems = load_eval_problems(config.data, config.split, config.n_questions, config.data_seed, config.student)
    if config.mix:
        from ..tasks import load_problems, mix_problems

        problems = mix_problems(problems, load_problems(config.mix, split=config.split))
    rounds: list[RoundResult] = []
    kept_by_round: list[dict[str, list[str]]] = []
    policy = config.student
    if config.eval_start:
        rounds.append(_cached_or(folder / "round-0", lambda: RoundResult(0, "", evaluate_round(config, policy))))
    for r in range(1, config.rounds + 1):
        round_dir = folder / f"round-{r}"
        done = round_dir / "done.json"
        if done.is_file():
            result = _read_round(done)
            kept = json.loads((round_dir / "kept.json").read_text())
        else:
            round_config = {"round": r, **to_dict(config)}
            with tracker.child("ei-round", name=f"round {r}", config=round_config, output_dir=str(round_dir)) as handle:
                result, kept = run_round(
                    config, r, policy, problems, round_dir, kept_by_round, handle, progress, getattr(handle, "id", None)
                )
                handle.set_summary({"model": result.model, **result.metrics})
            (round_dir / "kept.json").write_text(json.dumps(kept))
            done.write_text(json.dumps(result.__dict__, indent=2))
        rounds.append(result)
        kept_by_round.append(kept)
        policy = result.model
    for result in rounds:
        for key, value in result.metrics.items():
            if key.startswith("eval/") and "/steps=" not in key:
                tracker.log_metric(key, value, result.round)
    ei = EIResult(model=policy, rounds=rounds)
    tracker.log_artifact("model", policy, {"role": "policy", "ei_rounds": config.rounds})
    tracker.set_summary({"model": policy, "tables_md": {"EI": ei.table(config.eval_k)}})
    return ei


def _cached_or(folder: Path, compute: Callable[[], RoundResult]) -> RoundResult:
    done = folder / "done.json"
    if done.is_file():
        return _read_round(done)
    started = time.perf_counter()
    result = compute()
    result.seconds = round(time.perf_counter() - started, 1)
    folder.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result.__dict__, indent=2))
    return result


def _read_round(path: Path) -> RoundResult:
    try:
        return RoundResult(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise DataError(f"{path}: corrupt round record ({exc}); delete it to redo the round") from exc
