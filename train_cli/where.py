"""`glore-train where`: the local refiner's marks against the wrong drafts' real first errors."""

from __future__ import annotations

import click

from .common import echo, engine_ready, friendly_errors, open_run, open_store


@click.command("where")
@click.option("--run", "run_id", type=int, help="evaluation run whose cases to study (default: the newest eval run)")
@click.option("--family", help="family folder whose student labels and whose local refiner refines (default: bundled)")
@click.option("--local-refiner", help="another local refiner folder to try from the same marks")
@click.option("--k", default=8, show_default=True, type=click.IntRange(min=1), help="rollouts per prefix (V* labels)")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(min=0), help="rollouts' random seed")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    help="a marking rule to study instead of the default set, repeatable: CRITIC<THRESHOLD[,weakest][,back=N] "
    "with CRITIC sorm, orm or earlier (e.g. 'sorm<0.7,weakest'); the V* mark is always added",
)
@click.pass_context
@friendly_errors
def where(ctx, run_id, family, local_refiner, k, seed, rules) -> None:
    """Marks (SORM, ORM, V*) against the real first error of an eval run's wrong drafts; local fixes from each."""
    from dataclasses import replace

    from glore_engine.evaluation.where import DEFAULT_RULES, MarkRule, report_metrics, where_study, where_table
    from glore_engine.pipeline import GlorePipeline, result_from_dict

    chosen = [MarkRule.parse(r) for r in rules] if rules else list(DEFAULT_RULES)
    if not any(rule.critic == "vstar" for rule in chosen):
        chosen.append(MarkRule("vstar"))  # what a perfect critique buys: every table's reference row
    store = open_store(ctx)
    run_id = run_id if run_id is not None else _newest_eval(store)
    cases = store.cases(run_id, limit=None)
    if not cases:
        raise click.ClickException(f"run {run_id} has no evaluation cases: `glore-train eval` stores them")
    engine_ready()
    models = _family(family)
    if local_refiner:
        from glore_engine.generation.hf_backend import TransformersBackend
        from glore_engine.models.causal_lm import load_causal_lm

        lm, tok, _ = load_causal_lm(local_refiner, roles=("refiner-local",))
        models = replace(
            models, local_refiner=TransformersBackend(lm, tok), paths={**models.paths, "local": local_refiner}
        )
    results = [result_from_dict(c.data) for c in cases]
    config = {"eval_run": run_id, "models": models.paths, "k": k, "seed": seed, "rules": [r.key for r in chosen]}
    with open_run(ctx, "where", name=f"run {run_id}", config=config) as run:
        report = where_study(GlorePipeline(models, threshold=results[0].threshold), results, chosen, k=k, seed=seed)
        table = where_table(report)
        for name, value in report_metrics(report).items():
            run.log_metric(name, value)
        run.set_summary({"tables_md": {"where": table}, "wrong_drafts": report.n})
    echo(f"eval run {run_id}: {report.n} wrong drafts, V* from {k} rollouts per prefix\n\n{table}")


def _newest_eval(store) -> int:
    runs = store.list_runs(kind="eval", status="FINISHED", limit=1)
    if not runs:
        raise click.ClickException("no finished eval run in the store: run `glore-train eval` first")
    return runs[0].id


def _family(folder):
    from glore_engine.family import GloreModels

    if folder is None:
        from glore_engine.bundled import require_bundle

        folder = str(require_bundle())
    return GloreModels.from_folder(folder)


COMMANDS = [where]
