"""Training: SFT learns, an interrupted run resumes to the same weights, the schedule, the trainers' outputs."""

from __future__ import annotations

import functools
import json
import math
import operator
import random
from dataclasses import replace

import pytest
import torch
from engine_helpers import make_policy, problems, wrong

from glore_engine.errors import CheckpointError, ConfigError, DataError
from glore_engine.formats import student_prompt
from glore_engine.records import PrefixRollouts, QuestionSamples, RefinementExample
from glore_engine.tracking import NullTracker
from glore_engine.training.loop import OptimConfig, clear_state, index_stream, train
from glore_engine.training.sft import batch_maker, collate, lm_loss, tokenize_examples


@pytest.fixture(scope="module")
def pairs():
    return [(student_prompt(p.question), p.solution) for p in problems(8)]


@pytest.fixture(scope="module")
def examples(tokenizer, pairs):
    return tokenize_examples(tokenizer, pairs, max_length=256)


def fixed_loss(model, examples, tokenizer):
    with torch.no_grad():
        return float(lm_loss(model, collate(examples, tokenizer.pad_token_id))[0])


def test_tokenize_examples_masks_the_prompt_and_closes_with_eos(tokenizer, pairs, examples):
    prompt, completion = pairs[0]
    ex = examples[0]
    assert ex.ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ex.ids[: ex.n_prompt]) == prompt
    assert tokenizer.decode(ex.ids[ex.n_prompt : -1]) == completion
    batch = collate(examples[:2], tokenizer.pad_token_id)
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    assert (labels[: ex.n_prompt] == -100).all()
    assert torch.equal(labels[ex.n_prompt : len(ex.ids)], ids[ex.n_prompt : len(ex.ids)])
    assert (labels[len(ex.ids) :] == -100).all() and batch["attention_mask"][0].sum() == len(ex.ids)


def test_tokenize_examples_drops_overlong_pairs_and_rejects_none(tokenizer, pairs):
    lengths = [len(e.ids) for e in tokenize_examples(tokenizer, pairs, 1000)]
    cut = sorted(lengths)[len(lengths) // 2]
    assert len(tokenize_examples(tokenizer, pairs, cut)) == sum(n <= cut for n in lengths)
    with pytest.raises(DataError, match="longer than max_length=5"):
        tokenize_examples(tokenizer, pairs, 5)
    with pytest.raises(DataError, match="no training examples"):
        tokenize_examples(tokenizer, [], 100)


def test_index_stream_is_a_pure_function_of_the_step():
    a = [index_stream(10, 4, step, seed=3) for step in range(5)]
    assert a == [index_stream(10, 4, step, seed=3) for step in range(5)]
    flat = functools.reduce(operator.iadd, a, [])
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))  # whole epochs
    assert a != [index_stream(10, 4, step, seed=4) for step in range(5)]
    with pytest.raises(ConfigError):
        index_stream(0, 4, 0, 0)


def test_length_groups_cut_padding_and_keep_each_blocks_examples():
    rng = random.Random(0)
    lengths = [rng.randint(20, 200) for _ in range(96)]
    plain = [index_stream(96, 8, step, seed=1) for step in range(12)]
    grouped = [index_stream(96, 8, step, seed=1, lengths=lengths, groups=4) for step in range(12)]
    assert grouped == [index_stream(96, 8, step, seed=1, lengths=lengths, groups=4) for step in range(12)]
    for block in range(3):  # a block of 4 steps trains on the plain stream's examples of those steps, once each
        steps = slice(4 * block, 4 * block + 4)
        assert sorted(sum(grouped[steps], [])) == sorted(sum(plain[steps], []))
    assert all(len(b) == 8 for b in grouped)

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padded(grouped) < 0.8 * padded(plain)
    assert [sorted(lengths[i] for i in b) for b in grouped[:4]] != sorted(
        [sorted(lengths[i] for i in b) for b in grouped[:4]]
    )  # the block's batches are not in length order
    assert index_stream(96, 8, 5, seed=1, lengths=lengths, groups=0) == plain[5]
    with pytest.raises(ConfigError):
        OptimConfig(length_groups=-1)


def test_optim_config_validates():
    with pytest.raises(ConfigError):
        OptimConfig(max_steps=0)
    with pytest.raises(ConfigError):
        OptimConfig(min_lr_ratio=1.5)


def test_a_few_sft_steps_reduce_the_loss(tokenizer, examples, tmp_path):
    model = make_policy(tokenizer, seed=0, std=None)
    before = fixed_loss(model, examples, tokenizer)
    tracker = NullTracker()
    config = OptimConfig(max_steps=25, batch_size=4, lr=1e-2, warmup_steps=2, log_every=5)
    result = train(
        model,
        batch_maker(examples, tokenizer.pad_token_id, 4, 0),
        lm_loss,
        config,
        tmp_path,
        tracker=tracker,
        progress=False,
    )
    after = fixed_loss(model, examples, tokenizer)
    assert after < before - 1.0, (before, after)
    assert result.steps == 25 and result.tokens > 0 and math.isfinite(result.final_loss)
    losses = [v for k, v, _ in tracker.metrics if k == "train/loss"]
    assert [s for k, _, s in tracker.metrics if k == "train/loss"] == [5, 10, 15, 20, 25]
    assert losses[-1] < losses[0]
    assert not model.training  # left in eval mode


def test_cosine_schedule_warms_up_and_ends_at_min_lr(tokenizer, examples, tmp_path):
    model = make_policy(tokenizer, seed=0, std=None)
    tracker = NullTracker()
    config = OptimConfig(max_steps=12, batch_size=2, lr=2e-3, warmup_steps=4, min_lr_ratio=0.25, log_every=1)
    train(
        model,
        batch_maker(examples, tokenizer.pad_token_id, 2, 0),
        lm_loss,
        config,
        tmp_path,
        tracker=tracker,
        progress=False,
    )
    lrs = {s: v for k, v, s in tracker.metrics if k == "train/lr"}
    assert [lrs[s] for s in (1, 2, 3)] == pytest.approx([2e-3 / 4, 2e-3 * 2 / 4, 2e-3 * 3 / 4])  # linear warm-up
    assert lrs[4] == pytest.approx(2e-3)  # the peak at the end of the warm-up
    assert lrs[12] == pytest.approx(2e-3 * 0.25)  # and exactly lr * min_lr_ratio at max_steps
    assert all(lrs[s] >= lrs[s + 1] for s in range(4, 12))


class Interrupt:
    """make_batch that raises KeyboardInterrupt once, at step `at` (Ctrl-C during a run)."""

    def __init__(self, make_batch, at):
        self.make_batch, self.at, self.fired = make_batch, at, False

    def __call__(self, step, rank=0, world=1):
        if step == self.at and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return self.make_batch(step, rank, world)


@pytest.mark.parametrize("save_every,interrupt_at", [(0, 5), (3, 7)], ids=["no-checkpoints", "after-a-checkpoint"])
def test_resume_after_an_interruption_gives_the_same_weights(tokenizer, examples, tmp_path, save_every, interrupt_at):
    config = OptimConfig(max_steps=10, batch_size=3, lr=5e-3, warmup_steps=2, save_every=save_every, log_every=1)
    make_batch = batch_maker(examples, tokenizer.pad_token_id, 3, seed=1)

    straight = make_policy(tokenizer, seed=2, std=None)
    uninterrupted = train(straight, make_batch, lm_loss, config, tmp_path / "straight", progress=False)

    resumed = make_policy(tokenizer, seed=2, std=None)
    flaky = Interrupt(make_batch, at=interrupt_at)
    with pytest.raises(KeyboardInterrupt):
        train(resumed, flaky, lm_loss, config, tmp_path / "resumed", progress=False)
    state = tmp_path / "resumed" / "train_state"
    assert json.loads((state / "step.json").read_text())["step"] == interrupt_at
    assert not torch.equal(resumed.lm_head.weight, straight.lm_head.weight)  # really stopped early

    fresh = make_policy(tokenizer, seed=9, std=None)  # the state on disk, not the live model, carries the run
    tracker = NullTracker()
    result = train(fresh, flaky, lm_loss, config, tmp_path / "resumed", tracker=tracker, resume=True, progress=False)
    assert [s for k, _, s in tracker.metrics if k == "train/loss"] == list(range(interrupt_at + 1, 11))
    # the running loss average went on from the saved one: the run reports what an uninterrupted one does
    assert result.final_loss == pytest.approx(uninterrupted.final_loss, rel=1e-5)
    assert tracker.last("train/loss") == pytest.approx(uninterrupted.final_loss, rel=1e-5)
    a, b = straight.state_dict(), fresh.state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=1e-5, msg=key)
    lrs = [v for k, v, _ in tracker.metrics if k == "train/lr"]
    assert lrs[-1] == pytest.approx(5e-3 * 0.1)  # the scheduler resumed too


class InterruptingTracker(NullTracker):
    """Ctrl-C while the step's metrics are being written: the optimiser step itself has already happened."""

    def __init__(self, at):
        super().__init__()
        self.at, self.fired = at, False

    def log_metric(self, key, value, step=None):
        if step == self.at and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        super().log_metric(key, value, step)


def test_an_interruption_after_the_update_is_not_replayed_on_resume(tokenizer, examples, tmp_path):
    config = OptimConfig(max_steps=8, batch_size=3, lr=5e-3, warmup_steps=2, save_every=0, log_every=1)
    make_batch = batch_maker(examples, tokenizer.pad_token_id, 3, seed=1)
    straight = make_policy(tokenizer, seed=2, std=None)
    train(straight, make_batch, lm_loss, config, tmp_path / "straight", progress=False)

    model = make_policy(tokenizer, seed=2, std=None)
    with pytest.raises(KeyboardInterrupt):
        train(
            model, make_batch, lm_loss, config, tmp_path / "resumed", tracker=InterruptingTracker(at=4), progress=False
        )
    # four optimiser steps are complete: the resume must not run step 4 a second time
    assert json.loads((tmp_path / "resumed" / "train_state" / "step.json").read_text())["step"] == 4
    fresh = make_policy(tokenizer, seed=9, std=None)
    train(fresh, make_batch, lm_loss, config, tmp_path / "resumed", resume=True, progress=False)
    a, b = straight.state_dict(), fresh.state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=1e-5, msg=key)


def test_a_resume_at_max_steps_finishes_with_the_saved_loss(tokenizer, examples, tmp_path):
    """Killed after the last update (while logging it): the resume has no step left, and no NaN to report."""
    config = OptimConfig(max_steps=4, batch_size=3, lr=5e-3, warmup_steps=1, save_every=0, log_every=1)
    make_batch = batch_maker(examples, tokenizer.pad_token_id, 3, seed=1)
    uninterrupted = train(
        make_policy(tokenizer, seed=2, std=None), make_batch, lm_loss, config, tmp_path / "a", progress=False
    )
    with pytest.raises(KeyboardInterrupt):
        train(
            make_policy(tokenizer, seed=2, std=None),
            make_batch,
            lm_loss,
            config,
            tmp_path / "b",
            tracker=InterruptingTracker(at=4),
            progress=False,
        )
    fresh = make_policy(tokenizer, seed=9, std=None)
    result = train(fresh, make_batch, lm_loss, config, tmp_path / "b", resume=True, progress=False)
    assert math.isfinite(result.final_loss)
    assert result.final_loss == pytest.approx(uninterrupted.final_loss, rel=1e-5)


def test_a_resume_past_max_steps_is_refused(tokenizer, examples, tmp_path):
    """A state saved at step 4 cannot be resumed as a 3-step run: refused, the state kept."""
    config = OptimConfig(max_steps=6, batch_size=2, warmup_steps=1, save_every=4, log_every=1)
    make_batch = batch_maker(examples, tokenizer.pad_token_id, 2, seed=1)
    train(make_policy(tokenizer, seed=2, std=None), make_batch, lm_loss, config, tmp_path, progress=False)
    step_file = tmp_path / "train_state" / "step.json"
    saved = step_file.read_text()
    assert json.loads(saved)["step"] == 4
    shorter = OptimConfig(max_steps=3, batch_size=2, warmup_steps=1, log_every=1)
    with pytest.raises(ConfigError, match=r"at step 4, past max_steps 3: resume with --max-steps 4 or more"):
        train(
            make_policy(tokenizer, seed=2, std=None),
            make_batch,
            lm_loss,
            shorter,
            tmp_path,
            resume=True,
            progress=False,
        )
    assert step_file.read_text() == saved


def test_resume_without_saved_state_starts_over(tokenizer, examples, tmp_path):
    model = make_policy(tokenizer, seed=0, std=None)
    tracker = NullTracker()
    train(
        model,
        batch_maker(examples, tokenizer.pad_token_id, 2, 0),
        lm_loss,
        OptimConfig(max_steps=2, batch_size=2, log_every=1),
        tmp_path,
        tracker=tracker,
        resume=True,
        progress=False,
    )
    assert [s for k, _, s in tracker.metrics if k == "train/loss"] == [1, 2]


def test_a_corrupt_training_state_is_a_checkpoint_error(tokenizer, examples, tmp_path):
    state = tmp_path / "train_state"
    state.mkdir()
    (state / "step.json").write_text(json.dumps({"step": 1}))
    model = make_policy(tokenizer, seed=0, std=None)
    with pytest.raises(CheckpointError, match="corrupt training state"):
        train(
            model,
            batch_maker(examples, tokenizer.pad_token_id, 2, 0),
            lm_loss,
            OptimConfig(max_steps=2, batch_size=2),
            tmp_path,
            resume=True,
            progress=False,
        )
    clear_state(tmp_path)
    assert not state.exists()


def test_a_diverging_loss_stops_the_run(tokenizer, examples, tmp_path):
    model = make_policy(tokenizer, seed=0, std=None)

    def nan_loss(m, batch):
        loss, n = lm_loss(m, batch)
        return loss * float("nan"), n

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train(
            model,
            batch_maker(examples, tokenizer.pad_token_id, 2, 0),
            nan_loss,
            OptimConfig(max_steps=3, batch_size=2),
            tmp_path,
            progress=False,
        )


# ---- trainers --------------------------------------------------------------------------------------
def test_train_student_from_a_preset(tmp_path):
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.training.student import StudentConfig, train_student

    config = StudentConfig(
        base="tiny", n_train=24, max_steps=3, batch_size=4, warmup_steps=1, log_every=1, tokenizer_vocab=300
    )
    tracker = NullTracker()
    folder, result = train_student(config, tmp_path, tracker=tracker, progress=False, run_id=11)
    _model, tok, card = load_causal_lm(folder)
    assert card.role == "policy" and card.base == "tiny" and card.run_id == 11
    assert card.config["n_train"] == 24 and card.metrics["train_loss"] == pytest.approx(result.final_loss)
    assert (tmp_path / "tokenizer" / "tokenizer.json").is_file() and len(tok) <= 300
    assert not (tmp_path / "train_state").exists()  # cleared once the model is saved
    assert tracker.last("data/train_problems") == 24 and tracker.artifacts[0][0] == "model"


@pytest.fixture(scope="module")
def orm_records():
    out = []
    for i, p in enumerate(problems(4)):
        samples = [
            {"text": p.solution, "correct": True},
            {"text": wrong(p.solution), "correct": False},
            {"text": "garbage\n#### 0", "correct": False},
        ]
        if i == 3:
            samples = samples[1:]  # an all-wrong question
        for s in samples:
            from glore_engine.tasks.steps import split_steps

            s["steps"], s["count"] = split_steps(s["text"]), 1
        out.append(
            QuestionSamples.from_json(
                {"problem_id": p.id, "question": p.question, "gold": p.answer, "samples": samples}
            )
        )
    return out


def test_orm_items_balance_within_question_and_skip_unmixed(orm_records):
    from glore_engine.training.reward import RewardConfig, orm_items

    groups = orm_items(orm_records, RewardConfig(role="orm"))
    assert len(groups) == 3  # the all-wrong question teaches no discrimination
    for group in groups:
        assert sum(i.weight for i in group if i.correct) == pytest.approx(0.5)
        assert sum(i.weight for i in group if not i.correct) == pytest.approx(0.5)
        for item in group:
            assert item.labels == [float(item.correct)] * len(item.steps) and item.mask == [1.0] * len(item.steps)
    assert len(orm_items(orm_records, RewardConfig(role="orm", mixed_only=False))) == 4


def test_reward_config_defaults_and_validation():
    from glore_engine.training.reward import RewardConfig

    assert RewardConfig(role="orm").pairwise_weight == 0.5 and RewardConfig(role="sorm").pairwise_weight == 0.0
    with pytest.raises(ConfigError, match="role"):
        RewardConfig(role="prm")


def test_reward_loss_prefers_correct_samples(tokenizer, orm_records):
    from glore_engine.models.reward_model import RewardModel
    from glore_engine.training.reward import RewardConfig, _batch, _encode_groups, orm_items, reward_loss

    config = RewardConfig(role="orm")
    groups = _encode_groups(orm_items(orm_records, config), tokenizer, 384)
    batch = _batch(groups, tokenizer.pad_token_id)
    model = RewardModel(make_policy(tokenizer, seed=0, std=None), likelihood_features=False)
    loss, n_tokens = reward_loss(0.0)(model, batch)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-4)  # zero head: p = 0.5 everywhere
    assert n_tokens == int(batch["attention_mask"].sum())
    with_pairs, _ = reward_loss(1.0)(model, batch)
    assert with_pairs.item() == pytest.approx(2 * math.log(2), abs=1e-4)  # + softplus(0) on every pair
    items = [i for g in groups for i in g]
    # every step end carries its solution's weight; nothing else does
    assert batch["weights"].sum() == pytest.approx(sum(i.weight * len(i.steps) for i in items))
    assert int((batch["weights"] > 0).sum()) == sum(len(i.steps) for i in items)


def test_cached_step_states_give_the_full_pass_loss(tokenizer, orm_records):
    from glore_engine.models.reward_model import RewardModel
    from glore_engine.training.reward import (
        RewardConfig,
        _batch,
        _cached_batch,
        _encode_groups,
        cache_step_states,
        global_norms,
        orm_items,
        reward_loss,
    )

    groups = _encode_groups(orm_items(orm_records, RewardConfig(role="orm")), tokenizer, 384)
    model = RewardModel(make_policy(tokenizer, seed=0, std=0.2), likelihood_features=True, tokenizer=tokenizer)
    torch.nn.init.normal_(model.head.weight, std=0.5)
    torch.nn.init.normal_(model.feature_head.weight, std=0.5)
    model.train()
    cache_step_states(model, groups, tokenizer.pad_token_id, batch_size=3)  # other batches than the full pass
    assert model.training
    full = {**_batch(groups, tokenizer.pad_token_id), **global_norms(groups, 1)}
    cached = {**_cached_batch(groups), **global_norms(groups, 1)}
    assert cached["hidden"].shape[:2] == cached["targets"].shape and len(cached["targets"]) == len(full["targets"])
    for weight in (0.0, 1.0):
        a, n_full = reward_loss(weight)(model, full)
        b, n_cached = reward_loss(weight)(model, cached)
        assert b.item() == pytest.approx(a.item(), rel=1e-5) and n_cached == n_full
    b.backward()  # the heads learn from cached states
    assert model.head.weight.grad.abs().sum() > 0 and model.lm.get_input_embeddings().weight.grad is None


def test_frozen_backbone_trains_the_same_heads_with_cached_states(tiny_family, orm_records, tmp_path):
    from glore_engine.models.reward_model import load_reward_model
    from glore_engine.training.reward import RewardConfig, train_reward_model

    heads = []
    for cache in (True, False):
        config = RewardConfig(
            role="orm", base=str(tiny_family / "student"), max_steps=4, batch_size=2, cache_states=cache
        )
        folder, _ = train_reward_model(config, orm_records, tmp_path / str(cache), progress=False)
        model, _, _ = load_reward_model(folder, roles=("orm",))
        heads.append(torch.cat([model.head.weight.flatten(), model.head.bias, model.feature_head.weight.flatten()]))
    assert heads[0].abs().sum() > 0
    torch.testing.assert_close(heads[0], heads[1], rtol=1e-3, atol=1e-4)  # fp16 checkpoints of the same training


def test_train_reward_models_save_loadable_checkpoints(tiny_family, orm_records, tmp_path):
    from glore_engine.labelling.rollouts import solutions_of
    from glore_engine.models.reward_model import load_reward_model
    from glore_engine.training.reward import RewardConfig, train_reward_model

    base = str(tiny_family / "student")
    config = RewardConfig(role="orm", base=base, max_steps=3, batch_size=2, warmup_steps=1, log_every=1)
    folder, result = train_reward_model(config, orm_records, tmp_path / "orm", progress=False, run_id=5)
    model, _, card = load_reward_model(folder, roles=("orm",))
    assert card.role == "orm" and card.base == base and card.run_id == 5 and result.steps == 3
    assert card.config["max_steps"] == 3 and model.head.weight.abs().sum() > 0  # the head learned something

    labelled = [
        replace(
            s,
            rollouts=[PrefixRollouts(k=2, correct=int(s.correct), consistent_correct=int(s.correct))]
            * (len(s.steps) - 1),
        )
        for s in solutions_of(orm_records)
    ]
    sorm = RewardConfig(role="sorm", base=base, max_steps=2, batch_size=2, warmup_steps=1, likelihood_features=False)
    folder, _ = train_reward_model(sorm, labelled, tmp_path / "sorm", progress=False)
    model, _, card = load_reward_model(folder, roles=("sorm",))
    assert card.config["likelihood_features"] is False and not model.likelihood_features
    with pytest.raises(ConfigError, match="needs --base"):
        train_reward_model(RewardConfig(role="orm"), orm_records, tmp_path / "x", progress=False)


def test_train_refiner(tiny_family, tmp_path):
    from glore_engine.models.causal_lm import load_causal_lm
    from glore_engine.tasks.model_task import task_config_from_card, task_dict
    from glore_engine.training.refiner import RefinerConfig, train_refiner

    examples = [
        RefinementExample("Question: Q\nDraft:\n[BAD] a\nRefinement:\n", "b\n#### 2", "local"),
        RefinementExample("Question: Q\nDraft:\na\nRefinement:\n", "b\n#### 2", "global"),
    ] * 3
    base = str(tiny_family / "student")
    config = RefinerConfig(kind="local", base=base, max_steps=2, batch_size=2, warmup_steps=1)
    folder, _ = train_refiner(config, examples, tmp_path, progress=False, extra_card={"task": {"x": 1}})
    _, _, card = load_causal_lm(folder, roles=("refiner-local",))
    assert card.role == "refiner-local" and card.metrics["examples"] == 3 and card.config["task"] == {"x": 1}
    plain, _ = train_refiner(config, examples, tmp_path / "plain", progress=False)
    _, _, plain_card = load_causal_lm(plain, roles=("refiner-local",))
    assert plain_card.config["task"] == task_dict(task_config_from_card(base))  # the student's task travels on
    with pytest.raises(DataError, match="no global refinement examples"):
        train_refiner(RefinerConfig(kind="global", base=base), examples[:1], tmp_path / "g", progress=False)
    with pytest.raises(ConfigError, match="needs --base"):
        train_refiner(RefinerConfig(kind="local"), examples, tmp_path / "l", progress=False)
    with pytest.raises(ConfigError, match="'global' or 'local'"):
        RefinerConfig(kind="both")


def test_train_student_retrains_its_tokenizer_unless_resuming(tmp_path):
    from glore_engine.models.causal_lm import load_tokenizer
    from glore_engine.training.student import StudentConfig, train_student

    def run(vocab, resume):
        config = StudentConfig(
            base="tiny", n_train=24, max_steps=1, batch_size=2, warmup_steps=0, tokenizer_vocab=vocab
        )
        folder, _ = train_student(config, tmp_path, resume=resume, progress=False)
        return len(load_tokenizer(str(folder)))

    small = run(300, False)
    assert run(400, True) == small  # a resume keeps the tokenizer the saved state was trained with
    assert small < run(400, False) <= 400  # a fresh run trains the one its config asks for
