"""Supervised fine-tuning with the loss on the completion tokens only (student and refiners)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..tracking import Tracker
from .loop import OptimConfig, TrainResult, index_stream, train


@dataclass
class TokenizedExample:
    ids: list[int]
    n_prompt: int  # tokens of the prompt: no loss on these


def tokenize_examples(tokenizer, pairs: list[tuple[str, str]], max_length: int) -> list[TokenizedExample]:
    """(prompt, completion) pairs -> ids, the completion closed by EOS. Over-long pairs are dropped."""
    if not pairs:
        raise DataError("no training examples")
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=True).input_ids
    joint = tokenizer([p + c for p, c in pairs], add_special_tokens=True).input_ids
    completions = tokenizer([c for _, c in pairs], add_special_tokens=False).input_ids
    out = []
    for p, j, c in zip(prompts, joint, completions):
        # the text as one string, as the reward models read it (a Llama tokenizer writes a completion
        # alone with a leading "▁"); unless a token would straddle the prompt's end as the sampler sees it
        ids = (j if j[: len(p)] == p else p + c) + [tokenizer.eos_token_id]
        if len(ids) <= max_length:
            out.append(TokenizedExample(ids=ids, n_prompt=len(p)))
    if not out:
        raise DataError(f"every training example is longer than max_length={max_length} tokens")
    return out


def collate(examples: list[TokenizedExample], pad_id: int) -> dict:
    """Right-padded batch; labels are -100 on prompt and padding tokens."""
    import torch

    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids)
        labels[i, e.n_prompt : n] = ids[i, e.n_prompt : n]
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lm_loss(model, batch: dict):
    """Next-token loss summed over completion tokens, divided by batch["loss_norm"] (default: their
    count, the mean); n_tokens counts every real token processed."""
    import torch.nn.functional as F

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    total = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum"
    )
    norm = batch.get("loss_norm", (labels != -100).sum().clamp(min=1))
    return total / norm, int(batch["attention_mask"].sum())


def batch_maker(examples: list[TokenizedExample], pad_id: int, batch_size: int, seed: int, length_groups: int = 0):
    """make_batch(step, rank, world): rank's share (every world-th example) of the step's global batch.

    loss_norm is the global batch's completion-token count over world: DDP averages the ranks'
    gradients, so the result is the one-process mean over the whole batch, not a mean of means.
    length_groups: see loop.index_stream.
    """
    lengths = [len(e.ids) for e in examples]

    def make_batch(step: int, rank: int = 0, world: int = 1) -> dict:
        idx = index_stream(len(examples), batch_size, step, seed, lengths, length_groups)
        targets = sum(len(examples[i].ids) - max(examples[i].n_prompt, 1) for i in idx)  # shifted labels
        batch = collate([examples[i] for i in idx[rank::world]], pad_id)
        batch["loss_norm"] = max(targets, 1) / world
        return batch

    return make_batch


def run_sft(
    model,
    tokenizer,
    pairs: list[tuple[str, str]],
    optim: OptimConfig,
    workdir: str | Path,
    *,
    seed: int = 0,
    max_length: int = 512,
    tracker: Tracker | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "sft",
) -> TrainResult:
    """Fine-tune model on (prompt, completion) pairs for optim.max_steps steps."""
    examples = tokenize_examples(tokenizer, pairs, max_length)
    make_batch = batch_maker(examples, tokenizer.pad_token_id, optim.batch_size, seed, optim.length_groups)
    return train(
        model, make_batch, lm_loss, optim, workdir, tracker=tracker, resume=resume, progress=progress, desc=desc
    )
