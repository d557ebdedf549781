"""The embedded demo family: small models trained by `glore-train demo` on the synthetic task.

Shipped inside the package (fp16 safetensors) so the pipeline and glore-app work on a laptop CPU
with no download. BUNDLE.md beside them says which command, seed and commit produced them and
their measured tables.
"""
from __future__ import annotations

from pathlib import Path

BUNDLE_DIR = Path(__file__).resolve().parent
MEMBERS = ("student", "orm", "sorm", "refiner-global", "refiner-local")


def has_bundle(folder: str | Path = BUNDLE_DIR) -> bool:
    folder = Path(folder)
    return all((folder / m / "config.json").is_file() for m in MEMBERS)


def require_bundle(folder: str | Path = BUNDLE_DIR) -> Path:
    from ..errors import CheckpointError

    if not has_bundle(folder):
        missing = [m for m in MEMBERS if not (Path(folder) / m / "config.json").is_file()]
        raise CheckpointError(f"no model family in {folder} (missing: {', '.join(missing)}); "
                              "run `glore-train demo` to train one, or pass a family folder")
    return Path(folder)
