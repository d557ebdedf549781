"""Familiarity: format warnings, the student's range kept beside it, and warnings outside that range."""

from __future__ import annotations

import json
import os

import pytest

from glore_engine import familiarity
from glore_engine.family import GloreModels
from glore_engine.pipeline import GlorePipeline
from glore_engine.tasks.synthetic import generate

GOLD_STEPS = ["She has 3+4=<<3+4=7>>7 apples.\n#### 7"]
PLAIN_STEPS = ["She has 3 + 4 = 7 apples.", "So she has 7 apples."]


def test_format_warnings():
    assert familiarity.format_warnings(GOLD_STEPS) == []
    warned = familiarity.format_warnings(PLAIN_STEPS)
    assert len(warned) == 2 and "calculator annotations" in warned[0] and "#### answer" in warned[1]
    assert familiarity.format_warnings([]) == []


def test_range_outside_it_and_inside_it():
    reference = {
        "n": 64,
        "chars_per_token": {"low": 3.0, "median": 3.5},
        "draft_logprob": {"low": -0.2, "median": -0.02},
    }
    assert familiarity.likelihood_warnings(3.2, -0.1, reference) == []
    assert familiarity.likelihood_warnings(2.9, -0.22, reference) == []  # just below the lowest: the margin
    warned = familiarity.likelihood_warnings(2.1, -1.9, reference)
    assert "problem is unlike" in warned[0] and "2.1 characters" in warned[0]
    assert "draft is unlike" in warned[1] and "-1.90" in warned[1]


def test_the_range_is_measured_once_and_kept_beside_the_student(tiny_family, tmp_path):
    import shutil

    student = tmp_path / "student"
    shutil.copytree(tiny_family / "student", student)
    models = GloreModels.from_folder(tiny_family)
    lm, tok = models.student.model, models.student.tokenizer
    measured = familiarity.family_range(student, lm, tok)
    kept = json.loads((student / familiarity.RANGE_FILE).read_text())
    assert kept == measured and kept["n"] == familiarity.REFERENCE_N
    assert kept["draft_logprob"]["low"] <= kept["draft_logprob"]["median"] < 0
    (student / familiarity.RANGE_FILE).write_text(json.dumps({**kept, "n": 7}))
    assert familiarity.family_range(student, lm, tok)["n"] == 7  # read back, not measured again


def test_a_read_only_student_keeps_its_range_in_the_cache(tiny_family, tmp_path, monkeypatch):
    import shutil

    student = tmp_path / "student"  # a copy: the shared family may hold a range from other tests
    shutil.copytree(tiny_family / "student", student, ignore=shutil.ignore_patterns(familiarity.RANGE_FILE))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    models = GloreModels.from_folder(tiny_family)
    familiarity.family_range(student, models.student.model, models.student.tokenizer)
    assert list((tmp_path / "cache" / "glore").glob("likelihood-range-*.json"))


def test_inspect_results_carry_the_warnings(tiny_family):
    pipeline = GlorePipeline(GloreModels.from_folder(tiny_family), max_new_tokens=8)
    problem = generate("test", 1)[0]
    result = pipeline.run(problem.question, gold=problem.answer, draft="\n".join(PLAIN_STEPS))
    assert any("calculator annotations" in w for w in result.warnings)
    # a random tiny student finds even its task's text unlikely; the rule is the same for a trained one
    check = pipeline.familiarity(problem.question, problem.solution.splitlines())
    assert check.chars_per_token is not None and check.draft_logprob is not None


def test_batched_draft_logprobs_equal_one_at_a_time(tiny_family):
    """Right padding leaves a causal model's real positions alone: a batch gives each draft's own value."""
    models = GloreModels.from_folder(tiny_family)
    model, tokenizer = models.student.model, models.student.tokenizer
    problems = generate("test", 5)
    pairs = [(p.question, p.solution) for p in problems] + [(problems[0].question, "\n".join(PLAIN_STEPS))]
    batched = familiarity.draft_logprobs(model, tokenizer, pairs, batch_size=4)
    alone = [familiarity.draft_logprobs(model, tokenizer, [pair])[0] for pair in pairs]
    assert len({len(tokenizer(q + d)["input_ids"]) for q, d in pairs}) > 1  # the batch really pads
    assert batched == pytest.approx(alone, abs=1e-4)


def test_the_student_s_own_drafts_take_its_sampler_s_logprob(monkeypatch):
    """A draft the bundled student wrote is not read again: its sampler's figure is the same measure."""
    from glore_engine.formats import student_prompt
    from glore_engine.tasks.steps import split_steps

    pipeline = GlorePipeline(GloreModels.bundled(), max_new_tokens=256)
    student = pipeline.models.student
    problems = generate("test", 12, seed=4)
    outs = student.generate([student_prompt(p.question) for p in problems], n=1, max_new_tokens=256)
    pairs = [(p.question, "\n".join(split_steps(o[0].text))) for p, o in zip(problems, outs)]
    read = familiarity.draft_logprobs(student.model, student.tokenizer, pairs)
    sampled = [o[0].logprob / o[0].n_tokens for o in outs]
    assert sampled == pytest.approx(read, abs=0.01)  # they differ by the token that ended the draft

    reads: list = []

    def counted(model, tokenizer, pairs, batch_size=64):
        reads.append(pairs)
        return [-50.0] * len(pairs)  # far below anything the student wrote

    monkeypatch.setattr(familiarity, "draft_logprobs", counted)
    questions = [p.question for p in problems[:3]]
    results = pipeline.run_batch(questions, drafts=[None, None, problems[2].solution], warn=True)
    assert [len(r) for r in reads] == [1]  # only the user's draft was read
    for result in results[:2]:
        assert not any("log-probability" in w for w in result.warnings)
    assert any("log-probability" in w for w in results[2].warnings)
