"""Errors the store raises with messages a user can act on (name the database url, say what to do)."""


class StoreError(Exception):
    """The run store cannot be opened or written: missing folder, locked database, bad url.

    Deliberately not a subclass of glore_engine.errors.GloreError: `db` never imports the engine.
    The CLI and the app print it as one line, like a GloreError.
    """
