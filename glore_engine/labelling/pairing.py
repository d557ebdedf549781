"""Refinement data from samples already drawn (docs/method.md sections 2.3-2.4); no extra sampling.

global pairs:   (question, incorrect sample) -> a correct sample of the same question;
local triples:  for a solution whose V* labels go positive at P_i and negative at P_{i+1},
                draft = an incorrect solution starting with S_1..S_{i+1}, [BAD] before step i+1,
                target = a correct rollout from P_i (keeps S_1..S_i).
"""

from __future__ import annotations

import random

from ..formats import global_prompt, join_steps, local_prompt
from ..records import LabelledSolution, QuestionSamples, RefinementExample
from ..tasks.steps import split_steps
from .postprocess import LabelRules, apply_rules, first_error


def global_pairs(records: list[QuestionSamples], max_per_question: int = 4, seed: int = 0) -> list[RefinementExample]:
    """ORM-data records -> (incorrect -> correct) pairs, each incorrect sample paired with a random correct one."""
    rng = random.Random(seed)
    out = []
    for r in records:
        good = [s for s in r.samples if s.correct and s.steps]
        bad = [s for s in r.samples if not s.correct and s.steps]
        if not good or not bad:
            continue
        rng.shuffle(bad)
        for s in bad[:max_per_question]:
            target = rng.choice(good)
            out.append(RefinementExample(global_prompt(r.question, s.steps), target.text, "global"))
    return out


def _correct_by_question(labelled: list[LabelledSolution]) -> dict[str, list[LabelledSolution]]:
    out: dict[str, list[LabelledSolution]] = {}
    for r in labelled:
        if r.correct:
            out.setdefault(r.problem_id, []).append(r)
    return out


def local_triple(
    record: LabelledSolution, correct_samples: list[LabelledSolution], rng: random.Random
) -> RefinementExample | None:
    """The triple of one labelled solution (after the label rules), or None when it has no clean first error."""
    e = first_error(record.labels)
    if e < 0:
        return None
    steps = record.steps
    if record.correct:
        neg = record.rollouts[e].neg if e < len(record.rollouts) else None
        if neg is None:
            return None
        draft = steps[: e + 1] + split_steps(neg)
    else:
        draft = steps  # the sample itself is an incorrect solution through P_{e+1}
    if e == 0:
        if not correct_samples:
            return None
        target = rng.choice(correct_samples).steps
    else:
        pos = record.rollouts[e - 1].pos
        if pos is None:
            return None
        target = steps[:e] + split_steps(pos)
    if len(draft) <= e or not target[e:]:
        return None
    return RefinementExample(local_prompt(record.question, draft, e), join_steps(target[e:]), "local")


def rollout_triples(record: LabelledSolution) -> list[RefinementExample]:
    """Triples from the failing rollouts of a solution's verified prefixes.

    A verified prefix P_i (label 1) whose stored failing rollout `neg` went wrong gives the draft
    P_i + neg, marked at neg's first step, and the target P_i + a verifying continuation (the solution's
    own rest when it is correct, else the prefix's stored `pos`). The mark sits at or before neg's real
    error, as a SORM's often does at inference, and a wrong draft yields one triple per verified prefix
    instead of one in all.
    """
    out = []
    for i in range(1, len(record.steps)):
        stats = record.rollouts[i - 1] if i - 1 < len(record.rollouts) else None
        if stats is None or stats.neg is None or not record.labels[i - 1]:
            continue
        rest = record.steps[i:] if record.correct else split_steps(stats.pos or "")
        wrong = split_steps(stats.neg)
        if not rest or not wrong or wrong[0] == rest[0]:
            continue
        draft = record.steps[:i] + wrong
        out.append(RefinementExample(local_prompt(record.question, draft, i), join_steps(rest), "local"))
    return out


def local_triples(
    labelled: list[LabelledSolution], rules: LabelRules | None = None, seed: int = 0, from_rollouts: bool = False
) -> list[RefinementExample]:
    """Rollout-labelled solutions -> local refinement triples (balancing off: every label is used).

    from_rollouts: also the triples of `rollout_triples` (each distinct prompt once).
    """
    rules = rules or LabelRules(balance=False)
    rng = random.Random(seed)
    records = apply_rules(labelled, LabelRules(rules.consistency, rules.propagate, False, rules.seed))
    correct = _correct_by_question(records)
    out = []
    for r in records:
        triple = local_triple(r, correct.get(r.problem_id, []), rng)
        if triple is not None:
            out.append(triple)
    if from_rollouts:
        seen = {t.prompt for t in out}
        for r in records:
            for triple in rollout_triples(r):
                if triple.prompt not in seen:
                    seen.add(triple.prompt)
                    out.append(triple)
    return out
