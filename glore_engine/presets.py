"""Typed configs of the sampling and evaluation commands (training configs live beside their trainers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SampleConfig:
    model: str = ""  # policy checkpoint folder (or hub id)
    data: str = "synthetic"  # "synthetic", a GSM8K-format .jsonl path, or a hub dataset id
    split: str = "test"
    limit: int = 500  # problems
    data_seed: int = 0
    n: int = 8  # samples per problem
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256  # rows per forward pass (prompts x n)
    backend: str = "transformers"  # or "vllm" (GPU, optional extra)
    calculator: bool = False  # GSM8K-paper calculator: the engine writes the result of <<expr=
    device: str = ""  # "" picks cuda when present


@dataclass
class EvalStudentConfig:
    model: str = ""
    data: str = "synthetic"
    split: str = "test"
    limit: int = 500
    data_seed: int = 0
    k: int = 8  # temperature samples per problem for pass@k
    temperature: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 256
    backend: str = "transformers"
    calculator: bool = False
    device: str = ""
