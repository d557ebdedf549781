"""Where local refinement loses: the marks against the wrong drafts' real first errors.

From an evaluation's stored cases (drafts with their SORM and ORM step scores), the wrong drafts are
labelled as the SORM's training data is (K student rollouts from every prefix, then the label rules),
which gives each one's first error (V*). Each marking rule is then compared with it (exact, before,
after, no mark), by the real error's step, and the local refiner is run from every rule's marks and
from the V* mark itself: what a perfect critique would buy is the refiner's own limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import DataError
from ..labelling.postprocess import LabelRules, apply_rules, first_error
from ..labelling.rollouts import label_solutions
from ..pipeline import CRITIQUE_THRESHOLD, GlorePipeline, GloreResult, local_mark
from ..records import LabelledSolution
from .metrics import markdown_table

VSTAR = "V* (rollouts)"


@dataclass(frozen=True)
class MarkRule:
    """A way to pick the local refiner's start: a critic's first step below threshold (else its weakest)."""

    critic: str  # "sorm" | "orm" | "earlier" (the earlier of the SORM's and the ORM's marks) | "vstar"
    threshold: float = 0.5
    weakest: bool = False
    back: int = 0  # move the mark this many steps earlier (not before the first step)

    @property
    def key(self) -> str:
        """The rule in a metric name: sorm_0.5, sorm_0.5_weakest, sorm_0.5_weakest_back1, vstar."""
        if self.critic == "vstar":
            return "vstar"
        weakest = "_weakest" if self.weakest else ""
        return f"{self.critic}_{self.threshold:g}{weakest}" + (f"_back{self.back}" if self.back else "")

    @property
    def name(self) -> str:
        if self.critic == "vstar":
            return VSTAR
        critic = "earlier of SORM and ORM" if self.critic == "earlier" else self.critic.upper()
        rest = ", else the weakest step" if self.weakest else ""
        back = f", {self.back} step{'s' if self.back > 1 else ''} earlier" if self.back else ""
        return f"{critic} < {self.threshold:g}{rest}{back}"

    @classmethod
    def parse(cls, text: str) -> MarkRule:
        """A rule from its command-line spelling: `vstar`, or CRITIC<THRESHOLD[,weakest][,back=N]
        with CRITIC sorm, orm or earlier; e.g. `sorm<0.7,weakest,back=1`."""
        spelling = "vstar, or CRITIC<THRESHOLD[,weakest][,back=N] with CRITIC sorm, orm or earlier"
        head, *options = [part.strip() for part in text.strip().lower().split(",")]
        if head == "vstar" and not options:
            return cls("vstar")
        critic, sep, number = head.partition("<")
        if not sep or critic not in {"sorm", "orm", "earlier"}:
            raise DataError(f"mark rule {text!r}: write {spelling}")
        try:
            threshold = float(number)
        except ValueError:
            raise DataError(f"mark rule {text!r}: the threshold {number!r} is not a number") from None
        if not 0.0 <= threshold <= 1.0:
            raise DataError(f"mark rule {text!r}: the threshold must be within 0..1")
        weakest, back = False, 0
        for option in options:
            if option == "weakest":
                weakest = True
            elif option.startswith("back=") and option[5:].isdigit():
                back = int(option[5:])
            else:
                raise DataError(f"mark rule {text!r}: unknown option {option!r} (weakest, back=N)")
        return cls(critic, threshold, weakest, back)

    def marks(self, result: GloreResult) -> int:
        draft = result.draft
        if self.critic == "earlier":
            found = [local_mark(s, self.threshold, self.weakest) for s in (draft.sorm_steps, draft.orm_steps)]
            found = [m for m in found if m >= 0]
            mark = min(found) if found else -1
        else:
            scores = draft.sorm_steps if self.critic == "sorm" else draft.orm_steps
            mark = local_mark(scores, self.threshold, self.weakest)
        return max(0, mark - self.back) if mark >= 0 else mark


DEFAULT_RULES = (
    MarkRule("sorm", 0.5),
    MarkRule("sorm", 0.5, weakest=True),
    MarkRule("sorm", 0.7),
    MarkRule("sorm", CRITIQUE_THRESHOLD, weakest=True),  # the pipeline's default, chosen on the dev split
    MarkRule("orm", 0.5, weakest=True),
    MarkRule("sorm", 0.5, weakest=True, back=1),
    MarkRule("earlier", 0.5, weakest=True),
    MarkRule("vstar"),
)


@dataclass
class RuleOutcome:
    """One rule over the wrong drafts: where its marks fall against the real first error, and the fixes."""

    rule: str
    key: str
    n: int
    exact: int = 0
    before: int = 0
    after: int = 0  # marks placed after the real error: the wrong step is kept
    none: int = 0  # no mark: no local refinement
    fixed: int = 0  # local refinements from these marks that are correct
    exact_by_step: dict[int, int] = field(default_factory=dict)  # real error step (1-based) -> exact marks

    def share(self, count: int) -> float:
        return 100.0 * count / self.n if self.n else 0.0


@dataclass
class WhereReport:
    rules: list[RuleOutcome]
    errors_by_step: dict[int, int]  # real first-error step (1-based) -> wrong drafts
    global_fixed: int  # the stored global refinements of the same drafts that are correct
    n: int
    k: int


def label_first_errors(
    student, results: Sequence[GloreResult], k: int, seed: int, max_new_tokens: int = 160
) -> list[int]:
    """The V* first error (0-based) of each wrong draft: K rollouts per prefix, consistency and propagation on."""
    solutions = [
        LabelledSolution(problem_id=str(i), question=r.question, gold=r.gold or "", text=r.draft.text,
                         steps=list(r.draft.steps), correct=False)
        for i, r in enumerate(results)
    ]  # fmt: skip
    labelled = label_solutions(student, solutions, k=k, temperature=1.0, max_new_tokens=max_new_tokens, seed=seed)
    # a wrong solution's own last label is 0, so every one has a first error
    return [first_error(s.labels) for s in apply_rules(labelled, LabelRules(balance=False))]


def position(mark: int, truth: int) -> str:
    if mark < 0:
        return "none"
    return "exact" if mark == truth else ("before" if mark < truth else "after")


def where_study(
    pipeline: GlorePipeline,
    results: Sequence[GloreResult],
    rules: Sequence[MarkRule] = DEFAULT_RULES,
    k: int = 8,
    seed: int = 1,
) -> WhereReport:
    """The report over the judged wrong drafts of `results` (needs the pipeline's student and local refiner)."""
    wrong = [r for r in results if r.draft.correct is False and r.draft.steps]
    if not wrong:
        raise DataError("no wrong drafts with steps among these cases: nothing for local refinement to fix")
    truths = label_first_errors(pipeline.models.student, wrong, k, seed, pipeline.max_new_tokens)
    errors_by_step: dict[int, int] = {}
    for t in truths:
        errors_by_step[t + 1] = errors_by_step.get(t + 1, 0) + 1
    questions, drafts, golds = [r.question for r in wrong], [r.draft for r in wrong], [r.gold for r in wrong]
    outcomes = []
    for rule in rules:
        marks = truths if rule.critic == "vstar" else [rule.marks(r) for r in wrong]
        refined = pipeline.refine_locally(questions, drafts, marks, golds)
        out = RuleOutcome(rule.name, rule.key, len(wrong))
        for mark, truth, cand in zip(marks, truths, refined):
            where = position(mark, truth)
            setattr(out, where, getattr(out, where) + 1)
            if where == "exact":
                out.exact_by_step[truth + 1] = out.exact_by_step.get(truth + 1, 0) + 1
            out.fixed += bool(cand.correct) and not cand.unchanged
        outcomes.append(out)
    global_fixed = sum(bool(r.global_refinement.correct) for r in wrong)
    return WhereReport(outcomes, dict(sorted(errors_by_step.items())), global_fixed, len(wrong), k)


def where_table(report: WhereReport) -> str:
    """Marks against the real first error, and the local fix rate from each rule's marks."""
    steps = list(report.errors_by_step)
    headers = ["mark", "exact %", "before %", "after %", "no mark %", "local fix %"]
    headers += [f"exact, error at step {s} (n={report.errors_by_step[s]}) %" for s in steps]
    rows = []
    for o in report.rules:
        row = [o.rule] + [f"{o.share(c):.1f}" for c in (o.exact, o.before, o.after, o.none, o.fixed)]
        row += [f"{100.0 * o.exact_by_step.get(s, 0) / report.errors_by_step[s]:.1f}" for s in steps]
        rows.append(row)
    glob = f"{100.0 * report.global_fixed / report.n:.1f}"
    rows.append(["(global refinement, no mark)", "-", "-", "-", "-", glob] + ["-"] * len(steps))
    return markdown_table(headers, rows)


def report_metrics(report: WhereReport) -> dict[str, float]:
    """Flat numbers for the run record: where/<rule>/<what>."""
    out: dict[str, float] = {"where/wrong_drafts": report.n, "where/global_fix": report.global_fixed / report.n}
    for o in report.rules:
        for what in ("exact", "before", "after", "none", "fixed"):
            out[f"where/{o.key}/{what}"] = getattr(o, what) / o.n
    return out
