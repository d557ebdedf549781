"""The GLoRe pipeline on a tiny random family: complete and self-consistent results, inputs, tokenizers."""

from __future__ import annotations

import shutil

import pytest
from engine_helpers import QUESTION, SOLUTION, problems, wrong

from glore_engine.errors import CheckpointError, DataError
from glore_engine.family import GloreModels
from glore_engine.formats import join_steps, student_prompt
from glore_engine.pipeline import (
    MAX_QUESTION_CHARS,
    GlorePipeline,
    GloreResult,
    local_mark,
    result_from_dict,
    to_case,
)
from glore_engine.tasks.answers import is_correct
from glore_engine.tasks.steps import split_steps


@pytest.fixture(scope="module")
def models(tiny_family):
    return GloreModels.from_folder(tiny_family)


@pytest.fixture(scope="module")
def pipeline(models):
    return GlorePipeline(models, max_new_tokens=16)


@pytest.fixture(scope="module")
def batch(pipeline):
    """Six problems: drafts given (right and wrong, two and more steps) and two greedy drafts."""
    probs = problems(6, seed=3, split="test")
    drafts = [p.solution if i % 2 else wrong(p.solution) for i, p in enumerate(probs)]
    drafts[4] = drafts[5] = None  # the student drafts these
    return (
        probs,
        drafts,
        pipeline.run_batch(
            [p.question for p in probs], [p.answer for p in probs], drafts=drafts, orm_critique=True, best_of=2, seed=1
        ),
    )


def first_below(scores, threshold):
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def test_every_candidate_with_steps_has_one_score_per_step(batch):
    _, _, results = batch
    for r in results:
        for c in [*r.candidates, r.local_orm_critique, *r.samples]:
            if c.steps:
                assert len(c.orm_steps) == len(c.steps)
                assert all(0.0 <= s <= 1.0 for s in c.orm_steps)
                if c.kind != "sample":  # best-of-N samples are scored by the ORM only
                    assert len(c.sorm_steps) == len(c.steps)
            else:
                assert c.orm_steps == [] and c.orm_score == 0.0


def test_first_error_is_the_first_sorm_score_below_the_threshold(batch):
    _, _, results = batch
    for r in results:
        assert -1 <= r.first_error < max(len(r.draft.steps), 1)
        assert r.first_error == first_below(r.draft.sorm_steps, r.threshold)
        assert r.first_error_orm == first_below(r.draft.orm_steps, r.threshold)
    assert {r.first_error for r in results if r.draft.steps} != {-1}  # the random SORM flags some steps


def test_the_orm_picks_the_best_of_draft_global_and_local(batch):
    _, _, results = batch
    for r in results:
        scores = [c.orm_score for c in r.candidates]
        assert r.choice == ["draft", "global", "local"][scores.index(max(scores))]
        assert r.chosen.orm_score == max(scores)
        assert r.refine_needed == (r.draft.orm_score < 0.5)
        assert [c.kind for c in r.candidates] == ["draft", "global", "local"]


def test_correctness_is_graded_against_the_gold_answer(batch):
    probs, drafts, results = batch
    for p, d, r in zip(probs, drafts, results):
        assert r.gold == p.answer
        for c in [*r.candidates, *r.samples]:
            assert c.correct == is_correct(c.text, p.answer)
        if d is not None:
            assert r.draft.text == d and r.draft.steps == split_steps(d)
            assert r.draft.correct == (d == p.solution)


def test_local_refinement_keeps_the_drafts_steps_before_the_mark(batch):
    """The mark is the first error, else (nothing below the threshold) the weakest step: every draft is refined."""
    _, _, results = batch
    for r in results:
        e, local, scores = r.first_error, r.local_refinement, r.draft.sorm_steps
        if not r.draft.steps:  # nothing to mark: the (empty) draft stands
            assert r.local_mark == -1 and local.unchanged
            continue
        assert r.local_mark == (e if e >= 0 else scores.index(min(scores)))
        assert not local.unchanged and local.kept_steps == r.local_mark
        kept = join_steps(r.draft.steps[: r.local_mark])
        assert local.text.startswith(kept + "\n" if r.local_mark else "")


def test_without_the_weakest_fallback_an_unmarked_draft_stands(models, batch):
    probs, drafts, _ = batch
    strict = GlorePipeline(models, max_new_tokens=16, threshold=0.0, weakest=False)  # no score is below 0
    results = strict.run_batch([p.question for p in probs], [p.answer for p in probs], drafts=drafts)
    for r in results:
        assert r.first_error == -1 and r.local_mark == -1
        assert r.local_refinement.unchanged and r.local_refinement.text == r.draft.text
        assert r.local_refinement.orm_steps == r.draft.orm_steps


@pytest.mark.parametrize(
    "scores, threshold, weakest, mark",
    [
        ([0.9, 0.4, 0.2], 0.5, True, 1),
        ([0.9, 0.6, 0.7], 0.5, True, 1),
        ([0.9, 0.6, 0.7], 0.5, False, -1),
        ([], 0.5, True, -1),
    ],
)
def test_local_mark(scores, threshold, weakest, mark):
    assert local_mark(scores, threshold, weakest) == mark


def test_the_samples_baseline_and_orm_critique_ablation(batch):
    _, _, results = batch
    for r in results:
        assert len(r.samples) == 2 and {c.kind for c in r.samples} == {"sample"}
        assert r.local_orm_critique is not None and r.local_orm_critique.kind == "local"
        # the ORM's weakest step when none is below the threshold; a stepless draft stands
        assert r.local_orm_critique.unchanged == (not r.draft.steps)
        if r.draft.steps:
            assert r.local_orm_critique.kept_steps == local_mark(r.draft.orm_steps, r.threshold)
    assert set(results[0].timings) >= {"draft_s", "score_s", "refine_s", "rerank_s", "total_s"}


def test_greedy_drafts_are_the_students_greedy_output(models, batch):
    probs, _, results = batch
    for p, r in zip(probs[4:], results[4:]):
        assert r.draft.text == models.student.generate_one(student_prompt(p.question), max_new_tokens=16).text


def test_a_first_error_after_step_one_keeps_the_steps_before_it(pipeline, models):
    """Choose the threshold so the SORM's first error falls at step e > 0; the local refinement keeps 1..e."""
    for p in problems(12, seed=5):
        steps = split_steps(p.solution)
        scores = models.sorm.score_one(p.question, steps)
        for e in range(1, len(steps)):
            if scores[e] < min(scores[:e]):
                threshold = (scores[e] + min(scores[:e])) / 2
                r = pipeline.run(p.question, p.answer, draft=p.solution, threshold=threshold)
                assert r.first_error == e and r.threshold == threshold
                assert r.local_refinement.kept_steps == e
                assert split_steps(r.local_refinement.text)[: e - 1] == steps[: e - 1]
                assert r.local_refinement.text.startswith(join_steps(steps[:e]) + "\n")
                return
    pytest.fail("no draft with a first error after step one (the random SORM is too flat)")


def test_a_user_draft_skips_the_student(pipeline, models, monkeypatch):
    calls = []
    original = models.student.generate
    monkeypatch.setattr(models.student, "generate", lambda *a, **k: calls.append(a) or original(*a, **k))
    r = pipeline.run(QUESTION, "10", draft=SOLUTION)
    assert calls == [] and r.draft.text == SOLUTION and r.draft.correct is True
    assert r.draft.steps == split_steps(SOLUTION) and len(r.draft.orm_steps) == 2
    r = pipeline.run(QUESTION)  # no gold: correctness unknown
    assert len(calls) == 1 and r.draft.correct is None and r.chosen.correct is None


@pytest.mark.parametrize("question", ["", "   \n", "x" * (MAX_QUESTION_CHARS + 1)], ids=["empty", "blank", "huge"])
def test_empty_or_huge_questions_are_data_errors(pipeline, question):
    with pytest.raises(DataError, match="empty|limit"):
        pipeline.run(question)


def test_a_question_at_the_limit_is_accepted():
    from glore_engine.pipeline import check_question

    question = "x" * (MAX_QUESTION_CHARS - 1) + "7"
    assert check_question("  " + question + " ") == question


def test_a_question_without_numbers_is_a_data_error(pipeline):
    with pytest.raises(DataError, match="no numbers"):
        pipeline.run("Tell me a poem about the sea.")


@pytest.mark.parametrize("draft", ["", "  \n\n  "])
def test_a_stepless_draft_is_a_data_error(pipeline, draft):
    with pytest.raises(DataError, match="no steps"):
        pipeline.run(QUESTION, draft=draft)


def test_family_members_with_different_tokenizers_are_a_checkpoint_error(tiny_family, tmp_path):
    from engine_helpers import make_policy

    from glore_engine.models.causal_lm import save_causal_lm
    from glore_engine.models.checkpoint import Card
    from glore_engine.testing import tiny_tokenizer

    family = tmp_path / "family"
    shutil.copytree(tiny_family, family)
    other = tiny_tokenizer(n_problems=40, seed=7)
    shutil.rmtree(family / "refiner-local")
    save_causal_lm(make_policy(other), other, family / "refiner-local", Card(role="refiner-local", base="tiny"))
    with pytest.raises(CheckpointError, match="do not share one tokenizer"):
        GloreModels.from_folder(family)


def test_an_orm_and_sorm_on_one_frozen_base_load_one_backbone(tiny_family, tmp_path, models):
    family = tmp_path / "family"
    shutil.copytree(tiny_family, family)
    assert models.sorm.model.lm is not models.orm.model.lm  # the tiny family's two backbones differ
    shutil.copy(family / "orm" / "model.safetensors", family / "sorm" / "model.safetensors")
    shared = GloreModels.from_folder(family)
    assert shared.sorm.model.lm is shared.orm.model.lm
    result = GlorePipeline(shared).run(QUESTION, draft=SOLUTION)
    from glore_engine.models.reward_model import RewardScorer, load_reward_model

    item = [(QUESTION, result.draft.steps)]
    for member, scores in (("orm", result.draft.orm_steps), ("sorm", result.draft.sorm_steps)):
        model, tokenizer, _ = load_reward_model(family / member)  # alone: its own backbone
        assert scores == RewardScorer(model, tokenizer).score(item)[0]


def test_a_family_member_in_the_wrong_place_is_a_checkpoint_error(tiny_family, tmp_path):
    family = tmp_path / "family"
    shutil.copytree(tiny_family, family)
    shutil.rmtree(family / "orm")
    shutil.copytree(tiny_family / "sorm", family / "orm")
    with pytest.raises(CheckpointError, match="role 'sorm'; expected role orm"):
        GloreModels.from_folder(family)
    shutil.rmtree(family / "student")
    with pytest.raises(CheckpointError, match="not found"):
        GloreModels.from_folder(family)


def test_results_survive_a_round_trip_through_dicts(batch):
    _, _, results = batch
    for r in results:
        back = result_from_dict(r.to_dict())
        assert isinstance(back, GloreResult) and back == r
        assert back.chosen == r.chosen


def test_to_case_records_the_outcome(batch):
    probs, _, results = batch
    case = to_case(results[1], 1, probs[1].id).to_json()
    r = results[1]
    assert case["index"] == 1 and case["problem_id"] == probs[1].id and case["question"] == r.question
    assert case["draft"] == r.draft.text and case["gold"] == probs[1].answer
    assert (case["draft_correct"], case["global_correct"], case["local_correct"], case["final_correct"]) == (
        r.draft.correct,
        r.global_refinement.correct,
        r.local_refinement.correct,
        r.chosen.correct,
    )
    assert [c["kind"] for c in case["data"]["candidates"]] == ["draft", "global", "local"]
    assert case["data"]["steps"] == r.draft.steps  # the step split human ratings index
    assert result_from_dict(case["data"]) == r  # the extra keys are ignored on the way back


def test_evaluate_pipeline_tables(pipeline):
    from glore_engine.evaluation.pipeline_eval import evaluate_pipeline

    probs = problems(3, seed=9, split="test")
    seen = []
    results, tables = evaluate_pipeline(pipeline, probs, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert len(results) == 3 and seen == [(2, 3), (3, 3)]
    assert all(len(r.samples) == 3 for r in results)
    assert tables["metrics"]["T3/n_problems"] == 3
    assert tables["metrics"]["T3/greedy draft"] == sum(bool(r.draft.correct) for r in results) / 3
    assert tables["T2"].startswith("T2:") and tables["T3"].startswith("T3: end-to-end accuracy on 3 problems")


def test_a_refinement_that_rewrote_nothing_takes_its_drafts_scores(pipeline, models, monkeypatch):
    """A global refinement equal to its draft is not scored again: the rerank's reward-model passes
    see only the candidates that differ, and a tie with the draft goes to the draft."""
    from glore_engine.generation.base import Sample

    probs = problems(3, seed=7, split="test")
    drafts = [p.solution for p in probs]

    def global_generate(prompts, **kwargs):  # the "refinement" copies the draft of the problem its prompt quotes
        return [
            [Sample(next(d for p, d in zip(probs, drafts) if p.question in prompt), 1, 0.0, True)] for prompt in prompts
        ]

    monkeypatch.setattr(models.global_refiner, "generate", global_generate)
    rewrite = "So 1+1=<<1+1=2>>2.\n#### 2"  # the local refiner rewrites from the first step, the same for all
    monkeypatch.setattr(
        models.local_refiner, "generate", lambda prompts, **k: [[Sample(rewrite, 1, 0.0, True)]] * len(prompts)
    )
    from glore_engine.models import reward_model

    scored = []  # every reward-model pass's items (ORM and SORM score them together)
    original = reward_model.score_together
    monkeypatch.setattr(
        reward_model, "score_together", lambda scorers, items: scored.append(list(items)) or original(scorers, items)
    )
    results = pipeline.run_batch(
        [p.question for p in probs],
        [p.answer for p in probs],
        drafts=drafts,
        threshold=1.0,  # every draft "wrong"
    )
    assert scored[0] == [(p.question, split_steps(d)) for p, d in zip(probs, drafts)]  # the drafts, once
    assert [r.local_refinement.text for r in results] == [rewrite] * 3
    assert scored[1:] == [[(p.question, split_steps(rewrite)) for p in probs]]  # the rerank: the locals only
    for r in results:
        g = r.global_refinement
        assert g.text == r.draft.text and (g.orm_steps, g.sorm_steps) == (r.draft.orm_steps, r.draft.sorm_steps)
        assert g.orm_steps is not r.draft.orm_steps  # copies: editing one result's scores leaves the other
        assert r.choice != "global"


def test_refinements_side_by_side_equal_one_after_the_other(pipeline, monkeypatch):
    """The refiners and the familiarity check run in worker threads on a CPU: the same results."""
    import torch

    import glore_engine.pipeline as module

    probs = problems(5, seed=8, split="test")
    args = ([p.question for p in probs], [p.answer for p in probs])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        together = pipeline.run_batch(*args, orm_critique=True, warn=True)
        monkeypatch.setattr(module, "independent", lambda *backends: False)
        apart = pipeline.run_batch(*args, orm_critique=True, warn=True)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(together, apart):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert a.local_orm_critique.text == b.local_orm_critique.text
        assert (a.choice, a.warnings) == (b.choice, b.warnings)
