"""The unit of every dataset: one maths word problem with its gold solution."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    id: str  # stable across runs: "gsm8k-test-17", "synth-train-3-00042"
    question: str
    solution: str  # gold solution: one step per line, last line "#### <answer>"
    answer: str  # canonical final answer (see answers.canonical)
    meta: dict = field(default_factory=dict, compare=False, hash=False)  # n_steps, template, source

    @property
    def n_steps(self) -> int:
        from .steps import split_steps

        return len(split_steps(self.solution))
