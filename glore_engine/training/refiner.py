"""Train a global or local refiner: SFT of the student on refinement examples.

`train_refiner_from` is the stage: it mines the examples from data already drawn (ORM data for
the global refiner, SORM labels for the local one; see labelling/pairing.py) and trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, check_bounds, to_dict
from ..errors import ConfigError, DataError
from ..models.causal_lm import load_causal_lm, save_causal_lm
from ..models.checkpoint import Card
from ..records import LabelledSolution, QuestionSamples, RefinementExample
from ..tasks.model_task import task_config_from_card, task_dict
from ..tracking import Tracker, ensure, run_id_of
from .loop import OptimConfig, TrainResult, clear_state
from .sft import run_sft


@dataclass
class RefinerConfig(OptimConfig):
    kind: str = "global"  # "global" or "local"
    base: str = ""  # the student checkpoint to start from
    lr: float = 1e-3
    max_steps: int = 600
    warmup_steps: int = 20
    max_length: int = 512
    # local: also train on triples from the failing rollouts of verified prefixes (pairing.rollout_triples)
    rollout_triples: bool = False
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        check_bounds(self, max_length=POSITIVE, seed=NON_NEGATIVE)
        if self.kind not in ("global", "local"):
            raise ConfigError(f"refiner kind must be 'global' or 'local', not {self.kind!r}")


def train_refiner(
    config: RefinerConfig,
    examples: list[RefinementExample],
    output_dir: str | Path,
    tracker: Tracker | None = None,
    resume: bool = False,
    progress: bool = True,
    run_id: int | None = None,
    extra_card: dict | None = None,
) -> tuple[Path, TrainResult]:
    tracker = ensure(tracker)
    if not config.base:
        raise ConfigError("a refiner needs --base: the student checkpoint it is fine-tuned from")
    pairs = [(e.prompt, e.target) for e in examples if e.kind == config.kind]
    if not pairs:
        raise DataError(f"no {config.kind} refinement examples to train on")
    model, tokenizer, _ = load_causal_lm(config.base)
    tracker.log_metric("data/examples", len(pairs))
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
        desc=f"{config.kind} refiner",
    )
    card = Card(
        role=f"refiner-{config.kind}",
        base=config.base,
        run_id=run_id if run_id is not None else run_id_of(tracker),
        # the student's task travels with its descendants: data checks read it from any of them
        config={**to_dict(config), "task": task_dict(task_config_from_card(config.base)), **(extra_card or {})},
        metrics={"train_loss": result.final_loss, "examples": len(pairs)},
    )
    folder = distributed.on_main(
        lambda: save_causal_lm(model, tokenizer, Path(output_dir) / "model", card, state_dict=result.state_dict)
    )
    clear_state(output_dir)
    tracker.log_metric("train/seconds", result.seconds)
    tracker.log_artifact("model", str(folder), {"role": card.role})
    tracker.set_summary({"model": str(folder), "examples": len(pairs), "final_loss": result.final_loss})
    return folder, result


def refinement_examples(
    kind: str, data: list[QuestionSamples] | list[LabelledSolution], seed: int = 0, rollout_triples: bool = False
) -> list[RefinementExample]:
    """global: (incorrect -> correct) pairs from ORM data; local: [BAD]-marked triples from SORM labels."""
    from ..labelling.pairing import global_pairs, local_triples

    if kind == "global":
        return global_pairs(cast(list[QuestionSamples], data), seed=seed)
    return local_triples(cast(list[LabelledSolution], data), seed=seed, from_rollouts=rollout_triples)


def train_refiner_from(
    config: RefinerConfig,
    data: list[QuestionSamples] | list[LabelledSolution],
    output_dir: str | Path,
    tracker: Tracker | None = None,
    resume: bool = False,
    progress: bool = True,
) -> tuple[Path, TrainResult, int]:
    """Mine config.kind's examples from data (ORM data for global, SORM labels for local) and train.

    Returns the model folder, the training result and how many examples it learnt from.
    """
    tracker = ensure(tracker)
    examples = refinement_examples(config.kind, data, config.seed, config.rollout_triples)
    tracker.log_metric(f"data/{config.kind}_examples", len(examples))
    folder, result = train_refiner(config, examples, output_dir, tracker, resume=resume, progress=progress)
    return folder, result, len(examples)
