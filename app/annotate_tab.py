"""Annotate tab: a review queue of failure cases, rated step by step and saved at every change.

Every button is one upsert of the (case, annotator) annotation, so a closed tab or a crash loses
nothing; the key in each button's label is a keyboard shortcut (see ui.SHORTCUTS and ui.JS).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from . import review
from .state import Workbench, annotation_fields
from .ui import as_int, guarded, markdown, run_choices

VERDICT_BUTTONS = (("found_error", "Found error (1)"), ("solution", "Solution (2)"),
                   ("bad_problem", "Bad problem (3)"), ("give_up", "Give up (4)"))
RATING_BUTTONS = ((1, "good", "+1 good (g)"), (0, "okay", "0 okay (o)"), (-1, "bad", "−1 bad (b)"))


@dataclass
class AnnotateTab:
    run: gr.Dropdown
    annotator: gr.Textbox
    case_id: gr.Number
    step: gr.Number
    refresh: object = None
    refresh_outputs: list = field(default_factory=list)


def build(bench: Workbench) -> AnnotateTab:
    with gr.Row():
        run = gr.Dropdown(label="Evaluation run", choices=[], allow_custom_value=True, scale=3, elem_id="ann-run")
        annotator = gr.Textbox(value="default", label="Annotator", scale=1, elem_id="ann-annotator")
        resume = gr.Button("Resume (r)", scale=1, elem_id="ann-resume")
        show_scores = gr.Checkbox(value=False, label="Show model scores", scale=1)
    progress = markdown(elem_id="ann-progress")
    header = markdown(elem_id="ann-header")
    table = markdown(elem_id="ann-table")
    summary = markdown(elem_id="ann-summary")
    with gr.Row():
        case_id = gr.Number(label="Case id (Enter opens it)", precision=0, scale=1, elem_id="ann-case-id")
        step = gr.Number(label="Step (Enter jumps to it)", value=1, precision=0, minimum=1, scale=1, elem_id="ann-step")
        step_up = gr.Button("▲ Step (k)", elem_id="ann-step-up", size="sm")
        step_down = gr.Button("▼ Step (j)", elem_id="ann-step-down", size="sm")
    with gr.Row():
        rating_buttons = [(value, gr.Button(label, elem_id=f"ann-{name}", size="sm"))
                          for value, name, label in RATING_BUTTONS]
        unsure = gr.Button("Unsure (u)", elem_id="ann-unsure", size="sm")
        clear = gr.Button("Clear rating (c)", elem_id="ann-clear", size="sm")
        first_here = gr.Button("First error here (f)", elem_id="ann-first-error", size="sm")
        no_error = gr.Button("No error (x)", elem_id="ann-no-error", size="sm")
    with gr.Row():
        verdict_buttons = [(v, gr.Button(label, elem_id=f"ann-verdict-{v}", size="sm")) for v, label in VERDICT_BUTTONS]
    with gr.Row():
        note = gr.Textbox(label="Note (saved as you type)", lines=2, scale=3, elem_id="ann-note")
        tags = gr.Textbox(label="Tags (comma-separated, saved as you type)", scale=2, elem_id="ann-tags")
    with gr.Row():
        prev = gr.Button("◀ Previous (p)", elem_id="ann-prev")
        nxt = gr.Button("Next (n) ▶", variant="primary", elem_id="ann-next")
    status = markdown(elem_id="ann-status")

    tab = AnnotateTab(run, annotator, case_id, step)
    # The cursor (case and 0-based step) lives in server-side session state and every event of this
    # tab runs through one FIFO worker, so keys pressed faster than the server answers ("g g g")
    # still rate consecutive steps instead of reading a stale step number from the page.
    cursor = gr.State(None)
    ui = [run, annotator, show_scores, cursor]
    nav_out = [cursor, case_id, step, progress, header, table, summary, note, tags, status]
    edit_out = [cursor, step, progress, table, summary, status]
    queued = {"concurrency_id": "annotate", "concurrency_limit": 1, "api_visibility": "private"}

    def view(run_id, who, cid, step0, scores, navigated: bool):
        """Outputs for a case: all of nav_out when navigated (note and tags too), else edit_out."""
        store = bench.store()
        if cid is None:
            text = "No case to review in this run." if run_id is not None else "Pick an evaluation run."
            return (None, None, 1, "", "", "", "", "", "", text) if navigated else (None, 1, "", "", "", text)
        case = store.get_case(cid)
        fields = annotation_fields(store.get_annotation(cid, who))
        step0 = review.clamp_step(step0, len(case.steps))
        pos = review.position(store, case.run_id, who, cid)
        new_cursor = {"run": case.run_id, "case": cid, "step": step0}
        shown = (step0 + 1, review.progress_text(pos, who),
                 review.annotation_table(case, fields, step0, bool(scores)), review.annotation_summary(fields))
        if not navigated:
            return (new_cursor, *shown, "Saved.")
        return (new_cursor, cid, shown[0], shown[1], review.case_header(case), shown[2], shown[3],
                fields["note"] or "", ", ".join(map(str, fields["tags"])), "")

    def who_of(annotator_name):
        return (annotator_name or "").strip() or "default"

    def current(cur):
        if not cur or cur.get("case") is None:
            raise ValueError("no case open: pick a run (or press Resume)")
        return cur["case"], cur["step"]

    @guarded(len(nav_out), status_at=len(nav_out) - 1)
    def open_resume(run_id, who, scores, _cur):
        run_id, who = as_int(run_id), who_of(who)
        cid = review.resume(bench.store(), run_id, who) if run_id is not None else None
        return view(run_id, who, cid, 0, scores, True)

    def navigate(direction):
        @guarded(len(nav_out), status_at=len(nav_out) - 1)
        def go(run_id, who, scores, cur):
            run_id, who = as_int(run_id), who_of(who)
            if run_id is None:
                raise ValueError("pick an evaluation run first")
            here = cur.get("case") if cur else None
            target = review.step_to(bench.store(), run_id, who, here, direction)
            return view(run_id, who, target, 0, scores, True)
        return go

    @guarded(len(nav_out), status_at=len(nav_out) - 1)
    def jump_to_case(run_id, who, scores, _cur, cid):
        return view(as_int(run_id), who_of(who), as_int(cid), 0, scores, True)

    def edit(change, advance: bool = False):
        """A handler saving one change of the annotation under the cursor, then showing it."""
        @guarded(len(edit_out), status_at=len(edit_out) - 1)
        def save(run_id, who, scores, cur, *text):
            (cid, step0), who = current(cur), who_of(who)
            n_steps = len(bench.store().get_case(cid).steps)
            bench.update_annotation(cid, who, lambda fields: change(fields, step0, n_steps, *text))
            moved = min(step0 + 1, max(n_steps - 1, 0)) if advance else step0
            return view(as_int(run_id), who, cid, moved, scores, False)
        return save

    def move(delta=0, to_number=False):
        @guarded(len(edit_out), status_at=len(edit_out) - 1)
        def go(run_id, who, scores, cur, *number):
            cid, step0 = current(cur)
            step0 = (as_int(number[0]) or 1) - 1 if to_number else step0 + delta
            return (*view(as_int(run_id), who_of(who), cid, step0, scores, False)[:-1], "")
        return go

    run.change(open_resume, ui, nav_out, **queued)
    resume.click(open_resume, ui, nav_out, **queued)
    case_id.submit(jump_to_case, [*ui, case_id], nav_out, **queued)
    step.submit(move(to_number=True), [*ui, step], edit_out, **queued)
    show_scores.change(move(0), ui, edit_out, **queued)
    prev.click(navigate(-1), ui, nav_out, trigger_mode="multiple", **queued)
    nxt.click(navigate(+1), ui, nav_out, trigger_mode="multiple", **queued)
    step_up.click(move(-1), ui, edit_out, trigger_mode="multiple", **queued)
    step_down.click(move(+1), ui, edit_out, trigger_mode="multiple", **queued)
    for value, button in rating_buttons:
        button.click(edit(rating_change(value), advance=True), ui, edit_out, trigger_mode="multiple", **queued)
    clear.click(edit(rating_change(None)), ui, edit_out, trigger_mode="multiple", **queued)
    unsure.click(edit(unsure_change), ui, edit_out, trigger_mode="multiple", **queued)
    first_here.click(edit(lambda f, s, n: {"first_error_step": s if n else -1}), ui, edit_out, **queued)
    no_error.click(edit(lambda f, s, n: {"first_error_step": -1}), ui, edit_out, **queued)
    for verdict, button in verdict_buttons:
        button.click(edit(lambda f, s, n, v=verdict: {"verdict": v}), ui, edit_out, **queued)
    note.input(edit(lambda f, s, n, text: {"note": text or None}), [*ui, note], edit_out,
               trigger_mode="always_last", show_progress="hidden", **queued)
    tags.input(edit(lambda f, s, n, text: {"tags": parse_tags(text)}), [*ui, tags], edit_out,
               trigger_mode="always_last", show_progress="hidden", **queued)

    @guarded(2, status_at=1)
    def runs():
        choices = run_choices(bench.store())
        return gr.update(choices=choices, value=choices[0][1] if choices else None), \
            "" if choices else "No evaluation runs with cases in this store yet."

    tab.refresh, tab.refresh_outputs = runs, [run, status]
    return tab


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def rating_change(value):
    """Fields change rating the step under the cursor (a stepless draft has nothing to rate)."""
    def change(fields, step0, n_steps):
        if not n_steps:
            raise ValueError("this draft has no steps to rate")
        return review.with_rating(fields, step0, value)
    return change


def unsure_change(fields, step0, n_steps):
    if not n_steps:
        raise ValueError("this draft has no steps to rate")
    return review.with_unsure_toggled(fields, step0)
