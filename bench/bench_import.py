"""`glore-train import` throughput: N drafts (synthetic problems, gold solutions with every third
answer made wrong) read, split, graded and stored in a fresh SQLite store; optionally scored too.

    python bench/bench_import.py [--n 5000] [--score N]

--score N also imports the first N drafts scored with the bundled ORM and SORM. Prints measured
figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def drafts_file(path: Path, n: int) -> Path:
    from glore_engine.drafts import write_drafts
    from glore_engine.tasks.synthetic import generate

    rows = []
    for i, p in enumerate(generate("test", n, seed=7)):
        lines = p.solution.splitlines()
        if i % 3 == 0:  # a wrong final answer: graded False
            lines[-1] = f"#### {int(lines[-1][5:]) + 1}"
        rows.append({"id": p.id, "question": p.question, "draft": "\n".join(lines), "gold": p.answer, "model": "bench"})
    write_drafts(rows, path)
    return path


def import_once(path: Path, scratch: Path, scorers=None) -> tuple[float, object]:
    from glore_db import Store
    from glore_engine.drafts import import_drafts

    url = f"sqlite:///{scratch / f'bench-{time.monotonic_ns()}.db'}"
    with Store(url) as store:
        started = time.perf_counter()
        with store.run("import", name=path.name) as run:
            report = import_drafts(path, run, scorers)
        seconds = time.perf_counter() - started
        assert store.count_cases(run.id) == report.imported
    return seconds, report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--score", type=int, default=0, help="also import this many drafts scored by the bundled family")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        path = drafts_file(scratch / "drafts.jsonl", args.n)
        seconds, report = import_once(path, scratch)
        print(
            f"unscored: {report.imported} drafts imported in {seconds:.1f} s "  # type: ignore[attr-defined]
            f"({report.imported / seconds:,.0f} drafts/s; {report.correct} of {report.graded} graded correct)"  # type: ignore[attr-defined]
        )
        if args.score:
            from glore_engine.bundled import require_bundle
            from glore_engine.drafts import load_scorers
            from glore_engine.runtime import configure

            configure()
            scorers = load_scorers(str(require_bundle()))
            small = drafts_file(scratch / "scored.jsonl", args.score)
            seconds, report = import_once(small, scratch, scorers)
            print(
                f"scored (bundled ORM + SORM): {report.imported} drafts in {seconds:.1f} s "  # type: ignore[attr-defined]
                f"({report.imported / seconds:,.0f} drafts/s)"  # type: ignore[attr-defined]
            )


if __name__ == "__main__":
    main()
