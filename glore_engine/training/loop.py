"""One training loop for every GLoRe model (student SFT, refiners, reward models), on accelerate.

The same code runs on CPU, one GPU or several (`torchrun`, `accelerate launch`). Batches are a pure
function of the step number, so `resume` continues exactly where a killed run stopped. Ctrl-C saves
a checkpoint before it leaves (one process; with several, the last periodic checkpoint holds).

With several processes each rank takes every world-th example of the step's global batch, and
the loss functions divide by the global batch's normaliser (`batch["loss_norm"]`), so the
averaged gradient, and the logged loss, are those of one process on the whole batch.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, UNIT, check_bounds, check_choice
from ..errors import CheckpointError, ConfigError
from ..tracking import Tracker, ensure

MIXED_PRECISION = ("auto", "no", "bf16", "fp16", "fp8")  # "auto" or one of accelerate's


@dataclass
class OptimConfig:
    max_steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 30
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio exactly at max_steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0
    save_every: int = 500
    log_every: int = 10
    mixed_precision: str = "auto"  # "auto": bf16 on a GPU that supports it, else fp32
    # 0: batches in the stream's order; G > 0: each run of G batches is sorted by length and cut into
    # G batches of similar lengths, in shuffled order (less padding; the same examples per epoch)
    length_groups: int = 0

    def __post_init__(self):
        check_bounds(
            self,
            max_steps=POSITIVE,
            batch_size=POSITIVE,
            save_every=NON_NEGATIVE,  # 0: only at the end and on Ctrl-C
            length_groups=NON_NEGATIVE,
            log_every=POSITIVE,
            warmup_steps=NON_NEGATIVE,
            lr=NON_NEGATIVE,  # 0 freezes (the reward models' backbone)
            weight_decay=NON_NEGATIVE,
            grad_clip=NON_NEGATIVE,  # 0: no clipping
            min_lr_ratio=UNIT,
            beta1=UNIT,
            beta2=UNIT,
        )
        check_choice(self, "mixed_precision", MIXED_PRECISION)


def index_stream(
    n_items: int, batch_size: int, step: int, seed: int, lengths: list[int] | None = None, groups: int = 0
) -> list[int]:
    """The example indices of `step`: epochs of seeded permutations, concatenated.

    With lengths and groups > 0, the steps come in blocks of `groups`: a block takes the examples the
    plain stream gives its steps, sorts them by length and cuts them into batches, one per step in a
    seeded order. Padding then costs a few percent instead of a third (the demo's student data).
    """
    if n_items == 0:
        raise ConfigError("no training examples")
    if not groups or lengths is None:
        return _stream(n_items, step * batch_size, batch_size, seed)
    import numpy as np

    block, position = divmod(step, groups)
    pool = _stream(n_items, block * groups * batch_size, groups * batch_size, seed)
    pool.sort(key=lambda i: lengths[i])  # stable: equal lengths keep the stream's order
    batch = int(np.random.default_rng([seed, block, groups]).permutation(groups)[position])
    return pool[batch * batch_size : (batch + 1) * batch_size]


def _stream(n_items: int, start: int, count: int, seed: int) -> list[int]:
    """Items start .. start + count of the stream of seeded epoch permutations."""
    import numpy as np

    out = list[int]()
    while len(out) < count:
        epoch, offset = divmod(start + len(out), n_items)
        perm = np.random.default_rng([seed, epoch]).permutation(n_items)
        out.extend(perm[offset : offset + count - len(out)].tolist())
    return out


def _mixed_precision(setting: str) -> str:
    import torch

    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def _param_groups(model, weight_decay: float, extra_groups: list[dict] | None):
    """Weight decay on matrices only; extra_groups (with their own lr) are excluded from the rest."""
    taken = {id(p) for g in extra_groups or [] for p in g["params"]}
    decay: list = []
    no_decay: list = []
    for p in model.parameters():
        if p.requires_grad and id(p) not in taken:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups + list(extra_groups or []) if g["params"]]


@dataclass
class TrainResult:
    steps: int
    final_loss: float
    tokens: int
    seconds: float
    interrupted: bool = False
    state_dict: dict | None = None  # sharded training (FSDP, ZeRO-3): the gathered weights, on rank 0


def train(
    model,
    make_batch: Callable[[int, int, int], dict],
    loss_fn: Callable[[object, dict], tuple],
    config: OptimConfig,
    workdir: str | Path,
    tracker: Tracker | None = None,
    resume: bool = False,
    extra_param_groups: list[dict] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Run config.max_steps optimiser steps.

    make_batch(step, rank, world) -> this process's share of the step's batch (tensors);
    loss_fn(model, batch) -> (loss, n_tokens).
    """
    import torch
    from accelerate import Accelerator, DataLoaderConfiguration
    from tqdm.auto import tqdm
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    tracker = ensure(tracker)
    workdir = Path(workdir)
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(config.mixed_precision),
        cpu=distributed.cpu_only(),
        # ranks split one global batch (make_batch), so the schedule takes one step per step, not one per rank
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )
    if accelerator.num_processes != distributed.world_size():
        raise ConfigError(
            f"{distributed.world_size()} processes launched but accelerate sees {accelerator.num_processes}"
        )
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay, extra_param_groups),
        lr=config.lr,
        betas=(config.beta1, config.beta2),
    )
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, config.warmup_steps, config.max_steps, min_lr_rate=config.min_lr_ratio
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    start, loss_ema = _maybe_resume(accelerator, workdir, resume, config.max_steps)
    model.train()
    bar = tqdm(
        total=config.max_steps,
        initial=start,
        desc=desc,
        disable=not progress or not accelerator.is_main_process,
        dynamic_ncols=True,
    )
    tokens, t0, done = 0, time.perf_counter(), start
    try:
        for step in range(start, config.max_steps):
            batch = {
                k: v.to(accelerator.device) if hasattr(v, "to") else v
                for k, v in make_batch(step, accelerator.process_index, accelerator.num_processes).items()
            }
            with accelerator.autocast():
                loss, n_tokens = loss_fn(model, batch)
            accelerator.backward(loss)
            if config.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            done = step + 1  # from here on a Ctrl-C (while logging or saving) must not replay this step
            optimizer.zero_grad(set_to_none=True)
            value = float(accelerator.reduce(loss.detach(), "mean"))  # the global batch's loss
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at step {step + 1}; lower the learning rate")
            loss_ema = value if loss_ema is None else 0.95 * loss_ema + 0.05 * value
            tokens += int(accelerator.reduce(torch.tensor(int(n_tokens), device=accelerator.device), "sum"))
            rate = tokens / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss_ema:.4f}", tok_s=f"{rate:,.0f}", refresh=False)
            bar.update(1)
            if (step + 1) % config.log_every == 0 or step + 1 == config.max_steps:
                tracker.log_metric("train/loss", loss_ema, step + 1)
                tracker.log_metric("train/lr", scheduler.get_last_lr()[0], step + 1)
                tracker.log_metric("train/tokens_per_s", rate, step + 1)
            if config.save_every and (step + 1) % config.save_every == 0 and step + 1 < config.max_steps:
                _save_state(accelerator, workdir, step + 1, loss_ema)
    except KeyboardInterrupt:
        bar.close()
        if accelerator.num_processes == 1:  # ranks interrupted at different steps cannot save together
            _save_state(accelerator, workdir, done, loss_ema)  # `done` steps are complete; resume redoes none of them
        raise
    bar.close()
    seconds = time.perf_counter() - t0
    state_dict = _full_state_dict(accelerator, model)
    accelerator.unwrap_model(model).eval()
    final_loss = loss_ema if loss_ema is not None else float("nan")
    return TrainResult(
        steps=config.max_steps,
        final_loss=final_loss,
        tokens=tokens,
        seconds=seconds,
        state_dict=state_dict,
    )


def _full_state_dict(accelerator, model) -> dict | None:
    """FSDP and ZeRO-3 hold a shard of every weight per rank: gather the whole state dict (on rank 0).

    None where the unwrapped model already holds full weights (one process, DDP, ZeRO-1/2).
    """
    from accelerate.utils import DistributedType

    sharded = accelerator.distributed_type == DistributedType.FSDP or (
        accelerator.distributed_type == DistributedType.DEEPSPEED and accelerator.state.deepspeed_plugin.zero_stage == 3
    )
    return accelerator.get_state_dict(model) if sharded else None


def _state_dir(workdir: Path) -> Path:
    return workdir / "train_state"


def _save_state(accelerator, workdir: Path, step: int, loss_ema: float | None = None) -> None:
    """Optimizer, scheduler, model and RNG state, written atomically beside the step and the loss average."""
    import logging

    # tied embeddings are saved once; accelerate warns about it on every save
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    final = _state_dir(workdir)
    tmp = final.with_name(final.name + ".tmp")
    # every rank writes its RNG state (and its shard, when sharded) into tmp; rank 0 alone clears
    # and renames, between barriers, so no rank writes into a folder another is removing
    distributed.on_main(lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / "step.json").write_text(json.dumps({"step": step, "loss_ema": loss_ema}))
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not save training state to {final}: {exc.strerror or exc}") from exc

    def publish() -> None:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)

    distributed.on_main(publish)


def _maybe_resume(accelerator, workdir: Path, resume: bool, max_steps: int) -> tuple[int, float | None]:
    """(saved step, saved loss average): the running average goes on where it stopped, as if never killed."""
    state = _state_dir(workdir)
    if not resume:
        return 0, None
    if not (state / "step.json").is_file():
        return 0, None  # nothing saved yet: a resume of a run killed before its first checkpoint starts over
    try:
        saved = json.loads((state / "step.json").read_text())
        step = int(saved["step"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"corrupt training state in {state}: {exc}") from exc
    if step > max_steps:  # the model has already had more updates than this run asks for
        raise ConfigError(
            f"the training state in {state} is at step {step}, past max_steps {max_steps}: "
            f"resume with --max-steps {step} or more, or start over without --resume"
        )
    try:
        accelerator.load_state(str(state))
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"corrupt training state in {state}: {exc}") from exc
    return step, saved.get("loss_ema")


def clear_state(workdir: str | Path) -> None:
    """Drop the training state once the model is saved (rank 0; the others wait for it)."""
    distributed.on_main(lambda: shutil.rmtree(_state_dir(Path(workdir)), ignore_errors=True))
