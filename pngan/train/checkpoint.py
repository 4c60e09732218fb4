"""Training checkpoints: resumable, atomic, identity-checked.

Training checkpoint `<out_dir>/checkpoint.pt` (torch.save of a dict):
    format 'pngan-train-checkpoint', version, loop ('pngan' | 'denoiser'), step (optimizer steps
    done), identity (the config's identity_hash combined with digests of input weights: the
    frozen D_d, a fine-tuning start), config (dict), models,
    optimizers, schedulers (name -> state_dict), rng (python, numpy, torch, cuda), guard.

The final networks go into network files (`pngan.models.files`), which also read these
checkpoints under the same untrusted-file rules.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pngan.models.files import CHECKPOINT_FORMAT, FORMAT_VERSION
from pngan.models.weights import read_torch_file
from pngan.runtime import atomic_save
from pngan.train.distributed import DistContext, barrier

CHECKPOINT_NAME = "checkpoint.pt"


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
        state = read_torch_file(self.path)
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
            f"{self.path}: made with other model-shaping settings, input weights, training data or code (identity {stale}, now {self.identity}); "
            f"moved aside to {target.name} and starting fresh",
            flush=True,
        )

    def load(self, companions: list[Path] = ()) -> dict[str, Any] | None:
        """The checkpoint to resume from, or None. A mismatched one (and its `companions`, e.g.
        the logs it wrote) is moved aside first."""
        if self.ctx.is_main and self.path.exists():
            self._check_or_move_aside(list(companions))
        barrier(self.ctx)
        return read_torch_file(self.path) if self.path.exists() else None

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
