"""The sampling interface every backend implements (transformers here; vLLM optionally)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Sample:
    text: str  # the completion only, without the prompt, cut at the stop
    n_tokens: int  # tokens generated (before the cut)
    logprob: float  # summed log-probability of the generated tokens under the untempered model
    finished: bool  # stopped by EOS / the answer line / a stop string (False: hit max_new_tokens)


@dataclass
class GenerationStats:
    prompts: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0

    def add(self, other: GenerationStats) -> None:
        for name in ("prompts", "samples", "prompt_tokens", "generated_tokens", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def joint(cls, shares: list[GenerationStats]) -> GenerationStats:
        """The ranks' stats of one job: counts add up; seconds is the slowest rank's, as they ran side by side."""
        total = cls()
        for share in shares:
            total.add(share)
        total.seconds = max((s.seconds for s in shares), default=0.0)
        return total


class Backend(Protocol):
    """generate(prompts, n, ...) -> one list of n Samples per prompt, in prompt order."""

    stats: GenerationStats

    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
        calculator: bool = False,
    ) -> list[list[Sample]]: ...
