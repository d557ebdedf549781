"""Batched sampling on any transformers causal LM with a lean decode loop.

Why not `model.generate`: the loop here (1) prefills each prompt once and keeps its KV cache once
for its n samples (`attention.py`: the samples read it together, and the per-row cache is allocated
once, not concatenated every step), (2) drops finished rows from the batch so long stragglers do not
pay for the rest, (3) stops a row right after its `####` answer line, and (4) can act as the GSM8K
calculator, writing the result of `<<expr=` itself. Left padding, greedy or temperature sampling.

Shapes: P prompts in a chunk, n samples each, R = P * n rows, B <= R rows still in the batch, W the
padded prompt width, V the vocabulary, M = max_new_tokens.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from . import attention, fused
from .base import GenerationStats, Sample
from .decoding import CacheDecoder, SharedPrefixDecoder, cache_keyword, supports_shared_prefix
from .stops import calculator_result, stop_cut

MIN_NEW_TOKENS = 16
PRUNE_FRACTION = 8  # drop finished rows once 1/8 of the batch is finished: each prune copies the cache

__all__ = ["MIN_NEW_TOKENS", "TransformersBackend", "cache_keyword", "sample_rows"]


def sample_rows(probs, generator):
    """One token per row from probs (B, V): inverse CDF, about 6x faster than torch.multinomial on CPU."""
    import torch

    cdf = probs.cumsum(-1)  # (B, V)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:]  # (B, 1)
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=probs.shape[1] - 1)  # (B,)


@dataclass
class _Rows:
    """What the R rows of a chunk wrote so far; row r is sample r % n of prompt r // n."""

    alive: Any  # (B,) the row at each batch position
    tokens: Any  # (R, M) generated ids, EOS-filled
    lengths: Any  # (R,) tokens written
    logprob: Any  # (R,) float64, summed log-probabilities under the untempered model
    finished: Any  # (R,) bool
    cut_text: list[str | None]  # the text kept when a stop rule cut the row
    forced: dict[int, deque] = field(default_factory=dict)  # row -> calculator tokens still to write

    @classmethod
    def start(cls, rows: int, max_new_tokens: int, eos_id: int, device) -> _Rows:
        import torch

        return cls(
            alive=torch.arange(rows, device=device),
            tokens=torch.full((rows, max_new_tokens), eos_id, dtype=torch.long, device=device),
            lengths=torch.zeros(rows, dtype=torch.long, device=device),
            logprob=torch.zeros(rows, dtype=torch.float64, device=device),
            finished=torch.zeros(rows, dtype=torch.bool, device=device),
            cut_text=[None] * rows,
        )


class TransformersBackend:
    """Backend over an HF model + tokenizer. Same seed and batch_size give the same samples."""

    def __init__(self, model, tokenizer, batch_size: int = 256, answer_stop: bool = True, progress=None):
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.answer_stop = answer_stop
        self.progress = progress  # callable(done_prompts, total_prompts) or None
        self.stats = GenerationStats()
        self.device = next(model.parameters()).device
        self.shared_prefix = supports_shared_prefix(model)  # falls back to CacheDecoder if the model refuses
        self.fused_step = None
        if self.shared_prefix:
            attention.register()
            self.fused_step = fused.FusedStep.build(model)  # None unless the layers are exactly Llama's
        self._max_positions = getattr(model.config, "max_position_embeddings", None)
        # models often have more output rows than the tokenizer has tokens (padded embeddings): cover them all
        n_vocab = max(len(tokenizer), getattr(model.config, "vocab_size", None) or 0)
        vocab = [tokenizer.decode([i]) if i < len(tokenizer) else "" for i in range(n_vocab)]
        self._has_newline = torch.tensor(["\n" in t for t in vocab], device=self.device)  # (V,)
        self._has_equals = torch.tensor(["=" in t for t in vocab], device=self.device)  # (V,)
        self.eos_id = tokenizer.eos_token_id

    # ---- public API -------------------------------------------------------------------------
    def generate(self, prompts, n=1, temperature=0.0, max_new_tokens=256, stop=None, seed=None, calculator=False):
        import torch

        if not prompts:
            return []
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar widths pad less
        per_chunk = max(1, self.batch_size // max(n, 1))
        results: list[list[Sample] | None] = [None] * len(prompts)
        started = time.perf_counter()
        for c, start in enumerate(range(0, len(order), per_chunk)):
            idx = order[start : start + per_chunk]
            generator = None
            if temperature > 0:
                generator = torch.Generator(device=self.device)
                generator.manual_seed((seed if seed is not None else 0) * 1_000_003 + c)
            chunk = self._generate_chunk(
                [prompts[i] for i in idx], n, temperature, max_new_tokens, stop or [], generator, calculator
            )
            for i, samples in zip(idx, chunk):
                results[i] = samples
            if self.progress:
                self.progress(min(start + per_chunk, len(order)), len(order))
        self.stats.prompts += len(prompts)
        self.stats.seconds += time.perf_counter() - started
        return results

    def generate_one(self, prompt: str, **kwargs) -> Sample:
        return self.generate([prompt], n=1, **kwargs)[0][0]

    # ---- one chunk ----------------------------------------------------------------------------
    def _generate_chunk(self, prompts, n, temperature, max_new_tokens, stops, generator, calculator):
        import torch

        with torch.inference_mode():
            ids, mask, max_new_tokens = self._encode(prompts, max_new_tokens)  # (P, W) each
            decoder, logits = self._prefill(ids, mask, max_new_tokens)  # logits (P, V)
            next_pos = mask.sum(-1)  # (P,) position of each prompt's first new token
            if n > 1:  # one prefill per prompt, n continuations share it
                decoder.expand(n)
                logits, next_pos = logits.repeat_interleave(n, 0), next_pos.repeat_interleave(n, 0)  # (R, ...)
            rows = _Rows.start(logits.shape[0], max_new_tokens, self.eos_id, self.device)  # tokens (R, M)
            for step in range(max_new_tokens):  # logits (B, V), next_pos (B,): B = R until the first prune
                choice = self._choose(logits, temperature, generator, rows)  # (B,)
                self._record(step, logits, choice, rows, stops, calculator)  # rows.tokens[:, step] of live rows
                keep = self._survivors(rows)  # (B',) batch positions still writing, or None: no prune yet
                if step == max_new_tokens - 1 or (keep is not None and len(keep) == 0):
                    break
                if keep is not None:
                    decoder.keep(keep)  # the KV cache drops the finished rows too
                    rows.alive, choice, next_pos = rows.alive[keep], choice[keep], next_pos[keep]  # (B',)
                logits = decoder.step(choice, next_pos)  # (B, V)
                next_pos = next_pos + 1
        return self._collect(len(prompts), n, rows)

    def _encode(self, prompts, max_new_tokens):
        """Left-padded ids and mask (P, W), and how many tokens fit after the longest prompt."""
        enc = self.tokenizer(prompts, padding=True, return_tensors="pt")
        width = enc.input_ids.shape[1]
        if self._max_positions and width + max_new_tokens > self._max_positions:
            room = self._max_positions - width
            if room < MIN_NEW_TOKENS:
                raise DataError(
                    f"prompt too long: {width} tokens leave no room in the model's context of "
                    f"{self._max_positions} tokens"
                )
            max_new_tokens = room
        self.stats.prompt_tokens += int(enc.attention_mask.sum())
        return enc.input_ids.to(self.device), enc.attention_mask.to(self.device), max_new_tokens

    def _prefill(self, ids, mask, max_new_tokens):
        """(decoder, logits (P, V)): the shared-prefix decoder where the model allows it, else the cache one."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (P, W)
        if self.shared_prefix:
            fused_step = self.fused_step if self.fused_step is not None and self.fused_step.ready() else None
            decoder = SharedPrefixDecoder(self.model, max_new_tokens, fused_step)
            try:
                return decoder, decoder.prefill(ids, mask, positions)
            except attention.Unsupported:
                self.shared_prefix = False
        fallback = CacheDecoder(self.model, max_new_tokens)
        return fallback, fallback.prefill(ids, mask, positions)

    # ---- one step -----------------------------------------------------------------------------
    def _choose(self, logits, temperature, generator, rows: _Rows):
        """The next token of each batch row (B,): greedy or sampled, then calculator tokens where queued."""
        if temperature > 0:
            choice = sample_rows((logits / temperature).softmax(-1), generator)
        else:
            choice = logits.argmax(-1)
        if rows.forced:
            for j, row in enumerate(rows.alive.tolist()):
                queue = rows.forced.get(row)
                if queue:
                    choice[j] = queue.popleft()
                    if not queue:
                        del rows.forced[row]
        return choice

    def _record(self, step: int, logits, choice, rows: _Rows, stops, calculator: bool) -> None:
        """Append the tokens of rows still writing (finished rows ride along until the next prune)."""
        live = ~rows.finished[rows.alive]  # (B,)
        index, token = rows.alive[live], choice[live]  # (L,)
        chosen = logits[live].gather(1, token[:, None]).squeeze(1) - logits[live].logsumexp(-1)  # (L,)
        rows.logprob[index] += chosen.double()
        rows.tokens[index, step] = token
        rows.lengths[index] += 1
        self._check_rows(token, index, rows, stops, calculator)

    def _check_rows(self, token, index, rows: _Rows, stops, calculator: bool) -> None:
        """Mark rows that hit EOS, their answer line or a stop string; queue calculator results.
        token and index (L,) cover the rows still writing."""
        done = token == self.eos_id  # (L,)
        if stops:  # a stop string may end in any token
            interesting = ~done
        else:
            interesting = self._has_newline[token] & ~done
            if calculator:
                interesting |= self._has_equals[token] & ~done
        index_list = index.tolist()
        for j in interesting.nonzero().squeeze(1).tolist():
            row = index_list[j]
            text = self.tokenizer.decode(rows.tokens[row, : rows.lengths[row]].tolist(), skip_special_tokens=False)
            cut = stop_cut(text, stops, self.answer_stop)
            if cut is not None:
                rows.cut_text[row] = cut
                done[j] = True
            elif calculator and row not in rows.forced:
                self._queue_calculator(text, row, rows.forced)
        rows.finished[index[done]] = True

    def _queue_calculator(self, text: str, row: int, forced: dict) -> None:
        value = calculator_result(text)
        ids = self.tokenizer(value, add_special_tokens=False).input_ids if value else []
        if ids:
            forced[row] = deque(ids)

    def _survivors(self, rows: _Rows):
        """Batch positions to keep (B',) when it is time to prune, else None; empty when all are done."""
        finished = rows.finished[rows.alive]  # (B,)
        dead = int(finished.sum())
        if dead == len(finished):
            return finished.new_zeros(0, dtype=rows.alive.dtype)
        if dead >= max(1, len(finished) // PRUNE_FRACTION):
            return (~finished).nonzero().squeeze(1)
        return None

    def _collect(self, n_prompts: int, n: int, rows: _Rows) -> list[list[Sample]]:
        lengths, logprob, finished = rows.lengths.tolist(), rows.logprob.tolist(), rows.finished.tolist()
        token_rows = rows.tokens.tolist()
        results = []
        for p in range(n_prompts):
            samples = []
            for r in range(p * n, (p + 1) * n):
                text = rows.cut_text[r]
                if text is None:
                    ids = [t for t in token_rows[r][: lengths[r]] if t != self.eos_id]
                    text = self.tokenizer.decode(ids, skip_special_tokens=True)
                samples.append(
                    Sample(text=text.strip("\n"), n_tokens=lengths[r], logprob=logprob[r], finished=finished[r])
                )
                self.stats.generated_tokens += lengths[r]
                self.stats.samples += 1
            results.append(samples)
        return results
