"""The launched app through gradio_client: inspect, results, annotate, runs, export, bad input."""

from __future__ import annotations

import csv
import json
import re
import threading
from pathlib import Path

import pytest

from glore_db import ANNOTATION_LIMITS, Store
from glore_engine.exports import SCHEMA_VERSION
from glore_engine.pipeline import CRITIQUE_THRESHOLD

pytestmark = pytest.mark.e2e


def step_categories(table_html: str) -> list[str]:
    import re

    return re.findall(r'<tr class="glore-step glore-\w+" data-category="(\w+)"', table_html)


def counting_runs(demo, monkeypatch) -> list:
    """Count pipeline batches of the app's (already loaded) pipeline (the model worker runs batches)."""
    with demo.workbench._model_lock:
        pipeline = demo.workbench.pipeline()
    calls = []
    original = pipeline.run_batch
    monkeypatch.setattr(pipeline, "run_batch", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_inspect_returns_rows_and_three_refinements(app_server, client, monkeypatch, sample):
    calls = counting_runs(app_server["demo"], monkeypatch)
    status, _question, table, verdict, glob, local, rerank = client.predict(
        sample["question"], "10", sample["draft"], 0.99, api_name="/inspect"
    )
    assert status.startswith("Done") and len(calls) == 1
    assert step_categories(table) == ["first_error", "after_error", "after_error"]  # threshold 0.99: step 1
    assert "When:" in verdict and "first error at **step 1**" in verdict
    assert 'data-kind="global"' in glob and 'data-kind="local"' in local and 'data-kind="rerank"' in rerank
    assert "ORM score" in glob and "ORM score" in local and "ORM picks" in rerank
    assert "gold 10" in glob  # correctness shown against the gold answer

    # Re-thresholding re-renders the stored result: no model runs.
    _question2, table2, verdict2, *_ = client.predict(0.0, api_name="/rethreshold")
    assert "first_error" not in step_categories(table2) and len(calls) == 1
    assert "Run again" in verdict2  # the local refinement was made from another step


def test_student_draft_when_none_is_given(client, sample):
    status, *_ = client.predict(sample["question"], "", "", 0.5, api_name="/inspect")
    assert status.startswith("Done")


@pytest.mark.parametrize(
    "question, draft, message",
    [
        ("", "", "empty"),
        ("9" * 50_000, "", "limit"),
        (None, "   \n  ", "no steps"),
        ("Tell me a poem about the sea.", "", "no numbers"),
    ],
)
def test_bad_input_gives_a_message_and_the_app_keeps_running(client, sample, question, draft, message):
    question = sample["question"] if question is None else question
    status, *_ = client.predict(question, "", draft, 0.5, api_name="/inspect")
    assert status.startswith("⚠️") and message in status
    assert client.predict(0.5, api_name="/rethreshold")  # still answering


def test_pick_a_problem_from_the_synthetic_test_split(client):
    question, gold, draft = client.predict(3, api_name="/pick_problem")
    from glore_engine.tasks import generate

    problem = generate("test", 50)[3]
    assert (question, gold, draft) == (problem.question, problem.answer, "")


def test_results_filter_and_open_case_in_inspect(app_server, client):
    run_id = app_server["run_id"]
    table, status = client.predict(run_id, [], "", 1, api_name="/cases")
    assert "**4** case(s)" in status and len(table["data"]) == 4
    table, status = client.predict(run_id, ["draft_wrong"], "", 1, api_name="/cases")
    assert "**2** case(s)" in status
    case_id = table["data"][0][0]
    tags, _, status = client.predict(case_id, "units, slip", run_id, api_name="/save_tags")
    assert tags == "units, slip"
    with Store(app_server["db_url"]) as store:
        assert store.get_case(case_id).tags == ["units", "slip"]
    table, status = client.predict(run_id, [], "slip", 1, api_name="/cases")
    assert [row[0] for row in table["data"]] == [case_id]
    *view, threshold, inspect_status, question, draft, gold, status = client.predict(case_id, api_name="/open_case")
    _question, draft_table, _verdict, _glob, _local, rerank = view
    assert "no model was run" in inspect_status and step_categories(draft_table)
    assert 'data-kind="rerank"' in rerank and threshold == CRITIQUE_THRESHOLD  # the pipeline's, stored with the case
    with Store(app_server["db_url"]) as store:
        case = store.get_case(case_id)
    assert (question, draft, gold) == (case.question, case.draft, case.gold)  # Run can score it again
    status, _question, rerun_table, *_cards = client.predict(question, gold, draft, threshold, api_name="/inspect")
    assert status.startswith("Done in") and step_categories(rerun_table) == step_categories(draft_table)


def test_import_drafts_from_the_app(app_server, client, tmp_path):
    import html

    from gradio_client import handle_file

    rows = [
        {"id": "x1", "question": "Ann has 3 apples and buys 4 more. How many?", "draft": "3+4=7\n#### 7", "gold": 7},
        {"id": "x2", "question": "Tom has 5 pens and loses 2. How many?", "draft": "5-2=4\n#### 4", "gold": "3"},
        {"question": "No draft here"},
    ]
    path = tmp_path / "other-model.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    status, results_run, annotate_run = client.predict(handle_file(str(path)), "", True, api_name="/import_drafts")
    status = html.unescape(status)
    assert "imported 2 of 3 rows from other-model.jsonl" in status and "line 3: missing 'draft'" in status
    assert results_run == annotate_run  # both tabs switched to the new case set
    run_id = results_run["value"] if isinstance(results_run, dict) else results_run
    try:
        table, summary = client.predict(run_id, [], "", 1, api_name="/cases")
        assert "**2** case(s)" in summary and [row[2] for row in table["data"]] == ["✓", "✗"]
        with Store(app_server["db_url"]) as store:
            run = store.get_run(run_id)
            cases = store.cases(run.id)
        assert run.kind == "import" and all(c.data["draft"]["sorm_steps"] for c in cases)  # scored by the family
        out = client.predict(cases[1].id, api_name="/open_case")
        assert "imported draft" in out[7] and list(out[8:11]) == [cases[1].question, cases[1].draft, "3"]
    finally:  # the other tests of this shared app expect its eval run to be the newest with cases
        with Store(app_server["db_url"]) as store:
            store.delete_run(run_id)


def test_annotation_api_saves_at_once_and_resumes(app_server, client):
    run_id, who = app_server["run_id"], "client-a"
    queue = client.predict(run_id, who, api_name="/review_queue")
    assert queue["annotated"] == [] and queue["resume"] == queue["queue"][0]
    case_id = queue["resume"]
    saved = client.predict(case_id, 0, -1, who, False, api_name="/rate_step")
    assert saved["step_ratings"][0] == {"rating": -1, "unsure": False}
    client.predict(case_id, 1, 1, who, True, api_name="/rate_step")
    client.predict(
        case_id,
        {"first_error_step": 0, "verdict": "found_error", "note": "carried 11 forward", "tags": ["slip"]},
        who,
        api_name="/save_annotation",
    )
    with Store(app_server["db_url"]) as store:
        row = store.get_annotation(case_id, who)
    assert [r["rating"] for r in row.step_ratings] == [-1, 1] and row.step_ratings[1]["unsure"] is True
    assert (row.first_error_step, row.verdict, row.note, row.tags) == (0, "found_error", "carried 11 forward", ["slip"])
    queue = client.predict(run_id, who, api_name="/review_queue")
    assert queue["annotated"] == [case_id] and queue["resume"] == queue["queue"][1]  # where they left off


def test_annotation_api_refuses_bad_fields_with_a_message(app_server, client):
    from gradio_client.exceptions import AppError

    case_id = client.predict(app_server["run_id"], "client-c", api_name="/review_queue")["resume"]
    with pytest.raises(AppError, match="verdict must be one of"):
        client.predict(case_id, {"verdict": "maybe"}, "client-c", api_name="/save_annotation")


def test_rate_step_refuses_a_step_outside_the_draft(app_server, client):
    from gradio_client.exceptions import AppError

    case_id = client.predict(app_server["run_id"], "client-d", api_name="/review_queue")["resume"]
    with Store(app_server["db_url"]) as store:
        n_steps = len(store.get_case(case_id).steps)
    client.predict(case_id, n_steps - 1, 1, "client-d", False, api_name="/rate_step")
    for step in (-1, n_steps):
        with pytest.raises(AppError, match="out of range"):
            client.predict(case_id, step, -1, "client-d", False, api_name="/rate_step")
    with Store(app_server["db_url"]) as store:
        assert store.get_annotation(case_id, "client-d").step_ratings[-1]["rating"] == 1  # untouched


@pytest.mark.parametrize(
    "args, api_name, message",
    [
        ((1.5, 1, "client-e", False), "/rate_step", "step_index must be a whole number, got 1.5"),
        (("1", 1, "client-e", False), "/rate_step", "step_index must be a whole number"),
        ((0, 2, "client-e", False), "/rate_step", "rating must be -1, 0, 1"),
        ((0, 1, None, False), "/rate_step", "annotator name must be text"),
        ((0, 1, "x" * 100_000, False), "/rate_step", "annotator name is 100000 characters"),
        ((0, 1, "client-e", "yes"), "/rate_step", "unsure must be true or false"),
        (({"note": {"text": "a dict"}}, "client-e"), "/save_annotation", "note must be text"),
        (({"note": "x" * 1_000_000}, "client-e"), "/save_annotation", f"at most {ANNOTATION_LIMITS['note']}"),
        (("not a dict", "client-e"), "/save_annotation", "fields must be an object"),
        (({"case_id": 3}, "client-e"), "/save_annotation", "case_id"),
    ],
)
def test_wrong_types_and_oversized_values_give_one_clear_line(app_server, client, args, api_name, message):
    from gradio_client.exceptions import AppError

    case_id = client.predict(app_server["run_id"], "client-e", api_name="/review_queue")["resume"]
    with pytest.raises(AppError, match=re.escape(message)) as error:
        client.predict(case_id, *args, api_name=api_name)
    assert "upstream Gradio app has raised an exception" not in str(error.value)
    assert "\n" not in str(error.value).strip()
    with Store(app_server["db_url"]) as store:
        assert store.get_annotation(case_id, "client-e") is None


@pytest.mark.parametrize(
    "api_name, args", [("/review_queue", ("abc", "client-e")), ("/review_queue", (1.5, "client-e"))]
)
def test_review_queue_refuses_a_bad_run_id(client, api_name, args):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="run_id must be a whole number"):
        client.predict(*args, api_name=api_name)


@pytest.mark.parametrize("api_name", ["/inspect", "/rethreshold"])
def test_a_threshold_that_is_not_a_number_is_one_clear_line(client, sample, api_name):
    from gradio_client.exceptions import AppError

    args = (sample["question"], "10", sample["draft"], "abc") if api_name == "/inspect" else ("abc",)
    with pytest.raises(AppError, match="Threshold: expected a number, got 'abc'"):
        client.predict(*args, api_name=api_name)


def test_two_tabs_annotating_at_once_lose_nothing(app_server):
    from gradio_client import Client

    run_id, who = app_server["run_id"], "client-b"
    with Store(app_server["db_url"]) as store:
        case_id = next(c.id for c in store.cases(run_id) if len(c.steps) >= 3)
    tabs = [Client(app_server["url"], verbose=False) for _ in range(3)]
    errors = []

    def rate(client, step, rating):
        try:
            client.predict(case_id, step, rating, who, False, api_name="/rate_step")
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=rate, args=(tab, step, rating))
        for tab, (step, rating) in zip(tabs, [(0, 1), (2, -1), (1, 0)])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with Store(app_server["db_url"]) as store:
        ratings = [r["rating"] for r in store.get_annotation(case_id, who).step_ratings]
    assert ratings[:3] == [1, 0, -1]


def test_runs_tab_shows_metrics_plots_and_paper_tables(app_server, client):
    runs, _run, status = client.predict(api_name="/runs")
    assert any(row[0] == app_server["run_id"] for row in runs["data"])
    header, metrics, loss, acc, tables, config, _summary, _status = client.predict(
        app_server["run_id"], api_name="/run_details"
    )
    assert "FINISHED" in header and {row[0] for row in metrics["data"]} == {"train/loss", "eval/accuracy"}
    assert "greedy draft" in tables and config == {"n": 4}
    assert loss and acc


@pytest.mark.parametrize("fmt", ["trl", "processbench", "prm800k", "csv"])
def test_export_downloads_records_with_schema_version(app_server, client, fmt):
    with Store(app_server["db_url"]) as store:
        case = store.cases(app_server["run_id"])[0]
        store.save_annotation(case.id, "exporter", first_error_step=0, verdict="found_error", step_ratings=[-1])
    download, status = client.predict(app_server["run_id"], fmt, "exporter", api_name="/export")
    path = download["value"] if isinstance(download, dict) else download  # a button update with the file
    text = Path(path).read_text(encoding="utf-8")
    if fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert rows and all(r["schema_version"] == str(SCHEMA_VERSION) for r in rows)
    else:
        records = [json.loads(line) for line in text.splitlines()]
        assert records and all(r["schema_version"] == SCHEMA_VERSION for r in records)
    assert "record(s)" in status


def test_exports_keep_only_the_newest_folders_and_the_latest_download_works(app_server, client):
    from glore_app.export_tab import KEEP_EXPORTS

    exports = app_server["demo"].exports
    for fmt in ["csv", "trl", "prm800k", "csv", "processbench", "trl", "prm800k"]:
        download, status = client.predict(app_server["run_id"], fmt, "", api_name="/export")
    assert len([p for p in exports.root.iterdir() if p.is_dir()]) <= KEEP_EXPORTS
    path = download["value"] if isinstance(download, dict) else download
    assert Path(path).read_text(encoding="utf-8").strip() and "prm800k" in Path(path).name


def test_no_connection_leaves_this_machine(app_server):
    assert app_server["connections"].outside() == []


def test_missing_store_keeps_the_app_running(tmp_path, tiny_family, launch):
    from gradio_client import Client

    from glore_app.main import create_app

    url = launch(create_app(tiny_family, f"sqlite:///{tmp_path / 'absent' / 'glore.db'}"))
    client = Client(url, verbose=False)
    runs, run, status = client.predict(api_name="/runs")
    assert "does not exist" in status
    _path, status = client.predict(-1, "trl", "", api_name="/export")
    assert "does not exist" in status
    (tmp_path / "absent").mkdir()
    _runs, _run, status = client.predict(api_name="/runs")  # fixed while running: the store opens
    assert "No runs" in status
    _run, status = client.predict(api_name="/results_runs")  # a fresh store: how to make a run
    assert "glore-train eval --limit 100" in status and "glore-train import FILE" in status
    _table, status = client.predict(None, [], "", 1, api_name="/cases")
    assert "glore-train eval --limit 100" in status


def test_glore_app_command_serves_on_loopback(tiny_family, tmp_path, port):
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    exe = shutil.which("glore-app", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "glore_app.main"]
    proc = subprocess.Popen(
        [*cmd, "--no-browser", "--port", str(port), "--models", str(tiny_family), "--db", str(tmp_path / "cli.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200 and b"GLoRe workbench" in response.read()
                    break
            except OSError:
                assert time.monotonic() < deadline, "glore-app did not answer within 90 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, _err = proc.communicate(timeout=15)
    assert f"glore-app: store sqlite:///{(tmp_path / 'cli.db').resolve()}" in out.decode()


@pytest.fixture
def auth_app(tiny_family, eval_store, port):
    """The app with --auth alice:secret on a free loopback port: (url, db url, run id)."""
    from glore_app.main import create_app, launch_app

    db_url, run_id = eval_store
    demo = create_app(tiny_family, db_url, max_new_tokens=24)
    launch_app(demo, "127.0.0.1", port, auth=("alice", "secret"), prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", db_url, run_id
    finally:
        demo.close()
        demo.workbench.close()


def login(url: str, password: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({"username": "alice", "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "login", data=body), timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_with_auth_the_annotator_is_the_logged_in_user(auth_app):
    import urllib.error
    import urllib.request

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, db_url, run_id = auth_app
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "gradio_api/info", timeout=30)
    assert refused.value.code == 401  # nothing without logging in
    client = Client(url, auth=("alice", "secret"), verbose=False)
    case_id = client.predict(run_id, api_name="/review_queue")["resume"]
    assert client.predict(case_id, 0, 1, api_name="/rate_step")["annotator"] == "alice"
    for api_name, args in (
        ("/rate_step", (case_id, 0, -1, "mallory")),
        ("/save_annotation", (case_id, {"note": "x"}, "mallory")),
    ):
        with pytest.raises(AppError, match="logged in as 'alice'"):
            client.predict(*args, api_name=api_name)
    with Store(db_url) as store:
        assert store.get_annotation(case_id, "mallory") is None
        assert store.get_annotation(case_id, "alice").step_ratings[0]["rating"] == 1


def test_failed_logins_are_throttled_per_address(auth_app):
    from glore_app.login import FREE_FAILURES

    url, _db_url, _run_id = auth_app
    codes = [login(url, "wrong")[0] for _ in range(FREE_FAILURES + 1)]
    assert codes == [400] * (FREE_FAILURES + 1)
    status, headers = login(url, "secret")  # while it waits, even the right password is turned away
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert [login(url, "wrong")[0] for _ in range(20)] == [429] * 20  # never reaches the password check
