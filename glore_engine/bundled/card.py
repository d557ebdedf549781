"""The bundle's card: which command, seed and commit made the shipped family, and its measured tables.

`install_bundle` copies a family folder into a bundle folder (glore_engine/bundled ships one) and
writes the card beside it twice: `bundle.json` for programs, `BUNDLE.md` for people.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..family import MEMBER_FOLDERS


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def bundle_card(outputs: dict, seed: int, command: str = "", commit: str = "", task: dict | None = None) -> dict:
    """The card of a recipe run from its stages' outputs (what each stage's done.json holds);
    task: what the models were trained on (tasks.model_task.task_card)."""
    return {
        "task": task,
        "command": command,
        "commit": commit,
        "seed": seed,
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "student": {k: v for k, v in outputs.get("eval-student", {}).items() if not k.startswith("seconds")},
        "stage_seconds": {k: v.get("seconds") for k, v in outputs.items()},
        "EI": outputs.get("ei", {}).get("EI"),
        "T1": outputs.get("eval-rm", {}).get("T1"),
        "T2": outputs.get("eval", {}).get("T2"),
        "T3": outputs.get("eval", {}).get("T3"),
        "SVAMP T1": outputs.get("svamp-eval-rm", {}).get("T1"),
        "SVAMP T2": outputs.get("svamp-eval", {}).get("T2"),
        "SVAMP T3": outputs.get("svamp-eval", {}).get("T3"),
        "bytes": outputs.get("family", {}).get("bytes"),
    }


def bundle_markdown(card: dict) -> str:
    lines = [
        "# Bundled GLoRe demo family",
        "",
        f"Produced by `{card['command']}` (seed {card['seed']}, commit {card['commit'] or 'unknown'}) "
        f"on {card['created_at']}. fp16 safetensors, {card['bytes'] or 0:,} bytes in all.",
        *(["", card["remeasured"]] if card.get("remeasured") else []),
        "",
        "## Student",
        "",
    ]
    lines += [
        f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in card["student"].items() if "/" not in k
    ]
    task = card.get("task")
    if task:
        lines += ["", "## The task these models know", "", f"Trained on {task['description']}.", ""]
        lines += ["An example problem to copy (from the test split):", "", "```", task["example_problem"], "```"]
        lines += ["", "Its gold solution, in the format the models read and write:", ""]
        lines += ["```", task["example_solution"], "```"]
    titles = {"EI": "Student: SFT, then Expert Iteration (round 0 = SFT; synthetic test split)"}
    for key in ("EI", "T1", "T2", "T3", "SVAMP T1", "SVAMP T2", "SVAMP T3"):
        if card.get(key):
            lines += ["", f"## {titles.get(key, key)}", "", card[key]]
    lines += ["", "## Wall time per stage (s)", ""]
    lines += [f"- {k}: {v}" for k, v in card["stage_seconds"].items() if v is not None]
    return "\n".join(lines) + "\n"


def install_bundle(family: str | Path, bundle_dir: str | Path, card: dict) -> int:
    """Copy the family's members into bundle_dir (replacing them) with the card; returns the bundle's bytes."""
    bundle = Path(bundle_dir)
    bundle.mkdir(parents=True, exist_ok=True)
    for member in MEMBER_FOLDERS:
        target = bundle / member
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(family) / member, target)
    ship_familiarity_range(bundle / "student")
    (bundle / "bundle.json").write_text(json.dumps(card, indent=2, default=str))
    (bundle / "BUNDLE.md").write_text(bundle_markdown(card))
    return folder_bytes(bundle)


def ship_familiarity_range(student: Path) -> None:
    """Measure the student's familiarity range into its folder, so that it ships with the bundle.

    Why: copying a new student in removes the old range, and the app would otherwise measure it on the
    first Inspect and write it into the installed package.
    """
    from ..familiarity import family_range
    from ..models.causal_lm import load_causal_lm

    model, tokenizer, _ = load_causal_lm(student)
    family_range(student, model, tokenizer)
