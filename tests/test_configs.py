"""Every shipped config loads: configs/<model>/<stage>.yaml with the project's config classes (as
`--config` reads them, flags absent), the accelerate configs with accelerate's own launcher, and the
memory arithmetic says each training and sampling job fits the 80 GB card it is sized for."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MODELS = ("llama2-7b", "llama2-13b", "qwen2.5-math-1.5b")


def stage_classes():
    """stage file name -> (main config class or None, {section: class}), as the glore-train command reads it."""
    from glore_engine.evaluation.student import EvalStudentConfig
    from glore_engine.labelling.orm_data import OrmDataConfig
    from glore_engine.labelling.rollouts import SormLabelConfig
    from glore_engine.training.refiner import RefinerConfig
    from glore_engine.training.reward import RewardConfig
    from glore_engine.training.student import StudentConfig

    sections = {"sample": OrmDataConfig, "label": SormLabelConfig}
    return {
        "sft": (StudentConfig, {}),
        "eval-student": (EvalStudentConfig, {}),
        "orm": (RewardConfig, sections),
        "sorm": (RewardConfig, sections),
        "refine-global": (RefinerConfig, sections),
        "refine-local": (RefinerConfig, sections),
        "eval-rm": (None, sections),
    }


def load(path: Path):
    """(main config, {section: config}) built from one file, defaults filled in; unknown keys fail."""
    from glore_engine.config import build, read_yaml

    main_cls, section_classes = stage_classes()[path.stem]
    data = read_yaml(path)
    extra = {"role": path.stem} if path.stem in ("orm", "sorm") else {}
    main = None
    if main_cls is not None:
        main = build(main_cls, extra, {k: v for k, v in data.items() if k not in section_classes})
    elif set(data) - set(section_classes):
        raise AssertionError(f"{path}: keys outside {sorted(section_classes)}")
    return main, {name: build(cls, data.get(name)) for name, cls in section_classes.items()}


def model_files():
    return sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name != "accelerate")


def test_every_model_has_every_stage():
    for model in MODELS:
        assert {p.stem for p in (CONFIGS / model).glob("*.yaml")} == set(stage_classes()), model
    assert {p.parent.name for p in model_files()} == set(MODELS)


@pytest.mark.parametrize("path", model_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_model_config_builds(path):
    main, sections = load(path)
    model = path.parent.name
    if main is not None:
        assert getattr(main, "mixed_precision", "bf16") == "bf16"
        for key in ("base", "model"):
            value = getattr(main, key, None)
            if value is not None:
                assert value.startswith(("runs/" + model + "/", "meta-llama/", "Qwen/")), value
    if path.stem in ("refine-global", "refine-local"):
        assert main.kind == path.stem.removeprefix("refine-") and main.max_length == 1024
    if path.stem in ("orm", "sorm"):
        assert main.role == path.stem and main.lr > 0  # the paper fine-tunes the reward models whole
        assert sections["sample"].n == 8 and sections["sample"].temperature == 1.0
    if path.stem in ("sorm", "eval-rm"):
        assert sections["label"].k == 8 and sections["label"].temperature == 1.0  # the paper's K, T = 1


def test_a_config_reaches_the_command_through_dash_dash_config(tmp_path, monkeypatch):
    """`glore-train sft --config FILE` hands the file's values to the engine; a flag still wins."""
    from click.testing import CliRunner

    from glore_engine.training import student
    from train_cli.main import cli

    seen = {}

    class Stop(Exception):
        pass

    def capture(config, output_dir, **kwargs):
        seen["config"] = config
        raise Stop

    monkeypatch.setattr(student, "train_student", capture)
    monkeypatch.setenv("GLORE_HOME", str(tmp_path))
    path = CONFIGS / "qwen2.5-math-1.5b" / "sft.yaml"
    args = ["--db", f"sqlite:///{tmp_path / 'g.db'}", "sft", "--config", str(path), "--max-steps", "7"]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, Stop), result.output
    config = seen["config"]
    assert (config.base, config.data, config.lr, config.batch_size) == (
        "Qwen/Qwen2.5-Math-1.5B",
        "openai/gsm8k",
        1e-5,
        16,
    )
    assert config.max_steps == 7


def test_a_misspelt_key_in_a_shipped_config_would_fail(tmp_path):
    from glore_engine.errors import ConfigError

    bad = tmp_path / "sft.yaml"
    bad.write_text((CONFIGS / "llama2-7b" / "sft.yaml").read_text() + "learning_rate: 1e-5\n")
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        load(bad)


# ---- accelerate ------------------------------------------------------------------------------------
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_configs_pass_the_launcher(path, monkeypatch):
    """What `accelerate launch --config_file FILE` does before it starts processes, without starting them."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    monkeypatch.chdir(ROOT)  # the DeepSpeed files name their JSON relative to the repository root
    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    assert args.num_processes == 8 and defaults.num_machines == 1
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = list(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
        ds_file = Path(env["ACCELERATE_DEEPSPEED_CONFIG_FILE"])
        assert ds_file.is_file()
        ds = json.loads(ds_file.read_text())
        # the training loop prepares no dataloader: DeepSpeed needs an integer micro-batch to start
        assert isinstance(ds["train_micro_batch_size_per_gpu"], int)
        assert ds["gradient_accumulation_steps"] == 1 and ds["bf16"]["enabled"] is True
        assert ds["zero_optimization"]["stage"] == int(path.stem[-1])
        from accelerate import DeepSpeedPlugin

        assert DeepSpeedPlugin(hf_ds_config=str(ds_file)).zero_stage == ds["zero_optimization"]["stage"]
    else:
        env = prepare_multi_gpu_env(args)
        assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
        if args.use_fsdp:
            assert env["FSDP_VERSION"] == "2" and env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
            assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"


def test_fsdp_finds_the_decoder_layers_of_a_reward_model(tokenizer_for_configs):
    """FSDP's transformer auto-wrap reads _no_split_modules; the reward model passes its backbone's on."""
    from accelerate.utils.dataclasses import get_module_class_from_name

    from glore_engine.models.causal_lm import create_policy
    from glore_engine.models.reward_model import RewardModel

    model = RewardModel(create_policy("tiny", tokenizer_for_configs))
    (name,) = model._no_split_modules
    assert name == "LlamaDecoderLayer" and get_module_class_from_name(model, name) is not None


@pytest.fixture(scope="module")
def tokenizer_for_configs():
    from glore_engine.testing import tiny_tokenizer

    return tiny_tokenizer(n_problems=40)


# ---- memory --------------------------------------------------------------------------------------
def memory_plan():
    spec = importlib.util.spec_from_file_location("memory_plan", ROOT / "bench" / "memory_plan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory_plan"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_parameter_counts_match_the_published_sizes():
    plan = memory_plan()
    counts = {m: plan.ARCHS[m].parameters for m in MODELS}
    assert counts["llama2-7b"] == 6_738_415_616  # LLaMA-2 7B
    assert round(counts["llama2-13b"] / 1e9, 2) == 13.02
    assert round(counts["qwen2.5-math-1.5b"] / 1e9, 2) == 1.54


@pytest.mark.parametrize("model", MODELS)
def test_every_training_and_sampling_job_fits_its_card(model):
    plan = memory_plan()
    for row in plan.plan(model):
        if row.job.startswith("pipeline"):
            continue  # five models on one GPU: README says which cards hold them
        assert row.total <= plan.GPU_GIB * plan.GIB, (row.job, row.total / plan.GIB)
    assert "| student SFT |" in plan.table(model)
