"""GSM8K problems from a JSONL file (`question`/`answer` keys) or from the Hugging Face hub.

The project never bundles GSM8K text: pass a path (e.g. ../shared/data/gsm8k/test.jsonl) or load
`openai/gsm8k` where a hub is reachable.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from ..formats import join_steps
from .answers import canonical
from .problem import Problem
from .steps import split_steps


def load_jsonl(path: str | Path, limit: int | None = None, split_name: str | None = None) -> list[Problem]:
    """Problems of a GSM8K-format JSONL file; id "gsm8k-<split>-<line index>", split = file stem by default."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    split = split_name or path.stem
    problems: list[Problem] = []
    with path.open("rb") as f:  # bytes: a line that is not UTF-8 is named, not a traceback
        for index, raw in enumerate(f):
            if limit is not None and len(problems) >= limit:
                break
            where = f"{path}:{index + 1}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{where}: not UTF-8 text; save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON: {e}") from None
            problems.append(record_to_problem(record, f"gsm8k-{split}-{index}", where))
    if not problems:
        raise DataError(f"{path} has no problems")
    return problems


def record_to_problem(record: object, problem_id: str, where: str) -> Problem:
    """One GSM8K record -> Problem; `where` names the record in error messages."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with 'question' and 'answer'")
    for key in ("question", "answer"):
        if key not in record:
            raise DataError(f"{where}: missing key '{key}'")
        if not isinstance(record[key], str) or not record[key].strip():
            raise DataError(f"{where}: '{key}' must be a non-empty string")
    answer_text = record["answer"]
    if "####" not in answer_text:
        raise DataError(f"{where}: no '####' final answer")
    final = answer_text.rsplit("####", 1)[1].strip()
    answer = canonical(final)
    if answer is None:
        raise DataError(f"{where}: final answer {final!r} is not a number")
    steps = split_steps(answer_text)
    return Problem(
        id=problem_id,
        question=record["question"].strip(),
        solution=join_steps(steps),  # one step per line: blank lines and stray spaces dropped
        answer=answer,
        meta={"source": "gsm8k", "n_steps": len(steps)},
    )


def load_hub(split: str, name: str = "openai/gsm8k", config: str = "main", limit: int | None = None) -> list[Problem]:
    """GSM8K from the Hugging Face hub via `datasets` (needs network or a warm local cache)."""
    try:
        import datasets  # heavy; only this loader needs it

        rows = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # offline hub, unknown dataset or split: all the user can fix the same way
        raise DataError(
            f"could not load {name} ({config}, split {split!r}) from the hub: {type(e).__name__}: {e}. "
            "Offline? Pass a JSONL path with 'question' and 'answer' keys instead."
        ) from None
    problems = []
    for index, record in enumerate(rows):
        if limit is not None and index >= limit:
            break
        problems.append(record_to_problem(record, f"gsm8k-{split}-{index}", f"{name}[{split}][{index}]"))
    if not problems:
        raise DataError(f"{name} split {split!r} has no problems")
    return problems
