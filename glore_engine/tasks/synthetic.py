"""The project's own GSM8K-format arithmetic word problems: seeded, deterministic, with difficulty knobs.

Every problem is 2-4 (by default) one-sentence steps with calculator annotations and a final
"#### n" line; all intermediate results are non-negative integers. A question's split is decided by
a hash of its text, so train, dev and test never share a question whatever the seeds.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from ..errors import ConfigError
from .families import FAMILIES
from .problem import Problem
from .templates import GOODS, NAMES, Move, Reject, Story

SPLITS = ("train", "dev", "test")
_SPLIT_BUCKETS = ("train",) * 14 + ("dev",) * 3 + ("test",) * 3  # 70 / 15 / 15 % of all questions
STEP_RANGE = (1, 5)
_LIMITS = {"max_count": (2, 10_000), "max_multiplier": (2, 100), "max_price": (1, 10_000)}


@dataclass
class TaskConfig:
    """Difficulty knobs: counts are drawn in 2..max_count, multipliers and divisors in
    2..max_multiplier, prices in 1..max_price; derived numbers (a book's pages, a bill) may exceed them."""

    min_steps: int = 2
    max_steps: int = 4
    max_count: int = 20
    max_multiplier: int = 5
    max_price: int = 10
    templates: list[str] | None = None  # family names; None: all of FAMILIES

    def __post_init__(self):
        for key in ("min_steps", "max_steps", *_LIMITS):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"task config: {key} must be an integer, got {value!r}")
        lo, hi = STEP_RANGE
        if not lo <= self.min_steps <= self.max_steps <= hi:
            raise ConfigError(
                f"task config: need {lo} <= min_steps <= max_steps <= {hi}, "
                f"got min_steps={self.min_steps}, max_steps={self.max_steps}"
            )
        for key, (low, high) in _LIMITS.items():
            if not low <= getattr(self, key) <= high:
                raise ConfigError(f"task config: {key} must be in {low}..{high}, got {getattr(self, key)}")
        self.templates = self._checked_templates()

    def _checked_templates(self) -> list[str] | None:
        if self.templates is None:
            return None
        if isinstance(self.templates, str) or not all(isinstance(t, str) for t in self.templates):
            raise ConfigError(f"task config: templates must be a list of names, got {self.templates!r}")
        unknown = [t for t in self.templates if t not in FAMILIES]
        if unknown or not self.templates:
            problem = f"unknown templates {unknown}" if unknown else "no templates"
            raise ConfigError(f"task config: {problem}; choose from {list(FAMILIES)}")
        return list(dict.fromkeys(self.templates))  # drop repeats, keep order

    @property
    def families(self) -> list[str]:
        return self.templates or list(FAMILIES)


def split_of(question: str) -> str:
    """The split a question belongs to, from a hash of its text (stable across runs and machines)."""
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return _SPLIT_BUCKETS[int.from_bytes(digest[:8], "big") % len(_SPLIT_BUCKETS)]


def generate(split: str, n: int, seed: int = 0, config: TaskConfig | None = None) -> list[Problem]:
    """n distinct problems of `split`; the same arguments always give the same list (and a smaller n
    gives a prefix of it)."""
    config = config or TaskConfig()
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; the synthetic task has {list(SPLITS)}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ConfigError(f"number of problems must be a non-negative integer, got {n!r}")
    # sha256, not hash(): Python salts str hashes per process
    rng = random.Random(int.from_bytes(hashlib.sha256(f"synthetic/{split}/{seed}".encode()).digest()[:8], "big"))
    seen: set[str] = set()
    problems: list[Problem] = []
    for _ in range(100 * n + 1000):  # bounded: tight knobs may allow fewer distinct questions than n
        if len(problems) == n:
            break
        drawn = _draw(rng, config)
        if drawn is None:
            continue
        story, family, k = drawn
        question = " ".join(story.facts + [story.ask])
        if question in seen or split_of(question) != split:
            continue
        seen.add(question)
        problems.append(
            Problem(
                id=f"synth-{split}-{seed}-{len(problems):05d}",
                question=question,
                solution="\n".join(story.steps + [f"#### {story.value}"]),
                answer=str(story.value),
                meta={"source": "synthetic", "n_steps": k, "template": family},
            )
        )
    if len(problems) < n:
        raise ConfigError(
            f"could only make {len(problems)} distinct {split} problems of the {n} asked with {config}; "
            "raise max_count / max_multiplier / max_price, or allow more steps or templates"
        )
    return problems


def _draw(rng: random.Random, config: TaskConfig) -> tuple[Story, str, int] | None:
    """One story of a random family and step count, or None when the draw cannot be completed."""
    family = FAMILIES[rng.choice(config.families)]
    k = rng.randint(config.min_steps, config.max_steps)
    story = Story(
        rng,
        config.max_count,
        config.max_multiplier,
        config.max_price,
        people=rng.sample(NAMES, 6),
        goods=rng.sample(GOODS, len(GOODS)),
    )
    try:
        _apply_one(story, family.starts)
        while len(story.steps) < k:
            left = k - len(story.steps)
            _apply_one(story, [m for m in family.moves if _fits(m, left, story.phase)])
    except Reject:
        return None
    return story, family.name, k


def _fits(move: Move, left: int, phase: str) -> bool:
    """A move fits if it does not overshoot the step count and a final move ends the story exactly."""
    return move.steps <= left and (not move.final or move.steps == left) and move.phase in (None, phase)


def _apply_one(story: Story, moves: list[Move]) -> None:
    """Apply the first of `moves`, in random order, that can apply; Reject if none can."""
    for move in story.rng.sample(moves, len(moves)):
        saved = story.snapshot()
        try:
            move.write(story)
            return
        except Reject:
            story.restore(saved)
    raise Reject
