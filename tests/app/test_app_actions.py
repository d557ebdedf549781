"""The Annotate tab's ordered actions without a browser: every entry applied once, in sequence order,
whatever the order, repetition or loss of the requests that carry the page's log."""

from __future__ import annotations

import json
import random

import pytest

from glore_app import actions
from glore_db import Store


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'g.db'}") as s:
        with s.run("eval", name="queue") as run:
            s.add_cases(
                run.id,
                [
                    {
                        "index": i,
                        "question": f"Q{i}",
                        "draft": "a\nb\nc",
                        "draft_correct": i == 2,
                        "final_correct": i == 2,
                    }
                    for i in range(3)
                ],
            )
        s.run_id = run.id
        yield s


def log_of(keys: str, run_id: int, start: int = 1) -> list[dict]:
    """The page's log for: open the run, then one entry per key."""
    entries = [{"s": start, "k": "run", "v": run_id, "who": "ann", "case": None}]
    return entries + [{"s": start + i + 1, "k": k, "v": None, "who": "ann", "case": None} for i, k in enumerate(keys)]


def apply(store, cursor, entries):
    return actions.apply_log(store, cursor, actions.parse_log(json.dumps(entries)), lambda e: e.who or "default")


def state(store, run_id):
    return {
        a.case_id: ([r["rating"] for r in a.step_ratings], a.first_error_step, a.verdict)
        for a in store.annotations(run_id, "ann")
    }


KEYS = "ggbkjf1nggx2"
EXPECTED_KEYS = [([1, 1, -1], 2, "found_error"), ([1, 1], -1, "solution")]


def test_a_key_burst_rates_consecutive_steps_and_cases(store):
    out = apply(store, None, log_of(KEYS, store.run_id))
    assert out.messages == [] and out.cursor["applied"] == len(KEYS) + 1
    assert sorted(state(store, store.run_id).values()) == sorted(EXPECTED_KEYS)


@pytest.mark.parametrize("seed", range(5))
def test_requests_out_of_order_repeated_or_lost_apply_each_entry_once_in_order(store, seed):
    """The page sends growing logs (each with every unconfirmed entry); the server sees some of them,
    in any order, some twice: the result is the one of applying every key once, in order."""
    rng = random.Random(seed)
    full = log_of(KEYS, store.run_id)
    sends = [full[:n] for n in range(1, len(full) + 1)]
    arrived = rng.sample(sends, k=len(sends) // 2)  # the others are lost, the rest arrive in any order
    arrived += [full] + rng.sample(sends, k=3)  # the last send arrives; stale repeats after it
    cursor = None
    for send in arrived:
        cursor = apply(store, cursor, send).cursor
    assert cursor["applied"] == len(full)
    assert sorted(state(store, store.run_id).values()) == sorted(EXPECTED_KEYS)


def test_a_refused_entry_is_reported_once_and_later_keys_still_apply(store):
    entries = log_of("ggkf", store.run_id)  # g g rate steps 1-2, k back to step 2, f: step 2 is +1 -> refused
    entries.append({"s": 6, "k": "1", "v": None, "who": "ann", "case": None})
    out = apply(store, None, entries)
    assert len(out.messages) == 1 and "marked as the first error" in out.messages[0]
    assert list(state(store, store.run_id).values()) == [([1, 1], None, "found_error")]
    again = apply(store, out.cursor, entries)  # the same log again: nothing re-applied, nothing re-reported
    assert again.messages == [] and list(state(store, store.run_id).values()) == [([1, 1], None, "found_error")]


def test_a_store_failure_keeps_the_remaining_entries_for_the_next_request(store, monkeypatch):
    from glore_db import StoreError

    entries = log_of("ggb", store.run_id)
    real = store.rate_step
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise StoreError("run store is locked by another process")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "rate_step", flaky)
    out = apply(store, None, entries)
    assert out.waiting == 2 and out.cursor["applied"] == 2 and "locked" in out.messages[0]
    out = apply(store, out.cursor, entries)  # retried: the second g and the b
    assert out.waiting == 0 and list(state(store, store.run_id).values()) == [([1, 1, -1], None, None)]


def test_note_and_tags_go_to_the_case_the_page_showed(store):
    entries = log_of("n", store.run_id)
    first_case = apply(store, None, entries[:1]).cursor["case"]
    # the note typed while the page still showed the first case arrives after "n"
    entries.append({"s": 3, "k": "note", "v": "pasted note", "who": "ann", "case": first_case})
    entries.append({"s": 4, "k": "tags", "v": "slip, units", "who": "ann", "case": first_case})
    out = apply(store, None, entries)
    assert out.cursor["case"] != first_case
    row = store.get_annotation(first_case, "ann")
    assert (row.note, row.tags) == ("pasted note", ["slip", "units"])
    assert store.get_annotation(out.cursor["case"], "ann") is None


def test_leaving_an_untouched_note_writes_nothing(store):
    entries = log_of("", store.run_id)
    entries.append({"s": 2, "k": "note", "v": "", "who": "ann", "case": None})
    entries.append({"s": 3, "k": "tags", "v": " , ", "who": "ann", "case": None})
    out = apply(store, None, entries)
    assert out.messages == [] and store.annotations(store.run_id) == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not JSON"),
        ('{"s": 1}', "list"),
        ('[{"s": "1", "k": "g"}]', "malformed"),
        ('[{"s": 1, "k": "rm -rf"}]', "malformed"),
        ("[" + ",".join(["{}"] * (actions.MAX_ENTRIES + 1)) + "]", "at most"),
    ],
)
def test_a_malformed_log_is_refused_with_a_message(text, message):
    with pytest.raises(ValueError, match=message):
        actions.parse_log(text)


def test_wrong_values_in_entries_are_one_line_messages(store):
    entries = [
        {"s": 1, "k": "run", "v": "abc", "who": "ann", "case": None},
        {"s": 2, "k": "run", "v": store.run_id, "who": "ann", "case": None},
        {"s": 3, "k": "step", "v": 1.5, "who": "ann", "case": None},
        {"s": 4, "k": "case", "v": 99999, "who": "ann", "case": None},
        {"s": 5, "k": "note", "v": {"a": 1}, "who": "ann", "case": None},
        {"s": 6, "k": "g", "v": None, "who": "x" * 1000, "case": None},
    ]

    def annotator(entry):
        from glore_db.annotations import check_annotator

        return check_annotator(entry.who or "default")

    out = actions.apply_log(store, None, actions.parse_log(json.dumps(entries)), annotator)
    assert len(out.messages) == 5 and out.cursor["applied"] == 6
    for text, words in zip(
        out.messages, ("run id must be a number", "whole number", "no eval case", "note must be text")
    ):
        assert words in text
    assert "annotator name is 1000 characters" in out.messages[4]
    assert store.annotations(store.run_id) == []


def test_with_auth_the_tab_saves_as_the_logged_in_user_whatever_the_box_says(store, tmp_path):
    from types import SimpleNamespace

    from glore_app.annotate_tab import N_OUT, Handlers
    from glore_app.state import Workbench

    bench = Workbench(None, store.url)
    entries = [{**e, "who": "mallory"} for e in log_of("g", store.run_id)]
    out = Handlers(bench).apply()(False, None, json.dumps(entries), SimpleNamespace(username="alice"))
    assert len(out) == N_OUT and json.loads(out[-1])["applied"] == 2
    assert [a.annotator for a in store.annotations(store.run_id)] == ["alice"]
    bench.close()


def test_the_page_sends_exactly_the_keys_the_server_knows():
    from glore_app.annotate_tab import RATING_BUTTONS, VERDICT_BUTTONS
    from glore_app.ui import JS, SHORTCUTS

    assert set(SHORTCUTS) == set(actions.KEYS) - set(actions.VALUE_KEYS)
    assert {k for k, *_ in RATING_BUTTONS} == set(actions.RATING_KEYS)
    assert {k: v for k, v, _ in VERDICT_BUTTONS} == actions.VERDICT_KEYS
    assert all(f"'{key}'" in JS for key in SHORTCUTS)
