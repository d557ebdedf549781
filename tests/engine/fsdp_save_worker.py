"""Run by test_sharded_save.py under `torchrun --nproc_per_node 2` (gloo, CPU): FSDP2-shard a tiny
policy and a tiny reward model the way accelerate's FSDP plugin does (`fully_shard` on every decoder
layer, then on the root: TRANSFORMER_BASED_WRAP), train two steps, gather the full state dict with the
call accelerate's `get_state_dict` makes under FSDP2, and save it on rank 0 with the save functions the
training stages use. Rank 0 also writes the sharded model's outputs after training, to compare with.

accelerate itself cannot drive this on CPU: it enables DistributedType.FSDP only on an accelerator
(under torchrun on CPU it builds MULTI_CPU and ignores the plugin), see docs/scale-out.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard

from glore_engine.models.causal_lm import create_policy, save_causal_lm
from glore_engine.models.checkpoint import Card
from glore_engine.models.reward_model import RewardModel, save_reward_model
from glore_engine.testing import tiny_tokenizer

QUESTIONS = ["Tom has 3 apples and buys 4 more. How many?", "What is 12 - 5?", "2 + 2 = ?", "Half of 10?"]


def shard(model) -> None:
    """What accelerate's fsdp2_prepare_model does with TRANSFORMER_BASED_WRAP: layers, then the root."""
    layers = set(model._no_split_modules)
    for module in model.modules():
        if type(module).__name__ in layers:
            fully_shard(module)
    fully_shard(model)


def outputs(model, batch):
    if isinstance(model, RewardModel):
        return model(batch["input_ids"], batch["attention_mask"], solution_mask=batch["attention_mask"])
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def main(folder: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    models = {
        "policy": create_policy("tiny", tokenizer),
        "orm": RewardModel(create_policy("tiny", tokenizer), tokenizer=tokenizer),
    }
    torch.nn.init.normal_(models["orm"].head.weight, std=0.5)
    batch = dict(tokenizer(QUESTIONS, padding=True, return_tensors="pt"))
    mine = {k: v[rank::2] for k, v in batch.items()}  # each rank trains on its half of the batch
    for name, model in models.items():
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        shard(model)
        assert type(next(model.parameters())).__name__ == "DTensor"  # really sharded
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(2):
            outputs(model, mine).float().pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)  # every rank takes part; rank 0 gets it all
        model.eval()
        with torch.no_grad():
            after = outputs(model, batch)  # the sharded model's outputs (a collective too)
        if rank == 0:
            torch.save({"outputs": after, "state": state, "initial": initial, "batch": batch}, folder / f"{name}.pt")
            card = Card(role=name, base="tiny")
            if name == "policy":
                save_causal_lm(model, tokenizer, folder / name, card, state_dict=state)
            else:
                save_reward_model(model, tokenizer, folder / name, card, state_dict=state)
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
