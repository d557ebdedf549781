"""Expert Iteration: what is kept, what is trained on, rounds as records, resume at the unfinished round."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from glore_engine.errors import ConfigError, DataError
from glore_engine.generation.base import GenerationStats, Sample
from glore_engine.models.checkpoint import read_card
from glore_engine.records import GradedSample, QuestionSamples
from glore_engine.tasks.synthetic import generate
from glore_engine.tracking import NullTracker
from glore_engine.training.expert_iteration import EIConfig, ei_pairs, expert_iteration, kept_solutions


def _wrong(solution: str) -> str:
    lines = solution.splitlines()
    return "\n".join(lines[:-1] + [f"#### {int(lines[-1][5:]) + 1}"])


def _reworded(solution: str) -> str:
    return solution.replace("<<", " <<", 1)  # correct, distinct from the gold text


class FakeBackend:
    """Per prompt: sample 0 the gold, sample 1 a reworded correct one, the rest wrong; greedy: the gold.

    `calls` counts generate() calls; `fail_at` raises KeyboardInterrupt at that call (a kill)."""

    def __init__(self, problems, fail_at: int | None = None):
        from glore_engine.formats import student_prompt

        self.gold = {student_prompt(p.question): p.solution for p in problems}
        self.stats = GenerationStats()
        self.calls = 0
        self.fail_at = fail_at

    def generate(self, prompts, n=1, temperature=0.0, max_new_tokens=256, stop=None, seed=None, calculator=False):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        out = []
        for prompt in prompts:
            gold = self.gold[prompt]
            texts = [gold] if temperature == 0 else [gold, _reworded(gold)] + [_wrong(gold)] * (n - 2)
            out.append([Sample(t, 10, -1.0, True) for t in texts[:n]])
        self.stats.samples += len(prompts) * n
        return out


@pytest.fixture
def fake(monkeypatch, tiny_family):
    """Patch the policy loader so every policy samples through one FakeBackend."""
    import glore_engine.generation.loading as loading

    problems = generate("train", 6, seed=0) + generate("test", 3, seed=0)
    holder = {"backend": FakeBackend(problems), "opened": []}

    def open_policy_backend(model, backend="transformers", batch_size=256, device="", roles=None):
        holder["opened"].append(str(model))
        return holder["backend"], None, None

    monkeypatch.setattr(loading, "open_policy_backend", open_policy_backend)
    return holder


def _config(student, **kw) -> EIConfig:
    base = dict(
        student=str(student),
        rounds=2,
        k=4,
        n_questions=6,
        shard_size=4,
        eval_limit=3,
        eval_k=4,
        max_steps=2,
        batch_size=2,
        warmup_steps=1,
        save_every=1,
        max_new_tokens=16,
    )
    return EIConfig(**{**base, **kw})


def test_kept_solutions_are_the_correct_distinct_finished_samples():
    def sample(text, correct, finished=True):
        return GradedSample(text=text, steps=[text], correct=correct, finished=finished)

    records = [
        QuestionSamples(
            problem_id="q1",
            question="",
            gold="",
            samples=[sample("a", True), sample("b", False), sample("c", True, finished=False), sample("a", True)],
        ),
        QuestionSamples(problem_id="q2", question="", gold="", samples=[sample("x", False)]),
    ]
    assert kept_solutions(records) == {"q1": ["a"], "q2": []}


def test_pairs_are_gold_plus_kept_once_each():
    problems = generate("train", 2, seed=0)
    p, q = problems
    rounds = [{p.id: [p.solution, "alt 1"]}, {p.id: ["alt 1", "alt 2"], q.id: []}]
    pairs = ei_pairs(problems, rounds, gold=True)
    assert [c for _, c in pairs] == [p.solution, "alt 1", "alt 2", q.solution]
    assert pairs[0][0] == f"Question: {p.question}\nAnswer:\n"
    assert [c for _, c in ei_pairs(problems, rounds[1:], gold=False)] == ["alt 1", "alt 2"]
    with pytest.raises(DataError, match="nothing to train on"):
        ei_pairs(problems, [{}], gold=False)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="init must be one of"):
        EIConfig(init="pretrained")
    with pytest.raises(ConfigError, match="rounds must be at least 1"):
        EIConfig(rounds=0)
    with pytest.raises(ConfigError, match="needs --student"):
        expert_iteration(EIConfig(), "unused")


def test_two_rounds_sample_keep_train_and_evaluate(fake, tiny_family, tmp_path):
    student = tiny_family / "student"
    opened = []

    class Tracker(NullTracker):  # records what each child run was opened with
        @contextmanager
        def child(self, kind, name=None, config=None, output_dir=None):
            tracker = NullTracker()
            opened.append((kind, name, config["round"], output_dir, tracker))
            yield tracker

    tracker = Tracker()
    result = expert_iteration(_config(student, init="previous"), tmp_path, tracker=tracker, progress=False)
    assert [r.round for r in result.rounds] == [0, 1, 2]
    one, two = result.rounds[1:]
    # 6 questions, each with one reworded correct sample kept (the gold-identical one adds nothing)
    assert one.metrics["data/kept"] == 12 and one.metrics["data/solved"] == 1.0
    assert one.metrics["data/sample_accuracy"] == pytest.approx(0.5)
    assert one.metrics["data/train_examples"] == 12  # gold + the reworded sample, per question
    assert two.metrics["data/train_examples"] == 12  # accumulated, deduplicated: the same texts again
    assert one.metrics["eval/greedy_accuracy"] == 1.0 and one.metrics["eval/pass@4"] == 1.0
    assert "eval/greedy_accuracy/steps=2" in one.metrics or "eval/greedy_accuracy/steps=3" in one.metrics
    # round 1 samples from the SFT student, round 2 from round 1's model; "previous" trains from it too
    sampled_from = fake["opened"]
    assert str(student) in sampled_from[0] and one.model in sampled_from
    card = read_card(two.model)
    assert card.role == "policy" and card.base == one.model and card.config["ei_round"] == 2
    assert card.config["task"]["max_count"] == 20  # the student's task travels with the EI model
    assert result.model == two.model
    # one child run per round, with the round's metrics; the parent has the per-round eval series
    assert [(k, n, r) for k, n, r, _, _ in opened] == [("ei-round", "round 1", 1), ("ei-round", "round 2", 2)]
    assert opened[1][3] == str(tmp_path / "round-2")
    assert opened[0][4].last("data/kept") == 12 and opened[1][4].summary["model"] == two.model
    assert [(v, s) for k, v, s in tracker.metrics if k == "eval/greedy_accuracy"] == [(1.0, 0), (1.0, 1), (1.0, 2)]
    assert "| 2 |" in tracker.summary["tables_md"]["EI"]
    for r in (1, 2):
        assert (tmp_path / f"round-{r}" / "done.json").is_file()
        assert not (tmp_path / f"round-{r}" / "train_state").exists()


def test_sft_init_trains_every_round_from_the_student(fake, tiny_family, tmp_path):
    student = tiny_family / "student"
    result = expert_iteration(_config(student, eval_start=False, eval_data=""), tmp_path, progress=False)
    assert [r.round for r in result.rounds] == [1, 2]
    assert all(read_card(r.model).base == str(student) for r in result.rounds[1:])
    assert "eval/greedy_accuracy" not in result.rounds[0].metrics


def test_a_killed_run_resumes_at_the_unfinished_round_and_shard(fake, tiny_family, tmp_path):
    student = tiny_family / "student"
    config = _config(student, eval_start=False, eval_data="")
    # calls: round 1 = 2 shards; round 2 = shard 0, then the kill in shard 1
    fake["backend"] = FakeBackend(generate("train", 6, seed=0), fail_at=4)
    with pytest.raises(KeyboardInterrupt):
        expert_iteration(config, tmp_path, progress=False)
    assert (tmp_path / "round-1" / "done.json").is_file() and not (tmp_path / "round-2" / "done.json").exists()
    assert (tmp_path / "round-2" / "samples" / "shard-00000.jsonl").is_file()
    round_one = (tmp_path / "round-1" / "done.json").read_text()
    backend = fake["backend"] = FakeBackend(generate("train", 6, seed=0))
    result = expert_iteration(config, tmp_path, progress=False)
    assert backend.calls == 1  # only round 2's missing shard was sampled
    assert (tmp_path / "round-1" / "done.json").read_text() == round_one
    assert json.loads((tmp_path / "round-2" / "done.json").read_text())["model"] == result.model
    # a third run does nothing at all
    backend = fake["backend"] = FakeBackend(generate("train", 6, seed=0))
    assert expert_iteration(config, tmp_path, progress=False).model == result.model and backend.calls == 0


def test_a_corrupt_round_record_is_a_clear_error(fake, tiny_family, tmp_path):
    (tmp_path / "round-0").mkdir()
    (tmp_path / "round-0" / "done.json").write_text("{oops")
    with pytest.raises(DataError, match="corrupt round record"):
        expert_iteration(_config(tiny_family / "student"), tmp_path, progress=False)


def test_mix_adds_the_other_sources_questions(fake, tiny_family, tmp_path, monkeypatch):
    from glore_engine.tasks import load_problems

    records = [
        {"ID": f"t-{i}", "Body": f"Tom has {i} pens.", "Question": "How many?", "Equation": f"( {i}.0 + 2.0 )",
         "Answer": i + 2.0}
        for i in range(1, 11)
    ]  # fmt: skip
    (tmp_path / "SVAMP.json").write_text(json.dumps(records))
    monkeypatch.setenv("GLORE_SVAMP", str(tmp_path / "SVAMP.json"))
    fake["backend"] = FakeBackend(generate("train", 6, seed=0) + load_problems("svamp", "train"))
    config = _config(tiny_family / "student", rounds=1, eval_start=False, eval_data="", mix="svamp")
    (one,) = expert_iteration(config, tmp_path / "ei", progress=False).rounds
    assert one.metrics["data/questions"] == 6 + 7
