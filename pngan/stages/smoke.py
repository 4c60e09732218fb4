"""Smoke size: what a stage notebook runs with by hand or under nbval, where the pipeline injects
nothing and its outputs may not exist.

`SETTINGS` is the one place of every smoke value: per params.yaml section, the values that make
its stage run in seconds on a CPU (a setting not listed keeps its default). `settings(*sections)`
merges them as the pipeline merges params.yaml's sections for a stage. An input a notebook is
not given is made once with these values in a scratch folder (`pngan.paths.made_once`; e.g.
`pngan.data.prepared.given_or_smoke`), or, for the tables, read from the metrics files committed
with the repository (`committed`). This module imports nothing heavy: every stage reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SETTINGS: dict[str, dict[str, Any]] = {
    "prepare": {"profiles": "all", "max_pairs": 15, "patch_size": 48, "patches_per_image": 2, "eval_size": 64,
                "eval_blocks_per_image": 1},
    "runtime": {"precision": "fp32", "channels_last": True, "val_every": 3, "ckpt_every": 3, "log_every": 3},
    "denoiser_real": {"arch": "ridnet", "arch_kwargs": {"n_feats": 8, "n_blocks": 1, "reduction": 4, "mean_shift": False},
                      "crop": 32, "batch": 4, "steps": 6},
    "train_pngan": {"generator_kwargs": {"width": 8, "n_groups": 1, "n_mab": 1}, "discriminator_kwargs": {"width": 8},
                    "crop": 32, "batch": 2, "steps": 6},
    "train_pngan_aware": {"generator_kwargs": {"width": 8, "depth": 1}, "discriminator_kwargs": {"width": 8}, "level_knots": 5,
                          "crop": 32, "batch": 2, "steps": 6},
    "noise_models": {"samples": 2},
    "pgap": {"arch": "dncnn", "arch_kwargs": {"depth": 3, "width": 8}, "crop": 32, "batch": 4, "steps": 4, "val_every": 0},
    "finetune": {"starts": {"ridnet": None}, "fake_ratio": 0.5, "crop": 32, "batch": 4, "steps": 4, "val_every": 0},
    "inspect_noise": {"nlf_min_count": 100},
    "tables": {},
}


def settings(*sections: str) -> dict[str, Any]:
    """The smoke values of `sections`, merged in order (a later section's value wins)."""
    merged: dict[str, Any] = {}
    for name in sections:
        merged.update(SETTINGS.get(name, {}))
    return merged


def committed(path: str, start: str | Path | None = None) -> Path | None:
    """A pipeline output committed with the repository (e.g. reports/metrics/pgap.json), looked for
    from `start` (default: the current folder) and its parent (a notebook runs in notebooks/)."""
    base = Path.cwd() if start is None else Path(start)
    return next((root / path for root in (base, base.parent) if (root / path).exists()), None)
