"""Small gradio helpers shared by the tabs: user-facing errors, run choices, stylesheet and keys."""

from __future__ import annotations

import functools
import logging

import gradio as gr

from glore_db import StoreError
from glore_engine.errors import GloreError

from .render import LATEX_DELIMITERS, plain_text

log = logging.getLogger("glore.app")
EXPECTED = (GloreError, StoreError, KeyError, ValueError, OSError)


def error_text(exc: BaseException) -> str:
    """One line a user can act on; KeyError's repr quotes are dropped."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, EXPECTED):
        return str(exc) or type(exc).__name__
    return f"internal error ({type(exc).__name__}: {exc}); the app keeps running, see its log"


def guarded(n_outputs: int, status_at: int = 0):
    """Turn engine/store errors into a warning toast plus a status line; other outputs stay as they are."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not isinstance(exc, EXPECTED):
                    log.exception("handler %s failed", fn.__name__)
                message = plain_text(error_text(exc))  # messages may quote user input: shown as text
                gr.Warning(message)
                out = [gr.update() for _ in range(n_outputs)]
                out[status_at] = f"⚠️ {message}"
                return out[0] if n_outputs == 1 else tuple(out)

        return inner

    return wrap


EXPECTED_INPUT = {"slider": "a number", "number": "a number", "checkbox": "true or false", "textbox": "text"}


def one_line_input_errors(demo) -> None:
    """A value gradio cannot read for an input (threshold "abc") comes back as one line naming the input,
    not as gradio's anonymous "upstream Gradio app has raised an exception"."""
    import re

    from gradio.exceptions import ComponentProcessingError

    original = demo.process_api

    async def process_api(block_fn, inputs, *args, **kwargs):
        try:
            return await original(block_fn, inputs, *args, **kwargs)
        except ComponentProcessingError as exc:
            fn = demo.fns[block_fn] if isinstance(block_fn, int) else block_fn
            where = re.search(r"preprocess input component at index (\d+)", str(exc))
            if where is None or int(where.group(1)) >= len(inputs):
                log.error("output of %s could not be shown: %s", fn.name, exc)
                raise gr.Error("internal error: the result could not be shown; the app keeps running") from None
            i = int(where.group(1))
            block = fn.inputs[i]
            kind = block.get_block_name()
            value = repr(inputs[i])
            value = value if len(value) <= 80 else value[:80] + "…"
            name = getattr(block, "label", None) or kind
            raise gr.Error(f"{name}: expected {EXPECTED_INPUT.get(kind, f'a {kind} value')}, got {value}") from None

    demo.process_api = process_api


def markdown(value: str = "", **kwargs) -> gr.Markdown:
    """Markdown that renders $...$ maths and keeps our (escaped) HTML tables."""
    return gr.Markdown(value, latex_delimiters=LATEX_DELIMITERS, **kwargs)


def run_choices(store, with_cases: bool = True) -> list[tuple[str, int]]:
    """(label, run id) of the store's runs, newest first; with_cases keeps runs that hold eval cases."""
    choices = []
    for run in store.list_runs(limit=200):
        n = store.count_cases(run.id) if with_cases else None
        if with_cases and not n:
            continue
        extra = f", {n} cases" if n else ""
        choices.append((f"#{run.id} {run.kind}{' ' + run.name if run.name else ''} ({run.status}{extra})", run.id))
    return choices


def store_name(store) -> str:
    """The store as shown to users: its url, password hidden."""
    from glore_db import display_url

    return display_url(store.url)


def pick_run_text(store, choices: list | None = None) -> str:
    """What Results and Annotate say with no run picked: pick one, or, on a store without any, how to
    make one."""
    if choices is None:
        choices = run_choices(store)
    if choices:
        return "Pick an evaluation run."
    return (
        f"No evaluation runs with cases in this store ({plain_text(store_name(store))}) yet. Make one with "
        "`glore-train eval --limit 100`, or bring drafts from another model with `glore-train import FILE`; "
        "then press Refresh."
    )


def logged_in_user(request: gr.Request | None) -> str | None:
    """The user who logged in (with --auth), else None."""
    return getattr(request, "username", None) or None


def annotator_name(request: gr.Request):
    """The Annotator box on page load: the logged-in user, fixed (with --auth); else "default", free."""
    user = logged_in_user(request)
    return gr.update(value=user, interactive=False) if user else "default"


def annotator_for(request: gr.Request | None, given) -> str:
    """Who an API call annotates as: the logged-in user (another name is refused), else the name given."""
    from glore_db.annotations import check_annotator

    user = logged_in_user(request)
    if user is None:
        return check_annotator(given)
    if given in (None, "", "default") or (isinstance(given, str) and given.strip() == user):
        return user
    raise ValueError(f"logged in as {user!r}: annotations are saved under that name, not {given!r}")


def as_int(value):
    """A component value (number, float, str or None) as an int or None; 1.5 or "abc" is refused."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


CSS = """
.glore-steps, .glore-difftable { border-collapse: collapse; width: 100%; }
.glore-steps td, .glore-steps th, .glore-difftable td { padding: 4px 8px; vertical-align: top; }
.glore-steps th { white-space: nowrap; word-break: normal; }
.glore-card { border: 1px solid #ccc; border-radius: 8px; padding: 8px 10px; height: 100%; }
.glore-del { background: #fcefd2; text-decoration: line-through; }
.glore-ins { background: #dcebf5; text-decoration: underline; }
.glore-legend { margin-bottom: 6px; }
.glore-legend .glore-badge { margin-right: 10px; }
"""

# The Annotate tab's page side (see app/actions.py): every action (a shortcut key, a button, a note or
# tags edit, leaving those fields) gets the next sequence number and joins the log of actions the
# server has not confirmed; the hidden apply button sends that whole log (gradio keeps one request
# in flight and sends again with the latest log when it ends); the hidden sync box says how far the
# server got. Keys apply only while the Annotate tab shows and the focus is not in a text field.
SHORTCUTS = {
    "n": "next case",
    "p": "previous case",
    "r": "resume",
    "g": "+1 good",
    "o": "0 okay",
    "b": "−1 bad",
    "u": "unsure",
    "c": "clear rating",
    "f": "first error here",
    "x": "no error",
    "j": "step down",
    "k": "step up",
    "1": "found error",
    "2": "solution",
    "3": "bad problem",
    "4": "give up",
}
_KEYS_JS = ", ".join(f"'{k}'" for k in SHORTCUTS)
JS = f"""
() => {{
  const keys = new Set([{_KEYS_JS}]);
  const log = [];
  let seq = 0, sentAt = 0;
  const box = (id) => {{ const el = document.getElementById(id); return el && el.querySelector('textarea, input'); }};
  const sync = () => {{ try {{ return JSON.parse((box('ann-sync') || {{}}).value || '{{}}'); }} catch (e) {{ return {{}}; }} }};
  const trim = () => {{ const done = sync().applied || 0; while (log.length && log[0].s <= done) log.shift(); }};
  const send = () => {{
    trim();
    const el = document.getElementById('ann-apply');
    const button = el && (el.tagName === 'BUTTON' ? el : el.querySelector('button'));
    if (!log.length || !button) return;
    sentAt = Date.now();
    button.click();
  }};
  const press = (key, value) => {{
    const shown = sync().case ?? null;
    if (key === 'note' || key === 'tags') {{
      const older = log.findIndex((e) => e.k === key && e.case === shown);
      if (older >= 0) log.splice(older, 1);  // the newer text replaces an unconfirmed one
    }}
    const who = box('ann-annotator');
    log.push({{s: ++seq, k: key, v: value === undefined ? null : value, who: who ? who.value : '', case: shown}});
    send();
  }};
  window.gloreAnnotate = {{
    press,
    pending: () => {{ trim(); return JSON.stringify(log); }},
    value: (id) => {{ const el = box(id); return el ? el.value : null; }},
  }};
  setInterval(() => {{ trim(); if (log.length && Date.now() - sentAt > 3000) send(); }}, 1000);
  document.addEventListener('keydown', (event) => {{
    if (event.ctrlKey || event.metaKey || event.altKey || !keys.has(event.key)) return;
    const target = event.target || {{}};
    const tag = (target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || target.isContentEditable) return;
    const tab = document.getElementById('ann-next');
    if (!tab || tab.offsetParent === null) return;
    event.preventDefault();
    press(event.key);
  }});
  const onText = (event) => {{
    const target = event.target;
    if (!target || (target.tagName !== 'TEXTAREA' && target.tagName !== 'INPUT')) return;
    for (const key of ['note', 'tags']) {{
      const field = document.getElementById('ann-' + key);
      if (field && field.contains(target)) press(key, target.value);
    }}
  }};
  for (const type of ['input', 'change', 'focusout']) document.addEventListener(type, onText, true);
}}
"""
