from fractions import Fraction

import pytest

from glore_engine.tasks.calculator import evaluate, format_number


@pytest.mark.parametrize(
    "expr, value",
    [
        ("3*4", 12),
        ("16-3-4", 9),
        ("-(2+3)*4", -20),
        ("+5", 5),
        ("7/2", Fraction(7, 2)),
        ("1/3", Fraction(1, 3)),
        ("0.1+0.2", Fraction(3, 10)),
        (".5*4", 2),
        ("1,000+2", 1002),
        ("1,234,567-1", 1234566),
        ("(80000+50000)*1.5", 195000),
        ("2**10", 1024),
        (" 12 / 4 ", 3),
    ],
)
def test_evaluate(expr, value):
    assert evaluate(expr) == value
    assert isinstance(evaluate(expr), Fraction)


@pytest.mark.parametrize(
    "expr",
    [
        "x+1",
        "abs(-3)",
        "__import__('os').system('true')",
        "().__class__",
        "'a'*3",
        "True+1",
        "[1][0]",
        "1 if 1 else 2",
        "3//2",
        "7%2",
        "9**9**9",
        "((9**16)**16)**16",
        "2**0.5",
        "1/0",
        "1j",
        "",
        "1+",
        "1" * 201,
    ],
)
def test_evaluate_rejects(expr):
    with pytest.raises(ValueError):
        evaluate(expr)


@pytest.mark.parametrize(
    "value, text",
    [
        (Fraction(12), "12"),
        (Fraction(-3), "-3"),
        (Fraction(5, 2), "2.5"),
        (Fraction(-5, 2), "-2.5"),
        (Fraction(1, 3), "0.333333"),
        (Fraction(2, 3), "0.666667"),
        (Fraction(1, 8), "0.125"),
        (Fraction(1, 10**8), "0"),
        (Fraction(-1, 10**8), "0"),
        (Fraction(0), "0"),
        (Fraction(10**12), "1000000000000"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text
