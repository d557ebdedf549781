"""SORM data: K verifying rollouts from every step prefix of every sampled solution (V* labels).

What is stored is raw: per prefix, how many rollouts reached the gold answer and how many of
those used the prefix's intermediate result R_i, plus one correct and one incorrect rollout text
(the local refiner's targets and drafts). The paper's post-processing (propagation, consistency,
balancing) is applied afterwards by `postprocess`, so each rule can be switched off for ablation
without sampling again.

`make_sorm_labels` is the stage (shards, manifest, cost); `reuse_or_label` is what a stage that
learns from labels calls: a finished folder, or labelling now (sampling first if need be).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, check_bounds, check_choice, to_dict
from ..errors import DataError
from ..formats import join_steps, student_prompt
from ..generation import BACKENDS
from ..records import LabelledSolution, PrefixRollouts, QuestionSamples, solutions_from_json
from ..tasks.answers import is_correct
from ..tasks.steps import step_result, step_uses_result
from ..tracking import Tracker, ensure, log_generation_cost, log_numbers, progress_bar
from .shards import WHOLE, Part, check_job, clear_shards, job_cost, run_sharded, shard_seed

if TYPE_CHECKING:
    from .orm_data import OrmDataConfig

KIND = "sorm-labels"  # the stage's name, its folder and its records file (sorm-labels.jsonl)


@dataclass
class SormLabelConfig:
    k: int = 8  # verifying rollouts per prefix
    temperature: float = 1.0
    max_new_tokens: int = 192
    seed: int = 0
    batch_size: int = 512
    shard_size: int = 128  # solutions per shard (the unit of resume)
    n_questions: int = 0  # label the samples of the first n questions (0: all)
    calculator: bool = False
    backend: str = "auto"  # vllm on a GPU where installed, else transformers; or name one

    def __post_init__(self):
        check_bounds(
            self,
            k=POSITIVE,
            shard_size=POSITIVE,
            n_questions=NON_NEGATIVE,
            batch_size=POSITIVE,
            max_new_tokens=POSITIVE,
            temperature=NON_NEGATIVE,
            seed=NON_NEGATIVE,
        )
        check_choice(self, "backend", BACKENDS)


def prefix_prompt(question: str, steps: list[str], i: int) -> str:
    """The student prompt followed by steps 1..i (i >= 1), ready for a continuation."""
    return student_prompt(question) + join_steps(steps[:i]) + "\n"


def solutions_of(records: list[QuestionSamples]) -> list[LabelledSolution]:
    """Flatten question records into one entry per distinct sampled solution with steps."""
    return [LabelledSolution.of_sample(r, s) for r in records for s in r.samples if s.steps]


def _rollout_stats(continuations, gold: str, result: str | None, prefix_text: str) -> PrefixRollouts:
    correct = consistent = 0
    pos: str | None = None
    neg: str | None = None
    for c in continuations:
        full = prefix_text + "\n" + c.text
        if is_correct(full, gold):
            correct += 1
            if result is None or step_uses_result(c.text, result):
                consistent += 1
                pos = pos or c.text
        else:
            neg = neg or c.text
    return PrefixRollouts(k=len(continuations), correct=correct, consistent_correct=consistent, pos=pos, neg=neg)


def label_solutions(
    backend,
    solutions: list[LabelledSolution],
    k: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    calculator: bool = False,
) -> list[LabelledSolution]:
    """Rollouts for every prefix P_i (i < L) of each solution; identical prefixes are rolled out once."""
    unique: dict[tuple[str, str], tuple[str, int, LabelledSolution]] = {}
    for sol in solutions:
        for i in range(1, len(sol.steps)):
            key = (sol.problem_id, join_steps(sol.steps[:i]))
            unique.setdefault(key, (prefix_prompt(sol.question, sol.steps, i), i, sol))
    keys = list(unique)
    outputs = (
        backend.generate(
            [unique[key][0] for key in keys],
            n=k,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
            calculator=calculator,
        )
        if keys
        else []
    )
    stats = {}
    for key, continuations in zip(keys, outputs):
        _, i, sol = unique[key]
        stats[key] = _rollout_stats(continuations, sol.gold, step_result(sol.steps[i - 1]), key[1])
    labelled = []
    for sol in solutions:
        prefixes = [stats[(sol.problem_id, join_steps(sol.steps[:i]))] for i in range(1, len(sol.steps))]
        labelled.append(replace(sol, results=[step_result(s) for s in sol.steps], rollouts=prefixes))
    return labelled


def build_sorm_labels(
    backend,
    records: list[QuestionSamples],
    folder: str | Path,
    k: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 192,
    seed: int = 0,
    shard_size: int = 64,
    calculator: bool = False,
    on_shard: Callable | None = None,
    job: dict | None = None,
    part: Part = WHOLE,
) -> list[LabelledSolution]:
    """Label every distinct sample of `records` (ORM data) in resumable shards of solutions ([] for a part).

    `job`: settings beyond these that also decide the labels (see `shard_job`); shards made with
    other settings, or from other samples, are refused rather than reused.
    """
    solutions = solutions_of(records)

    def process(shard, index):
        seed_k = shard_seed(seed, index)
        return [
            r.to_json() for r in label_solutions(backend, shard, k, temperature, max_new_tokens, seed_k, calculator)
        ]

    sampling = {"k": k, "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
    config = {**sampling, "calculator": calculator, **(job or {})}
    stats = getattr(backend, "stats", None)
    return solutions_from_json(run_sharded(solutions, shard_size, Path(folder), process, on_shard, config, stats, part))


def shard_job(config: SormLabelConfig, student: str) -> dict:
    """What decides a labelling job's shards besides the samples: its config and the policy that rolls out."""
    return {"kind": KIND, "student": str(student), **to_dict(config)}


def rollout_cost(labelled: list[LabelledSolution]) -> dict:
    """How many prefixes and rollouts the labels took (duplicates counted once per solution)."""
    return {
        "solutions": len(labelled),
        "prefixes": sum(len(r.rollouts) for r in labelled),
        "rollouts": sum(p.k for r in labelled for p in r.rollouts),
    }


def make_sorm_labels(
    config: SormLabelConfig,
    student: str,
    orm_records: list[QuestionSamples],
    folder: str | Path,
    tracker: Tracker | None = None,
    progress: bool = True,
    resume: bool = True,
    part: Part = WHOLE,
) -> list[LabelledSolution]:
    """K rollouts per step prefix of every distinct sample, in folder/sorm-labels.jsonl (resumable).

    Several processes and parts split the shards as in `make_orm_data`."""
    from ..generation.loading import open_policy_backend
    from .manifest import write_records
    from .postprocess import LabelRules, apply_rules, label_stats

    tracker, folder = ensure(tracker), Path(folder)
    records = orm_records[: config.n_questions] if config.n_questions else orm_records
    n_solutions = len(solutions_of(records))
    if not n_solutions:
        raise DataError("no sampled solutions with steps to label")
    if not resume and part.whole:
        clear_shards(folder)
    backend, _, _ = open_policy_backend(student, config.backend, batch_size=config.batch_size)
    with progress_bar(n_solutions, "SORM rollouts", progress) as bar:

        def on_shard(done, total, cached):
            bar.update(min(done * config.shard_size, n_solutions) - bar.n)
            bar.set_postfix(tok_s=f"{backend.stats.tokens_per_second:,.0f}", refresh=False)

        labelled = build_sorm_labels(
            backend,
            records,
            folder / "shards",
            k=config.k,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            shard_size=config.shard_size,
            calculator=config.calculator,
            on_shard=on_shard,
            job=shard_job(config, student),
            part=part,
        )
    if not part.whole:
        return []
    cost = log_generation_cost(tracker, "rollouts", *job_cost(folder / "shards"))  # every shard, resumed or not
    stats = {**rollout_cost(labelled), **cost, **label_stats(apply_rules(labelled, LabelRules()))}
    log_numbers(tracker, {"data/solutions": stats["solutions"], "data/prefixes": stats["prefixes"]})
    rows = [r.to_json() for r in labelled]
    path = distributed.on_main(lambda: write_records(folder, KIND, rows, student, config, stats))
    tracker.log_artifact(KIND, str(path), {"solutions": len(labelled)})
    return labelled


def load_sorm_labels(path: str | Path, base: str | None = None) -> list[LabelledSolution]:
    """The records of a finished SORM-labels folder; with `base`, checked against the model that will use them."""
    from .manifest import load_records

    return solutions_from_json(load_records(path, KIND, base=base))


def reuse_or_label(
    config: SormLabelConfig,
    samples: OrmDataConfig,
    folder: str | Path,
    tracker: Tracker | None = None,
    reuse: str | Path | None = None,
    reuse_samples: str | Path | None = None,
    progress: bool = True,
    resume: bool = True,
) -> list[LabelledSolution]:
    """The labels a stage learns from: the finished folder `reuse` (checked against samples.student), or
    labels made now into folder/sorm-labels as a child run of tracker, from the ORM data that
    `reuse_or_sample` gives (`reuse_samples`, or sampled now)."""
    from .orm_data import reuse_or_sample

    if reuse:
        return load_sorm_labels(reuse, base=samples.student)
    out = Path(folder) / KIND
    if resume:  # refuse another labelling config now, before sampling what it would label
        check_job(out / "shards", {"shard_size": config.shard_size, **shard_job(config, samples.student)})
    records = reuse_or_sample(samples, folder, tracker, reuse_samples, progress=progress, resume=resume)
    with ensure(tracker).child(KIND, name=samples.student, config=to_dict(config), output_dir=str(out)) as child:
        return make_sorm_labels(config, samples.student, records, out, child, progress=progress, resume=resume)
