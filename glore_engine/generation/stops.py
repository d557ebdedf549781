"""When a sampled row stops, and what calculator mode writes: one set of rules for every backend."""

from __future__ import annotations

import re

_CALC_OPEN = re.compile(r"<<([^<>=\n]{1,120})=$")


def stop_cut(text: str, stops: list[str], answer_stop: bool = True) -> str | None:
    """The text to keep if a row must stop now (a stop string, or a finished `####` answer line), else None.

    A stop string is cut off with everything after it. The answer line counts once its newline is
    written: "#### 3" might still become "#### 35".
    """
    for s in stops:
        at = text.find(s)
        if at >= 0:
            return text[:at]
    if answer_stop and "\n" in text:
        lines = text.split("\n")
        for k, line in enumerate(lines[:-1]):
            if line.lstrip().startswith("####"):
                return "\n".join(lines[: k + 1])
    return None


def calculator_result(text: str) -> str | None:
    """For text ending in an open annotation `<<expr=`, the text the calculator writes: `value>>`."""
    from ..tasks.calculator import evaluate, format_number

    match = _CALC_OPEN.search(text)
    if not match:
        return None
    try:
        return format_number(evaluate(match.group(1))) + ">>"
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
