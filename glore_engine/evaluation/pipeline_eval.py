"""Tables T2 (refinement of incorrect drafts) and T3 (end-to-end accuracy): docs/method.md section 4."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import distributed
from ..config import NON_NEGATIVE, POSITIVE, UNIT, check_bounds
from ..pipeline import CRITIQUE_THRESHOLD, GloreResult
from ..tracking import Tracker, ensure, log_numbers, progress_bar
from .metrics import fmt, markdown_table

if TYPE_CHECKING:
    from ..family import GloreModels


@dataclass
class PipelineEvalConfig:
    data: str = "synthetic"  # "synthetic", a GSM8K-format .jsonl path, or a hub dataset id
    split: str = "test"
    limit: int = 500  # problems
    data_seed: int = 0
    threshold: float = CRITIQUE_THRESHOLD  # SORM score below which a step is the first error
    weakest: bool = True  # no step below threshold: refine locally from the weakest step (pipeline.local_mark)
    best_of: int = 3  # student samples for the best-of-N baseline
    seed: int = 0
    batch_size: int = 128  # problems per pipeline batch, the unit a multi-process launch shares out

    def __post_init__(self):
        check_bounds(
            self,
            limit=POSITIVE,
            best_of=POSITIVE,
            threshold=UNIT,
            data_seed=NON_NEGATIVE,
            seed=NON_NEGATIVE,
            batch_size=POSITIVE,
        )


# Paper anchors (GSM8K, LLaMA-2 13B EI student); ~ marks secondary sources (docs/method.md section 4).
PAPER_T2 = {"global": "~28", "local (ORM critique)": "-", "local (SORM critique)": "~28", "global + local": "~41"}
PAPER_T3 = {
    "greedy draft": "53",
    "best-of-3 (ORM)": "~58",
    "draft + global (ORM)": "-",
    "draft + local (ORM)": "-",
    "draft + global + local (ORM) = GLoRe": "65",
    "oracle (any of the three)": "-",
}


def _pick(cands):
    return max(cands, key=lambda c: c.orm_score)


def t2_rows(results: list[GloreResult]) -> tuple[list[tuple[str, float | None]], int]:
    """Fraction of incorrect greedy drafts that each refinement fixes."""
    wrong = [r for r in results if r.draft.correct is False]
    n = len(wrong)

    def rate(pred):
        return sum(1 for r in wrong if pred(r)) / n if n else None

    rows = [
        ("global", rate(lambda r: r.global_refinement.correct)),
        ("local (ORM critique)", rate(lambda r: r.local_orm_critique is not None and r.local_orm_critique.correct)),
        ("local (SORM critique)", rate(lambda r: r.local_refinement.correct)),
        ("global + local", rate(lambda r: r.global_refinement.correct or r.local_refinement.correct)),
    ]
    return rows, n


def t3_rows(results: list[GloreResult]) -> list[tuple[str, float]]:
    """End-to-end accuracy of each way of producing a final answer."""
    n = max(len(results), 1)

    def acc(choose):
        return sum(1 for r in results if choose(r)) / n

    return [
        ("greedy draft", acc(lambda r: r.draft.correct)),
        ("best-of-3 (ORM)", acc(lambda r: bool(r.samples) and _pick(r.samples).correct)),
        ("draft + global (ORM)", acc(lambda r: _pick([r.draft, r.global_refinement]).correct)),
        ("draft + local (ORM)", acc(lambda r: _pick([r.draft, r.local_refinement]).correct)),
        ("draft + global + local (ORM) = GLoRe", acc(lambda r: r.chosen.correct)),
        ("oracle (any of the three)", acc(lambda r: any(c.correct for c in r.candidates))),
    ]


def refinement_tables(results: list[GloreResult]) -> dict:
    """Markdown T2 and T3 with the paper's GSM8K figures beside ours, plus flat metrics."""
    t2, n_wrong = t2_rows(results)
    t3 = t3_rows(results)
    critique = f"; local from the first step with SORM < {results[0].threshold:g}" if results else ""
    md2 = f"T2: incorrect greedy drafts fixed ({n_wrong} of {len(results)} drafts were wrong{critique})\n\n"
    md2 += markdown_table(
        ["refinement", "fixed %", "paper GSM8K 13B %"], [[name, fmt(v, True), PAPER_T2[name]] for name, v in t2]
    )
    md3 = f"T3: end-to-end accuracy on {len(results)} problems\n\n" + markdown_table(
        ["method", "accuracy %", "paper GSM8K 13B %"], [[name, fmt(v, True), PAPER_T3[name]] for name, v in t3]
    )
    metrics = {f"T2/{name}": v for name, v in t2 if v is not None}
    metrics.update({f"T3/{name}": v for name, v in t3})
    metrics["T2/n_wrong_drafts"] = n_wrong
    metrics["T3/n_problems"] = len(results)
    broken = sum(1 for r in results if r.draft.correct and not r.chosen.correct)
    metrics["rerank/broken_correct_drafts"] = broken
    metrics["rerank/when_precision"] = _when_precision(results)
    return {"T2": md2, "T3": md3, "metrics": metrics}


def _when_precision(results: list[GloreResult]) -> float:
    """Of the drafts the ORM flags for refinement, the fraction that really are wrong."""
    flagged = [r for r in results if r.refine_needed]
    return sum(1 for r in flagged if r.draft.correct is False) / len(flagged) if flagged else 0.0


def evaluate_pipeline(
    pipeline,
    problems,
    threshold: float | None = None,
    best_of: int = 3,
    seed: int = 0,
    batch_size: int = 128,
    progress=None,
) -> tuple[list[GloreResult], dict]:
    """Run GLoRe on problems (with the ORM-critique ablation and the best-of-3 baseline); returns results, tables.

    Under a multi-process launch each rank runs batches r, r + n, ... and every rank gets all results
    in problem order. A batch is seeded by its start, so the results equal one process's.
    """

    def run(start: int, chunk: list) -> list[GloreResult]:
        return pipeline.run_batch(
            [p.question for p in chunk],
            [p.answer for p in chunk],
            threshold=threshold,
            orm_critique=True,
            best_of=best_of,
            seed=seed + start,
        )

    results = distributed.map_batches(problems, batch_size, run, progress)
    return results, refinement_tables(results)


def run_pipeline_eval(
    models: GloreModels, config: PipelineEvalConfig, tracker: Tracker | None = None, progress: bool = True
) -> tuple[list[GloreResult], dict]:
    """`glore-train eval`: GLoRe on config's problems; every case stored (tracker.log_cases), T2/T3 logged."""
    from ..pipeline import GlorePipeline, to_case
    from ..tasks.model_task import load_eval_problems

    tracker = ensure(tracker)
    problems = load_eval_problems(config.data, config.split, config.limit, config.data_seed, models.paths["student"])
    with progress_bar(len(problems), "GLoRe pipeline", progress) as bar:
        results, tables = evaluate_pipeline(
            GlorePipeline(models, threshold=config.threshold, weakest=config.weakest),
            problems,
            best_of=config.best_of,
            seed=config.seed,
            batch_size=config.batch_size,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    tracker.log_cases([to_case(r, i, p.id).to_json() for i, (r, p) in enumerate(zip(results, problems))])
    log_numbers(tracker, tables["metrics"])
    tracker.set_summary({"tables_md": {"T2": tables["T2"], "T3": tables["T3"]}, "cases": len(results)})
    return results, tables
