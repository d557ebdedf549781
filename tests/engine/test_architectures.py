"""Any causal LM: tiny random Llama, Mistral, Qwen2, GPT-NeoX and GPT-2 models, each with a tokenizer
in its family's style (BOS added or not, no pad token, right padding by default, padded or tied
vocabularies), through every piece of the engine that touches the model or its tokenizer.

The fast tests check the wiring per family; the e2e test takes each family through
sft -> sample -> SORM labels -> ORM/SORM training and scoring -> refiners -> the pipeline.
"""

from __future__ import annotations

import pytest
import torch

from glore_engine.formats import join_steps, scoring_text, student_prompt
from glore_engine.models.architectures import ARCHITECTURES, make_architecture_model

QUESTION = "Tom has 3 boxes of 4 apples. He eats 2 apples. How many apples are left?"
STEPS = ["Tom has 3*4=<<3*4=12>>12 apples.", "He eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10"]
SOLUTIONS = [
    (QUESTION, STEPS),
    ("A farm has 1234 hens and 5678 ducks. How many birds?", ["1234+5678=6912 birds.", "#### 6912"]),
    ("Q with one step?", ["#### 105"]),
]
PROMPTS = [student_prompt(q) for q in ("Emma buys 3 packs of 4 beads. How many beads?", "Hi?", QUESTION)]


@pytest.fixture(scope="session")
def corpus():
    from glore_engine.tasks.synthetic import generate
    from glore_engine.training.student import tokenizer_corpus

    return tokenizer_corpus(generate("train", 200, seed=0))


@pytest.fixture(scope="session", params=ARCHITECTURES)
def family(request, corpus, tmp_path_factory):
    """(family name, a plain HF folder: random weights and the family's tokenizer, no card)."""
    name = request.param
    return name, make_architecture_model(name, tmp_path_factory.mktemp(name) / "base", corpus)


def varied(model, seed=0, std=0.3):
    """Re-draw every matrix: a plain random init repeats one token, which would make comparisons vacuous."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(std=std)
    return model


def test_the_raw_tokenizers_have_each_family_s_quirks(family):
    """What the real checkpoints do, so the fixes below are exercised (before prepare_tokenizer)."""
    from transformers import AutoTokenizer

    name, folder = family
    raw = AutoTokenizer.from_pretrained(str(folder))
    ids = raw("Hi").input_ids
    assert (ids[0] == raw.bos_token_id) == (name in ("llama", "mistral"))  # SentencePiece families add BOS
    assert (raw.pad_token is None) == (name in ("llama", "mistral", "gpt2"))
    if name in ("qwen2", "gpt_neox", "gpt2"):
        assert raw.padding_side == "right"
    if name == "gpt_neox":
        assert raw.pad_token_id != raw.eos_token_id


def test_loading_makes_any_tokenizer_usable(family):
    from glore_engine.models.causal_lm import load_causal_lm

    name, folder = family
    model, tok, card = load_causal_lm(folder)
    assert card is None  # a plain HF folder, as downloaded
    assert tok.pad_token_id is not None and tok.padding_side == "left"
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert tok(PROMPTS[0]).input_ids[-1] != tok.eos_token_id  # no EOS closes a prompt
    batch = tok(PROMPTS, padding=True)
    assert all(row[-1] == 1 for row in batch.attention_mask)  # padding on the left


def test_greedy_sampling_equals_generate_in_a_left_padded_batch(family):
    """Position ids from the mask (learned positions in GPT-2, partial rotary in GPT-NeoX, GQA in Mistral)."""
    from glore_engine.generation.hf_backend import TransformersBackend
    from glore_engine.models.causal_lm import load_causal_lm

    _, folder = family
    model, tok, _ = load_causal_lm(folder)
    varied(model)
    lengths = [len(tok(p).input_ids) for p in PROMPTS]
    assert len(set(lengths)) == len(PROMPTS)  # the batch really is padded
    outs = TransformersBackend(model, tok, answer_stop=False).generate(PROMPTS, max_new_tokens=10)
    texts = []
    for prompt, (sample,) in zip(PROMPTS, outs):
        enc = tok(prompt, return_tensors="pt")
        ref = model.generate(
            **enc, do_sample=False, max_new_tokens=10, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id
        )[0, enc.input_ids.shape[1] :].tolist()
        assert sample.n_tokens == len(ref)
        assert sample.text == tok.decode([t for t in ref if t != tok.eos_token_id], skip_special_tokens=True).strip(
            "\n"
        )
        texts.append(sample.text)
    assert len(set(texts)) == len(texts)  # a varied model: the comparison is not vacuous


def test_step_ends_are_the_last_token_of_each_step(family):
    """With or without BOS; whether a newline is its own token (Llama), merged with a full stop (Qwen2) or not."""
    from glore_engine.models.causal_lm import load_tokenizer
    from glore_engine.models.reward_model import encode_solution

    _, folder = family
    tok = load_tokenizer(str(folder))
    for question, steps in SOLUTIONS:
        enc = encode_solution(tok, question, steps)
        text, char_ends = scoring_text(question, steps)
        assert enc.ids == tok(text).input_ids and enc.step_ends == sorted(set(enc.step_ends))
        assert enc.step_ends[-1] == len(enc.ids) - 1
        for end, char_end in zip(enc.step_ends, char_ends):
            upto = tok.decode(enc.ids[: end + 1], skip_special_tokens=True)
            assert upto.rstrip("\n") == text[: char_end + 1]  # the step, and at most the newline after it
            assert tok.decode(enc.ids[:end], skip_special_tokens=True) != upto
        prompt = tok.decode(enc.ids[: enc.solution_start], skip_special_tokens=True)
        assert student_prompt(question).startswith(prompt) and len(prompt) >= len(student_prompt(question)) - 1


def test_one_pass_scores_do_not_depend_on_the_batch(family):
    """Right-padded batches (positions 0.. on every row) give each solution's scores alone; features finite."""
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.models.reward_model import RewardModel, RewardScorer, head_shape

    _, folder = family
    lm, tok, _ = load_causal_lm(folder)
    model = RewardModel(varied(lm, std=0.2), tokenizer=tok).eval()
    assert model.head.in_features == head_shape(lm)[0] and model.digit_tokens.shape[0] == head_shape(lm)[1]
    assert model.digit_tokens[tok.convert_tokens_to_ids(tok.tokenize("7"))[-1]]
    torch.manual_seed(1)
    torch.nn.init.normal_(model.head.weight, std=0.2)
    torch.nn.init.normal_(model.feature_head.weight, std=0.1)
    scorer = RewardScorer(model, tok, batch_size=8)
    together = scorer.score(SOLUTIONS)
    for (q, steps), scores in zip(SOLUTIONS, together):
        assert len(scores) == len(steps)
        assert scorer.score_one(q, steps) == pytest.approx(scores, abs=1e-5)
    flat = [s for row in together for s in row]
    assert max(flat) - min(flat) > 0.01


def test_likelihood_features_in_row_chunks_give_the_same_scores(family, monkeypatch):
    """Large vocabularies (152k for Qwen2.5) make the (rows, T, V) log-softmax huge: it runs in row chunks."""
    from glore_engine.models import reward_model
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.models.reward_model import RewardModel, RewardScorer

    _, folder = family
    lm, tok, _ = load_causal_lm(folder)
    model = RewardModel(varied(lm, std=0.2), tokenizer=tok).eval()
    torch.nn.init.normal_(model.feature_head.weight, std=0.3)
    whole = RewardScorer(model, tok).score(SOLUTIONS)
    monkeypatch.setattr(reward_model, "FEATURE_CHUNK_ELEMENTS", 1)  # one row at a time
    chunked = RewardScorer(model, tok).score(SOLUTIONS)
    assert [pytest.approx(row, abs=1e-6) for row in whole] == chunked


def test_reward_model_round_trip_keeps_tied_and_padded_heads(family, tmp_path):
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.models.checkpoint import Card
    from glore_engine.models.reward_model import RewardModel, RewardScorer, load_reward_model, save_reward_model

    _, folder = family
    lm, tok, _ = load_causal_lm(folder)
    model = RewardModel(varied(lm, std=0.2), tokenizer=tok).eval()
    torch.nn.init.normal_(model.head.weight, std=0.5)
    before = RewardScorer(model, tok).score(SOLUTIONS)
    save_reward_model(model, tok, tmp_path / "orm", Card(role="orm", base=str(folder)))
    loaded, tok2, card = load_reward_model(tmp_path / "orm", device="cpu")
    assert card.role == "orm" and tok2.get_vocab() == tok.get_vocab()
    after = RewardScorer(loaded, tok2).score(SOLUTIONS)
    assert [pytest.approx(row, abs=1e-5) for row in before] == after


def test_sft_trains_on_the_text_as_one_string(family):
    """A Llama tokenizer writes "Tom" after a newline but "▁Tom" at a text's start: the student must
    learn the first, which is what the reward models read and what its prompt's end leads to."""
    from glore_engine.models.causal_lm import load_tokenizer
    from glore_engine.training.sft import tokenize_examples

    _, folder = family
    tok = load_tokenizer(str(folder))
    prompt, completion = student_prompt(QUESTION), join_steps(STEPS)
    (ex,) = tokenize_examples(tok, [(prompt, completion)], max_length=512)
    assert ex.ids == tok(prompt + completion).input_ids + [tok.eos_token_id]
    assert ex.ids[: ex.n_prompt] == tok(prompt).input_ids  # the prompt exactly as the sampler encodes it
    assert tok.decode(ex.ids[ex.n_prompt : -1], skip_special_tokens=True) == completion


def test_a_tokenizer_that_appends_eos_to_every_text_is_switched_off(family):
    from transformers import AutoTokenizer

    from glore_engine.models.tokenizer import prepare_tokenizer

    name, folder = family
    if name not in ("llama", "mistral"):
        pytest.skip("add_eos_token is a Llama-tokenizer switch")
    tok = AutoTokenizer.from_pretrained(str(folder), add_eos_token=True)
    assert tok("Hi").input_ids[-1] == tok.eos_token_id
    assert prepare_tokenizer(tok)("Hi").input_ids[-1] != tok.eos_token_id


def test_a_tokenizer_without_eos_is_a_clear_error(family):
    from transformers import AutoTokenizer

    from glore_engine.errors import CheckpointError
    from glore_engine.models.tokenizer import prepare_tokenizer

    _, folder = family
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.eos_token = None
    with pytest.raises(CheckpointError, match="no EOS token"):
        prepare_tokenizer(tok)


def test_the_value_head_reads_the_width_the_lm_head_reads(corpus):
    """OPT-350m projects its 1024-wide states to 512 before the LM head: config.hidden_size is the wrong width."""
    from transformers import OPTConfig, OPTForCausalLM

    from glore_engine.models.architectures import architecture_tokenizer
    from glore_engine.models.reward_model import RewardModel, RewardScorer
    from glore_engine.models.tokenizer import prepare_tokenizer

    tok = prepare_tokenizer(architecture_tokenizer("gpt2", corpus))
    config = OPTConfig(
        vocab_size=len(tok),
        hidden_size=64,
        word_embed_proj_dim=32,
        ffn_dim=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = RewardModel(OPTForCausalLM(config), tokenizer=tok).eval()
    assert model.head.in_features == 32 != config.hidden_size
    scores = RewardScorer(model, tok).score(SOLUTIONS)
    assert [len(s) for s in scores] == [len(steps) for _, steps in SOLUTIONS]


def test_a_solution_past_a_learned_position_table_is_a_data_error(corpus, tmp_path):
    """GPT-2's positions are a table (here 128 rows): a longer text is a clear error, not an IndexError."""
    from glore_engine.errors import DataError
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.models.reward_model import RewardModel, RewardScorer

    folder = make_architecture_model("gpt2", tmp_path / "gpt2", corpus, positions=128)
    lm, tok, _ = load_causal_lm(folder)
    scorer = RewardScorer(RewardModel(lm, tokenizer=tok), tok)
    assert len(scorer.score(SOLUTIONS)) == len(SOLUTIONS)
    with pytest.raises(DataError, match="too long to score: .* > 128"):
        scorer.score([(QUESTION, STEPS * 10)])


# ---- the whole loop, per family ---------------------------------------------------------------------
def with_gold(records, problems):
    """Each question's gold solution joins its samples: a student trained for seconds rarely writes a
    correct one, and the ORM, the SORM's positive labels and both refiners' targets need some."""
    from glore_engine.records import GradedSample
    from glore_engine.tasks.steps import split_steps

    gold = {p.id: p.solution for p in problems}
    for r in records:
        text = gold[r.problem_id]
        if all(s.text != text for s in r.samples):
            r.samples.append(
                GradedSample(text=text, steps=split_steps(text), answer=r.gold, correct=True, logprob=-1.0)
            )
    return records


def heldout_loss(folder, problems) -> float:
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.training.sft import collate, lm_loss, tokenize_examples

    model, tok, _ = load_causal_lm(folder)
    examples = tokenize_examples(tok, [(student_prompt(p.question), p.solution) for p in problems], 512)
    with torch.no_grad():
        return float(lm_loss(model, collate(examples, tok.pad_token_id))[0])


@pytest.mark.e2e
def test_each_family_through_the_whole_loop(family, tmp_path):
    from glore_engine.family import GloreModels
    from glore_engine.labelling.orm_data import OrmDataConfig, make_orm_data
    from glore_engine.labelling.pairing import global_pairs, local_triples
    from glore_engine.labelling.rollouts import SormLabelConfig, make_sorm_labels
    from glore_engine.models.checkpoint import read_card
    from glore_engine.pipeline import GlorePipeline
    from glore_engine.tasks.model_task import load_eval_problems
    from glore_engine.training.refiner import RefinerConfig, train_refiner
    from glore_engine.training.reward import RewardConfig, train_reward_model
    from glore_engine.training.student import StudentConfig, train_student

    name, base = family
    student, sft = train_student(
        StudentConfig(base=str(base), n_train=400, max_steps=40, batch_size=8, warmup_steps=4, lr=3e-3),
        tmp_path / "sft",
        progress=False,
    )
    assert read_card(student).base == str(base) and sft.steps == 40
    held_out = load_eval_problems("synthetic", "test", 16, 5, str(student))
    assert heldout_loss(student, held_out) < 0.8 * heldout_loss(base, held_out)  # the family learns the format
    sample = OrmDataConfig(student=str(student), n_questions=8, n=3, max_new_tokens=64, batch_size=32, shard_size=8)
    records = make_orm_data(sample, tmp_path / "orm-data", progress=False)
    assert len(records) == 8 and all(r.samples for r in records)
    records = with_gold(records, load_eval_problems("synthetic", "train", 8, sample.data_seed, str(student)))
    label = SormLabelConfig(k=2, max_new_tokens=48, batch_size=64, shard_size=16)
    labelled = make_sorm_labels(label, str(student), records, tmp_path / "sorm-labels", progress=False)
    assert len(labelled) == sum(len([s for s in r.samples if s.steps]) for r in records)
    assert all(len(r.rollouts) == len(r.steps) - 1 for r in labelled)

    rm = {"max_steps": 4, "batch_size": 4, "warmup_steps": 1, "base": str(student)}
    orm, _ = train_reward_model(RewardConfig(role="orm", **rm), records, tmp_path / "orm", progress=False)
    sorm, _ = train_reward_model(RewardConfig(role="sorm", **rm), labelled, tmp_path / "sorm", progress=False)
    pairs, triples = global_pairs(records), local_triples(labelled)
    assert pairs and triples
    refiner = {"max_steps": 4, "batch_size": 4, "warmup_steps": 1, "base": str(student)}
    global_, _ = train_refiner(RefinerConfig(kind="global", **refiner), pairs, tmp_path / "global", progress=False)
    local, _ = train_refiner(RefinerConfig(kind="local", **refiner), triples, tmp_path / "local", progress=False)

    models = GloreModels.load(str(student), str(orm), str(sorm), str(global_), str(local), device="cpu")
    problems = load_eval_problems("synthetic", "test", 3, 0, str(student))
    results = GlorePipeline(models, max_new_tokens=64).run_batch(
        [p.question for p in problems], [p.answer for p in problems]
    )
    for result in results:
        for c in result.candidates:
            if c.steps and not c.unchanged:
                assert len(c.orm_steps) == len(c.sorm_steps) == len(c.steps)
                assert all(0.0 <= s <= 1.0 for s in c.orm_steps + c.sorm_steps)
        assert result.choice in ("draft", "global", "local")
    for scorer in (models.orm, models.sorm):  # the trained heads score real text of this family
        (scores,) = scorer.score([(problems[0].question, STEPS)])
        assert len(scores) == len(STEPS)
