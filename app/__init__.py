"""glore-app: the GLoRe workbench UI (Gradio). Light at import: gradio loads in create_app."""

from __future__ import annotations


def create_app(*args, **kwargs):
    """See glore_app.main.create_app."""
    from .main import create_app as _create_app

    return _create_app(*args, **kwargs)
