"""Building blocks of the synthetic task: a Story told as a chain of one-operation steps, and its words.

A story starts with one step, then adds moves until it has the requested number of steps. Every
step is one sentence with a GSM8K calculator annotation, e.g. "Tom buys 3 packs of 4 pens, so he has
3*4=<<3*4=12>>12 pens."; its result is the story's running value. Moves that cannot apply (a
subtraction below zero, an inexact division) raise Reject and the generator tries something else.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

NAMES = [
    ("Tom", "he"),
    ("Mia", "she"),
    ("Sam", "he"),
    ("Ava", "she"),
    ("Ben", "he"),
    ("Lily", "she"),
    ("Jack", "he"),
    ("Emma", "she"),
    ("Leo", "he"),
    ("Zoe", "she"),
    ("Omar", "he"),
    ("Nora", "she"),
    ("Ravi", "he"),
    ("Chloe", "she"),
    ("Diego", "he"),
    ("Grace", "she"),
    ("Ethan", "he"),
    ("Hana", "she"),
    ("Felix", "he"),
    ("Ivy", "she"),
    ("Noah", "he"),
    ("Sofia", "she"),
    ("Liam", "he"),
    ("Maya", "she"),
    ("Owen", "he"),
    ("Ella", "she"),
    ("Kai", "he"),
    ("Ruby", "she"),
    ("Max", "he"),
    ("Anna", "she"),
]
PRONOUNS = {"he": ("he", "his", "him"), "she": ("she", "her", "her")}
COLLECTIBLES = ["marbles", "stickers", "cards", "shells", "stamps", "pencils", "beads", "buttons", "crayons", "rocks"]
GOODS = [
    ("notebook", "notebooks"),
    ("pen", "pens"),
    ("apple", "apples"),
    ("sandwich", "sandwiches"),
    ("toy car", "toy cars"),
    ("book", "books"),
    ("cupcake", "cupcakes"),
    ("ticket", "tickets"),
    ("mug", "mugs"),
    ("plant", "plants"),
]
GROUPS = ["students", "players", "children", "scouts", "campers"]
PLACES = ["school trip", "sports day", "summer camp", "park", "science fair"]
BILLS = [5, 10, 20, 50, 100, 200, 500, 1000]
FRACTION_WORDS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}


class Reject(Exception):
    """This draw cannot be completed as asked (e.g. nothing divides the running value)."""


@dataclass
class Story:
    """A story being written: question sentences, solution steps and the running value."""

    rng: random.Random
    max_count: int
    max_multiplier: int
    max_price: int
    people: list  # [(name, pronoun)], distinct, people[0] is the main character
    facts: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    value: int = 0
    ask: str = ""
    phase: str = ""  # family-specific stage, e.g. reading: "read" then "left"
    noun: str = ""  # the unit being counted ("marbles", "pages")
    chain: list = field(default_factory=list)  # comparisons: [(person, count)] in the order introduced
    goods: list = field(default_factory=list)  # shopping: [(item, items)] not yet bought

    # -- the main character, in the forms a sentence needs
    @property
    def name(self) -> str:
        return self.people[0][0]

    def he(self, form: int = 0, cap: bool = False) -> str:
        word = PRONOUNS[self.people[0][1]][form]
        return word.capitalize() if cap else word

    # -- operands, drawn within the difficulty knobs
    def count(self, lo: int = 2) -> int:
        if lo > self.max_count:
            raise Reject
        return self.rng.randint(lo, self.max_count)

    def mult(self) -> int:
        return self.rng.randint(2, self.max_multiplier)

    def price(self) -> int:
        return self.rng.randint(1, self.max_price)

    def divisor(self, value: int) -> int:
        """A multiplier that divides value exactly (divisions are always exact)."""
        options = [d for d in range(2, self.max_multiplier + 1) if value % d == 0]
        if not options:
            raise Reject
        return self.rng.choice(options)

    def subtrahend(self, value: int, hi: int, lo: int = 2) -> int:
        """A number to take away leaving at least 1; half the time one that needs a borrow."""
        options = list(range(lo, min(hi, value - 1) + 1))
        if not options:
            raise Reject
        borrow = [c for c in options if c % 10 > value % 10]  # the slip a small student makes
        return self.rng.choice(borrow if borrow and self.rng.random() < 0.5 else options)

    def step(self, before: str, a: int, op: str, b: int, after: str, money: bool = False) -> int:
        """Append one solution line "before a op b=<<a op b=r>>r after"; r becomes the running value."""
        if (op == "-" and b > a) or (op == "/" and a % b):
            raise Reject  # results stay non-negative integers
        r = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
        expr = f"{a}{op}{b}"
        self.steps.append(f"{before}{expr}={'$' if money else ''}<<{expr}={r}>>{r}{after}")
        self.value = r
        return r

    def snapshot(self) -> tuple:
        """What a failed move may have changed (the rng is deliberately not rewound)."""
        lists = (list(self.facts), list(self.steps), list(self.chain), list(self.goods))
        return lists + (self.value, self.ask, self.phase, self.noun)

    def restore(self, saved: tuple) -> None:
        self.facts, self.steps, self.chain, self.goods, self.value, self.ask, self.phase, self.noun = saved


@dataclass(frozen=True)
class Move:
    """One way to extend a story: writes `steps` solution lines; `final` moves change the question."""

    write: Callable[[Story], None]
    steps: int = 1
    final: bool = False
    phase: str | None = None  # only applies in this phase (None: any)


@dataclass(frozen=True)
class Family:
    name: str
    starts: list  # [Move], each writes exactly one step
    moves: list  # [Move]
