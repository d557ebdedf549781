"""The Annotate tab's actions (keys, buttons, typed notes) applied in the order the person made them.

The page numbers every action it sees (a key pressed, a button clicked, a note pasted) and keeps
the ones the server has not confirmed in a log; each request carries that whole log. The server
applies, in sequence order, the entries above the last one it applied and says how far it got, so
an entry is applied once, in order, whatever the order, delay or loss of requests on the way: a
late request holds nothing new, a lost one is covered by the next. The cursor (case and step) is
the server's, so "g g b" rates three consecutive steps however slow the server is.

No gradio here: the tab passes the store, the cursor and the log; tests call apply_log directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from glore_db import StoreError

from . import review

log = logging.getLogger("glore.app")

RATING_KEYS = {"g": 1, "o": 0, "b": -1}
VERDICT_KEYS = {"1": "found_error", "2": "solution", "3": "bad_problem", "4": "give_up"}
MOVE_KEYS = {"j": +1, "k": -1}
NAV_KEYS = {"n": +1, "p": -1}
# Keys with a value: open a run or a case, jump to a (1-based) step, re-render, the note and tags text.
VALUE_KEYS = ("run", "case", "step", "view", "note", "tags")
KEYS = (*RATING_KEYS, "c", "u", "f", "x", *VERDICT_KEYS, *MOVE_KEYS, *NAV_KEYS, "r", *VALUE_KEYS)
WRITE_KEYS = (*RATING_KEYS, "c", "u", "f", "x", *VERDICT_KEYS, "note", "tags")
MAX_LOG_CHARS = 4_000_000  # a few notes at the store's limit, thousands of keys
MAX_ENTRIES = 5_000


@dataclass(frozen=True)
class Entry:
    seq: int  # the page's number for this action, from 1
    key: str  # one of KEYS
    value: Any = None
    who: str = ""  # the annotator box when the action was made
    case: int | None = None  # the case the page showed (note and tags belong to it)


@dataclass
class Outcome:
    cursor: dict[str, Any]
    navigated: bool = False  # another case is under the cursor: reload its note and tags
    messages: list[str] = field(default_factory=list)  # one line per refused entry
    waiting: int = 0  # entries kept for the next request (the store was unavailable)
    saved: bool = False  # some entry wrote to the store


def new_cursor() -> dict[str, Any]:
    return {"run": None, "case": None, "step": 0, "applied": 0, "who": "default"}


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(number)


def parse_log(text: str | None) -> list[Entry]:
    """The page's log (JSON list of {"s", "k", "v", "who", "case"}) as entries in sequence order."""
    if not text:
        return []
    if len(text) > MAX_LOG_CHARS:
        raise ValueError(f"the page's action log is {len(text)} characters; at most {MAX_LOG_CHARS}")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the page's action log is not JSON: {exc.msg}") from None
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise ValueError(f"the page's action log must be a list of at most {MAX_ENTRIES} entries")
    entries = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("s"), int) or item.get("k") not in KEYS:
            raise ValueError(f"malformed action log entry {str(item)[:80]!r}")
        who, case = item.get("who"), item.get("case")
        entries.append(
            Entry(item["s"], item["k"], item.get("v"), who if isinstance(who, str) else "", _int_or_none(case, "case"))
        )
    return sorted(entries, key=lambda e: e.seq)


def apply_log(store, cursor: dict | None, entries: list[Entry], annotator: Callable[[Entry], str]) -> Outcome:
    """Apply the entries above cursor["applied"] in order; stop (keeping the rest) if the store fails.

    annotator(entry) names who made the entry (the logged-in user, else the annotator box).
    A refused entry (bad value, a contradiction the store refuses) is reported and counted as applied.
    """
    out = Outcome({**new_cursor(), **(cursor or {})})
    todo = [e for e in entries if e.seq > out.cursor["applied"]]
    for i, entry in enumerate(todo):
        try:
            who = annotator(entry)
            out.cursor["who"] = who
            out.navigated |= _apply(store, out.cursor, entry, who)
            out.saved |= entry.key in WRITE_KEYS
        except StoreError as exc:
            out.messages.append(f"{exc} ({len(todo) - i} action(s) kept; retried shortly)")
            out.waiting = len(todo) - i
            return out
        except (ValueError, KeyError) as exc:
            out.messages.append(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
        except Exception as exc:  # a bug must not block every later key: report it and go on
            log.exception("annotate action %r failed", entry)
            out.messages.append(f"internal error ({type(exc).__name__}); the app keeps running, see its log")
        out.cursor["applied"] = entry.seq
    return out


def _under_cursor(cursor: dict) -> tuple[int, int]:
    if cursor.get("case") is None:
        raise ValueError("no case open: pick a run (or press Resume)")
    return cursor["case"], cursor["step"]


def _open(cursor: dict, run_id: int | None, case_id: int | None) -> bool:
    moved = case_id != cursor.get("case")
    cursor.update(run=run_id, case=case_id, step=0)
    return moved or case_id is None


def _need_run(cursor: dict) -> int:
    if cursor.get("run") is None:
        raise ValueError("pick an evaluation run first")
    return cursor["run"]


def _apply(store, cursor: dict, entry: Entry, who: str) -> bool:
    """Apply one entry to the store and the cursor; True when another case comes under the cursor."""
    key, value = entry.key, entry.value
    if key == "run":
        run_id = _int_or_none(value, "run id")
        return _open(cursor, run_id, review.resume(store, run_id, who) if run_id is not None else None)
    if key == "r":
        return _open(cursor, cursor.get("run"), review.resume(store, _need_run(cursor), who))
    if key in NAV_KEYS:
        case_id = review.step_to(store, _need_run(cursor), who, cursor.get("case"), NAV_KEYS[key])
        return _open(cursor, cursor["run"], case_id)
    if key == "case":
        case_id = _int_or_none(value, "case id")
        if case_id is None:
            raise ValueError("type a case id")
        return _open(cursor, store.get_case(case_id).run_id, case_id)
    if key == "view":
        return False
    if key in ("note", "tags"):
        _save_text(store, cursor, entry, who)
        return False
    case_id, step0 = _under_cursor(cursor)
    n_steps = len(store.get_case(case_id).steps)
    if key == "step":
        typed = _int_or_none(value, "step")
        cursor["step"] = review.clamp_step((typed or 1) - 1, n_steps)
    elif key in MOVE_KEYS:
        cursor["step"] = review.clamp_step(step0 + MOVE_KEYS[key], n_steps)
    elif key in RATING_KEYS or key == "c":
        if not n_steps:
            raise ValueError("this draft has no steps to rate")
        store.rate_step(case_id, step0, RATING_KEYS.get(key), who)
        if key != "c":  # a rating moves on to the next step
            cursor["step"] = min(step0 + 1, n_steps - 1)
    elif key == "u":
        if not n_steps:
            raise ValueError("this draft has no steps to rate")
        store.update_annotation(case_id, who, lambda fields: review.with_unsure_toggled(fields, step0))
    elif key in ("f", "x"):
        store.save_annotation(case_id, who, first_error_step=step0 if key == "f" and n_steps else -1)
    else:
        store.save_annotation(case_id, who, verdict=VERDICT_KEYS[key])
    return False


def _save_text(store, cursor: dict, entry: Entry, who: str) -> None:
    """The note or tags as typed for the case the page showed; nothing is written when unchanged."""
    case_id = entry.case if entry.case is not None else cursor.get("case")
    if case_id is None:
        raise ValueError("no case open: pick a run (or press Resume)")
    if entry.value is not None and not isinstance(entry.value, str):
        raise ValueError(f"{entry.key} must be text, got {type(entry.value).__name__}")
    text = entry.value or ""
    current = store.get_annotation(case_id, who)
    if entry.key == "note":
        note = text or None
        if note != (current.note if current else None):
            store.save_annotation(case_id, who, note=note)
    else:
        tags = parse_tags(text)
        if tags != (current.tags if current else []):
            store.save_annotation(case_id, who, tags=tags)


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]
