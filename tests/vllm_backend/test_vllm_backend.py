"""vLLM and transformers backends: the same greedy samples, the same rules, one request per prefix."""

from __future__ import annotations

import re

import pytest

PARITY = 0.95  # fp32 ties may break differently in vLLM's kernels


def fields(sample):
    return sample.text, sample.n_tokens, sample.finished


def assert_parity(ours, theirs, minimum=PARITY):
    """At least `minimum` of the rows have the same text; those also agree on tokens, finish and logprob."""
    same = [(a, b) for (a,), (b,) in zip(ours, theirs) if a.text == b.text]
    assert len(same) >= minimum * len(ours), f"{len(same)}/{len(ours)} greedy texts agree"
    for a, b in same:
        assert fields(a) == fields(b)
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
    return same


def test_greedy_samples_match_the_transformers_backend(engine, hf, prompts):
    ours = engine.generate(prompts, max_new_tokens=160)
    theirs = hf.generate(prompts, max_new_tokens=160)
    same = assert_parity(ours, theirs)
    assert sum(a.finished for a, _ in same) > len(prompts) // 2  # the rows really end on their own
    assert len({a.text for a, _ in same}) > len(prompts) // 2  # and differ from one another


def test_calculator_mode_writes_every_result_as_the_transformers_backend_does(engine, hf, prompts):
    from glore_engine.tasks.calculator import evaluate, format_number

    plain = engine.generate(prompts, max_new_tokens=160)
    ours = engine.generate(prompts, max_new_tokens=160, calculator=True)
    theirs = hf.generate(prompts, max_new_tokens=160, calculator=True)
    assert_parity(ours, theirs)
    assert any(a.text != b.text for (a,), (b,) in zip(plain, ours))  # the calculator corrected something
    annotations = [m for (s,) in ours for m in re.finditer(r"<<([^<>=\n]+)=([^<>\n]*)>>", s.text)]
    assert len(annotations) > len(prompts)
    for m in annotations:
        assert m.group(2) == format_number(evaluate(m.group(1))), m.group(0)


def test_stop_strings_and_the_token_limit_match(engine, hf, prompts):
    stopped = engine.generate(prompts[:32], max_new_tokens=64, stop=["<<"])
    assert_parity(stopped, hf.generate(prompts[:32], max_new_tokens=64, stop=["<<"]))
    assert all("<<" not in s.text and s.finished for (s,) in stopped)
    short = engine.generate(prompts[:32], max_new_tokens=8)
    assert_parity(short, hf.generate(prompts[:32], max_new_tokens=8))
    assert all(s.n_tokens == 8 and not s.finished for (s,) in short)


def test_one_request_per_prompt_with_n_samples_and_prefix_caching(engine, prompts, monkeypatch):
    seen = []
    generate = engine.llm.generate

    def spy(requests, params, **kwargs):
        seen.append((len(requests), [p.n for p in params]))
        return generate(requests, params, **kwargs)

    monkeypatch.setattr(engine.llm, "generate", spy)
    out = engine.generate(prompts[:6], n=4, temperature=1.0, max_new_tokens=48, seed=0)
    assert seen == [(6, [4] * 6)]
    assert [len(o) for o in out] == [4] * 6
    assert len({s.text for o in out for s in o}) > 6  # samples, not copies
    assert engine.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching


def test_samples_carry_their_tokens_and_logprobs(engine, prompts):
    (samples,) = engine.generate(prompts[:1], n=8, temperature=1.0, max_new_tokens=96, seed=0)
    for s in samples:
        assert 0 < s.n_tokens <= 96 and s.logprob < 0
        if s.n_tokens < 96:
            assert s.finished  # it ended on EOS or its answer line, not on the limit
    stats = engine.stats
    assert stats.samples >= 8 and stats.generated_tokens >= sum(s.n_tokens for s in samples)


def test_a_prompt_too_long_for_the_context_is_a_data_error(engine):
    from glore_engine.errors import DataError
    from glore_engine.formats import student_prompt

    with pytest.raises(DataError, match="512"):
        engine.generate([student_prompt("apples " * 600)], max_new_tokens=4)


def test_auto_keeps_transformers_on_cpu():
    import torch

    from glore_engine.generation import resolve_backend

    assert resolve_backend("auto") == ("vllm" if torch.cuda.is_available() else "transformers")
