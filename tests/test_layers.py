"""Dependencies point one way: the engine imports no UI, CLI or store code; the store imports no ML code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "glore_engine": {"gradio", "click", "glore_db", "glore_app", "train_cli", "sqlalchemy"},
    "db": {"torch", "transformers", "gradio", "click", "glore_engine", "glore_app", "train_cli"},
}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, wherever it appears (also inside functions)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package):
    bad = {}
    for path in sorted((REPO / package).rglob("*.py")):
        hits = imported_roots(path) & FORBIDDEN[package]
        if hits:
            bad[str(path.relative_to(REPO))] = sorted(hits)
    assert not bad, f"{package} must not import {sorted(FORBIDDEN[package])}: {bad}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import gradio as gr\n    from click import echo\n")
    assert imported_roots(module) == {"gradio", "click"}
