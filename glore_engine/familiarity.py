"""Is a problem and its draft like what a family was trained on? Plain-words warnings for Inspect.

Three signals, all cheap, each against its range on the family's own test split (the synthetic task
at the difficulty the student's card records; the gold solutions of REFERENCE_N test problems):
- the problem's wording: characters per token of the student's tokenizer. The student learns no
  loss on the problem's tokens (only on the solution's), so its likelihood of them means little;
  but its tokenizer was built from its task, and words it never saw split into many short pieces.
- the draft: the student's mean log-probability per token of the draft after the problem, as it
  reads them (student prompt + draft). Below the lowest value of its own test split the draft is
  not the kind of text these models learned to judge, so their scores say little about it.
- the draft's format: training drafts have calculator annotations (`<<3+4=7>>`) in their steps
  and end with a `#### n` line; a draft without them reads as wrong to these reward models.
The range is measured once per student and kept beside it (`likelihood_range.json`; in the user's
cache folder when the student's folder is read-only).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .formats import ANSWER_PREFIX, student_prompt

RANGE_FILE = "likelihood_range.json"
REFERENCE_N = 256  # test problems the range is measured on
# Warn below low - MARGIN * (median - low): at 0 a few of the task's own problems fall below a
# 256-problem minimum (4 of 1,500 for the bundled family); at 0.25, none of them, and still 1,317 of
# GSM8K's 1,319 test questions.
MARGIN = 0.25
RANGE_VERSION = 3
_ANNOTATION = re.compile(r"<<[^<>]*=[^<>]*>>")


@dataclass(frozen=True)
class Familiarity:
    """What Inspect says before the scores; `warnings` empty = nothing unusual found."""

    chars_per_token: float | None = None  # the problem's
    draft_logprob: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def unreliable(self) -> bool:
        return bool(self.warnings)


def format_warnings(steps: Sequence[str]) -> list[str]:
    """The draft's format against the training drafts': calculator annotations and an answer line."""
    if not steps:
        return []
    out = []
    if not any(_ANNOTATION.search(s) for s in steps):
        out.append(
            "The draft's steps have no calculator annotations (like `<<3+4=7>>`), which every draft these "
            "models were trained on has; the reward models tend to score such steps low whatever their maths."
        )
    if not any(line.strip().startswith(ANSWER_PREFIX.strip()) for s in steps for line in s.splitlines()):
        out.append("The draft has no final `#### answer` line; the models were trained on drafts that end with one.")
    return out


def chars_per_token(tokenizer, question: str) -> float | None:
    """Characters of the problem per token of the student's tokenizer (unseen words split finely)."""
    text = question.strip()
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return len(text) / n if n else None


def draft_logprob(model, tokenizer, question: str, draft: str) -> float | None:
    """Mean log-probability per token of the draft after the problem, as the student reads them."""
    return draft_logprobs(model, tokenizer, [(question, draft)])[0]


def draft_logprobs(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> list[float | None]:
    """draft_logprob for many (question, draft) pairs, a padded batch per forward pass."""
    out: list[float | None] = []
    for start in range(0, len(pairs), batch_size):
        out += _logprob_batch(model, tokenizer, pairs[start : start + batch_size])
    return out


def _logprob_batch(model, tokenizer, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    import torch

    prompts = [student_prompt(q) for q, _ in pairs]
    encs = [tokenizer(p + d, return_offsets_mapping=True, add_special_tokens=True) for p, (_, d) in zip(prompts, pairs)]
    width = max(len(e["input_ids"]) for e in encs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    # right padding: a causal model's logits at real positions never see the pads after them
    ids = torch.full((len(encs), width), pad, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(encs), width), dtype=torch.long)  # (B, T)
    for row, e in enumerate(encs):
        ids[row, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
        mask[row, : len(e["input_ids"])] = 1
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()  # (B, T-1, V)
    token_lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None].to(device))[..., 0].cpu()  # (B, T-1)
    out = []
    for row, (e, prompt) in enumerate(zip(encs, prompts)):
        n = len(e["input_ids"]) - 1
        offsets = e["offset_mapping"][1 : n + 1]
        lps = token_lp[row, :n].tolist()
        out.append(_mean([lp for lp, (a, b) in zip(lps, offsets) if b > a and a >= len(prompt)]))
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def reference_range(model, tokenizer, problems) -> dict[str, Any]:
    """The lowest and median values of both measures on (problem, gold solution) pairs."""
    pieces = [chars_per_token(tokenizer, p.question) for p in problems]
    drafts = draft_logprobs(model, tokenizer, [(p.question, p.solution) for p in problems])
    return {
        "version": RANGE_VERSION,
        "n": len(problems),
        "chars_per_token": _low_median([v for v in pieces if v is not None]),
        "draft_logprob": _low_median([v for v in drafts if v is not None]),
    }


def _low_median(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"low": ordered[0], "median": ordered[len(ordered) // 2]}


def _cache_path(student_folder: Path) -> Path:
    """Beside the student when its folder is writable, else in the user's cache folder."""
    if os.access(student_folder, os.W_OK):
        return student_folder / RANGE_FILE
    weights = student_folder / "model.safetensors"
    stamp = f"{student_folder.resolve()}:{weights.stat().st_size if weights.exists() else 0}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "glore" / f"likelihood-range-{key}.json"


def family_range(student_folder: str | Path, model, tokenizer) -> dict[str, Any]:
    """The student's range on its own test split: read from beside it, else measured now and kept."""
    folder = Path(student_folder)
    for path in (folder / RANGE_FILE, _cache_path(folder)):
        if path.is_file():
            try:
                cached = json.loads(path.read_text(encoding="utf-8"))
                if cached.get("version") == RANGE_VERSION:
                    return cached
            except (OSError, ValueError):
                pass  # a broken cache is measured again
    from .tasks.model_task import task_config_from_card
    from .tasks.synthetic import generate

    problems = generate("test", REFERENCE_N, seed=0, config=task_config_from_card(folder))
    measured = reference_range(model, tokenizer, problems)
    path = _cache_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(measured, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # measured again next time
    return measured


def bar(measure: dict[str, float]) -> float:
    """The value below which a problem or draft counts as outside the range."""
    return measure["low"] - MARGIN * (measure["median"] - measure["low"])


def likelihood_warnings(pieces: float | None, draft_lp: float | None, reference: dict) -> list[str]:
    """Plain words when the problem or the draft falls clearly below everything in the reference range."""
    out = []
    n = reference.get("n", REFERENCE_N)
    p_ref, d_ref = reference.get("chars_per_token"), reference.get("draft_logprob")
    if pieces is not None and p_ref and pieces < bar(p_ref):
        out.append(
            f"This problem is unlike the ones these models were trained on: its words are new to the "
            f"student (its tokenizer splits them into pieces of {pieces:.1f} characters on average, "
            f"against at least {p_ref['low']:.1f} on all {n} problems of its own test split)."
        )
    if draft_lp is not None and d_ref and draft_lp < bar(d_ref):
        out.append(
            f"This draft is unlike the solutions these models were trained on: the student finds it less "
            f"likely ({draft_lp:.2f} log-probability per token) than every gold solution of {n} test "
            f"problems (lowest {d_ref['low']:.2f}, typical {d_ref['median']:.2f})."
        )
    return out


def check(question: str, steps: Sequence[str], model=None, tokenizer=None, reference=None) -> Familiarity:
    """Format warnings always; the other two when the student (model, tokenizer) and its range are given."""
    return check_batch([(question, steps)], model, tokenizer, reference)[0]


def check_batch(
    items: Sequence[tuple[str, Sequence[str]]], model=None, tokenizer=None, reference=None, known=None
) -> list[Familiarity]:
    """check() for many (question, steps), the drafts' log-probabilities in padded batches.

    known: per item, the draft's mean log-probability per token when the student wrote it itself
    (its sampler's own figure, `Sample.logprob / Sample.n_tokens`), else None; only the others are
    read again. The two agree to 0.003 nats per token on the bundled student's drafts (the sampler's
    figure also counts the token that ended the draft), far inside the warning's margin."""
    if model is None or tokenizer is None or reference is None:
        return [Familiarity(None, None, format_warnings(steps)) for _, steps in items]
    given = list(known) if known is not None else [None] * len(items)
    lps: list[float | None] = [lp if steps else None for lp, (_, steps) in zip(given, items)]
    scored = [i for i, (_, steps) in enumerate(items) if steps and lps[i] is None]
    values = draft_logprobs(model, tokenizer, [(items[i][0], "\n".join(items[i][1])) for i in scored])
    for i, lp in zip(scored, values):
        lps[i] = lp
    out = []
    for (question, steps), lp in zip(items, lps):
        pieces = chars_per_token(tokenizer, question)
        out.append(Familiarity(pieces, lp, likelihood_warnings(pieces, lp, reference) + format_warnings(steps)))
    return out
