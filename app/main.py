"""`glore-app`: the GLoRe workbench in the browser (Inspect, Results, Annotate, Runs, Export).

Binds 127.0.0.1 by default, never shares, sends no analytics and asks no outside host for anything.
A host counts as this machine only if every address it resolves to is a loopback address (and the
app then binds that address, not the name); any other needs --auth, whose failed logins are
throttled per client address (app/login.py). gradio, torch and transformers are imported only after
the flags are read, so `glore-app --help` is fast.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from glore_engine.pipeline import CRITIQUE_THRESHOLD

OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
THREADS_BESIDE_BATCH = 40  # gradio's default handler threads, kept for everything but Inspect
EXPORT_CACHE = (3600, 3600)  # gradio's copies of downloads: checked hourly, removed after an hour
CONFIG_KEYS = ("host", "port", "db", "models", "data", "auth", "threshold", "max_new_tokens", "browser")
DEFAULTS = {
    "host": "127.0.0.1",
    "port": None,
    "db": None,
    "models": None,
    "data": None,
    "auth": None,
    "threshold": CRITIQUE_THRESHOLD,
    "max_new_tokens": 256,
    "browser": True,
}


def offline_env() -> None:
    """No telemetry, no hub: set before gradio or transformers is imported (a user's own value wins)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def create_app(
    models_folder: str | Path | None = None,
    db_url: str | None = None,
    data: str | None = None,
    *,
    threshold: float = CRITIQUE_THRESHOLD,
    max_new_tokens: int = 256,
):
    """The workbench as a gr.Blocks (queued; launch it with launch_app for the stylesheet and keys).

    models_folder: a family folder; None: the bundled demo family if present, else Inspect explains
    how to get one. db_url: a SQLAlchemy url or a sqlite file path; None: $GLORE_DB or the default store.
    data: a GSM8K-format JSONL file to pick problems from; None: the synthetic test split.
    """
    offline_env()
    import gradio as gr

    from . import annotate_tab, api, export_tab, import_tab, inspect_tab, results_tab, runs_tab
    from .render import plain_text
    from .state import Workbench, resolve_models
    from .ui import annotator_name, one_line_input_errors

    bench = Workbench(resolve_models(models_folder), db_url, data, max_new_tokens=max_new_tokens, threshold=threshold)
    with gr.Blocks(title="GLoRe workbench", analytics_enabled=False, delete_cache=EXPORT_CACHE) as demo:
        gr.Markdown("## GLoRe workbench · *when, where and how* to refine a maths draft")
        task = bench.task()
        if task:
            with gr.Accordion("What these models know (and an example problem to copy)", open=True):
                gr.Markdown(f"**Trained task:** {plain_text(task['description'])}.", elem_id="app-task")
                gr.Textbox(
                    value=task["example_problem"],
                    label="Example problem (copy it into Inspect)",
                    interactive=False,
                    buttons=["copy"],
                    elem_id="app-example-problem",
                )
        with gr.Tabs() as tabs:
            with gr.Tab("Inspect", id="inspect"):
                inspect = inspect_tab.build(bench)
            with gr.Tab("Results", id="results"):
                results = results_tab.build(bench, inspect, tabs)
            with gr.Tab("Annotate", id="annotate"):
                annotate = annotate_tab.build(bench)
            with gr.Tab("Import", id="import"):
                import_tab.build(bench, [results.run, annotate.run])
            with gr.Tab("Runs", id="runs"):
                runs = runs_tab.build(bench)
            with gr.Tab("Export", id="export"):
                export = export_tab.build(bench)
        for tab in (results, annotate, runs, export):
            demo.load(tab.refresh, None, tab.refresh_outputs, api_visibility="private")
        demo.load(annotator_name, None, annotate.annotator, api_visibility="private")
        api.register(bench)
    demo.queue(default_concurrency_limit=8)
    one_line_input_errors(demo)
    demo.workbench = bench
    demo.exports = export.folder  # where the Export tab writes (newest few kept, removed at exit)
    return demo


def launch_app(
    demo,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth: tuple[str, str] | None = None,
    open_browser: bool = False,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
):
    """Launch with the app's stylesheet and keyboard shortcuts; share=False, no SSR, no MCP, no PWA.

    The bound address is the one check_bind resolved, so a name cannot change in between; with auth,
    failed logins are throttled per client address.
    """
    address = check_bind(host, auth)
    from starlette.middleware import Middleware

    from .login import LoginThrottleMiddleware
    from .ui import CSS, JS

    return demo.launch(
        server_name=address,
        server_port=port,
        share=False,
        inbrowser=open_browser,
        auth=auth,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        css=CSS,
        js=JS,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        show_error=False,
        footer_links=["api", "settings"],
        max_threads=THREADS_BESIDE_BATCH + demo.workbench.max_batch,  # a full Inspect batch waits, the rest runs
        app_kwargs={"middleware": [Middleware(LoginThrottleMiddleware)]} if auth else None,
    )


def load_then_freeze(workbench) -> None:
    """Load the models, then move every object alive into the collector's permanent generation.

    Why: the app holds millions of long-lived objects (torch, transformers, gradio's components);
    every full collection scanned them all, 0.2-0.3 s with the GIL held (a gc callback in the
    server logged them), and one that fell inside a burst of Inspect requests stalled the HTTP
    handling and the model threads alike. Frozen objects are not scanned again; new ones still are.
    """
    workbench.preload()
    gc.collect()
    gc.freeze()


class UsageError(Exception):
    """A bad flag or config value: printed as one line, exit status 2."""


def check_bind(host: str, auth) -> str:
    """The address to bind: the loopback address `host` resolves to, or `host` itself with auth."""
    addresses = resolve(host)
    if _all_loopback(addresses):
        return next((a for a in addresses if "." in a), addresses[0])  # IPv4 first, as uvicorn would
    if not auth:
        where = ", ".join(addresses) if addresses else "an address that does not resolve"
        raise UsageError(f"binding {host} ({where}) exposes the app beyond this machine: add --auth user:password")
    return host


def resolve(host: str) -> list[str]:
    """Every address a host name (or literal address) resolves to; [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))


def is_loopback(host: str) -> bool:
    """Every address the host resolves to is a loopback address (a name like "127.evil.example" is not)."""
    return _all_loopback(resolve(host))


def _all_loopback(addresses: list[str]) -> bool:
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def parse_auth(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise UsageError("--auth takes user:password (both non-empty)")
    return user, password


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glore-app", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others need --auth)")
    p.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    p.add_argument(
        "--db",
        help="run store: a SQLAlchemy url or a sqlite file (default $GLORE_DB, else glore.db in $GLORE_HOME, "
        "else in this user's data folder)",
    )
    p.add_argument(
        "--models",
        help="model family folder with student/ orm/ sorm/ refiner-global/ refiner-local/ "
        "(default: the bundled demo models)",
    )
    p.add_argument("--data", help="GSM8K-format JSONL file to pick problems from (default: synthetic test split)")
    p.add_argument("--auth", help="user:password required to open the app")
    p.add_argument("--threshold", type=float, help=f"initial SORM/ORM threshold (default {CRITIQUE_THRESHOLD})")
    p.add_argument("--max-new-tokens", type=int, dest="max_new_tokens", help="generation limit (default 256)")
    p.add_argument("--config", help="YAML file with any of: " + ", ".join(CONFIG_KEYS) + " (flags override it)")
    p.add_argument("--no-browser", dest="browser", action="store_const", const=False, help="do not open a browser tab")
    return p


def settings(argv: Sequence[str] | None = None) -> dict:
    """defaults < --config file < flags; unknown config keys fail."""
    args = vars(parser().parse_args(argv))
    merged = dict(DEFAULTS)
    merged.update(read_config(args.pop("config")))
    merged.update({k: v for k, v in args.items() if v is not None})
    merged["auth"] = parse_auth(merged["auth"])
    check_bind(merged["host"], merged["auth"])
    return merged


def read_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config {path} must be a mapping of keys to values")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(f"config {path}: unknown key(s) {unknown}; known: {', '.join(CONFIG_KEYS)}")
    return {k: str(v) if k == "auth" and v is not None else v for k, v in data.items()}


def main(argv: Sequence[str] | None = None) -> int:
    offline_env()
    try:
        opts = settings(argv)
    except UsageError as exc:
        print(f"glore-app: error: {exc}", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from glore_engine.errors import ConfigError
    from glore_engine.runtime import configure

    try:
        configure()  # torch threads from the idle cores (or GLORE_THREADS), before any model loads
    except ConfigError as exc:
        print(f"glore-app: error: {exc}", file=sys.stderr)
        return 2
    demo = create_app(
        opts["models"],
        opts["db"],
        opts["data"],
        threshold=float(opts["threshold"]),
        max_new_tokens=int(opts["max_new_tokens"]),
    )
    print(f"glore-app: store {demo.workbench.store_name()}", flush=True)
    launch_app(
        demo, opts["host"], opts["port"], opts["auth"], open_browser=bool(opts["browser"]), prevent_thread_lock=True
    )
    threading.Thread(target=load_then_freeze, args=(demo.workbench,), name="glore-preload", daemon=True).start()
    try:
        demo.block_thread()
    finally:
        demo.workbench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
