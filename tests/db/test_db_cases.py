"""Eval cases with the Results-tab filters, annotations (upsert, concurrency) and the review queue."""

from __future__ import annotations

import threading

import pytest

from glore_db import Store


def _indexes(store, run_id, **filters) -> list[int]:
    return [c.index for c in store.cases(run_id, filters)]


def test_add_and_read_cases(store, eval_run):
    run_id, ids = eval_run
    assert store.count_cases(run_id) == 5
    case = store.get_case(ids[1])
    assert (case.index, case.problem_id, case.gold, case.tags) == (1, "p1", "2", ["units", "hard"])
    assert case.steps == ["a = 1", "b = a + 1", "#### 2"]
    assert case.data["sorm"] == [0.9, 0.4, 0.3]
    assert [c.index for c in store.cases(run_id, limit=2, offset=2)] == [2, 3]
    with pytest.raises(KeyError, match="no eval case"):
        store.get_case(10_000)


def test_case_flags_fall_back_to_data_and_reject_unknown_keys(store):
    run_id = store.start_run("eval")
    store.add_cases(run_id, [{"index": 0, "draft": "x\n#### 1", "data": {"draft_correct": False}}])
    case = store.cases(run_id)[0]
    assert case.draft_correct is False and case.any_correct is False and case.steps == ["x", "#### 1"]
    with pytest.raises(ValueError, match="unknown eval case key"):
        store.add_cases(run_id, [{"index": 1, "drafts": "typo"}])


def test_each_filter(store, eval_run):
    run_id, _ids = eval_run
    assert _indexes(store, run_id, draft_wrong=True) == [1, 2, 4]
    assert _indexes(store, run_id, fixed_by_global=True) == [1]
    assert _indexes(store, run_id, fixed_by_local=True) == [2]
    assert _indexes(store, run_id, broken_by_refinement=True) == [3]
    assert _indexes(store, run_id, reranker_wrong=True) == [3, 4]
    assert _indexes(store, run_id, tag="hard") == [1]  # not "hard_ish": whole tags only
    assert _indexes(store, run_id, tag="hard_ish") == [3]
    assert _indexes(store, run_id, draft_wrong=True, tag="units") == [1]
    assert _indexes(store, run_id, draft_wrong=False) == [0, 1, 2, 3, 4]  # falsy = filter off
    assert store.count_cases(run_id, {"draft_wrong": True}) == 3
    with pytest.raises(ValueError, match="unknown case filter"):
        store.cases(run_id, {"wrong_draft": True})


def test_disagreement_and_annotated_filters(store, eval_run):
    run_id, ids = eval_run
    store.save_annotation(ids[1], first_error_step=1)  # agrees with the SORM (1)
    store.save_annotation(ids[2], first_error_step=0)  # SORM said 2
    store.save_annotation(ids[0], annotator="bob", first_error_step=-1)  # SORM -1: agrees
    store.save_annotation(ids[3], annotator="bob", first_error_step=2)  # SORM -1
    store.save_annotation(ids[4], note="no first error yet")
    assert _indexes(store, run_id, disagreement=True) == [2, 3]
    assert _indexes(store, run_id, disagreement="bob") == [3]
    assert _indexes(store, run_id, annotated="bob") == [0, 3]
    assert _indexes(store, run_id, unannotated="default") == [0, 3]


def test_set_case_tags(store, eval_run):
    run_id, ids = eval_run
    assert store.set_case_tags(ids[0], ["look", "look", "odd"]).tags == ["look", "odd"]
    assert _indexes(store, run_id, tag="odd") == [0]


def test_save_annotation_upserts(store, eval_run):
    _, ids = eval_run
    first = store.save_annotation(
        ids[1],
        step_ratings=[1, {"rating": -1, "unsure": True}, None],
        first_error_step=1,
        verdict="found_error",
        note="b is wrong",
    )
    second = store.save_annotation(ids[1], note="b is really wrong")
    assert second.id == first.id and second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert second.step_ratings == [
        {"rating": 1, "unsure": False},
        {"rating": -1, "unsure": True},
        {"rating": None, "unsure": False},
    ]
    assert (second.first_error_step, second.verdict, second.note) == (1, "found_error", "b is really wrong")
    assert len(store.annotations()) == 1
    other = store.save_annotation(ids[1], annotator="bob", verdict="solution")
    assert other.id != first.id and len(store.annotations()) == 2
    assert store.get_annotation(ids[1], "bob").verdict == "solution"
    assert store.get_annotation(ids[0]) is None


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"verdict": "maybe"}, "verdict"),
        ({"first_error_step": 3}, "first_error_step"),  # the draft has 3 steps: 0..2
        ({"first_error_step": -2}, "first_error_step"),
        ({"step_ratings": [2]}, "rating"),
        ({"step_ratings": [True]}, "rating"),
        ({"step_ratings": [1, 1, 1, 1]}, "4 step ratings"),
        ({"colour": "red"}, "unknown annotation field"),
    ],
)
def test_save_annotation_validates(store, eval_run, fields, message):
    _, ids = eval_run
    with pytest.raises(ValueError, match=message):
        store.save_annotation(ids[0], **fields)
    assert store.annotations() == []


def test_save_annotation_of_missing_case(store):
    with pytest.raises(KeyError, match="no eval case"):
        store.save_annotation(12345, verdict="solution")


@pytest.mark.parametrize("shared", [False, True], ids=["store-per-tab", "one-shared-store"])
def test_concurrent_saves_lose_nothing(db_url, store, eval_run, shared):
    _, ids = eval_run
    rounds, errors = 50, []
    barrier = threading.Barrier(2)

    def tab(name: str) -> None:
        # Two browser tabs: the app shares one Store between worker threads; other processes own one.
        tab_store = store if shared else Store(db_url)
        try:
            barrier.wait()
            for i in range(rounds):
                tab_store.save_annotation(ids[1], note=f"{name}-{i}")
                tab_store.save_annotation(ids[1], annotator=name, note=f"{name}-{i}", first_error_step=i % 3)
        except Exception as exc:
            errors.append(exc)
        finally:
            if not shared:
                tab_store.close()

    threads = [threading.Thread(target=tab, args=(n,)) for n in ("tab0", "tab1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = {a.annotator: a for a in store.annotations()}
    assert sorted(rows) == ["default", "tab0", "tab1"]
    assert rows["default"].note in {"tab0-49", "tab1-49"}
    assert rows["tab0"].note == "tab0-49" and rows["tab1"].note == "tab1-49"
    assert rows["tab0"].first_error_step == 49 % 3


def test_review_queue_puts_failures_first(store, eval_run):
    run_id, ids = eval_run
    # failures: draft wrong (1, 2, 4) or final wrong (3, 4); then the rest (0)
    assert store.review_queue(run_id, "default") == [ids[1], ids[2], ids[3], ids[4], ids[0]]


def test_next_unannotated_walks_the_queue(store, eval_run):
    run_id, ids = eval_run
    assert store.next_unannotated(run_id) == ids[1]
    store.save_annotation(ids[1], verdict="found_error")
    store.save_annotation(ids[3], verdict="found_error")
    assert store.next_unannotated(run_id) == ids[2]
    assert store.next_unannotated(run_id, after_case_id=ids[2]) == ids[4]
    assert store.next_unannotated(run_id, after_case_id=ids[0]) == ids[2]  # wraps around
    assert store.next_unannotated(run_id, annotator="bob") == ids[1]
    for case_id in ids:
        store.save_annotation(case_id, verdict="solution")
    assert store.next_unannotated(run_id) is None


def test_update_annotation_is_a_read_modify_write_across_processes(tmp_path):
    """Two processes rating different steps of one case at once: every rating survives."""
    import subprocess
    import sys

    from glore_db import Store

    url = f"sqlite:///{tmp_path / 'glore.db'}"
    with Store(url) as store:
        run_id = store.start_run("eval")
        store.add_cases(
            run_id,
            [
                {
                    "index": 0,
                    "question": "q",
                    "gold": "1",
                    "draft": "a\nb\nc\nd",
                    "data": {"steps": ["a", "b", "c", "d"]},
                }
            ],
        )
        case_id = store.cases(run_id)[0].id
    script = (
        "import sys\nfrom db import Store\n"
        "store = Store(sys.argv[1])\nstep = int(sys.argv[2])\n"
        "def rate(fields, i):\n"
        "    ratings = fields['step_ratings'] + [{'rating': None, 'unsure': False}] * (4 - len(fields['step_ratings']))\n"
        "    ratings[i] = {'rating': 1, 'unsure': False}\n"
        "    return {'step_ratings': ratings}\n"
        "for _ in range(20):\n"
        "    store.update_annotation(int(sys.argv[3]), 'default', lambda f: rate(f, step))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(i), str(case_id)]) for i in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    with Store(url) as store:
        ratings = store.get_annotation(case_id).step_ratings
    assert [r["rating"] for r in ratings] == [1, 1, 1, 1]


def test_case_ids_filter_and_an_empty_list_matches_none(store, eval_run):
    run_id, ids = eval_run
    assert _indexes(store, run_id, case_ids=[ids[3], ids[1]]) == [1, 3]
    assert _indexes(store, run_id, case_ids=[]) == []
    assert store.count_cases(run_id, {"case_ids": [ids[0]], "draft_wrong": True}) == 0
