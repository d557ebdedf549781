"""`glore-train import`: drafts from any model in, as a case set that Results, Annotate and Export open."""

from __future__ import annotations

import click

from glore_engine.pipeline import CRITIQUE_THRESHOLD

from .common import engine_ready, friendly_errors, open_store


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--family", help="score the drafts with this family's ORM and SORM (a family folder)")
@click.option("--orm", "orm_path", help="score with this ORM checkpoint (with --sorm)")
@click.option("--sorm", "sorm_path", help="score with this SORM checkpoint (with --orm)")
@click.option(
    "--threshold",
    default=CRITIQUE_THRESHOLD,
    show_default=True,
    help="SORM score below which a step is the first error",
)
@click.option("--name", help="name of the case set (default: the file's name)")
@click.pass_context
@friendly_errors
def import_drafts(ctx, path, family, orm_path, sorm_path, threshold, name) -> None:
    """Import drafts (JSONL or CSV: question, draft, optional gold, model, id; or GSM8K's question/answer).

    Each draft is split into steps by the pipeline's rule, graded when the gold is known, and scored
    with --family (or --orm and --sorm) when given, else stored unscored for annotation. Bad rows are
    reported by line number and left out; the cases are stored in one transaction."""
    from pathlib import Path

    from glore_engine.drafts import file_kind, import_drafts, load_scorers
    from glore_engine.tracking import progress_bar

    source = Path(path)
    if not source.is_file():
        raise click.BadParameter(f"{path}: no such file", param_hint="'PATH'")
    file_kind(source)  # a wrong suffix fails before a run is opened
    if not 0.0 <= threshold <= 1.0:
        raise click.BadParameter(f"{threshold} is not between 0 and 1", param_hint="'--threshold'")
    scorers = None
    if family or orm_path or sorm_path:
        engine_ready()
        scorers = load_scorers(family, orm_path, sorm_path)
    config = {"file": str(source.resolve()), "family": family, "orm": orm_path, "sorm": sorm_path}
    config["threshold"] = threshold
    store = open_store(ctx)
    bar = progress_bar(0, "scoring drafts", scorers is not None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    with store.run("import", name=name or source.name, config=config) as run, bar:
        report = import_drafts(source, run, scorers, threshold, progress=progress)
    for line in report.lines():
        click.echo(line)
    click.echo(f"case set: run {run.id} (open it in glore-app's Results and Annotate tabs, or export it)")
    click.echo(f"  glore-train export --run {run.id} --format processbench --out labels.jsonl")


COMMANDS = [import_drafts]
