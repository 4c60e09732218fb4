"""params.yaml: every experiment setting, one section per pipeline stage.

`python -m pngan.params check` validates every section before anything runs (`make repro` does
it first); `python -m pngan.params flags OVERLAY.yaml` prints the `dvc exp run -S` arguments of
an overlay such as configs/paper.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from pngan.errors import ParamsError, one_line

DEFAULT_FILE = Path("params.yaml")


def load(path: str | Path = DEFAULT_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found")
    try:
        with path.open() as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({one_line(err)})") from None
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
        try:
            values[key] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ParamsError(f"--set {item}: the value is not valid YAML ({one_line(err)})") from None
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


def overlay_flags(overlay: dict[str, Any], base: dict[str, Any], where: str | Path) -> list[str]:
    """`-S section.key=value` arguments of `dvc exp run` that apply an overlay of params.yaml.

    Mappings are walked down to their leaves (so an overlay changes only what it names); every
    path must already exist in `base`, so a typo in the overlay is an error, not a silent no-op.
    An empty mapping in `base` (e.g. `extra_test_sets: {}`) is replaced as a whole.
    """
    flags = []

    def walk(node: Any, known: Any, path: str) -> None:
        if isinstance(node, dict) and node and isinstance(known, dict) and known:
            for key, value in node.items():
                if key not in known:
                    raise ParamsError(f"{where}: '{path}{key}' is not a parameter of params.yaml")
                walk(value, known[key], f"{path}{key}.")
            return
        text = yaml.safe_dump(node, default_flow_style=True, width=10**6).strip()
        flags.append(f"{path[:-1]}={text.removesuffix('...').strip()}")

    walk(overlay, base, "")
    return flags
