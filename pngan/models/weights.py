"""Load weight files into models, with errors that say exactly what does not fit.

Accepted files (`torch.load`, tensors only): a plain state dict, or a dict holding it under
'state_dict', 'params' or 'model' (MIRNet/MPRNet/PNGAN, KAIR/BasicSR and common checkpoints),
keys optionally prefixed 'module.' by DataParallel/DDP.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pngan.errors import CheckpointError, DataError

WRAPPER_KEYS = ("state_dict", "params", "model")
SHOWN = 5  # items listed per kind of mismatch

StateDict = Mapping[str, torch.Tensor]


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint", error: type[Exception] = CheckpointError) -> Any:
    """torch.load of tensors and plain values only (never code); any failure is one `error` line."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types; its advice (weights_only=False) must never reach the user
        if "can still be loaded" in str(err):
            raise error(f"{path}: holds Python objects besides tensors and plain values, which the kit never unpickles (it could run code); re-save its state_dict") from None
        raise error(f"{path}: not a PyTorch file, or damaged (truncated, or not written by torch.save)") from None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file into a plain, unprefixed state dict (see the module docstring)."""
    return unwrap_state_dict(read_torch_file(path, "weights file", DataError), str(path))


def unwrap_state_dict(obj: object, name: str = "<state dict>") -> dict[str, torch.Tensor]:
    """Take the state dict out of a checkpoint dict and strip 'module.' prefixes."""
    if not isinstance(obj, Mapping):
        raise DataError(f"{name}: expected a state dict, found {type(obj).__name__}")
    for key in WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise DataError(
            f"{name}: not a state dict: {len(not_tensors)} entries are not tensors "
            f"({_listing(not_tensors)}); expected tensors, or a dict with one of {WRAPPER_KEYS}"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights(
    model: nn.Module, source: str | os.PathLike | StateDict, strict: bool = True, *, name: str | None = None
) -> nn.Module:
    """Load `source` (a file path or a state dict) into `model` and return the model.

    `name` is how errors refer to the source (default: the path, or '<state dict>').

    Raises DataError naming the source and listing missing keys, unexpected keys and shape
    mismatches. With strict=False, missing and unexpected keys are tolerated (the matching keys
    load); shape mismatches always raise.
    """
    if isinstance(source, Mapping):
        name = name or "<state dict>"
        state = unwrap_state_dict(source, name)
    else:
        name, state = name or str(source), read_state_dict(source)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} file {list(state[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [("shape mismatches", mismatched)]
    if strict:
        problems = [("missing keys", missing), ("unexpected keys", unexpected), *problems]
    report = _report(problems)
    if report:
        raise DataError(f"{name}: weights do not fit {type(model).__name__}: {report}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=strict)
    return model


def layout(model: nn.Module) -> dict[str, list[int]]:
    """State-dict key -> shape (buffers and every path of a shared module included)."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def check_layout(model: nn.Module, layout_json_path: str | os.PathLike) -> None:
    """Assert that `model`'s state dict has exactly the keys and shapes of a layout JSON.

    The JSON is {"source": ..., "commit": ..., "keys": {key: shape}}. Raises AssertionError
    listing the differences (a test helper).
    """
    reference = json.loads(Path(layout_json_path).read_text())["keys"]
    actual = layout(model)
    missing = [k for k in reference if k not in actual]
    extra = [k for k in actual if k not in reference]
    wrong = [f"{k} {actual[k]} vs layout {reference[k]}" for k in reference if k in actual and actual[k] != reference[k]]
    report = _report(
        [("keys absent from the model", missing), ("keys not in the layout", extra), ("wrong shapes", wrong)]
    )
    if report:
        raise AssertionError(f"{type(model).__name__} differs from {layout_json_path}: {report}")


def _report(problems: list[tuple[str, list[str]]]) -> str:
    """'missing keys (2): a, b; shape mismatches (1): ...' for the non-empty kinds."""
    return "; ".join(f"{kind} ({len(items)}): {_listing(items)}" for kind, items in problems if items)


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else "")
