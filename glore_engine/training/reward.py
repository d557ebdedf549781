"""Train the ORM (final-answer labels at every step) and the SORM (V* rollout labels per step).

Batches are groups of questions with all their distinct samples, so the loss can compare samples
of the same question: BCE per step (balanced within question for the ORM) plus an optional
Bradley-Terry term between correct and incorrect samples' final scores. The head learns fast;
the backbone is frozen by default (lr 0): fine-tuning it on a few thousand questions memorises
them and lets the likelihood features drift (measured in README, "Reward models").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, check_bounds, to_dict
from ..errors import ConfigError, DataError
from ..labelling.postprocess import LabelRules, apply_rules
from ..models.checkpoint import Card
from ..records import LabelledSolution, QuestionSamples
from ..tracking import Tracker, ensure, run_id_of
from .loop import OptimConfig, TrainResult, clear_state, index_stream, train

if TYPE_CHECKING:
    from ..models.reward_model import EncodedSolution


@dataclass
class RewardConfig(OptimConfig):
    role: str = "orm"  # "orm" or "sorm"
    base: str = ""  # the causal LM the backbone starts from: the student, or a stronger verifier base
    likelihood_features: bool = True  # the head also reads the backbone's token log-likelihood
    lr: float = 0.0  # backbone; 0 freezes it, so the likelihood features stay the base model's own
    head_lr: float = 2e-3
    feature_lr: float = 3e-2
    batch_size: int = 8  # questions per step (with all their distinct samples)
    max_steps: int = 600
    warmup_steps: int = 20
    weight_decay: float = 0.0
    pairwise_weight: float = -1.0  # Bradley-Terry weight; -1: 0.5 for the ORM, 0 for the SORM
    mixed_only: bool = True  # ORM: train on questions with both correct and incorrect samples
    balance_within_question: bool = True  # ORM: correct and incorrect samples weigh the same per question
    consistency: bool = True  # SORM label rules (see labelling.postprocess)
    propagate: bool = True
    balance: bool = True
    max_length: int = 384
    # frozen backbone (lr 0), one process: read each solution once, train the heads on its step states
    cache_states: bool = True
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        check_bounds(self, head_lr=NON_NEGATIVE, feature_lr=NON_NEGATIVE, max_length=POSITIVE, seed=NON_NEGATIVE)
        if self.role not in ("orm", "sorm"):
            raise ConfigError(f"role must be 'orm' or 'sorm', not {self.role!r}")
        if self.pairwise_weight < 0:
            self.pairwise_weight = 0.5 if self.role == "orm" else 0.0

    def rules(self) -> LabelRules:
        return LabelRules(consistency=self.consistency, propagate=self.propagate, balance=self.balance, seed=self.seed)


@dataclass
class RMItem:
    question: str
    steps: list[str]
    labels: list[float]  # one target per step
    mask: list[float]  # 0 drops a step's label (balancing)
    weight: float  # per-solution weight (within-question balancing)
    correct: bool
    encoded: EncodedSolution | None = field(default=None, repr=False)
    # a frozen backbone's states at the step ends, computed once: hidden (S, H), features (S, F) or None
    states: tuple | None = field(default=None, repr=False)


def orm_items(records: list[QuestionSamples], config: RewardConfig) -> list[list[RMItem]]:
    """ORM-data records -> groups (one per question) of items; every step carries the final label."""
    groups = []
    for r in records:
        samples = [s for s in r.samples if s.steps]
        outcomes = {s.correct for s in samples}
        if not samples or (config.mixed_only and len(outcomes) < 2):
            continue
        n_pos = sum(s.correct for s in samples)
        n_neg = len(samples) - n_pos
        group = []
        for s in samples:
            y = float(s.correct)
            w = 1.0 / len(samples)
            if config.balance_within_question and n_pos and n_neg:
                w = 0.5 / (n_pos if s.correct else n_neg)
            group.append(RMItem(r.question, s.steps, [y] * len(s.steps), [1.0] * len(s.steps), w, s.correct))
        groups.append(group)
    return groups


def sorm_items(labelled: list[LabelledSolution], config: RewardConfig) -> list[list[RMItem]]:
    """Rollout-labelled solutions -> groups per question with post-processed V* labels."""
    by_question: dict[str, list[RMItem]] = {}
    for r in apply_rules(labelled, config.rules()):
        item = RMItem(r.question, r.steps, [float(y) for y in r.labels], r.mask, 1.0, r.correct)
        by_question.setdefault(r.problem_id, []).append(item)
    return list(by_question.values())


def _encode_groups(groups: list[list[RMItem]], tokenizer, max_length: int) -> list[list[RMItem]]:
    from ..models.reward_model import encode_solution

    kept = []
    for group in groups:
        items = []
        for item in group:
            try:
                item.encoded = encode_solution(tokenizer, item.question, item.steps, max_length)
            except DataError:
                continue  # over-long or unalignable sample: skip it rather than fail the run
            items.append(item)
        if items:
            kept.append(items)
    if not kept:
        raise DataError("no usable training solutions for the reward model")
    return kept


def _batch(groups: list[list[RMItem]], pad_id: int) -> dict:
    import torch

    from ..models.reward_model import collate_solutions

    items = [item for group in groups for item in group]
    encoded = [i.encoded for i in items]
    assert all(e is not None for e in encoded), "encode the items first (encode_items)"
    batch = collate_solutions(cast(list, encoded), pad_id)
    width = batch["input_ids"].shape[1]
    targets = torch.zeros((len(items), width))
    weights = torch.zeros((len(items), width))
    final_pos = torch.zeros(len(items), dtype=torch.long)
    for r, (item, enc) in enumerate(zip(items, cast(list, encoded))):
        ends = torch.tensor(enc.step_ends)
        targets[r, ends] = torch.tensor(item.labels, dtype=torch.float)
        weights[r, ends] = torch.tensor(item.mask, dtype=torch.float) * item.weight
        final_pos[r] = enc.step_ends[-1]
    return {**batch, "targets": targets, "weights": weights, "final_pos": final_pos, **_pairing(groups)}


def _pairing(groups: list[list[RMItem]]) -> dict:
    """What the pairwise loss compares: each item's question (B,) and whether it is correct (B,)."""
    import torch

    return {
        "group": torch.tensor([g for g, group in enumerate(groups) for _ in group]),
        "correct": torch.tensor([item.correct for group in groups for item in group]),
    }


def cache_step_states(model, groups: list[list[RMItem]], pad_id: int, batch_size: int = 64) -> None:
    """A frozen backbone reads every solution once: each item keeps its states at its step ends.

    The loss reads the head only there, and the head is all that trains, so the steps then cost a
    head's matmul instead of a backbone pass per solution per step (600 steps read each solution
    about three times over). Computed in eval mode on the model's device, in batches of similar width.
    """
    import torch

    from ..models.reward_model import collate_solutions

    items = [item for group in groups for item in group]
    items.sort(key=lambda item: len(cast("EncodedSolution", item.encoded).ids))
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    with torch.no_grad():  # not inference_mode: the cached tensors feed the heads' autograd later
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            encoded = [cast("EncodedSolution", item.encoded) for item in chunk]
            batch = {k: v.to(device) for k, v in collate_solutions(encoded, pad_id).items()}
            hidden, features = model.states(batch["input_ids"], batch["attention_mask"], batch["solution_mask"])
            for r, (item, enc) in enumerate(zip(chunk, encoded)):
                ends = torch.tensor(enc.step_ends, device=device)
                item.states = (hidden[r, ends].cpu(), None if features is None else features[r, ends].cpu())
    model.train(was_training)


def _cached_batch(groups: list[list[RMItem]]) -> dict:
    """The batch of items with cached step states: states (B, S, H) and (B, S, F) with S the most steps;
    targets and weights (B, S) on the steps themselves."""
    import torch

    items = [item for group in groups for item in group]
    states = [cast(tuple, item.states) for item in items]
    width = max(len(item.labels) for item in items)
    hidden = torch.zeros(len(items), width, states[0][0].shape[-1])
    features = None if states[0][1] is None else torch.zeros(len(items), width, states[0][1].shape[-1])
    targets, weights = torch.zeros(len(items), width), torch.zeros(len(items), width)
    for r, (item, (h, f)) in enumerate(zip(items, states)):
        n = len(item.labels)
        hidden[r, :n] = h
        if features is not None:
            features[r, :n] = f
        targets[r, :n] = torch.tensor(item.labels, dtype=torch.float)
        weights[r, :n] = torch.tensor(item.mask, dtype=torch.float) * item.weight
    return {
        "hidden": hidden,
        "features": features,
        "targets": targets,
        "weights": weights,
        "final_pos": torch.tensor([len(item.labels) - 1 for item in items]),
        **_pairing(groups),
        # the tokens the cached states stand for, so tokens/s reads as in the full pass
        "n_tokens": sum(len(cast("EncodedSolution", item.encoded).ids) for item in items),
    }


def global_norms(groups: list[list[RMItem]], world: int) -> dict:
    """The step batch's label weight and correct/incorrect pair count, over world.

    Each rank takes whole questions (groups), so pairs never straddle ranks; dividing each rank's
    sums by these makes DDP's mean of gradients the one-process loss on the whole batch.
    """
    weight = sum(item.weight * sum(item.mask) for group in groups for item in group)
    pairs = 0
    for group in groups:
        n_pos = sum(item.correct for item in group)
        pairs += n_pos * (len(group) - n_pos)
    return {"weight_norm": max(weight, 1e-6) / world, "pair_norm": max(pairs, 1) / world}


def reward_loss(pairwise_weight: float):
    def loss_fn(model, batch):
        import torch.nn.functional as F

        if "hidden" in batch:  # cached step states (cache_step_states): logits (B, S) on the steps
            logits = model(states=(batch["hidden"], batch["features"])).float()
        else:
            logits = model(batch["input_ids"], batch["attention_mask"], batch["solution_mask"]).float()
        w = batch["weights"]
        bce_norm = batch.get("weight_norm", w.sum().clamp(min=1e-6))  # global over world, see global_norms
        bce = F.binary_cross_entropy_with_logits(logits, batch["targets"], weight=w, reduction="sum") / bce_norm
        loss = bce
        if pairwise_weight:
            final = logits.gather(1, batch["final_pos"][:, None]).squeeze(1)
            same = batch["group"][:, None] == batch["group"][None, :]
            better = batch["correct"][:, None] & ~batch["correct"][None, :] & same
            if better.any():
                margin = final[:, None] - final[None, :]
                pairs = batch.get("pair_norm", better.sum())
                loss = loss + pairwise_weight * F.softplus(-margin)[better].sum() / pairs
        n_tokens = batch["n_tokens"] if "n_tokens" in batch else int(batch["attention_mask"].sum())
        return loss, n_tokens

    return loss_fn


def train_reward_model(
    config: RewardConfig,
    data: list[QuestionSamples] | list[LabelledSolution],
    output_dir: str | Path,
    tracker: Tracker | None = None,
    resume: bool = False,
    progress: bool = True,
    run_id: int | None = None,
    extra_card: dict | None = None,
) -> tuple[Path, TrainResult]:
    """Train an ORM (data: ORM records) or SORM (data: labelled solutions) from config.base."""
    from ..models.reward_model import reward_model_from_policy, save_reward_model

    tracker = ensure(tracker)
    if not config.base:
        raise ConfigError("a reward model needs --base: the student (policy) checkpoint it starts from")
    model, tokenizer = reward_model_from_policy(config.base, config.likelihood_features)
    if config.lr == 0:  # frozen backbone: the features stay the student's own likelihoods, and steps are cheap
        for p in model.lm.parameters():
            p.requires_grad_(False)
    if config.role == "orm":
        groups = orm_items(cast(list[QuestionSamples], data), config)
    else:
        groups = sorm_items(cast(list[LabelledSolution], data), config)
    groups = _encode_groups(groups, tokenizer, config.max_length)
    tracker.log_metric("data/questions", len(groups))
    tracker.log_metric("data/solutions", sum(len(g) for g in groups))

    widths = [max(len(cast("EncodedSolution", item.encoded).ids) for item in group) for group in groups]

    # one process and a frozen backbone: states once, at the first batch (on the device train() chose)
    cached = config.cache_states and config.lr == 0 and distributed.world_size() == 1

    def make_batch(step: int, rank: int = 0, world: int = 1) -> dict:
        idx = index_stream(len(groups), config.batch_size, step, config.seed, widths, config.length_groups)
        mine = [groups[i] for i in idx[rank::world]]
        if cached:
            if groups[0][0].states is None:
                cache_step_states(model, groups, tokenizer.pad_token_id)
            batch = _cached_batch(mine)
        else:
            batch = _batch(mine, tokenizer.pad_token_id)
        return {**batch, **global_norms([groups[i] for i in idx], world)}

    head_params = list(model.head.parameters())
    feature_params = list(model.feature_head.parameters())
    extra = [
        {"params": head_params, "lr": config.head_lr, "weight_decay": 0.0},
        {"params": feature_params, "lr": config.feature_lr, "weight_decay": 0.0},
    ]
    result = train(
        model,
        make_batch,
        reward_loss(config.pairwise_weight),
        config,
        output_dir,
        tracker=tracker,
        resume=resume,
        extra_param_groups=extra,
        progress=progress,
        desc=f"{config.role} training",
    )
    card = Card(
        role=config.role,
        base=config.base,
        run_id=run_id if run_id is not None else run_id_of(tracker),
        config={**to_dict(config), **(extra_card or {})},
        metrics={"train_loss": result.final_loss, "train_seconds": round(result.seconds, 1)},
    )
    folder = distributed.on_main(
        lambda: save_reward_model(model, tokenizer, Path(output_dir) / "model", card, state_dict=result.state_dict)
    )
    clear_state(output_dir)
    tracker.log_metric("train/seconds", result.seconds)
    tracker.log_artifact("model", str(folder), {"role": config.role})
    tracker.set_summary({"model": str(folder), "final_loss": result.final_loss})
    return folder, result
