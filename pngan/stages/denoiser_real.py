"""Stage `denoiser_real`: train the real-noise denoiser D_d that PNGAN freezes.

PNGAN aligns fake and real noisy images in the image domain through a pre-trained real-noise
denoiser (RIDNet in the paper). No pre-trained weights are reachable offline, so the kit
trains its own on the real training pairs and records its validation PSNR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pngan.data.patches import training_sets
from pngan.stages.common import copy_logs, file_or_smoke, out_dir as _out_dir, write_json
from pngan.stages.prepare import prepared_or_smoke
from pngan.train.loop import TRAIN_LOG, VAL_LOG
from pngan.train.config import DenoiserConfig
from pngan.train.denoiser import DENOISER_FILE, train_denoiser

SMOKE = dict(arch="ridnet", arch_kwargs={"n_feats": 8, "n_blocks": 1, "reduction": 4, "mean_shift": False},
             crop=32, batch=4, steps=6, val_every=3, ckpt_every=3, log_every=3, precision="fp32")


def run(data_dir: str | None = None, out_dir: str | None = None, metrics_file: str | None = None,
        plots_dir: str | None = None, **settings: Any) -> dict[str, Any]:
    """Train D_d with the `denoiser_real` settings; returns (and writes) the run summary."""
    data = prepared_or_smoke(data_dir)
    out = _out_dir(out_dir, "denoiser_real")
    cfg = DenoiserConfig.from_dict(settings, "denoiser_real")
    train, val = training_sets(data, cfg.crop, cfg.seed)
    summary = train_denoiser(cfg, train, val, out)
    copy_logs(out, plots_dir, (TRAIN_LOG, VAL_LOG))
    if metrics_file:
        write_json(metrics_file, summary)
    return summary


def denoiser_or_smoke(checkpoint: str | None) -> Path:
    """`checkpoint` if given; otherwise a tiny D_d trained once in scratch."""
    return file_or_smoke(checkpoint, "denoiser_real", DENOISER_FILE, lambda folder: run(out_dir=folder, **SMOKE))
