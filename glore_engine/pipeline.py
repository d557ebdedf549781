"""GLoRe inference: draft -> ORM/SORM scores -> first error -> global + local refinement -> ORM rerank.

when:  the ORM's score of the whole draft (refine_needed = below `when_threshold`);
where: the first step whose SORM score is below `threshold` (default CRITIQUE_THRESHOLD, 0.8); the
       local refiner starts there, or, when no step is below it, from the weakest step (every draft
       gets a local refinement; the rerank keeps the draft when it was right);
how:   one global and one local refinement, greedy;
pick:  the ORM's highest-scoring of {draft, global, local} (the paper's headline method).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from .errors import DataError
from .family import GloreModels
from .formats import global_prompt, join_steps, local_prompt, student_prompt
from .records import EvalCase
from .side_by_side import independent, side_by_side
from .tasks.answers import extract_answer, is_correct
from .tasks.steps import split_steps

MAX_QUESTION_CHARS = 4000
# The SORM critique's default: the first step scoring below it is the first error, where the local
# refiner starts. Not the natural 0.5: the demo SORM's scores fall late (at 0.5 it marks a step after
# the real error in over half of the wrong drafts). 0.8 gave the most exact marks and local fixes on the
# synthetic dev split, so the test split stays untouched by the choice (docs/where.md).
CRITIQUE_THRESHOLD = 0.8


@dataclass
class Candidate:
    kind: str  # "draft" | "global" | "local" | "sample"
    text: str
    steps: list[str]
    answer: str | None
    orm_steps: list[float] = field(default_factory=list)
    sorm_steps: list[float] = field(default_factory=list)
    correct: bool | None = None
    kept_steps: int = 0  # local refinement: draft steps kept before the marked error
    unchanged: bool = False  # local refinement skipped: the critique found no error

    @property
    def orm_score(self) -> float:
        return self.orm_steps[-1] if self.orm_steps else 0.0


@dataclass
class GloreResult:
    question: str
    gold: str | None
    threshold: float
    draft: Candidate
    first_error: int  # SORM critique: first step below threshold, -1 = none
    first_error_orm: int  # the same rule on the ORM's step scores (ablation)
    refine_needed: bool  # the ORM's "when": draft score below when_threshold
    global_refinement: Candidate
    local_refinement: Candidate
    choice: str  # kind the ORM picked among draft, global, local
    timings: dict = field(default_factory=dict)
    local_orm_critique: Candidate | None = None  # evaluation only
    samples: list[Candidate] = field(default_factory=list)  # evaluation only: best-of-3 baseline
    # Why the scores may mean little here (problem or draft unlike the training data): familiarity.py
    warnings: list[str] = field(default_factory=list)
    local_mark: int = -1  # the step the local refiner started from: first_error, else the weakest step

    @property
    def candidates(self) -> list[Candidate]:
        return [self.draft, self.global_refinement, self.local_refinement]

    @property
    def chosen(self) -> Candidate:
        return {c.kind: c for c in self.candidates}[self.choice]

    def to_dict(self) -> dict:
        return asdict(self)


def first_below(scores: list[float], threshold: float) -> int:
    for i, s in enumerate(scores):
        if s < threshold:
            return i
    return -1


def local_mark(scores: list[float], threshold: float, weakest: bool = True) -> int:
    """The step a local refinement starts from: the first below threshold, else (weakest) the lowest-scoring.

    Measured on the demo family (docs/where.md): with marks only below 0.5 a quarter of the wrong drafts
    got no local refinement at all; the weakest step is as often the real first error as the 0.5 rule.
    """
    first = first_below(scores, threshold)
    if first >= 0 or not weakest or not scores:
        return first
    return min(range(len(scores)), key=lambda i: scores[i])


def check_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise DataError("the problem is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise DataError(f"the problem is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}")
    if not any(ch.isdigit() for ch in question):
        raise DataError("the problem has no numbers: GLoRe's models solve arithmetic word problems")
    return question


class GlorePipeline:
    """GLoRe inference over a loaded family: draft, score, find the first error, refine, rerank.

    `run` takes one question (optionally the user's own draft) and returns a GloreResult; `run_batch`
    does the same for many at once, every stage batched across questions, and can add the ORM-critique
    ablation and the best-of-N baseline that tables T2/T3 need (evaluation.pipeline_eval).

    threshold: a step whose SORM score is below it is the first error (where);
    when_threshold: a draft whose ORM score is below it needs refining (when; reported, the rerank decides);
    weakest: with no step below threshold, refine locally from the weakest step (else the draft stands);
    max_new_tokens: the cap on every generation (draft, refinements, samples).
    Everything is greedy except the baseline's samples (temperature 1, seeded).
    """

    def __init__(
        self,
        models: GloreModels,
        threshold: float = CRITIQUE_THRESHOLD,
        when_threshold: float = 0.5,
        max_new_tokens: int = 256,
        weakest: bool = True,
    ):
        self.models = models
        self.weakest = weakest
        self.threshold = threshold
        self.when_threshold = when_threshold
        self.max_new_tokens = max_new_tokens
        self._reference: dict | None = None  # the student's range on its test split, measured on first use

    def run(
        self, question: str, gold: str | None = None, draft: str | None = None, threshold: float | None = None
    ) -> GloreResult:
        """One question (optionally with the user's own draft) through the whole pipeline."""
        question = check_question(question)
        if draft is not None and not split_steps(draft):
            raise DataError("the draft has no steps: write one reasoning step per line")
        drafts: list[str | None] | None = [draft] if draft is not None else None
        return self.run_batch([question], [gold], drafts=drafts, threshold=threshold, warn=True)[0]

    def familiarity(self, question: str, steps: list[str]):
        """How far the problem and draft are from the family's training data (familiarity.check)."""
        return self.familiarity_batch([(question, steps)])[0]

    def familiarity_batch(self, items: list[tuple[str, list[str]]], known=None):
        """familiarity for many (question, steps), the student's passes batched; known: per item the
        draft's log-probability per token from the student's sampler when it wrote the draft, or None."""
        from .familiarity import check_batch, family_range

        student = self.models.student
        model, tokenizer = getattr(student, "model", None), getattr(student, "tokenizer", None)
        folder = self.models.paths.get("student")
        if self._reference is None and model is not None and folder:
            self._reference = family_range(folder, model, tokenizer)
        return check_batch(items, model, tokenizer, self._reference, known)

    def run_batch(
        self,
        questions: list[str],
        golds: list[str | None] | None = None,
        drafts: list[str | None] | None = None,
        threshold: float | None = None,
        orm_critique: bool = False,
        best_of: int = 0,
        seed: int = 0,
        warn: bool = False,
    ) -> list[GloreResult]:
        """Batched pipeline; orm_critique and best_of add the ablation and baseline.

        warn: also say, per result, how far its problem and draft are from the family's training data
        (`familiarity`), as Inspect shows before the scores; evaluation on the family's own task skips it.
        """
        threshold = self.threshold if threshold is None else threshold
        golds = golds or [None] * len(questions)
        timings: dict = {}
        t0 = time.perf_counter()
        texts, draft_lps = self._drafts(questions, drafts)
        timings["draft_s"] = time.perf_counter() - t0
        draft_c = [self._candidate("draft", t, g) for t, g in zip(texts, golds)]
        t1 = time.perf_counter()
        self._score(questions, draft_c)
        timings["score_s"] = time.perf_counter() - t1
        firsts = [first_below(c.sorm_steps, threshold) for c in draft_c]
        marks = [local_mark(c.sorm_steps, threshold, self.weakest) for c in draft_c]
        marks_orm = [local_mark(c.orm_steps, threshold, self.weakest) for c in draft_c]
        t2 = time.perf_counter()
        calls = [
            lambda: self._global(questions, draft_c, golds),
            lambda: self.refine_locally(questions, draft_c, marks, golds),
        ]
        if orm_critique:
            calls.append(lambda: self.refine_locally(questions, draft_c, marks_orm, golds))
        if warn:  # needs the drafts only: it runs while the longer of the two refiners still writes
            calls.append(lambda: self.familiarity_batch([(q, c.steps) for q, c in zip(questions, draft_c)], draft_lps))
        models = (self.models.global_refiner, self.models.local_refiner, self.models.student)
        globals_, locals_, *rest = side_by_side(calls, enabled=independent(*models))
        local_orm = rest.pop(0) if orm_critique else [None] * len(questions)
        checks = rest.pop(0) if warn else None
        timings["refine_s"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        pending = [
            (q, c)
            for q, trio in zip(questions, zip(globals_, locals_, local_orm))
            for c in trio
            if c is not None and not c.unchanged
        ]
        self._score([q for q, _ in pending], [c for _, c in pending], known=list(zip(questions, draft_c)))
        samples = self._samples(questions, golds, best_of, seed) if best_of else [[] for _ in questions]
        timings["rerank_s"] = time.perf_counter() - t3
        timings["total_s"] = time.perf_counter() - t0
        results = []
        for i, q in enumerate(questions):
            trio = [draft_c[i], globals_[i], locals_[i]]
            choice = max(trio, key=lambda c: c.orm_score).kind
            by_orm = local_orm[i]
            if by_orm is not None and by_orm.unchanged:
                by_orm.orm_steps, by_orm.sorm_steps = draft_c[i].orm_steps, draft_c[i].sorm_steps
            results.append(
                GloreResult(
                    q,
                    golds[i],
                    threshold,
                    draft_c[i],
                    firsts[i],
                    first_below(draft_c[i].orm_steps, threshold),
                    draft_c[i].orm_score < self.when_threshold,
                    globals_[i],
                    locals_[i],
                    choice,
                    dict(timings),
                    local_orm[i],
                    samples[i],
                    local_mark=marks[i],
                )
            )
        if checks is not None:
            for result, check in zip(results, checks):
                result.warnings = check.warnings
        return results

    # ---- stages ---------------------------------------------------------------------------------
    def _candidate(self, kind: str, text: str, gold: str | None, kept: int = 0, unchanged: bool = False) -> Candidate:
        correct = is_correct(text, gold) if gold is not None else None
        return Candidate(
            kind, text, split_steps(text), extract_answer(text), correct=correct, kept_steps=kept, unchanged=unchanged
        )

    def _drafts(self, questions, drafts) -> tuple[list[str], list[float | None]]:
        """The drafts, and per draft the student's log-probability per token where it wrote it (else None)."""
        todo = [i for i, q in enumerate(questions) if not drafts or drafts[i] is None]
        texts = [drafts[i] if drafts and drafts[i] is not None else "" for i in range(len(questions))]
        logprobs: list[float | None] = [None] * len(questions)
        if todo:
            outs = self.models.student.generate(
                [student_prompt(questions[i]) for i in todo], n=1, temperature=0.0, max_new_tokens=self.max_new_tokens
            )
            for i, samples in zip(todo, outs):
                texts[i] = samples[0].text
                logprobs[i] = samples[0].logprob / samples[0].n_tokens if samples[0].n_tokens else None
        return texts, logprobs

    def _score(self, questions, candidates, orm_only: bool = False, known=()) -> None:
        """ORM and SORM step scores for candidates with steps; a stepless candidate scores 0.

        The same (question, steps) is scored once, and not at all when a `known` (question, scored
        candidate) has it: a refinement that rewrote nothing (half of them, on the bundled family)
        takes its draft's scores instead of a second pass through both reward models.
        """
        scores = {(q, tuple(c.steps)): (c.orm_steps, c.sorm_steps) for q, c in known if c.steps}
        live = [(q, c) for q, c in zip(questions, candidates) if c.steps]
        items = list(dict.fromkeys((q, tuple(c.steps)) for q, c in live if (q, tuple(c.steps)) not in scores))
        if items:
            from .models.reward_model import score_together

            pairs = [(q, list(steps)) for q, steps in items]
            if orm_only:
                orm, sorm = self.models.orm.score(pairs), None
            else:
                orm, sorm = score_together([self.models.orm, self.models.sorm], pairs)
            for k, item in enumerate(items):
                scores[item] = (orm[k], sorm[k] if sorm is not None else [])
        for q, c in live:
            orm_steps, sorm_steps = scores[(q, tuple(c.steps))]
            c.orm_steps, c.sorm_steps = list(orm_steps), list(sorm_steps)

    def _global(self, questions, drafts, golds) -> list[Candidate]:
        prompts = [global_prompt(q, d.steps or [d.text]) for q, d in zip(questions, drafts)]
        outs = self.models.global_refiner.generate(prompts, n=1, temperature=0.0, max_new_tokens=self.max_new_tokens)
        return [self._candidate("global", o[0].text, g) for o, g in zip(outs, golds)]

    def refine_locally(self, questions, drafts, firsts, golds) -> list[Candidate]:
        """Refine from the marked first error; with no error found, the draft stands unchanged."""
        out: list[Candidate | None] = [None] * len(questions)
        todo = [i for i, e in enumerate(firsts) if e >= 0 and drafts[i].steps]
        prompts = [local_prompt(questions[i], drafts[i].steps, firsts[i]) for i in todo]
        gens = (
            self.models.local_refiner.generate(prompts, n=1, temperature=0.0, max_new_tokens=self.max_new_tokens)
            if todo
            else []
        )
        for i, g in zip(todo, gens):
            kept = drafts[i].steps[: firsts[i]]
            text = join_steps(kept + [g[0].text]) if kept else g[0].text
            out[i] = self._candidate("local", text, golds[i], kept=len(kept))
        for i, c in enumerate(out):
            if c is None:
                d = drafts[i]
                out[i] = Candidate(
                    "local",
                    d.text,
                    list(d.steps),
                    d.answer,
                    list(d.orm_steps),
                    list(d.sorm_steps),
                    d.correct,
                    kept_steps=len(d.steps),
                    unchanged=True,
                )
        return [c for c in out if c is not None]

    def _samples(self, questions, golds, n: int, seed: int) -> list[list[Candidate]]:
        outs = self.models.student.generate(
            [student_prompt(q) for q in questions], n=n, temperature=1.0, max_new_tokens=self.max_new_tokens, seed=seed
        )
        cands = [[self._candidate("sample", s.text, g) for s in o] for o, g in zip(outs, golds)]
        flat_q = [q for q, cs in zip(questions, cands) for _ in cs]
        flat = [c for cs in cands for c in cs]
        self._score(flat_q, flat, orm_only=True)
        return cands


def result_from_dict(data: dict) -> GloreResult:
    """Inverse of GloreResult.to_dict (stored evaluation cases reopen in the app)."""

    def cand(d):
        return Candidate(**d) if d is not None else None

    from dataclasses import fields as dataclass_fields

    known = {f.name for f in dataclass_fields(GloreResult)}
    fields = {k: v for k, v in data.items() if k in known}
    for key in ("draft", "global_refinement", "local_refinement", "local_orm_critique"):
        fields[key] = cand(fields.get(key))
    fields["samples"] = [cand(s) for s in fields.get("samples", [])]
    return GloreResult(**fields)


def to_case(result: GloreResult, index: int, problem_id: str | None = None) -> EvalCase:
    """The evaluation case of one pipeline result (its to_json() is what db.Store.add_cases takes)."""
    data = result.to_dict()
    data["candidates"] = [
        {"kind": c.kind, "text": c.text, "orm_score": c.orm_score, "correct": c.correct} for c in result.candidates
    ]
    data["final_correct"] = result.chosen.correct
    data["steps"] = list(result.draft.steps)  # the pipeline's step split: human ratings index these
    return EvalCase(
        index=index,
        problem_id=problem_id,
        question=result.question,
        gold=result.gold,
        draft=result.draft.text,
        data=data,
        draft_correct=result.draft.correct,
        global_correct=result.global_refinement.correct,
        local_correct=result.local_refinement.correct,
        final_correct=result.chosen.correct,
    )
