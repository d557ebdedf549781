"""Bad input: values that make no sense are Click usage errors (exit 2) naming the flag; broken files
are one line (exit 1), never a traceback; a missing local model path fails at once."""

from __future__ import annotations

import time

import click
import pytest

from glore_engine.config import build
from glore_engine.errors import ConfigError
from glore_engine.labelling.rollouts import SormLabelConfig

# (command line with {student} for the tiny student, the flag the error must name)
OUT_OF_BOUNDS = [
    ("eval-student --model {student} --k -1", "'--k'"),
    ("eval-student --model {student} --limit 0", "'--limit'"),
    ("eval-student --model {student} --temperature -1", "'--temperature'"),
    ("eval-student --model {student} --batch-size 0", "'--batch-size'"),
    ("eval-student --model {student} --max-new-tokens 0", "'--max-new-tokens'"),
    ("sample --model {student} --n -3", "'--n'"),
    ("sample --model {student} --seed -1", "'--seed'"),
    ("sorm --base {student} --label-k 0", "'--label-k'"),
    ("sorm --base {student} --label-shard-size 0", "'--label-shard-size'"),
    ("orm --base {student} --sample-shard-size 0", "'--sample-shard-size'"),
    ("orm --base {student} --sample-n 0", "'--sample-n'"),
    ("sft --base tiny --lr nan", "'--lr'"),
    ("sft --base tiny --lr inf", "'--lr'"),
    ("sft --base tiny --batch-size 0", "'--batch-size'"),
    ("sft --base tiny --log-every 0", "'--log-every'"),
    ("sft --base tiny --min-lr-ratio 2", "'--min-lr-ratio'"),
    ("sft --base tiny --mixed-precision fp7", "'--mixed-precision'"),
    ("sft --base tiny --task-max-steps 9", "task config"),
    ("refine --base {student} --max-length 0", "'--max-length'"),
    ("ei --student {student} --shard-size 0", "'--shard-size'"),
    ("ei --student {student} --eval-k 0", "'--eval-k'"),
    ("eval --limit 0", "'--limit'"),
    ("eval --threshold 1.5", "'--threshold'"),
    ("eval --best-of 0", "'--best-of'"),
    ("eval-rm --rm a={student} --student {student} --threshold -0.1", "'--threshold'"),
    ("eval-rm --rm a={student} --student {student} --label-k 0", "'--label-k'"),
    ("sample --model {student} --backend vlm", "'--backend'"),
    ("runs list --limit 0", "'--limit'"),
]


@pytest.mark.parametrize(("line", "flag"), OUT_OF_BOUNDS, ids=[line for line, _ in OUT_OF_BOUNDS])
def test_values_that_make_no_sense_are_usage_errors(cli, student, line, flag):
    result = cli(*line.format(student=student).split(), code=2)
    assert flag in result.output
    assert "Traceback" not in result.output
    assert not cli.runs()  # refused before any run is recorded


def test_a_yaml_value_out_of_bounds_names_the_file_key(cli, student, tmp_path):
    config = tmp_path / "sorm.yaml"
    config.write_text("label:\n  k: 0\n")
    result = cli("sorm", "--base", student, "--config", config, code=2)
    assert "'label.k' in" in result.output and "must be at least 1, got 0" in result.output


def test_the_library_refuses_the_same_values():
    with pytest.raises(ConfigError, match="k must be at least 1") as info:
        SormLabelConfig(k=0)
    assert info.value.key == "k"
    with pytest.raises(ConfigError, match="shard_size"):
        build(SormLabelConfig, {"shard_size": 0})


def test_export_of_a_run_that_does_not_exist_names_it(cli, tmp_path):
    out = tmp_path / "x.csv"
    result = cli("export", "--run", 999999, "--format", "csv", "--out", out, code=2)
    assert "no run with id 999999" in result.output
    assert not out.exists()


def _one_line_error(result) -> str:
    assert "Traceback" not in result.output, result.output
    # the only other line is the notice of which store is open
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("store: ")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_data_that_is_not_utf8_is_one_line(cli, student, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b'{"question": "q", "answer": "1\\n#### 1"}\n\xff\xfe{"question": 2}\n')
    line = _one_line_error(cli("sample", "--model", student, "--data", data, "--n", 1, code=1))
    assert f"{data}:2: not UTF-8" in line


def test_a_truncated_safetensors_checkpoint_is_one_line(cli, student, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(student, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    line = _one_line_error(cli("sample", "--model", broken, "--limit", 1, "--n", 1, code=1))
    assert "cannot read the weights" in line and str(broken) in line


def test_a_weights_file_for_a_folder_says_what_is_supported(cli, tmp_path):
    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(b"\0" * 64)
    line = _one_line_error(cli("sample", "--model", weights, "--limit", 1, "--n", 1, code=1))
    assert "is a file, not a folder" in line and "model.safetensors" in line


def test_a_store_that_is_not_sqlite_is_one_line(cli, tmp_path):
    from click.testing import CliRunner

    from train_cli.main import cli as group

    not_db = tmp_path / "notes.db"
    not_db.write_text("not a database\n" * 100)
    result = CliRunner().invoke(group, ["--db", f"sqlite:///{not_db}", "runs", "list"])
    assert result.exit_code == 1, result.output
    assert "is not a SQLite database" in _one_line_error(result)


@pytest.mark.parametrize("typo", ["runs/studnet", "./studnet", "~/no-such-glore-model", "runs/a/b"])
def test_a_local_looking_model_path_that_is_missing_fails_at_once(cli, tmp_path, monkeypatch, typo):
    (tmp_path / "runs" / "student").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # no hub call may happen, online or not
    started = time.perf_counter()
    line = _one_line_error(cli("sample", "--model", typo, "--limit", 1, "--n", 1, code=1))
    assert time.perf_counter() - started < 10
    assert "model not found" in line
    if typo == "runs/studnet":
        assert "did you mean runs/student?" in line


def test_a_hub_id_is_still_a_hub_id(tmp_path, monkeypatch):
    from glore_engine.models.checkpoint import looks_local

    monkeypatch.chdir(tmp_path)
    assert not looks_local("Qwen/Qwen2-0.5B") and not looks_local("gpt2")
    (tmp_path / "Qwen").mkdir()
    assert looks_local("Qwen/Qwen2-0.5B")  # a folder of that name here: the path wins


def _options():
    from train_cli.main import cli as group

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, (*path, name))
            return
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                yield " ".join(path), param

    return list(walk(group, ()))


def test_every_option_has_a_description():
    bare = [
        f"{command} {param.opts[0]}"
        for command, param in _options()
        if param.name != "help" and (not param.help or param.help.startswith("default:"))
    ]
    assert not bare, "describe these in train_cli/knobs.py or the option's help: " + ", ".join(bare)
