"""Fixtures for the run store tests: a fresh SQLite store per test and a run with eval cases."""

from __future__ import annotations

import pytest

from glore_db import Store


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'glore.db'}"


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


def make_cases() -> list[dict]:
    """Five cases covering every filter: ids are assigned in this order."""

    def case(index, draft_ok, global_ok, local_ok, final_ok, first_error=-1, tags=(), candidates=None):
        data = {
            "steps": ["a = 1", "b = a + 1", "#### 2"],
            "first_error": first_error,
            "orm": [0.9, 0.8, 0.7],
            "sorm": [0.9, 0.4, 0.3],
        }
        if candidates is not None:
            data["candidates"] = candidates
        return {
            "index": index,
            "problem_id": f"p{index}",
            "question": f"Q{index}?",
            "gold": "2",
            "draft": "a = 1\nb = a + 1\n#### 2",
            "data": data,
            "tags": list(tags),
            "draft_correct": draft_ok,
            "global_correct": global_ok,
            "local_correct": local_ok,
            "final_correct": final_ok,
        }

    return [
        case(0, True, True, True, True, tags=["easy"]),
        case(1, False, True, False, True, first_error=1, tags=["units", "hard"]),
        case(2, False, False, True, True, first_error=2),
        case(3, True, False, False, False, tags=["hard_ish"]),
        case(
            4,
            False,
            False,
            False,
            False,
            first_error=0,
            candidates=[{"text": "x", "score": 0.2, "correct": False}, {"text": "y", "score": 0.1, "correct": True}],
        ),
    ]


@pytest.fixture
def eval_run(store):
    """(run id, case ids in index order) of an eval run holding make_cases()."""
    with store.run("eval", name="cases") as run:
        store.add_cases(run.id, make_cases())
    return run.id, [c.id for c in store.cases(run.id)]
