"""`glore-train demo`: the whole loop on the synthetic task, each stage a child run of one demo run."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .common import engine_ready, friendly_errors, open_store


class StageTracker:
    """A run handle that also stores evaluation cases (the engine's optional log_cases)."""

    def __init__(self, store, handle):
        self.store, self.handle, self.id = store, handle, handle.id

    def log_metric(self, key, value, step=None):
        self.handle.log_metric(key, value, step)

    def log_artifact(self, kind, path, meta=None):
        self.handle.log_artifact(kind, path, meta)

    def set_summary(self, summary):
        self.handle.set_summary(summary)

    def set_output_dir(self, path):
        self.handle.set_output_dir(path)

    def log_cases(self, cases):
        self.store.add_cases(self.id, cases)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@click.command("demo")
@click.option(
    "--preset",
    type=click.Choice(["demo", "tiny"]),
    default="demo",
    show_default=True,
    help="demo: the bundled family (about an hour on 2 CPU cores); tiny: every stage in minutes",
)
@click.option("--out", help="working folder (default: <GLORE_HOME>/demo-<preset>)")
@click.option("--resume", is_flag=True, help="skip finished stages and continue the unfinished one")
@click.option("--bundle-dir", help="install the fp16 family here when done (glore_engine/bundled ships it)")
@click.option("--seed", default=0, show_default=True)
@click.pass_context
@friendly_errors
def demo(ctx, preset, out, resume, bundle_dir, seed) -> None:
    """Run the whole GLoRe loop from nothing: student, ORM data, SORM labels, ORM, SORM, refiners, T1-T3."""
    from rich.console import Console

    from glore_db import default_home
    from glore_engine.demo import STAGES, Demo, demo_preset

    console = Console(stderr=True)
    folder = Path(out) if out else default_home() / f"demo-{preset}"
    if folder.exists() and any(folder.glob("*/done.json")) and not resume:
        raise click.UsageError(f"{folder} holds an earlier demo: pass --resume to continue it, or another --out")
    engine_ready()
    store = open_store(ctx)
    config = {"preset": preset, "seed": seed, "out": str(folder), "bundle_dir": bundle_dir}
    order = [s for s in STAGES if s != "install" or bundle_dir]

    def on_stage(stage, status, info):
        n = order.index(stage) + 1 if stage in order else 0
        if status == "start":
            console.rule(f"[bold][{n}/{len(order)}] {stage}")
        elif status == "cached":
            console.print(f"[dim][{n}/{len(order)}] {stage}: done earlier, skipped[/dim]")
        else:
            console.print(f"[green][{n}/{len(order)}] {stage}: done in {info.get('seconds', 0):.0f} s[/green]")

    with store.run("demo", name=preset, config=config, output_dir=str(folder)) as run:

        @contextmanager
        def child(kind, name=None, stage_config=None):
            with run.child(kind, name=name, config=stage_config) as handle:
                handle.set_output_dir(str(folder / kind))
                yield StageTracker(store, handle)

        command = "glore-train demo " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "glore-train demo"
        runner = Demo(
            demo_preset(preset, seed),
            folder,
            child=child,
            on_stage=on_stage,
            bundle_dir=bundle_dir,
            commit=_commit(),
            command=command,
        )
        outputs = runner.run()
        tables = {
            k: outputs[s][k] for s, k in (("eval-rm", "T1"), ("eval", "T2"), ("eval", "T3")) if k in outputs.get(s, {})
        }
        run.set_summary({"tables_md": tables, "stage_seconds": {k: v.get("seconds") for k, v in outputs.items()}})
    for table in tables.values():
        click.echo("\n" + table)


COMMANDS = [demo]
