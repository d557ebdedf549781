"""Reasoning steps of a solution and the intermediate result R_i each step computes.

A step is one non-empty line. The final "#### n" line is merged into the step before it, so a
solution has exactly as many steps as reasoning lines and the answer belongs to the last step.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .answers import NUMBER, canonical, extract_answer, parse_number

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_AFTER_EQUALS = re.compile(r"=\s*(" + NUMBER + ")")
# An unsigned number token in running text; "-" is not part of it because in "20-17" it is an operator
_TOKEN = re.compile(r"(?<![\d.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])|(?<![\d.])\.\d+")


def split_steps(solution: str) -> list[str]:
    """Non-empty stripped lines; a final "####" line is merged into the previous step as "prev\\n#### n"."""
    lines = [line.strip() for line in solution.splitlines() if line.strip()]
    if len(lines) >= 2 and lines[-1].startswith("####"):
        lines[-2:] = [f"{lines[-2]}\n{lines[-1]}"]
    return lines


def step_result(step: str) -> str | None:
    """Canonical R_i of a step: the last `<<expr=R>>` annotation, else the number after the last "="."""
    reasoning, _, answer_line = step.partition("####")
    result = _result_of(reasoning)
    if result is None and answer_line:
        # a merged step whose reasoning line computes nothing (or a lone "#### n" step)
        result = extract_answer("####" + answer_line)
    return result


def _result_of(text: str) -> str | None:
    for annotation in reversed(_ANNOTATION.findall(text)):
        if "=" in annotation:
            result = canonical(annotation.rsplit("=", 1)[1])
            if result is not None:
                return result
    plain = _ANNOTATION.sub(" ", text)  # a broken annotation must not pass its "=" to the rule below
    matches = _AFTER_EQUALS.findall(plain)
    return canonical(matches[-1]) if matches else None


def final_answer(solution: str) -> str | None:
    """Canonical final answer of a solution (see answers.extract_answer)."""
    return extract_answer(solution)


def step_uses_result(text: str, result: str | None) -> bool:
    """Whether `text` uses the number `result` as a whole token: "17" is in "17+5" and "17." but not in
    "170" or "1.75". Compared by value ("17.0" counts) and without sign, since "-" is usually an operator."""
    target = parse_number(result) if result is not None else None
    if target is None:
        return False
    target = abs(target)
    return any(_token_value(token) == target for token in _TOKEN.findall(text))


def _token_value(token: str) -> Fraction:
    return Fraction(token.replace(",", ""))
