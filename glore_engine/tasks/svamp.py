"""SVAMP (Patel et al., NAACL 2021): 1,000 one- and two-operation word problems, read from SVAMP.json.

SVAMP ships no written solutions and no train/test split. The training solution is derived from
the problem's `Equation` (infix with parentheses, e.g. "( ( 4.0 + 13.0 ) * 15.0 )"): one step per
operation, innermost first, each with a calculator annotation, then "#### n":

    4+13=<<4+13=17>>17
    17*15=<<17*15=255>>255
    #### 255

The split is a seeded permutation of the problem ids (sha256 of "svamp/<seed>/<ID>"), the first
30 % of them (300 of 1,000) being test: stable across runs, machines and Python versions. The question the
student reads is Body and Question joined (", how ..." when Body ends without a full stop).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from fractions import Fraction
from pathlib import Path

from ..errors import DataError
from .calculator import format_number
from .problem import Problem

SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.3  # of 1,000 problems: 700 train / 300 test
FILE_NAME = "SVAMP.json"
ENV_PATH = "GLORE_SVAMP"
# Published answers that contradict both the Equation and the text; the Equation's value is used.
# chal-680: "4 apples, picked 2, then 3 new grew": ( ( 4.0 - 2.0 ) + 3.0 ) = 5, published Answer 1.0.
ANSWER_ERRATA = {"chal-680": "5"}

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_MAX_DECIMALS = 6  # what calculator.format_number writes exactly


def default_path() -> Path:
    """$GLORE_SVAMP, else ../shared/data/svamp/SVAMP.json beside the working folder or the repository."""
    if os.environ.get(ENV_PATH):
        return Path(os.environ[ENV_PATH])
    repo = Path(__file__).resolve().parents[2]
    for root in (Path.cwd(), repo):
        candidate = root.parent / "shared" / "data" / "svamp" / FILE_NAME
        if candidate.is_file():
            return candidate
    raise DataError(
        f"SVAMP not found: set {ENV_PATH} or pass the path of {FILE_NAME} (expected at ../shared/data/svamp/SVAMP.json)"
    )


def is_svamp_source(source: str) -> bool:
    """'svamp', a SVAMP.json path, or a folder holding SVAMP.json."""
    path = Path(source)
    return source == "svamp" or path.name == FILE_NAME or (path.is_dir() and (path / FILE_NAME).is_file())


def load_svamp(source: str | Path = "svamp", split: str = "test", limit: int | None = None, seed: int = 0):
    """SVAMP problems of one split ("train", "test" or "all") in the split's seeded order."""
    if split not in SPLITS:
        raise DataError(f"SVAMP has no split {split!r}: use one of {list(SPLITS)} (the split is the project's)")
    path = default_path() if str(source) == "svamp" else Path(source)
    if path.is_dir():
        path = path / FILE_NAME
    records = _read(path)
    order = split_order([r["ID"] for r in records], seed)
    test = set(order[: round(TEST_FRACTION * len(order))])
    by_id = {r["ID"]: r for r in records}
    ids = [i for i in order if split == "all" or (i in test) == (split == "test")]
    problems = [record_to_problem(by_id[i], split, f"{path}[{i}]") for i in ids[:limit]]
    if not problems:
        raise DataError(f"{path} ({split}) gave no problems")
    return problems


def split_order(ids: list[str], seed: int = 0) -> list[str]:
    """The ids in a seeded permutation: sorted by sha256 of "svamp/<seed>/<id>"."""
    return sorted(ids, key=lambda i: hashlib.sha256(f"svamp/{seed}/{i}".encode()).hexdigest())


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON list of SVAMP problems")
    for index, record in enumerate(records):
        missing = [
            k
            for k in ("ID", "Body", "Question", "Equation", "Answer")
            if not isinstance(record, dict) or k not in record
        ]
        if missing:
            raise DataError(f"{path}[{index}]: missing {', '.join(missing)}")
    ids = [r["ID"] for r in records]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: repeated problem IDs")
    return records


def record_to_problem(record: dict, split: str, where: str) -> Problem:
    """One SVAMP record -> Problem with a derived step-by-step solution; DataError when it does not add up."""
    steps, value = derive_steps(record["Equation"], where)
    expected = ANSWER_ERRATA.get(record["ID"])
    if expected is None:
        try:
            expected = format_number(Fraction(str(record["Answer"])))
        except (ValueError, ZeroDivisionError):
            raise DataError(f"{where}: Answer {record['Answer']!r} is not a number") from None
    answer = format_number(value)
    if answer != expected:
        raise DataError(f"{where}: Equation {record['Equation']!r} gives {answer}, but Answer is {expected}")
    return Problem(
        id=f"svamp-{record['ID']}",
        question=question_text(record["Body"], record["Question"]),
        solution="\n".join(steps + [f"#### {answer}"]),  # split_steps merges the answer into the last step
        answer=answer,
        meta={"source": "svamp", "split": split, "n_steps": max(len(steps), 1), "type": record.get("Type", "")},
    )


def question_text(body: str, question: str) -> str:
    body, question = " ".join(str(body).split()), " ".join(str(question).split())
    if not body:
        return question
    if body[-1] in ".?!":
        return f"{body} {question}"
    return f"{body}, {question[:1].lower()}{question[1:]}"


def derive_steps(equation: str, where: str = "equation") -> tuple[list[str], Fraction]:
    """One annotated step per operation, innermost first; returns (steps, value). An Equation that is
    one number (the answer is stated in the text, as in chal-555) has no step: the solution is "#### n"."""
    try:
        tree = ast.parse(str(equation), mode="eval").body
    except SyntaxError:
        raise DataError(f"{where}: Equation {equation!r} is not arithmetic") from None
    steps: list[str] = []
    return steps, _emit(_exact_order(tree), steps, where)


def _exact_order(node: ast.expr) -> ast.expr:
    """a * (b / c) -> (a * b) / c when b / c is no exact short decimal, so every written step is exact."""
    if not isinstance(node, ast.BinOp):
        return node
    left, right = _exact_order(node.left), _exact_order(node.right)
    if isinstance(node.op, ast.Mult):
        for div, other in ((right, left), (left, right)):
            if isinstance(div, ast.BinOp) and isinstance(div.op, ast.Div) and not _is_short(_value(div)):
                product = ast.BinOp(left=other, op=ast.Mult(), right=div.left)
                return ast.BinOp(left=product, op=ast.Div(), right=div.right)
    return ast.BinOp(left=left, op=node.op, right=right)


def _emit(node: ast.expr, steps: list[str], where: str) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_emit(node.operand, steps, where)
    if not isinstance(node, ast.BinOp) or type(node.op) not in _OPS:
        raise DataError(f"{where}: unsupported term {ast.dump(node)[:60]} in Equation")
    a, b = _emit(node.left, steps, where), _emit(node.right, steps, where)
    op = _OPS[type(node.op)]
    if op == "/" and b == 0:
        raise DataError(f"{where}: division by zero in Equation")
    c = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
    expr = f"{format_number(a)}{op}{format_number(b)}"
    steps.append(f"{expr}=<<{expr}={format_number(c)}>>{format_number(c)}")
    return c


def _value(node: ast.expr) -> Fraction:
    return _emit(node, [], "equation")


def _is_short(value: Fraction) -> bool:
    return (value * 10**_MAX_DECIMALS).denominator == 1
