"""`glore-train orm | sorm | eval-rm | export`: the reward models, their labels and table T1."""

from __future__ import annotations

import click

from glore_engine.errors import DataError
from glore_engine.labelling.orm_data import OrmDataConfig
from glore_engine.labelling.rollouts import SormLabelConfig
from glore_engine.labelling.shards import Part
from glore_engine.training.reward import RewardConfig

from .common import (
    config_options,
    echo,
    engine_ready,
    flag_errors,
    friendly_errors,
    open_run,
    open_store,
    pop_config_flags,
    resolve_config,
    run_dir,
)

SECTIONS = ("sample", "label")


def data_configs(config_file, flags, base: str) -> tuple[OrmDataConfig, SormLabelConfig]:
    """The `sample:` and `label:` configs of a command that learns from ORM data or SORM labels."""
    sample = resolve_config(
        OrmDataConfig,
        config_file,
        pop_config_flags(OrmDataConfig, flags, "sample"),
        extra={"student": base},
        section="sample",
    )
    label = resolve_config(
        SormLabelConfig, config_file, pop_config_flags(SormLabelConfig, flags, "label"), section="label"
    )
    return sample, label


def _reward_command(role: str, doc: str):
    @click.command(role, help=doc)
    @config_options(RewardConfig, skip=("role",))
    @config_options(OrmDataConfig, prefix="sample", with_file=False)
    @config_options(SormLabelConfig, prefix="label", with_file=False)
    @click.option("--samples", "samples_path", help="reuse an ORM data folder (from an earlier orm/sorm run)")
    @click.option("--labels", "labels_path", help="sorm: reuse a SORM labels folder")
    @click.option("--out", help="output folder (default: <GLORE_HOME>/runs/<id>-<role>)")
    @click.option("--resume", is_flag=True, help="continue sampling, labelling and training saved in --out")
    @click.option("--shard-index", default=0, show_default=True, help="the part of the data stage this job runs")
    @click.option(
        "--num-shards",
        default=1,
        show_default=True,
        help="split the data stage into parts run apart (a SLURM array); `glore-train merge` joins them",
    )
    @click.pass_context
    @friendly_errors
    def command(ctx, config_file, samples_path, labels_path, out, resume, shard_index, num_shards, **flags):
        from glore_engine.config import to_dict
        from glore_engine.labelling.orm_data import reuse_or_sample
        from glore_engine.labelling.rollouts import reuse_or_label
        from glore_engine.training.reward import train_reward_model

        train = resolve_config(
            RewardConfig, config_file, pop_config_flags(RewardConfig, flags), extra={"role": role}, sections=SECTIONS
        )
        sample, label = data_configs(config_file, flags, train.base)
        if not sample.student:
            raise click.UsageError("give --base (the backbone) and, if another model samples, --sample-student")
        if resume and not out:
            raise click.UsageError("--resume needs --out (the folder of the run to continue)")
        if role == "orm" and labels_path:
            raise click.UsageError("--labels is for the SORM; the ORM learns from --samples")
        part = Part(shard_index, num_shards)
        if not part.whole:
            _check_part(role, out, samples_path, labels_path)
        engine_ready()
        config = {"train": to_dict(train), "sample": to_dict(sample), "label": to_dict(label)}
        if not part.whole:
            config["part"] = {"index": part.index, "count": part.count}
        with open_run(ctx, role, name=train.base, config=config) as run:
            if not part.whole:
                stage = run_part(role, sample, label, run_dir(run.id, role, out), run, samples_path, part)
                echo(
                    f"part {part.index} of {part.count} written to {stage / 'shards'} (run {run.id}); "
                    f"once every part is done: glore-train merge {stage}"
                )
                return
            folder = run_dir(run.id, role, out)
            run.set_output_dir(str(folder))
            if role == "orm":
                data = reuse_or_sample(sample, folder, run, samples_path, resume=resume)
            else:
                data = reuse_or_label(label, sample, folder, run, labels_path, samples_path, resume=resume)
            model_dir, result = train_reward_model(train, data, folder, tracker=run, resume=resume)
        echo(
            f"{role.upper()} saved to {model_dir} (run {run.id}, loss {result.final_loss:.4f}, "
            f"{result.seconds / 60:.1f} min)"
        )

    return command


orm = _reward_command(
    "orm", "Train the ORM: sample N solutions per question, label by final answer, train the value head."
)
sorm = _reward_command("sorm", "Train the SORM: K rollouts from every step prefix give V* labels; train on them.")


@click.command("eval-rm")
@click.option(
    "--rm",
    "rms",
    multiple=True,
    help="NAME=PATH of a reward model (repeatable; with --processbench/--run default: the bundled ORM and SORM)",
)
@click.option("--processbench", "processbench_path", help="ProcessBench JSONL of first-error labels to score against")
@click.option("--run", "run_id", type=int, help="an annotated case set: its human first errors are the labels")
@click.option("--student", help="the policy that samples held-out solutions (not needed with --labels)")
@click.option("--labels", "labels_path", help="held-out SORM labels folder (else built now from test samples)")
@click.option("--threshold", default=0.5, show_default=True, help="step score below which a step is an error")
@click.option(
    "--consistency/--no-consistency",
    default=True,
    show_default=True,
    help="held-out labels: a rollout verifies a step only if it uses that step's result",
)
@click.option(
    "--propagate/--no-propagate",
    default=True,
    show_default=True,
    help="held-out labels: a good step makes every earlier step good",
)
@config_options(OrmDataConfig, skip=("student",), prefix="sample")
@config_options(SormLabelConfig, prefix="label", with_file=False)
@click.pass_context
@friendly_errors
def eval_rm(
    ctx, rms, processbench_path, run_id, student, labels_path, threshold, consistency, propagate, config_file, **flags
) -> None:
    """Table T1: step-level and final-answer accuracy, AUC (pooled and within question), best-of-N, first-error F1.

    With --processbench FILE or --run ID: ProcessBench's metrics of each reward model's first error
    against first-error labels (a file, or the human labels of an annotated case set), with agreement."""
    if processbench_path or run_id is not None:
        if labels_path or student:
            raise click.UsageError("--processbench/--run score labelled drafts: drop --labels and --student")
        _eval_processbench(ctx, rms, processbench_path, run_id, threshold)
        return
    if not rms:
        raise click.UsageError("pass --rm NAME=PATH (repeatable), or --processbench FILE / --run ID")
    from glore_engine.config import to_dict
    from glore_engine.evaluation.reward import HELD_OUT, RewardEvalConfig, run_reward_eval
    from glore_engine.labelling.rollouts import reuse_or_label

    named = dict(_parse_named(r) for r in rms)
    sample = resolve_config(
        OrmDataConfig,
        config_file,
        pop_config_flags(OrmDataConfig, flags, "sample"),
        extra={"student": student or "", **HELD_OUT},
        section="sample",
    )
    label = resolve_config(
        SormLabelConfig, config_file, pop_config_flags(SormLabelConfig, flags, "label"), section="label"
    )
    with flag_errors():
        evaluation = RewardEvalConfig(threshold=threshold, consistency=consistency, propagate=propagate)
    if not labels_path and not student:
        raise click.UsageError("pass --student (to sample held-out solutions) or --labels (to reuse them)")
    engine_ready()
    config = {
        "models": named,
        "threshold": threshold,
        "sample": to_dict(sample),
        "label": to_dict(label),
        "labels": labels_path,
        "consistency": consistency,
        "propagate": propagate,
    }
    with open_run(ctx, "eval-rm", name=",".join(named), config=config) as run:
        folder = run_dir(run.id, "eval-rm", None)
        run.set_output_dir(str(folder))
        labelled = reuse_or_label(label, sample, folder, run, labels_path)
        _rows, table = run_reward_eval(named, labelled, evaluation, run)
    echo(table)


def _eval_processbench(ctx, rms, path, run_id, threshold) -> None:
    """eval-rm against first-error labels: a ProcessBench file, or the human labels of a case set."""
    from glore_engine.evaluation.processbench import (
        case_scores,
        from_annotations,
        read_processbench,
        run_processbench_eval,
    )

    if bool(path) == (run_id is not None):
        raise click.UsageError("pass one of --processbench FILE or --run ID")
    named = dict(_parse_named(r) for r in rms) if rms else _bundled_reward_models()
    store = open_store(ctx)
    if run_id is not None:
        try:
            store.get_run(run_id)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="'--run'") from None
        records = [{**ac.record(), **case_scores(ac.case.data)} for ac in store.annotated_cases(run_id)]
        drafts = from_annotations(records)
        if not drafts:
            raise click.UsageError(
                f"run {run_id} has no human first-error labels yet: mark first errors in glore-app's Annotate tab"
            )
    else:
        drafts = read_processbench(path)
    engine_ready()
    config = {"models": named, "threshold": threshold, "processbench": path, "run": run_id}
    with store.run("eval-rm", name="processbench:" + ",".join(named), config=config) as run:
        _rows, table = run_processbench_eval(named, drafts, threshold, run)
    click.echo(table)


def _bundled_reward_models() -> dict[str, str]:
    from glore_engine.bundled import BUNDLE_DIR, has_bundle

    if not has_bundle():
        raise click.UsageError("no bundled family here: pass --rm NAME=PATH")
    return {"ORM": str(BUNDLE_DIR / "orm"), "SORM": str(BUNDLE_DIR / "sorm")}


def _check_part(role: str, out: str | None, samples_path: str | None, labels_path: str | None) -> None:
    if not out:
        raise click.UsageError("--num-shards needs --out: the folder every part writes its shards into")
    if labels_path or (role == "orm" and samples_path):
        raise click.UsageError("--num-shards splits a data stage; with reused data there is none to split")
    if role == "sorm" and not samples_path:
        raise click.UsageError(
            "sorm --num-shards labels merged samples: pass --samples (sample them first with orm --num-shards, "
            "then glore-train merge)"
        )


def run_part(role: str, sample, label, folder, run, samples_path: str | None, part: Part):
    """One part of the data stage: the ORM samples (orm) or the SORM labels of --samples (sorm)."""
    from pathlib import Path

    from glore_engine.labelling.orm_data import KIND as ORM_KIND
    from glore_engine.labelling.orm_data import load_orm_data, make_orm_data
    from glore_engine.labelling.rollouts import KIND as SORM_KIND
    from glore_engine.labelling.rollouts import make_sorm_labels

    run.set_output_dir(str(folder))
    if role == "orm":
        make_orm_data(sample, Path(folder) / ORM_KIND, run, part=part)
        return Path(folder) / ORM_KIND
    records = load_orm_data(samples_path, base=sample.student)
    make_sorm_labels(label, sample.student, records, Path(folder) / SORM_KIND, run, part=part)
    return Path(folder) / SORM_KIND


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
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="file to write")
@click.option("--annotator", help="annotations: only this annotator's")
@click.pass_context
@friendly_errors
def export(ctx, labels_path, run_id, fmt, out_path, annotator) -> None:
    """Export SORM labels (TRL stepwise, ProcessBench, Math-Shepherd) or annotated cases (also PRM800K, CSV).

    Steps are 0-based in every file (first_error_index, ProcessBench label; -1 = no error)."""
    if bool(labels_path) == (run_id is not None):
        raise click.UsageError("pass exactly one of --labels DIR or --run ID")
    from glore_engine.exports import ANNOTATION_FORMATS, FORMATS, export_annotations, export_labels

    known = FORMATS if labels_path else ANNOTATION_FORMATS
    if fmt not in known:
        what = "labels" if labels_path else "annotations"
        raise click.BadParameter(
            f"{fmt!r} is not a format for {what} (choose from {', '.join(known)})", param_hint="'--format'"
        )
    store = open_store(ctx)
    rows: list[dict] = []
    if run_id is not None:
        try:
            store.get_run(run_id)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="'--run'") from None
        rows = [row.record() for row in store.annotated_cases(run_id, annotator=annotator)]
        if not rows:
            raise DataError(nothing_annotated(store, run_id, annotator, ctx.obj.get("db")))
    with store.run("export", name=fmt, config={"labels": labels_path, "run": run_id, "format": fmt}) as run:
        if labels_path:
            from glore_engine.labelling.rollouts import load_sorm_labels

            n = export_labels(load_sorm_labels(labels_path), fmt, out_path)
        else:
            n = export_annotations(rows, fmt, out_path)
        run.log_metric("rows", n)
        run.log_artifact("export", out_path, {"format": fmt})
    echo(f"wrote {n} rows to {out_path}")


def nothing_annotated(store, run_id: int, annotator: str | None, db: str | None) -> str:
    """Why an export of run_id would be empty, and what to do, instead of writing an empty file."""
    n_cases = store.count_cases(run_id)
    if not n_cases:
        return (
            f"run {run_id} ({store.get_run(run_id).kind}) has no cases: export --run takes an evaluation run "
            "(glore-train eval) whose cases were annotated"
        )
    who = f" by {annotator}" if annotator else ""
    app = "glore-app" + (f" --db {db}" if db else "")
    return (
        f"run {run_id} has {n_cases} cases, none annotated{who}: nothing to export. "
        f"Annotate them in the app's Annotate tab ({app}), then export again"
    )


COMMANDS = [orm, sorm, eval_rm, export]
