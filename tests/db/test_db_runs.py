"""Run life cycle, reconcile, metrics, artifacts, url resolution and readable errors."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import update

from glore_db import RunStatus, Store, StoreError, default_home, resolve_url, user_home
from glore_db.hashing import content_hash
from glore_db.models import Run

REPO = Path(__file__).resolve().parents[2]


def test_run_finishes_with_config_and_summary(store):
    with store.run("sft", name="tiny", config={"lr": 1e-3, "path": Path("/x")}, output_dir="out") as run:
        run.set_summary({"acc": 0.5}, steps=10)
        run.set_summary(loss=0.1)
        assert store.get_run(run.id).status == "RUNNING"
    info = store.get_run(run.id)
    assert info.status == "FINISHED" and info.error is None
    assert info.config == {"lr": 1e-3, "path": "/x"}
    assert info.summary == {"acc": 0.5, "steps": 10, "loss": 0.1}
    assert info.output_dir == "out" and info.pid == os.getpid() and info.host
    assert info.finished_at >= info.created_at and info.duration_s >= 0


def test_exception_marks_failed_with_error_text(store):
    with pytest.raises(ValueError, match="boom"), store.run("orm") as run:
        raise ValueError("boom")
    info = store.get_run(run.id)
    assert info.status == "FAILED"
    assert info.error.startswith("ValueError: boom") and "Traceback" in info.error


def test_keyboard_interrupt_marks_interrupted(store):
    with pytest.raises(KeyboardInterrupt), store.run("sorm") as run:
        raise KeyboardInterrupt
    assert store.get_run(run.id).status == "INTERRUPTED"


def test_sigterm_becomes_interrupt_and_handler_is_restored(store):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), store.run("refine") as run:
        os.kill(os.getpid(), signal.SIGTERM)
    assert store.get_run(run.id).status == "INTERRUPTED"
    assert signal.getsignal(signal.SIGTERM) is before


def test_sys_exit_zero_is_a_normal_end(store):
    with pytest.raises(SystemExit), store.run("export") as run:
        sys.exit(0)
    assert store.get_run(run.id).status == "FINISHED"


def test_child_runs_have_parent(store):
    with store.run("demo") as parent:
        with parent.child("sft", name="stage 1") as child:
            child.log_metric("loss", 1.0)
        with pytest.raises(RuntimeError), parent.child("orm") as failing:
            raise RuntimeError("stage 2 broke")
    kids = store.children(parent.id)
    assert [(k.id, k.parent_id, k.status) for k in kids] == [
        (child.id, parent.id, "FINISHED"),
        (failing.id, parent.id, "FAILED"),
    ]
    assert store.get_run(parent.id).status == "FINISHED"


def test_finish_run_rejects_running_and_unknown(store):
    run_id = store.start_run("sample")
    with pytest.raises(ValueError):
        store.finish_run(run_id, status="RUNNING")
    info = store.finish_run(run_id, status=RunStatus.INTERRUPTED, summary={"n": 1})
    assert info.status == "INTERRUPTED" and info.summary == {"n": 1}
    with pytest.raises(KeyError, match="no run with id 999"):
        store.get_run(999)


def test_list_runs_filters_newest_first(store):
    ids = [store.start_run(kind) for kind in ("sft", "orm", "sft")]
    store.finish_run(ids[2])
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(kind="sft")] == [ids[2], ids[0]]
    assert [r.id for r in store.list_runs(kind="sft", status="RUNNING")] == [ids[0]]
    assert len(store.list_runs(limit=1)) == 1


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped, so the pid no longer exists
    return proc.pid


def test_reconcile_marks_runs_of_dead_processes(db_url):
    store = Store(db_url)
    dead, alive, elsewhere = (store.start_run("sft") for _ in range(3))
    with store.engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == dead).values(pid=_dead_pid()))
        conn.execute(update(Run).where(Run.id == elsewhere).values(pid=_dead_pid(), host="other-host"))
    reopened = Store(db_url)  # reconciles on open
    info = reopened.get_run(dead)
    assert info.status == "INTERRUPTED" and info.error == "process ended without closing the run"
    assert info.finished_at is not None
    assert reopened.get_run(alive).status == "RUNNING"
    assert reopened.get_run(elsewhere).status == "RUNNING"
    assert reopened.reconcile() == []


def test_metrics_and_series(store):
    with store.run("sft") as run:
        run.log_metric("loss", 2.0, step=0)
        run.log_metrics({"loss": 1.5, "acc": 0.25}, step=1)
        run.log_metric("final_acc", 0.5)
    assert [m.value for m in store.metrics(run.id, "loss")] == [2.0, 1.5]
    assert store.metric_series(run.id) == {"loss": [(0, 2.0), (1, 1.5)], "acc": [(1, 0.25)], "final_acc": [(None, 0.5)]}


def test_artifact_hash_of_file_and_folder(store, tmp_path):
    file = tmp_path / "labels.jsonl"
    file.write_bytes(b'{"a": 1}\n')
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_bytes(b"{}")
    (folder / "sub" / "model.safetensors").write_bytes(b"weights")
    with store.run("orm") as run:
        a = run.log_artifact("labels", file, meta={"n": 1})
        b = run.log_artifact("model", folder)
    assert a.sha256 == hashlib.sha256(b'{"a": 1}\n').hexdigest() and a.bytes == 9 and a.meta == {"n": 1}
    expected = hashlib.sha256(b"config.json\0{}" + b"sub/model.safetensors\0weights").hexdigest()
    assert (b.sha256, b.bytes, b.path) == (expected, 9, str(folder.resolve()))
    (folder / "config.json").rename(folder / "other.json")
    assert content_hash(folder)[0] != expected
    assert [x.id for x in store.artifacts(run.id)] == [a.id, b.id]
    assert store.artifacts(run.id, kind="model") == [b]
    with pytest.raises(FileNotFoundError):
        run.log_artifact("model", tmp_path / "missing")


def test_find_artifact_newest(store, tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    with store.run("orm") as first:
        first.log_artifact("model", path)
    with pytest.raises(RuntimeError), store.run("orm") as failed:
        failed.log_artifact("model", path)
        raise RuntimeError
    assert store.find_artifact("model").run_id == failed.id
    assert store.find_artifact("model", status="FINISHED").run_id == first.id
    assert store.find_artifact("model", run_id=first.id).run_id == first.id
    assert store.find_artifact("labels") is None


def test_delete_run_cascades(store, eval_run):
    run_id, case_ids = eval_run
    store.save_annotation(case_ids[0], verdict="solution")
    store.log_metric(run_id, "acc", 1.0)
    store.delete_run(run_id)
    assert store.annotations() == [] and store.metrics(run_id) == [] and store.cases(run_id) == []


def test_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("GLORE_DB", raising=False)
    monkeypatch.setenv("GLORE_HOME", str(tmp_path / "home"))
    assert resolve_url() == f"sqlite:///{(tmp_path / 'home' / 'glore.db').resolve()}"
    assert default_home().is_dir()
    with Store() as default:
        run_id = default.start_run("sft")
    assert (tmp_path / "home" / "glore.db").exists()
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("GLORE_DB", env_url)
    with Store() as from_env:
        assert from_env.url == env_url and from_env.list_runs() == []
    explicit = f"sqlite:///{tmp_path / 'home' / 'glore.db'}"
    with Store(explicit) as from_arg:
        assert from_arg.get_run(run_id).kind == "sft"


def test_default_home_is_the_users_data_folder_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GLORE_DB", raising=False)
    monkeypatch.delenv("GLORE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # platformdirs' Linux data folder
    seen = set()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        seen.add((default_home(), resolve_url()))
    home = user_home()
    assert seen == {(home, f"sqlite:///{home / 'glore.db'}")} and home.is_dir()
    if sys.platform.startswith("linux"):
        assert home == tmp_path / "data" / "glore"
    assert not (tmp_path / "a" / "glore-runs").exists()
    monkeypatch.setenv("GLORE_HOME", str(tmp_path / "mine"))  # GLORE_HOME still wins
    assert default_home() == tmp_path / "mine"


def test_in_memory_url_is_shared_by_threads():
    with Store("sqlite://") as mem:
        with mem.run("eval") as run:
            run.log_metric("acc", 1.0)
        seen = []
        worker = threading.Thread(target=lambda: seen.append(mem.get_run(run.id).status))
        worker.start()
        worker.join()
        assert seen == ["FINISHED"]


def test_missing_folder_gives_store_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'nope' / 'glore.db'}"
    with pytest.raises(StoreError, match="does not exist") as err:
        Store(url)
    assert str(tmp_path / "nope") in str(err.value)


def test_bad_url_gives_store_error():
    with pytest.raises(StoreError, match="not a database url"):
        Store("://no-dialect")


def test_a_file_path_is_a_sqlite_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_url("runs.db") == f"sqlite:///{(tmp_path / 'runs.db').resolve()}"
    monkeypatch.setenv("GLORE_DB", "~/x.db")
    assert resolve_url() == f"sqlite:///{Path('~/x.db').expanduser().resolve()}"
    assert resolve_url("postgresql://u@h/db") == "postgresql://u@h/db"
    with Store("runs.db") as store, store.run("sft", name="path") as run:
        pass
    assert (tmp_path / "runs.db").is_file() and Store("runs.db").get_run(run.id).name == "path"


def test_locked_database_gives_store_error(tmp_path):
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    store = Store(url, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked") as err:
            store.start_run("sft")
        assert str(path) in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.start_run("sft") > 0  # usable again once the lock is gone


def test_importing_db_does_not_import_heavy_packages():
    code = (
        "import glore_db, sys; heavy = {'torch', 'transformers', 'gradio', 'glore_engine'} & "
        "{m.split('.')[0] for m in sys.modules}; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
