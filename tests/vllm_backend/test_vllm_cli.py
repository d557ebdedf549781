"""`glore-train sorm --sample-backend vllm --label-backend vllm`: both stages really run on vLLM."""

from __future__ import annotations

import json

import pytest


@pytest.mark.e2e
def test_sorm_samples_and_labels_through_vllm(student, engine, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from glore_engine.generation.hf_backend import TransformersBackend
    from glore_engine.generation.vllm_backend import VLLMBackend
    from train_cli.main import cli

    calls = {"vllm": 0, "transformers": 0}

    def counting(kind, method):
        def wrapper(self, *args, **kwargs):
            calls[kind] += 1
            return method(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(VLLMBackend, "generate", counting("vllm", VLLMBackend.generate))
    monkeypatch.setattr(TransformersBackend, "generate", counting("transformers", TransformersBackend.generate))
    monkeypatch.setenv("GLORE_HOME", str(tmp_path / "home"))
    out = tmp_path / "sorm"
    args = ["--db", f"sqlite:///{tmp_path / 'glore.db'}", "sorm", "--base", student, "--sample-backend", "vllm"]
    args += ["--label-backend", "vllm", "--sample-n-questions", "12", "--sample-n", "4", "--label-k", "4"]
    args += ["--sample-shard-size", "6", "--max-steps", "2", "--batch-size", "2", "--warmup-steps", "1"]
    args += ["--no-mixed-only", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert calls["transformers"] == 0
    assert calls["vllm"] >= 3  # two ORM shards, then the SORM rollouts
    for stage in ("orm-data", "sorm-labels"):
        manifest = json.loads((out / stage / "manifest.json").read_text())
        assert manifest["config"]["backend"] == "vllm"
    samples = [json.loads(line) for line in (out / "orm-data" / "orm-data.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and all(sum(s["count"] for s in r["samples"]) == 4 for r in samples)
    labels = [json.loads(line) for line in (out / "sorm-labels" / "sorm-labels.jsonl").read_text().splitlines()]
    assert labels and all(p["k"] == 4 for r in labels for p in r["rollouts"])
