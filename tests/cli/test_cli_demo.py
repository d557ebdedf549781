"""e2e: `glore-train demo --recipe tiny` runs every stage as a finished child run, then `--resume` skips them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glore_engine.recipe import recipe

# stages that write files and log them as artifacts, and the artifact kinds each logs
ARTIFACTS = {
    "student": {"model"},
    "ei": {"model"},
    "verifier": {"model"},
    "family": {"family"},
    "orm-data": {"orm-data"},
    "sorm-labels": {"sorm-labels"},
    "orm": {"model"},
    "sorm": {"model"},
    "refiner-global": {"model"},
    "refiner-local": {"model"},
    "test-labels": {"orm-data", "sorm-labels"},
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from _pytest.monkeypatch import MonkeyPatch
    from cli_helpers import Cli

    mp = MonkeyPatch()
    cli = Cli(tmp_path_factory.mktemp("demo"), mp)
    out, bundle = cli.root / "demo", cli.root / "bundle"
    first = cli("demo", "--recipe", "tiny", "--out", out, "--bundle-dir", bundle)
    yield cli, out, bundle, first
    mp.undo()


@pytest.mark.e2e
def test_every_stage_is_a_finished_child_run_with_its_artifacts(demo):
    cli, out, _, _ = demo
    run = cli.last("demo")
    assert run.status == "FINISHED" and run.output_dir == str(out)
    with cli.store() as store:
        children = store.children(run.id)
        assert [c.kind for c in children] == recipe("tiny").stages(install=True)
        for child in children:
            assert child.status == "FINISHED", (child.kind, child.error)
            assert child.parent_id == run.id and child.output_dir == str(out / child.kind)
            assert (out / child.kind / "done.json").is_file()
            artifacts = store.artifacts(child.id)
            assert {a.kind for a in artifacts} == ARTIFACTS.get(child.kind, set()), child.kind
            for a in artifacts:
                assert Path(a.path).exists() and a.bytes > 0 and len(a.sha256) == 64
        metrics = {c.kind: {m.key for m in store.metrics(c.id)} for c in children}
    assert "train/loss" in metrics["student"] and "train/loss" in metrics["orm"]
    assert "greedy_accuracy" in metrics["eval-student"] and "T3/n_problems" in metrics["eval"]
    assert "SORM/step_accuracy" in metrics["eval-rm"] or "SORM/auc" in metrics["eval-rm"]


@pytest.mark.e2e
def test_tables_and_cases_are_stored(demo):
    cli, _, _, first = demo
    run = cli.last("demo")
    tables = run.summary["tables_md"]
    assert set(tables) == {"EI", "T1", "T2", "T3"}
    assert "| ORM |" in tables["T1"] and "| SORM |" in tables["T1"]
    assert "| draft + global + local (ORM) = GLoRe |" in tables["T3"]
    for table in tables.values():
        assert table in first.output
    assert set(run.summary["stage_seconds"]) == set(recipe("tiny").stages(install=True))
    n = recipe("tiny").eval.limit
    with cli.store() as store:
        (evaluation,) = [c for c in store.children(run.id) if c.kind == "eval"]
        assert store.count_cases(evaluation.id) == n
        assert evaluation.summary["cases"] == n and set(evaluation.summary["tables_md"]) == {"T2", "T3"}


@pytest.mark.e2e
def test_the_family_is_installed_with_its_card(demo):
    from glore_engine.bundled import has_bundle
    from glore_engine.family import GloreModels
    from glore_engine.models.checkpoint import read_card

    _, _out, bundle, _ = demo
    assert has_bundle(bundle)
    card = json.loads((bundle / "bundle.json").read_text())
    assert card["EI"] and card["T1"] and card["T2"] and card["T3"] and card["bytes"] > 0
    assert card["SVAMP T1"] is None  # the tiny recipe has no SVAMP columns
    assert "# Bundled GLoRe demo family" in (bundle / "BUNDLE.md").read_text()
    assert read_card(bundle / "orm").role == "orm" and read_card(bundle / "refiner-local").role == "refiner-local"
    models = GloreModels.from_folder(bundle)
    assert models.paths["student"] == str(bundle / "student")


@pytest.mark.e2e
def test_a_rerun_needs_resume_and_resume_skips_every_stage(demo):
    cli, out, bundle, _ = demo
    before = {p: p.read_text() for p in out.glob("*/done.json")}
    result = cli("demo", "--recipe", "tiny", "--out", out, "--bundle-dir", bundle, code=2)
    assert "--resume" in result.output
    # --preset is the old name of --recipe, still accepted
    result = cli("demo", "--preset", "tiny", "--out", out, "--bundle-dir", bundle, "--resume")
    assert result.output.count("done earlier, skipped") == len(recipe("tiny").stages(install=True))
    run = cli.last("demo")
    assert run.status == "FINISHED"
    with cli.store() as store:
        assert store.children(run.id) == []  # nothing ran again
    assert set(run.summary["tables_md"]) == {"EI", "T1", "T2", "T3"}
    assert {p: p.read_text() for p in out.glob("*/done.json")} == before


@pytest.mark.e2e
def test_the_tiny_demo_says_it_is_a_smoke_test_and_how_to_open_its_family(demo):
    cli, _, bundle, first = demo
    assert "tiny: a smoke test" in first.output
    assert f"glore-app --models {bundle.resolve()} --db {cli.url}" in first.output
    assert f"The family is in {bundle.resolve()}; its evaluated cases are run" in first.output
