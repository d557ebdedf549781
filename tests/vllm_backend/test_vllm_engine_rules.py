"""The rules vLLM runs in its engine process (vllm_engine.GloreLogitsProcessor), driven by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def processor(student):
    import torch

    from glore_engine.generation.vllm_engine import GloreLogitsProcessor

    config = SimpleNamespace(model_config=SimpleNamespace(tokenizer=student))
    return GloreLogitsProcessor(config, torch.device("cpu"), False)


def add(processor, output: list[int], **rules):
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    params = SamplingParams(extra_args={"glore": rules})
    processor.update_state(BatchUpdate(batch_size=1, removed=[], added=[(0, params, [], output)], moved=[]))


def forced(processor, vocab: int):
    import torch

    logits = processor.apply(torch.zeros(1, vocab))
    allowed = (logits[0] > float("-inf")).nonzero().squeeze(1).tolist()
    return allowed[0] if len(allowed) == 1 else None


def write(processor, output, text):
    """Append text token by token, checking that no rule fires before its last token."""
    tokens = processor.tokenizer(text, add_special_tokens=False).input_ids
    for token in tokens[:-1]:
        output.append(token)
        assert forced(processor, len(processor.tokenizer)) is None, text
    output.append(tokens[-1])


def test_eos_is_forced_once_the_answer_line_is_finished(processor):
    tok = processor.tokenizer
    output: list[int] = []
    add(processor, output, answer_stop=True, calculator=False)
    write(processor, output, "He has 3 apples.\n#### 3\n")
    assert forced(processor, len(tok)) == tok.eos_token_id


def test_the_calculator_result_is_forced_after_an_open_annotation(processor):
    tok = processor.tokenizer
    output: list[int] = []
    add(processor, output, answer_stop=True, calculator=True)
    write(processor, output, "He has 3*4=<<3*4=")
    written: list[int] = []
    while (token := forced(processor, len(tok))) is not None:
        written.append(token)
        output.append(token)
    assert tok.decode(written) == "12>>"


def test_requests_without_rules_are_left_alone(processor):
    output: list[int] = []
    add(processor, output)
    assert processor.rows == {}
