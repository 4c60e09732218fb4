"""Training curves of a run, from its logs as data frames (the training loop owns the log files:
`pngan.train.loop.read_logs`)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pngan.plots.common import constrained_figure, log_ticks, model_styles, styled

def _lines(ax: Axes, frame: pd.DataFrame, columns: Mapping[str, str], title: str, ylabel: str, log: bool = False) -> None:
    """One line per logged column present (`columns`: column -> label), against the step."""
    styles = model_styles(list(columns.values()))
    for column, label in columns.items():
        if column in frame and frame[column].notna().any():
            data = frame[["step", column]].dropna()
            ax.plot(data["step"], data[column], label=label, **{**styles[label], "markersize": 3})
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    if log:
        log_ticks(ax.yaxis)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


@styled
def gan_curves(train: pd.DataFrame, val: pd.DataFrame) -> Figure:
    """The METHOD.md §6 diagnostics of a PNGAN run, from its training and validation logs: losses,
    noise levels, validation AKLD, the discriminator's margin and each weighted term's pull on G."""
    fig = constrained_figure(11, 6)
    axes = fig.subplots(2, 3)
    _lines(axes[0, 0], train, {"L_D": "L_D (discriminator)", "L_G": "L_G (adversarial, G)", "L1": "L1 through D_d"},
           "Losses", "loss")
    _lines(axes[0, 1], train, {"std_real_255": "real", "std_fake_255": "fake (G output)", "std_input_255": "input y_s"},
           "Noise std on training crops", "std (/255)")
    _lines(axes[0, 2], val, {"akld": "G output", "akld_input": "input y_s (AWGN)"}, "Validation AKLD", "AKLD (lower is better)", log=True)
    _lines(axes[1, 0], train, {"d_logit_gap": "mean C(real) - mean C(fake)"}, "Discriminator margin", "logit gap")
    _lines(axes[1, 1], train, {"d_real_wins": "P(C(real pixel) > C(fake pixel))"}, "Discriminator accuracy", "fraction")
    axes[1, 1].axhline(0.5, color="0.6", linewidth=0.8, linestyle=":")
    _lines(axes[1, 2], train, {"gradnorm_l1": "w_l1 · L1", "gradnorm_perceptual": "w_p · L_p", "gradnorm_adv": "w_adv · L_G"},
           "Pull of each weighted term on y_f", "gradient norm", log=True)
    return fig


@styled
def denoiser_curves(train: pd.DataFrame, val: pd.DataFrame) -> Figure:
    """Training loss and validation PSNR (denoised vs noisy input) of a denoiser run, from its logs."""
    fig = constrained_figure(9, 3.2)
    left, right = fig.subplots(1, 2)
    _lines(left, train, {"loss": "training loss"}, "Training loss", "loss", log=True)
    _lines(right, val, {"psnr": "denoised", "psnr_input": "noisy input"}, "Validation PSNR", "PSNR (dB)")
    return fig
