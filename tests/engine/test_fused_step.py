"""The fused decode step and the prefill by width groups: the same logits and samples as the model's
own forward, and the fused step stands aside whenever it could differ (hooks, training, other layers)."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import make_policy
from test_generation import PROMPTS, tiny_family_model

from glore_engine.formats import student_prompt
from glore_engine.generation import attention
from glore_engine.generation.decoding import SharedPrefixDecoder
from glore_engine.generation.fused import FusedStep
from glore_engine.generation.hf_backend import TransformersBackend

LONG = student_prompt("A shop sells 12 boxes of 8 pens and 3 bags of 25 pencils on Monday. How many items in all?")
MIXED = [*PROMPTS, LONG, student_prompt("Hi?"), LONG + " Twice?"]


def encoded(tokenizer, prompts):
    attention.register()  # what TransformersBackend does before its decoders run
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask, (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)


def lockstep(model, tokenizer, steps: int = 8, n: int = 3):
    """Logits of the model's forward and of the fused step, decoding the same tokens side by side,
    with n samples per prompt and rows leaving the batch: two lists of (B, V)."""
    fused = FusedStep.build(model)
    assert fused is not None and fused.ready()
    ids, mask, positions = encoded(tokenizer, MIXED)
    plain, quick = SharedPrefixDecoder(model, steps + 1), SharedPrefixDecoder(model, steps + 1, fused)
    out: tuple[list, list] = ([], [])
    with torch.inference_mode():
        for decoder, logits in zip((plain, quick), out):
            logits.append(decoder.prefill(ids, mask, positions))
            decoder.expand(n)
        pos = mask.sum(-1).repeat_interleave(n)  # (R,)
        tokens = out[0][0].argmax(-1).repeat_interleave(n)
        gen = torch.Generator().manual_seed(0)
        for step in range(steps):
            if step == 3:  # drop every third row
                keep = torch.arange(len(tokens))[torch.arange(len(tokens)) % 3 != 0]
                for decoder in (plain, quick):
                    decoder.keep(keep)
                tokens, pos = tokens[keep], pos[keep]
            for decoder, logits in zip((plain, quick), out):
                logits.append(decoder.step(tokens, pos))
            tokens = torch.multinomial(out[0][-1].softmax(-1), 1, generator=gen).squeeze(1)
            pos = pos + 1
    return out


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_the_fused_step_gives_the_model_s_logits(kind, tokenizer):
    """Llama (multi-head) and Qwen2 (grouped-query heads, q/k/v biases), prompts of mixed lengths."""
    model = make_policy(tokenizer, seed=2) if kind == "llama" else tiny_family_model("qwen2", tokenizer)
    plain, quick = lockstep(model, tokenizer)
    for a, b in zip(plain, quick):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, atol=2e-4, rtol=1e-4)


def test_samples_with_the_fused_step_equal_the_model_forward_s(policy, tokenizer):
    fast = TransformersBackend(policy, tokenizer, answer_stop=False)
    slow = TransformersBackend(policy, tokenizer, answer_stop=False)
    assert fast.fused_step is not None
    slow.fused_step = None
    a = fast.generate(MIXED, n=4, temperature=1.0, max_new_tokens=24, seed=5)
    b = slow.generate(MIXED, n=4, temperature=1.0, max_new_tokens=24, seed=5)
    assert [[s.text for s in o] for o in a] == [[s.text for s in o] for o in b]
    for o, p in zip(a, b):
        for s, t in zip(o, p):
            assert s.logprob == pytest.approx(t.logprob, abs=1e-3)


def test_a_hook_or_training_mode_turns_the_fused_step_off(tokenizer):
    model = make_policy(tokenizer, seed=3)
    fused = FusedStep.build(model)
    assert fused is not None and fused.ready()
    handle = model.model.layers[0].mlp.register_forward_hook(lambda module, args, output: output)
    assert not fused.ready()  # the hook would be skipped
    handle.remove()
    assert fused.ready()
    model.train()
    assert not fused.ready()  # dropout and friends: the model's own forward
    model.eval()
    assert fused.ready()


def test_the_fused_weights_follow_a_weight_change(tokenizer):
    """A training step between two samplings (expert iteration) changes weights in place: re-fused."""
    model = make_policy(tokenizer, seed=4)
    backend = TransformersBackend(model, tokenizer, answer_stop=False)
    before = backend.generate(MIXED, max_new_tokens=12)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.3)
    after = backend.generate(MIXED, max_new_tokens=12)
    backend.fused_step = None
    reference = backend.generate(MIXED, max_new_tokens=12)
    assert [o[0].text for o in after] == [o[0].text for o in reference]
    assert [o[0].text for o in after] != [o[0].text for o in before]


def test_models_that_are_not_exactly_llama_keep_their_forward(tokenizer):
    assert FusedStep.build(tiny_family_model("gpt2", tokenizer)) is None
    assert FusedStep.build(tiny_family_model("qwen2", tokenizer)) is not None
    wrapped = make_policy(tokenizer, seed=5)
    attn = wrapped.model.layers[1].self_attn
    attn.q_proj = torch.nn.Sequential(attn.q_proj)  # what an adapter's wrapper looks like to the check
    assert FusedStep.build(wrapped) is None
    assert FusedStep.build(make_policy(tokenizer, seed=6).to(torch.bfloat16)) is None  # half precision
    backend = TransformersBackend(wrapped, tokenizer)
    assert backend.fused_step is None and backend.generate(MIXED[:2], max_new_tokens=4)


def test_length_runs_cut_sorted_items_into_near_equal_runs(monkeypatch):
    from glore_engine import padding
    from glore_engine.padding import length_runs

    runs = length_runs(list(range(50)))
    assert [len(r) for r in runs] == [13, 13, 12, 12] and sum(runs, []) == list(range(50))
    assert length_runs(list(range(10))) == [list(range(10))]  # too few to cut
    big = length_runs(list(range(500)), batch_size=64)
    assert len(big) == 8 and all(len(r) <= 64 for r in big) and sum(big, []) == list(range(500))
    assert length_runs([]) == []
    monkeypatch.setattr(padding, "FEWEST_ITEMS", 1)
    assert len(length_runs(list(range(6)))) == 4 and len(length_runs(list(range(6)), most=1)) == 1


def test_prefill_by_width_groups_equals_one_pass(policy, tokenizer, monkeypatch):
    from glore_engine import padding

    ids, mask, positions = encoded(tokenizer, MIXED)
    monkeypatch.setattr(padding, "FEWEST_ITEMS", 1)
    decoders, widths = {}, {}
    for groups in (1, 3):
        monkeypatch.setattr(padding, "MOST_RUNS", groups)
        seen: list[int] = []
        handle = policy.register_forward_pre_hook(
            lambda m, a, k, seen=seen: seen.append(k["input_ids"].shape[1]), with_kwargs=True
        )
        decoder = SharedPrefixDecoder(policy, 8)
        with torch.inference_mode():
            logits = decoder.prefill(ids, mask, positions)
            handle.remove()
            steps = [decoder.step(ids[:, -1], mask.sum(-1) + k) for k in range(3)]
        decoders[groups], widths[groups] = (decoder, logits, steps), seen
    assert len(widths[1]) == 1 and len(widths[3]) == 3 and min(widths[3]) < widths[1][0]  # really cut
    (one, logits_1, steps_1), (grouped, logits_3, steps_3) = decoders[1], decoders[3]
    torch.testing.assert_close(logits_3, logits_1, atol=1e-4, rtol=1e-4)
    for a, b in zip(steps_1, steps_3):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    real = mask.bool()[:, None, :, None]  # (P, 1, W, 1): padding keys differ (never attended to)
    for key in one.kv.prefix:
        for a, b in zip(one.kv.prefix[key], grouped.kv.prefix[key]):
            torch.testing.assert_close(b * real, a * real, atol=1e-4, rtol=1e-4)
