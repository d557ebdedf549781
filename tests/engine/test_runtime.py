"""Process settings and trackers: device choice, seeding, the in-memory tracker."""

from __future__ import annotations

import pytest

from glore_engine.errors import ConfigError
from glore_engine.runtime import pick_device, seed_everything
from glore_engine.tracking import NullTracker, ensure


def test_pick_device():
    import torch

    assert pick_device("cpu") == "cpu"
    assert pick_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            pick_device("cuda:0")


def test_seed_everything_makes_torch_and_numpy_repeat():
    import random

    import numpy as np
    import torch

    seed_everything(5)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(5)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_null_tracker_keeps_everything():
    tracker = NullTracker()
    assert ensure(None) is not tracker and ensure(tracker) is tracker
    tracker.log_metric("loss", 2, step=1)
    tracker.log_metric("loss", 1.5, step=2)
    tracker.log_artifact("model", "/x", {"role": "orm"})
    tracker.set_summary({"a": 1})
    tracker.set_summary({"b": 2})
    tracker.log_cases([{"index": 0}])
    assert tracker.last("loss") == 1.5 and tracker.last("nope") is None
    assert tracker.metrics[0] == ("loss", 2.0, 1) and tracker.artifacts == [("model", "/x", {"role": "orm"})]
    assert tracker.summary == {"a": 1, "b": 2} and tracker.cases == [{"index": 0}]


def test_null_tracker_children_are_trackers_of_their_own():
    from glore_engine.tracking import run_id_of

    root = NullTracker()
    with root.child("orm-data", name="s", config={"n": 2}, output_dir="/x") as child:
        child.log_metric("data/questions", 3)
    assert root.children == [("orm-data", child)] and root.metrics == []
    assert child.last("data/questions") == 3 and run_id_of(child) is None


# ---- threads on a shared machine ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "load", "online", "idle"),
    [(2, 0.1, 2, 2), (2, 1.0, 2, 1), (2, 8.0, 2, 1), (16, 4.2, 16, 12), (4, 32.0, 64, 2), (1, 0.0, 1, 1)],
)
def test_idle_cores_leave_the_busy_ones_to_their_owners(cores, load, online, idle):
    from glore_engine.runtime import idle_cores

    assert idle_cores(cores, load, online) == idle


def test_threads_follow_the_load_unless_glore_threads_says_otherwise():
    from glore_engine.runtime import choose_threads

    busy, stopped = (lambda: 1.0), (lambda: 0.0)  # what a glance at the others shows now
    assert choose_threads({}, cores=2, load=1.0, glance=busy).threads == 1  # one busy neighbour on two cores
    # the load average still counts a neighbour that stopped seconds ago: a glance says it is gone
    assert choose_threads({}, cores=2, load=1.0, glance=stopped).threads == 2
    assert choose_threads({}, cores=2, load=1.0, glance=lambda: None).threads == 1  # could not tell
    assert choose_threads({}, cores=2, load=2.0, glance=lambda: 2.5).threads == 1  # the lower figure counts
    assert choose_threads({}, cores=2, load=0.0).threads == 2
    assert choose_threads({"GLORE_THREADS": "3"}, cores=2, load=9.0).threads == 3
    assert choose_threads({"OMP_NUM_THREADS": "2"}, cores=2, load=9.0).threads == 2
    assert choose_threads({"GLORE_THREADS": "1", "OMP_NUM_THREADS": "2"}, cores=2, load=0).threads == 1
    assert choose_threads({"GLORE_THREADS": "3"}, cores=2, load=9.0).fixed  # kept, never adapted
    assert not choose_threads({}, cores=2, load=1.0, glance=busy).fixed
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ConfigError, match="GLORE_THREADS must be a whole number"):
            choose_threads({"GLORE_THREADS": bad}, cores=2, load=0)


def test_cpu_watch_counts_the_cores_the_others_used_not_ours(tmp_path):
    import os

    from glore_engine.runtime import CpuWatch

    hz = os.sysconf("SC_CLK_TCK")
    stat, now = tmp_path / "stat", {"wall": 100.0, "own": 5.0}

    def machine(busy_s: float, idle_s: float) -> None:  # /proc/stat's first line: user nice system idle ...
        stat.write_text(f"cpu  {round(busy_s * hz)} 0 0 {round(idle_s * hz)} 0 0 0 0 0 0\ncpu0 1 0 0 1\n")

    machine(0, 0)
    watch = CpuWatch(stat, min_window_s=0.5, clock=lambda: now["wall"], own=lambda: now["own"])
    now.update(wall=102.0, own=7.5)  # 2 s: 3 CPU seconds busy on the machine, 2.5 of them ours
    machine(3, 1)
    assert watch.others_busy() == pytest.approx(0.25)
    now["wall"] = 102.2  # too short a window to tell; it goes on
    assert watch.others_busy() is None
    now["wall"] = 103.0  # 1 s since the last answer: 2 more CPU seconds busy, none of them ours
    machine(5, 1)
    assert watch.others_busy() == pytest.approx(2.0)
    now["wall"] = 110.0
    machine(9, 1)
    watch.start()  # a new window: what came before it does not count
    now["wall"] = 111.0
    machine(9.5, 1)
    assert watch.others_busy() == pytest.approx(0.5)
    assert CpuWatch(tmp_path / "absent").others_busy() is None


def test_adapt_threads_leaves_the_others_their_cores(monkeypatch):
    """Between batches a server takes the cores the others left it, whatever the load average said at start."""
    import torch

    from glore_engine import runtime

    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(runtime, "_THREADS", runtime.ThreadChoice(1, "2 cores, 1-min load 1.0: 1 idle"))
        assert runtime.adapt_threads(0.1).threads == 2 and torch.get_num_threads() == 2
        assert runtime.adapt_threads(0.3) is None and runtime.thread_choice().threads == 2  # unchanged
        assert runtime.adapt_threads(None) is None  # nothing to tell yet
        assert runtime.adapt_threads(1.2).threads == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(runtime, "_THREADS", runtime.ThreadChoice(1, "GLORE_THREADS=1", fixed=True))
        assert runtime.adapt_threads(0.0) is None and torch.get_num_threads() == 1
        monkeypatch.setattr(runtime, "_THREADS", None)  # configure() never ran: the caller's torch settings stand
        assert runtime.adapt_threads(0.0) is None and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cgroup_quota(tmp_path):
    from glore_engine.runtime import cgroup_cpu_quota

    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")
    assert cgroup_cpu_quota(limit) == 1.5
    limit.write_text("max 100000\n")
    assert cgroup_cpu_quota(limit) is None
    assert cgroup_cpu_quota(tmp_path / "absent") is None


def test_configure_applies_the_choice_to_torch():
    """In a fresh process (the choice is made once per process): GLORE_THREADS reaches torch."""
    import os
    import subprocess
    import sys

    code = "from glore_engine.runtime import configure; import torch; c = configure(); print(c.threads, torch.get_num_threads())"
    env = {**os.environ, "GLORE_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["3", "3"]


def test_a_busy_figure_is_confirmed_by_a_glance_before_it_costs_threads(monkeypatch, tmp_path):
    """The others were busy during the last batch (a client sending requests); if they stopped, the
    next batch keeps every core; a neighbour still busy keeps its core."""
    from glore_engine import runtime

    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runtime, "_THREADS", runtime.ThreadChoice(2, "2 cores, 1-min load 0.0: 2 idle"))
    glances = []

    def glance(value):
        return lambda: glances.append(value) or value

    assert runtime.still_busy(1.0, glance(0.0)) == 0.0  # over: all cores
    assert runtime.still_busy(1.0, glance(0.9)) == 0.9  # still busy
    assert runtime.still_busy(0.6, glance(1.5)) == 0.6  # the lower figure counts
    assert runtime.still_busy(1.0, glance(None)) == 1.0  # could not tell: the last figure
    assert len(glances) == 4
    assert runtime.still_busy(0.2, glance(0.0)) == 0.2 and len(glances) == 4  # costs no thread: no glance
    assert runtime.still_busy(None, glance(0.0)) is None and len(glances) == 4
    monkeypatch.setattr(runtime, "_THREADS", runtime.ThreadChoice(1, "GLORE_THREADS=1", fixed=True))
    assert runtime.still_busy(1.0, glance(0.0)) == 1.0 and len(glances) == 4  # a fixed choice: nothing to decide


def test_a_glance_is_a_window_waited_out(tmp_path):
    import os

    from glore_engine import runtime

    hz = os.sysconf("SC_CLK_TCK")
    stat, now = tmp_path / "stat", {"wall": 10.0}
    stat.write_text("cpu  0 0 0 0 0 0 0 0 0 0\n")

    def sleep(seconds):  # meanwhile another process keeps 1.5 cores busy
        now["wall"] += seconds
        stat.write_text(f"cpu  {round(1.5 * seconds * hz)} 0 0 0 0 0 0 0 0 0\n")

    others = runtime.glance_others(2.0, sleep=sleep, stat=stat, clock=lambda: now["wall"], own=lambda: 0.0)
    assert others == pytest.approx(1.5)
