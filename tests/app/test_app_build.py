"""The Blocks as built (no server): tabs, the no-models message, the model queue, error guarding."""

from __future__ import annotations

import pytest

from glore_app import state
from glore_app.main import create_app


@pytest.fixture(scope="module")
def demo_without_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nomodels")
    demo = create_app(folder / "missing-family", f"sqlite:///{folder / 'glore.db'}")
    yield demo
    demo.workbench.close()


def markdown_texts(demo) -> list[str]:
    import gradio as gr

    return [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and isinstance(b.value, str)]


def test_tabs_and_no_models_message(demo_without_models):
    import gradio as gr

    tabs = [b.label for b in demo_without_models.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Inspect", "Results", "Annotate", "Import", "Runs", "Export"]
    text = " ".join(markdown_texts(demo_without_models))
    assert "glore-train demo" in text and "--models FOLDER" in text


def test_neither_models_flag_nor_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(state, "bundled_models", lambda: tmp_path / "bundled")
    demo = create_app(None, f"sqlite:///{tmp_path / 'g.db'}")
    assert demo.workbench.models_folder is None
    assert any("glore-train demo" in t for t in markdown_texts(demo))


def test_model_work_shares_one_worker(demo_without_models):
    fns = {fn.api_name: fn for fn in demo_without_models.fns.values()}
    inspect = fns["inspect"]
    # the queue lets a batch's worth through; the one model worker behind it batches them
    assert inspect.concurrency_id == "model"
    assert inspect.concurrency_limit == demo_without_models.workbench.max_batch > 1
    model_fns = [fn for fn in demo_without_models.fns.values() if fn.concurrency_id == "model"]
    assert len(model_fns) == 2  # button click and Enter in the problem box
    assert fns["rethreshold"].concurrency_id != "model"  # re-rendering never waits for the models


def test_guarded_turns_store_errors_into_a_status_line():
    from glore_app.ui import guarded
    from glore_db import StoreError

    @guarded(3, status_at=2)
    def locked():
        raise StoreError("run store x is locked by another process")

    _first, _second, status = locked()
    assert "locked" in status and status.startswith("⚠️")


def test_header_names_the_trained_task_with_an_example(tiny_family):
    import gradio as gr

    from glore_app.main import create_app

    demo = create_app(tiny_family, "sqlite://")
    try:
        text = " ".join(markdown_texts(demo))
        examples = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "app-example-problem"]
        assert "Trained task:" in text and "synthetic GSM8K-format" in text
        assert isinstance(examples[0], gr.Textbox) and "?" in examples[0].value
    finally:
        demo.workbench.close()


def test_the_app_freezes_what_it_loaded_out_of_the_collector_s_scans():
    """A full collection over the loaded models and gradio's components held the GIL for 0.2-0.3 s
    in the middle of a burst; after loading, those objects are frozen (gc.freeze) and never scanned."""
    import gc

    from glore_app.main import load_then_freeze

    class Bench:
        loaded = False

        def preload(self):
            self.loaded = [object() for _ in range(1000)]  # stand-ins for what loading keeps alive

    bench = Bench()
    before = gc.get_freeze_count()
    try:
        load_then_freeze(bench)
        assert bench.loaded and gc.get_freeze_count() >= before + 1000
    finally:
        gc.unfreeze()
