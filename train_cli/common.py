"""What every glore-train command shares: config flags from dataclasses, the store, runs, errors.

Heavy libraries (torch, transformers) are imported inside commands, so `--help` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import typing
from contextlib import contextmanager
from pathlib import Path

import click

from .knobs import knob_help

_FLAG_TYPES = {int: int, float: float, str: str, bool: bool}


def _click_type(hint):
    origin = typing.get_origin(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if args else str
    return _FLAG_TYPES.get(hint, str)


def config_options(cls, skip: tuple[str, ...] = (), prefix: str = "", with_file: bool = True):
    """Add one `--[prefix-]field-name` flag per dataclass field, and `--config FILE` (flags win over it)."""
    hints = typing.get_type_hints(cls)
    dest_prefix = prefix.replace("-", "_") + "__" if prefix else ""

    def decorate(fn):
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            kind = _click_type(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else "required"
            default = "none" if default == "" else default
            name = (prefix + "-" if prefix else "") + f.name.replace("_", "-")
            dest = dest_prefix + f.name
            decl = f"--{name}/--no-{name}" if kind is bool else f"--{name}"
            about = knob_help(cls, f.name)
            shown = f"{about} (default: {default})" if about else f"default: {default}"
            fn = click.option(decl, dest, type=None if kind is bool else kind, default=None, help=shown)(fn)
        if with_file:
            fn = click.option(
                "--config",
                "config_file",
                type=click.Path(dir_okay=False),
                help="YAML file of config keys (flags override it)",
            )(fn)
        return fn

    return decorate


def resolve_config(
    cls, config_file, flags: dict, extra: dict | None = None, section: str | None = None, sections: tuple[str, ...] = ()
):
    """defaults < extra < --config file < flags; unknown keys fail.

    A file may hold sub-configs as mappings (`sample:`, `label:`): `section` reads one of them,
    and the main config skips the names in `sections`.
    """
    from glore_engine.config import build, read_yaml
    from glore_engine.errors import ConfigError

    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in flags.items() if k in names}
    data: dict = {}
    try:  # everything wrong with a config, in the file or in a flag, is a usage error (exit 2)
        data = read_yaml(config_file)
        data = {k: v for k, v in data.items() if k not in sections}
        if section is not None:
            data = read_yaml(config_file).get(section) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"config section {section!r} must be a mapping")
        return build(cls, extra, data, given)
    except ConfigError as exc:
        in_file = given.get(exc.key) is None and exc.key in data
        raise usage_error(exc, section, from_file=config_file if in_file else None) from None


def usage_error(exc, section: str | None = None, from_file: str | None = None) -> click.UsageError:
    """A config value out of bounds as Click's usage error (exit 2), naming the flag or the file key."""
    key = getattr(exc, "key", None)
    if key is None:
        return click.UsageError(str(exc))
    flag = "--" + (f"{section}-" if section else "") + key.replace("_", "-")
    hint = f"'{section + '.' if section else ''}{key}' in {from_file}" if from_file else f"'{flag}'"
    message = str(exc).removeprefix(f"{key} ")  # "must be at least 1, got 0"
    return click.BadParameter(message, param_hint=hint)


@contextlib.contextmanager
def flag_errors(section: str | None = None) -> typing.Iterator[None]:
    """Configs built from flags alone: an out-of-bounds value is a usage error naming the flag."""
    from glore_engine.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise usage_error(exc, section) from None


def pop_config_flags(cls, kwargs: dict, prefix: str = "") -> dict:
    """Remove this config's flags from a command's kwargs (prefix stripped)."""
    dest_prefix = prefix.replace("-", "_") + "__" if prefix else ""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for key in list(kwargs):
        if key.startswith(dest_prefix) and key[len(dest_prefix) :] in names:
            out[key[len(dest_prefix) :]] = kwargs.pop(key)
    return out


def open_store(ctx: click.Context):
    """The run store of this invocation, opened once; says which one on stderr (stdout stays data)."""
    from glore_db import Store, display_url

    obj = ctx.ensure_object(dict)
    if "store" not in obj:
        obj["store"] = Store(obj.get("db"))
        click.echo(f"store: {display_url(obj['store'].url)}", err=True)
    return obj["store"]


@contextmanager
def open_run(ctx: click.Context, kind: str, name: str | None = None, config: dict | None = None, **kwargs):
    """The store's run on rank 0; on the other ranks of a multi-process launch, a follower with the
    same id that records nothing (one run per job, and the store is opened by one process only)."""
    from glore_engine import distributed

    if distributed.is_main():
        with open_store(ctx).run(kind, name=name, config=config, **kwargs) as run:
            distributed.broadcast(run.id)
            yield run
    else:
        yield FollowerRun(distributed.broadcast(None))


class FollowerRun:
    """A non-main rank's run handle: the main rank's run id; metrics, artifacts and children go nowhere."""

    def __init__(self, run_id: int):
        from glore_engine.tracking import NullTracker

        self.id = run_id
        self._null = NullTracker()

    def __getattr__(self, name: str):
        return getattr(self._null, name)  # log_metric, log_artifact, set_summary, log_cases, child

    def set_output_dir(self, path) -> None:
        pass


def one_process(command: str) -> None:
    """Commands that do not split their work yet: refused under a multi-process launch (each rank
    would do the whole job) rather than run n times."""
    from glore_engine import distributed

    if distributed.world_size() > 1:
        raise click.UsageError(f"{command} runs in one process: launch it without torchrun / accelerate launch")


def echo(message: str, **style) -> None:
    """click.echo (secho with style) on the main process only: one line per job, not per rank."""
    from glore_engine import distributed

    if distributed.is_main():
        click.secho(message, **style)


def run_dir(run_id: int, kind: str, out: str | None) -> Path:
    """An explicit --out, else <GLORE_HOME>/runs/<id>-<kind>."""
    from glore_db import default_home

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
        from glore_db.errors import StoreError
        from glore_engine.errors import GloreError

        try:
            return fn(*args, **kwargs)
        except (GloreError, StoreError) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except OSError as exc:  # a full disk, a read-only folder: the run is FAILED, finished work is kept
            import errno

            where = f" ({exc.filename})" if exc.filename else ""
            what = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror or str(exc)
            click.secho(
                f"error: {what}{where}; finished shards and checkpoints are kept, rerun with --resume",
                fg="red",
                err=True,
            )
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho(
                "interrupted: the run is marked INTERRUPTED; rerun with --resume to continue", fg="yellow", err=True
            )
            sys.exit(130)

    return wrapper


def echo_metrics(title: str, metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, show_number(value))
    Console().print(table)


def show_number(value) -> str:
    """A metric for the terminal; an undefined one (None, NaN: an AUC over one class) is "-", never 0."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
