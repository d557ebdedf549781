"""The repository explains itself: no text cites the design documents that live outside it, and
every docs/ page a comment points to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("glore_engine", "db", "app", "train_cli", "bench", "tests", "docs", "configs")
# Spelled in pieces so that this file does not cite them itself.
OUTSIDE_DOCS = ("SP" + "EC", "DEMO-" + "NOTES", "DES" + "IGN")
SUFFIXES = {".py", ".md", ".yaml", ".toml", ".txt"}


def repo_texts():
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder in FOLDERS:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    for path in files:
        yield path, path.read_text(encoding="utf-8")


def test_no_text_cites_the_documents_outside_the_repository():
    cited = re.compile(r"\b(" + "|".join(OUTSIDE_DOCS) + r")\b(?!_)")
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p, text in repo_texts() for m in cited.finditer(text)]
    assert hits == []


def test_every_docs_page_pointed_to_exists():
    pointed = {m for _, text in repo_texts() for m in re.findall(r"docs/[\w.-]+\.(?:md|png)", text)}
    assert pointed and all((ROOT / page).is_file() for page in pointed), sorted(pointed)
