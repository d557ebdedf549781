"""A safe calculator for the arithmetic in GSM8K-style steps: parsed with `ast`, never `eval`.

Supports + - * / ** (small integer exponents), parentheses, unary signs, decimals and
thousands separators ("1,000"). Division is exact: every value is a `Fraction`.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

MAX_EXPR_CHARS = 200
MAX_EXPONENT = 16  # enough for 2**10 or 1.5**2; stops 9**9**9 from hanging the process
MAX_RESULT_BITS = 4096
MAX_DECIMALS = 6

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # "1,000" -> "1000", but "f(1,2)" is left alone
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def evaluate(expr: str) -> Fraction:
    """Value of an arithmetic expression as an exact Fraction; ValueError for anything else."""
    if not isinstance(expr, str):
        raise ValueError(f"expression must be a string, got {type(expr).__name__}")
    if len(expr) > MAX_EXPR_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPR_CHARS} characters")
    text = _THOUSANDS.sub("", expr.strip())
    if not text:
        raise ValueError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not an arithmetic expression: {expr!r}") from e
    return _eval(tree.body)


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant):
        # bool is an int subclass; True/False are names in the input, not numbers
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return _number(node)
        raise ValueError(f"unsupported constant {node.value!r}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError("division by zero")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_eval(node.left), _eval(node.right))
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def _number(node: ast.Constant) -> Fraction:
    # Fraction(repr) keeps "0.1" exact; Fraction(0.1) would carry the float's binary error
    value = node.value
    if isinstance(value, float):
        return Fraction(repr(value))
    if isinstance(value, int):
        return Fraction(value)
    raise ValueError(f"not a number: {value!r}")


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent must be a whole number of at most {MAX_EXPONENT}")
    if base == 0 and exponent < 0:
        raise ValueError("division by zero")
    bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if bits * abs(exponent) > MAX_RESULT_BITS:  # nested powers would otherwise grow without bound
        raise ValueError("power too large")
    return base ** int(exponent)


def format_number(value: Fraction) -> str:
    """Canonical text of a number: "12", "-3", "2.5", "0.333333" (at most 6 decimals, no trailing 0s)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    scale = 10**MAX_DECIMALS
    scaled = round(value * scale)  # exact (Fraction.__round__), half to even
    sign = "-" if scaled < 0 else ""  # a tiny negative that rounds to 0 prints "0", not "-0"
    whole, frac = divmod(abs(scaled), scale)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{MAX_DECIMALS}d}".rstrip("0")
