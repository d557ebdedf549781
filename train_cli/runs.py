"""`glore-train runs list|show`: what ran, how it ended, what it measured and produced."""

from __future__ import annotations

import json

import click

from .common import friendly_errors, open_store, show_number


@click.group("runs")
def runs_group() -> None:
    """Browse the runs recorded in the store."""


@runs_group.command("list")
@click.option("--kind", help="only runs of this kind (sft, sample, orm, ...)")
@click.option(
    "--status", type=click.Choice(["RUNNING", "FINISHED", "FAILED", "INTERRUPTED"]), help="only runs that ended so"
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="newest runs to list")
@click.pass_context
@friendly_errors
def list_runs(ctx, kind, status, limit) -> None:
    """One line per run, newest first. A RUNNING run whose process stopped beating lists as INTERRUPTED."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("id", "kind", "name", "status", "started", "parent", "output"):
        table.add_column(col)
    for run in open_store(ctx).list_runs(kind=kind, status=status, limit=limit):
        table.add_row(
            str(run.id),
            run.kind,
            run.name or "",
            run.status,
            str(run.created_at)[:19],
            str(run.parent_id or ""),
            run.output_dir or "",
        )
    Console().print(table)


@runs_group.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@friendly_errors
def show_run(ctx, run_id, as_json) -> None:
    """Config, status, last value of every metric, artifacts and child runs of one run."""
    store = open_store(ctx)
    try:
        run = store.get_run(run_id)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    series = store.metric_series(run_id)
    last = {key: values[-1][1] for key, values in series.items() if values}
    artifacts = [
        {"kind": a.kind, "path": a.path, "bytes": a.bytes, "sha256": a.sha256} for a in store.artifacts(run_id)
    ]
    children = [{"id": c.id, "kind": c.kind, "status": c.status} for c in store.children(run_id)]
    info = {
        "id": run.id,
        "kind": run.kind,
        "name": run.name,
        "status": run.status,
        "error": run.error,
        "created_at": str(run.created_at),
        "finished_at": str(run.finished_at),
        "heartbeat_at": None if run.heartbeat_at is None else str(run.heartbeat_at),
        "output_dir": run.output_dir,
        "parent_id": run.parent_id,
        "config": run.config,
        "summary": run.summary,
        "metrics": last,
        "artifacts": artifacts,
        "children": children,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    shown = ("id", "kind", "name", "status", "error", "created_at", "finished_at", "heartbeat_at", "output_dir")
    for key in (*shown, "parent_id"):
        if info[key] not in (None, ""):
            click.echo(f"{key:12} {info[key]}")
    click.echo("config       " + json.dumps(run.config, default=str))
    for key, value in sorted(last.items()):
        click.echo(f"  {key:40} {show_number(value)}")
    for a in artifacts:
        click.echo(f"  artifact {a['kind']:10} {a['path']}  ({a['bytes']} bytes, sha256 {str(a['sha256'])[:12]})")
    for c in children:
        click.echo(f"  child run {c['id']} {c['kind']} {c['status']}")
    for table in (run.summary or {}).get("tables_md", {}).values():
        click.echo("\n" + table)


COMMANDS = [runs_group]
