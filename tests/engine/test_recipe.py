"""e2e: the recipe through every stage; a Ctrl-C inside a training stage resumes from its checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from glore_engine.recipe import STAGES, SVAMP_STAGES, RecipeRunner, recipe
from glore_engine.tracking import NullTracker


class StageTracker(NullTracker):
    """Children log like NullTrackers; the SORM child raises Ctrl-C when it logs its loss at step `at` (once)."""

    def __init__(self, kind="recipe", at=None):
        super().__init__()
        self.kind, self.at = kind, at

    def new_child(self, kind):
        return StageTracker(kind, self.at if kind == "sorm" else None)

    def log_metric(self, key, value, step=None):
        if self.at is not None and key == "train/loss" and step == self.at:
            raise KeyboardInterrupt
        super().log_metric(key, value, step)


def test_tiny_and_demo_recipes_are_consistent():
    tiny, full = recipe("tiny"), recipe("demo")
    assert tiny.student.base == "tiny" and full.student.base == "demo"
    assert tiny.orm.role == "orm" and tiny.sorm.role == "sorm"
    assert (tiny.global_refiner.kind, tiny.local_refiner.kind) == ("global", "local")
    assert recipe("tiny", seed=3).orm_data.seed == 3
    from glore_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe("huge")


def test_held_out_stages_sample_the_test_split_like_the_training_data():
    for name in ("tiny", "demo"):
        r = recipe(name, seed=2)
        held_out = r.test_samples
        assert (held_out.split, held_out.data_seed, held_out.seed) == ("test", 0, 3)
        assert (r.orm_data.split, r.orm_data.data_seed) == ("train", 1)  # never the questions T1 scores
        same = replace(
            held_out, split="train", data_seed=1, n_questions=r.orm_data.n_questions, n=r.orm_data.n, seed=2,
            mix=r.orm_data.mix,
        )  # fmt: skip
        assert held_out.mix == ""  # SVAMP's test split has stages of its own
        assert same == r.orm_data  # otherwise sampled exactly like the training data
        assert r.test_labels == replace(r.sorm_labels, n_questions=0, seed=3)
        assert r.eval_student.limit == r.eval.limit and r.eval.seed == r.eval_rm.seed == 2
    assert recipe("demo").test_samples.n_questions == 300 and recipe("demo").eval.limit == 500


@pytest.mark.e2e
def test_recipe_interrupted_in_a_training_stage_resumes_there(tmp_path):
    steps = recipe("tiny")
    events: list[tuple[str, str]] = []

    def on_stage(stage, status, info):
        events.append((stage, status))

    root = StageTracker(at=10)
    with pytest.raises(KeyboardInterrupt):
        RecipeRunner(steps, tmp_path, root, on_stage=on_stage, progress=False).run()
    finished = [s for s, status in events if status == "done"]
    assert finished == ["student", "ei", "verifier", "eval-student", "orm-data", "sorm-labels", "orm"]
    assert [kind for kind, _ in root.children] == [*finished, "sorm"]
    assert not (tmp_path / "sorm" / "done.json").exists()
    assert (tmp_path / "sorm" / "train_state" / "step.json").is_file()  # saved on the way out

    events.clear()
    root = StageTracker()
    outputs = RecipeRunner(steps, tmp_path, root, on_stage=on_stage, progress=False).run()
    trackers = dict(root.children)
    assert [s for s, status in events if status == "cached"] == finished
    rest = [s for s in steps.stages() if s not in finished]
    assert [s for s, status in events if status == "done"] == rest
    assert list(trackers) == rest
    # the SORM picked up after its 10 finished steps
    assert [s for k, _, s in trackers["sorm"].metrics if k == "train/loss"] == [15, 20]
    assert set(outputs) == set(steps.stages()) == set(STAGES) - {"install", *SVAMP_STAGES}
    assert "| SORM |" in outputs["eval-rm"]["T1"] and outputs["eval"]["cases"] == steps.eval.limit
    assert len(trackers["eval"].cases) == steps.eval.limit
    assert set(trackers["eval"].summary["tables_md"]) == {"T2", "T3"}
    assert trackers["refiner-local"].summary["examples"] == outputs["refiner-local"]["examples"]
    assert (tmp_path / "family" / "models" / "sorm" / "value_head.safetensors").is_file()
    local_card = json.loads((Path(outputs["refiner-local"]["model"]) / "glore_card.json").read_text())
    assert local_card["base"] == outputs["refiner-global"]["model"]  # fine-tuned from the global refiner


def test_the_demo_student_is_sft_then_ei_with_svamp_joining_at_ei():
    r = recipe("demo")
    assert (r.student.mix, r.ei.mix, r.orm_data.mix) == ("", "svamp", "svamp")
    assert r.ei.data_seed == r.student.seed == 0 and r.ei.n_questions <= r.student.n_train  # its own SFT questions
    assert r.orm_data.data_seed == 1  # the reward models' questions are others
    assert r.stages(install=True)[-4:] == [*SVAMP_STAGES, "install"] and "svamp-eval" not in recipe("tiny").stages()
    assert (r.svamp.test_samples.data, r.svamp.test_samples.split, r.svamp.eval.data) == ("svamp", "test", "svamp")


@pytest.mark.e2e
def test_recipe_with_svamp_adds_its_columns(tmp_path, monkeypatch):
    import json

    records = [
        {"ID": f"t-{i}", "Body": f"Tom has {i} pens and buys {i + 2} more.", "Question": "How many pens has he?",
         "Equation": f"( {i}.0 + {i + 2}.0 )", "Answer": 2.0 * i + 2, "Type": "Addition"}
        for i in range(1, 21)
    ]  # fmt: skip
    (tmp_path / "SVAMP.json").write_text(json.dumps(records))
    monkeypatch.setenv("GLORE_SVAMP", str(tmp_path / "SVAMP.json"))
    tiny = recipe("tiny")
    demo = recipe("demo")
    # SVAMP in the student's SFT and EI data is tested on its own (tests/tasks, test_expert_iteration):
    # any change to the tiny student loses the handful of correct samples the refiners' data needs
    steps = replace(
        tiny,
        svamp=replace(demo.svamp, test_samples=replace(tiny.test_samples, data="svamp", n_questions=4),
                      test_labels=tiny.test_labels, eval=replace(demo.svamp.eval, limit=4)),
    )  # fmt: skip
    root = NullTracker()
    outputs = RecipeRunner(steps, tmp_path / "run", root, progress=False).run()
    assert [kind for kind, _ in root.children] == steps.stages() and steps.stages()[-3:] == list(SVAMP_STAGES)
    trackers = dict(root.children)
    assert outputs["svamp-eval"]["cases"] == 4 and "| SORM |" in outputs["svamp-eval-rm"]["T1"]
    assert all(c["problem_id"].startswith("svamp-") for c in trackers["svamp-eval"].cases)
    assert [kind for kind, _ in trackers["ei"].children] == ["ei-round"]  # the EI round, a child of the stage
