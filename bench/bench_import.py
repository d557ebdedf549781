"""`glore-train import` throughput: N drafts (synthetic test problems; a third right, a third with
the final answer one off, a third with the first step's result one off) read, split, graded and
stored in a fresh SQLite store; optionally scored too.

    python bench/bench_import.py [--n 5000] [--score N]
    python bench/bench_import.py --n 60 --write drafts.jsonl [--plain]

--score N also imports N drafts scored with the bundled ORM and SORM. --write only writes the
drafts and their first-error labels (ProcessBench rows, known by construction) beside them; --plain
writes them as another model might: no calculator annotations, "The answer is N." as the last line.
Prints measured figures only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from glore_engine.tasks.steps import split_steps


def slipped(step: str) -> str:
    """The step with its result one off (the last time the result appears in it)."""
    from glore_engine.tasks.steps import step_result

    result = step_result(step)
    head, _, tail = step.rpartition(result or "")
    return f"{head}{int(result) + 1}{tail}" if result and result.isdigit() and head else step


def plain(solution_lines: list[str]) -> list[str]:
    """Another model's style: no calculator annotations, "The answer is N." instead of "#### N"."""
    out = [re.sub(r"<<[^<>]*>>", "", line) for line in solution_lines if not line.startswith("####")]
    answer = solution_lines[-1].removeprefix("####").strip()
    return out + [f"The answer is {answer}."]


def drafts_and_labels(n: int, plain_style: bool = False) -> tuple[list[dict], list[dict]]:
    """Drafts of synthetic test problems, a third each: right, final answer one off, first step slipped;
    and their ProcessBench labels (first wrong step, known by construction)."""
    from glore_engine.tasks.synthetic import generate

    rows, labels = [], []
    for i, p in enumerate(generate("test", n, seed=7)):
        lines = p.solution.splitlines()
        label = -1
        if i % 3 == 1:  # a wrong final answer: the last step (merged with its "####" line) is the error
            lines[-1] = f"#### {int(lines[-1][5:]) + 1}"
            label = len(lines) - 2
        elif i % 3 == 2:
            lines[0], label = slipped(lines[0]), 0
        steps = plain(lines) if plain_style else lines
        if plain_style and label == len(lines) - 2:
            label = len(steps) - 1  # the answer sentence is its own step there
        rows.append({"id": p.id, "question": p.question, "draft": "\n".join(steps), "gold": p.answer, "model": "bench"})
        labels.append({"id": p.id, "problem": p.question, "steps": split_steps("\n".join(steps)), "label": label})
    return rows, labels


def drafts_file(path: Path, n: int) -> Path:
    from glore_engine.drafts import write_drafts

    write_drafts(drafts_and_labels(n)[0], path)
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
    p.add_argument("--write", help="only write N drafts to this JSONL and their ProcessBench labels beside it")
    p.add_argument("--plain", action="store_true", help="--write: drafts without annotations or '####' line")
    args = p.parse_args()
    if args.write:
        from glore_engine.drafts import write_drafts

        rows, labels = drafts_and_labels(args.n, args.plain)
        out = Path(args.write)
        write_drafts(rows, out)
        write_drafts(labels, out.with_suffix(".labels.jsonl"))
        print(f"wrote {len(rows)} drafts to {out} and their first-error labels to {out.with_suffix('.labels.jsonl')}")
        return
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
