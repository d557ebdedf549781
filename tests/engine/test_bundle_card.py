"""The bundle's card: its Markdown, its size, and installing a family with it."""

from __future__ import annotations

import json
import shutil

from glore_engine.bundled.card import bundle_card, bundle_markdown, folder_bytes, install_bundle
from glore_engine.familiarity import RANGE_FILE


def test_bundle_markdown_lists_tables_and_times():
    card = {
        "command": "glore-train demo",
        "commit": "",
        "seed": 0,
        "created_at": "now",
        "bytes": 1234,
        "student": {"greedy_accuracy": 0.5, "pass@8/steps=2": 0.9},
        "stage_seconds": {"student": 1.0, "x": None},
        "T1": "| t1 |",
        "T2": None,
        "T3": "| t3 |",
    }
    text = bundle_markdown(card)
    assert "1,234 bytes" in text and "- greedy_accuracy: 0.500" in text and "steps=2" not in text
    assert "## T1\n\n| t1 |" in text and "## T2" not in text and "- student: 1.0" in text and "- x:" not in text


def test_folder_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"12345")
    (tmp_path / "g").write_bytes(b"123")
    assert folder_bytes(tmp_path) == 8


def test_bundle_card_reads_the_stage_outputs():
    outputs = {
        "eval-student": {"greedy_accuracy": 0.5, "seconds": 3.0},
        "family": {"bytes": 99, "seconds": 0.1},
        "eval-rm": {"T1": "t1", "seconds": 2.0},
        "eval": {"T2": "t2", "T3": "t3", "seconds": 1.0},
    }
    card = bundle_card(outputs, seed=4, command="glore-train demo", commit="abc")
    assert card["student"] == {"greedy_accuracy": 0.5} and card["bytes"] == 99 and card["seed"] == 4
    assert (card["T1"], card["T2"], card["T3"]) == ("t1", "t2", "t3")
    assert card["stage_seconds"] == {"eval-student": 3.0, "family": 0.1, "eval-rm": 2.0, "eval": 1.0}


def test_install_bundle_replaces_the_members_and_writes_the_card(tiny_family, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "orm").mkdir(parents=True)
    (bundle / "orm" / "stale.txt").write_text("from an older family")
    card = bundle_card({"family": {"bytes": 1}}, seed=0)
    family = tmp_path / "family"
    shutil.copytree(tiny_family, family)
    (family / "student" / RANGE_FILE).unlink(missing_ok=True)  # a freshly trained student has none
    n = install_bundle(family, bundle, card)
    assert not (bundle / "orm" / "stale.txt").exists() and (bundle / "orm" / "value_head.safetensors").is_file()
    assert json.loads((bundle / "bundle.json").read_text())["seed"] == 0
    assert (bundle / "BUNDLE.md").read_text() == bundle_markdown(card)
    assert n == folder_bytes(bundle)
    shipped = json.loads((bundle / "student" / RANGE_FILE).read_text())  # measured from the new student
    assert shipped["n"] > 0 and shipped["draft_logprob"]["low"] <= shipped["draft_logprob"]["median"]
