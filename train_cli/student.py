"""`glore-train sft | sample | eval-student`: the student policy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from glore_engine.evaluation.student import EvalStudentConfig
from glore_engine.labelling.orm_data import SampleConfig
from glore_engine.training.student import StudentConfig

from .common import (
    config_options,
    echo_metrics,
    engine_ready,
    friendly_errors,
    open_store,
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
    store = open_store(ctx)
    with store.run("sft", name=config.base, config=to_dict(config)) as run:
        folder = run_dir(run.id, "sft", out)
        run.set_output_dir(folder)
        model_dir, result = train_student(config, folder, tracker=run, resume=resume, run_id=run.id)
        run.set_summary({"model": str(model_dir), "final_loss": result.final_loss})
    click.echo(
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
    from glore_engine.formats import student_prompt
    from glore_engine.tasks.answers import extract_answer, is_correct

    config = resolve_config(SampleConfig, config_file, pop_config_flags(SampleConfig, flags))
    engine_ready()
    store = open_store(ctx)
    with store.run("sample", name=config.model, config=to_dict(config)) as run:
        backend, problems = _policy_and_problems(config)
        prompts = [student_prompt(p.question) for p in problems]
        with click.progressbar(length=len(prompts), label="sampling") as bar:
            backend.progress = lambda done, total: bar.update(done - bar.pos)
            outputs = backend.generate(
                prompts,
                n=config.n,
                temperature=config.temperature,
                max_new_tokens=config.max_new_tokens,
                seed=config.seed,
                calculator=config.calculator,
            )
        path = out_file or str(run_dir(run.id, "sample", None) / "samples.jsonl")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        run.set_output_dir(str(Path(path).resolve().parent))
        correct = 0
        with open(path, "w") as fh:
            for problem, samples in zip(problems, outputs):
                graded = [
                    {
                        "text": s.text,
                        "answer": extract_answer(s.text),
                        "correct": is_correct(s.text, problem.answer),
                        "logprob": s.logprob,
                        "n_tokens": s.n_tokens,
                        "finished": s.finished,
                    }
                    for s in samples
                ]
                correct += sum(g["correct"] for g in graded)
                fh.write(
                    json.dumps(
                        {
                            "problem_id": problem.id,
                            "question": problem.question,
                            "gold": problem.answer,
                            "samples": graded,
                        }
                    )
                    + "\n"
                )
        stats = backend.stats
        metrics = {
            "sample_accuracy": correct / max(len(problems) * config.n, 1),
            "samples": stats.samples,
            "generated_tokens": stats.generated_tokens,
            "tokens_per_s": stats.tokens_per_second,
            "samples_per_s": stats.samples / max(stats.seconds, 1e-9),
        }
        run.log_metrics(metrics)
        run.log_artifact("samples", path)
    echo_metrics(f"run {run.id}: {len(problems)} problems x {config.n} samples -> {path}", metrics)


@click.command("eval-student")
@config_options(EvalStudentConfig)
@click.pass_context
@friendly_errors
def eval_student(ctx, config_file, **flags) -> None:
    """Greedy accuracy and pass@k of a policy, overall and by number of steps."""
    from glore_engine.config import to_dict
    from glore_engine.evaluation.student import evaluate_student

    config = resolve_config(EvalStudentConfig, config_file, pop_config_flags(EvalStudentConfig, flags))
    engine_ready()
    store = open_store(ctx)
    with store.run("eval-student", name=config.model, config=to_dict(config)) as run:
        backend, problems = _policy_and_problems(config)
        result = evaluate_student(
            backend,
            problems,
            k=config.k,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            calculator=config.calculator,
        )
        metrics = result.metrics()
        metrics["tokens_per_s"] = backend.stats.tokens_per_second
        run.log_metrics(metrics)
        run.set_summary({"greedy_accuracy": result.greedy_accuracy, f"pass@{config.k}": result.pass_at_k})
    echo_metrics(f"run {run.id}: {config.model} on {config.data}/{config.split}", metrics)


def _policy_and_problems(config):
    """The sampling backend of config.model and the problems to run it on (at its task's difficulty)."""
    from glore_engine.generation.loading import open_policy_backend
    from glore_engine.tasks.model_task import load_eval_problems

    backend, _, _ = open_policy_backend(config.model, config.backend, config.batch_size, config.device)
    problems = load_eval_problems(config.data, config.split, config.limit, config.data_seed, config.model)
    return backend, problems


COMMANDS = [sft, sample, eval_student]
