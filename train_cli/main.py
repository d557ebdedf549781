"""The `glore-train` command group. Each command family lives in its own module."""

from __future__ import annotations

import click

from . import demo, drafts, ei, refine, reward, runs, scale, student, when, where


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--db",
    envvar="GLORE_DB",
    help="run store: a SQLAlchemy URL or a SQLite file path (default: glore.db in $GLORE_HOME, else in this "
    "user's data folder)",
)
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """Train and evaluate the GLoRe family: student, ORM, SORM, global and local refiners."""
    ctx.ensure_object(dict)["db"] = db


for module in (student, ei, reward, refine, demo, drafts, runs, when, where, scale):
    for command in module.COMMANDS:
        cli.add_command(command)


if __name__ == "__main__":
    cli()
