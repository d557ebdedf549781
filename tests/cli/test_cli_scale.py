"""A data stage split into parts run apart (--shard-index / --num-shards), then `glore-train merge`."""

from __future__ import annotations

import json

SAMPLE = ("--sample-n-questions", 5, "--sample-n", 2, "--sample-max-new-tokens", 8, "--sample-shard-size", 2)
LABEL = ("--label-k", 2, "--label-max-new-tokens", 4, "--label-shard-size", 2)
TRAIN = ("--max-steps", 1, "--batch-size", 2, "--warmup-steps", 1, "--no-mixed-only")


def test_parts_merged_equal_one_process(cli, student, tmp_path):
    cli("orm", "--base", student, *SAMPLE, *TRAIN, "--out", tmp_path / "one")
    parts = tmp_path / "parts"
    for i in range(3):  # 3 shards over 3 parts: one each
        out = cli("orm", "--base", student, *SAMPLE, "--shard-index", i, "--num-shards", 3, "--out", parts).output
        assert f"part {i} of 3" in out
    assert not (parts / "orm-data" / "orm-data.jsonl").exists()  # no part writes the records
    assert not (parts / "model").exists()  # nor trains
    cli("merge", parts / "orm-data")
    merged = (parts / "orm-data" / "orm-data.jsonl").read_text()
    assert merged == (tmp_path / "one" / "orm-data" / "orm-data.jsonl").read_text()
    manifest = json.loads((parts / "orm-data" / "manifest.json").read_text())
    assert manifest["kind"] == "orm-data" and manifest["stats"]["questions"] == 5
    cli("orm", "--base", student, *TRAIN, "--samples", parts / "orm-data", "--out", tmp_path / "trained")
    assert (tmp_path / "trained" / "model").is_dir()

    cli("sorm", "--base", student, *LABEL, *TRAIN, "--samples", parts / "orm-data", "--out", tmp_path / "sorm-one")
    labels = tmp_path / "labels"
    for i in range(2):
        cli("sorm", "--base", student, *LABEL, "--samples", parts / "orm-data", "--shard-index", i, "--num-shards", 2,
            "--out", labels)  # fmt: skip
    cli("merge", labels / "sorm-labels")
    one = (tmp_path / "sorm-one" / "sorm-labels" / "sorm-labels.jsonl").read_text()
    assert (labels / "sorm-labels" / "sorm-labels.jsonl").read_text() == one


def test_merge_gathers_parts_from_other_folders(cli, student, tmp_path):
    for i in range(2):
        cli("orm", "--base", student, *SAMPLE, "--shard-index", i, "--num-shards", 2, "--out", tmp_path / f"m{i}")
    cli("merge", tmp_path / "m0" / "orm-data", "--from", tmp_path / "m1" / "orm-data")
    records = (tmp_path / "m0" / "orm-data" / "orm-data.jsonl").read_text().splitlines()
    assert len(records) == 5


def test_merge_refuses_missing_shards_and_other_configs(cli, student, tmp_path):
    cli("orm", "--base", student, *SAMPLE, "--shard-index", 0, "--num-shards", 2, "--out", tmp_path / "a")
    assert "lacks 1 of 3 shards (1)" in cli("merge", tmp_path / "a" / "orm-data", code=1).output
    other = ("--sample-temperature", 0.5)
    cli("orm", "--base", student, *SAMPLE, *other, "--shard-index", 1, "--num-shards", 2, "--out", tmp_path / "b")
    out = cli("merge", tmp_path / "a" / "orm-data", "--from", tmp_path / "b" / "orm-data", code=1).output
    assert "another job" in out
    # a part of another config into the same folder is refused before it samples
    out = cli("orm", "--base", student, *SAMPLE, *other, "--shard-index", 1, "--num-shards", 2,
              "--out", tmp_path / "a", code=1).output  # fmt: skip
    assert "made with another config (temperature 1.0 -> 0.5)" in out
    assert "not the folder of a sharded" in cli("merge", tmp_path, code=1).output


def test_part_flags_are_checked(cli, student, tmp_path):
    assert "needs --out" in cli("orm", "--base", student, "--num-shards", 2, code=2).output
    bad = cli("orm", "--base", student, "--num-shards", 2, "--shard-index", 2, "--out", tmp_path, code=1).output
    assert "--shard-index must be within [0, 2)" in bad
    out = cli("sorm", "--base", student, "--num-shards", 2, "--out", tmp_path, code=2).output
    assert "pass --samples" in out


def test_commands_that_do_not_split_refuse_a_multi_process_launch(cli, student, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for args in (("ei",), ("demo",)):
        assert "runs in one process" in cli(*args, code=2).output


def test_ranks_deal_the_shards_still_to_do(tmp_path, monkeypatch):
    """Rank 1 of 2 takes every other shard of those not done yet (a resumed job keeps both busy)."""
    import pytest

    from glore_engine import distributed
    from glore_engine.errors import DataError
    from glore_engine.labelling import shards as sharding
    from glore_engine.labelling.shards import run_sharded, shard_path, write_jsonl_atomic

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    # no process group here: rank 0 is imagined, and what it writes is written here
    monkeypatch.setattr(distributed, "barrier", lambda: None)
    monkeypatch.setattr(distributed, "on_main", lambda write: write())
    sharding._start_job(tmp_path, {"shard_size": 1}, list(range(5)))  # rank 0's job.json, before any shard
    for k in (0, 1):
        write_jsonl_atomic(shard_path(tmp_path, k), [{"k": k}])
    ran = []

    def process(shard, k):
        ran.append(k)
        return [{"k": k}]

    with pytest.raises(DataError, match=r"lacks 2 of 5 shards \(2, 4\)"):  # rank 0's, never written here
        run_sharded(list(range(5)), 1, tmp_path, process)
    assert ran == [3]
