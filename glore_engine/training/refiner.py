"""Train a global or local refiner: SFT of the student on refinement examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import to_dict
from ..errors import ConfigError, DataError
from ..formats import RefinementExample
from ..models.causal_lm import load_causal_lm, save_causal_lm
from ..models.checkpoint import Card
from ..tracking import Tracker, ensure
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
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
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
        run_id=run_id,
        config={**to_dict(config), **(extra_card or {})},
        metrics={"train_loss": result.final_loss, "examples": len(pairs)},
    )
    folder = save_causal_lm(model, tokenizer, Path(output_dir) / "model", card)
    clear_state(output_dir)
    tracker.log_metric("train/seconds", result.seconds)
    tracker.log_artifact("model", str(folder), {"role": card.role})
    return folder, result
