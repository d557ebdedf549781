"""The GLoRe run store: runs, metrics, artifacts, eval cases and human annotations.

Never imports torch, transformers, gradio or glore_engine: the engine and the UI depend on it,
not the other way round. Annotated cases leave the store as plain records
(AnnotatedCase.record()); the interchange formats live in glore_engine.exports.
"""

from .annotations import LIMITS as ANNOTATION_LIMITS
from .engine import as_url, default_home, display_url, resolve_url, user_home
from .errors import StoreError
from .filters import FILTERS as CASE_FILTERS
from .lifecycle import RunHandle
from .models import VERDICTS, RunStatus
from .records import AnnotatedCase, AnnotationRow, ArtifactInfo, CaseRow, MetricRow, RunInfo
from .store import Store

__all__ = [
    "ANNOTATION_LIMITS",
    "CASE_FILTERS",
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
    "as_url",
    "default_home",
    "display_url",
    "resolve_url",
    "user_home",
]
