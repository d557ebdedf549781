"""Typed configs: defaults < --config file.yaml < flags. Unknown keys fail loudly."""

from __future__ import annotations

import dataclasses
import json
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
        raise ConfigError(f"config key {name!r} must be an integer, got {value!r}")
    if hint is float and (isinstance(value, bool) or not isinstance(value, float)):
        raise ConfigError(f"config key {name!r} must be a number, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"config key {name!r} must be true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a YAML number where a name is expected: "split: 2024"
        raise ConfigError(f"config key {name!r} must be a string, got {value!r}")
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


def read_yaml(path: str | Path | None) -> dict:
    """A YAML mapping from a file, or {} for None."""
    if path is None:
        return {}
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def to_dict(config: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
