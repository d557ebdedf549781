"""Review-queue logic of the Annotate tab: ratings edits, navigation and progress, without gradio."""

from __future__ import annotations

from dataclasses import dataclass

from .render import CATEGORIES, fmt_score, header_row, math_text, narrow_cell, plain_text, wide_cell

RATING_LABELS = {1: "+1 good", 0: "0 okay", -1: "−1 bad", None: "unrated"}
RATING_CLASSES = {1: "good", 0: "okay", -1: "bad", None: "unrated"}  # classes survive gradio's sanitizer
# Colour of a human rating (Okabe-Ito, as the critique categories): never an error colour for +1.
RATING_COLOURS = {1: CATEGORIES["ok"]["colour"], 0: "#555555", -1: CATEGORIES["first_error"]["colour"], None: "#999999"}


def with_rating(fields: dict, step: int, rating: int | None) -> dict:
    """step_ratings with step (0-based) set to rating, padded with unrated steps; unsure kept."""
    _check_index(step)
    ratings = _padded(fields.get("step_ratings") or [], step + 1)
    ratings[step] = {"rating": rating, "unsure": bool(ratings[step].get("unsure"))}
    return {"step_ratings": ratings}


def _check_index(step) -> None:
    # A negative index would silently address a step from the end.
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step index must be an integer 0 or more (0-based), got {step!r}")


def with_unsure_toggled(fields: dict, step: int) -> dict:
    _check_index(step)
    ratings = _padded(fields.get("step_ratings") or [], step + 1)
    ratings[step] = {"rating": ratings[step].get("rating"), "unsure": not ratings[step].get("unsure")}
    return {"step_ratings": ratings}


def _padded(ratings: list[dict], n: int) -> list[dict]:
    ratings = [dict(r) for r in ratings]
    return ratings + [{"rating": None, "unsure": False} for _ in range(n - len(ratings))]


def clamp_step(step, n_steps: int) -> int:
    """A 0-based step index inside the draft (0 for a stepless draft)."""
    try:
        step = int(step)
    except (TypeError, ValueError):
        step = 0
    return max(0, min(step, max(n_steps - 1, 0)))


@dataclass(frozen=True)
class QueuePosition:
    case_id: int | None
    position: int  # 1-based place in the review queue, 0 when the queue is empty
    total: int
    done: int  # cases this annotator has saved anything for


def position(store, run_id: int, annotator: str, case_id: int | None) -> QueuePosition:
    queue = store.review_queue(run_id, annotator)
    done = len({a.case_id for a in store.annotations(run_id, annotator)})
    place = queue.index(case_id) + 1 if case_id in queue else 0
    return QueuePosition(case_id, place, len(queue), done)


def resume(store, run_id: int, annotator: str) -> int | None:
    """Where this annotator left off: the first unannotated case, else the first of the queue."""
    nxt = store.next_unannotated(run_id, annotator)
    if nxt is not None:
        return nxt
    queue = store.review_queue(run_id, annotator)
    return queue[0] if queue else None


def step_to(store, run_id: int, annotator: str, case_id: int | None, direction: int) -> int | None:
    """Next (+1): the next unannotated case after this one, else simply the next in the queue.
    Previous (-1): the case before this one in the queue. Both stay put at the ends."""
    queue = store.review_queue(run_id, annotator)
    if not queue:
        return None
    if case_id not in queue:
        return resume(store, run_id, annotator)
    here = queue.index(case_id)
    if direction < 0:
        return queue[max(here - 1, 0)]
    nxt = store.next_unannotated(run_id, annotator, after_case_id=case_id)
    if nxt is not None and queue.index(nxt) > here:
        return nxt
    return queue[min(here + 1, len(queue) - 1)]


def progress_text(pos: QueuePosition, annotator: str) -> str:
    if pos.total == 0:
        return "This run has no cases to review."
    return (
        f"Case **{pos.position} of {pos.total}** in the review queue (failures first) · "
        f"**{pos.done}/{pos.total}** annotated by **{plain_text(annotator)}**"
    )


def draft_scores(case) -> tuple[list[float], list[float]]:
    """The model's SORM and ORM step scores of a stored case, when they line up with its steps."""
    draft = case.data.get("draft") if isinstance(case.data.get("draft"), dict) else {}
    sorm, orm = draft.get("sorm_steps") or [], draft.get("orm_steps") or []
    n = len(case.steps)
    return (sorm if len(sorm) == n else [], orm if len(orm) == n else [])


def annotation_table(case, fields: dict, cursor: int, show_scores: bool = False) -> str:
    """The draft's steps with the human's ratings, first-error mark and the step cursor."""
    steps = case.steps
    if not steps:
        return "<div><em>This case's draft has no steps; give a verdict and a note.</em></div>"
    ratings = _padded(fields.get("step_ratings") or [], len(steps))
    first = fields.get("first_error_step")
    sorm, orm = draft_scores(case) if show_scores else ([], [])
    head = header_row(["", "#", "step", "rating", "first error"] + (["SORM", "ORM"] if show_scores else []))
    rows = []
    for i, text in enumerate(steps):
        rating, unsure = ratings[i].get("rating"), ratings[i].get("unsure")
        label = RATING_LABELS[rating] + (" (unsure)" if unsure else "")
        mark = "✗ first error" if first == i else ("" if first is None or first < 0 or i < first else "after")
        cursor_mark = "▶" if i == cursor else ""
        style = "outline:2px solid #0072B2;" if i == cursor else ""
        scores = (
            narrow_cell(fmt_score(sorm[i] if sorm else None)) + narrow_cell(fmt_score(orm[i] if orm else None))
            if show_scores
            else ""
        )
        rows.append(
            f'<tr class="glore-ann-step glore-ann-step-{i} glore-rating-{RATING_CLASSES[rating]}" '
            f'data-step="{i}" data-rating="{rating}" style="{style}">'
            f"{narrow_cell(cursor_mark)}{narrow_cell(str(i + 1))}{wide_cell(math_text(text))}"
            f"{narrow_cell(label, f'color:{RATING_COLOURS[rating]};font-weight:600')}"
            f"{narrow_cell(mark)}{scores}</tr>"
        )
    return f'<table class="glore-steps glore-annotate">{head}{"".join(rows)}</table>'


def case_header(case) -> str:
    gold = f"<br><strong>Gold answer:</strong> {plain_text(case.gold)}" if case.gold is not None else ""
    flags = " · ".join(
        f"{name} {'✓' if ok else '✗' if ok is not None else '?'}"
        for name, ok in (
            ("draft", case.draft_correct),
            ("global", case.global_correct),
            ("local", case.local_correct),
            ("final", case.final_correct),
        )
    )
    return (
        f'<div class="glore-question"><strong>Case {case.id}</strong> (#{case.index}'
        f"{', ' + plain_text(case.problem_id) if case.problem_id else ''}) · {flags}<br>"
        f"<strong>Question.</strong> {math_text(case.question)}{gold}</div>"
    )


def annotation_summary(fields: dict) -> str:
    first = fields.get("first_error_step")
    first_text = "not set" if first is None else ("no error" if first < 0 else f"step {first + 1}")
    return f"Verdict: **{fields.get('verdict') or 'not set'}** · human first error: **{first_text}**"
