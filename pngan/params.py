"""params.yaml: every experiment setting, one section per pipeline stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

DEFAULT_FILE = Path("params.yaml")


class ParamsError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def load(path: str | Path = DEFAULT_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def section(params: dict[str, Any], name: str, path: str | Path = DEFAULT_FILE) -> dict[str, Any]:
    if name not in params:
        raise ParamsError(f"{path}: no section '{name}' (sections: {', '.join(params)})")
    value = params[name]
    if not isinstance(value, dict):
        raise ParamsError(f"{path}: section '{name}' must be a mapping, got {type(value).__name__}")
    return dict(value)


def lookup(params: dict[str, Any], path: str, where: str | Path = DEFAULT_FILE) -> Any:
    """The value at a dotted path such as 'finetune.sweep'."""
    value: Any = params
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise ParamsError(f"{where}: no key '{path}'")
        value = value[key]
    return value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`--set key=value` items as a dict, each value YAML-typed (`steps=5` is an int, `x=yes` a bool)."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set expects key=value, got '{item}'")
        values[key] = yaml.safe_load(raw)
    return values


def check_known(given: dict[str, Any], known: set[str], where: str) -> None:
    """Raise on names that are not among the known parameters, suggesting close matches."""
    import difflib

    unknown = [k for k in given if k not in known]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, known, n=1)
            hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ParamsError(f"{where}: unknown parameter {', '.join(hints)}; known: {', '.join(sorted(known))}")
