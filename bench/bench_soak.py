"""glore-app under a burst: N concurrent Inspect requests through gradio_client against a server of its own.

    python bench/bench_soak.py [MODELS_FOLDER] [--requests 50] [--rounds 1] [--timeout 300] [--tiny]
                               [--client gradio|http] [--fresh-sessions]

Starts `glore-app` on 127.0.0.1 and a free port (its own store and GLORE_HOME in a temporary folder),
waits until it answers, runs one warm-up request, then fires the burst: every request at once, each
a different synthetic problem. Prints the median, p95 and max latency, the errors (a failed call or
a warning status), the batch sizes the server reports, and the server's RSS before and after; at
the end, the server's log lines on its torch threads and the batches its model worker gathered.
--client http sends each request as two plain HTTP calls (Gradio's `/gradio_api/call/inspect`: a POST,
then the answer's event stream) from threads that do little else: the same requests as
`gradio_client` (the default), at a fraction of its CPU, which on a 2-core machine the server's
batch would otherwise share. Bounded: the whole run stops after --timeout seconds (unanswered requests count as timed out), and
the server is stopped by its PID whatever happens.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from bench_app import free_port, models_folder  # noqa: E402  (after the path set-up above)

from glore_engine.pipeline import CRITIQUE_THRESHOLD  # noqa: E402

BATCH_NOTE = re.compile(r"in a batch of (\d+) requests")
SERVER_NOTE = re.compile(r"torch threads:|model worker: (\d+ request|a batch of)")


@dataclass
class Outcome:
    seconds: float | None  # None: no answer before the deadline
    error: str | None = None
    batch: int = 1


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process so far (this one when pid is None), from /proc (Linux)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def start_server(folder: Path, scratch: Path, max_new_tokens: int, deadline: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "glore_app.main", "--no-browser", "--port", str(port), "--models", str(folder)]
    cmd += ["--db", str(scratch / "soak.db"), "--max-new-tokens", str(max_new_tokens)]
    env = {**os.environ, "GLORE_HOME": str(scratch / "home")}
    log = open(scratch / "server.log", "wb")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"glore-app exited with status {proc.returncode}; see {scratch / 'server.log'}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit("glore-app did not answer before the deadline")


def stop(proc: subprocess.Popen) -> None:
    """Stop our server by its PID: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ask(client, problem, deadline: float, fire: threading.Event) -> Outcome:
    """One Inspect call (the student writes the draft); its latency from submission to answer."""
    fire.wait()
    start = time.perf_counter()
    try:
        job = client.submit(problem.question, problem.answer, "", CRITIQUE_THRESHOLD, api_name="/inspect")
        outputs = job.result(timeout=max(0.1, deadline - time.monotonic()))
    except TimeoutError:
        return Outcome(None, "timed out")
    except Exception as exc:
        return Outcome(time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return _outcome(time.perf_counter() - start, outputs)


class HttpClient:
    """Gradio's HTTP API: POST the inputs, read the event stream to its end. With a session_hash the
    calls belong to one session, as a browser tab's do; without, each call opens a new one."""

    def __init__(self, url: str, session_hash: str | None = None):
        self.url = url.rstrip("/") + "/gradio_api/call/"
        self.session_hash = session_hash

    def call(self, api_name: str, inputs: list, timeout: float) -> list:
        payload: dict = {"data": inputs}
        if self.session_hash:
            payload["session_hash"] = self.session_hash
        url = self.url + api_name
        request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            event_id = json.loads(response.read())["event_id"]
        event = ""
        with urllib.request.urlopen(f"{url}/{event_id}", timeout=timeout) as stream:
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line[len("data: ") :])
                    if event == "error":
                        raise RuntimeError(f"the app answered an error: {data}")
                    return data
        raise RuntimeError("the event stream ended without an answer")

    def inspect(self, inputs: list, timeout: float) -> list:
        return self.call("inspect", inputs, timeout)


def open_sessions(url: str, users: int, deadline: float) -> list[HttpClient]:
    """One client per user, each with its session opened by a cheap first call (picking a problem), as
    a user's page does before they press Inspect: Gradio builds a session's state on its first event,
    about 13 ms of the server's event loop each for this app's components."""
    clients = [HttpClient(url, uuid.uuid4().hex[:12]) for _ in range(users)]
    with ThreadPoolExecutor(min(users, 8)) as pool:
        list(pool.map(lambda c: c.call("pick_problem", [0], max(0.1, deadline - time.monotonic())), clients))
    return clients


def ask_http(client: HttpClient, problem, deadline: float, fire: threading.Event) -> Outcome:
    """The same call as `ask`, through HttpClient."""
    fire.wait()
    start = time.perf_counter()
    try:
        outputs = client.inspect(
            [problem.question, problem.answer, "", CRITIQUE_THRESHOLD], max(0.1, deadline - time.monotonic())
        )
    except TimeoutError:
        return Outcome(None, "timed out")
    except Exception as exc:
        return Outcome(time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return _outcome(time.perf_counter() - start, outputs)


def _outcome(seconds: float, outputs) -> Outcome:
    status = outputs[0] if isinstance(outputs, (list, tuple)) else str(outputs)
    if not str(status).startswith("Done in"):
        return Outcome(seconds, f"status: {str(status)[:120]}")
    batch = BATCH_NOTE.search(status)
    return Outcome(seconds, None, int(batch.group(1)) if batch else 1)


def burst(client, problems, deadline: float) -> tuple[list[Outcome], float]:
    """Every problem at once; `client` is one client for all, or a list of one per problem (a user each)."""
    fire = threading.Event()
    clients = client if isinstance(client, list) else [client] * len(problems)
    with ThreadPoolExecutor(len(problems)) as pool:
        call = ask_http if isinstance(clients[0], HttpClient) else ask
        futures = [pool.submit(call, c, p, deadline, fire) for c, p in zip(clients, problems)]
        time.sleep(0.5)  # every thread waiting at the gate
        start = time.perf_counter()
        fire.set()
        outcomes = [f.result() for f in futures]
    return outcomes, time.perf_counter() - start


def report(outcomes: list[Outcome], wall: float) -> None:
    times = sorted(o.seconds for o in outcomes if o.seconds is not None and o.error is None)
    errors = [o.error for o in outcomes if o.error]
    if times:
        p95 = times[math.ceil(0.95 * len(times)) - 1]
        print(
            f"  latency: median {statistics.median(times):.2f} s, p95 {p95:.2f} s, max {times[-1]:.2f} s "
            f"({len(times)} answered, burst over in {wall:.1f} s)"
        )
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    batches = sorted({o.batch for o in outcomes if o.error is None}, reverse=True)
    print(f"  batch sizes the server reported: {batches}")


def server_notes(log: Path) -> None:
    """The server's own account: its torch thread choices and each batch the model worker gathered."""
    if not log.is_file():
        return
    lines = [line for line in log.read_text(errors="replace").splitlines() if SERVER_NOTE.search(line)]
    for line in lines:
        print(f"  server: {line.split(': ', 1)[-1]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="?", help="model family folder (default: the bundled demo family)")
    p.add_argument("--requests", type=int, default=50, help="concurrent Inspect requests per burst")
    p.add_argument("--rounds", type=int, default=1, help="bursts, one after the other (memory growth)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole run, start to stop")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--tiny", action="store_true", help="a random tiny family (for a smoke run)")
    p.add_argument("--client", choices=("gradio", "http"), default="gradio", help="gradio_client, or plain HTTP calls")
    p.add_argument(
        "--fresh-sessions", action="store_true", help="http: each request opens a new session (else a user's each)"
    )
    args = p.parse_args()
    if args.requests < 1 or args.rounds < 1 or args.timeout <= 0:
        p.error("--requests, --rounds and --timeout must be positive")
    deadline = time.monotonic() + args.timeout
    from gradio_client import Client

    from glore_engine.tasks import generate

    with tempfile.TemporaryDirectory(prefix="glore-soak-") as tmp:
        scratch = Path(tmp)
        folder = models_folder(args, scratch)
        proc, url = start_server(folder, scratch, args.max_new_tokens, deadline)
        try:
            print(f"glore-app pid {proc.pid} at {url} ({folder}); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
            print(f"server RSS after start: {rss_mb(proc.pid):.0f} MB")
            users = None
            if args.client == "http":
                client = HttpClient(url)
                users = None if args.fresh_sessions else open_sessions(url, args.requests, deadline)
                print("users: " + ("a new session per request" if users is None else f"{args.requests} open sessions"))
            else:
                client = Client(url, verbose=False, max_workers=args.requests + 4, download_files=False)
            warm = burst(client, generate("test", 1, seed=99), deadline)
            print(f"warm-up request (loads the models): {warm[1]:.1f} s, errors {sum(bool(o.error) for o in warm[0])}")
            print(f"server RSS before the burst: {rss_mb(proc.pid):.0f} MB")
            for round_ in range(args.rounds):
                problems = generate("test", args.requests, seed=round_)
                print(f"round {round_ + 1}: {args.requests} concurrent Inspect requests")
                cpu = cpu_seconds(), cpu_seconds(proc.pid)
                outcomes, wall = burst(users or client, problems, deadline)
                report(outcomes, wall)
                client_cpu, server_cpu = cpu_seconds() - cpu[0], cpu_seconds(proc.pid) - cpu[1]
                print(f"  CPU seconds in the burst: server {server_cpu:.1f}, this client {client_cpu:.1f}")
                print(f"  server RSS after: {rss_mb(proc.pid):.0f} MB; load {os.getloadavg()[0]:.1f}")
            if not isinstance(client, HttpClient):
                client.close()
        finally:
            stop(proc)
            server_notes(scratch / "server.log")


if __name__ == "__main__":
    main()
