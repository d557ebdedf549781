"""The records the stages pass each other and write to disk, one typed definition each.

    QuestionSamples   one training question with its distinct graded samples (orm-data.jsonl, ORM data)
      GradedSample    one distinct sampled solution: steps, final-answer grade, multiplicity
    LabelledSolution  one sampled solution with its verifying rollouts (sorm-labels.jsonl, SORM data);
                      after the label rules (labelling.postprocess) also its per-step labels
      PrefixRollouts  the K rollouts from one step prefix, counted
    RefinementExample one global pair or local triple, as the refiner trains on it
    EvalCase          one problem's pipeline result as the store keeps it (tracker.log_cases)

On disk every record is one JSON object per line. `to_json` writes the keys the files have always
had, in the same order; `from_json` reads those files back, including ones written before a key
existed (a missing `count` is 1, a missing `logprob` None), and ignores keys it does not know.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _known(cls, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(kw_only=True)
class GradedSample:
    text: str
    steps: list[str]
    answer: str | None = None  # the final answer extracted from the text, None if it has none
    correct: bool
    logprob: float | None = None  # the student's summed log-probability of the text
    n_tokens: int = 0
    finished: bool = True  # stopped on its own rather than at max_new_tokens
    count: int = 1  # how many of the question's samples had exactly this text

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GradedSample:
        return cls(**_known(cls, data))


@dataclass(kw_only=True)
class QuestionSamples:
    problem_id: str
    question: str
    gold: str
    n_samples: int = 0  # samples drawn (before merging identical texts)
    samples: list[GradedSample] = field(default_factory=list)

    @property
    def mixed(self) -> bool:
        """Both right and wrong samples: the questions that teach a verifier to tell samples apart."""
        return {s.correct for s in self.samples} == {True, False}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "samples": [s.to_json() for s in self.samples]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuestionSamples:
        known = _known(cls, data)
        known["samples"] = [GradedSample.from_json(s) for s in data.get("samples", [])]
        return cls(**known)


@dataclass(kw_only=True)
class PrefixRollouts:
    k: int  # rollouts drawn from the prefix
    correct: int  # how many reached the gold answer
    consistent_correct: int  # of those, how many used the prefix's intermediate result R_i
    pos: str | None = None  # the first consistent correct rollout (a local refiner's target)
    neg: str | None = None  # the first incorrect rollout (a local refiner's draft)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrefixRollouts:
        return cls(**_known(cls, data))


@dataclass(kw_only=True)
class LabelledSolution:
    """A sampled solution to label; once labelled, `results` and `rollouts` (one per prefix P_1..P_{L-1}).

    `labels`, `soft_labels` and `mask` are empty until `postprocess.apply_rules` fills them (they are
    never stored: the rules are applied when the labels are used, so each one can be switched off)."""

    problem_id: str
    question: str
    gold: str
    text: str = ""
    steps: list[str]
    correct: bool
    count: int = 1
    logprob: float | None = None
    results: list[str | None] = field(default_factory=list)  # R_i, the number each step computes
    rollouts: list[PrefixRollouts] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # hard V* label per step (1 = can still succeed)
    soft_labels: list[float] = field(default_factory=list)  # fraction of verifying rollouts per step
    mask: list[float] = field(default_factory=list)  # 0 drops a step's label (balancing)

    @classmethod
    def of_sample(cls, record: QuestionSamples, sample: GradedSample) -> LabelledSolution:
        return cls(
            problem_id=record.problem_id,
            question=record.question,
            gold=record.gold,
            text=sample.text,
            steps=sample.steps,
            correct=sample.correct,
            count=sample.count,
            logprob=sample.logprob,
        )

    def to_json(self) -> dict[str, Any]:
        data = {**asdict(self), "rollouts": [p.to_json() for p in self.rollouts]}
        for key in ("labels", "soft_labels", "mask"):  # the rules' output, present only once applied
            if not data[key]:
                del data[key]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelledSolution:
        known = _known(cls, data)
        known["rollouts"] = [PrefixRollouts.from_json(p) for p in data.get("rollouts", [])]
        return cls(**known)


@dataclass(frozen=True)
class RefinementExample:
    """One refiner training example: a global pair or a local triple, as prompt and target text."""

    prompt: str  # the refinement prompt: question, draft (with [BAD] for local), "Refinement:"
    target: str  # what the refiner should write after the prompt
    kind: str  # "global" | "local"


@dataclass(kw_only=True)
class EvalCase:
    """One evaluated problem as the store keeps it: outcomes as columns, the whole result in `data`."""

    index: int
    problem_id: str | None = None
    question: str
    gold: str | None = None
    draft: str
    data: dict[str, Any] = field(default_factory=dict)  # GloreResult.to_dict() + candidates, steps
    tags: list[str] = field(default_factory=list)
    draft_correct: bool | None = None
    global_correct: bool | None = None
    local_correct: bool | None = None
    final_correct: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalCase:
        return cls(**_known(cls, data))


def samples_from_json(rows) -> list[QuestionSamples]:
    return [QuestionSamples.from_json(r) for r in rows]


def solutions_from_json(rows) -> list[LabelledSolution]:
    return [LabelledSolution.from_json(r) for r in rows]
