"""glore-train basics: help everywhere, configs (YAML < flags, unknown keys), clear errors, run statuses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest


def all_commands():
    from train_cli.main import cli

    out = [()]

    def walk(group, path):
        for name, command in sorted(group.commands.items()):
            out.append(path + (name,))
            if isinstance(command, click.Group):
                walk(command, path + (name,))

    walk(cli, ())
    return out


def test_every_command_is_there():
    names = {" ".join(c) for c in all_commands()}
    assert names >= {
        "",
        "sft",
        "sample",
        "eval-student",
        "orm",
        "sorm",
        "eval-rm",
        "export",
        "refine",
        "eval",
        "demo",
        "runs",
        "runs list",
        "runs show",
    }


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: " ".join(c) or "glore-train")
def test_help_of_every_command_exits_0_fast(cli, command):
    import train_cli.main  # noqa: F401  (import time is the subprocess test's business)

    started = time.perf_counter()
    result = cli(*command, "--help")
    assert "Usage:" in result.output and "--help" in result.output
    assert time.perf_counter() - started < 2.0
    assert not (cli.root / "glore.db").exists()  # help opens no store


def test_config_flags_are_documented_with_their_defaults(cli):
    out = cli("sft", "--help").output
    assert "--max-steps" in out and "--config" in out and "default: 1000" in out
    out = cli("orm", "--help").output
    assert "--sample-n-questions" in out and "--label-k" in out and "--no-mixed-only" in out


def test_help_does_not_import_torch():
    code = "import sys, train_cli.main; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_yaml_key_fails_with_a_clear_message(cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("max_steps: 3\nlearning_rate: 0.1\n")
    result = cli("sft", "--config", config, code=2)
    assert "unknown config key 'learning_rate' for StudentConfig" in result.output
    assert "max_steps" in result.output  # the known keys are listed
    assert "Traceback" not in result.output
    assert cli.runs() == []  # nothing started


def test_an_unknown_key_in_a_section_fails_too(cli, tmp_path, student):
    config = tmp_path / "c.yaml"
    config.write_text(f"base: {student}\nsample:\n  n_questions: 2\n  temprature: 0.5\n")
    result = cli("orm", "--config", config, code=2)
    assert "unknown config key 'temprature' for OrmDataConfig" in result.output


@pytest.mark.parametrize(
    "text,message",
    [
        ("max_steps: ten\n", "must be an integer"),
        ("lr: fast\n", "config key 'lr' must be a number"),
        ("base: [tiny]\n", "config key 'base' must be a string"),
        ("- a\n- b\n", "expected a mapping"),
        ("max_steps: [\n", "not valid YAML"),
    ],
)
def test_bad_yaml_files_fail_with_a_clear_message(cli, tmp_path, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert message in cli("sft", "--config", config, code=2).output  # a usage error, like a bad flag


def test_a_quoted_boolean_in_yaml_is_not_silently_true(cli, tmp_path, student):
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {student}\ncalculator: 'no'\n")
    assert "config key 'calculator' must be true or false, got 'no'" in cli("sample", "--config", config, code=2).output
    assert cli.runs() == []


def test_a_missing_config_file_is_an_error(cli, tmp_path):
    assert "config file not found" in cli("sft", "--config", tmp_path / "nope.yaml", code=2).output


def test_flags_override_yaml_which_overrides_defaults(cli, tmp_path, student):
    config = tmp_path / "sample.yaml"
    config.write_text(f"model: {student}\nlimit: 2\nn: 5\nmax_new_tokens: 50\ntemperature: 0.7\n")
    cli("sample", "--config", config, "--n", 1, "--max-new-tokens", 4)
    run = cli.last("sample")
    assert run.status == "FINISHED"
    assert run.config["n"] == 1 and run.config["max_new_tokens"] == 4  # flags win
    assert run.config["limit"] == 2 and run.config["temperature"] == 0.7  # the file beats the defaults
    assert run.config["seed"] == 0 and run.config["batch_size"] == 256  # defaults
    with cli.store() as store:
        (artifact,) = store.artifacts(run.id)
    lines = Path(artifact.path).read_text().splitlines()
    assert len(lines) == 2 and all(len(json.loads(line)["samples"]) == 1 for line in lines)


def test_section_configs_of_a_combined_file(cli, tmp_path, crafted, student):
    config = tmp_path / "orm.yaml"
    config.write_text(
        f"base: {student}\nmax_steps: 1\nbatch_size: 2\nwarmup_steps: 0\nsample:\n  n: 3\nlabel:\n  k: 5\n"
    )
    cli("orm", "--config", config, "--samples", crafted / "orm-data", "--out", tmp_path / "orm")
    run = cli.last("orm")
    assert run.config["train"]["max_steps"] == 1 and run.config["train"]["role"] == "orm"
    assert run.config["sample"]["n"] == 3 and run.config["sample"]["student"] == student
    assert run.config["label"]["k"] == 5


def test_a_missing_model_path_fails_the_run_with_a_clear_error(cli, tmp_path):
    result = cli("sample", "--model", tmp_path / "no-such-model", "--limit", 1, code=1)
    assert "error: model not found" in result.output and "no-such-model" in result.output
    assert "Traceback" not in result.output
    run = cli.last("sample")
    assert run.status == "FAILED" and "model not found" in run.error and run.finished_at is not None


def test_a_reward_model_given_as_a_policy_fails_clearly(cli, tiny_family):
    result = cli("eval-student", "--model", tiny_family / "orm", "--limit", 1, code=1)
    assert "role 'orm'; expected role policy" in result.output
    assert cli.last("eval-student").status == "FAILED"


def test_no_model_at_all_is_an_error(cli):
    assert "no model given" in cli("sample", "--limit", 1, code=1).output
    assert cli.last("sample").status == "FAILED"


def test_a_keyboard_interrupt_marks_the_run_interrupted(cli, student, monkeypatch):
    import glore_engine.evaluation.student as student_eval

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(student_eval, "evaluate_student", interrupted)
    result = cli("eval-student", "--model", student, "--limit", 1, code=130)
    assert "interrupted" in result.output
    run = cli.last("eval-student")
    assert run.status == "INTERRUPTED" and run.finished_at is not None


def test_an_interrupted_training_run_is_marked_interrupted(cli, tmp_path, monkeypatch):
    import glore_engine.training.student as trainer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_student", interrupted)
    cli("sft", "--base", "tiny", "--max-steps", 2, "--out", tmp_path / "sft", code=130)
    assert cli.last("sft").status == "INTERRUPTED"


def test_resume_needs_out(cli, student):
    assert "--resume needs --out" in cli("sft", "--resume", code=2).output
    assert "--resume needs --out" in cli("orm", "--base", student, "--resume", code=2).output
    assert "--resume needs --out" in cli("refine", "--base", student, "--resume", code=2).output
    assert cli.runs() == []


def test_runs_show_of_an_unknown_run(cli):
    result = cli("runs", "show", 999, ok=False)
    assert result.exit_code != 0 and "999" in result.output


def test_runs_list_on_an_empty_store(cli):
    result = cli("runs", "list")
    assert "id" in result.output and "FINISHED" not in result.output


def test_runs_list_filters(cli, tmp_path):
    with cli.store() as store:
        with store.run("sft", name="a"):
            pass
        with pytest.raises(RuntimeError), store.run("orm", name="b"):
            raise RuntimeError("boom")
    out = cli("runs", "list", "--status", "FAILED").output
    assert "orm" in out and "sft" not in out
    out = cli("runs", "list", "--kind", "sft").output
    assert "FINISHED" in out and "orm" not in out


def test_sample_out_file_in_a_new_folder(cli, tmp_path, student):
    out = tmp_path / "new" / "folder" / "s.jsonl"
    cli("sample", "--model", student, "--limit", 1, "--n", 1, "--max-new-tokens", 2, "--out", out)
    assert len(out.read_text().splitlines()) == 1
    run = cli.last("sample")
    assert run.output_dir == str(out.parent)
    with cli.store() as store:
        assert store.artifacts(run.id)[0].path == str(out)


def test_the_vllm_backend_on_a_machine_without_vllm_is_a_clear_error(cli, student):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    result = cli("sample", "--model", student, "--limit", 1, "--backend", "vllm", code=1)
    assert "pip install 'glore-workbench[vllm]'" in result.output
    assert cli.last("sample").status == "FAILED"


def test_an_unknown_backend_and_a_missing_gpu_are_clear_errors(cli, student):
    import torch

    assert (
        "must be one of auto, transformers, vllm; got 'tgi'"
        in cli("sample", "--model", student, "--limit", 1, "--backend", "tgi", code=2).output
    )
    if not torch.cuda.is_available():
        assert (
            "CUDA is not available"
            in cli("sample", "--model", student, "--limit", 1, "--device", "cuda", code=1).output
        )


def test_a_full_disk_is_a_clear_error_and_a_failed_run(cli, monkeypatch):
    import errno

    import glore_engine.training.student as student

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/runs/train_state")

    monkeypatch.setattr(student, "train_student", full)
    result = cli("sft", "--base", "tiny", "--max-steps", "1", code=1)
    assert "the disk is full (/data/runs/train_state)" in result.output
    assert cli.last("sft").status == "FAILED"
