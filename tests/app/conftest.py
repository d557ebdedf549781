"""Fixtures for the app tests: a tiny model family, a store with an evaluation run, a launched app.

e2e (launched app) and browser tests run with `--slow` or `-m e2e` / `-m browser` (tests/conftest.py).
"""

from __future__ import annotations

import socket

import pytest

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
QUESTION = "Tom has 3 boxes of 4 apples. He eats 2 apples. How many apples are left?"
DRAFT = "Tom has 3*4=<<3*4=12>>12 apples.\nHe eats 2, so 12-2=<<12-2=10>>10 are left.\nThat is all.\n#### 10"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    from glore_engine.testing import make_tiny_family

    return make_tiny_family(tmp_path_factory.mktemp("family"))


def wrong(solution: str) -> str:
    """The gold solution with its final answer off by one: a wrong draft with real steps."""
    lines = solution.splitlines()
    answer = int(lines[-1].removeprefix("####").strip())
    return "\n".join(lines[:-1] + [f"#### {answer + 1}"])


def make_eval_run(store, family, n: int = 4) -> int:
    """An eval run whose cases come from the pipeline on synthetic problems (drafts given, half wrong)."""
    from glore_engine.family import GloreModels
    from glore_engine.pipeline import GlorePipeline, to_case
    from glore_engine.tasks import generate

    problems = generate("test", n)
    drafts = [p.solution if i % 2 else wrong(p.solution) for i, p in enumerate(problems)]
    pipeline = GlorePipeline(GloreModels.from_folder(family), max_new_tokens=24)
    results = pipeline.run_batch([p.question for p in problems], [p.answer for p in problems], drafts=drafts)
    with store.run("eval", name="app-tests", config={"n": n}) as run:
        store.add_cases(run.id, [to_case(r, i, p.id).to_json() for i, (r, p) in enumerate(zip(results, problems))])
        store.set_summary(run.id, {"tables_md": {"T3": "| method | accuracy % |\n|---|---|\n| greedy draft | 50.0 |"}})
        for step in range(5):
            store.log_metrics(run.id, {"train/loss": 2.0 / (step + 1), "eval/accuracy": 0.1 * step}, step=step)
    return run.id


@pytest.fixture(scope="session")
def eval_store(tmp_path_factory, tiny_family):
    """(db url, eval run id) of a sqlite store holding pipeline-made cases."""
    from glore_db import Store

    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'glore.db'}"
    with Store(url) as store:
        run_id = make_eval_run(store, tiny_family)
    return url, run_id


class Connections:
    """Every address a Python socket of this process connects to while installed."""

    def __init__(self):
        self.addresses: list = []
        self._connect = socket.socket.connect
        self._connect_ex = socket.socket.connect_ex

    def install(self):
        seen = self.addresses

        def connect(sock, address, _orig=self._connect):
            seen.append(address)
            return _orig(sock, address)

        def connect_ex(sock, address, _orig=self._connect_ex):
            seen.append(address)
            return _orig(sock, address)

        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex

    def uninstall(self):
        socket.socket.connect, socket.socket.connect_ex = self._connect, self._connect_ex

    def outside(self) -> list:
        return [a for a in self.addresses if isinstance(a, tuple) and a[0] not in LOOPBACK]


@pytest.fixture(scope="session")
def app_server(tiny_family, eval_store):
    """The app launched in this process on 127.0.0.1 and a free port: (url, demo, db url, run id, connections)."""
    from glore_app.main import create_app, launch_app

    connections = Connections()
    connections.install()
    db_url, run_id = eval_store
    demo = create_app(tiny_family, db_url, max_new_tokens=24)
    port = free_port()
    launch_app(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield {
            "url": f"http://127.0.0.1:{port}/",
            "demo": demo,
            "db_url": db_url,
            "run_id": run_id,
            "connections": connections,
        }
    finally:
        demo.close()
        demo.workbench.close()
        connections.uninstall()


@pytest.fixture
def port() -> int:
    """A free loopback port."""
    return free_port()


@pytest.fixture
def sample() -> dict:
    """A problem with a three-step draft (answer 10) the tests paste into Inspect."""
    return {"question": QUESTION, "draft": DRAFT, "gold": "10"}


@pytest.fixture
def launch():
    """launch(demo) -> url on a free loopback port; every app launched is closed after the test."""
    from glore_app.main import launch_app

    launched = []

    def start(demo):
        port = free_port()
        launch_app(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        launched.append(demo)
        return f"http://127.0.0.1:{port}/"

    yield start
    for demo in launched:
        demo.close()
        demo.workbench.close()


@pytest.fixture
def client(app_server, tmp_path):
    from gradio_client import Client

    return Client(app_server["url"], verbose=False, download_files=str(tmp_path))
