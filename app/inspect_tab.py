"""Inspect tab: a problem (typed, picked or with the user's own draft) through the GLoRe pipeline.

The last GloreResult stays in gr.State: moving the threshold slider re-renders it, never reruns models.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .render import inspect_view
from .state import Workbench
from .ui import guarded, markdown

STAGE_FRACTIONS = {
    "loading models": 0.05,
    "draft written; scoring steps": 0.35,
    "global refinement written": 0.6,
    "local refinement written; reranking": 0.85,
}


@dataclass
class InspectTab:
    problem: gr.Dropdown
    question: gr.Textbox
    gold: gr.Textbox
    draft: gr.Textbox
    threshold: gr.Slider
    run: gr.Button
    status: gr.Markdown
    question_view: gr.Markdown
    draft_table: gr.Markdown
    verdict: gr.Markdown
    global_card: gr.Markdown
    local_card: gr.Markdown
    rerank_card: gr.Markdown
    result: gr.State

    @property
    def view(self) -> list:
        """The components a rendered result fills, in view_values order."""
        return [self.question_view, self.draft_table, self.verdict, self.global_card, self.local_card, self.rerank_card]


def view_values(result, threshold: float) -> tuple:
    v = inspect_view(result, threshold)
    return v.question, v.draft_table, v.verdict, v.global_card, v.local_card, v.rerank_card


def problem_choices(bench: Workbench) -> list[tuple[str, int]]:
    try:
        problems = bench.problems()
    except Exception as exc:
        gr.Warning(f"cannot read the problems: {exc}")
        return []
    return [(f"{p.id}: {p.question[:70]}{'…' if len(p.question) > 70 else ''}", i) for i, p in enumerate(problems)]


def build(bench: Workbench) -> InspectTab:
    message = bench.models_message
    if message:
        gr.Markdown(f"⚠️ **Inspect needs models.** {message}", elem_id="inspect-no-models")
    else:
        gr.Markdown(
            f"Models: `{bench.models_folder}` · student draft → ORM *when* → SORM *where* → "
            "global + local refinement → ORM rerank"
        )
    with gr.Row():
        with gr.Column(scale=3):
            problem = gr.Dropdown(
                choices=problem_choices(bench),
                value=None,
                label="Pick a problem",
                info="synthetic test split, or the --data file",
            )
            question = gr.Textbox(
                label="Problem", lines=3, elem_id="inspect-question", placeholder="Type a maths word problem…"
            )
            draft = gr.Textbox(
                label="Your own draft (optional)",
                lines=4,
                elem_id="inspect-draft",
                placeholder="One step per line, last line '#### answer'. Empty: the student writes it.",
            )
        with gr.Column(scale=1):
            gold = gr.Textbox(label="Gold answer (optional)", elem_id="inspect-gold")
            threshold = gr.Slider(
                0.0,
                1.0,
                value=bench.threshold,
                step=0.01,
                label="Threshold",
                info="first error = first step with SORM < threshold; when = draft ORM < threshold",
                elem_id="inspect-threshold",
            )
            run = gr.Button("Run GLoRe", variant="primary", elem_id="inspect-run", interactive=message is None)
    status = markdown((message and f"⚠️ {message}") or "", elem_id="inspect-status")
    question_view = markdown(elem_id="inspect-question-view")
    with gr.Row():
        with gr.Column(scale=3):
            draft_table = markdown(elem_id="inspect-draft-table")
        with gr.Column(scale=2):
            verdict = markdown(elem_id="inspect-verdict")
    with gr.Row(equal_height=True):
        global_card = markdown(elem_id="inspect-global")
        local_card = markdown(elem_id="inspect-local")
        rerank_card = markdown(elem_id="inspect-rerank")
    tab = InspectTab(
        problem,
        question,
        gold,
        draft,
        threshold,
        run,
        status,
        question_view,
        draft_table,
        verdict,
        global_card,
        local_card,
        rerank_card,
        gr.State(None),
    )
    wire(tab, bench)
    return tab


def wire(tab: InspectTab, bench: Workbench) -> None:
    @guarded(3)
    def pick(index):
        if index is None:
            return gr.update(), gr.update(), gr.update()
        p = bench.problem(int(index))
        return p.question, p.answer, ""

    tab.problem.change(pick, [tab.problem], [tab.question, tab.gold, tab.draft], api_name="pick_problem")

    @guarded(8)
    def run(question, gold, draft, threshold, progress=gr.Progress()):  # noqa: B008 - gradio injects it
        """Draft (or the user's), critique, both refinements and the rerank for one problem."""
        question = question or ""
        progress(0.0, desc="queued for the model worker")

        def on_stage(text):
            progress(STAGE_FRACTIONS.get(text, 0.5), desc=text)

        result = bench.inspect(
            question, draft=draft if draft else None, gold=gold, threshold=float(threshold), on_stage=on_stage
        )
        return (_status(result), *view_values(result, float(threshold)), result)

    tab.run.click(
        run,
        [tab.question, tab.gold, tab.draft, tab.threshold],
        [tab.status, *tab.view, tab.result],
        api_name="inspect",
        concurrency_id="model",
        concurrency_limit=bench.max_batch,  # all wait in the model worker, which batches them
    )
    tab.question.submit(
        run,
        [tab.question, tab.gold, tab.draft, tab.threshold],
        [tab.status, *tab.view, tab.result],
        api_visibility="private",
        concurrency_id="model",
        concurrency_limit=bench.max_batch,  # all wait in the model worker, which batches them
    )

    @guarded(6, status_at=2)
    def rethreshold(result, threshold):
        """Re-render the last result at a new threshold; no model runs."""
        if result is None:
            return tuple(gr.update() for _ in range(6))
        return view_values(result, float(threshold))

    tab.threshold.change(
        rethreshold, [tab.result, tab.threshold], tab.view, api_name="rethreshold", show_progress="hidden"
    )


def _status(result) -> str:
    t = result.timings or {}
    steps = len(result.draft.steps)
    note = "" if steps else " The draft has no steps: the critique has nothing to mark."
    batch = t.get("batch", 1)
    shared = f", in a batch of {batch} requests" if batch > 1 else ""
    return (
        f"Done in {t.get('total_s', 0):.1f} s (draft {t.get('draft_s', 0):.1f} s, refinements "
        f"{t.get('refine_s', 0):.1f} s, rerank {t.get('rerank_s', 0):.1f} s{shared}); "
        f"draft of {steps} step(s).{note}"
    )
