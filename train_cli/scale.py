"""`glore-train merge`: join the parts of a data stage run apart (`--shard-index i --num-shards n`)."""

from __future__ import annotations

import click

from .common import echo, friendly_errors, open_store


@click.command("merge")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--from",
    "others",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="another part's stage folder (machines without a shared disk); repeatable",
)
@click.pass_context
@friendly_errors
def merge(ctx, folder, others) -> None:
    """Check that every shard of a sharded ORM-data / SORM-labels stage is there and made by one config,
    then write its records and manifest (identical to a one-process run with the same seed)."""
    from glore_engine.labelling.merge import merge_stage

    with open_store(ctx).run("merge", name=folder, config={"folder": folder, "from": list(others)}) as run:
        run.set_output_dir(folder)
        path, job = merge_stage(folder, list(others))
        run.log_metric("shards", job["shards"])
        run.log_artifact(job["kind"], str(path), {"items": job["items"]})
    echo(f"merged {job['shards']} shards ({job['items']} {job['kind']} records) into {path} (run {run.id})")


COMMANDS = [merge]
