"""e2e: the Demo class through every stage; a Ctrl-C inside a training stage resumes from its checkpoint."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from glore_engine.demo import STAGES, Demo, bundle_markdown, demo_preset, folder_bytes
from glore_engine.tracking import NullTracker


class StageTracker(NullTracker):
    """Ctrl-C while the SORM stage logs its training loss at step `at` (once)."""

    def __init__(self, kind, at=None):
        super().__init__()
        self.kind, self.at = kind, at

    def log_metric(self, key, value, step=None):
        if self.at is not None and key == "train/loss" and step == self.at:
            raise KeyboardInterrupt
        super().log_metric(key, value, step)


def make_child(trackers, interrupt_at=None):
    @contextmanager
    def child(kind, name=None, config=None):
        tracker = StageTracker(kind, interrupt_at if kind == "sorm" else None)
        trackers[kind] = tracker
        yield tracker

    return child


def test_tiny_and_demo_presets_are_consistent():
    tiny, full = demo_preset("tiny"), demo_preset("demo")
    assert tiny.student.base == "tiny" and full.student.base == "demo"
    assert tiny.orm.role == "orm" and tiny.sorm.role == "sorm"
    assert (tiny.global_refiner.kind, tiny.local_refiner.kind) == ("global", "local")
    assert demo_preset("tiny", seed=3).orm_data.seed == 3
    from glore_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown demo preset"):
        demo_preset("huge")


def test_bundle_markdown_lists_tables_and_times():
    card = {
        "command": "glore-train demo",
        "commit": "",
        "seed": 0,
        "created_at": "now",
        "bytes": 1234,
        "student": {"greedy_accuracy": 0.5, "pass@8/steps=2": 0.9},
        "stage_seconds": {"student": 1.0, "x": None},
        "T1": "| t1 |",
        "T2": None,
        "T3": "| t3 |",
    }
    text = bundle_markdown(card)
    assert "1,234 bytes" in text and "- greedy_accuracy: 0.500" in text and "steps=2" not in text
    assert "## T1\n\n| t1 |" in text and "## T2" not in text and "- student: 1.0" in text and "- x:" not in text


def test_folder_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"12345")
    (tmp_path / "g").write_bytes(b"123")
    assert folder_bytes(tmp_path) == 8


@pytest.mark.e2e
def test_demo_interrupted_in_a_training_stage_resumes_there(tmp_path):
    preset = demo_preset("tiny")
    events: list[tuple[str, str]] = []
    trackers: dict = {}

    def on_stage(stage, status, info):
        events.append((stage, status))

    first = Demo(preset, tmp_path, child=make_child(trackers, interrupt_at=10), on_stage=on_stage, progress=False)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    finished = [s for s, status in events if status == "done"]
    assert finished == ["student", "verifier", "eval-student", "orm-data", "sorm-labels", "orm"]
    assert not (tmp_path / "sorm" / "done.json").exists()
    assert (tmp_path / "sorm" / "train_state" / "step.json").is_file()  # saved on the way out

    events.clear()
    trackers.clear()
    outputs = Demo(preset, tmp_path, child=make_child(trackers), on_stage=on_stage, progress=False).run()
    assert [s for s, status in events if status == "cached"] == finished
    rest = [s for s in STAGES if s not in finished and s != "install"]
    assert [s for s, status in events if status == "done"] == rest
    assert set(trackers) == set(rest)
    # the SORM picked up after its 10 finished steps
    assert [s for k, _, s in trackers["sorm"].metrics if k == "train/loss"] == [15, 20]
    assert set(outputs) == set(STAGES) - {"install"}
    assert "| SORM |" in outputs["eval-rm"]["T1"] and outputs["eval"]["cases"] == preset.eval_problems
    assert len(trackers["eval"].cases) == preset.eval_problems
    assert set(trackers["eval"].summary["tables_md"]) == {"T2", "T3"}
    assert (tmp_path / "family" / "models" / "sorm" / "value_head.safetensors").is_file()
