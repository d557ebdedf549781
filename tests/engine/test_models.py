"""Checkpoints: save/load round trips with cards, role checks, broken folders, atomic saves."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from engine_helpers import make_policy

from glore_engine.errors import CheckpointError
from glore_engine.models.causal_lm import (
    count_parameters,
    create_policy,
    load_causal_lm,
    preset_or_checkpoint,
    save_causal_lm,
)
from glore_engine.models.checkpoint import CARD_NAME, Card, atomic_save, check_role, looks_local, read_card
from glore_engine.models.reward_model import (
    HEAD_FILE,
    RewardModel,
    RewardScorer,
    is_reward_checkpoint,
    load_reward_model,
    save_reward_model,
)
from glore_engine.models.tokenizer import fingerprint

STEPS = ["Tom has 3*4=<<3*4=12>>12 apples.", "He eats 2, so 12-2=<<12-2=10>>10 are left.\n#### 10"]


def same_weights(a, b, atol=0.0):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(torch.allclose(sa[k].float(), sb[k].float(), atol=atol) for k in sa)


@pytest.fixture
def copy_member(tiny_family, tmp_path):
    def copy(member):
        target = tmp_path / member
        shutil.copytree(tiny_family / member, target)
        return target

    return copy


def test_policy_round_trip_keeps_weights_tokenizer_and_card(tokenizer, tmp_path):
    model = make_policy(tokenizer, seed=3)
    card = Card(role="policy", base="tiny", run_id=7, config={"lr": 0.01}, metrics={"loss": 1.5})
    folder = save_causal_lm(model, tokenizer, tmp_path / "student", card)
    assert (folder / "model.safetensors").is_file() and (folder / CARD_NAME).is_file()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.old"))
    loaded, tok, loaded_card = load_causal_lm(folder)
    assert same_weights(model, loaded)
    assert tok.get_vocab() == tokenizer.get_vocab() and tok.padding_side == "left"
    assert (loaded_card.role, loaded_card.base, loaded_card.run_id) == ("policy", "tiny", 7)
    assert loaded_card.config == {"lr": 0.01} and loaded_card.metrics == {"loss": 1.5}
    assert loaded_card.tokenizer == fingerprint(tokenizer)
    assert loaded_card.created_at and loaded_card.glore_version
    assert not loaded.training and loaded.generation_config.pad_token_id == tokenizer.pad_token_id


def test_fp16_save_casts_a_copy_only(tokenizer, tmp_path):
    model = make_policy(tokenizer, seed=3)
    folder = save_causal_lm(model, tokenizer, tmp_path / "half", Card(role="policy", base="tiny"), dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float32  # the live model is untouched
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(folder / "model.safetensors")).values()} == {torch.float16}
    loaded, _, _ = load_causal_lm(folder)
    assert next(loaded.parameters()).dtype == torch.float32  # CPU loads in float32
    assert same_weights(model, loaded, atol=1e-2)


def test_reward_model_round_trip_keeps_head_and_scores(tokenizer, tmp_path):
    model = RewardModel(make_policy(tokenizer, seed=4), likelihood_features=True)
    torch.nn.init.normal_(model.head.weight, std=0.5)
    torch.nn.init.normal_(model.feature_head.weight, std=0.5)
    folder = save_reward_model(model, tokenizer, tmp_path / "orm", Card(role="orm", base="x"))
    loaded, tok, card = load_reward_model(folder)
    assert card.role == "orm" and card.config["likelihood_features"] is True
    assert same_weights(model, loaded)
    q = "Tom has 3 boxes of 4 apples. He eats 2. How many are left?"
    before = RewardScorer(model, tokenizer).score_one(q, STEPS)
    after = RewardScorer(loaded, tok).score_one(q, STEPS)
    assert after == pytest.approx(before, abs=1e-6)
    assert is_reward_checkpoint(folder) and not is_reward_checkpoint(tmp_path)


def test_reward_model_without_features_round_trips_the_flag(tokenizer, tmp_path):
    model = RewardModel(make_policy(tokenizer), likelihood_features=False)
    folder = save_reward_model(model, tokenizer, tmp_path / "sorm", Card(role="sorm", base="x"))
    loaded, _, card = load_reward_model(folder)
    assert card.config["likelihood_features"] is False and loaded.likelihood_features is False


def test_a_reward_model_cannot_be_saved_under_a_policy_role(tokenizer, tmp_path):
    model = RewardModel(make_policy(tokenizer))
    with pytest.raises(CheckpointError, match="orm or sorm"):
        save_reward_model(model, tokenizer, tmp_path / "x", Card(role="policy", base="x"))
    assert not (tmp_path / "x").exists()


def test_a_reward_model_where_a_policy_is_expected_is_a_clear_error(tiny_family):
    with pytest.raises(CheckpointError, match=r"role 'orm'; expected role policy"):
        load_causal_lm(tiny_family / "orm")


def test_a_policy_where_a_reward_model_is_expected_is_a_clear_error(tiny_family):
    with pytest.raises(CheckpointError, match=r"role 'policy'; expected role orm or sorm"):
        load_reward_model(tiny_family / "student")


def test_roles_narrow_to_one_member(tiny_family):
    with pytest.raises(CheckpointError, match="role 'refiner-global'; expected role policy$"):
        load_causal_lm(tiny_family / "refiner-global", roles=("policy",))
    with pytest.raises(CheckpointError, match="role 'orm'; expected role sorm"):
        load_reward_model(tiny_family / "orm", roles=("sorm",))
    assert check_role(tiny_family / "sorm", "sorm").role == "sorm"


def test_a_missing_folder_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="model not found"):
        load_causal_lm(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="reward model not found"):
        load_reward_model(tmp_path / "nope")


def test_a_file_instead_of_a_folder_is_a_checkpoint_error(tmp_path):
    (tmp_path / "model.bin").write_text("x")
    with pytest.raises(CheckpointError, match="not a folder"):
        load_causal_lm(tmp_path / "model.bin")


def test_a_folder_without_config_json_is_a_checkpoint_error(copy_member):
    folder = copy_member("student")
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_causal_lm(folder)
    empty = folder.parent / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_reward_model(empty)


def test_a_corrupt_value_head_is_a_checkpoint_error(copy_member):
    folder = copy_member("orm")
    (folder / HEAD_FILE).write_bytes(b"\x00garbage, not safetensors" * 4)
    with pytest.raises(CheckpointError, match="corrupt or mismatched value head"):
        load_reward_model(folder)


def test_a_value_head_of_another_size_is_a_checkpoint_error(copy_member):
    from safetensors.torch import save_file

    folder = copy_member("orm")
    save_file(
        {"head.weight": torch.zeros(1, 7), "head.bias": torch.zeros(1), "feature_head.weight": torch.zeros(1, 4)},
        str(folder / HEAD_FILE),
    )
    with pytest.raises(CheckpointError, match="value head"):
        load_reward_model(folder)


def test_a_missing_value_head_is_a_checkpoint_error(copy_member):
    folder = copy_member("sorm")
    (folder / HEAD_FILE).unlink()
    with pytest.raises(CheckpointError, match="not a reward model checkpoint"):
        load_reward_model(folder)


def test_a_corrupt_card_is_a_checkpoint_error(copy_member):
    folder = copy_member("student")
    (folder / CARD_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt checkpoint card"):
        load_causal_lm(folder)


def test_a_plain_hf_folder_without_a_card_loads(copy_member):
    folder = copy_member("student")
    (folder / CARD_NAME).unlink()
    assert read_card(folder) is None
    model, tok, card = load_causal_lm(folder)
    assert card is None and model.config.vocab_size == len(tok)
    with pytest.raises(CheckpointError, match="not a reward model checkpoint"):
        load_reward_model(folder)  # no card, no head: never guessed to be a reward model


def test_an_unreachable_hub_id_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="could not load"):
        load_causal_lm("glore-test-nobody/no-such-model")


def test_looks_local():
    assert not looks_local("org/model")
    assert looks_local("./model") and looks_local("/abs/model") and looks_local("~/m") and looks_local("a/b/c")


def test_atomic_save_keeps_the_old_checkpoint_when_save_raises(tmp_path):
    folder = tmp_path / "ckpt"
    atomic_save(folder, lambda tmp: (tmp / "weights").write_text("old"))

    def broken(tmp):
        (tmp / "weights").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save(folder, broken)
    assert (folder / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no .tmp or .old left behind


def test_atomic_save_turns_disk_errors_into_checkpoint_errors(tmp_path):
    folder = tmp_path / "ckpt"
    atomic_save(folder, lambda tmp: (tmp / "weights").write_text("old"))

    def full_disk(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError, match="No space left"):
        atomic_save(folder, full_disk)
    assert (folder / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_atomic_save_replaces_the_old_checkpoint_on_success(tmp_path):
    folder = tmp_path / "ckpt"
    atomic_save(folder, lambda tmp: (tmp / "a").write_text("old"))
    atomic_save(folder, lambda tmp: (tmp / "b").write_text("new"))
    assert sorted(p.name for p in folder.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_save_causal_lm_failure_keeps_the_previous_model(tokenizer, tmp_path, monkeypatch):
    model = make_policy(tokenizer, seed=5)
    folder = save_causal_lm(model, tokenizer, tmp_path / "m", Card(role="policy", base="tiny"))
    before = (folder / "model.safetensors").read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(tokenizer), "save_pretrained", fail)
    with pytest.raises(KeyboardInterrupt):
        save_causal_lm(make_policy(tokenizer, seed=6), tokenizer, folder, Card(role="policy", base="tiny"))
    assert (folder / "model.safetensors").read_bytes() == before
    assert json.loads((folder / CARD_NAME).read_text())["role"] == "policy"


def test_create_policy_matches_the_tokenizer(tokenizer):
    model = create_policy("tiny", tokenizer)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert 10_000 < count_parameters(model) < 100_000


def test_a_preset_base_needs_a_tokenizer():
    with pytest.raises(CheckpointError, match="needs a tokenizer"):
        preset_or_checkpoint("tiny")


def test_fingerprint_tells_tokenizers_apart(tokenizer):
    from glore_engine.testing import tiny_tokenizer

    assert fingerprint(tokenizer) == fingerprint(tokenizer)
    other = tiny_tokenizer(n_problems=30, seed=5)
    assert fingerprint(other) != fingerprint(tokenizer)
