"""Small gradio helpers shared by the tabs: user-facing errors, run choices, stylesheet and keys."""

from __future__ import annotations

import functools
import logging

import gradio as gr

from glore_db import StoreError
from glore_engine.errors import GloreError

from .render import LATEX_DELIMITERS

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
                message = error_text(exc)
                gr.Warning(message)
                out = [gr.update() for _ in range(n_outputs)]
                out[status_at] = f"⚠️ {message}"
                return out[0] if n_outputs == 1 else tuple(out)

        return inner

    return wrap


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


def annotator_name(request: gr.Request) -> str:
    """The logged-in user (with --auth) annotates under their name; else "default"."""
    return getattr(request, "username", None) or "default"


def as_int(value):
    """A component value (number, float, str or None) as an int or None."""
    if value is None or value == "":
        return None
    return int(float(value))


CSS = """
.glore-steps, .glore-difftable { border-collapse: collapse; width: 100%; }
.glore-steps td, .glore-steps th, .glore-difftable td { padding: 4px 8px; vertical-align: top; }
.glore-card { border: 1px solid #ccc; border-radius: 8px; padding: 8px 10px; height: 100%; }
.glore-del { background: #fcefd2; text-decoration: line-through; }
.glore-ins { background: #dcebf5; text-decoration: underline; }
.glore-legend { margin-bottom: 6px; }
.glore-legend .glore-badge { margin-right: 10px; }
"""

# One keydown handler for the Annotate tab's shortcuts: it clicks the button whose label shows the
# key, only when that button is visible and the focus is not in a text field.
SHORTCUTS = {
    "n": "ann-next",
    "p": "ann-prev",
    "r": "ann-resume",
    "g": "ann-good",
    "o": "ann-okay",
    "b": "ann-bad",
    "u": "ann-unsure",
    "c": "ann-clear",
    "f": "ann-first-error",
    "x": "ann-no-error",
    "j": "ann-step-down",
    "k": "ann-step-up",
    "1": "ann-verdict-found_error",
    "2": "ann-verdict-solution",
    "3": "ann-verdict-bad_problem",
    "4": "ann-verdict-give_up",
}
_KEYS_JS = ", ".join(f"'{k}': '{v}'" for k, v in SHORTCUTS.items())
JS = f"""
() => {{
  const keys = {{{_KEYS_JS}}};
  document.addEventListener('keydown', (event) => {{
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target || {{}};
    const tag = (target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || target.isContentEditable) return;
    const id = keys[event.key];
    if (!id) return;
    const el = document.getElementById(id);
    const button = el && (el.tagName === 'BUTTON' ? el : el.querySelector('button'));
    if (!button || button.offsetParent === null) return;
    event.preventDefault();
    button.click();
  }});
}}
"""
