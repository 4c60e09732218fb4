"""Figures that put noise models side by side with real noise, from `pngan.stats` results.

Every function takes its results for any number of models, in a mapping `name -> result`,
and returns a `matplotlib.figure.Figure`. Put the reference (the real noise) first: the first
model is always drawn in black, the others in seaborn's colour-blind-safe palette with
distinct line styles, so figures also read in greyscale.

Units: noise in 8-bit levels (/255), clean intensity in 8-bit levels, spatial frequency in
cycles per pixel, lags in pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from pngan.plots.common import (as_uint8, check_models, constrained_figure, grid_shape, legend_below, log_ticks,
                                model_styles, panel_grid, styled)
from pngan.stats import CHANNELS, NoiseStats

def _images_note(stats: Mapping[str, NoiseStats]) -> str:
    """How many images each model's statistics come from, for the figure title."""
    counts = {name: s.images for name, s in stats.items()}
    if len(set(counts.values())) == 1:
        count = next(iter(counts.values()))
        return f"{count} image{'s' if count != 1 else ''}"
    return "images: " + ", ".join(f"{name} {count}" for name, count in counts.items())


def _channel_label(channel: int | None) -> str:
    return "mean of R, G, B" if channel is None else f"{CHANNELS[channel]} channel"


def _channel_index(channel: int | None) -> int | None:
    if channel is not None and channel not in (0, 1, 2):
        raise ValueError(f"channel must be 0, 1, 2 (R, G, B) or None for their mean, got {channel}")
    return channel


def _select_channel(values: np.ndarray, channel: int | None) -> np.ndarray:
    return values.mean(axis=0) if _channel_index(channel) is None else values[channel]


# ---------------------------------------------------------------- all models at a glance

# (panel title, x label) of `statistics_overview`'s panels.
_OVERVIEW = {
    "std_ratio": ("Noise level", "std ÷ {reference}'s (same image)"),
    "lag1": ("Spatial correlation", "lag-1 autocorr. (h, v mean)"),
    "corr_rb": ("Colour correlation", "R–B noise correlation"),
    "excess_kurtosis": ("Tails", "excess kurtosis (0 = Gaussian)"),
    "leak": ("Content leak", "corr(noise level, edges)"),
}


def _overview_values(per_image: pd.DataFrame, reference: str) -> dict[str, dict[str, np.ndarray]]:
    table = per_image.set_index(["model", "image"])
    if table.index.duplicated().any():
        raise ValueError("per_image has repeated (model, image) rows; expected one row per model and image")
    ref_std = table.loc[reference, "std_255"]
    out: dict[str, dict[str, np.ndarray]] = {key: {} for key in _OVERVIEW}
    for model in dict.fromkeys(per_image["model"]):
        rows = table.loc[model]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["std_ratio"][model] = (rows["std_255"] / ref_std.reindex(rows.index)).to_numpy()
        out["lag1"][model] = (0.5 * (rows["lag1_h"] + rows["lag1_v"])).to_numpy()
        out["corr_rb"][model] = rows["corr_rb"].to_numpy()
        out["excess_kurtosis"][model] = rows["excess_kurtosis"].to_numpy()
        out["leak"][model] = rows["leak"].to_numpy()
    return {k: {m: v[np.isfinite(v)] for m, v in values.items()} for k, values in out.items()}


@styled
def statistics_overview(per_image: pd.DataFrame, reference: str | None = None) -> Figure:
    """Every model's per-image noise statistics beside the reference's, one row per model.

    per_image: `pngan.stats` per-image rows with a `model` and an `image` column (every model
    noising the same images). Panels: the noise std relative to the reference's on the same clean
    image (log scale: 1 = the same level), the lag-1 autocorrelation, the red-blue noise
    correlation, the excess kurtosis, the content leak (`pngan.stats.content_leak`: a model that
    smooths the image puts its edges into the noise). Boxes span the 25th-75th percentile, whiskers the 10th-90th
    (the summary table's spread), dots are images, the dashed line is the reference's median;
    the reference is drawn in black, every other model in one colour (the rows name them).
    reference: default the first model.
    """
    needed = {"model", "image", "std_255", "lag1_h", "lag1_v", "corr_rb", "excess_kurtosis", "leak"}
    missing = sorted(needed - set(per_image.columns))
    if missing:
        raise ValueError(f"per_image lacks column(s) {missing}")
    names = list(dict.fromkeys(per_image["model"]))
    if not names:
        raise ValueError("nothing to plot: per_image has no rows")
    reference = names[0] if reference is None else reference
    if reference not in names:
        raise ValueError(f"reference '{reference}' is not a model of per_image ({names})")
    values = _overview_values(per_image, reference)
    palette = sns.color_palette("colorblind")
    fig = constrained_figure(2.6 * len(_OVERVIEW), 0.32 * len(names) + 1.5)
    axes = fig.subplots(1, len(_OVERVIEW), sharey=True)
    rng = np.random.default_rng(0)  # dot jitter only
    for ax, (key, (title, xlabel)) in zip(axes, _OVERVIEW.items()):
        for row, name in enumerate(names):
            data = values[key][name]
            if not data.size:
                continue
            colour = "black" if name == reference else palette[0]
            ax.boxplot([data], positions=[row], orientation="horizontal", whis=(10, 90), widths=0.6,
                       showfliers=False, patch_artist=True, medianprops={"color": colour, "linewidth": 2},
                       boxprops={"facecolor": mpl.colors.to_rgba(colour, 0.15), "edgecolor": colour},
                       whiskerprops={"color": colour}, capprops={"color": colour})
            ax.scatter(data, row + rng.uniform(-0.18, 0.18, data.size), s=5, color=colour, alpha=0.5,
                       linewidths=0, zorder=3)
        marker = 1.0 if key == "std_ratio" else float(np.median(values[key][reference]))
        ax.axvline(marker, color="black", linestyle="--", linewidth=0.9, zorder=1)
        if key == "std_ratio":
            log_ticks(ax.xaxis)
        ax.set(title=title, xlabel=xlabel.format(reference=reference))
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set_ylim(len(names) - 0.5, -0.5)  # the reference on top
    fig.suptitle(f"Per-image noise statistics against {reference} (dashed: {reference}'s median; "
                 "box 25-75 %, whiskers 10-90 %, dots = images)")
    return fig


# ---------------------------------------------------------------- distributions


def _central_half_width(counts: np.ndarray, edges: np.ndarray, mass: float) -> float:
    """Smallest |edge| bound of the bins holding the central `mass` (counts: [under, bins..., over])."""
    cumulative = np.cumsum(counts) / counts.sum()
    first, last = np.searchsorted(cumulative, [(1 - mass) / 2, (1 + mass) / 2])  # indices into counts
    left = edges[int(np.clip(first - 1, 0, len(edges) - 1))]  # counts[k] is the bin [edges[k-1], edges[k]]
    right = edges[int(np.clip(last, 0, len(edges) - 1))]
    return float(max(abs(left), abs(right)))


@styled
def histograms(stats: Mapping[str, NoiseStats], log: bool = False, zoom_on: str | None = None) -> Figure:
    """Noise histograms per channel (one panel each), one line per model.

    The histograms pool every pixel of every image. The legend gives each model's median
    per-image std and excess kurtosis (kappa), as in the summary table (pooling images of
    different noise levels would give even AWGN a positive kurtosis), and, when any noise falls
    outside the histogram's edges, how much. `log` shows the tails on a log scale over the full
    edges; linear scale zooms on the central 99.5 % of the widest model, or of `zoom_on` (e.g.
    the real noise: far wider models then run off the sides).
    """
    names = check_models(stats)
    if zoom_on is not None and zoom_on not in names:
        raise ValueError(f"zoom_on '{zoom_on}' is not one of the models {names}")
    styles = model_styles(names)
    fig = constrained_figure(11, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    half_width = 0.0
    for name in names:
        hist, per_image = stats[name].histogram(), stats[name].per_image()
        levels = hist.edges * 255.0
        density = hist.density() / 255.0  # probability per 8-bit level
        label = f"{name} (σ {per_image['std_255'].median():.1f}, κ {per_image['excess_kurtosis'].median():+.2f})"
        outside = hist.outside().mean()
        if outside > 1e-3:
            label += f", {100 * outside:.1f} % beyond ±{max(abs(levels[0]), levels[-1]):.0f}"
        st = styles[name]
        for c, ax in enumerate(axes):
            ax.stairs(density[c], levels, baseline=None, color=st["color"], linestyle=st["linestyle"],
                      linewidth=st["linewidth"], label=label)
        if zoom_on in (None, name):
            half_width = max(half_width, _central_half_width(hist.counts.sum(axis=0), levels, 0.995))
    for c, ax in enumerate(axes):
        ax.set_title(f"{CHANNELS[c]} channel")
        ax.set_xlabel("noise y − x (8-bit levels)")
        if log:
            ax.set_yscale("log")
        else:
            ax.set_xlim(-half_width, half_width)
            ax.set_ylim(bottom=0)
    axes[0].set_ylabel("probability per 8-bit level")
    fig.suptitle(f"Noise histograms{' (log scale)' if log else ''}, all pixels of {_images_note(stats)}; "
                 "legend: median per-image std σ (8-bit levels) and excess kurtosis κ")
    legend_below(fig, axes[0], 2)
    return fig


def _channel_level_axes(axes: Any, intensity: str = "clean intensity x") -> None:
    """Titles and labels of a noise-std-against-intensity figure with one panel per channel."""
    for c, ax in enumerate(axes):
        ax.set(title=f"{CHANNELS[c]} channel", xlabel=f"{intensity} (8-bit levels)", xlim=(0, 255))
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("noise std (8-bit levels)")


@styled
def noise_level(stats: Mapping[str, NoiseStats]) -> Figure:
    """Noise level functions: noise std against clean intensity, one panel per channel.

    Each point is a clean-intensity bin at the mean intensity of its pixels; bins with fewer
    pixels than the NoiseStats' `nlf_min_count` are left out. Accumulate one camera / ISO per
    NoiseStats: pooled over different noise levels, each bin's std depends on which images
    happen to have pixels of that intensity, and the curve turns jagged.
    """
    names = check_models(stats)
    styles = model_styles(names)
    fig = constrained_figure(11, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    for name in names:
        nlf = stats[name].noise_level()
        for c, ax in enumerate(axes):
            ax.plot(nlf.intensity[c] * 255.0, nlf.std[c] * 255.0, markersize=3, label=name, **styles[name])
    _channel_level_axes(axes)
    min_count = min(s.nlf_min_count for s in stats.values())
    fig.suptitle(f"Noise level function, all pixels of {_images_note(stats)} "
                 f"(intensity bins with < {min_count} pixels hidden)")
    legend_below(fig, axes[0], min(len(names), 5))
    return fig


@styled
def level_functions(levels: Mapping[str, Any]) -> Figure:
    """Fitted noise level functions (`pngan.noise.level.NoiseLevel`, one per camera setting):
    noise std against clean intensity (or luminance: the levels' axis), one panel per channel;
    what a noise-aware generator is told."""
    names = check_models(levels)
    styles = model_styles(names)
    fig = constrained_figure(11, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    for name in names:
        level = levels[name]
        for c, ax in enumerate(axes):
            ax.plot(np.asarray(level.knots) * 255.0, np.asarray(level.sigma[c]) * 255.0, label=name, **styles[name])
    axis = {levels[name].axis for name in names}
    _channel_level_axes(axes, "clean luminance" if axis == {"luminance"} else "clean intensity x")
    fig.suptitle("Noise level functions fitted on the training split, per camera setting")
    legend_below(fig, axes[0], min(len(names), 5))
    return fig


def _group_models(groups: Mapping[str, Mapping[str, NoiseStats]]) -> list[str]:
    """Every model of any group, in first-seen order (the reference first)."""
    if not groups or not any(groups.values()):
        raise ValueError("nothing to plot: pass at least one group (name -> {model: NoiseStats})")
    return list(dict.fromkeys(name for models in groups.values() for name in models))


def _group_title(group: str, models: Mapping[str, NoiseStats]) -> str:
    count = max(s.images for s in models.values())
    return f"{group} ({count} image{'s' if count != 1 else ''})"


@styled
def histograms_by_group(groups: Mapping[str, Mapping[str, NoiseStats]], log: bool = True, columns: int = 3) -> Figure:
    """Noise histograms per group of images (camera profile, camera/ISO), R, G, B pooled, one panel each.

    groups: group name -> {model: NoiseStats of that group's images}, the reference model first
    in each. Pooling images of different noise levels turns every histogram into a heavy-tailed
    mixture; per group the shapes compare. Each panel spans 1.5 times the reference's central
    99.5 % (models far wider run off the sides); `log` shows the tails (a Gaussian is a parabola).
    """
    names = _group_models(groups)
    styles = model_styles(names)
    rows, cols = grid_shape(len(groups), columns)
    fig = constrained_figure(3.7 * cols, 2.8 * rows + 0.9)
    axes = panel_grid(fig, len(groups), columns, sharey=log)
    for i, (ax, (group, models)) in enumerate(zip(axes, groups.items())):
        reference = next(iter(models.values())).histogram()
        levels = reference.edges * 255.0
        half_width = max(5.0, 1.5 * _central_half_width(reference.counts.sum(axis=0), levels, 0.995))
        for name, st in models.items():
            hist = st.histogram()
            ax.stairs(hist.density().mean(axis=0) / 255.0, hist.edges * 255.0, baseline=None, label=name,
                      color=styles[name]["color"], linestyle=styles[name]["linestyle"],
                      linewidth=styles[name]["linewidth"])
        ax.set_xlim(-half_width, half_width)
        ax.set_title(_group_title(group, models))
        if i + cols >= len(groups):
            ax.set_xlabel("noise y − x (8-bit levels)")
        if i % cols == 0:
            ax.set_ylabel("probability per 8-bit level")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=1e-5)
        else:
            ax.set_ylim(bottom=0)
    fig.suptitle(f"Noise histograms per group{' (log scale)' if log else ''}, R, G, B pooled")
    legend_below(fig, axes[0], min(len(names), 5))
    return fig


@styled
def noise_level_by_group(groups: Mapping[str, Mapping[str, NoiseStats]], channel: int | None = None,
                         columns: int = 3, log: bool = True) -> Figure:
    """Noise level functions per group of images (camera profile, camera/ISO), one panel each.

    groups: group name -> {model: NoiseStats of that group's images}, the reference model first
    in each. One camera setting per panel keeps each curve a noise level function (pooled over
    settings it mixes levels). channel: None pools the pixels of R, G and B, each binned by its
    own clean intensity. `log`: a log std axis, on which equal gaps are equal ratios (what AKLD
    scores) and a model far noisier than the reference does not flatten the others.
    """
    names = _group_models(groups)
    styles = model_styles(names)
    rows, cols = grid_shape(len(groups), columns)
    fig = constrained_figure(3.7 * cols, 2.8 * rows + 0.9)
    axes = panel_grid(fig, len(groups), columns, sharex=True, sharey=log)
    shown = []
    for i, (ax, (group, models)) in enumerate(zip(axes, groups.items())):
        for name, st in models.items():
            nlf = st.noise_level(pool_channels=channel is None)
            row = 0 if channel is None else _channel_index(channel)
            std = nlf.std[row] * 255.0
            ax.plot(nlf.intensity[row] * 255.0, std, markersize=2.5, label=name, **styles[name])
            shown.append(std[np.isfinite(std) & (std > 0)])
        ax.set_title(_group_title(group, models))
        ax.set_xlim(0, 255)
        ax.tick_params(labelbottom=True)
        if i + cols >= len(groups):
            ax.set_xlabel("clean intensity x (8-bit levels)")
        if i % cols == 0:
            ax.set_ylabel("noise std (8-bit levels)")
    values = np.concatenate(shown)
    log = log and values.size > 0  # every bin hidden (too few pixels): nothing to put on a log axis
    for ax in axes:
        if log:
            log_ticks(ax.yaxis)
            ax.set_ylim(values.min() / 1.25, values.max() * 1.25)
        else:
            ax.set_ylim(bottom=0)
    fig.suptitle(f"Noise level function per group, {'R, G, B pooled' if channel is None else _channel_label(channel)}"
                 f"{' (log std axis: equal gaps = equal ratios)' if log else ''}")
    legend_below(fig, axes[0], min(len(names), 5))
    return fig


# ---------------------------------------------------------------- spatial and cross-channel structure


@styled
def autocorrelation_maps(stats: Mapping[str, NoiseStats], channel: int | None = None,
                         columns: int | None = None) -> Figure:
    """2-D autocorrelation R(dy, dx) per model on one shared diverging colour scale.

    The centre R(0, 0) = 1 is greyed out so the scale shows the off-centre structure; lags of
    11 x 11 and smaller are written in the cells. `columns`: panels per row (default: one row).
    """
    names = check_models(stats)
    maps = {n: _select_channel(stats[n].autocorrelation().values, channel).copy() for n in names}
    for m in maps.values():
        m[m.shape[0] // 2, m.shape[1] // 2] = np.nan
    vmax = max(0.05, *(np.nanmax(np.abs(m)) for m in maps.values()))
    vmax = np.ceil(vmax * 20) / 20  # a round 0.05 step, so colour bars of different figures compare
    cmap = sns.color_palette("vlag", as_cmap=True).with_extremes(bad="0.8")
    rows, cols = grid_shape(len(names), columns)
    fig = constrained_figure(2.6 * cols + 1.0, 3.0 * rows + 0.2)
    axes = panel_grid(fig, len(names), columns, sharex=True, sharey=True)
    for i, (ax, name) in enumerate(zip(axes, names)):
        m = maps[name]
        lag_m = m.shape[0] // 2
        image = ax.imshow(m, cmap=cmap, vmin=-vmax, vmax=vmax,
                          extent=(-lag_m - 0.5, lag_m + 0.5, lag_m + 0.5, -lag_m - 0.5))
        if m.shape[0] <= 11:
            for (iy, ix), v in np.ndenumerate(m):
                if np.isfinite(v) and abs(v) >= 0.005:
                    ax.text(ix - lag_m, iy - lag_m, f"{v:.2f}".replace("0.", "."), ha="center", va="center",
                            fontsize=5.5, color="white" if abs(v) > 0.6 * vmax else "black")
        ax.set_title(name)
        if i + cols >= len(names):  # the lowest panel of its column
            ax.set_xlabel("horizontal lag dx (px)")
        if i % cols == 0:
            ax.set_ylabel("vertical lag dy (px)")
        ax.tick_params(labelbottom=True)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.grid(False)
    fig.colorbar(image, ax=axes, shrink=0.85 if rows == 1 else 0.6, label="correlation R(dy, dx)")
    fig.suptitle(f"Noise autocorrelation, {_channel_label(channel)}, mean over {_images_note(stats)} "
                 "(centre R(0,0) = 1 in grey)")
    return fig


@styled
def autocorrelation_profiles(stats: Mapping[str, NoiseStats], channel: int | None = None) -> Figure:
    """Autocorrelation along the horizontal (R(0, dx)) and vertical (R(dy, 0)) axes, one line per model."""
    names = check_models(stats)
    styles = model_styles(names)
    fig = constrained_figure(9, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for name in names:
        values = _select_channel(stats[name].autocorrelation().values, channel)
        lag = values.shape[0] // 2
        lags = np.arange(lag + 1)
        axes[0].plot(lags, values[lag, lag:], label=name, **styles[name])
        axes[1].plot(lags, values[lag:, lag], label=name, **styles[name])
    for ax, title, axis in zip(axes, ("horizontal: R(0, dx)", "vertical: R(dy, 0)"), ("dx", "dy")):
        ax.axhline(0.0, color="0.5", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel(f"lag {axis} (px)")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    axes[0].set_ylabel("correlation")
    fig.suptitle(f"Noise autocorrelation profiles, {_channel_label(channel)}, mean over {_images_note(stats)} "
                 "(white noise: 0 beyond lag 0)")
    legend_below(fig, axes[0], min(len(names), 5))
    return fig


@styled
def power_spectra(stats: Mapping[str, NoiseStats], channel: int | None = None, log: bool = True) -> Figure:
    """Radial noise power spectra, normalised by the noise variance (white noise is flat at 1)."""
    names = check_models(stats)
    styles = model_styles(names)
    fig = constrained_figure(6.5, 4.4)
    ax = fig.subplots()
    for name in names:
        psd = stats[name].power_spectrum()
        ax.plot(psd.frequency, _select_channel(psd.power, channel), markersize=3, label=name, **styles[name])
    ax.axhline(1.0, color="0.5", linewidth=1.0, linestyle=":", label="white noise (flat at 1)")
    if log:
        log_ticks(ax.yaxis)
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("spatial frequency |f| (cycles/pixel; 0.5 = Nyquist)")
    ax.set_ylabel("power / noise variance")
    ax.set_title(f"Radial noise power spectrum, {_channel_label(channel)},\nmean over {_images_note(stats)}")
    legend_below(fig, ax, 3)
    return fig


@styled
def channel_correlations(stats: Mapping[str, NoiseStats], columns: int | None = None) -> Figure:
    """3 x 3 R, G, B noise correlation per model (mean over images), on one colour scale [-1, 1].

    `columns`: panels per row (default: one row)."""
    names = check_models(stats)
    cmap = sns.color_palette("vlag", as_cmap=True)
    rows, cols = grid_shape(len(names), columns)
    fig = constrained_figure(2.5 * cols + 1.0, 2.8 * rows + 0.2)
    axes = panel_grid(fig, len(names), columns)
    for ax, name in zip(axes, names):
        corr = stats[name].channel_correlation()
        image = ax.imshow(corr, cmap=cmap, vmin=-1, vmax=1)
        for (i, j), v in np.ndenumerate(corr):
            v = round(float(v), 2) + 0.0  # + 0.0 turns -0.0 into 0.0: no "-0.00" cells
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9, color="white" if abs(v) > 0.6 else "black")
        ax.set_xticks(range(3), CHANNELS)
        ax.set_yticks(range(3), CHANNELS)
        ax.grid(False)
        ax.set_title(name)
    fig.colorbar(image, ax=axes, shrink=0.85 if rows == 1 else 0.6, label="correlation")
    fig.suptitle(f"Cross-channel noise correlation, mean over {_images_note(stats)}")
    return fig


# ---------------------------------------------------------------- AKLD's maps


# KL(r) = 0.5 (r - 1 - ln r) at the metric's clip r = 10 (METHOD.md §2): no pixel scores more.
KL_MAX = 0.5 * (10.0 - 1.0 - np.log(10.0))
# The lowest KL a log-scaled map resolves: the local std off by about 3 %.
KL_LOG_MIN = 1e-3


def _map_panels(values: dict[str, np.ndarray], titles: dict[str, str], clean: Any | None, cmap: Any,
                norm: mpl.colors.Normalize, colorbar: dict[str, Any], suptitle: str, columns: int | None) -> Figure:
    names = list(values)
    h, w = next(iter(values.values())).shape
    panels = len(names) + (clean is not None)
    rows, cols = grid_shape(panels, columns)
    fig = constrained_figure(2.8 * cols + 1.0, (2.8 * h / w + 0.55) * rows + 0.35)
    axes = panel_grid(fig, panels, columns)
    map_axes = list(axes)
    if clean is not None:
        ax = map_axes.pop(0)
        ax.imshow(as_uint8(clean, "clean"))
        ax.set_title("clean\n")
        ax.set_axis_off()
    for ax, name in zip(map_axes, names):
        if values[name].shape != (h, w):
            raise ValueError(f"{name}: map of {values[name].shape} differs from the first map's {(h, w)}")
        image = ax.imshow(values[name], cmap=cmap, norm=norm)
        ax.set_title(titles[name])
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.85 if rows == 1 else 0.6, **colorbar)
    fig.suptitle(suptitle)
    return fig


def _channel_mean_map(name: str, m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim == 3 and m.shape[-1] == 3:
        return m.mean(axis=-1)
    if m.ndim == 2:
        return m
    raise ValueError(f"{name}: expected an H x W or H x W x 3 map, got shape {m.shape}")


@styled
def variance_maps(maps: Mapping[str, np.ndarray], clean: Any | None = None, columns: int | None = None,
                  vmax: float | None = None) -> Figure:
    """Local noise std per model from AKLD's local variance maps (`pngan.stats.local_variance_map`).

    Shows sqrt(V) in 8-bit levels, channel mean, on one shared colour scale from 0 to `vmax`
    (default: the 99.5th percentile over all models; pass e.g. a multiple of the real noise's
    so one far noisier model does not flatten the others: it then saturates, and the colour
    bar's arrow says so); `clean`, when given, is shown first for reference. `columns`: panels
    per row (default: one row).
    """
    names = check_models(maps)
    std = {n: np.sqrt(_channel_mean_map(n, maps[n])) * 255.0 for n in names}
    top = max(float(np.percentile(s, 99.5)) for s in std.values()) if vmax is None else float(vmax)
    if top <= 0:
        raise ValueError(f"vmax must be positive, got {vmax}")
    over = any(float(s.max()) > top for s in std.values())
    titles = {n: f"{n}\nmedian √V {np.median(std[n]):.1f}" for n in names}
    return _map_panels(std, titles, clean, "viridis", mpl.colors.Normalize(0.0, top),
                       {"label": "local noise std √V (8-bit levels)", "extend": "max" if over else "neither"},
                       "Local noise std from AKLD's local variance (mean of R, G, B)", columns)


@styled
def kl_maps(maps: Mapping[str, np.ndarray], clean: Any | None = None, columns: int | None = None,
            log: bool = False) -> Figure:
    """Per-pixel KL of each model's local variance against the real one (`pngan.stats.kl_map`).

    Channel mean, one shared colour scale; each title gives the map's mean, the image's AKLD
    for that one draw; `clean`, when given, is shown first for reference. `log`: a log colour
    scale over [KL_LOG_MIN, KL_MAX] (the metric's whole range), so that models far apart in
    AKLD show on one scale; linear: 0 to the 99.5th percentile over all models. `columns`:
    panels per row (default: one row).
    """
    names = check_models(maps)
    kl = {n: _channel_mean_map(n, maps[n]) for n in names}
    titles = {n: f"{n}\nmean KL {np.mean(np.asarray(maps[n])):.3f}" for n in names}
    if log:
        norm = mpl.colors.LogNorm(KL_LOG_MIN, KL_MAX, clip=True)
        label = "KL(local variance) per pixel, log scale\n0.01: std off by 10 %, 0.1: by 30 %, 1: ×2.1 or ×0.23"
    else:
        norm = mpl.colors.Normalize(0.0, max(1e-6, *(float(np.percentile(k, 99.5)) for k in kl.values())))
        label = "KL(local variance) per pixel"
    return _map_panels(kl, titles, clean, "magma", norm, {"label": label},
                       "Where each model's local noise variance departs from the real one (mean of R, G, B)", columns)
