"""Stage `train_pngan_aware`: the noise-aware generator, trained with PNGAN's own losses.

G adds noise to the clean image at the level of its camera setting: the level map s comes from a
noise level function fitted per camera setting on the training split, G shapes white noise z
given [z, x, s], and the pixel-level discriminator judges [y, s], realistic noise *for this
level* (docs/METHOD.md §8.5). The frozen D_d of stage `denoiser_real` is the paper's; it is shared
with `train_pngan`, so the two generators differ only in what they are told. Checkpoints persist:
rerunning after a kill resumes.
"""

from __future__ import annotations

from typing import Any

from pngan.stages.training import run_generator_stage
from pngan.train.config import AwareGanConfig

SECTIONS = ("runtime", "train_pngan_aware")
CONFIG = AwareGanConfig


def run(data_dir: str | None = None, denoiser_checkpoint: str | None = None, out_dir: str | None = None,
        metrics_file: str | None = None, plots_dir: str | None = None, **settings: Any) -> dict[str, Any]:
    """Train the noise-aware generator with the `train_pngan_aware` settings; returns (and writes) the run summary."""
    return run_generator_stage("train_pngan_aware", settings, data_dir, denoiser_checkpoint, out_dir, metrics_file=metrics_file, plots_dir=plots_dir)
