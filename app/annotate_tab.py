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
        case_id = gr.Number(label="Case id", precision=0, scale=1, elem_id="ann-case-id")
        step = gr.Number(label="Step", value=1, precision=0, minimum=1, scale=1, elem_id="ann-step")
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
    where = [run, annotator, case_id, step, show_scores]
    nav_out = [case_id, step, progress, header, table, summary, note, tags, status]
    edit_out = [step, progress, table, summary, status]

    def view(run_id, who, cid, step0, scores, navigated: bool):
        """Outputs for a case: all of nav_out when navigated (note and tags too), else edit_out."""
        store = bench.store()
        if cid is None:
            text = "No case to review in this run." if run_id is not None else "Pick an evaluation run."
            empty = (None, 1, "", "", "", "", "", "", text)
            return empty if navigated else (1, "", "", "", text)
        case = store.get_case(cid)
        fields = annotation_fields(store.get_annotation(cid, who))
        step0 = review.clamp_step(step0, len(case.steps))
        pos = review.position(store, case.run_id, who, cid)
        shown = (step0 + 1, review.progress_text(pos, who),
                 review.annotation_table(case, fields, step0, bool(scores)), review.annotation_summary(fields))
        if not navigated:
            return (*shown, "Saved.")
        return (cid, shown[0], shown[1], review.case_header(case), shown[2], shown[3], fields["note"] or "",
                ", ".join(map(str, fields["tags"])), "")

    def who_of(annotator_name):
        return (annotator_name or "").strip() or "default"

    @guarded(len(nav_out), status_at=len(nav_out) - 1)
    def open_resume(run_id, who, _cid, _step, scores):
        run_id, who = as_int(run_id), who_of(who)
        cid = review.resume(bench.store(), run_id, who) if run_id is not None else None
        return view(run_id, who, cid, 0, scores, True)

    def navigate(direction):
        @guarded(len(nav_out), status_at=len(nav_out) - 1)
        def go(run_id, who, cid, _step, scores):
            run_id, who = as_int(run_id), who_of(who)
            if run_id is None:
                raise ValueError("pick an evaluation run first")
            target = review.step_to(bench.store(), run_id, who, as_int(cid), direction)
            return view(run_id, who, target, 0, scores, True)
        return go

    @guarded(len(nav_out), status_at=len(nav_out) - 1)
    def open_case(run_id, who, cid, _step, scores):
        return view(as_int(run_id), who_of(who), as_int(cid), 0, scores, True)

    def edit(change, advance: bool = False):
        """A handler saving one change of the current case's annotation, then showing it."""
        @guarded(len(edit_out), status_at=len(edit_out) - 1)
        def save(run_id, who, cid, step1, scores):
            cid, who = as_int(cid), who_of(who)
            if cid is None:
                raise ValueError("no case open: pick a run (or press Resume)")
            n_steps = len(bench.store().get_case(cid).steps)
            step0 = review.clamp_step((as_int(step1) or 1) - 1, n_steps)
            bench.update_annotation(cid, who, lambda fields: change(fields, step0, n_steps))
            moved = min(step0 + 1, max(n_steps - 1, 0)) if advance else step0
            return view(as_int(run_id), who, cid, moved, scores, False)
        return save

    def rating(value):
        def change(fields, step0, n_steps):
            if not n_steps:
                raise ValueError("this draft has no steps to rate")
            return review.with_rating(fields, step0, value)
        return change

    def unsure_change(fields, step0, n_steps):
        if not n_steps:
            raise ValueError("this draft has no steps to rate")
        return review.with_unsure_toggled(fields, step0)

    def move(delta):
        @guarded(len(edit_out), status_at=len(edit_out) - 1)
        def go(run_id, who, cid, step1, scores):
            step0 = (as_int(step1) or 1) - 1 + delta
            out = view(as_int(run_id), who_of(who), as_int(cid), step0, scores, False)
            return (*out[:-1], "")
        return go

    run.change(open_resume, where, nav_out, api_name="annotate_resume")
    resume.click(open_resume, where, nav_out, api_visibility="private")
    case_id.submit(open_case, where, nav_out, api_name="annotate_open")
    show_scores.change(move(0), where, edit_out, api_visibility="private")
    prev.click(navigate(-1), where, nav_out, api_name="annotate_prev")
    nxt.click(navigate(+1), where, nav_out, api_name="annotate_next")
    step_up.click(move(-1), where, edit_out, api_visibility="private")
    step_down.click(move(+1), where, edit_out, api_visibility="private")
    step.submit(move(0), where, edit_out, api_visibility="private")
    for value, button in rating_buttons:
        name = {1: "good", 0: "okay", -1: "bad"}[value]
        button.click(edit(rating(value), advance=True), where, edit_out, api_name=f"annotate_rate_{name}")
    clear.click(edit(rating(None)), where, edit_out, api_name="annotate_rate_clear")
    unsure.click(edit(unsure_change), where, edit_out, api_name="annotate_unsure")
    first_here.click(edit(lambda f, s, n: {"first_error_step": s} if n else {"first_error_step": -1}), where,
                     edit_out, api_name="annotate_first_error")
    no_error.click(edit(lambda f, s, n: {"first_error_step": -1}), where, edit_out, api_name="annotate_no_error")
    for verdict, button in verdict_buttons:
        button.click(edit(lambda f, s, n, v=verdict: {"verdict": v}), where, edit_out,
                     api_name=f"annotate_verdict_{verdict}")
    def text_field(key, convert):
        def save(run_id, who, cid, step1, scores, text):
            return edit(lambda f, s, n: {key: convert(text)})(run_id, who, cid, step1, scores)
        return save

    note.input(text_field("note", lambda text: text or None), [*where, note], edit_out, api_name="annotate_note",
               trigger_mode="always_last", show_progress="hidden")
    tags.input(text_field("tags", _tags), [*where, tags], edit_out, api_name="annotate_tags",
               trigger_mode="always_last", show_progress="hidden")

    @guarded(2, status_at=1)
    def runs():
        choices = run_choices(bench.store())
        return gr.update(choices=choices, value=choices[0][1] if choices else None), \
            "" if choices else "No evaluation runs with cases in this store yet."

    tab.refresh, tab.refresh_outputs = runs, [run, status]
    return tab


def _tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]
