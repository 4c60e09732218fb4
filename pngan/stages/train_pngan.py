"""Stage `train_pngan`: adversarial training of the generator against a pixel-level discriminator.

G (SMNet by default) turns the synthetic input y_s (AWGN sigma = 50/255 in Setting 1) into a
fake noisy image. It is pulled towards real noise in the image domain through the frozen D_d
of stage `denoiser_real` (L1 and perceptual terms) and in the noise domain by a pixel-level
relativistic discriminator. Checkpoints persist between runs: rerunning after a kill resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pngan.stages.common import copy_logs, file_or_smoke, out_dir as _out_dir, write_json
from pngan.data.patches import training_sets
from pngan.stages.denoiser_real import denoiser_or_smoke
from pngan.stages.prepare import prepared_or_smoke
from pngan.models.files import load_network_file
from pngan.train.loop import TRAIN_LOG, VAL_LOG
from pngan.train.config import GanConfig
from pngan.train.gan import GENERATOR_FILE, train_pngan

SMOKE = dict(generator_kwargs={"width": 8, "n_groups": 1, "n_mab": 1}, discriminator_kwargs={"width": 8},
             crop=32, batch=2, steps=6, val_every=3, ckpt_every=3, log_every=3, precision="fp32")


def run(data_dir: str | None = None, denoiser_checkpoint: str | None = None, out_dir: str | None = None,
        metrics_file: str | None = None, plots_dir: str | None = None, **settings: Any) -> dict[str, Any]:
    """Train PNGAN with the `train_pngan` settings; returns (and writes) the run summary."""
    data = prepared_or_smoke(data_dir)
    out = _out_dir(out_dir, "train_pngan")
    cfg = GanConfig.from_dict(settings, "train_pngan")
    denoiser, _ = load_network_file(denoiser_or_smoke(denoiser_checkpoint), "denoiser")
    train, val = training_sets(data, cfg.crop, cfg.seed)
    summary = train_pngan(cfg, train, val, denoiser, out)
    copy_logs(out, plots_dir, (TRAIN_LOG, VAL_LOG))
    if metrics_file:
        write_json(metrics_file, summary)
    return summary


def generator_or_smoke(checkpoint: str | None) -> Path:
    """`checkpoint` if given; otherwise a tiny generator trained once in scratch."""
    return file_or_smoke(checkpoint, "train_pngan", GENERATOR_FILE, lambda folder: run(out_dir=folder, **SMOKE))
