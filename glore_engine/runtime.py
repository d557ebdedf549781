"""Process-wide settings for fast, reproducible CPU/GPU work: allocator, threads, seeds, device."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

THREADS_ENV = "GLORE_THREADS"
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
PROC_STAT = Path("/proc/stat")
log = logging.getLogger("glore.runtime")


@dataclass(frozen=True)
class ThreadChoice:
    """How many intra-op threads torch runs, and why (shown in logs and the README's figures)."""

    threads: int
    reason: str
    fixed: bool = False  # set by the user or the caller (GLORE_THREADS, OMP_NUM_THREADS, configure(n)): kept


_THREADS: ThreadChoice | None = None  # set by configure(), once per process


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota if one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.floor(quota))) if quota else cores


def cgroup_cpu_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs granted by cgroup v2's cpu.max ("200000 100000" -> 2.0); None when unlimited or absent."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def idle_cores(cores: int, load: float, online: int | None = None) -> int:
    """Cores not taken by other runnable processes, at least 1.

    The load average counts the whole machine; when this process may use only some of its CPUs, its
    share of the load is taken as proportional.
    """
    online = max(online or cores, cores)
    busy = load * cores / online
    return max(1, min(cores, round(cores - busy)))


def choose_threads(
    env: Mapping[str, str] | None = None,
    cores: int | None = None,
    load: float | None = None,
    glance: Callable[[], float | None] | None = None,
) -> ThreadChoice:
    """GLORE_THREADS if set, else the user's OMP_NUM_THREADS, else the cores idle right now.

    Why: on a shared machine torch's default (one thread per core) oversubscribes the cores a busy
    neighbour already runs on, and its spinning OpenMP workers then cost several times the work itself
    (README, "Busy machine"). The 1-minute load average still counts a neighbour that stopped seconds
    ago, and a run's threads are chosen once: so a load that would cost a core is checked by a short
    glance at what the others use now (glance_others, or `glance`), and the lower figure counts.
    """
    if env is None:
        env = os.environ
    given = env.get(THREADS_ENV, "").strip()
    if given:
        return ThreadChoice(_thread_count(given), f"{THREADS_ENV}={given}", fixed=True)
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return ThreadChoice(int(omp), f"OMP_NUM_THREADS={omp}", fixed=True)
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average here: use every core
            return ThreadChoice(cores, f"{cores} cores, no load average")
    busy = _confirmed(load, cores, glance or glance_others)
    idle = idle_cores(cores, busy, os.cpu_count())
    reason = f"{cores} cores, 1-min load {load:.1f}" + (f", but the others use {busy:.1f} now" if busy < load else "")
    return ThreadChoice(idle, f"{reason}: {idle} idle ({THREADS_ENV} overrides)")


def _thread_count(text: str) -> int:
    from .errors import ConfigError

    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{THREADS_ENV} must be a whole number of threads, 1 or more; got {text!r}")
    return int(text)


def thread_choice() -> ThreadChoice | None:
    """What configure() chose, or None before it ran."""
    return _THREADS


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


def configure(threads: int | None = None) -> ThreadChoice:
    """Call once at start, before heavy torch work (CLI commands, the app, benchmarks).

    threads: torch's intra-op threads; None or 0: choose_threads() (GLORE_THREADS, else idle cores).
    A bad GLORE_THREADS raises ConfigError. Later calls return the first call's choice.
    """
    global _THREADS
    if _THREADS is not None:
        return _THREADS
    choice = ThreadChoice(threads, "asked for", fixed=True) if threads else choose_threads()
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tune_malloc()
    import torch

    torch.set_num_threads(choice.threads)
    _THREADS = choice
    log.info("torch threads: %d (%s)", choice.threads, choice.reason)
    return choice


class CpuWatch:
    """Cores the *other* processes kept busy over a window (from start(), or the last answer, to
    now): the machine's busy CPU time (/proc/stat) minus this process's own (os.times), over the
    wall time in between.

    Why: a long-running server (glore-app) chooses its threads at start, from the load average of
    whatever ran before it; and the load average counts its own worker threads too, so judging by it
    after a batch of its own it would see a busy machine. What others used is what to leave them.
    """

    def __init__(self, stat: Path = PROC_STAT, min_window_s: float = 0.5, clock=time.monotonic, own=None):
        self.stat, self.min_window_s, self.clock = stat, min_window_s, clock
        self.own = own or _own_cpu_s  # this process's CPU seconds, all its threads
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall, the machine's busy CPU seconds, this process's CPU seconds), None without /proc/stat."""
        try:
            fields = self.stat.read_text().split("\n", 1)[0].split()
            ticks = [int(v) for v in fields[1:]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is in user)
        return self.clock(), busy / hz, self.own()

    def start(self) -> None:
        """Begin a new window now."""
        self._last = self._sample()

    def others_busy(self) -> float | None:
        """Cores the others used since the last call that answered (None: no /proc/stat, or less than
        min_window_s since then: too short to tell, and the window goes on)."""
        now, last = self._sample(), self._last
        if now is None or last is None or now[0] - last[0] < self.min_window_s:
            return None
        self._last = now
        return max(0.0, (now[1] - last[1] - (now[2] - last[2])) / (now[0] - last[0]))


GLANCE_S = 0.15  # a fresh look at the other processes, before a batch would give up its threads


def glance_others(seconds: float = GLANCE_S, sleep=time.sleep, **watch_kwargs) -> float | None:
    """Cores the other processes use right now: a CpuWatch window of `seconds`, waited out here."""
    watch = CpuWatch(min_window_s=0.0, **watch_kwargs)
    sleep(seconds)
    return watch.others_busy()


def still_busy(others: float | None, glance=glance_others) -> float | None:
    """The last window's figure for the others, confirmed by a short glance when it would cost threads.

    Why: a server's window spans its previous batch, and what kept the others busy then may be over (on
    one machine, a client sending the requests the next batch serves): a batch that gives up a core for
    it runs a third slower. A neighbour still busy shows in the glance too; the lower figure counts.
    Only a figure that would leave a core idle costs the glance (GLANCE_S).
    """
    if others is None or _THREADS is None or _THREADS.fixed:
        return others
    return _confirmed(others, usable_cores(), glance)


def _confirmed(others: float, cores: int, glance) -> float:
    """others, or what a glance sees now if lower; glancing only when others would cost a core."""
    if idle_cores(cores, others, os.cpu_count()) >= cores:
        return others
    fresh = glance()
    return others if fresh is None else min(others, fresh)


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def adapt_threads(others: float | None) -> ThreadChoice | None:
    """Re-choose torch's threads from the cores the other processes used lately (CpuWatch), for a
    long-running process between its batches; a fixed choice (GLORE_THREADS, ...), a process that
    never ran configure() and others=None (nothing measured) leave the threads as they are.
    Returns the new choice when it changed, else None.
    Call it from the thread that runs the torch work (OpenMP's count is per thread)."""
    global _THREADS
    if _THREADS is None or _THREADS.fixed or others is None:
        return None
    cores = usable_cores()
    idle = idle_cores(cores, others, os.cpu_count())
    if idle == _THREADS.threads:
        return None
    import torch

    torch.set_num_threads(idle)
    _THREADS = ThreadChoice(idle, f"{cores} cores, others used {others:.1f} lately: {idle} idle")
    log.info("torch threads: %d (%s)", idle, _THREADS.reason)
    return _THREADS


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
    if not torch.cuda.is_available():
        return "cpu"
    from .distributed import world_size

    # one GPU per process of a launch (torchrun sets LOCAL_RANK): rank r of a machine samples on cuda:r
    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if world_size() > 1 else "cuda"
