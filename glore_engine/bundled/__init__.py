"""The embedded demo family: small models trained by `glore-train demo` on the synthetic task.

Shipped inside the package (fp16 safetensors) so the pipeline and glore-app work on a laptop CPU
with no download. BUNDLE.md beside them says which command, seed and commit produced them and
their measured tables.
"""

from __future__ import annotations

from pathlib import Path

from ..family import missing_members, require_family

BUNDLE_DIR = Path(__file__).resolve().parent


def has_bundle(folder: str | Path = BUNDLE_DIR) -> bool:
    return not missing_members(folder)


def require_bundle(folder: str | Path = BUNDLE_DIR) -> Path:
    return require_family(folder)
