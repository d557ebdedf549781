from fractions import Fraction

import pytest

from glore_engine.tasks.answers import answers_match, canonical, extract_answer, is_correct, parse_number


@pytest.mark.parametrize(
    "text, value",
    [
        ("18", 18),
        ("1,234", 1234),
        ("$5", 5),
        ("3.50", Fraction(7, 2)),
        ("-7", -7),
        ("-$5", -5),
        ("$-5", -5),
        ("12/4", 3),
        ("1/2", Fraction(1, 2)),
        ("18.", 18),
        ("5%", 5),
        (" 1,000,000 ", 1000000),
        (".5", Fraction(1, 2)),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "18 apples", "1,2", "3/0", "--5", "1.2.3", None])
def test_parse_number_rejects(text):
    assert parse_number(text) is None


def test_canonical():
    assert canonical("1,234.50") == "1234.5"
    assert canonical("$18.00") == "18"
    assert canonical("-0.5") == "-0.5"
    assert canonical("12/4") == "3"
    assert canonical("twelve") is None


@pytest.mark.parametrize(
    "text, answer",
    [
        ("He has 3*4=<<3*4=12>>12 pens.\n#### 12", "12"),
        ("#### 1,234", "1234"),
        ("#### -7", "-7"),
        ("#### $18.50", "18.5"),
        ("first #### 5\nthen more\n#### 9", "9"),  # the LAST marker wins
        ("The answer is 18.", "18"),
        ("So the final answer is: 2.5", "2.5"),
        ("Step one.\nA: 18", "18"),
        ("Answer: $1,234.50", "1234.5"),
        ("We get 3 and 4, so \\boxed{18}", "18"),
        ("It is 7 in all.\n**18**", "18"),
        ("He pays 4 dollars.\nSo the total cost is 18 dollars.", "18"),
        ("Thus he has 3+4=7.", "7"),
        ("The final answer is 12 and the answer is -3", "-3"),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "He buys 3 pens and 4 pencils.",  # a number in running text is never guessed
        "So 18 of them went home.\nThey were happy.",
        "The answer is 12.\n####",  # a #### marker with nothing after it decides: no answer
        "He has 18 pens",
    ],
)
def test_extract_answer_none(text):
    assert extract_answer(text) is None


def test_answers_match():
    assert answers_match("18.00", "18")
    assert answers_match("1,234", "1234")
    assert answers_match("$5", "5")
    assert answers_match("0.5", "1/2")
    assert not answers_match("18.01", "18")
    assert not answers_match(None, "18")
    assert not answers_match("eighteen", "18")


def test_is_correct():
    assert is_correct("He has 3*6=<<3*6=18>>18 pens.\n#### 18", "18")
    assert not is_correct("He has 3*6=<<3*6=18>>18 pens.\n#### 17", "18")
    assert not is_correct("He has 3*6=18 pens.", "18")  # no final answer written
