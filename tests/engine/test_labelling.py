"""Labelling: ORM samples and dedup, SORM rollout stats, label rules, refinement pairing, sharded resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from engine_helpers import QUESTION, SOLUTION, problems, wrong

from glore_engine.errors import DataError
from glore_engine.formats import BAD_MARK, global_prompt, join_steps, local_prompt, student_prompt
from glore_engine.generation.base import Sample
from glore_engine.labelling.orm_data import build_orm_data, dedup_samples, orm_stats, sample_questions
from glore_engine.labelling.pairing import global_pairs, local_triple, local_triples, rollout_triples
from glore_engine.labelling.postprocess import (
    LabelRules,
    apply_rules,
    balance_masks,
    first_error,
    label_stats,
    step_labels,
)
from glore_engine.labelling.rollouts import (
    build_sorm_labels,
    label_solutions,
    prefix_prompt,
    rollout_cost,
    solutions_of,
)
from glore_engine.labelling.shards import job_cost, read_jsonl, run_sharded, write_jsonl_atomic
from glore_engine.records import GradedSample, LabelledSolution, PrefixRollouts, QuestionSamples
from glore_engine.tasks.steps import split_steps

GOLD_STEPS = split_steps(SOLUTION)  # 12 apples, then 10 left
BAD_STEPS = ["Tom has 3*4=<<3*4=13>>13 apples.", "He eats 2, so 13-2=<<13-2=11>>11 are left.\n#### 11"]
RESTART = "He eats 2, and 3*4=<<3*4=12>>12, so 12-2=<<12-2=10>>10 are left.\n#### 10"  # ignores R_1 = 13


class FakeBackend:
    """Continuations chosen by a function of the prompt; records every call."""

    def __init__(self, respond):
        self.respond = respond
        self.calls: list[dict] = []

    def generate(self, prompts, n=1, temperature=0.0, max_new_tokens=256, stop=None, seed=None, calculator=False):
        self.calls.append({"prompts": list(prompts), "n": n, "seed": seed, "temperature": temperature})
        return [[Sample(t, 5, -1.0, True) for t in self.respond(p, n)] for p in prompts]


def rollout_stats(k=4, correct=0, consistent=None, pos=None, neg=None):
    return PrefixRollouts(
        k=k, correct=correct, consistent_correct=correct if consistent is None else consistent, pos=pos, neg=neg
    )


def record(steps, correct, rollouts, pid="p0", question="Q?"):
    return LabelledSolution(
        problem_id=pid,
        question=question,
        gold="10",
        text=join_steps(steps),
        steps=steps,
        correct=correct,
        rollouts=rollouts,
    )


def sample(text, correct, count=1, steps=None, logprob=None):
    return GradedSample(
        text=text, steps=split_steps(text) if steps is None else steps, correct=correct, count=count, logprob=logprob
    )


# ---- ORM data ----------------------------------------------------------------------------------
def test_dedup_counts_repeated_samples():
    samples = [
        Sample(SOLUTION, 30, -2.0, True),
        Sample("a\n#### 3", 5, -4.0, True),
        Sample(SOLUTION, 30, -2.0, True),
        Sample(SOLUTION, 30, -2.0, True),
    ]
    out = dedup_samples(samples, "10")
    assert [(s.text, s.count, s.correct) for s in out] == [(SOLUTION, 3, True), ("a\n#### 3", 1, False)]
    assert out[0].steps == GOLD_STEPS and out[0].answer == "10"
    assert out[1].answer == "3" and out[0].logprob == -2.0 and out[0].n_tokens == 30


def test_orm_stats_weigh_duplicates():
    records = [
        QuestionSamples(problem_id="a", question="", gold="", samples=[sample("x", True, 3), sample("y", False, 1)]),
        QuestionSamples(problem_id="b", question="", gold="", samples=[sample("z", False, 4)]),
    ]
    stats = orm_stats(records)
    assert stats == {
        "questions": 2,
        "distinct_samples": 3,
        "samples": 8,
        "sample_accuracy": 3 / 8,
        "mixed_questions": 1,
        "mixed_distinct_samples": 2,
    }


def test_sample_questions_grades_and_dedups_per_problem():
    probs = problems(3)
    answers = {student_prompt(p.question): p for p in probs}

    def respond(prompt, n):
        p = answers[prompt]
        return [p.solution, wrong(p.solution), p.solution][:n]

    backend = FakeBackend(respond)
    records = sample_questions(backend, probs, n=3, temperature=1.0, max_new_tokens=64, seed=4)
    assert backend.calls[0]["n"] == 3 and backend.calls[0]["seed"] == 4
    assert [r.problem_id for r in records] == [p.id for p in probs]
    for r in records:
        assert r.n_samples == 3
        assert sorted((s.correct, s.count) for s in r.samples) == [(False, 1), (True, 2)]


def test_build_orm_data_resumes_from_its_shards(tmp_path):
    probs = problems(5)
    backend = FakeBackend(lambda p, n: ["a = 1\n#### 1"] * n)
    first = build_orm_data(backend, probs, tmp_path, n=2, shard_size=2, seed=3)
    assert len(backend.calls) == 3 and sorted(f.name for f in tmp_path.glob("shard-*.jsonl")) == [
        "shard-00000.jsonl",
        "shard-00001.jsonl",
        "shard-00002.jsonl",
    ]
    assert [c["seed"] for c in backend.calls] == [3 * 7919, 3 * 7919 + 1, 3 * 7919 + 2]  # seed per shard
    again = build_orm_data(backend, probs, tmp_path, n=2, shard_size=2, seed=3)
    assert len(backend.calls) == 3 and again == first  # every shard cached


# ---- shards ------------------------------------------------------------------------------------
def test_run_sharded_reports_progress_and_cached_shards(tmp_path):
    seen = []
    out = run_sharded(
        list(range(5)),
        2,
        tmp_path,
        lambda items, k: [{"k": k, "x": x} for x in items],
        on_shard=lambda *a: seen.append(a),
    )
    assert [r["x"] for r in out] == [0, 1, 2, 3, 4] and [r["k"] for r in out] == [0, 0, 1, 1, 2]
    assert seen == [(1, 3, False), (2, 3, False), (3, 3, False)]
    (tmp_path / "shard-00001.jsonl").unlink()
    seen.clear()
    assert (
        run_sharded(
            list(range(5)),
            2,
            tmp_path,
            lambda items, k: [{"k": k, "x": x} for x in items],
            on_shard=lambda *a: seen.append(a),
        )
        == out
    )
    assert seen == [(1, 3, True), (2, 3, False), (3, 3, True)]


def tag(items, k):
    return [{"k": k, "x": x} for x in items]


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_run_sharded_refuses_shards_another_job_made(tmp_path):
    """Shards are reused only by the job that made them: another config, shard size or items is refused."""
    run_sharded(list(range(5)), 2, tmp_path, tag, config={"k": 4, "seed": 0})
    (tmp_path / "shard-00002.jsonl").unlink()  # a job killed before its last shard
    before = folder_bytes(tmp_path)
    refused = {
        r"k 4 -> 2;.*shard_size 2 -> 3": (list(range(5)), 3, {"k": 2, "seed": 0}),
        r"\(k 4 -> 2\)": (list(range(5)), 2, {"k": 2, "seed": 0}),
        r"\(items ": (list(range(6)), 2, {"k": 4, "seed": 0}),
        r"\(seed 0 -> \(unset\)\)": (list(range(5)), 2, {"k": 4}),
    }
    for message, (items, size, config) in refused.items():
        with pytest.raises(DataError, match=message):
            run_sharded(items, size, tmp_path, lambda *a: pytest.fail("a refused job processed a shard"), config=config)
        assert folder_bytes(tmp_path) == before  # nothing written, nothing overwritten
    same = run_sharded(list(range(5)), 2, tmp_path, tag, config={"k": 4, "seed": 0})
    assert [r["x"] for r in same] == [0, 1, 2, 3, 4]


def test_shards_without_a_record_of_their_job_are_refused(tmp_path):
    write_jsonl_atomic(tmp_path / "shard-00000.jsonl", [{"x": 0}])  # left by a version that kept no job.json
    with pytest.raises(DataError, match="carry no record of the config that made them"):
        run_sharded([0, 1], 1, tmp_path, tag)


class CountingBackend(FakeBackend):
    """A FakeBackend that counts what it generates, as real backends do in `stats`."""

    def __init__(self, respond):
        from glore_engine.generation.base import GenerationStats

        super().__init__(respond)
        self.stats = GenerationStats()

    def generate(self, prompts, n=1, **kwargs):
        out = super().generate(prompts, n=n, **kwargs)
        self.stats.prompts += len(prompts)
        self.stats.samples += sum(len(r) for r in out)
        self.stats.generated_tokens += sum(s.n_tokens for r in out for s in r)
        return out


def test_the_cost_of_a_resumed_job_counts_every_shard(tmp_path):
    """Each shard keeps its own cost: a job resumed after a kill costs what an uninterrupted one does."""
    import shutil

    probs = problems(5)
    respond = lambda p, n: ["a = 1\n#### 1"] * n  # noqa: E731
    build_orm_data(CountingBackend(respond), probs, tmp_path / "straight", n=2, shard_size=2)
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    for k in (1, 2):  # killed in shard 1: only shard 0 had finished
        (tmp_path / "resumed" / f"shard-0000{k}.jsonl").unlink()
        (tmp_path / "resumed" / f"shard-0000{k}.cost.json").unlink()
    backend = CountingBackend(respond)
    build_orm_data(backend, probs, tmp_path / "resumed", n=2, shard_size=2)
    assert backend.stats.samples == 6  # this run sampled shards 1 and 2 only
    straight, _ = job_cost(tmp_path / "straight")
    total, wall = job_cost(tmp_path / "resumed")
    assert (
        (total.prompts, total.samples, total.generated_tokens)
        == (5, 10, 50)
        == (
            straight.prompts,
            straight.samples,
            straight.generated_tokens,
        )
    )
    assert wall > 0


def test_read_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{broken\n')
    with pytest.raises(DataError, match=r"x.jsonl:3"):
        list(read_jsonl(path))
    with pytest.raises(DataError, match="no such file"):
        list(read_jsonl(tmp_path / "missing.jsonl"))


def test_write_jsonl_atomic_leaves_no_temporary_file(tmp_path):
    write_jsonl_atomic(tmp_path / "a.jsonl", [{"x": "ки"}, {"y": 2}])
    assert list(read_jsonl(tmp_path / "a.jsonl")) == [{"x": "ки"}, {"y": 2}]
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]


# ---- SORM rollouts -----------------------------------------------------------------------------
def orm_records_for_consistency():
    return [
        QuestionSamples(
            problem_id="p0",
            question=QUESTION,
            gold="10",
            samples=[
                sample(SOLUTION, True, 2, GOLD_STEPS, -1.0),
                sample(join_steps(BAD_STEPS), False, 1, BAD_STEPS, -3.0),
                sample("", False, 1, [], -9.0),
            ],
        )
    ]


def respond_for_consistency(prompt, n):
    if "=13>>13" in prompt:  # after the wrong first step: one restart that ignores 13, one that uses it
        return [RESTART, "13-2=<<13-2=11>>11\n#### 11"][:n]
    return ["He eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10", "12-3=9\n#### 9"][:n]


def test_solutions_of_flattens_samples_with_steps():
    sols = solutions_of(orm_records_for_consistency())
    assert [s.steps for s in sols] == [GOLD_STEPS, BAD_STEPS]
    assert sols[0].count == 2 and sols[1].gold == "10" and sols[1].question == QUESTION


def test_prefix_prompt_ends_with_the_kept_steps():
    assert prefix_prompt("Q", ["a", "b", "c"], 2) == student_prompt("Q") + "a\nb\n"


def test_label_solutions_counts_correct_and_consistent_rollouts():
    backend = FakeBackend(respond_for_consistency)
    labelled = label_solutions(
        backend, solutions_of(orm_records_for_consistency()), k=2, temperature=1.0, max_new_tokens=32, seed=0
    )
    good, bad = labelled
    assert good.results == ["12", "10"] and bad.results == ["13", "11"]
    assert good.rollouts == [
        PrefixRollouts(
            k=2,
            correct=1,
            consistent_correct=1,
            pos="He eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10",
            neg="12-3=9\n#### 9",
        )
    ]
    assert bad.rollouts == [
        PrefixRollouts(k=2, correct=1, consistent_correct=0, pos=None, neg="13-2=<<13-2=11>>11\n#### 11")
    ]
    assert rollout_cost(labelled) == {"solutions": 2, "prefixes": 2, "rollouts": 4}


def test_identical_prefixes_are_rolled_out_once():
    sol = {"problem_id": "p", "question": "Q", "gold": "3", "correct": False}
    sols = [
        LabelledSolution(**sol, steps=["a=1", "b=2", "#### 3"]),
        LabelledSolution(**sol, steps=["a=1", "b=5", "#### 6"]),
    ]
    backend = FakeBackend(lambda p, n: ["#### 3"] * n)
    labelled = label_solutions(backend, sols, k=3, temperature=1.0, max_new_tokens=8, seed=0)
    prompts = backend.calls[0]["prompts"]
    assert len(prompts) == 3 and len(set(prompts)) == 3  # "a=1" shared, then "a=1 b=2" and "a=1 b=5"
    assert labelled[0].rollouts[0] is not None and labelled[0].rollouts[0] == labelled[1].rollouts[0]


def test_a_one_step_solution_needs_no_rollouts():
    backend = FakeBackend(lambda p, n: ["x"] * n)
    (only,) = label_solutions(
        backend,
        [LabelledSolution(problem_id="p", question="Q", gold="3", steps=["#### 3"], correct=True)],
        k=2,
        temperature=1.0,
        max_new_tokens=8,
        seed=0,
    )
    assert only.rollouts == [] and backend.calls == []


# ---- label rules -------------------------------------------------------------------------------
def test_consistency_removes_positives_from_rollouts_that_ignore_the_step():
    backend = FakeBackend(respond_for_consistency)
    _, bad = label_solutions(
        backend, solutions_of(orm_records_for_consistency()), k=2, temperature=1.0, max_new_tokens=32, seed=0
    )
    on = step_labels(bad, LabelRules(consistency=True))
    off = step_labels(bad, LabelRules(consistency=False))
    assert on == ([0, 0], [0.0, 0.0])
    assert off == ([1, 0], [0.5, 0.0])
    assert first_error(on[0]) == 0 and first_error(off[0]) == 1


def test_propagation_makes_earlier_steps_positive():
    r = record(
        ["a", "b", "c", "d"], False, [rollout_stats(correct=0), rollout_stats(correct=0), rollout_stats(correct=1)]
    )
    assert step_labels(r, LabelRules(propagate=True))[0] == [1, 1, 1, 0]
    assert step_labels(r, LabelRules(propagate=False))[0] == [0, 0, 1, 0]
    correct = record(["a", "b"], True, [rollout_stats(correct=0)])
    assert step_labels(correct, LabelRules(propagate=True))[0] == [1, 1]
    assert step_labels(correct, LabelRules(propagate=False))[0] == [0, 1]


def test_soft_labels_are_the_fraction_of_verifying_rollouts():
    r = record(["a", "b", "c"], True, [rollout_stats(k=4, correct=3, consistent=1), rollout_stats(k=8, correct=2)])
    hard, soft = step_labels(r, LabelRules(consistency=True))
    assert soft == [0.25, 0.25, 1.0] and hard == [1, 1, 1]
    assert step_labels(r, LabelRules(consistency=False))[1] == [0.75, 0.25, 1.0]
    assert step_labels(record(["a", "b"], False, [rollout_stats(k=0)]), LabelRules())[1] == [0.0, 0.0]


def test_balancing_keeps_equal_positives_and_negatives_per_prefix_length():
    import random

    rng = random.Random(0)
    labels = [[int(rng.random() < 0.8) for _ in range(rng.randint(1, 5))] for _ in range(60)]
    masks = balance_masks(labels, seed=3)
    for length in range(5):
        kept = Counter(row[length] for row, m in zip(labels, masks) if len(row) > length and m[length])
        have = Counter(row[length] for row in labels if len(row) > length)
        if have[0] and have[1]:
            assert kept[0] == kept[1] == min(have[0], have[1])
        else:
            assert kept == have  # one class only at this length: all kept
    assert masks == balance_masks(labels, seed=3)  # seeded and deterministic
    assert masks != balance_masks(labels, seed=4)
    assert all(v in (0.0, 1.0) for m in masks for v in m)


def test_apply_rules_adds_labels_soft_labels_and_masks():
    records = [record(["a", "b"], i % 3 == 0, [rollout_stats(correct=i % 2)], pid=f"p{i}") for i in range(9)]
    out = apply_rules(records, LabelRules(balance=True, seed=1))
    assert all(len(r.labels) == len(r.soft_labels) == len(r.mask) == 2 for r in out)
    assert out[0].steps == ["a", "b"] and records[0].labels == []  # input records untouched
    unbalanced = apply_rules(records, LabelRules(balance=False))
    assert all(m == [1.0, 1.0] for m in (r.mask for r in unbalanced))
    stats = label_stats(out)
    assert stats["labels"] == 18 and stats["labels_kept"] < 18
    assert 0 <= stats["positive_rate/step1"] <= 1 and "positive_rate/step2" in stats


# ---- refinement pairing ------------------------------------------------------------------------
def orm_record(pid, texts_correct):
    return QuestionSamples(
        problem_id=pid, question=f"Question {pid}?", gold="1", samples=[sample(t, c) for t, c in texts_correct]
    )


def test_global_pairs_only_come_from_mixed_questions():
    records = [
        orm_record("mixed", [("good\n#### 1", True), ("bad one\n#### 2", False), ("bad two\n#### 3", False)]),
        orm_record("all-good", [("g\n#### 1", True)]),
        orm_record("all-bad", [("b\n#### 2", False), ("c\n#### 3", False)]),
        orm_record("stepless-good", [("", True), ("b\n#### 2", False)]),
    ]
    pairs = global_pairs(records, seed=0)
    assert len(pairs) == 2 and {p.kind for p in pairs} == {"global"}
    assert {p.prompt for p in pairs} == {
        global_prompt("Question mixed?", ["bad one\n#### 2"]),
        global_prompt("Question mixed?", ["bad two\n#### 3"]),
    }
    assert {p.target for p in pairs} == {"good\n#### 1"}
    assert len(global_pairs(records, max_per_question=1)) == 1
    assert global_pairs(records, seed=5) == global_pairs(records, seed=5)


def test_local_triple_marks_the_first_error_and_keeps_the_steps_before_it():
    steps = ["a = 1", "b = a + 1 = 2", "c = b * 5 = 11", "#### 11"]
    pos_from_p2 = "c = b * 5 = 10\n#### 10"
    r = record(
        steps,
        False,
        [rollout_stats(correct=1), rollout_stats(correct=2, pos=pos_from_p2), rollout_stats(correct=0, neg="x")],
        question="Q?",
    )
    r = apply_rules([r], LabelRules(balance=False))[0]
    assert r.labels == [1, 1, 0, 0]
    ex = local_triple(r, [], __import__("random").Random(0))
    assert ex.kind == "local"
    assert ex.prompt == local_prompt("Q?", steps, 2)
    assert f"{BAD_MARK} c = b * 5 = 11" in ex.prompt and ex.prompt.count(BAD_MARK) == 1
    assert ex.prompt.endswith("Refinement:\na = 1\nb = a + 1 = 2\n")  # steps 1..E-1 kept
    assert ex.target == "c = b * 5 = 10\n#### 10"  # continues with the positive rollout from P_2
    full_target = split_steps(ex.prompt.split("Refinement:\n", 1)[1] + ex.target)
    assert full_target[:2] == steps[:2]


def test_rollout_triples_mark_the_failing_rollout_of_each_verified_prefix():
    steps = ["a = 1", "b = a + 1 = 2", "c = b * 5 = 10", "#### 10"]
    r = record(
        steps,
        True,
        [
            rollout_stats(correct=3, neg="b = a + 2 = 3\n#### 15"),
            rollout_stats(correct=2),
            rollout_stats(correct=1, neg="#### 9"),
        ],
        question="Q?",
    )
    r = apply_rules([r], LabelRules(balance=False))[0]
    triples = rollout_triples(r)
    # P_1 failed with "b = a + 2 = 3": marked there, target the solution's own rest; P_2 has no failing rollout
    assert [t.prompt for t in triples] == [
        local_prompt("Q?", ["a = 1", "b = a + 2 = 3", "#### 15"], 1),
        local_prompt("Q?", steps[:3] + ["#### 9"], 3),
    ]
    assert [t.target for t in triples] == ["b = a + 1 = 2\nc = b * 5 = 10\n#### 10", "#### 10"]


def test_rollout_triples_of_a_wrong_solution_target_the_prefixes_verifying_rollout():
    steps = ["a = 1", "b = a * 3 = 4", "#### 4"]
    r = record(
        steps,
        False,
        [rollout_stats(correct=1, pos="b = a * 3 = 3\n#### 3", neg="b = 7\n#### 7"), rollout_stats(correct=0, neg="x")],
    )
    r = apply_rules([r], LabelRules(balance=False))[0]
    assert r.labels == [1, 0, 0]
    (triple,) = rollout_triples(r)  # P_2 is not verified: no triple from it
    assert triple.prompt == local_prompt("Q?", ["a = 1", "b = 7", "#### 7"], 1)
    assert triple.target == "b = a * 3 = 3\n#### 3"
    plain = local_triples([r])
    both = local_triples([r], from_rollouts=True)
    assert both[: len(plain)] == plain and both[len(plain) :] == [triple]


def test_local_triple_with_an_error_at_the_first_step_targets_a_correct_sample():
    import random

    steps = ["a = 7", "#### 7"]
    r = apply_rules([record(steps, False, [rollout_stats(correct=0)])], LabelRules(balance=False))[0]
    assert first_error(r.labels) == 0
    good = record(["a = 1", "#### 1"], True, [])
    ex = local_triple(r, [good], random.Random(0))
    assert ex.prompt == local_prompt("Q?", steps, 0) and ex.prompt.endswith("Refinement:\n")
    assert ex.target == "a = 1\n#### 1"
    assert local_triple(r, [], random.Random(0)) is None  # no correct sample to learn from


def test_local_triple_of_a_correct_solution_uses_its_negative_rollout():
    import random

    steps = ["a = 1", "b = 2", "#### 3"]
    r = record(
        steps, True, [rollout_stats(correct=1, pos="b = 2\n#### 3"), rollout_stats(correct=0, neg="b is 9\n#### 9")]
    )
    r = apply_rules([r], LabelRules(propagate=False, balance=False))[0]
    assert r.labels == [1, 0, 1]
    ex = local_triple(r, [], random.Random(0))
    draft = steps[:2] + ["b is 9\n#### 9"]
    assert ex.prompt == local_prompt("Q?", draft, 1)
    assert ex.target == "b = 2\n#### 3"


def test_local_triples_skip_clean_solutions_and_missing_rollouts():
    clean = record(["a", "#### 1"], True, [rollout_stats(correct=1, pos="#### 1")], pid="p1")
    no_pos = record(
        ["a", "b", "#### 2"], False, [rollout_stats(correct=1, pos=None), rollout_stats(correct=0)], pid="p2"
    )
    assert local_triples([clean, no_pos]) == []


def test_local_triples_from_rollout_labels_respect_the_rules():
    backend = FakeBackend(respond_for_consistency)
    labelled = label_solutions(
        backend, solutions_of(orm_records_for_consistency()), k=2, temperature=1.0, max_new_tokens=32, seed=0
    )
    (ex,) = local_triples(labelled)  # consistency on: error at step 0 of the bad sample, target = the good sample
    assert ex.prompt == local_prompt(QUESTION, BAD_STEPS, 0) and ex.target == SOLUTION
    # consistency off: the restart "verifies" the wrong step and the error moves to step 1; the restart
    # is not kept as a target (it does not continue from the kept steps), so that solution gives no triple
    off = apply_rules(labelled, LabelRules(consistency=False, balance=False))
    assert first_error(off[1].labels) == 1 and off[1].rollouts[0].pos is None
    assert local_triples(labelled, LabelRules(consistency=False, balance=False)) == []


# ---- sharded labelling resume ------------------------------------------------------------------
class Killed(Exception):
    pass


class Crashing:
    """Wraps a backend and dies on its n-th generate call (a killed labelling job)."""

    def __init__(self, backend, die_on: int | None = None):
        self.backend, self.die_on, self.calls = backend, die_on, 0

    @property
    def stats(self):
        return self.backend.stats

    def generate(self, *args, **kwargs):
        self.calls += 1
        if self.die_on is not None and self.calls == self.die_on:
            raise Killed
        return self.backend.generate(*args, **kwargs)


@pytest.fixture(scope="module")
def resume_records():
    out = []
    for p in problems(6):
        out.append(
            QuestionSamples(
                problem_id=p.id,
                question=p.question,
                gold=p.answer,
                samples=[sample(p.solution, True), sample(wrong(p.solution), False)],
            )
        )
    return out


def test_sharded_labelling_resumes_to_identical_labels(policy, tokenizer, resume_records, tmp_path):
    from glore_engine.generation.hf_backend import TransformersBackend

    kwargs = {"k": 2, "temperature": 1.0, "max_new_tokens": 10, "seed": 5, "shard_size": 3}
    n_solutions = len(solutions_of(resume_records))
    n_shards = -(-n_solutions // 3)
    assert n_shards >= 4

    clean = build_sorm_labels(TransformersBackend(policy, tokenizer), resume_records, tmp_path / "clean", **kwargs)

    crashing = Crashing(TransformersBackend(policy, tokenizer), die_on=3)
    with pytest.raises(Killed):
        build_sorm_labels(crashing, resume_records, tmp_path / "resumed", **kwargs)
    written = sorted(p.name for p in (tmp_path / "resumed").glob("shard-*.jsonl"))
    assert written == ["shard-00000.jsonl", "shard-00001.jsonl"]  # the job died during shard 2
    (tmp_path / "resumed" / "shard-00000.jsonl").unlink()  # and a shard file got lost

    rerun = Crashing(TransformersBackend(policy, tokenizer))
    cached = []
    resumed = build_sorm_labels(
        rerun,
        resume_records,
        tmp_path / "resumed",
        on_shard=lambda done, total, was_cached: cached.append(was_cached),
        **kwargs,
    )
    assert rerun.calls == n_shards - 1  # shard 1 came from disk
    assert cached == [False, True] + [False] * (n_shards - 2)
    assert resumed == clean  # identical records: texts, rollout counts, kept rollouts
    assert len(resumed) == n_solutions
    for k in range(n_shards):
        name = f"shard-{k:05d}.jsonl"
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "clean" / name).read_text()
    # the rollouts were really sampled: some prefixes got distinct texts
    texts = {json.dumps(p.to_json()) for r in clean for p in r.rollouts}
    assert len(texts) > 1


def test_labelling_with_another_seed_gives_other_rollouts(policy, tokenizer, resume_records, tmp_path):
    from glore_engine.generation.hf_backend import TransformersBackend

    backend = TransformersBackend(policy, tokenizer)
    a = build_sorm_labels(backend, resume_records[:2], tmp_path / "a", k=2, max_new_tokens=8, seed=1, shard_size=8)
    b = build_sorm_labels(backend, resume_records[:2], tmp_path / "b", k=2, max_new_tokens=8, seed=2, shard_size=8)
    assert [r.rollouts for r in a] != [r.rollouts for r in b]
