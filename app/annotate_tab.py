"""Annotate tab: a review queue of failure cases, rated step by step and saved at every change.

Every button is one upsert of the (case, annotator) annotation, so a closed tab or a crash loses
nothing; the key in each button's label is a keyboard shortcut (see ui.SHORTCUTS and ui.JS).

The cursor (case and 0-based step) lives in server-side session state, and every event of the tab
runs through one FIFO worker: keys pressed faster than the server answers ("g g b") still rate
consecutive steps instead of reading a stale step number from the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import gradio as gr

from . import review
from .state import Workbench, annotation_fields
from .ui import as_int, guarded, markdown, run_choices

VERDICT_BUTTONS = (
    ("found_error", "Found error (1)"),
    ("solution", "Solution (2)"),
    ("bad_problem", "Bad problem (3)"),
    ("give_up", "Give up (4)"),
)
RATING_BUTTONS = ((1, "good", "+1 good (g)"), (0, "okay", "0 okay (o)"), (-1, "bad", "−1 bad (b)"))
QUEUED = {"concurrency_id": "annotate", "concurrency_limit": 1, "api_visibility": "private"}
KEYED = {**QUEUED, "trigger_mode": "multiple"}  # a repeated key queues up instead of being dropped
N_NAV, N_EDIT = 10, 6  # lengths of the nav and edit output lists below


@dataclass
class AnnotateTab:
    run: gr.Dropdown
    annotator: gr.Textbox
    refresh: object = None
    refresh_outputs: list = field(default_factory=list)


def layout() -> SimpleNamespace:
    """The tab's components, laid out."""
    c = SimpleNamespace()
    with gr.Row():
        c.run = gr.Dropdown(label="Evaluation run", choices=[], allow_custom_value=True, scale=3, elem_id="ann-run")
        c.annotator = gr.Textbox(value="default", label="Annotator", scale=1, elem_id="ann-annotator")
        c.resume = gr.Button("Resume (r)", scale=1, elem_id="ann-resume")
        c.show_scores = gr.Checkbox(value=False, label="Show model scores", scale=1)
    c.progress, c.header = markdown(elem_id="ann-progress"), markdown(elem_id="ann-header")
    c.table, c.summary = markdown(elem_id="ann-table"), markdown(elem_id="ann-summary")
    with gr.Row():
        c.case_id = gr.Number(label="Case id (Enter opens it)", precision=0, elem_id="ann-case-id")
        c.step = gr.Number(label="Step (Enter jumps to it)", value=1, precision=0, minimum=1, elem_id="ann-step")
        c.step_up = gr.Button("▲ Step (k)", elem_id="ann-step-up", size="sm")
        c.step_down = gr.Button("▼ Step (j)", elem_id="ann-step-down", size="sm")
    with gr.Row():
        c.ratings = [(v, gr.Button(label, elem_id=f"ann-{name}", size="sm")) for v, name, label in RATING_BUTTONS]
        c.unsure = gr.Button("Unsure (u)", elem_id="ann-unsure", size="sm")
        c.clear = gr.Button("Clear rating (c)", elem_id="ann-clear", size="sm")
        c.first_here = gr.Button("First error here (f)", elem_id="ann-first-error", size="sm")
        c.no_error = gr.Button("No error (x)", elem_id="ann-no-error", size="sm")
    with gr.Row():
        c.verdicts = [(v, gr.Button(label, elem_id=f"ann-verdict-{v}", size="sm")) for v, label in VERDICT_BUTTONS]
    with gr.Row():
        c.note = gr.Textbox(label="Note (saved as you type)", lines=2, scale=3, elem_id="ann-note")
        c.tags = gr.Textbox(label="Tags (comma-separated, saved as you type)", scale=2, elem_id="ann-tags")
    with gr.Row():
        c.prev = gr.Button("◀ Previous (p)", elem_id="ann-prev")
        c.next = gr.Button("Next (n) ▶", variant="primary", elem_id="ann-next")
    c.status = markdown(elem_id="ann-status")
    c.cursor = gr.State(None)  # {"run", "case", "step" (0-based)}
    return c


class Handlers:
    """Event handlers. Inputs: run, annotator, show_scores, cursor (+ a typed value); outputs: the
    nav list (a new case: note and tags reloaded) or the edit list (same case)."""

    def __init__(self, bench: Workbench):
        self.bench = bench

    def view(self, run_id, who, cid, step0, scores, navigated: bool) -> tuple:
        store = self.bench.store()
        if cid is None:
            text = "No case to review in this run." if run_id is not None else "Pick an evaluation run."
            return (None, None, 1, "", "", "", "", "", "", text) if navigated else (None, 1, "", "", "", text)
        case = store.get_case(cid)
        fields = annotation_fields(store.get_annotation(cid, who))
        step0 = review.clamp_step(step0, len(case.steps))
        cursor = {"run": case.run_id, "case": cid, "step": step0}
        pos = review.position(store, case.run_id, who, cid)
        progress, table = review.progress_text(pos, who), review.annotation_table(case, fields, step0, bool(scores))
        summary = review.annotation_summary(fields)
        if not navigated:
            return cursor, step0 + 1, progress, table, summary, "Saved."
        return (
            cursor,
            cid,
            step0 + 1,
            progress,
            review.case_header(case),
            table,
            summary,
            fields["note"] or "",
            ", ".join(map(str, fields["tags"])),
            "",
        )

    def resume(self):
        @guarded(N_NAV, status_at=N_NAV - 1)
        def resume(run_id, who, scores, _cursor):
            run_id, who = as_int(run_id), annotator_of(who)
            cid = review.resume(self.bench.store(), run_id, who) if run_id is not None else None
            return self.view(run_id, who, cid, 0, scores, True)

        return resume

    def navigate(self, direction: int):
        @guarded(N_NAV, status_at=N_NAV - 1)
        def navigate(run_id, who, scores, cursor):
            run_id, who = as_int(run_id), annotator_of(who)
            if run_id is None:
                raise ValueError("pick an evaluation run first")
            here = cursor.get("case") if cursor else None
            return self.view(
                run_id, who, review.step_to(self.bench.store(), run_id, who, here, direction), 0, scores, True
            )

        return navigate

    def jump_to_case(self):
        @guarded(N_NAV, status_at=N_NAV - 1)
        def jump_to_case(run_id, who, scores, _cursor, cid):
            return self.view(as_int(run_id), annotator_of(who), as_int(cid), 0, scores, True)

        return jump_to_case

    def move(self, delta: int = 0, to_typed: bool = False):
        @guarded(N_EDIT, status_at=N_EDIT - 1)
        def move(run_id, who, scores, cursor, *typed):
            cid, step0 = under_cursor(cursor)
            step0 = (as_int(typed[0]) or 1) - 1 if to_typed else step0 + delta
            return (*self.view(as_int(run_id), annotator_of(who), cid, step0, scores, False)[:-1], "")

        return move

    def edit(self, change, advance: bool = False):
        """Save change(fields, step0, n_steps, *typed) for the case under the cursor, then show it."""

        @guarded(N_EDIT, status_at=N_EDIT - 1)
        def edit(run_id, who, scores, cursor, *typed):
            (cid, step0), who = under_cursor(cursor), annotator_of(who)
            n_steps = len(self.bench.store().get_case(cid).steps)
            self.bench.update_annotation(cid, who, lambda fields: change(fields, step0, n_steps, *typed))
            moved = min(step0 + 1, max(n_steps - 1, 0)) if advance else step0
            return self.view(as_int(run_id), who, cid, moved, scores, False)

        return edit

    def runs(self):
        @guarded(2, status_at=1)
        def runs():
            choices = run_choices(self.bench.store())
            return (
                gr.update(choices=choices, value=choices[0][1] if choices else None),
                "" if choices else "No evaluation runs with cases in this store yet.",
            )

        return runs


def build(bench: Workbench) -> AnnotateTab:
    c, h = layout(), Handlers(bench)
    ui = [c.run, c.annotator, c.show_scores, c.cursor]
    nav = [c.cursor, c.case_id, c.step, c.progress, c.header, c.table, c.summary, c.note, c.tags, c.status]
    edit = [c.cursor, c.step, c.progress, c.table, c.summary, c.status]
    assert (len(nav), len(edit)) == (N_NAV, N_EDIT)
    c.run.change(h.resume(), ui, nav, **QUEUED)
    c.resume.click(h.resume(), ui, nav, **QUEUED)
    c.case_id.submit(h.jump_to_case(), [*ui, c.case_id], nav, **QUEUED)
    c.prev.click(h.navigate(-1), ui, nav, **KEYED)
    c.next.click(h.navigate(+1), ui, nav, **KEYED)
    c.step.submit(h.move(to_typed=True), [*ui, c.step], edit, **QUEUED)
    c.show_scores.change(h.move(0), ui, edit, **QUEUED)
    c.step_up.click(h.move(-1), ui, edit, **KEYED)
    c.step_down.click(h.move(+1), ui, edit, **KEYED)
    for value, button in c.ratings:
        button.click(h.edit(rating_change(value), advance=True), ui, edit, **KEYED)
    c.clear.click(h.edit(rating_change(None)), ui, edit, **KEYED)
    c.unsure.click(h.edit(unsure_change), ui, edit, **KEYED)
    c.first_here.click(h.edit(lambda f, s, n: {"first_error_step": s if n else -1}), ui, edit, **KEYED)
    c.no_error.click(h.edit(lambda f, s, n: {"first_error_step": -1}), ui, edit, **KEYED)
    for verdict, button in c.verdicts:
        button.click(h.edit(lambda f, s, n, v=verdict: {"verdict": v}), ui, edit, **KEYED)
    typing = {**QUEUED, "trigger_mode": "always_last", "show_progress": "hidden"}
    c.note.input(h.edit(lambda f, s, n, text: {"note": text or None}), [*ui, c.note], edit, **typing)
    c.tags.input(h.edit(lambda f, s, n, text: {"tags": parse_tags(text)}), [*ui, c.tags], edit, **typing)
    return AnnotateTab(c.run, c.annotator, h.runs(), [c.run, c.status])


def annotator_of(name) -> str:
    return (name or "").strip() or "default"


def under_cursor(cursor) -> tuple[int, int]:
    if not cursor or cursor.get("case") is None:
        raise ValueError("no case open: pick a run (or press Resume)")
    return cursor["case"], cursor["step"]


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def rating_change(value):
    """A change rating the step under the cursor (a stepless draft has nothing to rate)."""

    def change(fields, step0, n_steps):
        if not n_steps:
            raise ValueError("this draft has no steps to rate")
        return review.with_rating(fields, step0, value)

    return change


def unsure_change(fields, step0, n_steps):
    if not n_steps:
        raise ValueError("this draft has no steps to rate")
    return review.with_unsure_toggled(fields, step0)
