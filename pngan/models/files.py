"""Network files: a trained generator or denoiser in one self-describing, untrusted-safe file.

    format 'pngan-generator' | 'pngan-denoiser', version, arch (a registry name of
    pngan.models), kwargs, state_dict, summary (training summary), plus kind-specific entries:
    a paper generator's `input` (the synthetic-input spec of pngan.noise.synthetic), or a
    noise-aware generator's `condition` (the levels it was trained with, pngan.noise.condition).

Users share these files, so nothing in one decides which code runs: `arch` and the input noise
resolve only through the kit's registries, their arguments are checked against the class's
signature, a condition is validated entry by entry, and only tensors and plain values are
unpickled. A training checkpoint (`pngan.train.checkpoint`) is accepted wherever a network file
is, under the same rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pngan import models
from pngan.errors import CheckpointError, DataError, KitError
from pngan.models.weights import load_weights, read_state_dict, read_torch_file
from pngan.noise.condition import LevelCondition
from pngan.noise.synthetic import build_input_noise, input_spec
from pngan.runtime import atomic_save

FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "pngan-train-checkpoint"
_LOOPS_OF = {"generator": ("pngan", "pngan_aware"), "denoiser": ("denoiser",)}


def save_network_file(path: str | Path, kind: str, arch: str, kwargs: dict[str, Any], network: nn.Module, **extra: Any) -> Path:
    """Write a network file (see the module docstring)."""
    state = {
        "format": f"pngan-{kind}",
        "version": FORMAT_VERSION,
        "arch": arch,
        "kwargs": dict(kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        **extra,
    }
    return atomic_save(state, path)


def read_network_file(path: str | Path, kind: str) -> dict[str, Any]:
    """The dict of a network file of `kind` ('generator' | 'denoiser'); a training checkpoint of
    the matching loop is converted (its latest weights)."""
    path = Path(path)
    state = read_torch_file(path, f"{kind} file")
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path}: not a PNGAN {kind} file (no 'format' entry); for a plain state dict build the network and use pngan.models.weights.load_weights")
    if state["format"] == CHECKPOINT_FORMAT:
        state = _network_from_checkpoint(path, state, kind)
    elif state["format"] != f"pngan-{kind}":
        raise CheckpointError(f"{path}: is a '{state['format']}' file, expected a PNGAN {kind} ('pngan-{kind}')")
    elif state.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {state['version']} is newer than this kit's ({FORMAT_VERSION}); update pngan")
    for key, typ in (("arch", str), ("kwargs", dict), ("state_dict", dict)):
        if not isinstance(state.get(key), typ):
            raise CheckpointError(f"{path}: entry '{key}' is missing or not a {typ.__name__}")
    return state


def _network_from_checkpoint(path: Path, state: dict[str, Any], kind: str) -> dict[str, Any]:
    if state.get("loop") not in _LOOPS_OF[kind]:
        raise CheckpointError(f"{path}: a training checkpoint of the '{state.get('loop')}' loop holds no {kind}")
    try:
        cfg, step = state["config"], state["step"]
        if state["loop"] == "pngan_aware":  # its task records the file's entries (kwargs as built, condition)
            entries = state["generator_file"]
            return {"arch": cfg["generator"], "kwargs": entries["kwargs"], "state_dict": state["models"]["generator"],
                    "condition": entries["condition"], "summary": {"step": step, "from_checkpoint": str(path)}}
        if kind == "generator":
            return {"arch": cfg["generator"], "kwargs": cfg["generator_kwargs"], "state_dict": state["models"]["generator"],
                    "input": input_spec(cfg), "summary": {"step": step, "from_checkpoint": str(path)}}
        return {"arch": cfg["arch"], "kwargs": cfg["arch_kwargs"], "state_dict": state["models"]["denoiser"], "summary": {"step": step}}
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: training checkpoint lacks its {kind} ({err!r} missing)") from None


def weights_from_file(path: str | Path, kind: str) -> dict[str, torch.Tensor]:
    """The state dict in a PNGAN network file or training checkpoint of `kind`, or in any other
    weights file (released checkpoints, via `pngan.models.weights.read_state_dict`)."""
    state = read_torch_file(path, "weights file")
    if isinstance(state, dict) and "format" in state:
        return read_network_file(path, kind)["state_dict"]
    return read_state_dict(path)


def load_network_file(path: str | Path, kind: str, device: torch.device | str = "cpu", arch: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the registry network a file names and load its weights: (network in eval mode,
    file dict). A generator file's input spec is checked against the noise registry too, and a
    noise-aware one's condition validated (`file dict["condition"]` is then a LevelCondition).

    `arch`, from the caller's own settings, replaces the file's architecture name: the way to load
    a network of the user's own code ('package.module:Class'), which a file can never name.
    """
    state = read_network_file(path, kind)
    try:
        if arch is None:
            network = models.REGISTRY.build(state["arch"], state["kwargs"])  # a file's names: never code
        else:
            network = models.REGISTRY.build(arch, state["kwargs"], trusted=True)
        if kind == "generator":
            _check_generator_input(state)
    except KitError as err:
        raise CheckpointError(f"{path}: {err}") from None
    try:
        load_weights(network, state["state_dict"], name=str(path))
    except DataError as err:
        raise CheckpointError(str(err)) from None
    return network.to(device).eval(), state


def _check_generator_input(state: dict[str, Any]) -> None:
    """A paper generator's input spec names registry noise; a noise-aware one's condition is
    valid (replaced by the parsed LevelCondition). A file holds one or the other."""
    if "condition" not in state:
        build_input_noise(state.get("input"))
        return
    if "input" in state:
        raise CheckpointError("holds both a synthetic-input spec and a level condition; a generator takes one or the other")
    state["condition"] = LevelCondition.from_dict(state["condition"])
