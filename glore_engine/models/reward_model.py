"""ORM and SORM: a causal LM backbone with a scalar value head read at the end of every step.

One forward pass scores every step of a batch of solutions: the head is applied at every token
and read at each step's last token. Optionally the head also sees the backbone's own token
log-likelihood of the solution so far (cumulative sum and running minimum): an arithmetic slip
is an unlikely token, and a plain head on a small model otherwise learns question difficulty
rather than which sample is wrong (docs/demo-task.md). Likelihood features are detached inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, DataError
from ..formats import scoring_text
from ..padding import length_runs
from .checkpoint import REWARD_ROLES, Card, atomic_save, check_role, read_card, require_folder, write_card
from .tokenizer import fingerprint

# Shapes: B solutions in a batch, T tokens (question + solution, right-padded), H the width the LM head
# reads, V the vocabulary, F = N_FEATURES likelihood features, S a solution's steps.
HEAD_FILE = "value_head.safetensors"
N_FEATURES = 6
FEATURE_CHUNK_ELEMENTS = 1 << 28  # about 1 GiB of fp32 logits at a time (Qwen2.5's 152k vocabulary: 1,700 tokens)


def head_shape(lm) -> tuple[int, int]:
    """(width of the states the LM head reads, its output rows) of any causal LM. Not config.hidden_size:
    GPT-2 names it n_embd, OPT-350m projects 1024 -> 512 before its head; rows may exceed len(tokenizer)."""
    out = lm.get_output_embeddings()
    weight = getattr(out, "weight", None)
    if weight is None or weight.ndim != 2:
        raise CheckpointError(f"{type(lm).__name__} has no output embedding matrix to read likelihoods from")
    return int(weight.shape[1]), int(weight.shape[0])


class RewardModel(nn.Module):
    """backbone (any HF causal LM) + value head -> one logit per token; read at step ends."""

    digit_tokens: torch.Tensor  # (V,) bool: vocabulary entries that carry a digit

    def __init__(self, lm, likelihood_features: bool = True, tokenizer=None):
        super().__init__()
        self.lm = lm
        self.likelihood_features = likelihood_features
        hidden, vocab = head_shape(lm)
        self.head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.feature_head = torch.nn.Linear(N_FEATURES, 1, bias=False)
        torch.nn.init.zeros_(self.feature_head.weight)
        self.register_buffer("digit_tokens", torch.ones(vocab, dtype=torch.bool), persistent=False)
        if tokenizer is not None:
            self.set_digit_tokens(tokenizer)

    def set_digit_tokens(self, tokenizer) -> None:
        """Mark tokens that carry digits: arithmetic slips live there, wording noise does not."""
        mask = torch.zeros_like(self.digit_tokens)
        for i in range(min(len(tokenizer), mask.shape[0])):
            mask[i] = any(c.isdigit() for c in tokenizer.decode([i]))
        self.digit_tokens = mask

    @property
    def config(self):
        return self.lm.config

    @property
    def _no_split_modules(self):
        """The backbone's decoder-layer classes: FSDP's auto-wrap (configs/accelerate/fsdp.yaml) shards by them."""
        return getattr(self.lm, "_no_split_modules", None)

    def forward(self, input_ids=None, attention_mask=None, solution_mask=None, states=None):
        """Value logits (B, T). solution_mask (B, T) marks solution tokens for the likelihood features.
        states: (hidden, features) from `states()` computed before (a frozen backbone's, read once)."""
        if states is not None:
            return self.values(*states)
        return self.values(*self.states(input_ids, attention_mask, solution_mask))

    def states(self, input_ids, attention_mask, solution_mask=None, features: bool | None = None):
        """The backbone's part of the forward pass: hidden (B, T, H) and the likelihood features
        (B, T, F), or None. Heads on one backbone (share_backbones) read the same states, so
        score_together runs this once for all of them; features: compute them (default: if this
        model uses them)."""
        out = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state  # (B, T, H)
        features = self.likelihood_features if features is None else features
        if not features or solution_mask is None:
            return hidden, None
        with torch.no_grad():  # rows in chunks: the (rows, T, V) log-softmax is the largest tensor here
            rows = max(1, FEATURE_CHUNK_ELEMENTS // max(1, hidden.shape[1] * self.digit_tokens.shape[0]))
            chunks = [
                self.features(hidden[i : i + rows], input_ids[i : i + rows], solution_mask[i : i + rows])
                for i in range(0, hidden.shape[0], rows)
            ]
        return hidden, torch.cat(chunks)  # (B, T, F)

    def values(self, hidden, features=None):
        """This model's value logits (B, T) from the backbone's states."""
        logits = self.head(hidden.to(self.head.weight.dtype)).squeeze(-1)  # (B, T)
        if self.likelihood_features and features is not None:
            logits = logits + self.feature_head(features.to(self.head.weight.dtype)).squeeze(-1)  # (B, T)
        return logits

    def features(self, hidden, input_ids, solution_mask):
        """(B, T, N_FEATURES) of the backbone's own likelihood of the solution up to each token.

        Summed log-probability of all solution tokens, and over digit tokens only: its sum, its
        running minimum, and the same two for the gap to the most likely token; plus a count.
        """
        token_logits = self.lm.get_output_embeddings()(hidden[:, :-1]).float()  # (B, T-1, V): predicts x_1..
        logp = torch.log_softmax(token_logits, -1)  # (B, T-1, V)
        lp = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T-1) log p of the token written
        gap = lp - logp.max(-1).values  # (B, T-1) <= 0: how far below the most likely token
        # (B, T), shifted so that [t] is log p(x_t | x_<t); the first token has no prediction
        lp, gap = torch.nn.functional.pad(lp, (1, 0)), torch.nn.functional.pad(gap, (1, 0))
        sol = solution_mask.bool()  # (B, T)
        digits = sol & self.digit_tokens[input_ids]  # (B, T) solution tokens that carry a digit
        zero = torch.zeros_like(lp)  # (B, T)

        def running_min(x):
            return torch.where(digits, x, zero).cummin(-1).values

        return torch.stack(  # (B, T, F); each feature a running value along T, scaled to about unit size
            [
                torch.where(sol, lp, zero).cumsum(-1) / 10.0,
                torch.where(digits, lp, zero).cumsum(-1) / 10.0,
                running_min(lp),
                torch.where(digits, gap, zero).cumsum(-1) / 10.0,
                running_min(gap),
                torch.log1p(digits.float().cumsum(-1)) / 3.0,
            ],
            dim=-1,
        ).to(self.head.weight.dtype)


# ---- encoding ---------------------------------------------------------------------------------
@dataclass
class EncodedSolution:
    ids: list[int]
    step_ends: list[int]  # token index of each step's last token
    solution_start: int  # first token of the solution (after the prompt)


def encode_solution(tokenizer, question: str, steps: list[str], max_length: int = 1024) -> EncodedSolution:
    """Token ids of question+steps and the token where each step ends (via offsets)."""
    if not steps:
        raise DataError("a solution with no steps cannot be scored")
    text, char_ends = scoring_text(question, steps)
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    offsets = enc["offset_mapping"]
    prompt_chars = len(text) - len("\n".join(s.strip("\n") for s in steps))
    ends, start, k = [], None, 0
    for t, (a, b) in enumerate(offsets):
        if b <= a:
            continue
        if start is None and b > prompt_chars:
            start = t
        while k < len(char_ends) and a <= char_ends[k] < b:
            ends.append(t)
            k += 1
    if len(ends) != len(steps):
        raise DataError("could not align step ends with tokens (tokenizer without offsets?)")
    if len(enc["input_ids"]) > max_length:
        raise DataError(f"solution too long to score: {len(enc['input_ids'])} tokens > {max_length}")
    return EncodedSolution(ids=list(enc["input_ids"]), step_ends=ends, solution_start=start or 0)


def collate_solutions(encoded: list[EncodedSolution], pad_id: int) -> dict:
    """Right-padded ids, attention and solution masks, each (B, T) with T the longest solution."""
    width = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)  # (B, T) 1 on real tokens
    sol = torch.zeros((len(encoded), width), dtype=torch.bool)  # (B, T) solution tokens, not the prompt
    for i, e in enumerate(encoded):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        mask[i, : len(e.ids)] = 1
        sol[i, e.solution_start : len(e.ids)] = True
    return {"input_ids": ids, "attention_mask": mask, "solution_mask": sol}


# ---- scoring ----------------------------------------------------------------------------------
class RewardScorer:
    """Per-step probabilities for (question, steps) pairs, batched, one forward pass per batch."""

    def __init__(self, model: RewardModel, tokenizer, batch_size: int = 64, max_length: int = 1024):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        # learned position tables (GPT-2) fail past their end: a clear error instead
        self.max_length = min(max_length, getattr(model.config, "max_position_embeddings", None) or max_length)

    def score(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        return score_together([self], items)[0]

    def score_one(self, question: str, steps: list[str]) -> list[float]:
        return self.score([(question, steps)])[0]


def score_together(scorers: Sequence[RewardScorer], items: list[tuple[str, list[str]]]) -> list[list[list[float]]]:
    """Each scorer's per-step probabilities for the same items, in the scorers' order. Scorers on one
    backbone module (share_backbones: an ORM and a SORM trained on one frozen base) share its
    forward pass: one backbone pass per batch for all of them, then one value head each."""
    out: list[list[list[float]]] = [[] for _ in scorers]
    groups: dict[int, list[int]] = {}
    for k, scorer in enumerate(scorers):
        if not isinstance(scorer, RewardScorer):  # any object with .score(items) (a stand-in, a remote scorer)
            out[k] = scorer.score(items)
            continue
        groups.setdefault(id(scorer.model.lm), []).append(k)
    for members in groups.values():
        for k, scores in zip(members, _score_group([scorers[k] for k in members], items)):
            out[k] = scores
    return out


def _score_group(group: list[RewardScorer], items: list[tuple[str, list[str]]]) -> list[list[list[float]]]:
    lead = group[0]
    max_length = min(s.max_length for s in group)
    encoded = [encode_solution(lead.tokenizer, q, steps, max_length) for q, steps in items]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))  # less padding per batch
    features = any(s.model.likelihood_features for s in group)
    scores: list[list[list[float]]] = [[[] for _ in encoded] for _ in group]
    with torch.inference_mode():
        for idx in length_runs(order, lead.batch_size):
            batch = collate_solutions([encoded[i] for i in idx], lead.tokenizer.pad_token_id)
            batch = {k: v.to(lead.device) for k, v in batch.items()}
            hidden, feats = lead.model.states(**batch, features=features)  # (B, T, H), (B, T, F) or None
            for g, scorer in enumerate(group):
                probs = torch.sigmoid(scorer.model.values(hidden, feats).float())  # (B, T)
                for row, i in enumerate(idx):
                    scores[g][i] = probs[row, encoded[i].step_ends].tolist()  # (S,) at each step's last token
    return scores


def share_backbones(scorers: Sequence[RewardScorer]) -> int:
    """Point scorers whose backbones hold identical weights, config and tokenizer at one backbone
    module, so that score_together runs it once for all of them (and it is held in memory once).
    An ORM and a SORM trained with a frozen backbone from one base are such a pair. Returns how many
    scorers now share another's backbone."""
    shared = 0
    for i, scorer in enumerate(scorers):
        for other in scorers[:i]:
            if other.model.lm is scorer.model.lm:
                break
            if _same_backbone(other, scorer):
                scorer.model.lm = other.model.lm
                shared += 1
                break
    return shared


def _same_backbone(a: RewardScorer, b: RewardScorer) -> bool:
    if type(a.model.lm) is not type(b.model.lm) or a.device != b.device:
        return False
    if fingerprint(a.tokenizer) != fingerprint(b.tokenizer):
        return False
    if not torch.equal(a.model.digit_tokens, b.model.digit_tokens):  # the likelihood features read them
        return False
    name = ("_name_or_path", "name_or_path")
    config_a = {k: v for k, v in a.model.lm.config.to_dict().items() if k not in name}
    config_b = {k: v for k, v in b.model.lm.config.to_dict().items() if k not in name}
    if config_a != config_b:
        return False
    state_a, state_b = a.model.lm.state_dict(), b.model.lm.state_dict()
    if state_a.keys() != state_b.keys():
        return False
    return all(
        state_a[k].shape == state_b[k].shape
        and state_a[k].dtype == state_b[k].dtype
        and torch.equal(state_a[k], state_b[k])
        for k in state_a
    )


# ---- checkpoints -----------------------------------------------------------------------------
def reward_model_from_policy(policy_path: str, likelihood_features: bool = True, device: str = "cpu"):
    """A fresh reward model whose backbone starts from a policy checkpoint (or any HF causal LM)."""
    from .causal_lm import load_causal_lm

    lm, tokenizer, _ = load_causal_lm(policy_path, device=device)
    model = RewardModel(lm, likelihood_features=likelihood_features, tokenizer=tokenizer).to(device)
    return model, tokenizer


def save_reward_model(
    model: RewardModel, tokenizer, folder: str | Path, card: Card, dtype=None, state_dict: dict | None = None
) -> Path:
    """The backbone as an HF folder, the heads in their own file, the card; state_dict: the whole
    model's weights to write instead of its own (gathered from FSDP / ZeRO-3 shards)."""
    from safetensors.torch import save_file

    if card.role not in REWARD_ROLES:
        raise CheckpointError(f"a reward model must be saved as {' or '.join(REWARD_ROLES)}, not {card.role}")
    card.tokenizer = card.tokenizer or fingerprint(tokenizer)
    card.config = {**card.config, "likelihood_features": model.likelihood_features}

    def save(tmp: Path) -> None:
        import copy

        import torch

        state = (
            state_dict
            if state_dict is not None
            else {
                **{f"head.{k}": v for k, v in model.head.state_dict().items()},
                **{f"feature_head.{k}": v for k, v in model.feature_head.state_dict().items()},
            }
        )
        lm_state = {k[3:]: v for k, v in state.items() if k.startswith("lm.")} if state_dict is not None else None
        lm = copy.deepcopy(model.lm).to(dtype) if dtype is not None else model.lm
        lm.save_pretrained(tmp, safe_serialization=True, state_dict=lm_state)
        tokenizer.save_pretrained(tmp)
        head = {k: v for k, v in state.items() if k.startswith(("head.", "feature_head."))}
        head = {k: (v.to(dtype) if dtype is not None else v).contiguous() for k, v in head.items()}
        head["digit_tokens"] = model.digit_tokens.to(torch.uint8).contiguous()  # features read exactly these
        save_file(head, str(tmp / HEAD_FILE))
        write_card(tmp, card)

    return atomic_save(folder, save)


def load_reward_model(path: str | Path, roles=REWARD_ROLES, device: str | None = None):
    """(model, tokenizer, card) on device (default: a GPU when present); a policy folder or a folder
    without a value head is a clear error."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..runtime import pick_device
    from .causal_lm import load_causal_lm

    device = pick_device(device)

    folder = require_folder(path, "reward model")
    card = check_role(folder, roles)
    if card is None or not (folder / HEAD_FILE).is_file():
        raise CheckpointError(f"{folder} is not a reward model checkpoint (no card or no {HEAD_FILE})")
    lm, tokenizer, _ = load_causal_lm(
        str(folder), roles=roles, device=device, dtype=torch.float32 if device == "cpu" else None
    )
    model = RewardModel(lm, likelihood_features=bool(card.config.get("likelihood_features", True)), tokenizer=tokenizer)
    try:
        state = load_file(str(folder / HEAD_FILE))
        model.head.load_state_dict({k[5:]: v.float() for k, v in state.items() if k.startswith("head.")})
        model.feature_head.load_state_dict(
            {k[13:]: v.float() for k, v in state.items() if k.startswith("feature_head.")}
        )
        if "digit_tokens" in state:
            model.digit_tokens = state["digit_tokens"].bool()
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{folder / HEAD_FILE}: corrupt or mismatched value head ({exc})") from exc
    return model.to(device).eval(), tokenizer, card


def is_reward_checkpoint(path: str | Path) -> bool:
    card = read_card(path) if Path(path).is_dir() else None
    return card is not None and card.role in REWARD_ROLES


def load_scorers(models: Mapping[str, str | Path], roles=REWARD_ROLES) -> dict[str, RewardScorer]:
    """{name: checkpoint folder} -> {name: RewardScorer}, each model loaded as load_reward_model does."""
    scorers = {}
    for name, path in models.items():
        model, tokenizer, _ = load_reward_model(path, roles=roles)
        scorers[name] = RewardScorer(model, tokenizer)
    share_backbones(list(scorers.values()))
    return scorers
