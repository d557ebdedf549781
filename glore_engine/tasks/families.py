"""The five template families of the synthetic task: inventory, shopping, comparisons, reading, teams.

Each family is a few starts (the first step) and moves (later steps); see templates.Story.
"""

from __future__ import annotations

from collections.abc import Callable

from .templates import BILLS, COLLECTIBLES, FRACTION_WORDS, GROUPS, PLACES, Family, Move, Reject, Story


# ---------------------------------------------------------------- inventory: has / buys / gives / loses
def _inv_buys(s: Story) -> None:
    s.noun, a, b = s.rng.choice(COLLECTIBLES), s.count(), s.count()
    s.facts += [f"{s.name} has {a} {s.noun}.", f"{s.he(cap=True)} buys {b} more."]
    s.ask = f"How many {s.noun} does {s.name} have now?"
    s.step(f"{s.name} buys {b} more {s.noun}, so {s.he()} has ", a, "+", b, f" {s.noun}.")


def _inv_packs(s: Story) -> None:
    s.noun, m, c = s.rng.choice(COLLECTIBLES), s.mult(), s.count()
    s.facts.append(f"{s.name} buys {m} packs of {c} {s.noun}.")
    s.ask = f"How many {s.noun} does {s.name} have now?"
    s.step(f"{s.name} buys {m} packs of {c} {s.noun}, so {s.he()} has ", m, "*", c, f" {s.noun}.")


def _inv_loses(s: Story) -> None:
    s.noun, a = s.rng.choice(COLLECTIBLES), s.count(lo=3)
    c = s.subtrahend(a, s.max_count)
    s.facts += [f"{s.name} has {a} {s.noun}.", f"{s.he(cap=True)} loses {c} of them."]
    s.ask = f"How many {s.noun} does {s.name} have now?"
    s.step(f"{s.name} loses {c}, so {s.he()} has ", a, "-", c, f" {s.noun} left.")


def _inv_more(s: Story) -> None:
    c = s.count()
    s.facts.append(f"Then {s.he()} buys {c} more.")
    s.step(f"After buying {c} more, {s.he()} has ", s.value, "+", c, f" {s.noun}.")


def _inv_gift(s: Story) -> None:
    friend, c = s.people[1][0], s.count()
    s.facts.append(f"{friend} gives {s.he(2)} {c} {s.noun}.")
    s.step(f"{friend} gives {s.he(2)} {c}, so {s.he()} has ", s.value, "+", c, f" {s.noun}.")


def _inv_gives(s: Story) -> None:
    friend, c = s.people[2][0], s.subtrahend(s.value, s.max_count)
    s.facts.append(f"{s.he(cap=True)} gives {c} {s.noun} to {friend}.")
    s.step(f"{s.he(cap=True)} gives {c} to {friend}, so {s.he()} has ", s.value, "-", c, f" {s.noun} left.")


def _inv_half(s: Story) -> None:
    friend = s.people[3][0]
    s.facts.append(f"{s.he(cap=True)} gives half of {s.he(1)} {s.noun} to {friend}.")
    s.step(f"{s.he(cap=True)} gives away half, so {s.he()} keeps ", s.value, "/", 2, f" {s.noun}.")


def _inv_more_packs(s: Story) -> None:
    had, m, c = s.value, s.mult(), s.count()
    s.facts.append(f"{s.he(cap=True)} also buys {m} packs of {c} {s.noun}.")
    packs = s.step(f"The {m} packs have ", m, "*", c, f" {s.noun}.")
    s.step(f"Now {s.he()} has ", had, "+", packs, f" {s.noun}.")


def _inv_bags(s: Story) -> None:
    d = s.divisor(s.value)
    s.facts.append(f"{s.he(cap=True)} puts all {s.he(1)} {s.noun} into {d} bags with the same number in each.")
    s.ask = f"How many {s.noun} are in each bag?"
    s.step("Each bag has ", s.value, "/", d, f" {s.noun}.")


# ---------------------------------------------------------------- shopping: prices * quantities, totals, change
def _shop_each(s: Story) -> None:
    _item, items = s.goods.pop()
    q, p = s.mult(), s.price()
    s.facts.append(f"{s.name} buys {q} {items} for ${p} each.")
    s.ask = f"How many dollars does {s.name} spend in total?"
    s.step(f"The {items} cost ", q, "*", p, ".", money=True)


def _shop_pair(s: Story) -> None:
    (first, _), (second, _) = s.goods.pop(), s.goods.pop()
    p1, p2 = s.price(), s.price()
    s.facts.append(f"{s.name} buys a {first} for ${p1} and a {second} for ${p2}.")
    s.ask = f"How many dollars does {s.name} spend in total?"
    s.step(f"The {first} and the {second} cost ", p1, "+", p2, " together.", money=True)


def _shop_more_each(s: Story) -> None:
    (_, items), had = s.goods.pop(), s.value
    q, p = s.mult(), s.price()
    s.facts.append(f"{s.he(cap=True)} also buys {q} {items} for ${p} each.")
    cost = s.step(f"The {items} cost ", q, "*", p, ".", money=True)
    s.step(f"In total {s.he()} spends ", had, "+", cost, ".", money=True)


def _shop_one(s: Story) -> None:
    (item, _), p = s.goods.pop(), s.price()
    s.facts.append(f"{s.he(cap=True)} also buys a {item} for ${p}.")
    s.step(f"With the {item}, the total is ", s.value, "+", p, ".", money=True)


def _shop_coupon(s: Story) -> None:
    c = s.subtrahend(s.value, s.max_price, lo=1)
    s.facts.append(f"{s.he(cap=True)} has a coupon for ${c} off.")
    s.step(f"With the coupon {s.he()} pays ", s.value, "-", c, ".", money=True)


def _shop_weeks(s: Story) -> None:
    m = s.mult()
    s.facts.append(f"{s.he(cap=True)} buys the same things every week for {m} weeks.")
    s.step(f"Over {m} weeks {s.he()} spends ", s.value, "*", m, ".", money=True)


def _shop_change(s: Story) -> None:
    bill = next((b for b in BILLS if b > s.value), None)
    if bill is None:
        raise Reject
    s.facts.append(f"{s.he(cap=True)} pays with a ${bill} bill.")
    s.ask = f"How many dollars of change does {s.he()} get?"
    s.step(f"{s.he(1, cap=True)} change is ", bill, "-", s.value, ".", money=True)


def _shop_split(s: Story) -> None:
    k = s.divisor(s.value)
    friends = "a friend" if k == 2 else f"{k - 1} friends"
    s.facts.append(f"{s.he(cap=True)} splits the cost equally with {friends}.")
    s.ask = "How many dollars does each of them pay?"
    s.step(f"Each of the {k} of them pays ", s.value, "/", k, ".", money=True)


# ---------------------------------------------------------------- comparisons: k more / k times / a fraction as many
def _relation(kind: str) -> Callable[[Story], None]:
    """A move: the next person's count relative to the last person in the chain."""

    def write(s: Story) -> None:
        base, value = s.chain[-1]
        new = s.people[len(s.chain)][0]
        if kind == "more":
            c = s.count()
            fact, op, b = f"{new} has {c} more {s.noun} than {base}.", "+", c
        elif kind == "fewer":
            c = s.subtrahend(value, s.max_count)
            fact, op, b = f"{new} has {c} fewer {s.noun} than {base}.", "-", c
        elif kind == "times":
            m = s.mult()
            fact, op, b = f"{new} has {'twice' if m == 2 else f'{m} times'} as many {s.noun} as {base}.", "*", m
        else:
            d = s.divisor(value)
            fact, op, b = f"{new} has {FRACTION_WORDS.get(d, f'1/{d}')} as many {s.noun} as {base}.", "/", d
        s.facts.append(fact)
        s.ask = f"How many {s.noun} does {new} have?"
        s.chain.append((new, s.step(f"{new} has ", value, op, b, f" {s.noun}.")))

    return write


def _compare_start(kind: str) -> Callable[[Story], None]:
    """The first person's count is given; the first step relates the second person to it."""

    def write(s: Story) -> None:
        s.noun, a = s.rng.choice(COLLECTIBLES), s.count()
        s.facts.append(f"{s.name} has {a} {s.noun}.")
        s.chain = [(s.name, a)]
        _relation(kind)(s)

    return write


def _cmp_together(s: Story) -> None:
    (x, xv), (y, yv) = s.chain[-2], s.chain[-1]
    s.ask = f"How many {s.noun} do {x} and {y} have together?"
    s.step(f"Together {x} and {y} have ", xv, "+", yv, f" {s.noun}.")


def _cmp_difference(s: Story) -> None:
    (big, bv), (small, sv) = sorted(s.chain[-2:], key=lambda person: -person[1])
    if bv == sv:
        raise Reject
    s.ask = f"How many more {s.noun} does {big} have than {small}?"
    s.step(f"{big} has ", bv, "-", sv, f" more {s.noun} than {small}.")


# ---------------------------------------------------------------- reading: pages per day, days, pages left
def _read_per_day(s: Story) -> None:
    s.noun, s.phase, r, d = "pages", "read", s.count(), s.mult()
    s.facts.append(f"{s.name} reads {r} pages of a book every day for {d} days.")
    s.ask = f"How many pages does {s.name} read in total?"
    s.step(f"In {d} days {s.he()} reads ", r, "*", d, " pages.")


def _read_two_days(s: Story) -> None:
    s.noun, s.phase, a, b = "pages", "read", s.count(), s.count()
    s.facts.append(f"{s.name} reads {a} pages of a book on Monday and {b} pages on Tuesday.")
    s.ask = f"How many pages does {s.name} read in total?"
    s.step(f"On Monday and Tuesday {s.he()} reads ", a, "+", b, " pages.")


def _read_more(s: Story) -> None:
    c = s.count()
    s.facts.append(f"Then {s.he()} reads another {c} pages.")
    s.step(f"With another {c} pages, {s.he()} has read ", s.value, "+", c, " pages.")


def _read_left(s: Story) -> None:
    # the book's length is derived, not drawn, so that pages left is a count in range
    total = s.value + s.rng.randint(2, s.max_count * s.max_multiplier)
    s.facts.append(f"The book has {total} pages.")
    s.phase, s.ask = "left", f"How many pages does {s.he()} still have to read?"
    s.step(f"{s.he(cap=True)} still has ", total, "-", s.value, " pages left.")


def _read_next_day(s: Story) -> None:
    c = s.subtrahend(s.value, s.max_count)
    s.facts.append(f"The next day {s.he()} reads {c} more pages.")
    s.step(f"After reading {c} more, {s.he()} has ", s.value, "-", c, " pages left.")


def _read_rest(s: Story) -> None:
    k = s.divisor(s.value)
    s.facts.append(f"{s.he(cap=True)} wants to finish the book in {k} days, reading the same number of pages each day.")
    s.ask = f"How many pages a day does {s.he()} need to read?"
    s.step(f"{s.he(cap=True)} needs to read ", s.value, "/", k, " pages a day.")


# ---------------------------------------------------------------- teams: groups of k, split equally, leftover
def _team_groups(s: Story) -> None:
    s.noun, g, c = s.rng.choice(GROUPS), s.mult(), s.count()
    s.facts.append(f"At the {s.rng.choice(PLACES)} there are {g} groups of {c} {s.noun}.")
    s.ask = f"How many {s.noun} are there in all?"
    s.step("There are ", g, "*", c, f" {s.noun}.")


def _team_boys_girls(s: Story) -> None:
    s.noun, a, b = "children", s.count(), s.count()
    s.facts.append(f"At the {s.rng.choice(PLACES)} there are {a} boys and {b} girls.")
    s.ask = "How many children are there in all?"
    s.step("There are ", a, "+", b, " children.")


def _team_join(s: Story) -> None:
    c = s.count()
    s.facts.append(f"Then {c} more {s.noun} join.")
    s.ask = f"How many {s.noun} are there now?"
    s.step(f"After {c} more join, there are ", s.value, "+", c, f" {s.noun}.")


def _team_leave(s: Story) -> None:
    c = s.subtrahend(s.value, s.max_count)
    s.facts.append(f"Later {c} {s.noun} go home.")
    s.ask = f"How many {s.noun} are there now?"
    s.step(f"After {c} go home, there are ", s.value, "-", c, f" {s.noun} left.")


def _team_equal(s: Story) -> None:
    k = s.divisor(s.value)
    s.facts.append(f"The {s.noun} are split into {k} equal teams.")
    s.ask = f"How many {s.noun} are on each team?"
    s.step("Each team has ", s.value, "/", k, f" {s.noun}.")


def _team_count(s: Story) -> None:
    k = s.divisor(s.value)
    s.facts.append(f"The {s.noun} form teams of {k}.")
    s.ask = "How many teams are there?"
    s.step("They make ", s.value, "/", k, " teams.")


def _team_leftover(s: Story) -> None:
    had, t = s.value, s.mult()
    size = s.rng.randint(2, max(2, min(s.max_count, (had - 1) // t)))
    if t * size >= had:
        raise Reject  # at least one left over, or the question would be a trick
    s.facts.append(f"The coach makes {t} teams of {size} {s.noun}.")
    s.ask = f"How many {s.noun} are not on a team?"
    in_teams = s.step("The teams have ", t, "*", size, f" {s.noun}.")
    s.step("So ", had, "-", in_teams, f" {s.noun} are not on a team.")


def _moves(*specs) -> list[Move]:
    return [Move(*spec) if isinstance(spec, tuple) else Move(spec) for spec in specs]


FAMILIES = {
    family.name: family
    for family in [
        Family(
            "inventory",
            _moves(_inv_buys, _inv_packs, _inv_loses),
            _moves(_inv_more, _inv_gift, _inv_gives, _inv_half, (_inv_more_packs, 2), (_inv_bags, 1, True)),
        ),
        Family(
            "shopping",
            _moves(_shop_each, _shop_pair),
            _moves(
                _shop_one,
                _shop_coupon,
                _shop_weeks,
                (_shop_more_each, 2),
                (_shop_change, 1, True),
                (_shop_split, 1, True),
            ),
        ),
        Family(
            "comparisons",
            _moves(*[_compare_start(k) for k in ("more", "fewer", "times", "fraction")]),
            _moves(
                *[_relation(k) for k in ("more", "fewer", "times", "fraction")],
                (_cmp_together, 1, True),
                (_cmp_difference, 1, True),
            ),
        ),
        Family(
            "reading",
            _moves(_read_per_day, _read_two_days),
            _moves(
                (_read_more, 1, False, "read"),
                (_read_left, 1, False, "read"),
                (_read_next_day, 1, False, "left"),
                (_read_rest, 1, True, "left"),
            ),
        ),
        Family(
            "teams",
            _moves(_team_groups, _team_boys_girls),
            _moves(_team_join, _team_leave, (_team_equal, 1, True), (_team_count, 1, True), (_team_leftover, 2, True)),
        ),
    ]
}
