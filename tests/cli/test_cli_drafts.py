"""`glore-train import` and `eval-rm --processbench/--run`: drafts in, human first errors back out as a benchmark."""

from __future__ import annotations

import json

GOOD = [
    {
        "id": "a",
        "question": "Ann has 3 apples and buys 4 more. How many?",
        "draft": "3+4=7 apples\n#### 7",
        "gold": "7",
    },
    {"id": "b", "question": "Tom has 5 pens and loses 2. How many?", "draft": "5-2=4 pens\n#### 4", "gold": "3"},
    {"id": "c", "question": "Sam reads 2 pages a day for 3 days. Pages?", "draft": "2*3=6\nSo 6 pages.\n#### 6"},
]


def drafts_file(tmp_path, extra=()):
    path = tmp_path / "drafts.jsonl"
    lines = [json.dumps(r) for r in GOOD] + list(extra)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_unscored_reports_bad_lines(cli, tmp_path):
    path = drafts_file(tmp_path, [json.dumps({"question": "Q 1?", "draft": ""}), "{oops"])
    out = cli("import", path).output
    assert "imported 3 of 5 rows" in out and "line 4: empty 'draft'" in out and "line 5: not valid JSON" in out
    run = cli.last("import")
    with cli.store() as store:
        cases = store.cases(run.id)
    assert [c.problem_id for c in cases] == ["a", "b", "c"]
    assert [c.draft_correct for c in cases] == [True, False, None]
    assert run.summary["import"]["bad_rows"] == 2


def test_import_refuses_bad_input_in_one_line(cli, tmp_path):
    result = cli("import", tmp_path / "missing.jsonl", ok=False)
    assert result.exit_code == 2 and "no such file" in result.output
    text = tmp_path / "d.txt"
    text.write_text("x")
    result = cli("import", text, ok=False)
    assert result.exit_code == 1 and "expected a .jsonl or .csv" in result.output
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("{}\n")
    result = cli("import", only_bad, ok=False)
    assert result.exit_code == 1 and "no good rows" in result.output
    result = cli("import", drafts_file(tmp_path), "--orm", "x", ok=False)
    assert result.exit_code == 1 and "both an ORM and a SORM" in result.output


def test_import_scored_annotate_export_and_eval_rm(cli, tmp_path, tiny_family):
    cli("import", drafts_file(tmp_path), "--family", tiny_family)
    run = cli.last("import")
    with cli.store() as store:
        cases = store.cases(run.id)
        assert all(len(c.data["draft"]["sorm_steps"]) == len(c.steps) for c in cases)
        store.save_annotation(cases[0].id, "ann", first_error_step=-1, verdict="solution")
        store.save_annotation(cases[1].id, "ann", first_error_step=0, verdict="found_error")
    labels = tmp_path / "labels.jsonl"
    cli("export", "--run", run.id, "--format", "processbench", "--out", labels)
    rms = ["--rm", f"SORM={tiny_family / 'sorm'}", "--rm", f"ORM={tiny_family / 'orm'}"]
    out = cli("eval-rm", "--processbench", labels, *rms).output
    assert "ProcessBench on 2 labelled drafts (1 with an error" in out and "| SORM | 2 | 1 |" in out
    out = cli("eval-rm", "--run", run.id, *rms).output
    assert "| stored SORM scores | 2 | 1 |" in out
    last = cli.last("eval-rm")
    with cli.store() as store:
        keys = {m.key for m in store.metrics(last.id)}
    assert {"SORM/processbench/f1", "SORM/processbench/agreement"} <= keys


def test_eval_rm_processbench_usage(cli, tmp_path):
    result = cli("eval-rm", "--processbench", tmp_path / "x.jsonl", "--student", "s", ok=False)
    assert result.exit_code == 2 and "drop --labels and --student" in result.output
    cli("import", drafts_file(tmp_path))
    result = cli("eval-rm", "--run", cli.last("import").id, "--rm", "S=x", ok=False)
    assert result.exit_code == 2 and "no human first-error labels yet" in result.output
    result = cli("eval-rm", ok=False)
    assert result.exit_code == 2 and "--processbench FILE / --run ID" in result.output


def test_imported_drafts_export_in_every_annotation_format(cli, tmp_path):
    """Labels marked on imported drafts come out as TRL, PRM800K and CSV too, with 0-based first errors."""
    import csv

    cli("import", drafts_file(tmp_path))
    run = cli.last("import")
    with cli.store() as store:
        cases = store.cases(run.id)
        store.save_annotation(cases[1].id, "ann", first_error_step=0, verdict="found_error")
    files = {fmt: tmp_path / f"out.{fmt}" for fmt in ("trl", "prm800k", "csv")}
    for fmt, path in files.items():
        cli("export", "--run", run.id, "--format", fmt, "--out", path)
    trl = [json.loads(line) for line in files["trl"].read_text().splitlines()]
    assert len(trl) == 1 and trl[0]["labels"] == [False]  # the one step of draft b, marked wrong
    assert "Tom has 5 pens" in json.dumps(trl[0])
    prm = [json.loads(line) for line in files["prm800k"].read_text().splitlines()]
    assert len(prm) == 1 and "Tom has 5 pens" in json.dumps(prm[0])
    rows = list(csv.DictReader(files["csv"].open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["first_error_index"] == "0"
