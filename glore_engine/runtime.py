"""Process-wide settings for fast, reproducible CPU/GPU work: allocator, threads, seeds, device."""

from __future__ import annotations

import ctypes
import os
import random
import sys

_CONFIGURED = False


def tune_malloc() -> bool:
    """Keep large tensors in glibc's heap instead of mmap/munmap on every allocation.

    On the project's 2-core VM page faults are slow; these settings took a 4M model from 0.6-1k to
    4.3k training tokens/s (docs/demo-task.md). A no-op where glibc's mallopt is absent.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    ok = libc.mallopt(m_mmap_threshold, 32 << 20)
    ok &= libc.mallopt(m_trim_threshold, 1 << 30)
    ok &= libc.mallopt(m_top_pad, 256 << 20)
    return bool(ok)


def configure(threads: int | None = None) -> None:
    """Call once before heavy torch work (CLI commands, the app, benchmarks)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    _CONFIGURED = True
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tune_malloc()
    import torch

    if threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(requested: str | None = None) -> str:
    """'cuda' when a GPU is present (or asked for), else 'cpu'."""
    import torch

    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            from .errors import ConfigError

            raise ConfigError(f"device {requested!r} requested but CUDA is not available")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"
