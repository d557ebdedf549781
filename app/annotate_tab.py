"""Annotate tab: a review queue of failure cases, rated step by step and saved at every change.

Every action (a shortcut key, a button, a note typed or pasted) is numbered by the page and sent to
one server endpoint that applies them strictly in that order (app/actions.py; the page side is
ui.JS). The cursor (case and 0-based step) is the server's, so keys pressed faster than the server
answers ("g g b n g") land on the steps and cases they were meant for, whatever the load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import gradio as gr

from glore_db.annotations import check_annotator

from . import actions, review
from .render import plain_text
from .state import Workbench, annotation_fields
from .ui import error_text, guarded, logged_in_user, markdown, pick_run_text, run_choices

VERDICT_BUTTONS = (
    ("1", "found_error", "Found error (1)"),
    ("2", "solution", "Solution (2)"),
    ("3", "bad_problem", "Bad problem (3)"),
    ("4", "give_up", "Give up (4)"),
)
RATING_BUTTONS = (("g", "good", "+1 good (g)"), ("o", "okay", "0 okay (o)"), ("b", "bad", "−1 bad (b)"))
QUEUED = {"concurrency_id": "annotate", "concurrency_limit": 1, "api_visibility": "private"}
N_OUT = 11  # outputs of apply, in build()'s order


@dataclass
class AnnotateTab:
    run: gr.Dropdown
    annotator: gr.Textbox
    refresh: object = None
    refresh_outputs: list = field(default_factory=list)


def press(key: str, value_js: str = "null") -> str:
    """Frontend-only handler: hand the action to the page's ordered log (ui.JS)."""
    return f"() => {{ window.gloreAnnotate.press('{key}', {value_js}); return []; }}"


def layout() -> SimpleNamespace:
    """The tab's components, laid out."""
    c = SimpleNamespace()
    with gr.Row():
        c.run = gr.Dropdown(label="Evaluation run", choices=[], allow_custom_value=True, scale=3, elem_id="ann-run")
        c.annotator = gr.Textbox(value="default", label="Annotator", scale=1, elem_id="ann-annotator", interactive=True)
        c.resume = gr.Button("Resume (r)", scale=1, elem_id="ann-resume")
        c.show_scores = gr.Checkbox(value=False, label="Show model scores", scale=1, elem_id="ann-scores")
    c.progress, c.header = markdown(elem_id="ann-progress"), markdown(elem_id="ann-header")
    c.table, c.summary = markdown(elem_id="ann-table"), markdown(elem_id="ann-summary")
    with gr.Row():
        c.case_id = gr.Number(label="Case id (Enter opens it)", precision=0, elem_id="ann-case-id", interactive=True)
        c.step = gr.Number(
            label="Step (Enter jumps to it)", value=1, precision=0, minimum=1, elem_id="ann-step", interactive=True
        )
        c.step_up = gr.Button("▲ Step (k)", elem_id="ann-step-up", size="sm")
        c.step_down = gr.Button("▼ Step (j)", elem_id="ann-step-down", size="sm")
    with gr.Row():
        c.keyed = [(key, gr.Button(label, elem_id=f"ann-{name}", size="sm")) for key, name, label in RATING_BUTTONS]
        c.keyed.append(("u", gr.Button("Unsure (u)", elem_id="ann-unsure", size="sm")))
        c.keyed.append(("c", gr.Button("Clear rating (c)", elem_id="ann-clear", size="sm")))
        c.keyed.append(("f", gr.Button("First error here (f)", elem_id="ann-first-error", size="sm")))
        c.keyed.append(("x", gr.Button("No error (x)", elem_id="ann-no-error", size="sm")))
    with gr.Row():
        c.keyed += [(key, gr.Button(label, elem_id=f"ann-verdict-{v}", size="sm")) for key, v, label in VERDICT_BUTTONS]
    with gr.Row():
        c.note = gr.Textbox(label="Note (saved as you type)", lines=2, scale=3, elem_id="ann-note", interactive=True)
        c.tags = gr.Textbox(
            label="Tags (comma-separated, saved as you type)", scale=2, elem_id="ann-tags", interactive=True
        )
    with gr.Row():
        c.prev = gr.Button("◀ Previous (p)", elem_id="ann-prev")
        c.next = gr.Button("Next (n) ▶", variant="primary", elem_id="ann-next")
    c.keyed += [("r", c.resume), ("k", c.step_up), ("j", c.step_down), ("p", c.prev), ("n", c.next)]
    c.status = markdown(elem_id="ann-status")
    # (note, tags, case and step are written by the page's script, not by a gradio event: interactive=True)
    # The page's side of the ordered log: the apply button is clicked by ui.JS, its js hook hands over
    # the unconfirmed log; the sync box returns how far the server got and which case it shows.
    c.log = gr.Textbox(visible="hidden", elem_id="ann-log")
    c.sync = gr.Textbox(visible="hidden", elem_id="ann-sync")
    c.apply = gr.Button("apply", visible="hidden", elem_id="ann-apply")
    c.cursor = gr.State(None)  # actions.new_cursor(): run, case, step (0-based), applied, who
    return c


class Handlers:
    def __init__(self, bench: Workbench):
        self.bench = bench

    def view(self, outcome: actions.Outcome, scores) -> tuple:
        """The N_OUT outputs for the cursor after an apply; note and tags only when the case changed."""
        cursor, store = outcome.cursor, self.bench.store()
        sync = sync_text(cursor)
        status = self.status(outcome)
        keep = gr.update()
        cid, who = cursor["case"], cursor["who"]
        if cid is None:
            text = "No case to review in this run." if cursor["run"] is not None else pick_run_text(store)
            blank = "" if outcome.navigated else keep
            return (cursor, None, 1, "", "", "", "", blank, blank, status or text, sync)
        case = store.get_case(cid)
        fields = annotation_fields(store.get_annotation(cid, who))
        cursor["step"] = step0 = review.clamp_step(cursor["step"], len(case.steps))
        pos = review.position(store, case.run_id, who, cid)
        return (
            cursor,
            cid,
            step0 + 1,
            review.progress_text(pos, who),
            review.case_header(case),
            review.annotation_table(case, fields, step0, bool(scores)),
            review.annotation_summary(fields),
            (fields["note"] or "") if outcome.navigated else keep,
            ", ".join(map(str, fields["tags"])) if outcome.navigated else keep,
            status,
            sync,
        )

    @staticmethod
    def status(outcome: actions.Outcome) -> str:
        for message in outcome.messages:
            gr.Warning(plain_text(message))
        if outcome.messages:
            return "<br>".join(f"⚠️ {plain_text(m)}" for m in outcome.messages)
        return "Saved." if outcome.saved else ""

    def apply(self):
        @guarded(N_OUT, status_at=N_OUT - 2)
        def apply(scores, cursor, log_text, request: gr.Request):
            user = logged_in_user(request)

            def annotator(entry: actions.Entry) -> str:
                return user or check_annotator(entry.who or "default")

            outcome = actions.apply_log(self.bench.store(), cursor, actions.parse_log(log_text), annotator)
            try:
                return self.view(outcome, scores)
            except Exception as exc:  # the new cursor must reach the page, or its actions would apply twice
                out: list = [gr.update() for _ in range(N_OUT)]
                out[0], out[-1] = outcome.cursor, sync_text(outcome.cursor)
                out[-2] = f"⚠️ {plain_text(error_text(exc))}"
                return tuple(out)

        return apply

    def runs(self):
        @guarded(2, status_at=1)
        def runs():
            store = self.bench.store()
            choices = run_choices(store)
            return (
                gr.update(choices=choices, value=choices[0][1] if choices else None),
                "" if choices else pick_run_text(store, choices),
            )

        return runs


def sync_text(cursor: dict) -> str:
    """What the page reads back: how far the server applied its log, and the case it shows."""
    return json.dumps({"applied": cursor["applied"], "case": cursor["case"]})


def build(bench: Workbench) -> AnnotateTab:
    c, h = layout(), Handlers(bench)
    outputs = [c.cursor, c.case_id, c.step, c.progress, c.header, c.table, c.summary, c.note, c.tags, c.status, c.sync]
    assert len(outputs) == N_OUT
    c.apply.click(
        h.apply(),
        [c.show_scores, c.cursor, c.log],
        outputs,
        js="(scores, cursor, _log) => [scores, cursor, window.gloreAnnotate.pending()]",
        trigger_mode="always_last",  # one request in flight; the next carries every action made meanwhile
        show_progress="hidden",
        **QUEUED,
    )
    for key, button in c.keyed:
        button.click(None, js=press(key))
    c.run.change(None, [c.run], None, js="(run) => { window.gloreAnnotate.press('run', run); return []; }")
    c.show_scores.change(None, js=press("view"))
    c.case_id.submit(None, js=press("case", "window.gloreAnnotate.value('ann-case-id')"))
    c.step.submit(None, js=press("step", "window.gloreAnnotate.value('ann-step')"))
    # Note and tags: ui.JS sends every edit (typed, pasted, cut, dropped) and the text on leaving the field.
    return AnnotateTab(c.run, c.annotator, h.runs(), [c.run, c.status])
