"""The kit's figures, by subject: noise statistics of models against real noise (`noise`), crops
at 1:1 (`crops`), training curves (`training`), result tables (`results`); one style and `save`
(`common`). Every function returns a `matplotlib.figure.Figure`; `save` writes it as a PNG.
"""

from pngan.plots.common import DPI, model_styles, save, style
from pngan.plots.crops import crops
from pngan.plots.noise import (KL_LOG_MIN, KL_MAX, autocorrelation_maps, autocorrelation_profiles, channel_correlations,
                               histograms, histograms_by_group, kl_maps, level_functions, noise_level, noise_level_by_group,
                               power_spectra, statistics_overview, variance_maps)
from pngan.plots.results import akld_by_model, finetune_ablation, pgap_psnr
from pngan.plots.training import denoiser_curves, gan_curves

__all__ = [
    "DPI", "model_styles", "save", "style", "crops", "KL_LOG_MIN", "KL_MAX", "autocorrelation_maps",
    "autocorrelation_profiles", "channel_correlations", "histograms", "histograms_by_group", "kl_maps", "level_functions", "noise_level",
    "noise_level_by_group", "power_spectra", "statistics_overview", "variance_maps", "akld_by_model",
    "finetune_ablation", "pgap_psnr", "denoiser_curves", "gan_curves",
]
