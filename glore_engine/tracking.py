"""What the engine reports while it works. The CLI passes a store-backed tracker; tests pass none.

The engine never imports the db package: anything with these methods will do.
"""

from __future__ import annotations

from typing import Protocol


class Tracker(Protocol):
    def log_metric(self, key: str, value: float, step: int | None = None) -> None: ...

    def log_artifact(self, kind: str, path: str, meta: dict | None = None) -> None: ...

    def set_summary(self, summary: dict) -> None: ...

    # optional: def log_cases(self, cases: list[dict]) -> None  (evaluation cases, see pipeline.to_case)


class NullTracker:
    """Keeps metrics in memory (handy in tests and notebooks)."""

    def __init__(self):
        self.metrics: list[tuple[str, float, int | None]] = []
        self.artifacts: list[tuple[str, str, dict | None]] = []
        self.summary: dict = {}
        self.cases: list[dict] = []

    def log_metric(self, key, value, step=None):
        self.metrics.append((key, float(value), step))

    def log_artifact(self, kind, path, meta=None):
        self.artifacts.append((kind, str(path), meta))

    def set_summary(self, summary):
        self.summary.update(summary)

    def log_cases(self, cases):
        self.cases.extend(cases)

    def last(self, key: str) -> float | None:
        values = [v for k, v, _ in self.metrics if k == key]
        return values[-1] if values else None


def ensure(tracker: Tracker | None) -> Tracker:
    return tracker if tracker is not None else NullTracker()
