"""Import tab: a drafts file from any model (JSONL or CSV) becomes a case set for Results and Annotate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .render import plain_text
from .state import Workbench
from .ui import guarded, markdown, run_choices

HELP = (
    "Upload drafts written by any model: a **JSONL** or **CSV** file, one row per draft with `question` and "
    "`draft` (one reasoning step per line), and optionally `gold` (the answer), `model` and `id`. GSM8K's own "
    "rows (`question`, `answer`) work too. Drafts are split into steps, graded when the gold is known and, if "
    "you tick the box, scored by the loaded ORM and SORM; bad rows are listed by line and left out. The same "
    "from a terminal: `glore-train import FILE [--family FOLDER]`."
)


@dataclass
class ImportTab:
    upload: gr.File
    status: gr.Markdown


def report_text(run_id: int, report) -> str:
    report.path = Path(report.path).name  # the upload's temporary folder means nothing to the user
    lines = [plain_text(line) for line in report.lines()]
    lines.append(f"Case set **#{run_id}**: open it in the Results and Annotate tabs (selected there now).")
    return "<br>".join(lines)


def build(bench: Workbench, run_dropdowns: list) -> ImportTab:
    gr.Markdown(HELP)
    with gr.Row():
        upload = gr.File(
            label="Drafts file (.jsonl or .csv)",
            file_types=[".jsonl", ".csv", ".json"],
            type="filepath",
            elem_id="import-file",
            scale=3,
        )
        with gr.Column(scale=2):
            name = gr.Textbox(label="Name of the case set (default: the file's name)", elem_id="import-name")
            score = gr.Checkbox(
                value=False,
                label="Score with the loaded ORM and SORM",
                interactive=bench.models_message is None,
                elem_id="import-score",
            )
            go = gr.Button("Import", variant="primary", elem_id="import-run")
    status = markdown(elem_id="import-status")

    n_out = 1 + len(run_dropdowns)

    @guarded(n_out)
    def run_import(path, run_name, with_scores, progress=gr.Progress()):  # noqa: B008 - gradio injects it
        if not path:
            raise ValueError("choose a drafts file first")
        progress(0.0, desc="reading and grading")

        def on_progress(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"scoring drafts {done}/{total}")

        run_id, report = bench.import_drafts(path, run_name, bool(with_scores), on_progress)
        choices = run_choices(bench.store())
        return (report_text(run_id, report), *(gr.update(choices=choices, value=run_id) for _ in run_dropdowns))

    go.click(
        run_import,
        [upload, name, score],
        [status, *run_dropdowns],
        api_name="import_drafts",
        concurrency_id="import",  # scoring takes the Workbench's model lock; unscored imports wait for no model
        concurrency_limit=1,
    )
    return ImportTab(upload, status)
