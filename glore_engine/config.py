"""Typed configs: defaults < --config file.yaml < flags. Unknown keys fail loudly."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, TypeVar, cast, get_type_hints

from .errors import ConfigError

C = TypeVar("C")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Coerce YAML/flag values where unambiguous (an int for a float field); reject wrong kinds."""
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key {name!r} must be an integer, got {value!r}", key=name)
    if hint is float and (isinstance(value, bool) or not isinstance(value, float)):
        raise ConfigError(f"config key {name!r} must be a number, got {value!r}", key=name)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"config key {name!r} must be true or false, got {value!r}", key=name)
    if hint is str and not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a YAML number where a name is expected: "split: 2024"
        raise ConfigError(f"config key {name!r} must be a string, got {value!r}", key=name)
    return value


def build(cls: type[C], *sources: dict | None) -> C:
    """Merge dicts left to right onto cls's defaults; reject keys cls does not have."""
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls))}
    hints = get_type_hints(cls)
    merged: dict[str, Any] = {}
    for source in sources:
        for key, value in (source or {}).items():
            key = key.replace("-", "_")
            if key not in fields:
                known = ", ".join(sorted(fields))
                raise ConfigError(f"unknown config key {key!r} for {cls.__name__} (known: {known})")
            if value is not None:
                merged[key] = _coerce(key, value, hints.get(key))
    try:
        return cls(**merged)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc


# Bounds for check_bounds: (lowest, highest), None = open.
POSITIVE = (1, None)  # counts and sizes: k, n, limit, batch and shard sizes, token limits
NON_NEGATIVE = (0, None)  # seeds, temperatures, rates, "0 means all/none" counts
UNIT = (0, 1)  # probabilities, thresholds and ratios


def check_bounds(config: Any, **bounds: tuple[float | None, float | None]) -> None:
    """Refuse a config whose values make no sense: every float must be finite (a NaN learning rate
    trains nothing and says nothing), and each named field must lie within its (low, high).

    Called from the configs' __post_init__, so YAML files, flags and library callers get the same rules.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, got {value}", key=f.name)
    for name, (low, high) in bounds.items():
        value = getattr(config, name)
        if low is not None and value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}", key=name)
        if high is not None and value > high:
            raise ConfigError(f"{name} must be at most {high}, got {value}", key=name)


def check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}", key=name)


def read_yaml(path: str | Path | None) -> dict:
    """A YAML mapping from a file, or {} for None."""
    if path is None:
        return {}
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def to_dict(config: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
