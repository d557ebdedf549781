"""Results tab: an evaluation run's cases with filters and tags; a case opens in the Inspect view."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from glore_engine.errors import DataError

from .inspect_tab import InspectTab, view_values
from .state import Workbench
from .ui import as_int, guarded, markdown, pick_run_text, run_choices

PAGE_SIZE = 50
FILTER_CHOICES = [
    ("draft wrong", "draft_wrong"),
    ("fixed by global", "fixed_by_global"),
    ("fixed by local", "fixed_by_local"),
    ("broken by refinement", "broken_by_refinement"),
    ("reranker wrong", "reranker_wrong"),
    ("first error: SORM ≠ human", "disagreement"),
    ("annotated", "annotated"),
    ("unannotated", "unannotated"),
]
# One id column: the case id, which Annotate, the Case id box and the API take (the run index is not unique).
COLUMNS = ["case", "question", "draft", "global", "local", "final", "tags"]


@dataclass
class ResultsTab:
    run: gr.Dropdown
    case_id: gr.Number
    status: gr.Markdown
    refresh: object = None  # handler filling the run list (also run on page load)
    refresh_outputs: list | None = None


def case_filters(selected: list[str] | None, tag: str | None) -> dict:
    filters = dict.fromkeys(selected or [], True)
    if tag and tag.strip():
        filters["tag"] = tag.strip()
    return filters


def mark(flag) -> str:
    return "?" if flag is None else ("✓" if flag else "✗")


def case_table(cases) -> list[list]:
    return [
        [
            c.id,
            c.question[:90] + ("…" if len(c.question) > 90 else ""),
            mark(c.draft_correct),
            mark(c.global_correct),
            mark(c.local_correct),
            mark(c.final_correct),
            ", ".join(map(str, c.tags)),
        ]
        for c in cases
    ]


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def stored_result(case):
    """The GloreResult a stored case was made from (to_case's data), for the Inspect view."""
    from glore_engine.pipeline import result_from_dict

    try:
        return result_from_dict(case.data)
    except (TypeError, KeyError, ValueError) as exc:
        raise DataError(
            f"case {case.id} was not stored from a GLoRe pipeline result, so it cannot open in Inspect ({exc})"
        ) from None


def inspect_boxes(case) -> tuple[str, str, str]:
    """(problem, draft, gold) for Inspect's input boxes: the case's own, so Run scores the same draft
    again (the pipeline splits the stored text into the same steps)."""
    return case.question, case.draft, case.gold or ""


def build(bench: Workbench, inspect: InspectTab, tabs: gr.Tabs) -> ResultsTab:
    with gr.Row():
        run = gr.Dropdown(label="Evaluation run", choices=[], allow_custom_value=True, scale=3, elem_id="results-run")
        refresh = gr.Button("Refresh runs", scale=1)
    with gr.Row():
        filters = gr.CheckboxGroup(FILTER_CHOICES, label="Filters (all must hold)", scale=4)
        tag = gr.Textbox(label="Tag", scale=1)
        page = gr.Number(value=1, minimum=1, precision=0, label="Page", scale=1)
    status = markdown(elem_id="results-status")
    table = gr.Dataframe(
        headers=COLUMNS, value=[], interactive=False, wrap=True, label="Cases (click a row)", elem_id="results-cases"
    )
    with gr.Row():
        case_id = gr.Number(label="Case id", precision=0, elem_id="results-case-id")
        tags = gr.Textbox(label="Tags of this case (comma-separated)", scale=3, elem_id="results-tags")
        save_tags = gr.Button("Save tags", elem_id="results-save-tags")
        open_case = gr.Button("Open in Inspect", variant="primary", elem_id="results-open")
    tab = ResultsTab(run, case_id, status)

    @guarded(2, status_at=1)
    def runs():
        store = bench.store()
        choices = run_choices(store)
        return gr.update(choices=choices, value=choices[0][1] if choices else None), (
            "" if choices else pick_run_text(store, choices)
        )

    @guarded(2, status_at=1)
    def list_cases(run_id, selected, tag_text, page_no):
        run_id = as_int(run_id)
        if run_id is None:
            return [], pick_run_text(bench.store())
        store, flt = bench.store(), case_filters(selected, tag_text)
        if flt.pop("disagreement", None):
            flt["case_ids"] = bench.disagreeing_cases(run_id)
        page_no = max(as_int(page_no) or 1, 1)
        total = store.count_cases(run_id, flt)
        cases = store.cases(run_id, flt, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
        pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        return case_table(cases), f"**{total}** case(s) match · page {page_no} of {pages}"

    @guarded(3, status_at=2)
    def select(evt: gr.SelectData):
        row = evt.row_value or []
        if not row:
            return gr.update(), gr.update(), ""
        case = bench.store().get_case(int(row[0]))
        return case.id, ", ".join(map(str, case.tags)), ""

    @guarded(3, status_at=2)
    def save(case_id, text, run_id):
        case = bench.store().set_case_tags(as_int(case_id), parse_tags(text))
        return ", ".join(map(str, case.tags)), gr.update(), f"Saved tags of case {case.id}."

    # The stored view, and the problem, draft and gold boxes filled with the case so Run scores it again.
    open_outputs = [*inspect.view, inspect.result, inspect.threshold, inspect.status]
    open_outputs += [inspect.question, inspect.draft, inspect.gold, tabs, status]

    @guarded(len(open_outputs), status_at=len(open_outputs) - 1)
    def open_in_inspect(case_id):
        """A stored case rendered in Inspect, without running any model; Run then reruns it."""
        if as_int(case_id) is None:
            raise ValueError("pick a case first (click a row or type its id)")
        case = bench.store().get_case(as_int(case_id))
        if case.data.get("source") == "import":  # a draft from elsewhere: nothing refined yet
            return (
                *("" for _ in inspect.view),
                None,
                gr.update(),
                f"Case {case.id} of run {case.run_id}: an imported draft, not yet through GLoRe. "
                "Press **Run GLoRe** to score it and refine it.",
                *inspect_boxes(case),
                gr.Tabs(selected="inspect"),
                "",
            )
        result = stored_result(case)
        return (
            *view_values(result, result.threshold),
            result,
            result.threshold,
            f"Case {case.id} of run {case.run_id}, as stored (no model was run). Run GLoRe scores this draft again.",
            *inspect_boxes(case),
            gr.Tabs(selected="inspect"),
            "",
        )

    inputs = [run, filters, tag, page]
    refresh.click(runs, None, [run, status], api_name="results_runs")
    run.change(list_cases, inputs, [table, status], api_name="cases")
    for component in (filters, page):
        component.change(list_cases, inputs, [table, status], api_visibility="private")
    tag.submit(list_cases, inputs, [table, status], api_visibility="private")
    table.select(select, None, [case_id, tags, status], api_visibility="private")
    save_tags.click(save, [case_id, tags, run], [tags, table, status], api_name="save_tags").then(
        list_cases, inputs, [table, status], api_visibility="private"
    )
    open_case.click(open_in_inspect, [case_id], open_outputs, api_name="open_case")
    tab.refresh = runs
    tab.refresh_outputs = [run, status]
    return tab
