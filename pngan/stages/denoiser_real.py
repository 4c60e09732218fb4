"""Stage `denoiser_real`: train the real-noise denoiser D_d that PNGAN freezes.

PNGAN aligns fake and real noisy images in the image domain through a pre-trained real-noise
denoiser (RIDNet in the paper). No pre-trained weights are reachable offline, so the kit
trains its own on the real training pairs and records its validation PSNR.
"""

from __future__ import annotations

from typing import Any

from pngan.data.prepared import given_or_smoke
from pngan.stages import smoke
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.training import train_real_denoiser
from pngan.train.config import DenoiserConfig

SECTIONS = ("runtime", "denoiser_real")
CONFIG = DenoiserConfig


def run(data_dir: str | None = None, out_dir: str | None = None, metrics_file: str | None = None,
        plots_dir: str | None = None, **settings: Any) -> dict[str, Any]:
    """Train D_d with the `denoiser_real` settings; returns (and writes) the run summary."""
    data = given_or_smoke(data_dir, smoke.settings("prepare"))
    out = _out_dir(out_dir, "denoiser_real")
    cfg = DenoiserConfig.from_dict(settings, "denoiser_real")
    return train_real_denoiser(cfg, data, out, plots_dir=plots_dir, metrics_file=metrics_file)
