"""The app's non-UI logic: models loaded once, the pipeline behind one lock, the store, datasets.

Nothing here imports gradio, so every behaviour of the tabs can be tested as plain Python.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glore_db.annotations import editable_fields as annotation_fields  # noqa: F401  (used by the tabs)
from glore_engine.errors import CheckpointError, DataError
from glore_engine.family import MEMBER_FOLDERS, missing_members
from glore_engine.pipeline import CRITIQUE_THRESHOLD
from glore_engine.runtime import CpuWatch, adapt_threads, still_busy

from .batching import MAX_BATCH, BatchWorker, InspectRequest

log = logging.getLogger("glore.app")

SYNTHETIC_TEST_N = 50
DATA_LIMIT = 500
GET_MODELS = (
    "No models to run. Train the demo family with `glore-train demo` (it writes the bundled "
    "models to `glore_engine/bundled/`), or start the app with `glore-app --models FOLDER`, a "
    "folder holding " + ", ".join(f"`{n}/`" for n in MEMBER_FOLDERS) + ". The Results, Annotate, Runs "
    "and Export tabs work without models."
)


def bundled_models() -> Path:
    """glore_engine/bundled/: where `glore-train demo --bundle-dir` puts the demo family."""
    from glore_engine.bundled import BUNDLE_DIR

    return BUNDLE_DIR


def resolve_models(folder: str | Path | None) -> Path | None:
    """The family to load: the given folder, else the bundle when complete, else None."""
    if folder:
        return Path(folder).expanduser()
    bundle = bundled_models()
    return bundle if bundle.is_dir() and not missing_members(bundle) else None


@dataclass
class Workbench:
    """Shared by every browser session: one model family, one store, one problem list."""

    models_folder: Path | None = None
    db_url: str | None = None
    data: str | None = None
    max_new_tokens: int = 256
    threshold: float = CRITIQUE_THRESHOLD
    busy_timeout_s: float = 5.0  # a locked store answers within seconds, not the CLI's 30
    max_batch: int = MAX_BATCH  # Inspect requests served together by the model worker
    _pipeline: Any = field(default=None, repr=False)
    _worker: BatchWorker | None = field(default=None, repr=False)
    _store: Any = field(default=None, repr=False)
    _problems: list | None = field(default=None, repr=False)
    _model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _store_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _worker_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # What the other processes used during the last batch: the cores to leave them in the next one.
    # (Not between batches: there the burst's own HTTP clients, often on this machine, are busiest.)
    _cpu: CpuWatch = field(default_factory=CpuWatch, repr=False)
    _others_busy: float | None = field(default=None, repr=False)

    # ---- models -------------------------------------------------------------------------------
    @property
    def models_message(self) -> str | None:
        """Why Inspect cannot run, or None when a family is there to load."""
        if self.models_folder is None:
            return GET_MODELS
        if not self.models_folder.is_dir():
            return f"Models folder `{self.models_folder}` does not exist. " + GET_MODELS
        missing = missing_members(self.models_folder)
        if missing:
            return f"Models folder `{self.models_folder}` lacks {', '.join(missing)}. " + GET_MODELS
        return None

    def task(self) -> dict | None:
        """What the family's models were trained on, with an example problem (None without models)."""
        if self.models_message is not None or self.models_folder is None:
            return None
        from glore_engine.tasks.model_task import task_card

        return task_card(self.models_folder / "student")

    @property
    def models_loaded(self) -> bool:
        return self._pipeline is not None

    def pipeline(self):
        """The GlorePipeline, loading the family on first use (callers hold the model lock)."""
        if self._pipeline is None:
            message = self.models_message
            if message:
                raise CheckpointError(message)
            from glore_engine.family import GloreModels
            from glore_engine.pipeline import GlorePipeline

            models = GloreModels.from_folder(self.models_folder)
            self._pipeline = GlorePipeline(models, threshold=self.threshold, max_new_tokens=self.max_new_tokens)
        return self._pipeline

    def preload(self) -> None:
        """Load the models now (e.g. in a background thread at start); errors wait for the first run."""
        try:
            with self._model_lock:
                self.pipeline()
        except Exception:
            pass

    def inspect(
        self,
        question: str,
        draft: str | None = None,
        gold: str | None = None,
        threshold: float = CRITIQUE_THRESHOLD,
        on_stage: Callable[[str], None] | None = None,
    ):
        """One question through draft -> critique -> refinements -> rerank.

        The call joins the model worker's queue and runs in one pipeline batch with every other request
        waiting there (app/batching.py); it returns this question's own result or raises its own error.
        draft None: the student writes it; a draft without steps is refused here.
        """
        from glore_engine.pipeline import check_question
        from glore_engine.tasks.steps import split_steps

        question = check_question(question)  # before loading anything: empty and huge problems fail fast
        if draft is not None and not split_steps(draft):
            raise DataError("the draft has no steps: write one reasoning step per line")
        gold = (gold or "").strip() or None
        request = InspectRequest(question, draft, gold, float(threshold), on_stage)
        return self.worker().submit(request).result()

    def worker(self) -> BatchWorker:
        """The model worker, started on first use."""
        with self._worker_lock:
            if self._worker is None:
                self._worker = BatchWorker(self.run_batch, self.max_batch)
            return self._worker

    def run_batch(self, requests: list[InspectRequest]) -> list:
        """The worker's call: requests sharing a threshold through one pipeline batch."""
        with self._model_lock:
            if not self.models_loaded:
                for request in requests:
                    request.report("loading models")
            pipeline = self.pipeline()
            if self._others_busy is None:  # no batch measured yet: since the app started
                self._others_busy = self._cpu.others_busy()
            adapt_threads(still_busy(self._others_busy))  # the idle cores now, not at start (worker thread)
            self._cpu.start()
            try:
                with _stage_reports(pipeline.models, lambda text: [r.report(text) for r in requests]):
                    results = pipeline.run_batch(
                        [r.question for r in requests],
                        [r.gold for r in requests],
                        drafts=[r.draft for r in requests],
                        threshold=requests[0].threshold,
                        warn=True,
                    )
            finally:  # a batch too short to tell keeps the previous figure
                others = self._cpu.others_busy()
                self._others_busy = self._others_busy if others is None else others
        for result in results:
            result.timings["batch"] = len(requests)  # the timings are the whole batch's
        if results:
            t = results[0].timings
            stages = ", ".join(f"{k[:-2]} {v:.2f}" for k, v in t.items() if k.endswith("_s") and k != "total_s")
            log.info("model worker: a batch of %d ran in %.2f s (%s)", len(requests), t.get("total_s", 0.0), stages)
        return results

    # ---- store --------------------------------------------------------------------------------
    def store(self):
        """The run store, opened on first use; a failure (StoreError) is retried on the next call."""
        with self._store_lock:
            if self._store is None:
                from glore_db import Store

                self._store = Store(self.db_url, busy_timeout_s=self.busy_timeout_s)
            return self._store

    def store_name(self) -> str:
        """Which store the app opens (its url, password hidden), known before it is opened."""
        from glore_db import display_url, resolve_url

        return display_url(resolve_url(self.db_url))

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._store is not None:
            self._store.close()

    def import_drafts(
        self,
        path: str | Path,
        name: str | None = None,
        score: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ):
        """A drafts file (JSONL or CSV) stored as a case set; scored by the loaded family when asked.

        Returns (run id, glore_engine.drafts.ImportReport). Scoring holds the model lock: one model worker.
        """
        from glore_engine.drafts import file_kind, import_drafts

        path = Path(path)
        file_kind(path)
        store = self.store()
        config = {"file": path.name, "scored_by": str(self.models_folder) if score else None}
        config["threshold"] = self.threshold
        run_name = (name or "").strip() or path.name
        if not score:
            with store.run("import", name=run_name, config=config) as run:
                return run.id, import_drafts(path, run, None, self.threshold, progress)
        with self._model_lock:
            models = self.pipeline().models
            with store.run("import", name=run_name, config=config) as run:
                report = import_drafts(path, run, (models.orm, models.sorm), self.threshold, progress)
        return run.id, report

    def disagreeing_cases(self, run_id: int) -> list[int]:
        """Cases whose stored SORM first error is not the human's: the rule eval-rm --run scores with."""
        from glore_engine.evaluation.processbench import case_scores, disagreeing_cases

        store = self.store()
        return disagreeing_cases({**ac.record(), **case_scores(ac.case.data)} for ac in store.annotated_cases(run_id))

    def update_annotation(self, case_id: int, annotator: str, change: Callable[[dict], dict]):
        """Read-modify-write of one annotation in one store transaction, so two tabs (or two app
        processes) never overwrite each other's step ratings; `change` maps current fields to new ones."""
        return self.store().update_annotation(case_id, annotator, change)

    # ---- datasets -----------------------------------------------------------------------------
    def problems(self) -> list:
        """Problems to pick from: --data (GSM8K JSONL) or the synthetic test split."""
        if self._problems is None:
            from glore_engine.tasks import generate, load_jsonl

            if self.data:
                self._problems = load_jsonl(self.data, limit=DATA_LIMIT)
            else:  # the synthetic task at the difficulty the family's student trained on
                from glore_engine.tasks.model_task import task_config_from_card

                student = self.models_folder / "student" if self.models_folder else None
                self._problems = generate("test", SYNTHETIC_TEST_N, config=task_config_from_card(student))
        return self._problems

    def problem(self, index: int):
        problems = self.problems()
        if not 0 <= index < len(problems):
            raise DataError(f"no problem {index} in the list of {len(problems)}")
        return problems[index]


class _stage_reports:
    """Report each finished generation stage through on_stage by hooking the backends' progress."""

    STAGES = (
        ("student", "draft written; scoring steps"),
        ("global_refiner", "global refinement written"),
        ("local_refiner", "local refinement written; reranking"),
    )

    def __init__(self, models, on_stage):
        self.models, self.on_stage, self.saved = models, on_stage, {}

    def __enter__(self):
        if self.on_stage is None:
            return self
        for attr, text in self.STAGES:
            backend = getattr(self.models, attr, None)
            if backend is not None and hasattr(backend, "progress"):
                self.saved[attr] = backend.progress
                backend.progress = lambda done, total, text=text: self.on_stage(text)
        return self

    def __exit__(self, *exc):
        for attr, previous in self.saved.items():
            getattr(self.models, attr).progress = previous
        return False
