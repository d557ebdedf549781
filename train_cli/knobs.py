"""What each config knob means, for `--help`: one line per field name, or per `Config.field` where a
name means something else in one config. tests/cli checks that every option of every command has one.
"""

from __future__ import annotations

KNOBS = {
    # optimisation (every training command)
    "max_steps": "optimiser steps in all",
    "batch_size": "training examples per optimiser step",
    "lr": "peak learning rate (0 freezes the weights)",
    "warmup_steps": "steps of linear warm-up before the cosine decay",
    "min_lr_ratio": "the cosine decays to lr x this at max_steps (0..1)",
    "weight_decay": "AdamW weight decay on matrices",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "grad_clip": "clip the gradient norm to this (0: no clipping)",
    "save_every": "save the training state every N steps (0: only at the end; always on Ctrl-C)",
    "log_every": "log loss and learning rate every N steps",
    "mixed_precision": "auto (bf16 on a GPU that has it, else fp32), no, bf16, fp16 or fp8",
    "length_groups": "0: random batches; G: every G batches are drawn together and cut by length (less padding)",
    "max_length": "longest training text in tokens (longer ones are cut)",
    "rollout_triples": "local refiner: also triples from failing rollouts of verified prefixes, marked at their first step",
    "seed": "random seed (0 or more)",
    # data
    "data": "synthetic, svamp, a GSM8K-format .jsonl file or a hub dataset id",
    "split": "split of the data to read (train, dev, test)",
    "limit": "problems to use, from the start of the split",
    "data_seed": "synthetic: which draw of problems (0 or more)",
    "mix": "another source whose whole split joins the data (e.g. svamp); empty: none",
    "n_questions": "questions to use",
    # generation (sampling, labelling, evaluation)
    "model": "policy checkpoint: a model folder or a hub id",
    "student": "the policy that samples: a model folder or a hub id",
    "n": "samples per question",
    "k": "samples per problem",
    "temperature": "sampling temperature (0: greedy)",
    "max_new_tokens": "longest generated continuation in tokens",
    "shard_size": "solutions per shard, the unit of --resume",
    "backend": "generation backend: auto (vLLM on a GPU where installed, else transformers), transformers or vllm",
    "calculator": "the engine writes the result of each <<expr= annotation (GSM8K-paper calculator)",
    "device": "device to run on (cpu, cuda, cuda:1); empty: a GPU when present",
    "base": "the model to start from: a model folder or a hub id",
    # evaluation
    "threshold": "step score below which a step counts as an error (0..1)",
    "best_of": "student samples for the best-of-N baseline",
    "weakest": "with no step below the threshold, refine locally from the lowest-scoring step (else keep the draft)",
    # student SFT
    "StudentConfig.base": "an architecture preset (tiny, demo, small, medium), a model folder or a hub id",
    "n_train": "training problems (synthetic: generated; else the first N of the data)",
    "mix_repeat": "how many times the mixed-in source is repeated",
    "tokenizer_vocab": "preset bases: BPE vocabulary size (0: the preset's own)",
    "task_min_steps": "synthetic task: fewest steps per problem",
    "task_max_steps": "synthetic task: most steps per problem",
    "max_count": "synthetic task: largest count in a problem",
    "max_multiplier": "synthetic task: largest multiplier or divisor",
    "max_price": "synthetic task: largest price",
    # reward models
    "RewardConfig.base": "the backbone: the student, or a stronger verifier base (a model folder or a hub id)",
    "RewardConfig.batch_size": "questions per optimiser step (with all their distinct samples)",
    "cache_states": "frozen backbone, one process: read each solution once and train the heads on its cached step states",
    "RewardConfig.lr": "backbone learning rate (0 freezes it, keeping the base model's likelihood features)",
    "likelihood_features": "the value head also reads the backbone's token log-likelihood",
    "head_lr": "learning rate of the value head",
    "feature_lr": "learning rate of the likelihood-feature head",
    "pairwise_weight": "weight of the pairwise Bradley-Terry loss (-1: 0.5 for the ORM, 0 for the SORM)",
    "mixed_only": "ORM: train only on questions with both correct and incorrect samples",
    "balance_within_question": "ORM: correct and incorrect samples weigh the same within a question",
    "consistency": "SORM labels: a rollout verifies a step only if it uses that step's intermediate result",
    "propagate": "SORM labels: a good step makes every earlier step good",
    "balance": "SORM labels: per prefix length, downsample to as many bad as good labels",
    # refiners
    "kind": "global (rewrite the whole draft) or local (fix from the marked first error)",
    "RefinerConfig.base": "the student checkpoint the refiner is fine-tuned from",
    # data stages (--sample-* and --label-*)
    "OrmDataConfig.student": "the policy that samples (default: --base)",
    "OrmDataConfig.n_questions": "questions to sample solutions for",
    "OrmDataConfig.data_seed": "synthetic: which draw of questions (1: ones the student did not train on)",
    "OrmDataConfig.batch_size": "rows per generation pass (questions x n)",
    "SampleConfig.batch_size": "rows per generation pass (problems x n)",
    "SampleConfig.shard_size": "problems per shard, each seeded by its start (a torchrun launch shares the shards out)",
    "EvalStudentConfig.k": "temperature samples per problem for pass@k (0: greedy accuracy only)",
    "EvalStudentConfig.batch_size": "rows per generation pass",
    "EvalStudentConfig.shard_size": "problems per shard, each seeded by its start (a torchrun launch shares the shards out)",
    "PipelineEvalConfig.batch_size": "problems per pipeline batch (a torchrun launch shares the batches out)",
    "SormLabelConfig.k": "verifying rollouts per step prefix",
    "SormLabelConfig.n_questions": "label the samples of the first N questions (0: all)",
    "SormLabelConfig.batch_size": "rollouts per generation pass",
    # expert iteration
    "EIConfig.student": "the SFT student: round 1 samples from it",
    "rounds": "rounds of sample, keep the correct, fine-tune",
    "EIConfig.k": "samples per question and round",
    "EIConfig.n_questions": "training questions sampled each round",
    "init": "each round fine-tunes from sft (the student) or previous (the last round's model)",
    "accumulate": "train on the kept samples of every round so far, not the last round's only",
    "gold": "the questions' gold solutions join the kept samples",
    "EIConfig.data_seed": "synthetic: which draw of questions (0: the student's own SFT questions)",
    "sample_batch_size": "rows per generation pass when sampling",
    "eval_data": "data for the per-round evaluation (empty: no evaluation)",
    "eval_split": "split of eval_data",
    "eval_limit": "problems in each round's evaluation",
    "eval_k": "samples per problem for the evaluation's pass@k",
    "eval_start": "also evaluate the SFT student (round 0), the table's baseline",
    "EIConfig.max_steps": "optimiser steps of each round's fine-tuning",
}


def knob_help(cls: type, name: str) -> str | None:
    """The description of cls's field `name` (a subclass finds its parents' entries), or None."""
    for klass in cls.__mro__:
        if f"{klass.__name__}.{name}" in KNOBS:
            return KNOBS[f"{klass.__name__}.{name}"]
    return KNOBS.get(name)
