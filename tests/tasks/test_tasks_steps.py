import pytest

from glore_engine.formats import BAD_MARK, join_steps
from glore_engine.tasks.steps import final_answer, split_steps, step_result, step_uses_result

JANET = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "\n"
    "  She makes 9 * 2 = $<<9*2=18>>18 every day at the market.  \n"
    "#### 18\n"
)


def test_split_steps_merges_final_line():
    steps = split_steps(JANET)
    assert steps == [
        "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.",
        "She makes 9 * 2 = $<<9*2=18>>18 every day at the market.\n#### 18",
    ]
    assert join_steps(steps) == "\n".join(line.strip() for line in JANET.splitlines() if line.strip())


def test_split_steps_edge_cases():
    assert split_steps("#### 5") == ["#### 5"]
    assert split_steps("") == []
    assert split_steps("a = 1\nb = 2") == ["a = 1", "b = 2"]  # no final line: nothing merged
    marked = split_steps(f"{BAD_MARK} 3*4=<<3*4=11>>11\n#### 11")
    assert marked == [f"{BAD_MARK} 3*4=<<3*4=11>>11\n#### 11"]  # the mark is kept


@pytest.mark.parametrize(
    "step, result",
    [
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.", "9"),
        ("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18"),
        ("First <<2*3=6>>6 then <<6+1=7>>7 in all.", "7"),  # the last annotation
        ("He had 80,000+50,000=$<<80000+50000=130000>>130,000", "130000"),
        ("Half of it is 5/2=<<5/2=2.5>>2.5 cups.", "2.5"),
        ("So he has 5 + 3 = 8 apples.", "8"),  # no annotation: after the last "="
        ("It costs 3 * 4 = $12, then 12 - 2 = $10 left.", "10"),
        ("She has 2*3=<<2*3=six>>6 cats, so 6 = 6", "6"),  # an annotation without a number is skipped
        ("They go home.\n#### 42", "42"),  # reasoning line computes nothing: the #### value
        ("#### 1,080", "1080"),
        ("He is happy.", None),
        (f"{BAD_MARK} 3*4=<<3*4=11>>11 pens", "11"),
    ],
)
def test_step_result(step, result):
    assert step_result(step) == result


def test_step_result_prefers_reasoning_over_answer_line():
    assert step_result("So he has 3+4=<<3+4=7>>7 pens.\n#### 8") == "7"


def test_final_answer():
    assert final_answer(JANET) == "18"
    assert final_answer("no answer here") is None


@pytest.mark.parametrize(
    "text, used",
    [
        ("17+5=<<17+5=22>>22", True),
        ("He has 17.", True),
        ("so 17 pens", True),
        ("It is 17.0 now", True),
        ("(17)", True),
        ("$17", True),
        ("20-17=3", True),
        ("170 pens", False),
        ("1.75 kg", False),
        ("117 pens", False),
        ("no numbers", False),
    ],
)
def test_step_uses_result(text, used):
    assert step_uses_result(text, "17") is used


def test_step_uses_result_commas_and_bad_input():
    assert step_uses_result("That is 1,700 in all", "1700")
    assert not step_uses_result("That is 1,700 in all", "700")
    assert step_uses_result("half is 2.5", "2.50")
    assert not step_uses_result("17 of them", None)
    assert not step_uses_result("17 of them", "seventeen")
