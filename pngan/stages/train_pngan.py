"""Stage `train_pngan`: adversarial training of the generator against a pixel-level discriminator.

G (SMNet by default) turns the synthetic input y_s (AWGN sigma = 50/255 in Setting 1) into a
fake noisy image. It is pulled towards real noise in the image domain through the frozen D_d
of stage `denoiser_real` (L1 and perceptual terms) and in the noise domain by a pixel-level
relativistic discriminator. Checkpoints persist between runs: rerunning after a kill resumes.
"""

from __future__ import annotations

from typing import Any

from pngan.stages.training import run_generator_stage
from pngan.train.config import GanConfig

SECTIONS = ("runtime", "train_pngan")
CONFIG = GanConfig


def run(data_dir: str | None = None, denoiser_checkpoint: str | None = None, out_dir: str | None = None,
        metrics_file: str | None = None, plots_dir: str | None = None, **settings: Any) -> dict[str, Any]:
    """Train PNGAN with the `train_pngan` settings; returns (and writes) the run summary."""
    return run_generator_stage("train_pngan", settings, data_dir, denoiser_checkpoint, out_dir, metrics_file=metrics_file, plots_dir=plots_dir)
