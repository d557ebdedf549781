"""What the engine reports while it works. The CLI passes a store-backed run handle; tests pass none.

The engine never imports the db package: anything with the `Tracker` methods will do (glore_db's
RunHandle has them all, and its store keeps the run's heartbeat from a background thread while the
run is open, so a stage makes no calls of its own to show it is alive, however long it computes).
A stage that has sub-stages opens them with `child`, so a recipe's stages become child runs of its
run. The helpers below are what every stage shares: progress bars, the
cost of a generation job, numeric metrics from a dict.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class Tracker(Protocol):
    def log_metric(self, key: str, value: float, step: int | None = None) -> None: ...

    def log_artifact(self, kind: str, path: str, meta: dict | None = None) -> Any: ...

    def set_summary(self, summary: dict) -> None: ...

    def log_cases(self, cases: list[dict]) -> Any: ...  # EvalCase.to_json() of each evaluated problem

    def child(
        self, kind: str, name: str | None = None, config: Mapping[str, Any] | None = None, output_dir: str | None = None
    ) -> AbstractContextManager[Tracker]: ...


class NullTracker:
    """Keeps everything in memory (handy in tests and notebooks); children are NullTrackers too."""

    def __init__(self):
        self.metrics: list[tuple[str, float, int | None]] = []
        self.artifacts: list[tuple[str, str, dict | None]] = []
        self.summary: dict = {}
        self.cases: list[dict] = []
        self.children: list[tuple[str, NullTracker]] = []  # (kind, tracker) in the order they opened

    def log_metric(self, key, value, step=None):
        self.metrics.append((key, float(value), step))

    def log_artifact(self, kind, path, meta=None):
        self.artifacts.append((kind, str(path), meta))

    def set_summary(self, summary):
        self.summary.update(summary)

    def log_cases(self, cases):
        self.cases.extend(cases)

    @contextmanager
    def child(self, kind, name=None, config=None, output_dir=None) -> Iterator[NullTracker]:
        tracker = self.new_child(kind)
        self.children.append((kind, tracker))
        yield tracker

    def new_child(self, kind: str) -> NullTracker:
        """The tracker a child stage logs into (subclasses override it to inject failures)."""
        return NullTracker()

    def last(self, key: str) -> float | None:
        values = [v for k, v, _ in self.metrics if k == key]
        return values[-1] if values else None


def ensure(tracker: Tracker | None) -> Tracker:
    return tracker if tracker is not None else NullTracker()


def run_id_of(tracker: Tracker | None) -> int | None:
    """The store's run id behind a tracker (cards name the run that trained them), if it has one."""
    return getattr(tracker, "id", None)


def log_numbers(tracker: Tracker, metrics: Mapping[str, Any]) -> None:
    """Log the numeric entries of a dict (booleans and None are left out)."""
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            tracker.log_metric(key, value)


def log_generation_cost(tracker: Tracker, prefix: str, stats, seconds: float) -> dict:
    """Samples, generated tokens and their rates of a generation job (backend.stats), logged and returned."""
    cost = {
        f"{prefix}/samples": stats.samples,
        f"{prefix}/generated_tokens": stats.generated_tokens,
        f"{prefix}/tokens_per_s": stats.generated_tokens / max(seconds, 1e-9),
        f"{prefix}/samples_per_s": stats.samples / max(seconds, 1e-9),
        f"{prefix}/wall_s": seconds,
    }
    log_numbers(tracker, cost)
    return cost


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm bar, or a silent one (tests, notebooks, `progress=False`, ranks other than the main one)."""
    from tqdm.auto import tqdm

    from .distributed import is_main

    return tqdm(total=total, desc=desc, disable=not enabled or not is_main(), dynamic_ncols=True)
