"""glore-train orm | sorm | eval-rm | export: tiny reward models, label reuse and its checks, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glore_engine.models.checkpoint import read_card

TRAIN = ("--max-steps", 2, "--batch-size", 2, "--warmup-steps", 1, "--log-every", 1)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, student):
    """An ORM run that samples the student, then a SORM run that reuses its samples and labels them."""
    from _pytest.monkeypatch import MonkeyPatch
    from cli_helpers import Cli

    mp = MonkeyPatch()
    cli = Cli(tmp_path_factory.mktemp("reward"), mp)
    orm_out, sorm_out = cli.root / "orm", cli.root / "sorm"
    cli(
        "orm",
        "--base",
        student,
        "--sample-n-questions",
        3,
        "--sample-n",
        2,
        "--sample-max-new-tokens",
        10,
        "--sample-shard-size",
        2,
        "--no-mixed-only",
        *TRAIN,
        "--out",
        orm_out,
    )
    cli(
        "sorm",
        "--base",
        student,
        "--samples",
        orm_out / "orm-data",
        "--label-k",
        2,
        "--label-max-new-tokens",
        6,
        *TRAIN,
        "--out",
        sorm_out,
    )
    yield cli, orm_out, sorm_out
    mp.undo()


def children(cli, run_id):
    with cli.store() as store:
        return store.children(run_id)


def test_orm_samples_as_a_child_run_and_trains(sampled, student):
    cli, orm_out, _ = sampled
    run = cli.last("orm")
    assert run.status == "FINISHED" and run.output_dir == str(orm_out)
    (child,) = children(cli, run.id)
    assert child.kind == "orm-data" and child.status == "FINISHED" and child.output_dir == str(orm_out / "orm-data")
    records = [json.loads(line) for line in (orm_out / "orm-data" / "orm-data.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(sum(s["count"] for s in r["samples"]) == 2 for r in records)
    card = read_card(orm_out / "model")
    assert card.role == "orm" and card.base == student and card.run_id == run.id
    assert run.summary["model"] == str(orm_out / "model")
    with cli.store() as store:
        assert store.artifacts(child.id)[0].kind == "orm-data"
        (model,) = store.artifacts(run.id)
        metrics = store.metric_series(run.id)
    assert model.kind == "model" and model.bytes > 0 and len(model.sha256) == 64
    assert "train/loss" in metrics and metrics["data/questions"][0][1] == 3


def test_sorm_reuses_samples_and_labels_them_in_a_child_run(sampled):
    cli, _orm_out, sorm_out = sampled
    run = cli.last("sorm")
    assert run.status == "FINISHED"
    (child,) = children(cli, run.id)  # no sampling child: --samples was reused
    assert child.kind == "sorm-labels" and child.status == "FINISHED"
    assert (sorm_out / "sorm-labels" / "sorm-labels.jsonl").is_file()
    assert not (sorm_out / "orm-data").exists()
    assert read_card(sorm_out / "model").role == "sorm"
    manifest = json.loads((sorm_out / "sorm-labels" / "manifest.json").read_text())
    assert manifest["kind"] == "sorm-labels" and manifest["config"]["k"] == 2


def test_sorm_reuses_a_labels_folder(cli, crafted, student, tmp_path):
    cli("sorm", "--base", student, "--labels", crafted / "sorm-labels", *TRAIN, "--out", tmp_path / "sorm")
    run = cli.last("sorm")
    assert run.status == "FINISHED" and children(cli, run.id) == []
    assert read_card(tmp_path / "sorm" / "model").role == "sorm"


def test_orm_reuses_mixed_samples(cli, crafted, student, tmp_path):
    cli("orm", "--base", student, "--samples", crafted / "orm-data", *TRAIN, "--out", tmp_path / "orm")
    run = cli.last("orm")
    assert run.status == "FINISHED" and children(cli, run.id) == []
    with cli.store() as store:
        assert store.metric_series(run.id)["data/questions"][0][1] == 6  # every crafted question is mixed


def test_labels_from_another_tokenizer_are_a_clear_error(cli, crafted, other_student, tmp_path):
    result = cli(
        "sorm", "--base", other_student, "--labels", crafted / "sorm-labels", *TRAIN, "--out", tmp_path / "sorm", code=1
    )
    assert "labels belong to the student that sampled them" in result.output and "Traceback" not in result.output
    assert cli.last("sorm").status == "FAILED"
    result = cli("orm", "--base", other_student, "--samples", crafted / "orm-data", *TRAIN, code=1)
    assert "made with tokenizer" in result.output


def test_a_folder_that_is_not_stage_data_is_a_clear_error(cli, crafted, student, tmp_path):
    assert "no manifest.json" in cli("orm", "--base", student, "--samples", tmp_path, *TRAIN, code=1).output
    result = cli("sorm", "--base", student, "--labels", crafted / "orm-data", *TRAIN, code=1)
    assert "holds orm-data data, not sorm-labels" in result.output


def test_orm_refuses_labels(cli, crafted, student):
    result = cli("orm", "--base", student, "--labels", crafted / "sorm-labels", code=2)
    assert "--labels is for the SORM" in result.output
    assert cli.runs() == []


def test_orm_without_a_base_is_a_clear_usage_error(cli, crafted):
    result = cli("orm", "--samples", crafted / "orm-data", *TRAIN, code=2)
    assert "--base" in result.output and not cli.runs("orm")


def test_eval_rm_builds_table_t1(cli, tiny_family, crafted):
    result = cli(
        "eval-rm",
        "--rm",
        f"ORM={tiny_family / 'orm'}",
        "--rm",
        f"SORM={tiny_family / 'sorm'}",
        "--labels",
        crafted / "sorm-labels",
    )
    run = cli.last("eval-rm")
    assert run.status == "FINISHED" and run.config["models"] == {
        "ORM": str(tiny_family / "orm"),
        "SORM": str(tiny_family / "sorm"),
    }
    table = run.summary["tables_md"]["T1"]
    assert table in result.output and "| ORM |" in table and "| SORM |" in table
    assert "T1 on 12 distinct held-out samples of 6 questions" in table
    with cli.store() as store:
        metrics = {m.key for m in store.metrics(run.id)}
    assert {"ORM/final_accuracy", "SORM/first_error/f1", "random sample/best_of_n"} <= metrics


def test_eval_rm_needs_a_student_or_labels(cli, tiny_family):
    assert "pass --student" in cli("eval-rm", "--rm", tiny_family / "orm", code=2).output


def test_export_labels_round_trip(cli, crafted, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "exports" / "trl.jsonl"
    result = cli("export", "--labels", crafted / "sorm-labels", "--format", "trl", "--out", out)
    assert "wrote 12 rows" in result.output
    ds = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    labelled = [json.loads(line) for line in (crafted / "sorm-labels" / "sorm-labels.jsonl").read_text().splitlines()]
    assert len(ds) == 12 and ds["completions"] == [r["steps"] for r in labelled]
    assert all(len(y) == len(s) == len(c) for y, s, c in zip(ds["labels"], ds["soft_labels"], ds["completions"]))
    assert ds[0]["labels"] == [True] * len(labelled[0]["steps"])
    run = cli.last("export")
    assert run.status == "FINISHED"
    with cli.store() as store:
        (artifact,) = store.artifacts(run.id)
        assert store.metric_series(run.id)["rows"][0][1] == 12
    assert Path(artifact.path) == out and artifact.bytes == out.stat().st_size


@pytest.mark.parametrize("fmt", ["processbench", "math-shepherd"])
def test_export_labels_other_formats(cli, crafted, tmp_path, fmt):
    out = tmp_path / f"{fmt}.jsonl"
    cli("export", "--labels", crafted / "sorm-labels", "--format", fmt, "--out", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    if fmt == "processbench":
        assert {r["label"] for r in rows if r["final_answer_correct"]} == {-1}
        assert all(r["label"] >= 0 for r in rows if not r["final_answer_correct"])


def test_export_annotations_of_an_eval_run(cli, tmp_path):
    case = {
        "index": 0,
        "problem_id": "p0",
        "question": "Q?",
        "gold": "2",
        "draft": "a = 1\n#### 3",
        "data": {"steps": ["a = 1\n#### 3"]},
        "draft_correct": False,
    }
    with cli.store() as store:
        with store.run("eval", name="t") as run:
            store.add_cases(run.id, [case])
        (row,) = store.cases(run.id)
        store.save_annotation(row.id, step_ratings=[-1], first_error_step=0, verdict="found_error")
    out = tmp_path / "ann.jsonl"
    result = cli("export", "--run", run.id, "--format", "prm800k", "--out", out)
    assert "wrote 1 rows" in result.output and len(out.read_text().splitlines()) == 1
    assert json.loads(out.read_text())["label"]["first_error_index"] == 0


def test_export_of_a_run_that_does_not_exist_is_refused(cli, tmp_path):
    result = cli("export", "--run", 999999, "--format", "csv", "--out", tmp_path / "x.csv", code=2)
    assert "no run with id 999999" in result.output and not (tmp_path / "x.csv").exists()


def test_export_needs_exactly_one_source(cli, crafted, tmp_path):
    assert "exactly one of" in cli("export", "--format", "trl", "--out", tmp_path / "x.jsonl", code=2).output
    assert (
        "exactly one of"
        in cli(
            "export",
            "--labels",
            crafted / "sorm-labels",
            "--run",
            1,
            "--format",
            "trl",
            "--out",
            tmp_path / "x.jsonl",
            code=2,
        ).output
    )


def test_export_unknown_formats_are_clear_errors(cli, crafted, tmp_path):
    result = cli("export", "--labels", crafted / "sorm-labels", "--format", "prm800k", "--out", tmp_path / "x", code=2)
    assert "'prm800k' is not a format for labels (choose from trl, processbench, math-shepherd)" in result.output
    with cli.store() as store, store.run("eval", name="t") as run:
        pass
    result = cli("export", "--run", run.id, "--format", "parquet", "--out", tmp_path / "y", code=2)
    assert "'parquet' is not a format for annotations" in result.output and "prm800k" in result.output
    assert [r.kind for r in cli.runs()] == ["eval"]  # no export run was opened


def test_a_rerun_without_resume_samples_afresh(cli, student, tmp_path):
    """Without --resume the data stages start over: shards of an earlier run in the same --out are not reused."""
    out = tmp_path / "orm"
    args = (
        "orm",
        "--base",
        student,
        "--sample-n-questions",
        2,
        "--sample-max-new-tokens",
        6,
        "--no-mixed-only",
        *TRAIN,
        "--out",
        out,
    )
    cli(*args, "--sample-n", 2)
    cli(*args, "--sample-n", 3)
    records = [json.loads(line) for line in (out / "orm-data" / "orm-data.jsonl").read_text().splitlines()]
    assert [r["n_samples"] for r in records] == [3, 3]
    assert json.loads((out / "orm-data" / "manifest.json").read_text())["config"]["n"] == 3


def test_resume_continues_the_data_stages(cli, student, tmp_path, monkeypatch):
    """A run killed while labelling resumes: sampled shards and finished labelling shards are reused."""
    import glore_engine.labelling.rollouts as rollouts

    out = tmp_path / "sorm"
    args = (
        "sorm",
        "--base",
        student,
        "--sample-n-questions",
        3,
        "--sample-n",
        2,
        "--sample-max-new-tokens",
        8,
        "--label-k",
        2,
        "--label-max-new-tokens",
        4,
        "--label-shard-size",
        2,
        *TRAIN,
        "--out",
        out,
    )
    real = rollouts.label_solutions
    calls, killed = [], []

    def dies_on_second_shard(*a, **k):
        calls.append(1)
        if len(calls) == 2 and not killed:
            killed.append(1)
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(rollouts, "label_solutions", dies_on_second_shard)
    cli(*args, code=130)
    assert cli.last("sorm").status == "INTERRUPTED"
    shards = sorted((out / "sorm-labels" / "shards").glob("shard-*.jsonl"))
    assert [p.name for p in shards] == ["shard-00000.jsonl"]
    first_shard = shards[0].read_text()
    samples = (out / "orm-data" / "orm-data.jsonl").read_text()
    calls.clear()
    cli(*args, "--resume")
    assert cli.last("sorm").status == "FINISHED"
    assert (out / "orm-data" / "orm-data.jsonl").read_text() == samples  # samples reused, not redrawn
    assert (out / "sorm-labels" / "shards" / "shard-00000.jsonl").read_text() == first_shard
    assert len(calls) == len(list((out / "sorm-labels" / "shards").glob("shard-*.jsonl"))) - 1  # only the missing


def folder_files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_resume_with_another_label_config_is_refused(cli, student, tmp_path, monkeypatch):
    """Labelling killed with k=4 and resumed with k=2 and another shard size: refused, nothing changed."""
    import glore_engine.labelling.rollouts as rollouts

    out = tmp_path / "sorm"
    args = ("sorm", "--base", student, "--sample-n-questions", 3, "--sample-n", 2, "--sample-max-new-tokens", 8)
    args += ("--label-max-new-tokens", 4, *TRAIN, "--out", out)
    real, calls, killed = rollouts.label_solutions, [], []

    def dies_on_second_shard(*a, **k):
        calls.append(1)
        if len(calls) == 2 and not killed:
            killed.append(1)
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(rollouts, "label_solutions", dies_on_second_shard)
    cli(*args, "--label-k", 4, "--label-shard-size", 2, code=130)
    assert [p.name for p in (out / "sorm-labels" / "shards").glob("shard-*.jsonl")] == ["shard-00000.jsonl"]
    before = folder_files(out)
    calls.clear()
    result = cli(*args, "--label-k", 2, "--label-shard-size", 4, "--resume", code=1)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "another config (k 4 -> 2; shard_size 2 -> 4)" in errors[0]
    assert calls == [] and folder_files(out) == before  # refused before any rollout: nothing overwritten
    assert cli.last("sorm").status == "FAILED"
    cli(*args, "--label-k", 4, "--label-shard-size", 2, "--resume")  # the same settings resume
    assert cli.last("sorm").status == "FINISHED"


def test_a_resumed_training_reports_the_uninterrupted_loss_and_refuses_fewer_steps(
    cli, crafted, student, tmp_path, monkeypatch
):
    """The loss average survives a resume; a resume with --max-steps below the saved step is refused."""
    import glore_engine.training.reward as reward

    train = ("--max-steps", 4, "--batch-size", 2, "--warmup-steps", 1, "--log-every", 1)
    args = ("orm", "--base", student, "--samples", crafted / "orm-data")
    cli(*args, *train, "--out", tmp_path / "straight")
    straight = read_card(tmp_path / "straight" / "model").metrics["train_loss"]

    real, fired = reward.index_stream, []

    def killed_at_step_3(n, batch_size, step, seed, *grouping):
        if step == 3 and not fired:
            fired.append(step)
            raise KeyboardInterrupt
        return real(n, batch_size, step, seed, *grouping)

    monkeypatch.setattr(reward, "index_stream", killed_at_step_3)
    out = tmp_path / "resumed"
    cli(*args, *train, "--out", out, code=130)
    result = cli(*args, *train[:1], 2, *train[2:], "--out", out, "--resume", code=1)
    assert "at step 3, past max_steps 2: resume with --max-steps 3 or more" in result.output
    assert not (out / "model").exists()  # no model card, and no NaN in one
    cli(*args, *train, "--out", out, "--resume")
    resumed = read_card(out / "model").metrics["train_loss"]
    assert resumed == pytest.approx(straight, rel=1e-5)
