"""What every glore-train command shares: config flags from dataclasses, the store, runs, errors.

Heavy libraries (torch, transformers) are imported inside commands, so `--help` stays fast.
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import typing
from pathlib import Path

import click

_FLAG_TYPES = {int: int, float: float, str: str, bool: bool}


def _click_type(hint):
    origin = typing.get_origin(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if args else str
    return _FLAG_TYPES.get(hint, str)


def config_options(cls, skip: tuple[str, ...] = ()):
    """Add `--config FILE` and one `--field-name` flag per dataclass field (flags win over the file)."""
    hints = typing.get_type_hints(cls)

    def decorate(fn):
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            kind = _click_type(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else "required"
            flag = "--" + f.name.replace("_", "-")
            if kind is bool:
                decl = f"{flag}/--no-{f.name.replace('_', '-')}"
                fn = click.option(decl, f.name, default=None, help=f"default: {default}")(fn)
            else:
                fn = click.option(flag, f.name, type=kind, default=None, help=f"default: {default}")(fn)
        fn = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                          help="YAML file of config keys (flags override it)")(fn)
        return fn

    return decorate


def resolve_config(cls, config_file, flags: dict, extra: dict | None = None):
    """defaults < --config file < flags; unknown keys in the file fail."""
    from glore_engine.config import build, read_yaml

    names = {f.name for f in dataclasses.fields(cls)}
    return build(cls, extra, read_yaml(config_file), {k: v for k, v in flags.items() if k in names})


def pop_config_flags(cls, kwargs: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}


def open_store(ctx: click.Context):
    from db import Store

    obj = ctx.ensure_object(dict)
    if "store" not in obj:
        obj["store"] = Store(obj.get("db"))
    return obj["store"]


def run_dir(run_id: int, kind: str, out: str | None) -> Path:
    """An explicit --out, else <GLORE_HOME>/runs/<id>-<kind>."""
    from db import default_home

    path = Path(out) if out else default_home() / "runs" / f"{run_id:04d}-{kind}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def engine_ready() -> None:
    """Allocator and logging settings before any heavy work."""
    from glore_engine.runtime import configure

    configure()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def friendly_errors(fn):
    """GloreError / StoreError -> one red line and exit 1; Ctrl-C -> exit 130 (the run is INTERRUPTED)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from db.errors import StoreError
        from glore_engine.errors import GloreError

        try:
            return fn(*args, **kwargs)
        except (GloreError, StoreError) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted: the run is marked INTERRUPTED; rerun with --resume to continue",
                        fg="yellow", err=True)
            sys.exit(130)

    return wrapper


def echo_metrics(title: str, metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)
