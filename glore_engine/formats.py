"""Text formats: the single source of truth for every prompt the GLoRe models read or write.

Student:          "Question: {q}\nAnswer:\n" + solution (one step per line, last line "#### n")
Reward models:    the same text; one score is read at the last token of every step.
Global refiner:   "Question: {q}\nDraft:\n{draft}\nRefinement:\n" + new solution
Local refiner:    as global, with BAD_MARK before the first wrong step of the draft; at inference
                  the kept steps 1..E-1 are written after "Refinement:\n" and the model continues.
"""

from __future__ import annotations

BAD_MARK = "[BAD]"
ANSWER_PREFIX = "#### "
STUDENT_TEMPLATE = "Question: {question}\nAnswer:\n"
REFINE_TEMPLATE = "Question: {question}\nDraft:\n{draft}\nRefinement:\n"


def student_prompt(question: str) -> str:
    return STUDENT_TEMPLATE.format(question=question.strip())


def join_steps(steps: list[str]) -> str:
    """Steps back to solution text (inverse of tasks.steps.split_steps)."""
    return "\n".join(s.strip("\n") for s in steps)


def scoring_text(question: str, steps: list[str]) -> tuple[str, list[int]]:
    """Text a reward model reads and, per step, the character index of the step's last character."""
    text = student_prompt(question)
    ends = []
    for i, step in enumerate(steps):
        if i:
            text += "\n"
        text += step.strip("\n")
        ends.append(len(text) - 1)
    return text, ends


def global_prompt(question: str, draft_steps: list[str]) -> str:
    return REFINE_TEMPLATE.format(question=question.strip(), draft=join_steps(draft_steps))


def mark_first_error(draft_steps: list[str], first_error: int) -> list[str]:
    """Insert BAD_MARK before step `first_error` (0-based)."""
    if not 0 <= first_error < len(draft_steps):
        raise ValueError(f"first error index {first_error} outside the draft's {len(draft_steps)} steps")
    marked = list(draft_steps)
    marked[first_error] = f"{BAD_MARK} {marked[first_error].strip()}"
    return marked


def local_prompt(question: str, draft_steps: list[str], first_error: int, *, with_kept: bool = True) -> str:
    """Local refinement prompt; with_kept writes steps before the error as the start of the answer."""
    prompt = global_prompt(question, mark_first_error(draft_steps, first_error))
    if with_kept and first_error > 0:
        prompt += join_steps(draft_steps[:first_error]) + "\n"
    return prompt
