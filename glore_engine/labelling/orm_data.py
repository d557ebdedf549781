"""ORM data: N student samples per training question at temperature 1, graded by final answer.

`make_orm_data` is the stage (shards, manifest, cost); `reuse_or_sample` is what a stage that
learns from ORM data calls: a finished folder, or sampling now as a child run. `sample_to_file`
is `glore-train sample`: the same graded records for any problems, in one JSONL file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, check_bounds, check_choice, to_dict
from ..formats import student_prompt
from ..generation import BACKENDS
from ..records import GradedSample, QuestionSamples, samples_from_json
from ..tasks.answers import extract_answer, is_correct
from ..tasks.steps import split_steps
from ..tracking import Tracker, ensure, log_generation_cost, log_numbers, progress_bar
from .shards import WHOLE, Part, clear_shards, job_cost, run_sharded, shard_seed

KIND = "orm-data"  # the stage's name, its folder and its records file (orm-data.jsonl)


@dataclass
class OrmDataConfig:
    student: str = ""  # the policy that samples (CLI: --sample-student, default the --base model)
    data: str = "synthetic"
    n_questions: int = 2000
    data_seed: int = 1  # synthetic: 1 draws questions the student did not train on (its SFT used seed 0)
    n: int = 8  # samples per question
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256
    shard_size: int = 256
    calculator: bool = False
    split: str = "train"
    backend: str = "auto"  # vllm on a GPU where installed, else transformers; or name one
    mix: str = ""  # another source whose whole `split` is spread through the questions (e.g. "svamp")

    def __post_init__(self):
        check_bounds(
            self,
            n_questions=POSITIVE,
            n=POSITIVE,
            shard_size=POSITIVE,
            data_seed=NON_NEGATIVE,
            batch_size=POSITIVE,
            max_new_tokens=POSITIVE,
            temperature=NON_NEGATIVE,
            seed=NON_NEGATIVE,
        )
        check_choice(self, "backend", BACKENDS)


@dataclass
class SampleConfig:
    model: str = ""  # policy checkpoint folder (or hub id)
    data: str = "synthetic"  # "synthetic", a GSM8K-format .jsonl path, or a hub dataset id
    split: str = "test"
    limit: int = 500  # problems
    data_seed: int = 0
    n: int = 8  # samples per problem
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256  # rows per forward pass (prompts x n)
    shard_size: int = 256  # problems per shard, the unit a multi-process launch shares out
    backend: str = "auto"  # vllm on a GPU where installed, else transformers; or name one
    calculator: bool = False  # GSM8K-paper calculator: the engine writes the result of <<expr=
    device: str = ""  # "" picks cuda when present

    def __post_init__(self):
        check_bounds(
            self,
            limit=POSITIVE,
            n=POSITIVE,
            data_seed=NON_NEGATIVE,
            batch_size=POSITIVE,
            shard_size=POSITIVE,
            max_new_tokens=POSITIVE,
            temperature=NON_NEGATIVE,
            seed=NON_NEGATIVE,
        )
        check_choice(self, "backend", BACKENDS)


def dedup_samples(samples, gold: str) -> list[GradedSample]:
    """Distinct texts with their multiplicity: correct samples often repeat word for word."""
    merged: dict[str, GradedSample] = {}
    for s in samples:
        entry = merged.get(s.text)
        if entry is None:
            merged[s.text] = GradedSample(
                text=s.text,
                steps=split_steps(s.text),
                answer=extract_answer(s.text),
                correct=is_correct(s.text, gold),
                logprob=s.logprob,
                n_tokens=s.n_tokens,
                finished=s.finished,
            )
        else:
            entry.count += 1
    return list(merged.values())


def sample_questions(
    backend, problems, n: int, temperature: float, max_new_tokens: int, seed: int, calculator: bool = False
) -> list[QuestionSamples]:
    """One record per problem: its distinct samples, each with steps, correctness and log-probability."""
    prompts = [student_prompt(p.question) for p in problems]
    outputs = backend.generate(
        prompts, n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, calculator=calculator
    )
    return [
        QuestionSamples(
            problem_id=p.id, question=p.question, gold=p.answer, n_samples=n, samples=dedup_samples(samples, p.answer)
        )
        for p, samples in zip(problems, outputs)
    ]


def build_orm_data(
    backend,
    problems,
    folder: str | Path,
    n: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    shard_size: int = 256,
    calculator: bool = False,
    on_shard: Callable | None = None,
    job: dict | None = None,
    part: Part = WHOLE,
) -> list[QuestionSamples]:
    """Sample and grade in resumable shards under folder; returns one record per problem ([] for a part).

    `job`: settings beyond these that also decide the samples (the policy, its batch size); shards
    made with other settings are refused rather than reused.
    """

    def process(shard, k):
        records = sample_questions(backend, shard, n, temperature, max_new_tokens, shard_seed(seed, k), calculator)
        return [r.to_json() for r in records]

    sampling = {"n": n, "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
    config = {**sampling, "calculator": calculator, **(job or {})}
    stats = getattr(backend, "stats", None)
    return samples_from_json(run_sharded(problems, shard_size, folder, process, on_shard, config, stats, part))


def orm_stats(records: list[QuestionSamples]) -> dict:
    """Counts that tell whether the data can teach within-question discrimination."""
    samples = [s for r in records for s in r.samples]
    mixed = [r for r in records if r.mixed]
    total = sum(s.count for s in samples)
    return {
        "questions": len(records),
        "distinct_samples": len(samples),
        "samples": total,
        "sample_accuracy": sum(s.count for s in samples if s.correct) / max(total, 1),
        "mixed_questions": len(mixed),
        "mixed_distinct_samples": sum(len(r.samples) for r in mixed),
    }


def make_orm_data(
    config: OrmDataConfig,
    folder: str | Path,
    tracker: Tracker | None = None,
    progress: bool = True,
    resume: bool = True,
    part: Part = WHOLE,
) -> list[QuestionSamples]:
    """N samples per training question, graded and deduplicated, in folder/orm-data.jsonl.

    resume=False discards shards an earlier run left in folder (they may come from another config).
    With several processes each takes its share of the shards and rank 0 writes the records; a
    `part` of the job writes only its shards and returns [] (`merge.merge_stage` joins the parts).
    """
    from ..generation.loading import open_policy_backend
    from ..tasks.model_task import load_eval_problems
    from .manifest import write_records

    tracker, folder = ensure(tracker), Path(folder)
    if not resume and part.whole:  # a part never clears: the folder holds the other parts' shards
        clear_shards(folder)
    problems = load_eval_problems(config.data, config.split, config.n_questions, config.data_seed, config.student)
    if config.mix:
        from ..tasks import load_problems, mix_problems

        problems = mix_problems(problems, load_problems(config.mix, split=config.split))
    backend, _, _ = open_policy_backend(config.student, config.backend, batch_size=config.batch_size)
    with progress_bar(len(problems), "ORM samples", progress) as bar:

        def on_shard(done, total, cached):
            bar.update(min(done * config.shard_size, len(problems)) - bar.n)

        records = build_orm_data(
            backend,
            problems,
            folder / "shards",
            n=config.n,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            shard_size=config.shard_size,
            calculator=config.calculator,
            on_shard=on_shard,
            job={"kind": KIND, **to_dict(config)},
            part=part,
        )
    if not part.whole:
        return []
    cost = log_generation_cost(tracker, "sampling", *job_cost(folder / "shards"))  # every shard, resumed or not
    stats = {**orm_stats(records), **cost}
    log_numbers(
        tracker,
        {f"data/{k}": stats[k] for k in ("questions", "distinct_samples", "sample_accuracy", "mixed_questions")},
    )
    rows = [r.to_json() for r in records]
    path = distributed.on_main(lambda: write_records(folder, KIND, rows, config.student, config, stats))
    tracker.log_artifact(KIND, str(path), {"questions": len(records)})
    return records


def load_orm_data(path: str | Path, base: str | None = None) -> list[QuestionSamples]:
    """The records of a finished ORM-data folder; with `base`, checked against the model that will use them."""
    from .manifest import load_records

    return samples_from_json(load_records(path, KIND, base=base))


def reuse_or_sample(
    config: OrmDataConfig,
    folder: str | Path,
    tracker: Tracker | None = None,
    reuse: str | Path | None = None,
    progress: bool = True,
    resume: bool = True,
) -> list[QuestionSamples]:
    """The ORM data a stage learns from: the finished folder `reuse` (checked against config.student),
    or samples drawn now into folder/orm-data as a child run of tracker (resume reuses its shards)."""
    if reuse:
        return load_orm_data(reuse, base=config.student)
    out = Path(folder) / KIND
    with ensure(tracker).child(KIND, name=config.student, config=to_dict(config), output_dir=str(out)) as child:
        return make_orm_data(config, out, child, progress=progress, resume=resume)


def sample_to_file(
    config: SampleConfig, path: str | Path, tracker: Tracker | None = None, progress: bool = True
) -> tuple[list[QuestionSamples], dict]:
    """`glore-train sample`: n graded samples per problem (ORM-data records) in one JSONL file.

    The problems go in shards of config.shard_size, each sampled with config.seed + its first
    problem's index, so a multi-process launch (ranks share the shards out, rank 0 writes the file)
    writes the file one process would. Returns the records and the metrics it logged (sample
    accuracy, tokens, rates).
    """
    from ..generation.base import GenerationStats
    from ..generation.loading import open_policy_backend
    from ..tasks.model_task import load_eval_problems
    from .shards import write_jsonl_atomic

    tracker, path = ensure(tracker), Path(path)
    backend, _, _ = open_policy_backend(config.model, config.backend, config.batch_size, config.device)
    problems = load_eval_problems(config.data, config.split, config.limit, config.data_seed, config.model)
    with progress_bar(len(problems), "sampling", progress) as bar:
        done = 0  # problems of this rank's earlier shards

        def run(start: int, shard: list) -> list[QuestionSamples]:
            nonlocal done
            backend.progress = lambda prompts, _: bar.update(done + prompts - bar.n)
            out = sample_questions(
                backend,
                shard,
                config.n,
                config.temperature,
                config.max_new_tokens,
                config.seed + start,
                config.calculator,
            )
            done += len(shard)
            return out

        records = distributed.map_batches(problems, config.shard_size, run)
    rows = [r.to_json() for r in records]

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl_atomic(path, rows)

    distributed.on_main(write)
    stats = GenerationStats.joint(distributed.gather(backend.stats))  # every rank's share of the job
    metrics = {
        "sample_accuracy": orm_stats(records)["sample_accuracy"],
        "samples": stats.samples,
        "generated_tokens": stats.generated_tokens,
        "tokens_per_s": stats.tokens_per_second,
        "samples_per_s": stats.samples / max(stats.seconds, 1e-9),
    }
    log_numbers(tracker, metrics)
    tracker.log_artifact("samples", str(path))
    return records, metrics
