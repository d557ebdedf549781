"""glore-train refine | eval: tiny refiners from reused data, T2/T3 on a tiny family with stored cases."""

from __future__ import annotations

import json
import shutil

import pytest

from glore_engine.models.checkpoint import read_card

TRAIN = ("--max-steps", 2, "--batch-size", 2, "--warmup-steps", 1, "--log-every", 1)


def metrics(cli, run_id):
    with cli.store() as store:
        return {m.key: m.value for m in store.metrics(run_id)}


def test_refine_global_from_reused_samples(cli, crafted, student, tmp_path):
    result = cli(
        "refine",
        "--kind",
        "global",
        "--base",
        student,
        "--samples",
        crafted / "orm-data",
        *TRAIN,
        "--out",
        tmp_path / "global",
    )
    assert "global refiner saved to" in result.output and "6 examples" in result.output
    run = cli.last("refine")
    assert run.status == "FINISHED" and run.name == "global" and run.config["train"]["kind"] == "global"
    card = read_card(tmp_path / "global" / "model")
    assert card.role == "refiner-global" and card.base == student and card.metrics["examples"] == 6
    assert metrics(cli, run.id)["data/global_examples"] == 6
    assert run.summary["examples"] == 6 and run.summary["model"] == str(tmp_path / "global" / "model")


def test_refine_local_from_reused_labels(cli, crafted, student, tmp_path):
    cli(
        "refine",
        "--kind",
        "local",
        "--base",
        student,
        "--labels",
        crafted / "sorm-labels",
        *TRAIN,
        "--out",
        tmp_path / "local",
    )
    run = cli.last("refine")
    assert run.status == "FINISHED" and run.name == "local"
    assert read_card(tmp_path / "local" / "model").role == "refiner-local"
    n = metrics(cli, run.id)["data/local_examples"]
    assert n == 6  # one triple per wrong sample of the crafted data
    with cli.store() as store:
        (artifact,) = store.artifacts(run.id)
    assert artifact.kind == "model" and artifact.meta["role"] == "refiner-local"


def test_refine_with_a_bad_kind_is_a_clear_error(cli, crafted, student):
    result = cli("refine", "--kind", "both", "--base", student, "--samples", crafted / "orm-data", code=2)
    assert "refiner kind must be 'global' or 'local'" in result.output and cli.runs() == []


def test_refine_local_with_labels_of_another_student_is_refused(cli, crafted, other_student):
    result = cli(
        "refine", "--kind", "local", "--base", other_student, "--labels", crafted / "sorm-labels", *TRAIN, code=1
    )
    assert "labels belong to the student that sampled them" in result.output
    assert cli.last("refine").status == "FAILED"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_family):
    from _pytest.monkeypatch import MonkeyPatch
    from cli_helpers import Cli

    mp = MonkeyPatch()
    cli = Cli(tmp_path_factory.mktemp("eval"), mp)
    result = cli("eval", "--family", tiny_family, "--limit", 4, "--best-of", 2, "--seed", 3)
    yield cli, result
    mp.undo()


def test_eval_stores_one_case_per_problem(evaluated, tiny_family):
    cli, result = evaluated
    run = cli.last("eval")
    assert run.status == "FINISHED"
    with cli.store() as store:
        assert store.count_cases(run.id) == 4
        cases = store.cases(run.id)
    assert [c.index for c in cases] == [0, 1, 2, 3]
    assert all(c.question and c.gold is not None and "candidates" in c.data for c in cases)
    assert "4 cases stored in run" in result.output
    assert f"glore-train when --run {run.id}" in result.output
    assert run.config["models"]["student"] == str(tiny_family / "student") and run.config["best_of"] == 2


def test_eval_puts_t2_and_t3_in_the_summary(evaluated):
    cli, result = evaluated
    run = cli.last("eval")
    tables = run.summary["tables_md"]
    assert set(tables) == {"T2", "T3"} and run.summary["cases"] == 4
    assert "T3: end-to-end accuracy on 4 problems" in tables["T3"]
    for row in ("greedy draft", "best-of-3 (ORM)", "draft + global + local (ORM) = GLoRe", "oracle (any of the three)"):
        assert f"| {row} |" in tables["T3"]
    assert tables["T2"] in result.output and tables["T3"] in result.output
    m = metrics(cli, run.id)
    assert m["T3/n_problems"] == 4 and 0 <= m["T3/greedy draft"] <= m["T3/oracle (any of the three)"] <= 1
    assert run.output_dir and run.output_dir.endswith(f"{run.id:04d}-eval")


def test_when_on_the_cases_eval_stored_agrees_with_t3(evaluated):
    cli, _ = evaluated
    run = cli.last("eval")
    m = metrics(cli, run.id)
    output = cli("when", "--run", run.id, "--thresholds", "0").output
    greedy, glore = m["T3/greedy draft"], m["T3/draft + global + local (ORM) = GLoRe"]
    assert f"| ORM < 0 | {100 * greedy:.1f} | 0.0 |" in output  # t = 0 refines nothing
    assert f"| always | {100 * glore:.1f} | 100.0 |" in output


def test_where_studies_the_wrong_drafts_of_an_eval_run(cli, tiny_family):
    from glore_engine.family import GloreModels
    from glore_engine.pipeline import GlorePipeline, to_case
    from glore_engine.tasks.synthetic import generate

    probs = generate("test", 4, seed=2)
    drafts = [p.solution if i == 0 else p.solution.rsplit("#### ", 1)[0] + "#### 0" for i, p in enumerate(probs)]
    pipeline = GlorePipeline(GloreModels.from_folder(tiny_family), max_new_tokens=16)
    results = pipeline.run_batch([p.question for p in probs], [p.answer for p in probs], drafts=drafts)
    with cli.store() as store, store.run("eval", name="synthetic") as run:
        store.add_cases(run.id, [to_case(r, i).to_json() for i, r in enumerate(results)])
    result = cli("where", "--run", run.id, "--family", tiny_family, "--k", 2)
    assert f"eval run {run.id}: 3 wrong drafts, V* from 2 rollouts per prefix" in result.stdout
    for rule in ("SORM < 0.5", "SORM < 0.5, else the weakest step", "V* (rollouts)", "(global refinement, no mark)"):
        assert f"| {rule} |" in result.stdout
    where = cli.last("where")
    assert where.config["eval_run"] == run.id and where.summary["wrong_drafts"] == 3
    assert metrics(cli, where.id)["where/vstar/exact"] == 1.0


def test_where_studies_the_rules_it_is_given_and_always_the_vstar_mark(cli, tiny_family):
    from glore_engine.family import GloreModels
    from glore_engine.pipeline import GlorePipeline, to_case
    from glore_engine.tasks.synthetic import generate

    probs = generate("test", 3, seed=2)
    drafts = [p.solution.rsplit("#### ", 1)[0] + "#### 0" for p in probs]
    pipeline = GlorePipeline(GloreModels.from_folder(tiny_family), max_new_tokens=16)
    results = pipeline.run_batch([p.question for p in probs], [p.answer for p in probs], drafts=drafts)
    with cli.store() as store, store.run("eval", name="synthetic") as run:
        store.add_cases(run.id, [to_case(r, i).to_json() for i, r in enumerate(results)])
    rules = ("--rule", "sorm<0.7,weakest", "--rule", "orm<0.6,weakest,back=1")
    result = cli("where", "--run", run.id, "--family", tiny_family, "--k", 2, *rules)
    rows = [line.split(" | ")[0].lstrip("| ") for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        "SORM < 0.7, else the weakest step",
        "ORM < 0.6, else the weakest step, 1 step earlier",
        "V* (rollouts)",
        "(global refinement, no mark)",
    ]
    assert cli.last("where").config["rules"] == ["sorm_0.7_weakest", "orm_0.6_weakest_back1", "vstar"]
    bad = cli("where", "--run", run.id, "--family", tiny_family, "--rule", "sorm<2", code=1)
    assert "mark rule 'sorm<2': the threshold must be within 0..1" in bad.output


def test_where_without_cases_is_a_one_line_error(cli):
    with cli.store() as store, store.run("eval", name="synthetic") as run:
        pass
    assert f"run {run.id} has no evaluation cases" in cli("where", "--run", run.id, code=1).output


def test_eval_with_five_explicit_models(cli, tiny_family):
    f = tiny_family
    cli(
        "eval",
        "--student",
        f / "student",
        "--orm",
        f / "orm",
        "--sorm",
        f / "sorm",
        "--global-refiner",
        f / "refiner-global",
        "--local-refiner",
        f / "refiner-local",
        "--limit",
        1,
        "--best-of",
        1,
    )
    run = cli.last("eval")
    assert run.status == "FINISHED" and run.summary["cases"] == 1


def test_a_member_given_beside_family_replaces_that_member(cli, tiny_family, tmp_path):
    """An ablation: `--family F --sorm S` evaluates F's family with SORM S, not F's SORM silently."""
    ablated = tmp_path / "sorm-ablated"
    shutil.copytree(tiny_family / "sorm", ablated)
    cli("eval", "--family", tiny_family, "--sorm", ablated, "--limit", 1, "--best-of", 1)
    models = cli.last("eval").config["models"]
    assert models["sorm"] == str(ablated)
    assert models["orm"] == str(tiny_family / "orm") and models["student"] == str(tiny_family / "student")


def test_eval_with_some_of_the_five_models_is_a_usage_error(cli, tiny_family):
    result = cli("eval", "--student", tiny_family / "student", "--orm", tiny_family / "orm", code=2)
    assert "all five of" in result.output


def test_eval_on_a_family_with_mismatched_tokenizers_is_a_clear_error(cli, tiny_family, other_student, tmp_path):
    family = tmp_path / "family"
    shutil.copytree(tiny_family, family)
    shutil.rmtree(family / "refiner-local")
    shutil.copytree(other_student, family / "refiner-local")
    card = json.loads((family / "refiner-local" / "glore_card.json").read_text())
    (family / "refiner-local" / "glore_card.json").write_text(json.dumps({**card, "role": "refiner-local"}))
    result = cli("eval", "--family", family, "--limit", 1, code=1)
    assert "do not share one tokenizer" in result.output and "Traceback" not in result.output


def test_eval_without_a_family_or_bundle_says_how_to_get_one(cli, tmp_path, monkeypatch):
    import glore_engine.bundled as bundled

    real = bundled.require_bundle
    monkeypatch.setattr(bundled, "require_bundle", lambda: real(tmp_path))
    result = cli("eval", "--limit", 1, code=1)
    assert "no model family in" in result.output and "glore-train demo" in result.output
