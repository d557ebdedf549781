"""Text formats: prompts, the reward models' text and step ends, [BAD] marking and local prompts."""

from __future__ import annotations

import pytest

from glore_engine.formats import (
    BAD_MARK,
    global_prompt,
    join_steps,
    local_prompt,
    mark_first_error,
    scoring_text,
    student_prompt,
)
from glore_engine.tasks.steps import split_steps

STEPS = ["Tom has 3*4=<<3*4=12>>12 apples.", "He eats 2, so 12-2=<<12-2=10>>10 are left.", "So 10 remain.\n#### 10"]


def test_student_prompt_strips_the_question():
    assert student_prompt("  How many?\n") == "Question: How many?\nAnswer:\n"


def test_join_steps_inverts_split_steps():
    text = join_steps(STEPS)
    assert (
        text == "Tom has 3*4=<<3*4=12>>12 apples.\nHe eats 2, so 12-2=<<12-2=10>>10 are left.\nSo 10 remain.\n#### 10"
    )
    assert split_steps(text) == STEPS


def test_scoring_text_is_the_student_prompt_plus_the_solution():
    text, ends = scoring_text("How many?", STEPS)
    assert text == student_prompt("How many?") + join_steps(STEPS)
    assert len(ends) == len(STEPS)


def test_scoring_text_char_ends_are_each_steps_last_character():
    text, ends = scoring_text("How many?", STEPS)
    assert [text[e] for e in ends] == [".", ".", "0"]
    assert ends == sorted(ends) and ends[-1] == len(text) - 1
    # every step is exactly the text between the previous end (+ newline) and its own end
    starts = [len(student_prompt("How many?"))] + [e + 2 for e in ends[:-1]]
    assert [text[s : e + 1] for s, e in zip(starts, ends)] == STEPS


def test_scoring_text_strips_newlines_around_steps():
    text, ends = scoring_text("Q", ["a = 1\n", "\nb = 2"])
    assert text.endswith("a = 1\nb = 2")
    assert [text[e] for e in ends] == ["1", "2"]


def test_global_prompt_carries_the_whole_draft():
    prompt = global_prompt(" Q? ", STEPS)
    assert prompt == f"Question: Q?\nDraft:\n{join_steps(STEPS)}\nRefinement:\n"


def test_mark_first_error_inserts_bad_before_that_step_only():
    marked = mark_first_error(STEPS, 1)
    assert marked[0] == STEPS[0] and marked[2] == STEPS[2]
    assert marked[1] == f"{BAD_MARK} {STEPS[1]}"
    assert STEPS[1].startswith("He eats")  # the input list is not modified
    assert mark_first_error(STEPS, 0)[0].startswith(BAD_MARK)


@pytest.mark.parametrize("bad", [-1, 3, 10])
def test_mark_first_error_rejects_indices_outside_the_draft(bad):
    with pytest.raises(ValueError, match="outside"):
        mark_first_error(STEPS, bad)
    with pytest.raises(ValueError):
        local_prompt("Q", STEPS, bad)


def test_local_prompt_writes_the_kept_steps_after_the_refinement_header():
    prompt = local_prompt("Q", STEPS, 2)
    head = global_prompt("Q", mark_first_error(STEPS, 2))
    assert prompt == head + STEPS[0] + "\n" + STEPS[1] + "\n"
    assert prompt.count(BAD_MARK) == 1
    # the kept part after "Refinement:" holds steps 1..E-1 and no mark
    kept = prompt.split("Refinement:\n", 1)[1]
    assert kept == join_steps(STEPS[:2]) + "\n" and BAD_MARK not in kept


def test_local_prompt_error_at_first_step_keeps_nothing():
    assert local_prompt("Q", STEPS, 0) == global_prompt("Q", mark_first_error(STEPS, 0))


def test_local_prompt_without_kept_steps():
    assert local_prompt("Q", STEPS, 2, with_kept=False) == global_prompt("Q", mark_first_error(STEPS, 2))
