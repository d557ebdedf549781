"""`glore-train demo`: the training recipe on the synthetic task, each stage a child run of one demo run."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import click

from glore_engine.recipe import RECIPES

from .common import engine_ready, friendly_errors, one_process, open_store


def _commit() -> str:
    """The checkout's commit, with "-dirty" when its tracked files differ from it (the card says so)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def command_line(argv: list[str]) -> str:
    """The command as typed, global options (--db) included, for the bundle's card."""
    return " ".join(["glore-train", *(shlex.quote(a) for a in argv[1:])])


def _stage_printer(order: list[str]):
    from rich.console import Console

    console = Console(stderr=True)

    def on_stage(stage, status, info):
        n = order.index(stage) + 1 if stage in order else 0
        if status == "start":
            console.rule(f"[bold][{n}/{len(order)}] {stage}")
        elif status == "cached":
            console.print(f"[dim][{n}/{len(order)}] {stage}: done earlier, skipped[/dim]")
        else:
            console.print(f"[green][{n}/{len(order)}] {stage}: done in {info.get('seconds', 0):.0f} s[/green]")

    return on_stage


@click.command("demo")
@click.option(
    "--recipe",
    "recipe_name",
    type=click.Choice(RECIPES),
    help="demo (default): the bundled family, about 40 min on a quiet 2-core CPU; "
    "tiny: a smoke test of every stage on tiny models (about 30 s of CPU time)",
)
@click.option("--preset", "preset", type=click.Choice(RECIPES), hidden=True, help="old name of --recipe")
@click.option("--out", help="working folder (default: <GLORE_HOME>/demo-<recipe>)")
@click.option("--resume", is_flag=True, help="skip finished stages and continue the unfinished one")
@click.option("--bundle-dir", help="install the fp16 family here when done (glore_engine/bundled ships it)")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="seed of every stage (the bundled family: 0)",
)
@click.pass_context
@friendly_errors
def demo(ctx, recipe_name, preset, out, resume, bundle_dir, seed) -> None:
    """Run the whole GLoRe loop from nothing: student, ORM data, SORM labels, ORM, SORM, refiners, T1-T3.

    The default recipe builds the bundled family (about 40 min on a quiet 2-core CPU); --recipe tiny is a smoke test."""
    from glore_db import default_home
    from glore_engine.recipe import RecipeRunner, recipe

    if recipe_name and preset and recipe_name != preset:
        raise click.UsageError("--preset is the old name of --recipe: give one of them")
    name = recipe_name or preset or "demo"
    folder = Path(out) if out else default_home() / f"demo-{name}"
    if folder.exists() and any(folder.glob("*/done.json")) and not resume:
        raise click.UsageError(f"{folder} holds an earlier demo: pass --resume to continue it, or another --out")
    steps = recipe(name, seed)
    one_process("demo")
    if name == "tiny":
        click.secho(SMOKE_TEST, fg="yellow", err=True)
    engine_ready()
    config = {"recipe": name, "seed": seed, "out": str(folder), "bundle_dir": bundle_dir}
    order = steps.stages(install=bool(bundle_dir))
    command = command_line(sys.argv)
    with open_store(ctx).run("demo", name=name, config=config, output_dir=str(folder)) as run:
        runner = RecipeRunner(
            steps, folder, run, _stage_printer(order), bundle_dir=bundle_dir, commit=_commit(), command=command
        )
        outputs = runner.run()
        tables = {
            title: outputs[s][k]
            for title, s, k in (
                ("EI", "ei", "EI"),
                ("T1", "eval-rm", "T1"),
                ("T2", "eval", "T2"),
                ("T3", "eval", "T3"),
                ("SVAMP T1", "svamp-eval-rm", "T1"),
                ("SVAMP T2", "svamp-eval", "T2"),
                ("SVAMP T3", "svamp-eval", "T3"),
            )
            if k in outputs.get(s, {})
        }
        run.set_summary({"tables_md": tables, "stage_seconds": {k: v.get("seconds") for k, v in outputs.items()}})
    for title, table in tables.items():
        click.echo(f"\n{title}\n{table}")
    click.echo("\n" + where_it_went(name, outputs, bundle_dir, open_store(ctx).url))


SMOKE_TEST = (
    "tiny: a smoke test. Every stage runs on tiny models and a few questions, so the tables show that "
    "the code works, not what GLoRe does (that is `glore-train demo`, or the bundled family)."
)


def where_it_went(name: str, outputs: dict, bundle_dir: str | None, db: str) -> str:
    """The closing lines: where the family is, and the exact command that opens it and its cases in the app
    (absolute paths and the store's url: the app may start from another folder)."""
    from glore_db.engine import display_url

    family = bundle_dir or outputs.get("family", {}).get("folder", "")
    family = str(Path(family).resolve()) if family else ""
    eval_run = outputs.get("eval", {}).get("run_id")
    app = "glore-app" + (f" --models {shlex.quote(family)}" if family else "") + f" --db {shlex.quote(display_url(db))}"
    lines = [f"The family is in {family}" + (f"; its evaluated cases are run {eval_run}" if eval_run else "") + "."]
    lines.append(f"Open it in the app (Inspect; Results and Annotate for the cases): {app}")
    if name == "tiny":
        lines.append(SMOKE_TEST)
    return "\n".join(lines)


COMMANDS = [demo]
