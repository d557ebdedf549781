"""Content hashes of artifacts: one file, or a whole folder (a Hugging Face checkpoint)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def _feed(digest, path: Path) -> int:
    """Stream a file into the digest; return its size."""
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size


def folder_files(folder: Path) -> list[Path]:
    """Every file under a folder, sorted by relative POSIX path so the hash is platform-stable."""
    return sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())


def content_hash(path: str | Path) -> tuple[str, int]:
    """(sha256 hex, total bytes) of a file, or of a folder's files in sorted order.

    For a folder each file contributes its relative POSIX path, a NUL byte, then its bytes,
    so renaming a file changes the hash even when the concatenated contents do not.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        size = _feed(digest, path)
        return digest.hexdigest(), size
    if not path.is_dir():
        raise FileNotFoundError(f"artifact path {path} does not exist")
    total = 0
    for file in folder_files(path):
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        total += _feed(digest, file)
    return digest.hexdigest(), total
