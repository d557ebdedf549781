"""Runs tab: every run with status and config, its metrics as a table and loss/accuracy plots, and
the paper's tables (T1-T3) of evaluation runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import gradio as gr

from .render import plain_text
from .state import Workbench
from .ui import as_int, guarded, markdown, run_choices

RUN_COLUMNS = ["id", "kind", "name", "status", "created (UTC)", "duration", "parent", "error"]
METRIC_COLUMNS = ["metric", "points", "last", "min", "max"]
PLOT_COLUMNS = ["step", "value", "metric"]
WHEN_COLUMNS = ["threshold", "percent", "series"]


@dataclass
class RunsTab:
    refresh: object = None
    refresh_outputs: list = field(default_factory=list)


def seconds_text(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def run_rows(runs, now: datetime | None = None) -> list[list]:
    """Table rows; the status is the store's (a run whose heartbeat went stale reads INTERRUPTED), and a
    running run says how long ago its process last gave a sign of life."""
    now = now or datetime.now(timezone.utc)

    def duration(run):
        s = run.duration_s
        if s is not None:
            return seconds_text(s)
        if run.heartbeat_at is None:
            return "running"
        return f"running, heartbeat {seconds_text(max((now - run.heartbeat_at).total_seconds(), 0))} ago"

    return [
        [
            r.id,
            r.kind,
            r.name or "",
            r.status,
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            duration(r),
            r.parent_id if r.parent_id is not None else "",
            (r.error or "")[:120],
        ]
        for r in runs
    ]


def metric_rows(series: dict) -> list[list]:
    rows = []
    for key, points in series.items():
        values = [v for _, v in points]
        rows.append([key, len(values), round(values[-1], 5), round(min(values), 5), round(max(values), 5)])
    return rows


def plot_frame(series: dict, words: tuple[str, ...]):
    """Long-format frame (step, value, metric) of the keys containing any of `words`; a missing step is
    the point's place in its series."""
    import pandas as pd

    records = [
        (step if step is not None else i, value, key)
        for key, points in series.items()
        if any(w in key.lower() for w in words)
        for i, (step, value) in enumerate(points)
    ]
    return pd.DataFrame(records, columns=PLOT_COLUMNS)


def paper_tables(summary: dict) -> str:
    """summary["tables_md"] (name -> Markdown table) as one Markdown document."""
    tables = summary.get("tables_md") or {}
    if not isinstance(tables, dict) or not tables:
        return "*No paper tables for this run (evaluation runs store them).*"
    return "\n\n".join(f"### {name}\n\n{table}" for name, table in tables.items())


def when_frame(points):
    """Long-format frame (threshold, percent, series) of a when curve: accuracy, share refined, correct
    drafts broken and wrong drafts fixed against the ORM threshold, with "always refine"'s accuracy as a
    flat line across it to compare with."""
    import pandas as pd

    swept = [p for p in points if p.threshold is not None]
    always = next((p for p in points if p.threshold is None), None)
    records = []
    for p in swept:
        records += [
            (p.threshold, 100 * p.accuracy, "accuracy"),
            (p.threshold, 100 * p.refined_share, "drafts refined"),
            (p.threshold, 100 * p.broken_rate, "correct drafts broken"),
            (p.threshold, 100 * p.fixed_rate, "wrong drafts fixed"),
        ]
        if always is not None:
            records.append((p.threshold, 100 * always.accuracy, "accuracy, always refine"))
    return pd.DataFrame(records, columns=WHEN_COLUMNS)


def when_plot_data(store, run_id: int):
    """The when curve of an evaluation run's stored cases; an empty frame for a run without cases."""
    import pandas as pd

    from glore_engine.evaluation.when import PLOT_THRESHOLDS, run_curve

    if not store.count_cases(run_id):
        return pd.DataFrame([], columns=WHEN_COLUMNS)
    return when_frame(run_curve(store, run_id, PLOT_THRESHOLDS))


def run_header(run) -> str:
    name = f" · {plain_text(run.name)}" if run.name else ""
    lines = [f"**Run #{run.id}** · {plain_text(run.kind)}{name} · **{run.status}**"]
    if run.status == "RUNNING" and run.heartbeat_at is not None:
        lines.append(f"Last heartbeat: {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC")
    if run.output_dir:
        lines.append(f"Output: {plain_text(run.output_dir)}")
    if run.error:
        lines.append(f"Error: {plain_text(run.error)}")
    return "  \n".join(lines)


def build(bench: Workbench) -> RunsTab:
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=[], allow_custom_value=True, scale=3, elem_id="runs-run")
        refresh = gr.Button("Refresh", scale=1)
    status = markdown(elem_id="runs-status")
    runs_table = gr.Dataframe(headers=RUN_COLUMNS, value=[], interactive=False, label="Runs (newest first)")
    header = markdown(elem_id="runs-header")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="value", color="metric", title="Loss", label="Loss")
        acc_plot = gr.LinePlot(x="step", y="value", color="metric", title="Accuracy", label="Accuracy")
    metrics = gr.Dataframe(headers=METRIC_COLUMNS, value=[], interactive=False, label="Metrics")
    tables = markdown(elem_id="runs-tables")
    when_plot = gr.LinePlot(
        x="threshold",
        y="percent",
        color="series",
        title="When to refine: refine only drafts with ORM score < threshold, then rerank (%)",
        label="When to refine (evaluation runs)",
        elem_id="runs-when",
    )
    with gr.Row():
        config = gr.JSON(label="Config")
        summary = gr.JSON(label="Summary")

    @guarded(3, status_at=2)
    def runs():
        store = bench.store()
        choices = run_choices(store, with_cases=False)
        value = choices[0][1] if choices else None
        return (
            run_rows(store.list_runs(limit=200)),
            gr.update(choices=choices, value=value),
            "" if choices else "No runs in this store yet: `glore-train` records them.",
        )

    @guarded(8, status_at=7)
    def show(run_id):
        run_id = as_int(run_id)
        if run_id is None:
            return "", [], None, None, "", None, None, ""
        store = bench.store()
        info, series = store.get_run(run_id), store.metric_series(run_id)
        summary_view = {k: v for k, v in info.summary.items() if k != "tables_md"}
        return (
            run_header(info),
            metric_rows(series),
            plot_frame(series, ("loss",)),
            plot_frame(series, ("acc",)),
            paper_tables(info.summary),
            _jsonable(info.config),
            _jsonable(summary_view),
            "",
        )

    @guarded(2, status_at=1)
    def when(run_id):
        run_id = as_int(run_id)
        if run_id is None:
            return None, ""
        return when_plot_data(bench.store(), run_id), ""

    refresh.click(runs, None, [runs_table, run, status], api_name="runs")
    run.change(when, [run], [when_plot, status], api_name="run_when")
    run.change(
        show, [run], [header, metrics, loss_plot, acc_plot, tables, config, summary, status], api_name="run_details"
    )
    return RunsTab(runs, [runs_table, run, status])


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
