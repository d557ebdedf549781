"""Final answers: parse numbers as exact Fractions, pull a model's final answer out of its solution.

Extraction rules, tried in order (the first that applies decides, even if it finds no number):
  1. "####": the first number after the LAST "####", on its line (GSM8K's format, what the student writes);
  2. "\\boxed{...}": the number in the last box;
  3. an answer phrase anywhere: "The (final) answer is N", "Answer: N", a line "A: N" (last one wins);
  4. the last non-empty line only:
     - a bold number "**N**" (the last one on the line);
     - a line that says "answer": its last number;
     - a line "So/Thus/Therefore/Hence ... is|are|was|were|equals|= N [units]": that N.
Anything else gives None: a number in the middle of a solution is never guessed to be the answer.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .calculator import format_number

# One number as people write it: optional sign and "$", thousands commas or plain digits, decimals,
# or a fraction "a/b". Leading-dot decimals (".5") count too.
NUMBER = r"-?\$?\s?-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s?/\s?\d+)?"
_NUMBER_RE = re.compile(NUMBER)
_FULL_NUMBER = re.compile(
    r"(?P<sign>[-+])?\$?(?P<sign2>-)?(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:/(?P<den>\d+))?"
)

_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_ANSWER_PHRASE = re.compile(
    r"(?:\bthe\s+(?:final\s+)?answer\s+is\s*:?|\banswer\s*:|^\s*A\s*:)\s*(" + NUMBER + ")",
    re.IGNORECASE | re.MULTILINE,
)
_BOLD = re.compile(r"\*\*\s*(" + NUMBER + r")\s*\*\*")
_SO_IS = re.compile(
    r"^\s*(?:so|thus|therefore|hence)\b.*\b(?:is|are|was|were|equals)\s*(" + NUMBER + r")[^\d]*$"
    r"|^\s*(?:so|thus|therefore|hence)\b.*=\s*(" + NUMBER + r")[^\d=]*$",
    re.IGNORECASE,
)


def parse_number(text: str | None) -> Fraction | None:
    """Exact value of one number as written: "1,234", "$5", "3.50", "-7", "12/4", "18.", "5%"; else None."""
    if text is None:
        return None
    s = re.sub(r"\s*/\s*", "/", str(text).strip())  # "12 / 4"
    s = re.sub(r"^([-+]?\$?)\s+", r"\1", s)  # "$ 5", "- 7"; but "3 4" stays two numbers
    s = s.rstrip(".")  # a sentence's full stop: "18."
    if s.endswith("%"):
        s = s[:-1]  # "5%" is read as 5, the way GSM8K writes percentages
    m = _FULL_NUMBER.fullmatch(s)
    if not m or (m["sign"] and m["sign2"]):
        return None
    value = Fraction(m["num"].replace(",", ""))
    if m["den"] is not None:
        if int(m["den"]) == 0:
            return None
        value /= int(m["den"])
    return -value if "-" in ((m["sign"] or "") + (m["sign2"] or "")) else value


def canonical(text: str | None) -> str | None:
    """Canonical text of a number ("1,234.50" -> "1234.5"), None if it is not a number."""
    value = parse_number(text)
    return None if value is None else format_number(value)


def extract_answer(text: str | None) -> str | None:
    """The canonical final answer of a solution text, by the rules in the module docstring."""
    if not text:
        return None
    if "####" in text:
        return _first_number(text.rsplit("####", 1)[1].split("\n", 1)[0])
    boxes = _BOXED.findall(text)
    if boxes:
        return _first_number(boxes[-1])
    phrases = _ANSWER_PHRASE.findall(text)
    if phrases:
        return canonical(phrases[-1])
    return _from_last_line(text)


def _from_last_line(text: str) -> str | None:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    bold = _BOLD.findall(last)
    if bold:
        return canonical(bold[-1])
    if re.search(r"\banswer\b", last, re.IGNORECASE):
        numbers = _NUMBER_RE.findall(last)
        return canonical(numbers[-1]) if numbers else None
    m = _SO_IS.match(last)
    if m:
        return canonical(m[1] or m[2])
    return None


def _first_number(text: str) -> str | None:
    m = _NUMBER_RE.search(text)
    return canonical(m[0]) if m else None


def answers_match(pred: str | None, gold: str) -> bool:
    """Exact numeric equality: "18.00" == "18", "1,234" == "1234"; None never matches."""
    p, g = parse_number(pred), parse_number(gold)
    return p is not None and g is not None and p == g


def is_correct(solution_text: str, gold_answer: str) -> bool:
    """Whether a solution's extracted final answer equals the gold answer."""
    return answers_match(extract_answer(solution_text), gold_answer)
