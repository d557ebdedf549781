"""The foundation integration test: sft -> sample -> eval-student -> runs list / show, all in one store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """Run the three student commands once; later tests read the store they filled."""
    from _pytest.monkeypatch import MonkeyPatch
    from cli_helpers import Cli

    mp = MonkeyPatch()
    cli = Cli(tmp_path_factory.mktemp("journey"), mp)
    out = cli.root / "sft"
    sft = cli(
        "sft",
        "--base",
        "tiny",
        "--n-train",
        40,
        "--max-steps",
        4,
        "--batch-size",
        4,
        "--warmup-steps",
        1,
        "--log-every",
        2,
        "--save-every",
        2,
        "--out",
        out,
    )
    model = out / "model"
    sample = cli("sample", "--model", model, "--limit", 3, "--n", 2, "--max-new-tokens", 8, "--seed", 1)
    evaluation = cli("eval-student", "--model", model, "--limit", 3, "--k", 2, "--max-new-tokens", 8)
    yield cli, model, {"sft": sft, "sample": sample, "eval-student": evaluation}
    mp.undo()


def test_sft_trains_and_saves_a_policy(journey):
    cli, model, results = journey
    assert "student saved to" in results["sft"].output
    run = cli.last("sft")
    assert run.status == "FINISHED" and run.finished_at is not None and run.error is None
    assert run.config["max_steps"] == 4 and run.config["base"] == "tiny"
    assert run.summary["model"] == str(model) and run.output_dir == str(model.parent)
    from glore_engine.models.checkpoint import read_card

    card = read_card(model)
    assert card.role == "policy" and card.run_id == run.id and card.config["n_train"] == 40
    assert not (model.parent / "train_state").exists()
    with cli.store() as store:
        series = store.metric_series(run.id)
        (artifact,) = store.artifacts(run.id)
    assert [s for s, _ in series["train/loss"]] == [2, 4]
    assert series["model/parameters"][0][1] > 0
    assert artifact.kind == "model" and Path(artifact.path) == model.resolve()
    assert re.fullmatch(r"[0-9a-f]{64}", artifact.sha256) and artifact.bytes > 10_000


def test_sample_writes_graded_samples(journey):
    cli, model, _ = journey
    run = cli.last("sample")
    assert run.status == "FINISHED" and run.config["model"] == str(model)
    with cli.store() as store:
        (artifact,) = store.artifacts(run.id)
        metrics = {m.key: m.value for m in store.metrics(run.id)}
    rows = [json.loads(line) for line in Path(artifact.path).read_text().splitlines()]
    # ORM-data records: distinct samples with their multiplicity
    assert len(rows) == 3 and all(r["n_samples"] == 2 == sum(s["count"] for s in r["samples"]) for r in rows)
    assert {"text", "steps", "answer", "correct", "logprob", "n_tokens", "finished", "count"} <= set(
        rows[0]["samples"][0]
    )
    assert metrics["samples"] == 6 and 0 <= metrics["sample_accuracy"] <= 1
    assert metrics["generated_tokens"] == sum(s["n_tokens"] * s["count"] for r in rows for s in r["samples"])
    assert re.fullmatch(r"[0-9a-f]{64}", artifact.sha256) and artifact.bytes == Path(artifact.path).stat().st_size
    assert Path(artifact.path).parent == Path(cli.home, "runs", f"{run.id:04d}-sample").resolve()
    assert Path(run.output_dir).resolve() == Path(artifact.path).parent  # the run says where its files are


def test_eval_student_logs_accuracy_and_pass_at_k(journey):
    cli, _model, results = journey
    run = cli.last("eval-student")
    assert run.status == "FINISHED"
    assert set(run.summary) == {"greedy_accuracy", "pass@2"}
    with cli.store() as store:
        metrics = {m.key: m.value for m in store.metrics(run.id)}
    assert metrics["n_problems"] == 3 and "pass@2" in metrics and "greedy_accuracy" in metrics
    assert "greedy_accuracy" in results["eval-student"].output


def test_runs_list_shows_every_finished_run(journey):
    cli, _, _ = journey
    out = cli("runs", "list").output
    ids = {r.kind: r.id for r in cli.runs()}
    assert set(ids) == {"sft", "sample", "eval-student"}
    for kind, run_id in ids.items():
        assert re.search(rf"\b{run_id}\b.*{kind}.*FINISHED", out), out
    assert "RUNNING" not in out and "FAILED" not in out


def test_runs_show_has_config_metrics_and_artifacts(journey):
    cli, model, _ = journey
    run = cli.last("sft")
    text = cli("runs", "show", run.id).output
    assert "FINISHED" in text and "train/loss" in text and "artifact model" in text and "sha256" in text
    info = json.loads(cli("runs", "show", run.id, "--json").stdout)
    assert info["status"] == "FINISHED" and info["kind"] == "sft" and info["config"]["max_steps"] == 4
    assert "train/loss" in info["metrics"] and info["summary"]["model"] == str(model)
    (artifact,) = info["artifacts"]
    assert artifact["kind"] == "model" and artifact["bytes"] > 0 and len(artifact["sha256"]) == 64


def test_sft_resume_continues_the_saved_run(journey, tmp_path):
    """An sft run killed after its step-2 checkpoint resumes from it (same --out)."""
    cli, _, _ = journey
    import glore_engine.training.loop as loop

    out = tmp_path / "sft"
    original = loop._save_state
    calls = []

    def save_then_die(accelerator, workdir, step, *rest, **kwargs):
        original(accelerator, workdir, step, *rest, **kwargs)
        calls.append(step)
        if step == 2 and len(calls) == 1:
            raise KeyboardInterrupt

    loop._save_state = save_then_die
    try:
        cli(
            "sft",
            "--base",
            "tiny",
            "--n-train",
            40,
            "--max-steps",
            4,
            "--batch-size",
            4,
            "--save-every",
            2,
            "--log-every",
            1,
            "--out",
            out,
            code=130,
        )
    finally:
        loop._save_state = original
    assert cli.last("sft").status == "INTERRUPTED"
    assert json.loads((out / "train_state" / "step.json").read_text())["step"] == 2
    cli(
        "sft",
        "--base",
        "tiny",
        "--n-train",
        40,
        "--max-steps",
        4,
        "--batch-size",
        4,
        "--save-every",
        2,
        "--log-every",
        1,
        "--out",
        out,
        "--resume",
    )
    run = cli.last("sft")
    assert run.status == "FINISHED"
    with cli.store() as store:
        assert [s for s, _ in store.metric_series(run.id)["train/loss"]] == [3, 4]  # steps 1-2 were not redone
    assert (out / "model" / "model.safetensors").is_file()
