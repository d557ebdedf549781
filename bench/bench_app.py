"""glore-app timings: a full Inspect (draft, scores, two refinements, rerank, rendering) over synthetic
problems, and how long `glore-app` takes until it answers HTTP.

    python bench/bench_app.py [MODELS_FOLDER] [--n 20] [--tiny] [--batch 50]

MODELS_FOLDER defaults to the bundled demo family; --tiny builds a random tiny family instead (the
test fixture: gibberish text, real shapes). Prints measured figures only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def models_folder(args, scratch: Path) -> Path:
    if args.tiny:
        from glore_engine.testing import make_tiny_family

        return make_tiny_family(scratch / "tiny-family")
    from glore_app.state import resolve_models
    from glore_engine.family import missing_members

    folder = resolve_models(args.models)
    if folder is None or missing_members(folder):
        sys.exit(
            f"no model family at {args.models or 'the bundle'}: train one with `glore-train demo`, "
            "pass a folder, or use --tiny"
        )
    return folder


def bench_inspect(folder: Path, n: int, max_new_tokens: int) -> None:
    from glore_app.render import inspect_view
    from glore_app.state import Workbench
    from glore_engine.tasks import generate

    bench = Workbench(folder, max_new_tokens=max_new_tokens)
    start = time.perf_counter()
    bench.preload()
    load_s = time.perf_counter() - start
    times, steps = [], []
    for problem in generate("test", n):
        start = time.perf_counter()
        result = bench.inspect(problem.question, gold=problem.answer)
        inspect_view(result)
        times.append(time.perf_counter() - start)
        steps.append(len(result.draft.steps))
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"models loaded once in           {load_s:6.2f} s  ({folder})")
    print(
        f"full Inspect, median of {n:3d}     {statistics.median(times):6.2f} s  "
        f"(min {times[0]:.2f}, p90 {p90:.2f}, max {times[-1]:.2f}; drafts of {statistics.mean(steps):.1f} steps)"
    )


def bench_batch(folder: Path, n: int, max_new_tokens: int) -> None:
    """The same n problems one at a time and as one pipeline batch (what the app's worker runs for n
    waiting requests)."""
    from glore_app.state import Workbench
    from glore_engine.tasks import generate

    bench = Workbench(folder, max_new_tokens=max_new_tokens)
    bench.preload()
    pipeline = bench.pipeline()
    problems = generate("test", n, seed=1)
    start = time.perf_counter()
    for p in problems:
        pipeline.run_batch([p.question], [p.answer])
    alone = time.perf_counter() - start
    start = time.perf_counter()
    pipeline.run_batch([p.question for p in problems], [p.answer for p in problems])
    batched = time.perf_counter() - start
    print(f"{n} problems one at a time         {alone:6.2f} s  ({alone / n:.2f} s a problem)")
    print(
        f"{n} problems as one batch          {batched:6.2f} s  ({batched / n:.2f} s a problem, x{alone / batched:.1f})"
    )


def bench_startup(folder: Path, scratch: Path, timeout_s: float = 120.0) -> None:
    """Seconds from starting `glore-app` until its page answers HTTP 200 (the process is ours: stopped by PID)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "glore_app.main",
        "--no-browser",
        "--port",
        str(port),
        "--models",
        str(folder),
        "--db",
        str(scratch / "bench.db"),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout_s:
            if proc.poll() is not None:
                sys.exit(f"glore-app exited early with status {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        print(f"glore-app answers HTTP after    {time.perf_counter() - start:6.2f} s")
                        return
            except OSError:
                time.sleep(0.1)
        print(f"glore-app did not answer within {timeout_s:.0f} s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="?", help="model family folder (default: the bundled demo family)")
    p.add_argument("--n", type=int, default=20, help="synthetic test problems to inspect")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--tiny", action="store_true", help="a random tiny family (for a smoke run)")
    p.add_argument("--skip-startup", action="store_true")
    p.add_argument("--batch", type=int, default=0, help="also time one pipeline batch of this many problems")
    args = p.parse_args()
    from glore_engine.runtime import configure

    print(f"torch threads: {configure()}")  # as glore-app chooses them
    with tempfile.TemporaryDirectory(prefix="glore-bench-app-") as tmp:
        scratch = Path(tmp)
        folder = models_folder(args, scratch)
        if not args.skip_startup:
            bench_startup(folder, scratch)
        bench_inspect(folder, args.n, args.max_new_tokens)
        if args.batch:
            bench_batch(folder, args.batch, args.max_new_tokens)


if __name__ == "__main__":
    main()
