"""Data stages: ORM samples and SORM labels with manifests, reuse checks, evaluation problems from cards."""

from __future__ import annotations

import json
import shutil

import pytest

from glore_engine.errors import DataError
from glore_engine.labelling.manifest import MANIFEST, check_compatible, load_records, read_manifest
from glore_engine.labelling.orm_data import OrmDataConfig, load_orm_data, make_orm_data
from glore_engine.labelling.rollouts import SormLabelConfig, load_sorm_labels, make_sorm_labels
from glore_engine.records import GradedSample, QuestionSamples
from glore_engine.tracking import NullTracker


@pytest.fixture(scope="module")
def stage_data(tiny_family, tmp_path_factory):
    """ORM samples and SORM labels of the tiny student, made once."""
    folder = tmp_path_factory.mktemp("stages")
    student = str(tiny_family / "student")
    tracker = NullTracker()
    config = OrmDataConfig(student=student, n_questions=4, n=3, max_new_tokens=12, shard_size=3, seed=1)
    records = make_orm_data(config, folder / "orm-data", tracker=tracker, progress=False)
    labels = SormLabelConfig(k=2, max_new_tokens=8, shard_size=4, seed=2)
    labelled = make_sorm_labels(labels, student, records, folder / "sorm-labels", tracker=tracker, progress=False)
    return folder, student, records, labelled, tracker


def test_make_orm_data_writes_records_shards_and_a_manifest(stage_data):
    folder, student, records, _, tracker = stage_data
    assert len(records) == 4 and all(r.n_samples == 3 for r in records)
    assert all(sum(s.count for s in r.samples) == 3 for r in records)
    assert sorted(p.name for p in (folder / "orm-data" / "shards").glob("shard-*.jsonl")) == [
        "shard-00000.jsonl",
        "shard-00001.jsonl",
    ]
    manifest = json.loads((folder / "orm-data" / MANIFEST).read_text())
    assert manifest["kind"] == "orm-data" and manifest["student"] == student
    assert manifest["config"]["n"] == 3 and manifest["stats"]["questions"] == 4
    assert manifest["stats"]["samples"] == 12 and manifest["stats"]["sampling/samples"] == 12
    assert load_orm_data(folder / "orm-data", base=student) == records
    assert ("orm-data", str(folder / "orm-data" / "orm-data.jsonl"), {"questions": 4}) in tracker.artifacts
    assert tracker.last("data/questions") == 4


def test_make_sorm_labels_labels_every_distinct_sample(stage_data):
    folder, _student, records, labelled, tracker = stage_data
    with_steps = [s for r in records for s in r.samples if s.steps]
    assert len(labelled) == len(with_steps)
    for sol in labelled:
        assert len(sol.rollouts) == len(sol.steps) - 1 and len(sol.results) == len(sol.steps)
        assert all(p.k == 2 for p in sol.rollouts)
    manifest = json.loads((folder / "sorm-labels" / MANIFEST).read_text())
    assert manifest["kind"] == "sorm-labels" and manifest["stats"]["solutions"] == len(labelled)
    assert manifest["stats"]["rollouts"] == 2 * manifest["stats"]["prefixes"]
    assert load_sorm_labels(folder / "sorm-labels" / "sorm-labels.jsonl") == labelled
    assert tracker.last("data/solutions") == len(labelled)


def test_labelling_nothing_is_a_data_error(tiny_family, tmp_path):
    records = [
        QuestionSamples(
            problem_id="p", question="Q", gold="1", samples=[GradedSample(text="", steps=[], correct=False)]
        )
    ]
    with pytest.raises(DataError, match="no sampled solutions"):
        make_sorm_labels(SormLabelConfig(), str(tiny_family / "student"), records, tmp_path, progress=False)


def test_read_manifest_errors(stage_data, tmp_path):
    folder = stage_data[0]
    with pytest.raises(DataError, match="no manifest.json"):
        read_manifest(tmp_path, "orm-data")
    with pytest.raises(DataError, match="holds sorm-labels data, not orm-data"):
        read_manifest(folder / "sorm-labels", "orm-data")
    half = tmp_path / "half"
    shutil.copytree(folder / "orm-data", half)
    (half / "orm-data.jsonl").unlink()
    with pytest.raises(DataError, match="unfinished run"):
        read_manifest(half, "orm-data")


def test_labels_from_another_tokenizer_are_refused(stage_data, tmp_path):
    from engine_helpers import make_policy

    from glore_engine.models.causal_lm import save_causal_lm
    from glore_engine.models.checkpoint import Card
    from glore_engine.testing import tiny_tokenizer

    folder, _student, *_ = stage_data
    other_tok = tiny_tokenizer(n_problems=40, seed=3)
    other = save_causal_lm(make_policy(other_tok), other_tok, tmp_path / "other", Card(role="policy", base="tiny"))
    with pytest.raises(DataError, match="labels belong to the student that sampled them"):
        load_records(folder / "sorm-labels", "sorm-labels", base=str(other))


def test_labels_from_another_task_are_refused(stage_data, tmp_path):
    folder, student, *_ = stage_data
    harder = tmp_path / "harder"
    shutil.copytree(student, harder)
    card = json.loads((harder / "glore_card.json").read_text())
    card["config"] = {"task_min_steps": 3, "task_max_steps": 5}
    (harder / "glore_card.json").write_text(json.dumps(card))
    manifest = json.loads((folder / "orm-data" / MANIFEST).read_text())
    with pytest.raises(DataError, match="another task"):
        check_compatible(manifest, str(harder), "samples")
    check_compatible(manifest, student, "samples")  # its own student is fine


def test_eval_problems_follow_the_students_task(tmp_path):
    from glore_engine.models.checkpoint import Card, write_card
    from glore_engine.tasks.model_task import load_eval_problems, task_config_from_card, task_dict
    from glore_engine.tasks.synthetic import TaskConfig

    assert task_config_from_card(None) == TaskConfig()
    write_card(tmp_path, Card(role="policy", base="tiny", config={"task_min_steps": 4, "task_max_steps": 4}))
    config = task_config_from_card(tmp_path)
    assert (config.min_steps, config.max_steps) == (4, 4)
    assert task_dict(config)["task_min_steps"] == 4
    probs = load_eval_problems("synthetic", "test", 5, 0, tmp_path)
    assert len(probs) == 5 and all(p.n_steps == 4 for p in probs)


def test_a_resume_with_another_config_is_refused_and_a_fresh_start_discards_the_shards(tiny_family, tmp_path):
    student = str(tiny_family / "student")
    config = OrmDataConfig(student=student, n_questions=2, n=1, max_new_tokens=4, shard_size=1)
    make_orm_data(config, tmp_path, progress=False)
    kept = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    more = OrmDataConfig(student=student, n_questions=2, n=2, max_new_tokens=4, shard_size=1)
    with pytest.raises(DataError, match=r"another config \(n 1 -> 2\)"):
        make_orm_data(more, tmp_path, progress=False)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == kept  # nothing overwritten
    assert [r.n_samples for r in make_orm_data(more, tmp_path, progress=False, resume=False)] == [2, 2]
    assert json.loads((tmp_path / MANIFEST).read_text())["config"]["n"] == 2


def test_sorm_labels_resumed_with_another_k_are_refused(stage_data, tmp_path):
    folder, student, records, _, _ = stage_data
    out = tmp_path / "sorm-labels"
    shutil.copytree(folder / "sorm-labels", out)
    with pytest.raises(DataError, match=r"k 2 -> 3;.*shard_size 4 -> 8"):
        labels = SormLabelConfig(k=3, max_new_tokens=8, shard_size=8, seed=2)
        make_sorm_labels(labels, student, records, out, progress=False)
    with pytest.raises(DataError, match=r"\(items "):  # the same config over other samples
        labels = SormLabelConfig(k=2, max_new_tokens=8, shard_size=4, seed=2)
        make_sorm_labels(labels, student, records[1:], out, progress=False)


def killed_on_call(monkeypatch, module, name, call):
    """Make module.name raise KeyboardInterrupt on its `call`-th call (a kill in the middle of a stage)."""
    real, calls = getattr(module, name), []

    def dies(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dies)
    return lambda: monkeypatch.setattr(module, name, real)


COST_KEYS = ("samples", "generated_tokens")


def test_the_manifest_cost_of_a_resumed_stage_counts_the_whole_stage(stage_data, tmp_path, monkeypatch):
    """Killed in its second shard and resumed, each stage's manifest counts every shard, as if never killed."""
    import glore_engine.labelling.orm_data as orm_data
    import glore_engine.labelling.rollouts as rollouts

    folder, student, records, _, _ = stage_data
    config = OrmDataConfig(student=student, n_questions=4, n=3, max_new_tokens=12, shard_size=3, seed=1)
    revive = killed_on_call(monkeypatch, orm_data, "sample_questions", 2)
    with pytest.raises(KeyboardInterrupt):
        make_orm_data(config, tmp_path / "orm-data", progress=False)
    revive()
    assert make_orm_data(config, tmp_path / "orm-data", progress=False) == records

    labels = SormLabelConfig(k=2, max_new_tokens=8, shard_size=4, seed=2)
    revive = killed_on_call(monkeypatch, rollouts, "label_solutions", 2)
    with pytest.raises(KeyboardInterrupt):
        make_sorm_labels(labels, student, records, tmp_path / "sorm-labels", progress=False)
    revive()
    make_sorm_labels(labels, student, records, tmp_path / "sorm-labels", progress=False)

    for kind, prefix in (("orm-data", "sampling"), ("sorm-labels", "rollouts")):
        straight = json.loads((folder / kind / MANIFEST).read_text())["stats"]
        resumed = json.loads((tmp_path / kind / MANIFEST).read_text())["stats"]
        assert resumed[f"{prefix}/samples"] > 0
        assert {k: resumed[f"{prefix}/{k}"] for k in COST_KEYS} == {k: straight[f"{prefix}/{k}"] for k in COST_KEYS}


def test_reuse_or_sample_reuses_a_folder_or_samples_as_a_child_stage(stage_data, tmp_path):
    from glore_engine.labelling.orm_data import reuse_or_sample

    folder, student, records, _, _ = stage_data
    config = OrmDataConfig(student=student, n_questions=2, n=1, max_new_tokens=4, shard_size=1)
    root = NullTracker()
    assert reuse_or_sample(config, tmp_path, root, reuse=folder / "orm-data", progress=False) == records
    assert root.children == []  # nothing sampled
    fresh = reuse_or_sample(config, tmp_path, root, progress=False)
    ((kind, child),) = root.children
    assert kind == "orm-data" and child.last("data/questions") == 2 and len(fresh) == 2
    assert load_orm_data(tmp_path / "orm-data", base=student) == fresh


def test_reuse_or_label_samples_then_labels_or_reuses_either(stage_data, tmp_path):
    from glore_engine.labelling.rollouts import reuse_or_label

    folder, student, records, labelled, _ = stage_data
    samples = OrmDataConfig(student=student, n_questions=2, n=1, max_new_tokens=4, shard_size=1)
    labels = SormLabelConfig(k=2, max_new_tokens=8, shard_size=4, seed=2)  # as stage_data labelled them
    root = NullTracker()
    assert reuse_or_label(labels, samples, tmp_path, root, reuse=folder / "sorm-labels", progress=False) == labelled
    again = reuse_or_label(labels, samples, tmp_path / "a", root, reuse_samples=folder / "orm-data", progress=False)
    assert again == labelled  # the same samples with the same label config give the same labels
    assert [kind for kind, _ in root.children] == ["sorm-labels"]
    reuse_or_label(labels, samples, tmp_path / "b", root, progress=False)
    assert [kind for kind, _ in root.children] == ["sorm-labels", "orm-data", "sorm-labels"]
    assert (tmp_path / "b" / "orm-data" / "orm-data.jsonl").is_file()


def test_every_shard_has_its_own_seed():
    from glore_engine.labelling.shards import shard_seed

    seeds = {shard_seed(seed, k) for seed in range(10) for k in range(1000)}
    assert len(seeds) == 10 * 1000 and shard_seed(0, 0) == 0
