"""What runs inside vLLM's engine process: the GLoRe stop and calculator rules.

vLLM imports the processor by name (`logits_processors=[...]`), so this module
imports vLLM at the top and is itself imported only where vLLM is installed.

`GloreLogitsProcessor` acts on requests whose `SamplingParams.extra_args["glore"]` asks for it:
- calculator: once a row has written `<<expr=`, the next tokens are forced to the result and `>>`,
  exactly as the transformers backend writes them;
- answer_stop: once a row has finished its `####` answer line, EOS is forced, so the engine stops
  there instead of rambling on (the backend cuts the text and counts the tokens up to the newline).
Forcing sets every other logit to -inf; vLLM reports raw log-probabilities (before processors), so a
forced token carries the model's own log-probability, as in the transformers backend.
"""

from __future__ import annotations

from collections import deque

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from .stops import calculator_result, stop_cut

EXTRA_KEY = "glore"


class _RowRules:
    """The rules of one running request; `output` is vLLM's live list of its generated token ids."""

    def __init__(self, output: list[int], calculator: bool, answer_stop: bool):
        self.output = output
        self.calculator = calculator
        self.answer_stop = answer_stop
        self.forced: deque[int] = deque()
        self.seen = 0  # output tokens already checked


class GloreLogitsProcessor(LogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        from ..models.causal_lm import load_tokenizer

        self.tokenizer = load_tokenizer(vllm_config.model_config.tokenizer)
        vocab = [self.tokenizer.decode([i]) for i in range(len(self.tokenizer))]
        self.has_newline = {i for i, t in enumerate(vocab) if "\n" in t}
        self.has_equals = {i for i, t in enumerate(vocab) if "=" in t}
        self.eos_id = self.tokenizer.eos_token_id
        self.rows: dict[int, _RowRules] = {}  # batch index -> rules

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        rules = (sampling_params.extra_args or {}).get(EXTRA_KEY)
        if rules is not None and not isinstance(rules, dict):
            raise ValueError(f"extra_args[{EXTRA_KEY!r}] must be a mapping")

    def is_argmax_invariant(self) -> bool:
        return False  # it changes greedy choices

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, self._new_rules)

    def _new_rules(self, params, prompt_ids, output_ids) -> _RowRules | None:
        rules = (params.extra_args or {}).get(EXTRA_KEY)
        if not rules or not (rules.get("calculator") or rules.get("answer_stop")):
            return None
        return _RowRules(output_ids, bool(rules.get("calculator")), bool(rules.get("answer_stop")))

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (B, V): rows with a forced next token get -inf everywhere else."""
        index, tokens = [], []
        for i, row in self.rows.items():
            token = self._next_forced(row)
            if token is not None:
                index.append(i)
                tokens.append(token)
        if index:
            rows = torch.tensor(index, device=logits.device)
            logits[rows] = float("-inf")
            logits[rows, torch.tensor(tokens, device=logits.device)] = 0.0
        return logits

    def _next_forced(self, row: _RowRules) -> int | None:
        """The token this row must write next, if a rule says so (checked once per new token)."""
        if len(row.output) > row.seen:
            row.seen = len(row.output)
            last = row.output[-1]
            if not row.forced and last != self.eos_id and (last in self.has_newline or last in self.has_equals):
                self._check(row)
        return row.forced.popleft() if row.forced else None

    def _check(self, row: _RowRules) -> None:
        text = self.tokenizer.decode(row.output, skip_special_tokens=False)
        if row.answer_stop and stop_cut(text, [], True) is not None:
            row.forced.append(self.eos_id)
        elif row.calculator:
            value = calculator_result(text)
            if value:
                row.forced.extend(self.tokenizer(value, add_special_tokens=False).input_ids)
