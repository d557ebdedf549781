"""`glore-train ei`: Expert Iteration on the SFT student, one child run per round."""

from __future__ import annotations

import click

from glore_engine.training.expert_iteration import EIConfig

from .common import (
    config_options,
    engine_ready,
    friendly_errors,
    one_process,
    open_store,
    pop_config_flags,
    resolve_config,
    run_dir,
)


@click.command("ei")
@config_options(EIConfig)
@click.option("--out", help="output folder (default: <GLORE_HOME>/runs/<id>-ei)")
@click.option("--resume", is_flag=True, help="skip finished rounds; continue the unfinished one at its shard or step")
@click.pass_context
@friendly_errors
def ei(ctx, config_file, out, resume, **flags) -> None:
    """Expert Iteration: sample K per training question at T=1, keep the correct, fine-tune; repeat."""
    from pathlib import Path

    from glore_engine.config import to_dict
    from glore_engine.training.expert_iteration import expert_iteration

    config = resolve_config(EIConfig, config_file, pop_config_flags(EIConfig, flags))
    if resume and not out:
        raise click.UsageError("--resume needs --out (the folder of the run to continue)")
    if out and not resume and any(Path(out).glob("round-*/done.json")):
        raise click.UsageError(f"{out} holds finished EI rounds: pass --resume to continue, or another --out")
    one_process("ei")
    engine_ready()
    store = open_store(ctx)
    with store.run("ei", name=config.student, config=to_dict(config)) as run:
        folder = run_dir(run.id, "ei", out)
        run.set_output_dir(folder)
        result = expert_iteration(config, folder, tracker=run)  # a child run per round
    click.echo(f"\nEI student saved to {result.model} (run {run.id})\n")
    click.echo(result.table(config.eval_k))


COMMANDS = [ei]
