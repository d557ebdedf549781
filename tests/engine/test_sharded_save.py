"""The checkpoint of a sharded (FSDP2) training run is the whole model: two CPU processes (gloo) shard a
tiny policy and reward model as accelerate's FSDP plugin does, train, gather the full state dict with
accelerate's FSDP2 call and save it with the stages' save functions (`fsdp_save_worker.py`); here one
process loads each folder and gets the gathered weights and the sharded model's outputs exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

WORKER = Path(__file__).with_name("fsdp_save_worker.py")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fsdp")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([*command, str(folder)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def _check(reference: dict, own: dict) -> None:
    state = reference["state"]
    assert state and state.keys() == own.keys()  # every weight, none missing or extra
    assert all(state[k].shape == own[k].shape and (state[k] == own[k]).all() for k in state)
    assert any((state[k] != reference["initial"][k]).any() for k in state)  # trained, not the start


def test_a_sharded_policy_saves_whole_and_loads_in_one_process(saved):
    import torch

    from glore_engine.models.causal_lm import load_causal_lm

    reference = torch.load(saved / "policy.pt", weights_only=False)
    model, _, card = load_causal_lm(saved / "policy")
    batch = reference["batch"]
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert card.role == "policy" and torch.equal(logits, reference["outputs"])
    _check(reference, model.state_dict())


def test_a_sharded_reward_model_saves_whole_and_loads_in_one_process(saved):
    import torch

    from glore_engine.models.reward_model import load_reward_model

    reference = torch.load(saved / "orm.pt", weights_only=False)
    model, _, card = load_reward_model(saved / "orm", device="cpu")
    batch = reference["batch"]
    with torch.no_grad():
        values = model(batch["input_ids"], batch["attention_mask"], solution_mask=batch["attention_mask"])
    assert card.role == "orm" and torch.equal(values, reference["outputs"])
    _check(reference, model.state_dict())
