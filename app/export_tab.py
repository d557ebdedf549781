"""Export tab: annotated cases as TRL stepwise / ProcessBench / PRM800K-like JSONL or CSV, downloadable.

The formats are glore_engine.exports' (the store hands over plain records, every record carries its
schema_version); this tab picks the run, format and annotator and hands the file to the browser.
Each export is written into its own folder under one temporary folder per app; only the newest
KEEP_EXPORTS folders are kept (gradio serves the download from its own copy, and the app removes
the whole folder when it exits).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from glore_engine.exports import export_annotations

from .state import Workbench
from .ui import as_int, guarded, markdown, run_choices

FORMATS = (
    ("TRL stepwise (JSONL)", "trl"),
    ("ProcessBench (JSONL)", "processbench"),
    ("PRM800K-like (JSONL)", "prm800k"),
    ("CSV", "csv"),
)
ALL_RUNS = -1
KEEP_EXPORTS = 4  # a few sessions exporting at once all get their file


@dataclass
class ExportTab:
    refresh: object = None
    refresh_outputs: list = field(default_factory=list)
    folder: ExportFolder | None = None


class ExportFolder:
    """One temporary folder per app: a numbered subfolder per export, the oldest removed past `keep`."""

    def __init__(self, keep: int = KEEP_EXPORTS):
        self.root = Path(tempfile.mkdtemp(prefix="glore-exports-"))
        self.keep, self._count, self._lock = keep, 0, threading.Lock()
        atexit.register(self.remove)

    def new(self) -> Path:
        with self._lock:
            self._count += 1
            folder = self.root / f"{self._count:06d}"
            folder.mkdir(parents=True)
            for old in sorted(p for p in self.root.iterdir() if p.is_dir())[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
            return folder

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def export_file(
    bench: Workbench, run_id: int | None, fmt: str, annotator: str | None, folder: Path | None = None
) -> tuple[Path, int]:
    """Write the export into `folder` (default: a fresh temporary one); return its path and the number of records."""
    if fmt not in {v: k for k, v in FORMATS}:
        raise ValueError(f"unknown export format {fmt!r}")
    run_part = "all-runs" if run_id is None else f"run{run_id}"
    folder = folder or Path(tempfile.mkdtemp(prefix="glore-export-"))
    path = folder / f"glore-annotations-{run_part}-{fmt}.{'csv' if fmt == 'csv' else 'jsonl'}"
    rows = [row.record() for row in bench.store().annotated_cases(run_id, annotator=annotator or None)]
    return path, export_annotations(rows, fmt, path)


def build(bench: Workbench) -> ExportTab:
    exports = ExportFolder()
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
        if who is not None and not isinstance(who, str):
            raise ValueError(f"annotator must be text, got {type(who).__name__}")
        path, count = export_file(
            bench, None if run_id in (None, ALL_RUNS) else run_id, fmt_name, (who or "").strip(), exports.new()
        )
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
    return ExportTab(runs, [run, status], exports)
