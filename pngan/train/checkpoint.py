"""Training checkpoints (resumable, atomic, identity-checked) and self-describing network files.

Training checkpoint `<out_dir>/checkpoint.pt` (torch.save of a dict):
    format 'pngan-train-checkpoint', version, loop ('pngan' | 'denoiser'), step (optimizer steps
    done), identity (the config's identity_hash combined with digests of input weights: the
    frozen D_d, a fine-tuning start), config (dict), models,
    optimizers, schedulers (name -> state_dict), rng (python, numpy, torch, cuda), guard.

Network file (the final generator or denoiser, loaded with one call by `load_network_file`):
    format 'pngan-generator' | 'pngan-denoiser', version, arch (registry name or
    'module:Class'), kwargs, state_dict, summary (training summary), plus kind-specific entries
    (the generator's `input`: setting and synthetic-noise model).
"""

from __future__ import annotations

import importlib
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from pngan import models
from pngan.runtime import atomic_save
from pngan.train.distributed import DistContext, barrier

CHECKPOINT_FORMAT = "pngan-train-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint or network file that is missing, unreadable or does not fit; names the file."""


def build_network(arch: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """A network by registry name (`pngan.models.REGISTRY`) or as 'package.module:Class'."""
    kwargs = dict(kwargs or {})
    if ":" not in arch:
        return models.build(arch, **kwargs)
    module, cls = arch.split(":", 1)
    return getattr(importlib.import_module(module), cls)(**kwargs)


def rng_state() -> dict[str, Any]:
    """Every global random state (python, numpy, torch CPU and CUDA), in torch-loadable types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from err


def _aside_path(path: Path, identity: str) -> Path:
    candidate = path.with_name(f"{path.name}.stale-{identity}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.stale-{identity}.{n}")
        n += 1
    return candidate


class CheckpointStore:
    """`<out_dir>/checkpoint.pt` of one run: loaded on start when its identity matches, moved aside
    (renamed `checkpoint.pt.stale-<its identity>`, never deleted) when it does not; written by rank 0
    only, atomically, with barriers so no process reads a half-finished save."""

    def __init__(self, out_dir: str | Path, loop: str, identity: str, ctx: DistContext):
        self.path = Path(out_dir) / CHECKPOINT_NAME
        self.loop, self.identity, self.ctx = loop, identity, ctx

    def _check_or_move_aside(self, companions: list[Path]) -> None:
        state = _read(self.path)
        found = state.get("identity") if isinstance(state, dict) else None
        if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT and state.get("loop") == self.loop and found == self.identity:
            return
        stale = str(found) if found else "unknown"
        target = _aside_path(self.path, stale)
        shutil.move(str(self.path), target)
        for extra in companions:
            if extra.exists():
                shutil.move(str(extra), _aside_path(extra, stale))
        print(
            f"{self.path}: made with different model-shaping settings or input weights (identity {stale}, now {self.identity}); "
            f"moved aside to {target.name} and starting fresh",
            flush=True,
        )

    def load(self, companions: list[Path] = ()) -> dict[str, Any] | None:
        """The checkpoint to resume from, or None. A mismatched one (and its `companions`, e.g.
        the logs it wrote) is moved aside first."""
        if self.ctx.is_main and self.path.exists():
            self._check_or_move_aside(list(companions))
        barrier(self.ctx)
        return _read(self.path) if self.path.exists() else None

    def save(self, step: int, config: dict[str, Any], **parts: Any) -> None:
        if self.ctx.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "version": FORMAT_VERSION,
                "loop": self.loop,
                "step": step,
                "identity": self.identity,
                "config": config,
                "rng": rng_state(),
                **parts,
            }
            atomic_save(state, self.path)
        barrier(self.ctx)


def save_network_file(path: str | Path, kind: str, arch: str, kwargs: dict[str, Any], network: nn.Module, **extra: Any) -> Path:
    """Write a self-describing network file (see the module docstring)."""
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
    """The dict of a network file of `kind` ('generator' | 'denoiser'); a PNGAN training
    checkpoint is accepted too and converted (its latest weights)."""
    path = Path(path)
    state = _read(path)
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path}: not a PNGAN {kind} file (no 'format' entry; plain state dicts need their architecture: use pngan.models)")
    if state["format"] == CHECKPOINT_FORMAT:
        return _network_from_checkpoint(path, state, kind)
    if state["format"] != f"pngan-{kind}":
        raise CheckpointError(f"{path}: is a '{state['format']}' file, expected a PNGAN {kind} ('pngan-{kind}')")
    if state.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {state['version']} is newer than this kit's ({FORMAT_VERSION}); update pngan")
    return state


def _network_from_checkpoint(path: Path, state: dict[str, Any], kind: str) -> dict[str, Any]:
    loop = "pngan" if kind == "generator" else "denoiser"
    if state.get("loop") != loop:
        raise CheckpointError(f"{path}: a training checkpoint of the '{state.get('loop')}' loop holds no {kind}")
    cfg = state["config"]
    if kind == "generator":
        from pngan.train.gan import input_spec

        return {
            "arch": cfg["generator"],
            "kwargs": cfg["generator_kwargs"],
            "state_dict": state["models"]["generator"],
            "input": input_spec(cfg),
            "summary": {"step": state["step"], "from_checkpoint": str(path)},
        }
    return {"arch": cfg["arch"], "kwargs": cfg["arch_kwargs"], "state_dict": state["models"]["denoiser"], "summary": {"step": state["step"]}}


def weights_from_file(path: str | Path, kind: str) -> dict[str, torch.Tensor]:
    """The state dict in a PNGAN network file or training checkpoint of `kind`, or in any other
    weights file (released checkpoints, via `pngan.models.weights.read_state_dict`)."""
    state = _read(Path(path))
    if isinstance(state, dict) and "format" in state:
        return read_network_file(path, kind)["state_dict"]
    from pngan.models.weights import read_state_dict

    return read_state_dict(path)


def load_network_file(path: str | Path, kind: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the network a file describes and load its weights: (network in eval mode, file dict)."""
    state = read_network_file(path, kind)
    try:
        network = build_network(state["arch"], state["kwargs"])
    except (KeyError, ImportError, AttributeError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot build {kind} '{state['arch']}' with {state['kwargs']} ({err})") from err
    try:
        network.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {state['arch']}({state['kwargs']}): {err}") from err
    return network.to(device).eval(), state
