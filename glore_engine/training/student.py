"""Train the student policy: a preset model with its own tokenizer, or any HF causal LM, by SFT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, check_bounds, to_dict
from ..formats import student_prompt
from ..models.causal_lm import ARCH_PRESETS, count_parameters, create_policy, is_preset, load_causal_lm, load_tokenizer
from ..models.checkpoint import Card
from ..tracking import Tracker, ensure, run_id_of
from .loop import OptimConfig, TrainResult, clear_state
from .sft import run_sft


@dataclass
class StudentConfig(OptimConfig):
    base: str = "demo"  # an architecture preset (tiny, demo, small), a model folder or a hub id
    data: str = "synthetic"  # "synthetic", a GSM8K-format .jsonl path, or a hub dataset id
    n_train: int = 20000  # training problems (synthetic: generated; else the first n_train)
    mix: str = ""  # another source whose whole train split joins the data (e.g. "svamp"), repeated mix_repeat times
    mix_repeat: int = 1
    seed: int = 0
    max_length: int = 384
    tokenizer_vocab: int = 0  # preset bases: BPE vocabulary target (0: the preset's)
    task_min_steps: int = 2
    task_max_steps: int = 4
    max_count: int = 20
    max_multiplier: int = 5
    max_price: int = 10

    def __post_init__(self):
        super().__post_init__()
        check_bounds(
            self,
            n_train=POSITIVE,
            mix_repeat=POSITIVE,
            max_length=POSITIVE,
            tokenizer_vocab=NON_NEGATIVE,
            seed=NON_NEGATIVE,
        )
        task_config(self)  # the task knobs' own rules, now rather than after the tokenizer is trained


def task_config(config: StudentConfig):
    from ..tasks.synthetic import TaskConfig

    return TaskConfig(
        min_steps=config.task_min_steps,
        max_steps=config.task_max_steps,
        max_count=config.max_count,
        max_multiplier=config.max_multiplier,
        max_price=config.max_price,
    )


def training_problems(config: StudentConfig):
    from ..tasks import load_problems
    from ..tasks.synthetic import generate

    if config.data == "synthetic":
        problems = generate("train", config.n_train, seed=config.seed, config=task_config(config))
    else:
        problems = load_problems(config.data, split="train", limit=config.n_train)
    if config.mix:
        problems += load_problems(config.mix, split="train") * max(config.mix_repeat, 1)
    return problems


def tokenizer_corpus(problems) -> list[str]:
    """Task text plus the refinement formats, so every prompt the family reads tokenizes well."""
    from ..formats import global_prompt, local_prompt
    from ..tasks.steps import split_steps

    texts = [student_prompt(p.question) + p.solution for p in problems]
    for p in problems[:200]:
        steps = split_steps(p.solution)
        texts.append(global_prompt(p.question, steps) + p.solution)
        texts.append(local_prompt(p.question, steps, len(steps) - 1) + steps[-1])
    return texts


def _preset_model(config: StudentConfig, problems, workdir: Path, resume: bool = False):
    """A fresh model and its tokenizer; the tokenizer is kept in workdir so a resume reuses it."""
    import torch

    from ..models.tokenizer import train_tokenizer

    tok_dir = workdir / "tokenizer"

    def make_tokenizer() -> None:  # rank 0 trains it; every rank reads the same files
        if not (resume and (tok_dir / "tokenizer.json").is_file()):
            arch = ARCH_PRESETS[config.base]
            train_tokenizer(tokenizer_corpus(problems), config.tokenizer_vocab or arch.vocab_size).save_pretrained(
                tok_dir
            )

    distributed.on_main(make_tokenizer)
    tokenizer = load_tokenizer(str(tok_dir))
    torch.manual_seed(config.seed)
    return create_policy(config.base, tokenizer), tokenizer


def train_student(
    config: StudentConfig,
    output_dir: str | Path,
    tracker: Tracker | None = None,
    resume: bool = False,
    progress: bool = True,
    run_id: int | None = None,
) -> tuple[Path, TrainResult]:
    """SFT the student on the task's gold solutions; returns (model folder, training result)."""
    from ..models.causal_lm import save_causal_lm

    tracker = ensure(tracker)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    problems = training_problems(config)
    if is_preset(config.base):
        model, tokenizer = _preset_model(config, problems, output_dir, resume)
    else:
        model, tokenizer, _ = load_causal_lm(config.base)
    tracker.log_metric("model/parameters", count_parameters(model))
    tracker.log_metric("data/train_problems", len(problems))
    pairs = [(student_prompt(p.question), p.solution) for p in problems]
    result = run_sft(
        model,
        tokenizer,
        pairs,
        config,
        output_dir,
        seed=config.seed,
        max_length=config.max_length,
        tracker=tracker,
        resume=resume,
        progress=progress,
        desc="student sft",
    )
    card = Card(
        role="policy",
        base=config.base,
        run_id=run_id if run_id is not None else run_id_of(tracker),
        config=to_dict(config),
        metrics={
            "train_loss": result.final_loss,
            "train_tokens": result.tokens,
            "train_seconds": round(result.seconds, 1),
        },
    )
    folder = distributed.on_main(
        lambda: save_causal_lm(model, tokenizer, output_dir / "model", card, state_dict=result.state_dict)
    )
    clear_state(output_dir)
    tracker.log_metric("train/seconds", result.seconds)
    tracker.log_metric("train/total_tokens", result.tokens)
    tracker.log_artifact("model", str(folder), {"role": "policy"})
    tracker.set_summary({"model": str(folder), "final_loss": result.final_loss})
    return folder, result
