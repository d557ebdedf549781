"""Typed configs: defaults < sources, unknown keys, value kinds checked, YAML files."""

from __future__ import annotations

import pytest

from glore_engine.config import build, read_yaml, to_dict
from glore_engine.errors import ConfigError
from glore_engine.labelling.orm_data import SampleConfig
from glore_engine.training.reward import RewardConfig


def test_later_sources_win_and_none_means_not_given():
    config = build(SampleConfig, {"n": 4, "seed": 1}, {"n": 2}, {"n": None, "max-new-tokens": 12})
    assert (config.n, config.seed, config.max_new_tokens, config.limit) == (2, 1, 12, 500)


def test_unknown_keys_fail_and_list_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'temp' for SampleConfig \(known: .*temperature"):
        build(SampleConfig, {"temp": 0.5})


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("temperature", 1, 1.0),
        ("n", 3.0, 3),
        ("model", 7, "7"),
        ("calculator", False, False),
        ("model", "m", "m"),
    ],
)
def test_unambiguous_values_are_coerced(key, value, expected):
    got = getattr(build(SampleConfig, {key: value}), key)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("n", 2.5, "must be an integer"),
        ("n", True, "must be an integer"),
        ("n", "8", "must be an integer"),
        ("temperature", "hot", "must be a number"),
        ("temperature", True, "must be a number"),
        ("calculator", "no", "must be true or false"),
        ("calculator", 1, "must be true or false"),
        ("model", ["a"], "must be a string"),
        ("backend", True, "must be a string"),
    ],
)
def test_wrong_kinds_are_rejected(key, value, message):
    with pytest.raises(ConfigError, match=f"config key '{key}' {message}"):
        build(SampleConfig, {key: value})


def test_post_init_checks_become_config_errors():
    with pytest.raises(ConfigError, match="role"):
        build(RewardConfig, {"role": "prm"})
    assert build(RewardConfig, {"role": "sorm", "lr": 1}).lr == 1.0


def test_read_yaml(tmp_path):
    assert read_yaml(None) == {}
    path = tmp_path / "c.yaml"
    path.write_text("n: 2\nsample:\n  k: 3\n")
    assert read_yaml(path) == {"n": 2, "sample": {"k": 3}}
    path.write_text("")
    assert read_yaml(path) == {}
    path.write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(path)
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "nope.yaml")


def test_to_dict_is_json_ready():
    import json

    data = to_dict(build(RewardConfig, {"role": "orm"}))
    assert data["role"] == "orm" and data["pairwise_weight"] == 0.5
    json.dumps(data)
