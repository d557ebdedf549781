"""The GLoRe run store: runs, metrics, artifacts, eval cases, human annotations and their exports.

Never imports torch, transformers, gradio or glore_engine: the engine and the UI depend on it,
not the other way round.
"""

from .engine import default_home, resolve_url
from .errors import StoreError
from .export import FORMATS as EXPORT_FORMATS
from .filters import FILTERS as CASE_FILTERS
from .lifecycle import RunHandle
from .models import VERDICTS, RunStatus
from .records import AnnotatedCase, AnnotationRow, ArtifactInfo, CaseRow, MetricRow, RunInfo
from .store import Store

__all__ = [
    "CASE_FILTERS",
    "EXPORT_FORMATS",
    "VERDICTS",
    "AnnotatedCase",
    "AnnotationRow",
    "ArtifactInfo",
    "CaseRow",
    "MetricRow",
    "RunHandle",
    "RunInfo",
    "RunStatus",
    "Store",
    "StoreError",
    "default_home",
    "resolve_url",
]
