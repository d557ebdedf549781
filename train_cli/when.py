"""`glore-train when`: accuracy against the ORM threshold below which drafts are refined."""

from __future__ import annotations

import click

from .common import friendly_errors, open_store


@click.command("when")
@click.option("--run", "run_id", type=int, help="evaluation run (default: the newest eval run)")
@click.option(
    "--thresholds",
    default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
    show_default=True,
    help="ORM thresholds to try, comma-separated, each in 0..1",
)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="also write the curve to this CSV file")
@click.pass_context
@friendly_errors
def when(ctx, run_id, thresholds, csv_path) -> None:
    """Refine only when ORM(draft) < t, then rerank, vs always refine: from an eval run's stored cases."""
    from glore_engine.evaluation.when import parse_thresholds, run_curve, when_table, write_csv

    store = open_store(ctx)
    values = parse_thresholds(thresholds)
    if run_id is None:
        runs = store.list_runs(kind="eval", status="FINISHED", limit=1)
        if not runs:
            raise click.ClickException("no finished eval run in the store: run `glore-train eval` first")
        run_id = runs[0].id
    try:
        store.get_run(run_id)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    points = run_curve(store, run_id, values)
    click.echo(f"run {run_id}\n\n" + when_table(points))
    if csv_path:
        click.echo(f"\ncurve written to {write_csv(points, csv_path)}")


COMMANDS = [when]
