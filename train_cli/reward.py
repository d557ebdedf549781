"""`glore-train orm | sorm | eval-rm | export`: the reward models, their labels and table T1."""

from __future__ import annotations

import click

from glore_engine.stages import OrmDataConfig, SormLabelConfig
from glore_engine.training.reward import RewardConfig

from .common import config_options, engine_ready, friendly_errors, open_store, pop_config_flags, resolve_config, run_dir

SECTIONS = ("sample", "label")


def _configs(config_file, flags, role: str):
    from glore_engine.config import to_dict

    train = resolve_config(
        RewardConfig, config_file, pop_config_flags(RewardConfig, flags), extra={"role": role}, sections=SECTIONS
    )
    sample = resolve_config(
        OrmDataConfig,
        config_file,
        pop_config_flags(OrmDataConfig, flags, "sample"),
        extra={"student": train.base},
        section="sample",
    )
    if not sample.student:
        raise click.UsageError("give --base (the backbone) and, if another model samples, --sample-student")
    label = resolve_config(
        SormLabelConfig, config_file, pop_config_flags(SormLabelConfig, flags, "label"), section="label"
    )
    return train, sample, label, {"train": to_dict(train), "sample": to_dict(sample), "label": to_dict(label)}


def orm_records(run, sample, samples_path, folder, resume=True):
    """Reuse --samples, or sample the student now (as a child run); resume reuses finished shards."""
    from glore_engine.config import to_dict
    from glore_engine.stages import load_records, make_orm_data

    if samples_path:
        return load_records(samples_path, "orm-data", base=sample.student)
    with run.child("orm-data", name=sample.student, config=to_dict(sample)) as child:
        child.set_output_dir(str(folder / "orm-data"))
        return make_orm_data(sample, folder / "orm-data", tracker=child, resume=resume)


def sorm_labels(run, sample, label, labels_path, samples_path, folder, resume=True):
    """Reuse --labels, or roll out from every prefix of the ORM samples (as a child run)."""
    from glore_engine.config import to_dict
    from glore_engine.stages import load_records, make_sorm_labels

    if labels_path:
        return load_records(labels_path, "sorm-labels", base=sample.student)
    records = orm_records(run, sample, samples_path, folder, resume)
    with run.child("sorm-labels", name=sample.student, config=to_dict(label)) as child:
        child.set_output_dir(str(folder / "sorm-labels"))
        return make_sorm_labels(label, sample.student, records, folder / "sorm-labels", tracker=child, resume=resume)


def _train(run, train, data, folder, resume):
    from glore_engine.training.reward import train_reward_model

    model_dir, result = train_reward_model(train, data, folder, tracker=run, resume=resume, run_id=run.id)
    run.set_summary({"model": str(model_dir), "final_loss": result.final_loss})
    click.echo(
        f"{train.role.upper()} saved to {model_dir} (run {run.id}, loss {result.final_loss:.4f}, "
        f"{result.seconds / 60:.1f} min)"
    )


def _reward_command(role: str, doc: str):
    @click.command(role, help=doc)
    @config_options(RewardConfig, skip=("role",))
    @config_options(OrmDataConfig, prefix="sample", with_file=False)
    @config_options(SormLabelConfig, prefix="label", with_file=False)
    @click.option("--samples", "samples_path", help="reuse an ORM data folder (from an earlier orm/sorm run)")
    @click.option("--labels", "labels_path", help="sorm: reuse a SORM labels folder")
    @click.option("--out", help="output folder (default: <GLORE_HOME>/runs/<id>-<role>)")
    @click.option("--resume", is_flag=True, help="continue sampling, labelling and training saved in --out")
    @click.pass_context
    @friendly_errors
    def command(ctx, config_file, samples_path, labels_path, out, resume, **flags):
        train, sample, label, config = _configs(config_file, flags, role)
        if resume and not out:
            raise click.UsageError("--resume needs --out (the folder of the run to continue)")
        if role == "orm" and labels_path:
            raise click.UsageError("--labels is for the SORM; the ORM learns from --samples")
        engine_ready()
        store = open_store(ctx)
        with store.run(role, name=train.base, config=config) as run:
            folder = run_dir(run.id, role, out)
            run.set_output_dir(str(folder))
            if role == "orm":
                data = orm_records(run, sample, samples_path, folder, resume)
            else:
                data = sorm_labels(run, sample, label, labels_path, samples_path, folder, resume)
            _train(run, train, data, folder, resume)

    return command


orm = _reward_command(
    "orm", "Train the ORM: sample N solutions per question, label by final answer, train the value head."
)
sorm = _reward_command("sorm", "Train the SORM: K rollouts from every step prefix give V* labels; train on them.")


@click.command("eval-rm")
@click.option("--rm", "rms", multiple=True, required=True, help="NAME=PATH of a reward model (repeatable)")
@click.option("--student", help="the policy that samples held-out solutions (not needed with --labels)")
@click.option("--labels", "labels_path", help="held-out SORM labels folder (else built now from test samples)")
@click.option("--threshold", default=0.5, show_default=True, help="step score below which a step is an error")
@click.option("--consistency/--no-consistency", default=True, show_default=True)
@click.option("--propagate/--no-propagate", default=True, show_default=True)
@config_options(OrmDataConfig, skip=("student",), prefix="sample")
@config_options(SormLabelConfig, prefix="label", with_file=False)
@click.pass_context
@friendly_errors
def eval_rm(ctx, rms, student, labels_path, threshold, consistency, propagate, config_file, **flags) -> None:
    """Table T1: step-level and final-answer accuracy, AUC (pooled and within question), best-of-N, first-error F1."""
    from glore_engine.config import to_dict
    from glore_engine.labelling.postprocess import LabelRules
    from glore_engine.models.reward_model import RewardScorer, load_reward_model

    named = dict(_parse_named(r) for r in rms)
    sample = resolve_config(
        OrmDataConfig,
        config_file,
        pop_config_flags(OrmDataConfig, flags, "sample"),
        extra={"student": student or "", "split": "test", "n_questions": 300, "data_seed": 0},
        section="sample",
    )
    label = resolve_config(
        SormLabelConfig, config_file, pop_config_flags(SormLabelConfig, flags, "label"), section="label"
    )
    if not labels_path and not student:
        raise click.UsageError("pass --student (to sample held-out solutions) or --labels (to reuse them)")
    engine_ready()
    store = open_store(ctx)
    config = {
        "models": named,
        "threshold": threshold,
        "sample": to_dict(sample),
        "label": to_dict(label),
        "labels": labels_path,
        "consistency": consistency,
        "propagate": propagate,
    }
    with store.run("eval-rm", name=",".join(named), config=config) as run:
        folder = run_dir(run.id, "eval-rm", None)
        run.set_output_dir(str(folder))
        labelled = sorm_labels(run, sample, label, labels_path, None, folder)
        scorers = {}
        for name, path in named.items():
            model, tokenizer, _ = load_reward_model(path)
            scorers[name] = RewardScorer(model, tokenizer)
        rules = LabelRules(consistency=consistency, propagate=propagate, balance=True)
        _rows, table = evaluate_and_log(run, scorers, labelled, rules, threshold)
    click.echo(table)


def evaluate_and_log(run, scorers, labelled, rules, threshold):
    from glore_engine.evaluation.reward import evaluate_reward_models

    rows, table = evaluate_reward_models(scorers, labelled, rules, threshold)
    for row in rows:
        for key, value in row.metrics().items():
            run.log_metric(f"{row.name}/{key}", value)
    run.set_summary({"tables_md": {"T1": table}})
    return rows, table


def _parse_named(spec: str) -> tuple[str, str]:
    if "=" in spec:
        name, path = spec.split("=", 1)
        return name.strip(), path.strip()
    from pathlib import Path

    return Path(spec).name, spec


@click.command("export")
@click.option("--labels", "labels_path", help="a SORM labels folder to export")
@click.option("--run", "run_id", type=int, help="an evaluation run whose annotated cases to export")
@click.option(
    "--format",
    "fmt",
    required=True,
    help="labels: trl | processbench | math-shepherd; annotations: trl | processbench | prm800k | csv",
)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
@click.option("--annotator", help="annotations: only this annotator's")
@click.pass_context
@friendly_errors
def export(ctx, labels_path, run_id, fmt, out_path, annotator) -> None:
    """Export SORM labels (TRL stepwise, ProcessBench, Math-Shepherd) or annotated cases (also PRM800K, CSV)."""
    if bool(labels_path) == (run_id is not None):
        raise click.UsageError("pass exactly one of --labels DIR or --run ID")
    from glore_db import EXPORT_FORMATS
    from glore_engine.exports import FORMATS as LABEL_FORMATS

    known = LABEL_FORMATS if labels_path else EXPORT_FORMATS
    if fmt not in known:
        what = "labels" if labels_path else "annotations"
        raise click.BadParameter(
            f"{fmt!r} is not a format for {what} (choose from {', '.join(known)})", param_hint="'--format'"
        )
    store = open_store(ctx)
    with store.run("export", name=fmt, config={"labels": labels_path, "run": run_id, "format": fmt}) as run:
        if labels_path:
            from glore_engine.exports import export_labels
            from glore_engine.stages import load_records

            n = export_labels(load_records(labels_path, "sorm-labels"), fmt, out_path)
        else:
            n = store.export_annotations(run_id, fmt, out_path, annotator=annotator)
        run.log_metric("rows", n)
        run.log_artifact("export", out_path, {"format": fmt})
    click.echo(f"wrote {n} rows to {out_path}")


COMMANDS = [orm, sorm, eval_rm, export]
