"""Where the store lives and how to connect: url resolution, SQLite pragmas, readable errors."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import Enum
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.pool import StaticPool

from .errors import StoreError

ENV_DB = "GLORE_DB"
ENV_HOME = "GLORE_HOME"
APP_NAME = "glore"


def user_home() -> Path:
    """This user's data folder for the app (~/.local/share/glore on Linux, ~/Library/Application
    Support/glore on macOS, %LOCALAPPDATA%\\glore on Windows): the same whatever folder a command
    starts from, so the CLI and the app see one store."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_home() -> Path:
    """GLORE_HOME, else the user's data folder (user_home); created on first use because the default
    store and the runs' output folders live there."""
    home = Path(os.environ.get(ENV_HOME) or user_home()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def resolve_url(url: str | None = None) -> str:
    """The explicit url, else $GLORE_DB, else sqlite:///<GLORE_HOME>/glore.db; a file path means SQLite."""
    value = url or os.environ.get(ENV_DB)
    if value:
        return as_url(value)
    return f"sqlite:///{(default_home() / 'glore.db').resolve()}"


def as_url(value: str) -> str:
    """A database url as given, or a SQLite file path (anything without '://') as its sqlite url."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def display_url(url: str | URL) -> str:
    """The url as shown in messages, password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return str(url)


def sqlite_path(url: URL) -> Path | None:
    """The database file of a sqlite url; None for other dialects and in-memory databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):  # URI filenames: leave them to sqlite
        return None
    return Path(url.database).expanduser()


def check_sqlite_folder(url: URL) -> None:
    """Fail early, naming the folder, rather than with sqlite's 'unable to open database file'."""
    path = sqlite_path(url)
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise StoreError(f"cannot open run store {display_url(url)}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StoreError(f"cannot open run store {display_url(url)}: {path} is not writable")


def _json_default(value):
    """JSON for what runs hand us in configs and summaries: paths, dataclasses, numpy/torch scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (Path, date)):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy and torch scalars, without importing either
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def dump_json(value) -> str:
    """The store's JSON serializer; default separators, which the tag filter relies on."""
    return json.dumps(value, default=_json_default)


def make_engine(url: str, *, busy_timeout_s: float = 30.0, echo: bool = False) -> Engine:
    """An engine for any SQLAlchemy url; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database url: {url!r} ({exc})") from None
    check_sqlite_folder(parsed)
    kwargs = _sqlite_kwargs(parsed, busy_timeout_s) if parsed.get_backend_name() == "sqlite" else {}
    try:
        engine = create_engine(parsed, echo=echo, json_serializer=dump_json, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot open run store {display_url(parsed)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        _install_sqlite_pragmas(engine, busy_timeout_s)
    return engine


def _sqlite_kwargs(url: URL, busy_timeout_s: float) -> dict:
    """Driver wait on locks; an in-memory database shared by every thread (one connection)."""
    kwargs: dict = {"connect_args": {"timeout": busy_timeout_s}}
    if url.database in (None, "", ":memory:"):
        # The default pool gives each thread its own, empty, in-memory database: the app's worker
        # threads would not see the tables. One shared connection is what a test store wants.
        kwargs["connect_args"]["check_same_thread"] = False
        kwargs["poolclass"] = StaticPool
    return kwargs


def _install_sqlite_pragmas(engine: Engine, busy_timeout_s: float) -> None:
    """WAL lets the app read while a training run writes; FKs are off in SQLite unless asked for."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL is safe with WAL (a power cut may lose the last commits, never corrupts) and
            # spares an fsync per metric row.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        finally:
            cursor.close()


@contextmanager
def readable_errors(url: str | URL) -> Iterator[None]:
    """Turn the driver's locked / cannot-open errors into a StoreError that names the url."""
    try:
        yield
    except OperationalError as exc:
        text = str(exc.orig if exc.orig is not None else exc)
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            raise StoreError(
                f"run store {display_url(url)} is locked by another process (waited for the busy "
                f"timeout); close other writers or retry: {text}"
            ) from exc
        if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
            raise StoreError(f"cannot write run store {display_url(url)}: {text}") from exc
        raise
    except DatabaseError as exc:  # "file is not a database": --db names some other file
        text = str(exc.orig if exc.orig is not None else exc)
        if "not a database" in text or "malformed" in text:
            raise StoreError(
                f"run store {display_url(url)} is not a SQLite database ({text}); pass --db another file"
            ) from exc
        raise
