"""Non-UI logic: model resolution, bad input, the store behind locks, review navigation, CLI flags."""

from __future__ import annotations

import sqlite3

import pytest

from glore_app import review, state
from glore_app.main import UsageError, check_bind, parse_auth, settings
from glore_db import Store, StoreError
from glore_engine.errors import DataError


@pytest.fixture
def no_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(state, "bundled_models", lambda: tmp_path / "no-bundle")


def test_without_models_inspect_says_how_to_get_them(no_bundle):
    bench = state.Workbench(state.resolve_models(None))
    assert bench.models_folder is None
    assert "glore-train demo" in bench.models_message and "--models FOLDER" in bench.models_message
    with pytest.raises(Exception, match="glore-train demo"):
        bench.inspect("Tom has 3 apples. How many?")


def test_incomplete_models_folder_names_what_is_missing(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "config.json").write_text("{}")
    message = state.Workbench(tmp_path).models_message
    assert "orm" in message and "refiner-local" in message


@pytest.mark.parametrize("question, match", [("", "empty"), ("   ", "empty"), ("7 " * 25_000, "limit")])
def test_bad_problems_fail_before_any_model_loads(no_bundle, question, match):
    bench = state.Workbench(None)
    with pytest.raises(DataError, match=match):
        bench.inspect(question)
    assert not bench.models_loaded


def test_the_store_opens_a_db_given_as_a_file_path(tmp_path):
    bench = state.Workbench(None, str(tmp_path / "x.db"))
    assert bench.store_name() == f"sqlite:///{(tmp_path / 'x.db').resolve()}"
    bench.store()  # the path is opened as SQLite (glore_db.as_url), as in glore-train
    assert (tmp_path / "x.db").is_file()
    bench.close()


def test_missing_store_folder_is_a_store_error(tmp_path):
    bench = state.Workbench(None, f"sqlite:///{tmp_path / 'nowhere' / 'glore.db'}")
    with pytest.raises(StoreError, match="does not exist"):
        bench.store()
    (tmp_path / "nowhere").mkdir()  # fixed by the user: the next call opens it
    assert bench.store().list_runs() == []


def _store_with_case(url):
    with Store(url) as store:
        with store.run("eval") as run:
            store.add_cases(
                run.id,
                [
                    {
                        "index": i,
                        "question": f"Q{i}",
                        "draft": "a\nb\nc",
                        "draft_correct": i == 1,
                        "final_correct": i == 1,
                    }
                    for i in range(3)
                ],
            )
        return run.id, [c.id for c in store.cases(run.id)]


def test_update_annotation_keeps_other_steps(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    _run_id, (case_id, *_) = _store_with_case(url)
    bench = state.Workbench(None, url)
    bench.update_annotation(case_id, "ann", lambda f: review.with_rating(f, 0, 1))
    bench.update_annotation(case_id, "ann", lambda f: review.with_rating(f, 2, -1))
    row = bench.update_annotation(case_id, "ann", lambda f: review.with_unsure_toggled(f, 0))
    assert [r["rating"] for r in row.step_ratings] == [1, None, -1]
    assert row.step_ratings[0]["unsure"] is True


def test_locked_store_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    _run_id, (case_id, *_) = _store_with_case(url)
    bench = state.Workbench(None, url, busy_timeout_s=0.2)
    bench.store()
    blocker = sqlite3.connect(tmp_path / "g.db", timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            bench.update_annotation(case_id, "ann", lambda f: {"verdict": "solution"})
    finally:
        blocker.rollback()
        blocker.close()
    assert bench.update_annotation(case_id, "ann", lambda f: {"verdict": "solution"}).verdict == "solution"


def test_review_queue_navigation_resumes_where_left_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    run_id, ids = _store_with_case(url)
    with Store(url) as store:
        queue = store.review_queue(run_id)
        assert set(queue) == set(ids) and queue[-1] == ids[1]  # the correct case comes last
        assert review.resume(store, run_id, "a") == queue[0]
        store.save_annotation(queue[0], "a", verdict="found_error")
        assert review.resume(store, run_id, "a") == queue[1]
        assert review.step_to(store, run_id, "a", queue[1], +1) == queue[2]
        assert review.step_to(store, run_id, "a", queue[1], -1) == queue[0]
        assert review.step_to(store, run_id, "a", queue[0], -1) == queue[0]
        pos = review.position(store, run_id, "a", queue[1])
        assert (pos.position, pos.total, pos.done) == (2, 3, 1)
        assert "1/3" in review.progress_text(pos, "a")


def test_annotation_table_shows_ratings_cursor_and_first_error():
    from types import SimpleNamespace

    Case = SimpleNamespace(
        steps=["a = 1", "b = <2>"], data={"draft": {"sorm_steps": [0.9, 0.2], "orm_steps": [0.8, 0.3]}}
    )

    fields = {"step_ratings": [{"rating": -1, "unsure": True}], "first_error_step": 0}
    html = review.annotation_table(Case, fields, cursor=1, show_scores=True)
    assert 'data-rating="-1"' in html and "(unsure)" in html and "first error" in html
    assert "&lt;2&gt;" in html and "▶" in html and "0.20" in html
    assert review.clamp_step(9, 2) == 1 and review.clamp_step(None, 2) == 0


def test_cli_binding_beyond_loopback_needs_auth(tmp_path):
    assert settings(["--port", "7999"])["host"] == "127.0.0.1"
    with pytest.raises(UsageError, match="--auth"):
        settings(["--host", "0.0.0.0"])
    assert settings(["--host", "0.0.0.0", "--auth", "ann:secret"])["auth"] == ("ann", "secret")
    with pytest.raises(UsageError):
        parse_auth("no-colon")
    check_bind("127.0.0.1", None)


def test_cli_config_file_and_flags(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text("models: /m\nport: 8000\nbrowser: false\n")
    opts = settings(["--config", str(config), "--port", "8001"])
    assert (opts["models"], opts["port"], opts["browser"]) == ("/m", 8001, False)
    config.write_text("modles: /m\n")
    with pytest.raises(UsageError, match="modles"):
        settings(["--config", str(config)])
    assert settings(["--no-browser"])["browser"] is False


def test_main_refuses_an_open_bind_without_auth(capsys):
    from glore_app.main import main

    assert main(["--host", "0.0.0.0", "--no-browser"]) == 2
    assert "--auth" in capsys.readouterr().err
    assert main(["--auth", "nopassword"]) == 2


def test_problems_from_a_gsm8k_jsonl_file(tmp_path):
    import json

    path = tmp_path / "mini.jsonl"
    path.write_text(
        json.dumps({"question": "Ann has 2 pens and buys 3. How many?", "answer": "2+3=<<2+3=5>>5\n#### 5"}) + "\n"
    )
    bench = state.Workbench(None, data=str(path))
    assert [p.answer for p in bench.problems()] == ["5"]
    with pytest.raises(DataError):
        bench.problem(7)
    assert len(state.Workbench(None).problems()) == state.SYNTHETIC_TEST_N


def test_help_does_not_import_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys, glore_app.main as m\n"
        "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(k for k in ('gradio', 'torch', 'transformers') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr


def test_disagreement_filter_uses_the_engine_rule(tmp_path):
    """Results' "SORM ≠ human": the human's first error from a mark or from ratings; unscored cases left out."""
    from glore_app.state import Workbench
    from glore_db import Store

    url = f"sqlite:///{tmp_path / 'g.db'}"

    def case(i, sorm):
        data = {"steps": ["a", "b"], "threshold": 0.5}
        if sorm is not None:
            data["draft"] = {"sorm_steps": sorm}
        return {"index": i, "question": f"q{i}", "draft": "a\nb", "data": data}

    with Store(url) as store:
        run_id = store.start_run("import")
        store.add_cases(run_id, [case(0, [0.9, 0.1]), case(1, [0.9, 0.1]), case(2, [0.9, 0.9]), case(3, None)])
        ids = [c.id for c in store.cases(run_id)]
        store.save_annotation(ids[0], first_error_step=1)  # agrees
        store.save_annotation(ids[1], first_error_step=0)  # SORM says 1
        store.save_annotation(ids[2], step_ratings=[{"rating": 1}, {"rating": -1}])  # human 1 (ratings), SORM none
        store.save_annotation(ids[3], first_error_step=0)  # no scores: no disagreement to show
    bench = Workbench(db_url=url)
    assert bench.disagreeing_cases(run_id) == [ids[1], ids[2]]
    bench.close()


def test_the_task_the_models_know_with_an_example(tiny_family):
    from glore_app.state import Workbench
    from glore_engine.tasks.synthetic import generate

    task = Workbench(tiny_family).task()
    assert "synthetic GSM8K-format arithmetic" in task["description"] and "<<3+4=7>>" in task["description"]
    assert task["example_problem"] == generate("test", 1, seed=0)[0].question
    assert Workbench(None).task() is None


def test_bad_glore_threads_is_one_line_and_exit_2(monkeypatch, capsys):
    from glore_app.main import main
    from glore_engine import runtime

    monkeypatch.setattr(runtime, "_THREADS", None)  # as in a fresh process
    monkeypatch.setenv("GLORE_THREADS", "lots")
    assert main(["--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("glore-app: error: GLORE_THREADS must be a whole number") and "\n" not in err


def test_batched_inspect_carries_the_familiarity_warnings(tiny_family, tmp_path):
    """Inspect goes through the model worker's batches; the warnings must come back with each result."""
    from glore_app.state import Workbench
    from glore_engine.tasks.synthetic import generate

    problem = generate("test", 1)[0]
    plain = "Tom has 3 apples and buys 4.\nHe has 3 + 4 = 7 apples."
    bench = Workbench(tiny_family, f"sqlite:///{tmp_path / 'g.db'}")
    try:
        result = bench.inspect(problem.question, draft=plain, gold=problem.answer)
    finally:
        bench.close()
    assert any("calculator annotations" in w for w in result.warnings)
    assert any("#### answer" in w for w in result.warnings)
