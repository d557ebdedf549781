"""`glore-train refine | eval`: the refiners and the paper's end-to-end tables T2 and T3."""

from __future__ import annotations

from pathlib import Path

import click

from glore_engine.evaluation.pipeline_eval import PipelineEvalConfig
from glore_engine.labelling.orm_data import OrmDataConfig
from glore_engine.labelling.rollouts import SormLabelConfig
from glore_engine.training.refiner import RefinerConfig

from .common import (
    config_options,
    echo,
    engine_ready,
    friendly_errors,
    open_run,
    pop_config_flags,
    resolve_config,
    run_dir,
)
from .reward import SECTIONS, data_configs


@click.command("refine")
@config_options(RefinerConfig)
@config_options(OrmDataConfig, skip=("student",), prefix="sample", with_file=False)
@config_options(SormLabelConfig, prefix="label", with_file=False)
@click.option("--samples", "samples_path", help="global: reuse an ORM data folder for (incorrect -> correct) pairs")
@click.option("--labels", "labels_path", help="local: reuse a SORM labels folder for [BAD]-marked triples")
@click.option("--out", help="output folder (default: <GLORE_HOME>/runs/<id>-refine)")
@click.option("--resume", is_flag=True, help="continue sampling, labelling and training saved in --out")
@click.pass_context
@friendly_errors
def refine(ctx, config_file, samples_path, labels_path, out, resume, **flags) -> None:
    """Train a global refiner (whole-draft rewrite) or a local one (fix from a marked first error)."""
    from glore_engine.config import to_dict
    from glore_engine.labelling.orm_data import reuse_or_sample
    from glore_engine.labelling.rollouts import reuse_or_label
    from glore_engine.training.refiner import train_refiner_from

    config = resolve_config(RefinerConfig, config_file, pop_config_flags(RefinerConfig, flags), sections=SECTIONS)
    sample, label = data_configs(config_file, flags, config.base)
    if resume and not out:
        raise click.UsageError("--resume needs --out")
    engine_ready()
    with open_run(ctx, "refine", name=config.kind, config={"train": to_dict(config), "sample": to_dict(sample)}) as run:
        folder = run_dir(run.id, f"refine-{config.kind}", out)
        run.set_output_dir(str(folder))
        if config.kind == "global":
            data = reuse_or_sample(sample, folder, run, samples_path, resume=resume)
        else:
            data = reuse_or_label(label, sample, folder, run, labels_path, samples_path, resume=resume)
        model_dir, result, n = train_refiner_from(config, data, folder, tracker=run, resume=resume)
    echo(f"{config.kind} refiner saved to {model_dir} ({n} examples, loss {result.final_loss:.4f})")


@click.command("eval")
@click.option(
    "--family",
    help="folder with student/ orm/ sorm/ refiner-global/ refiner-local/ (default: bundled); a member given beside it replaces that member",
)
@click.option("--student", help="the policy that drafts (a model folder); alone, all five members instead of --family")
@click.option("--orm", help="the ORM folder: decides when to refine and picks among candidates")
@click.option("--sorm", help="the SORM folder: marks the first error for the local refiner")
@click.option("--global-refiner", help="the global refiner folder (rewrites the whole draft)")
@click.option("--local-refiner", help="the local refiner folder (fixes from the marked first error)")
@config_options(PipelineEvalConfig)
@click.pass_context
@friendly_errors
def evaluate(ctx, family, student, orm, sorm, global_refiner, local_refiner, config_file, **flags) -> None:
    """Tables T2 and T3 (greedy, best-of-3, draft+global, draft+local, GLoRe, oracle); every case stored."""
    from glore_engine.config import to_dict
    from glore_engine.evaluation.pipeline_eval import run_pipeline_eval

    config = resolve_config(PipelineEvalConfig, config_file, pop_config_flags(PipelineEvalConfig, flags))
    engine_ready()
    models, paths = _load_family(family, student, orm, sorm, global_refiner, local_refiner)
    with open_run(ctx, "eval", name=config.data, config={"models": paths, **to_dict(config)}) as run:
        run.set_output_dir(str(run_dir(run.id, "eval", None)))
        results, tables = run_pipeline_eval(models, config, tracker=run)
    echo(tables["T2"] + "\n\n" + tables["T3"])
    echo(f"\n{len(results)} cases stored in run {run.id} (browse them in glore-app)")
    echo(f"when to refine, as a curve of the ORM threshold: glore-train when --run {run.id}")


def _load_family(family, student, orm, sorm, global_refiner, local_refiner):
    """The family folder (default: bundled) with any member given on its own replacing that member:
    `--family D --sorm S` evaluates D's family with SORM S (an ablation), never D's SORM silently."""
    from glore_engine.family import MEMBERS, GloreModels

    given = (student, orm, sorm, global_refiner, local_refiner)
    if family is None and any(given) and not all(given):
        raise click.UsageError(
            "give --family (its members fill in the rest), or all five of --student --orm --sorm "
            "--global-refiner --local-refiner"
        )
    if family is None and not any(given):
        from glore_engine.bundled import require_bundle

        family = str(require_bundle())
    paths = [own or str(Path(family) / member.folder) for own, member in zip(given, MEMBERS, strict=True)]
    models = GloreModels.load(*paths)
    return models, models.paths


COMMANDS = [refine, evaluate]
