"""What commands print: undefined metrics as "-", the demo's closing lines, `export` of nothing."""

from __future__ import annotations

import math

from train_cli.common import show_number
from train_cli.demo import command_line, where_it_went


def test_undefined_metrics_print_as_a_dash_not_zero():
    assert show_number(None) == "-" and show_number(math.nan) == "-"
    assert show_number(0.0) == "0.0000" and show_number(3) == "3"


def test_the_demo_ends_with_the_family_and_the_exact_app_command(tmp_path):
    outputs = {"family": {"folder": str(tmp_path / "family" / "models")}, "eval": {"run_id": 16}}
    text = where_it_went("tiny", outputs, None, f"sqlite:///{tmp_path}/glore.db")
    assert f"The family is in {tmp_path}/family/models; its evaluated cases are run 16." in text
    assert f"glore-app --models {tmp_path}/family/models --db sqlite:///{tmp_path}/glore.db" in text
    assert "smoke test" in text
    bundled = where_it_went("demo", outputs, "glore_engine/bundled", "sqlite:///x.db")
    assert "--models /" in bundled and "smoke test" not in bundled  # the bundle, made absolute


def test_the_bundle_card_records_the_command_as_typed():
    argv = ["/venv/bin/glore-train", "--db", "/w/demo.db", "demo", "--out", "/w/my demo", "--bundle-dir", "b"]
    assert command_line(argv) == "glore-train --db /w/demo.db demo --out '/w/my demo' --bundle-dir b"
    assert command_line(["glore-train", "demo"]) == "glore-train demo"


def _case(index: int) -> dict:
    return {
        "index": index,
        "problem_id": f"p{index}",
        "question": f"Q{index}?",
        "gold": "2",
        "draft": "a = 1\n#### 2",
        "data": {"steps": ["a = 1", "#### 2"], "first_error": -1},
        "draft_correct": True,
    }


def test_export_of_a_run_with_no_annotations_says_so_and_writes_nothing(cli, tmp_path):
    with cli.store() as store:
        with store.run("eval") as run:
            store.add_cases(run.id, [_case(0), _case(1)])
        with store.run("sft") as other:
            pass
    out = tmp_path / "a.csv"
    result = cli("export", "--run", run.id, "--format", "csv", "--out", out, code=1)
    assert f"run {run.id} has 2 cases, none annotated: nothing to export" in result.output
    assert "Annotate tab (glore-app --db " in result.output
    assert not out.exists() and not cli.runs("export")
    by = cli("export", "--run", run.id, "--format", "csv", "--out", out, "--annotator", "ana", code=1).output
    assert "none annotated by ana" in by
    no_cases = cli("export", "--run", other.id, "--format", "csv", "--out", out, code=1).output
    assert f"run {other.id} (sft) has no cases" in no_cases


def test_gitignore_covers_the_store_and_what_readmes_examples_write():
    import re
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    readme = (root / "README.md").read_text()
    written = {m for m in re.findall(r"--out (\S+)", readme) if not m.startswith(("/", "$", "DIR", "FOLDER"))}
    paths = ["glore-runs/glore.db", *(p + ("/x" if "." not in Path(p).name else "") for p in written)]
    out = subprocess.run(
        ["git", "check-ignore", "--stdin"],
        check=False,
        input="\n".join(paths),
        cwd=root,
        text=True,
        capture_output=True,
    )
    assert set(out.stdout.split()) == set(paths), f"not ignored: {set(paths) - set(out.stdout.split())}"
