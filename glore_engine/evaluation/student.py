"""How good is the student: greedy accuracy, pass@k at a temperature, by number of steps."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from math import comb

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, check_bounds, check_choice
from ..formats import student_prompt
from ..generation import BACKENDS
from ..generation.base import GenerationStats
from ..tasks.answers import is_correct
from ..tracking import Tracker, ensure, log_numbers


@dataclass
class EvalStudentConfig:
    model: str = ""
    data: str = "synthetic"
    split: str = "test"
    limit: int = 500
    data_seed: int = 0
    k: int = 8  # temperature samples per problem for pass@k (0: greedy accuracy only)
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256
    shard_size: int = 256  # problems per shard, the unit a multi-process launch shares out
    backend: str = "auto"  # vllm on a GPU where installed, else transformers
    calculator: bool = False
    device: str = ""

    def __post_init__(self):
        check_bounds(
            self,
            limit=POSITIVE,
            k=NON_NEGATIVE,  # 0: greedy accuracy only
            data_seed=NON_NEGATIVE,
            batch_size=POSITIVE,
            shard_size=POSITIVE,
            max_new_tokens=POSITIVE,
            temperature=NON_NEGATIVE,
            seed=NON_NEGATIVE,
        )
        check_choice(self, "backend", BACKENDS)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass
class ProblemOutcome:
    """How the student did on one problem: its greedy draft and how many of its k samples were right."""

    problem_id: str
    n_steps: int  # steps of the reference solution
    greedy: str
    greedy_correct: bool
    samples_correct: int
    k: int


@dataclass
class StudentEval:
    n_problems: int
    greedy_accuracy: float
    k: int
    pass_at_k: float
    sample_accuracy: float  # mean correctness of the temperature samples (pass@1 at temperature)
    by_steps: dict = field(default_factory=dict)  # n_steps -> {"n", "greedy", "pass@k"}
    records: list[ProblemOutcome] = field(default_factory=list, repr=False)

    def metrics(self) -> dict:
        out = {"greedy_accuracy": self.greedy_accuracy, "n_problems": self.n_problems}
        if self.k:
            out.update({f"pass@{self.k}": self.pass_at_k, "sample_accuracy": self.sample_accuracy})
        for steps, row in sorted(self.by_steps.items()):
            out[f"greedy_accuracy/steps={steps}"] = row["greedy"]
            if self.k:
                out[f"pass@{self.k}/steps={steps}"] = row["pass@k"]
        return out


def grade_student(
    backend, problems, k: int, temperature: float, max_new_tokens: int, seed: int, calculator: bool = False
) -> list[ProblemOutcome]:
    """Greedy draft and k temperature samples (seeded by `seed`) for each problem, graded."""
    prompts = [student_prompt(p.question) for p in problems]
    greedy = backend.generate(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens, calculator=calculator)
    sampled = (
        backend.generate(
            prompts, n=k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, calculator=calculator
        )
        if k
        else [[] for _ in problems]
    )
    return [
        ProblemOutcome(
            problem_id=problem.id,
            n_steps=problem.meta.get("n_steps", problem.n_steps),
            greedy=g[0].text,
            greedy_correct=is_correct(g[0].text, problem.answer),
            samples_correct=sum(is_correct(s.text, problem.answer) for s in samples),
            k=len(samples),
        )
        for problem, g, samples in zip(problems, greedy, sampled)
    ]


def summarize(records: list[ProblemOutcome], k: int) -> StudentEval:
    """Greedy accuracy, pass@k and sample accuracy over the problems' outcomes, overall and by steps."""
    groups: dict[int, list[ProblemOutcome]] = defaultdict(list)
    for record in records:
        groups[record.n_steps].append(record)

    def summary(rows: list[ProblemOutcome]) -> tuple[float, float]:
        n = max(len(rows), 1)
        return (
            sum(r.greedy_correct for r in rows) / n,
            sum(pass_at_k(r.k, r.samples_correct, r.k) for r in rows) / n if k else 0.0,
        )

    greedy_acc, pass_k = summary(records)
    by_steps = {
        s: {"n": len(rows), "greedy": summary(rows)[0], "pass@k": summary(rows)[1]} for s, rows in groups.items()
    }
    sample_acc = sum(r.samples_correct for r in records) / max(sum(r.k for r in records), 1)
    return StudentEval(
        n_problems=len(records),
        greedy_accuracy=greedy_acc,
        k=k,
        pass_at_k=pass_k,
        sample_accuracy=sample_acc,
        by_steps=by_steps,
        records=records,
    )


def evaluate_student(
    backend,
    problems,
    k: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    calculator: bool = False,
    shard_size: int | None = None,
) -> StudentEval:
    """Greedy draft and k temperature samples per problem, scored against the gold answers.

    The problems go in shards of `shard_size` (None: one shard), each generated on its own and
    sampled with seed + its first problem's index; a multi-process launch shares the shards out
    (`distributed.map_batches`), so every rank returns the evaluation one process would.
    """

    def run(start: int, shard: list) -> list[ProblemOutcome]:
        return grade_student(backend, shard, k, temperature, max_new_tokens, seed + start, calculator)

    return summarize(distributed.map_batches(list(problems), shard_size or max(len(problems), 1), run), k)


def run_student_eval(config: EvalStudentConfig, tracker: Tracker | None = None) -> tuple[StudentEval, dict]:
    """`glore-train eval-student`: open config.model, evaluate it on config's problems, log the metrics.

    Returns the evaluation and the metrics it logged (those of `StudentEval.metrics` and tokens/s).
    """
    from ..generation.loading import open_policy_backend
    from ..tasks.model_task import load_eval_problems

    tracker = ensure(tracker)
    backend, _, _ = open_policy_backend(config.model, config.backend, config.batch_size, config.device)
    problems = load_eval_problems(config.data, config.split, config.limit, config.data_seed, config.model)
    result = evaluate_student(
        backend,
        problems,
        k=config.k,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        calculator=config.calculator,
        shard_size=config.shard_size,
    )
    stats = GenerationStats.joint(distributed.gather(backend.stats))  # every rank's share of the job
    metrics = {**result.metrics(), "tokens_per_s": stats.tokens_per_second}
    log_numbers(tracker, metrics)
    tracker.set_summary({"greedy_accuracy": result.greedy_accuracy, f"pass@{config.k}": result.pass_at_k})
    return result, metrics
