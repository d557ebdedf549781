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
