"""Helpers shared by the glore-train tests (a module of its own: `conftest` is not importable by name)."""

from __future__ import annotations


class Cli:
    """`glore-train --db <url> ...` in-process, with GLORE_HOME in a temporary folder."""

    def __init__(self, root, monkeypatch):
        from click.testing import CliRunner

        self.root = root
        self.home = root / "home"
        self.url = f"sqlite:///{root / 'glore.db'}"
        monkeypatch.setenv("GLORE_HOME", str(self.home))
        monkeypatch.delenv("GLORE_DB", raising=False)
        monkeypatch.setenv("COLUMNS", "250")  # rich tables: no truncated cells
        self.runner = CliRunner()

    def __call__(self, *args, ok: bool = True, code: int | None = None):
        from train_cli.main import cli

        result = self.runner.invoke(cli, ["--db", self.url, *map(str, args)])
        shown = f"exit {result.exit_code}\n{result.output}\n{getattr(result, 'stderr', '')}"
        if code is not None:
            assert result.exit_code == code, shown
        elif ok:
            assert result.exit_code == 0, shown + (repr(result.exception) if result.exception else "")
        return result

    def store(self):
        from glore_db import Store

        return Store(self.url)

    def runs(self, kind=None):
        with self.store() as store:
            return store.list_runs(kind=kind)

    def last(self, kind):
        runs = self.runs(kind)
        assert runs, f"no {kind} run"
        return runs[0]
