"""`glore-train sft | sample | eval-student`: the student policy."""

from __future__ import annotations

from pathlib import Path

import click

from glore_engine.evaluation.student import EvalStudentConfig
from glore_engine.labelling.orm_data import SampleConfig
from glore_engine.training.student import StudentConfig

from .common import (
    config_options,
    echo,
    echo_metrics,
    engine_ready,
    friendly_errors,
    open_run,
    pop_config_flags,
    resolve_config,
    run_dir,
)


@click.command("sft")
@config_options(StudentConfig)
@click.option("--out", help="output folder (default: <GLORE_HOME>/runs/<id>-sft)")
@click.option("--resume", is_flag=True, help="continue from the training state saved in --out")
@click.pass_context
@friendly_errors
def sft(ctx, config_file, out, resume, **flags) -> None:
    """Train the student: SFT on gold solutions, loss on solution tokens, cosine schedule with warm-up."""
    from glore_engine.config import to_dict
    from glore_engine.training.student import train_student

    config = resolve_config(StudentConfig, config_file, pop_config_flags(StudentConfig, flags))
    if resume and not out:
        raise click.UsageError("--resume needs --out (the folder of the run to continue)")
    engine_ready()
    with open_run(ctx, "sft", name=config.base, config=to_dict(config)) as run:
        folder = run_dir(run.id, "sft", out)
        run.set_output_dir(folder)
        model_dir, result = train_student(config, folder, tracker=run, resume=resume)
    echo(
        f"student saved to {model_dir} (run {run.id}, loss {result.final_loss:.4f}, "
        f"{result.tokens / max(result.seconds, 1e-9):,.0f} tokens/s)"
    )


@click.command("sample")
@config_options(SampleConfig)
@click.option("--out", "out_file", help="JSONL file of samples (default: in the run's folder)")
@click.pass_context
@friendly_errors
def sample(ctx, config_file, out_file, **flags) -> None:
    """Sample n solutions per problem from a policy and grade them against the gold answers."""
    from glore_engine.config import to_dict
    from glore_engine.labelling.orm_data import sample_to_file

    config = resolve_config(SampleConfig, config_file, pop_config_flags(SampleConfig, flags))
    engine_ready()
    with open_run(ctx, "sample", name=config.model, config=to_dict(config)) as run:
        path = Path(out_file) if out_file else run_dir(run.id, "sample", None) / "samples.jsonl"
        run.set_output_dir(str(path.resolve().parent))
        records, metrics = sample_to_file(config, path, tracker=run)
    echo_metrics(f"run {run.id}: {len(records)} problems x {config.n} samples -> {path}", metrics)


@click.command("eval-student")
@config_options(EvalStudentConfig)
@click.pass_context
@friendly_errors
def eval_student(ctx, config_file, **flags) -> None:
    """Greedy accuracy and pass@k of a policy, overall and by number of steps."""
    from glore_engine.config import to_dict
    from glore_engine.evaluation.student import run_student_eval

    config = resolve_config(EvalStudentConfig, config_file, pop_config_flags(EvalStudentConfig, flags))
    engine_ready()
    with open_run(ctx, "eval-student", name=config.model, config=to_dict(config)) as run:
        _, metrics = run_student_eval(config, tracker=run)
    echo_metrics(f"run {run.id}: {config.model} on {config.data}/{config.split}", metrics)


COMMANDS = [sft, sample, eval_student]
