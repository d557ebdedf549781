"""Reward model: one forward pass scores every step exactly like scoring each prefix alone; step ends."""

from __future__ import annotations

import functools
import operator

import pytest
import torch
from engine_helpers import make_policy

from glore_engine.errors import DataError
from glore_engine.formats import scoring_text, student_prompt
from glore_engine.models.reward_model import (
    RewardModel,
    RewardScorer,
    collate_solutions,
    encode_solution,
    score_together,
    share_backbones,
)

SOLUTIONS = [
    (
        "Tom has 3 boxes of 4 apples. He eats 2 apples. How many apples are left?",
        ["Tom has 3*4=<<3*4=12>>12 apples.", "He eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10"],
    ),
    (
        "A farm has 1234 hens and 5678 ducks. How many birds?",
        [
            "1234+5678=<<1234+5678=6912>>6912 birds in all.",
            "Half of them is 6912/2=<<6912/2=3456>>3456.",
            "So 3456*2=6912.\n#### 6912",
        ],
    ),
    ("Q with one step?", ["#### 105"]),
    (
        "Ann reads 15 pages a day for 12 days. How many pages?",
        [
            "15*12=<<15*12=180>>180 pages",
            "She reads 180 pages.",
            "Then 180 more.",
            "180+180=<<180+180=360>>360\n#### 360",
        ],
    ),
]


def make_rm(tokenizer, features: bool, seed: int = 0):
    model = RewardModel(make_policy(tokenizer, seed=seed, std=0.2), likelihood_features=features).eval()
    torch.manual_seed(seed + 100)
    torch.nn.init.normal_(model.head.weight, std=0.2)
    torch.nn.init.normal_(
        model.feature_head.weight, std=0.1
    )  # zero-initialised otherwise: the features would not count
    return model


@pytest.mark.parametrize("features", [False, True], ids=["plain", "likelihood-features"])
def test_one_pass_step_scores_equal_per_prefix_scores(tokenizer, features):
    scorer = RewardScorer(make_rm(tokenizer, features), tokenizer)
    full = scorer.score(SOLUTIONS)  # one batched pass over all solutions (right-padded)
    spread = []
    for (question, steps), scores in zip(SOLUTIONS, full):
        assert len(scores) == len(steps)
        for i in range(1, len(steps) + 1):
            prefix = scorer.score([(question, steps[:i])])[0]  # this prefix alone, unpadded
            assert len(prefix) == i
            assert prefix[-1] == pytest.approx(scores[i - 1], abs=1e-5)
            assert prefix == pytest.approx(scores[:i], abs=1e-5)
        spread += scores
    # non-trivial, unsaturated scores: the comparison means something
    assert max(spread) - min(spread) > 0.05 and sum(0.02 < p < 0.98 for p in spread) >= len(spread) // 2


def test_likelihood_features_change_the_scores(tokenizer):
    plain = make_rm(tokenizer, False, seed=1)
    with_features = make_rm(tokenizer, False, seed=1)
    with_features.likelihood_features = True
    a = functools.reduce(operator.iadd, RewardScorer(plain, tokenizer).score(SOLUTIONS), [])
    b = functools.reduce(operator.iadd, RewardScorer(with_features, tokenizer).score(SOLUTIONS), [])
    assert max(abs(x - y) for x, y in zip(a, b)) > 1e-3


def test_scores_match_a_manual_forward_at_the_step_ends(tokenizer):
    model = make_rm(tokenizer, True)
    question, steps = SOLUTIONS[1]
    enc = encode_solution(tokenizer, question, steps)
    batch = collate_solutions([enc], tokenizer.pad_token_id)
    with torch.no_grad():
        probs = torch.sigmoid(model(**batch))[0, enc.step_ends].tolist()
    assert RewardScorer(model, tokenizer).score_one(question, steps) == pytest.approx(probs, abs=1e-6)


def test_likelihood_features_are_detached_inputs(tokenizer):
    model = make_rm(tokenizer, True)
    torch.nn.init.zeros_(model.head.weight)  # only the feature path is left between loss and backbone
    enc = encode_solution(tokenizer, *SOLUTIONS[0])
    batch = collate_solutions([enc], tokenizer.pad_token_id)
    model(**batch).sum().backward()
    assert model.feature_head.weight.grad.abs().sum() > 0
    assert all(p.grad is None or not p.grad.any() for p in model.lm.parameters())


@pytest.mark.parametrize("question,steps", SOLUTIONS, ids=["two", "multi-digit", "lone-answer", "four"])
def test_encode_solution_step_ends_are_the_last_token_of_each_step(tokenizer, question, steps):
    enc = encode_solution(tokenizer, question, steps)
    text, char_ends = scoring_text(question, steps)
    assert len(enc.step_ends) == len(steps) and enc.step_ends == sorted(set(enc.step_ends))
    assert enc.step_ends[-1] == len(enc.ids) - 1
    for end, char_end in zip(enc.step_ends, char_ends):
        assert tokenizer.decode(enc.ids[: end + 1]) == text[: char_end + 1]  # up to and including the step
        assert tokenizer.decode(enc.ids[:end]) != text[: char_end + 1]  # ... and not one token earlier
    assert tokenizer.decode(enc.ids[: enc.solution_start]) == student_prompt(question)


def test_multi_digit_numbers_end_on_their_last_digit(tokenizer):
    question, steps = SOLUTIONS[1]
    enc = encode_solution(tokenizer, question, steps)
    tokens = [tokenizer.decode([enc.ids[e]]) for e in enc.step_ends]
    assert tokens == [" birds in all."[-len(tokens[0]) :], ".", "2"]  # digits are single tokens: "6912" ends on "2"
    assert tokenizer.decode(enc.ids[enc.step_ends[-1] - 3 : enc.step_ends[-1] + 1]) == "6912"


def test_the_merged_answer_line_belongs_to_the_last_step(tokenizer):
    question, steps = SOLUTIONS[0]
    enc = encode_solution(tokenizer, question, steps)
    tail = tokenizer.decode(enc.ids[enc.step_ends[0] + 1 : enc.step_ends[1] + 1])
    assert tail == "\nHe eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10"


def test_a_solution_with_no_steps_is_a_data_error(tokenizer):
    with pytest.raises(DataError, match="no steps"):
        encode_solution(tokenizer, "Q?", [])
    scorer = RewardScorer(make_rm(tokenizer, False), tokenizer)
    with pytest.raises(DataError):
        scorer.score([("Q?", ["a = 1"]), ("Q?", [])])


def test_a_solution_too_long_to_score_is_a_data_error(tokenizer):
    with pytest.raises(DataError, match="too long"):
        encode_solution(tokenizer, "Q?", ["1+1=2"] * 50, max_length=64)


def test_collate_pads_right_and_marks_solution_tokens(tokenizer):
    a = encode_solution(tokenizer, *SOLUTIONS[0])
    b = encode_solution(tokenizer, *SOLUTIONS[2])
    batch = collate_solutions([a, b], tokenizer.pad_token_id)
    width = max(len(a.ids), len(b.ids))
    assert batch["input_ids"].shape == (2, width)
    assert batch["attention_mask"].sum(1).tolist() == [len(a.ids), len(b.ids)]
    assert batch["solution_mask"][1].nonzero().squeeze(1).tolist() == list(range(b.solution_start, len(b.ids)))
    assert batch["attention_mask"][1, len(b.ids) :].sum() == 0  # right padding


def test_scorer_keeps_input_order_across_length_sorted_batches(tokenizer):
    scorer = RewardScorer(make_rm(tokenizer, True), tokenizer, batch_size=2)
    together = scorer.score(SOLUTIONS)
    alone = [scorer.score_one(q, s) for q, s in SOLUTIONS]
    for t, a in zip(together, alone):
        assert t == pytest.approx(a, abs=1e-5)


def test_scorers_on_one_frozen_base_share_one_backbone_pass(tokenizer):
    import copy

    orm_model, sorm_model = make_rm(tokenizer, True, seed=1), make_rm(tokenizer, True, seed=2)
    sorm_model.lm = copy.deepcopy(orm_model.lm)  # the same weights in another module, as two loads give
    orm, sorm = RewardScorer(orm_model, tokenizer, batch_size=3), RewardScorer(sorm_model, tokenizer, batch_size=3)
    apart = orm.score(SOLUTIONS), sorm.score(SOLUTIONS)
    assert share_backbones([orm, sorm]) == 1
    assert sorm.model.lm is orm.model.lm
    passes = []
    hook = orm.model.lm.base_model.register_forward_hook(lambda *_: passes.append(1))
    together = score_together([orm, sorm], SOLUTIONS)
    hook.remove()
    assert len(passes) == 2  # 4 solutions in batches of 3: one backbone pass per batch for both heads
    assert together[0] == apart[0] and together[1] == apart[1]  # each head still reads its own scores
    assert together[0] != together[1]


def test_backbones_that_differ_are_not_shared(tokenizer):
    import copy

    a, b = make_rm(tokenizer, True, seed=1), make_rm(tokenizer, True, seed=2)
    assert share_backbones([RewardScorer(a, tokenizer), RewardScorer(b, tokenizer)]) == 0  # other weights
    c = make_rm(tokenizer, True, seed=3)
    c.lm = copy.deepcopy(a.lm)
    c.digit_tokens = ~a.digit_tokens  # the likelihood features would read other tokens
    assert share_backbones([RewardScorer(a, tokenizer), RewardScorer(c, tokenizer)]) == 0
    assert a.lm is not c.lm


def test_score_together_takes_any_scorer_beside_reward_scorers(tokenizer):
    class Constant:
        def score(self, items):
            return [[0.25] * len(steps) for _, steps in items]

    scorer = RewardScorer(make_rm(tokenizer, False), tokenizer)
    real, constant = score_together([scorer, Constant()], SOLUTIONS)
    assert real == scorer.score(SOLUTIONS)
    assert constant == [[0.25] * len(steps) for _, steps in SOLUTIONS]


def test_scoring_pads_each_length_run_to_its_own_width(tokenizer, monkeypatch):
    """Solutions of mixed lengths go through the backbone in runs of similar length, the same scores."""
    from glore_engine import padding

    scorer = RewardScorer(make_rm(tokenizer, True), tokenizer, batch_size=64)
    whole = scorer.score(SOLUTIONS)
    monkeypatch.setattr(padding, "FEWEST_ITEMS", 1)
    widths = []
    hook = scorer.model.lm.base_model.register_forward_hook(lambda m, a, out: widths.append(out[0].shape[1]))
    runs = scorer.score(SOLUTIONS)
    hook.remove()
    assert len(widths) == min(len(SOLUTIONS), padding.MOST_RUNS) and min(widths) < max(widths)
    for a, b in zip(whole, runs):
        assert b == pytest.approx(a, abs=1e-5)
