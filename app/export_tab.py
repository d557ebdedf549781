"""Export tab: annotated cases as TRL stepwise / ProcessBench / PRM800K-like JSONL or CSV, downloadable.

The writing is db's (Store.export_annotations, every record with its schema_version); this tab picks
the run, format and annotator and hands the file to the browser.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from .state import Workbench
from .ui import as_int, guarded, markdown, run_choices

FORMATS = (
    ("TRL stepwise (JSONL)", "trl"),
    ("ProcessBench (JSONL)", "processbench"),
    ("PRM800K-like (JSONL)", "prm800k"),
    ("CSV", "csv"),
)
ALL_RUNS = -1


@dataclass
class ExportTab:
    refresh: object = None
    refresh_outputs: list = field(default_factory=list)


def export_file(bench: Workbench, run_id: int | None, fmt: str, annotator: str | None) -> tuple[Path, int]:
    """Write the export into a fresh temporary folder; return its path and the number of records."""
    if fmt not in {v: k for k, v in FORMATS}:
        raise ValueError(f"unknown export format {fmt!r}")
    run_part = "all-runs" if run_id is None else f"run{run_id}"
    folder = Path(tempfile.mkdtemp(prefix="glore-export-"))
    path = folder / f"glore-annotations-{run_part}-{fmt}.{'csv' if fmt == 'csv' else 'jsonl'}"
    count = bench.store().export_annotations(run_id, fmt, path, annotator=annotator or None)
    return path, count


def build(bench: Workbench) -> ExportTab:
    with gr.Row():
        run = gr.Dropdown(
            label="Run",
            choices=[("all runs", ALL_RUNS)],
            value=ALL_RUNS,
            allow_custom_value=True,
            scale=2,
            elem_id="export-run",
        )
        fmt = gr.Radio(FORMATS, value="trl", label="Format", scale=3, elem_id="export-format")
        annotator = gr.Textbox(label="Annotator (empty: everyone)", scale=1, elem_id="export-annotator")
    with gr.Row():
        export = gr.Button("Export", variant="primary", elem_id="export-button")
        download = gr.DownloadButton("Download", visible=False, elem_id="export-download")
        refresh = gr.Button("Refresh runs")
    status = markdown(elem_id="export-status")

    @guarded(2, status_at=1)
    def run_export(run_id, fmt_name, who):
        run_id = as_int(run_id)
        path, count = export_file(bench, None if run_id in (None, ALL_RUNS) else run_id, fmt_name, who)
        note = "" if count else " Nothing annotated (or no record usable in this format) yet."
        return (
            gr.DownloadButton(f"Download {path.name}", value=str(path), visible=True),
            f"Wrote **{count}** record(s) to `{path.name}` (schema_version in every record).{note}",
        )

    @guarded(2, status_at=1)
    def runs():
        choices = [("all runs", ALL_RUNS), *run_choices(bench.store())]
        return gr.update(choices=choices, value=ALL_RUNS), ""

    export.click(run_export, [run, fmt, annotator], [download, status], api_name="export")
    refresh.click(runs, None, [run, status], api_visibility="private")
    return ExportTab(runs, [run, status])
