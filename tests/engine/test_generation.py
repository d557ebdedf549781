"""TransformersBackend: greedy parity with HF generate, seeded sampling, stops, calculator, limits, stats."""

from __future__ import annotations

import itertools

import pytest
import torch
from engine_helpers import make_policy

from glore_engine.errors import ConfigError, DataError
from glore_engine.formats import student_prompt
from glore_engine.generation import make_backend
from glore_engine.generation.hf_backend import MIN_NEW_TOKENS, TransformersBackend

PROMPTS = [
    student_prompt(q)
    for q in (
        "Emma buys 3 packs of 4 beads and gives 5 beads to Hana. How many beads does Emma have now?",
        "Hi?",
        "Tom has 3 apples. How many apples?",
    )
]
PROMPT = student_prompt("Tom has 3 apples. How many apples?")


def hf_greedy(model, tokenizer, prompt, max_new_tokens):
    """(text, n_tokens, logprob) of HF generate(do_sample=False) on one unpadded prompt."""
    enc = tokenizer(prompt, return_tensors="pt")
    out = model.generate(
        **enc,
        do_sample=False,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    new = out.sequences[0, enc.input_ids.shape[1] :].tolist()
    logprob = sum(torch.log_softmax(s[0].float(), -1)[t].item() for s, t in zip(out.scores, new))
    text = tokenizer.decode([t for t in new if t != tokenizer.eos_token_id], skip_special_tokens=True)
    return text.strip("\n"), len(new), logprob


def test_greedy_equals_hf_generate_per_prompt_in_a_left_padded_batch(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer, answer_stop=False)
    lengths = [len(tokenizer(p).input_ids) for p in PROMPTS]
    assert len(set(lengths)) == len(PROMPTS)  # the batch really is padded
    outs = backend.generate(PROMPTS, n=1, temperature=0.0, max_new_tokens=12)
    texts = []
    for prompt, samples in zip(PROMPTS, outs):
        (sample,) = samples
        text, n_tokens, logprob = hf_greedy(policy, tokenizer, prompt, 12)
        assert sample.text == text
        assert sample.n_tokens == n_tokens
        assert sample.logprob == pytest.approx(logprob, abs=1e-3)
        texts.append(text)
    assert len(set(texts)) == len(texts) and all(texts)  # a varied model: the comparison is not vacuous


def test_greedy_is_deterministic_and_ignores_the_seed(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer)
    a = backend.generate(PROMPTS, max_new_tokens=10, seed=1)
    b = backend.generate(PROMPTS, max_new_tokens=10, seed=2)
    assert [s[0].text for s in a] == [s[0].text for s in b]


def test_results_come_back_in_prompt_order(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer)
    together = backend.generate(PROMPTS, max_new_tokens=8)
    alone = [backend.generate([p], max_new_tokens=8)[0] for p in PROMPTS]
    assert [s[0].text for s in together] == [s[0].text for s in alone]


def test_n_samples_share_one_prefill_per_prompt(script, tokenizer):
    backend, s = script(PROMPT, "a b c d e f g h")
    prompts = [PROMPT, PROMPT + " "]
    out = backend.generate(prompts, n=3, temperature=1.0, max_new_tokens=4, seed=0)
    assert [len(o) for o in out] == [3, 3]
    prefills = [c for c in s.calls if c[1] > 1]
    assert len(prefills) == 1 and prefills[0][0] == 2  # one forward over the 2 prompts, not 6 rows
    assert all(c == (6, 1) for c in s.calls[1:])  # every decode step carries the 6 sampled rows


def test_sampling_is_reproducible_with_a_seed_and_differs_across_seeds(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer)
    a = backend.generate(PROMPTS[:2], n=4, temperature=1.0, max_new_tokens=10, seed=7)
    b = backend.generate(PROMPTS[:2], n=4, temperature=1.0, max_new_tokens=10, seed=7)
    c = backend.generate(PROMPTS[:2], n=4, temperature=1.0, max_new_tokens=10, seed=8)
    texts = lambda out: [[s.text for s in o] for o in out]  # noqa: E731
    assert texts(a) == texts(b)
    assert [[s.logprob for s in o] for o in a] == [[s.logprob for s in o] for o in b]
    assert texts(a) != texts(c)
    assert len(set(texts(a)[0])) > 1  # the n samples of one prompt differ


def test_a_row_stops_after_its_answer_line(script):
    backend, _ = script(PROMPT, "He has 3 apples.\n#### 3\nThen more text.\nAnd more.")
    (sample,) = backend.generate([PROMPT], max_new_tokens=40)[0]
    assert sample.text == "He has 3 apples.\n#### 3"
    assert sample.finished
    assert sample.n_tokens < 20  # stopped at the newline after "#### 3", not at max_new_tokens


def test_answer_stop_can_be_switched_off(script):
    backend, _ = script(PROMPT, "He has 3 apples.\n#### 3\nThen more text.", answer_stop=False)
    (sample,) = backend.generate([PROMPT], max_new_tokens=30)[0]
    assert sample.text.startswith("He has 3 apples.\n#### 3\nThen more text.")
    assert not sample.finished and sample.n_tokens == 30


def test_answer_line_needs_its_newline_before_the_row_stops(script):
    """'#### 3' might continue as '#### 35': the row stops at the newline after it, or at EOS."""
    backend, _ = script(PROMPT, "a\n#### 35", eos=True)
    (sample,) = backend.generate([PROMPT], max_new_tokens=30)[0]
    assert sample.text == "a\n#### 35" and sample.finished


def test_a_row_stops_at_eos(script, tokenizer):
    backend, s = script(PROMPT, "He has 3 apples", eos=True)
    (sample,) = backend.generate([PROMPT], max_new_tokens=30)[0]
    assert sample.text == "He has 3 apples"
    assert sample.finished
    assert sample.n_tokens == len(s.ids)  # the script's tokens including the EOS


def test_max_new_tokens_ends_a_row_unfinished(script):
    backend, _ = script(PROMPT, "")
    (sample,) = backend.generate([PROMPT], max_new_tokens=7)[0]
    assert sample.text == "x" * 7 and sample.n_tokens == 7 and not sample.finished


def test_stop_strings_cut_the_text_before_the_stop(script):
    backend, _ = script(PROMPT, "He has 3 apples. STOP here\n#### 3\n")
    (sample,) = backend.generate([PROMPT], max_new_tokens=30, stop=["STOP"])[0]
    assert sample.text == "He has 3 apples. "  # everything before the stop string, nothing of it
    assert sample.finished


def test_finished_rows_leave_the_batch_while_others_go_on(script):
    backend, s = script(PROMPT, "a\n#### 1\n")
    out = backend.generate([PROMPT, "Question: other\nAnswer:\n"], max_new_tokens=12)
    assert out[0][0].text == "a\n#### 1" and out[0][0].finished
    assert not out[1][0].finished and out[1][0].n_tokens == 12
    assert s.calls[-1][0] == 1  # the last decode steps ran the straggler alone


def test_calculator_mode_writes_the_result_of_an_open_annotation(script):
    text = "He has 3*4=<<3*4=99>>99 apples.\n#### 99\n"
    backend, _ = script(PROMPT, text)
    (plain,) = backend.generate([PROMPT], max_new_tokens=40)[0]
    assert plain.text == "He has 3*4=<<3*4=99>>99 apples.\n#### 99"
    (calc,) = backend.generate([PROMPT], max_new_tokens=40, calculator=True)[0]
    # the engine wrote "12>>" itself; the model's own tokens continue afterwards
    assert calc.text == "He has 3*4=<<3*4=12>>99 apples.\n#### 99"


def test_calculator_ignores_expressions_it_cannot_evaluate(script):
    backend, _ = script(PROMPT, "So 5/0=<<5/0=7>>7 and x=<<a+b=9>>9.\n#### 7\n")
    (calc,) = backend.generate([PROMPT], max_new_tokens=60, calculator=True)[0]
    assert calc.text == "So 5/0=<<5/0=7>>7 and x=<<a+b=9>>9.\n#### 7"


def test_queue_calculator_text_path(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer)
    forced: dict = {}
    backend._queue_calculator("Tom has 20-17=<<20-17=", 3, forced)
    assert tokenizer.decode(list(forced[3])) == "3>>"
    backend._queue_calculator("Half is 7/2=<<7/2=", 4, forced)
    assert tokenizer.decode(list(forced[4])) == "3.5>>"
    for text in ("no annotation=", "<<1/0=", "<<3*4=12>>12=", "<<2**99999="):
        backend._queue_calculator(text, 5, forced)
    assert 5 not in forced


def test_stop_cut_rules():
    from glore_engine.generation.stops import stop_cut as cut

    assert cut("a\n#### 5\n", []) == "a\n#### 5"
    assert cut("a\n  #### 5\nb\n", []) == "a\n  #### 5"
    assert cut("a\n#### 5", []) is None  # no newline after the answer yet
    assert cut("a\nb\n", []) is None
    assert cut("one STOP two", ["STOP"]) == "one "
    assert cut("#### 5\n", []) == "#### 5"
    assert cut("a\n#### 5\n", [], answer_stop=False) is None


def test_a_prompt_too_long_for_the_context_is_a_data_error(script, tokenizer):
    backend, _ = script(PROMPT, "", max_positions=40)
    width = len(tokenizer(PROMPT).input_ids)
    assert 40 - width < MIN_NEW_TOKENS  # precondition of the crafted case
    with pytest.raises(DataError, match="prompt too long"):
        backend.generate([PROMPT], max_new_tokens=100)
    # a request that fits is served as asked
    assert backend.generate([PROMPT], max_new_tokens=40 - width)[0][0].n_tokens == 40 - width


def test_a_prompt_longer_than_the_context_is_a_data_error(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer)
    with pytest.raises(DataError, match="512"):
        backend.generate([student_prompt("apples " * 600)], max_new_tokens=4)


def test_new_tokens_are_clamped_to_the_context(script, tokenizer):
    width = len(tokenizer(PROMPT).input_ids)
    backend, _ = script(PROMPT, "", max_positions=width + 20)
    (sample,) = backend.generate([PROMPT], max_new_tokens=100)[0]
    assert sample.n_tokens == 20 and not sample.finished
    (short,) = backend.generate([PROMPT], max_new_tokens=5)[0]
    assert short.n_tokens == 5


def test_stats_count_prompts_samples_and_tokens(script, tokenizer):
    backend, _ = script(PROMPT, "a b c", eos=True)
    other = PROMPT + " more words"
    out = backend.generate([PROMPT, other], n=3, temperature=1.0, max_new_tokens=6, seed=0)
    stats = backend.stats
    assert stats.prompts == 2 and stats.samples == 6
    assert stats.prompt_tokens == len(tokenizer(PROMPT).input_ids) + len(tokenizer(other).input_ids)
    assert stats.generated_tokens == sum(s.n_tokens for o in out for s in o)
    assert stats.seconds > 0 and stats.tokens_per_second > 0
    backend.generate([PROMPT], max_new_tokens=6)
    assert stats.prompts == 3 and stats.samples == 7


def test_empty_prompt_list_generates_nothing(policy, tokenizer):
    backend = TransformersBackend(policy, tokenizer)
    assert backend.generate([]) == []
    assert backend.stats.prompts == 0


def test_progress_reports_prompts_done(policy, tokenizer):
    seen = []
    backend = TransformersBackend(policy, tokenizer, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    backend.generate(PROMPTS, max_new_tokens=3)
    assert seen == [(2, 3), (3, 3)]


def test_chunked_batches_give_the_same_greedy_text(policy, tokenizer):
    big = TransformersBackend(policy, tokenizer, batch_size=64)
    small = TransformersBackend(policy, tokenizer, batch_size=1)
    assert [o[0].text for o in big.generate(PROMPTS, max_new_tokens=8)] == [
        o[0].text for o in small.generate(PROMPTS, max_new_tokens=8)
    ]


def test_make_backend_names(policy, tokenizer):
    assert isinstance(make_backend("transformers", policy, tokenizer), TransformersBackend)
    with pytest.raises(ConfigError, match="unknown generation backend"):
        make_backend("nope", policy, tokenizer)
    with pytest.raises(ConfigError, match="model_path"):
        make_backend("vllm")


def test_open_policy_backend_needs_a_model():
    from glore_engine.generation.loading import open_policy_backend

    with pytest.raises(ConfigError, match="no model given"):
        open_policy_backend("")


def test_open_policy_backend_on_a_checkpoint(tiny_family):
    from glore_engine.generation.loading import open_policy_backend

    backend, _tok, card = open_policy_backend(str(tiny_family / "student"), device="cpu")
    assert card.role == "policy" and isinstance(backend, TransformersBackend)
    assert len(backend.generate([PROMPT], max_new_tokens=3)[0]) == 1


def test_backend_on_a_policy_without_varied_weights(tokenizer):
    """A plain random init emits one special token over and over; the text drops special tokens."""
    model = make_policy(tokenizer, seed=0, std=None)
    (sample,) = TransformersBackend(model, tokenizer).generate([PROMPT], max_new_tokens=5)[0]
    assert "[BAD]" not in sample.text and "<|endoftext|>" not in sample.text


def test_a_model_with_a_padded_vocabulary(tokenizer):
    """HF models often have more output rows than tokenizer entries (e.g. Qwen); sampling one must not crash."""

    from glore_engine.models.causal_lm import ARCH_PRESETS, create_policy

    model = create_policy(ARCH_PRESETS["tiny"], tokenizer)
    model.resize_token_embeddings(len(tokenizer) + 8)
    model.eval()
    padded = len(tokenizer) + 3

    def hook(module, args, kwargs, output):
        k = kwargs["position_ids"][0, -1].item() + 1 - len(tokenizer(PROMPT).input_ids)
        target = padded if k == 0 else tokenizer.eos_token_id
        output.logits[:, -1, target] += 1e4
        return output

    handle = model.register_forward_hook(hook, with_kwargs=True)
    try:
        (sample,) = TransformersBackend(model, tokenizer).generate([PROMPT], max_new_tokens=5)[0]
        assert sample.finished and sample.n_tokens == 2
        (calc,) = TransformersBackend(model, tokenizer).generate([PROMPT], max_new_tokens=5, calculator=True)[0]
        assert calc.finished
    finally:
        handle.remove()


def test_greedy_parity_holds_while_rows_finish_at_different_steps(tokenizer):
    """EOS forced at one absolute position: rows of different prompt lengths stop after different numbers of
    tokens and leave the batch; the rows that go on must still match HF generate token for token."""
    model = make_policy(tokenizer, seed=4)
    lengths = sorted(len(tokenizer(p).input_ids) for p in PROMPTS)
    stops = {length + 3 * (i + 1) - 1 for i, length in enumerate(lengths)}  # 3, 6 and 9 new tokens
    assert all(a + 9 < b for a, b in itertools.pairwise(lengths))  # no row reaches a shorter row's stop

    def hook(module, args, kwargs, output):
        positions = kwargs.get("position_ids")
        if positions is None:  # HF generate without position ids: one unpadded row
            positions = kwargs["cache_position"][None]
        last = positions[:, -1]
        hit = torch.tensor([int(p) + 1 in stops for p in last], dtype=torch.bool)
        output.logits[hit, -1, tokenizer.eos_token_id] += 1e4
        return output

    handle = model.register_forward_hook(hook, with_kwargs=True)
    try:
        backend = TransformersBackend(model, tokenizer, answer_stop=False)
        outs = backend.generate(PROMPTS, max_new_tokens=12)
        n_tokens = []
        for prompt, (sample,) in zip(PROMPTS, outs):
            text, n, logprob = hf_greedy(model, tokenizer, prompt, 12)
            assert (sample.text, sample.n_tokens) == (text, n)
            assert sample.logprob == pytest.approx(logprob, abs=1e-3)
            n_tokens.append(n)
        assert len(set(n_tokens)) == 3 and max(n_tokens) <= 9  # rows really stopped apart (or at a natural EOS)
    finally:
        handle.remove()


def test_vllm_rows_end_where_transformers_rows_end(tokenizer):
    """The vLLM backend re-reads the engine's tokens with the shared stop rules (no vLLM needed here)."""
    from glore_engine.generation.vllm_backend import VLLMBackend

    backend = VLLMBackend.__new__(VLLMBackend)
    backend.tokenizer, backend.answer_stop, backend.eos_id = tokenizer, True, tokenizer.eos_token_id
    ids = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    answer = ids("a\n#### 5\n")
    assert backend._end(answer + ids("more words"), []) == (len(answer), "a\n#### 5")
    assert backend._end(ids("a b") + [backend.eos_id] + ids("c"), []) == (len(ids("a b")) + 1, "a b")
    assert backend._end(ids("one STOP two"), ["STOP"])[1] == "one "
    assert backend._end(ids("a\n#### 5"), []) == (None, "")  # ran out before the answer line's newline
    backend.answer_stop = False
    assert backend._end(answer, []) == (None, "")


def test_auto_is_transformers_without_vllm_or_a_gpu(monkeypatch):
    from glore_engine.generation import resolve_backend, vllm_backend

    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: False)
    assert resolve_backend("auto") == "transformers"
    assert resolve_backend("vllm") == "vllm" and resolve_backend("transformers") == "transformers"


def eos_prone(model, tokenizer, boost: float = 4.0):
    """A forward hook that makes EOS likely, so sampled rows finish at scattered steps."""

    def hook(module, args, kwargs, output):
        output.logits[:, -1, tokenizer.eos_token_id] += boost
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


def test_shared_prefix_and_cache_decoders_give_the_same_samples(policy, tokenizer):
    """The shared-prefix attention (prompt KV once per prompt, rows pruned one by one) against
    transformers' own cache: the same seeded samples, token for token."""
    handle = eos_prone(policy, tokenizer)
    try:
        fast = TransformersBackend(policy, tokenizer, answer_stop=False)
        slow = TransformersBackend(policy, tokenizer, answer_stop=False)
        slow.shared_prefix = False
        a = fast.generate(PROMPTS, n=6, temperature=1.0, max_new_tokens=40, seed=3)
        b = slow.generate(PROMPTS, n=6, temperature=1.0, max_new_tokens=40, seed=3)
    finally:
        handle.remove()
    assert fast.shared_prefix
    assert [[(s.text, s.n_tokens, s.finished) for s in o] for o in a] == [
        [(s.text, s.n_tokens, s.finished) for s in o] for o in b
    ]
    for o, p in zip(a, b):
        for s, t in zip(o, p):
            assert s.logprob == pytest.approx(t.logprob, abs=1e-3)
    lengths = {s.n_tokens for o in a for s in o}
    assert len(lengths) > 5 and max(lengths) == 40  # rows really left the batch at many different steps


def test_the_shared_prefix_is_kept_contiguous(policy, tokenizer):
    """The prompt's keys and values come out of the projections as transposed views; kept as views,
    every decode step's matmul copied the whole prefix again (a quarter of a refinement's time)."""
    from glore_engine.generation.decoding import SharedPrefixDecoder

    enc = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    positions = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
    decoder = SharedPrefixDecoder(policy, max_new_tokens=8)
    with torch.inference_mode():
        decoder.prefill(enc.input_ids, enc.attention_mask, positions)
    assert decoder.kv is not None and decoder.kv.prefix
    for key, value in decoder.kv.prefix.values():
        assert key.is_contiguous() and value.is_contiguous()


def tiny_family_model(kind: str, tokenizer, **extra):
    """A tiny random causal LM of another family (config only, never downloaded)."""
    import transformers

    common = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    configs = {
        "qwen2": lambda: transformers.Qwen2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            **common,
        ),
        "mistral": lambda: transformers.MistralConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            **common,
        ),
        "gpt_neox": lambda: transformers.GPTNeoXConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, **common
        ),
        "gpt2": lambda: transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=512, **common),
    }
    config = configs[kind]()
    for key, value in extra.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(std=0.3)
    return model


@pytest.mark.parametrize("kind", ["qwen2", "mistral", "gpt_neox", "gpt2"])
def test_greedy_equals_hf_generate_on_other_families(kind, tokenizer):
    model = tiny_family_model(kind, tokenizer)
    backend = TransformersBackend(model, tokenizer, answer_stop=False)
    outs = backend.generate(PROMPTS, n=1, temperature=0.0, max_new_tokens=10)
    assert backend.shared_prefix  # these families run the shared-prefix attention
    for prompt, (sample,) in zip(PROMPTS, outs):
        text, n_tokens, logprob = hf_greedy(model, tokenizer, prompt, 10)
        assert (sample.text, sample.n_tokens) == (text, n_tokens)
        assert sample.logprob == pytest.approx(logprob, abs=1e-3)


def test_a_sliding_window_shorter_than_the_rows_falls_back_to_the_cache(tokenizer):
    model = tiny_family_model("mistral", tokenizer, sliding_window=8)
    backend = TransformersBackend(model, tokenizer, answer_stop=False)
    (sample,) = backend.generate([PROMPT], max_new_tokens=6)[0]
    assert not backend.shared_prefix  # the attention refused; transformers' cache took over
    assert sample.n_tokens == 6


def test_generation_stats_add_up():
    from glore_engine.generation.base import GenerationStats

    a = GenerationStats(prompts=1, samples=2, prompt_tokens=3, generated_tokens=40, seconds=2.0)
    a.add(GenerationStats(prompts=1, samples=1, prompt_tokens=1, generated_tokens=10, seconds=3.0))
    assert (a.prompts, a.samples, a.prompt_tokens, a.generated_tokens, a.seconds) == (2, 3, 4, 50, 5.0)
    assert a.tokens_per_second == 10.0 and GenerationStats().tokens_per_second == 0.0


def test_sample_rows_draws_from_the_distribution_and_never_a_zero_probability_token():
    import torch

    from glore_engine.generation.hf_backend import sample_rows

    probs = torch.tensor([[0.0, 0.1, 0.3, 0.6, 0.0]]).repeat(100_000, 1)
    draws = sample_rows(probs, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    assert freq[0] == 0 and freq[4] == 0
    assert torch.allclose(freq, probs[0], atol=0.01)
    again = sample_rows(probs[:10], torch.Generator().manual_seed(0))
    assert torch.equal(again, draws[:10])
