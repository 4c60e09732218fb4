"""Figures that put noise models side by side with real noise.

Every function takes its results for any number of models, in a mapping `name -> result`,
and returns a `matplotlib.figure.Figure`. Put the reference (the real noise) first: the first
model is always drawn in black, the others in seaborn's colour-blind-safe palette with
distinct line styles, so figures also read in greyscale. Nothing here selects a backend:
figures come from pyplot under whatever backend is active (a notebook's inline one, Agg in a
headless script) and are released from pyplot at once, so a returned Figure shows once in a
notebook and no figure piles up in scripts; `save` writes a PNG at the fixed `DPI`.

Units: noise in 8-bit levels (/255), clean intensity in 8-bit levels, spatial frequency in
cycles per pixel, lags in pixels.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from pngan.stats import CHANNELS, NoiseStats, as_image_batch

DPI = 100  # figures are made and saved at this dpi, so crops map 1 image pixel to `scale` pixels
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The one style of every figure here (seaborn whitegrid, colour-blind palette), as a context.

    Every plotting function applies it itself; use it around your own plots to match them.
    It changes matplotlib's settings only inside the `with` block.
    """
    rc = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.8),
        "axes.prop_cycle": mpl.cycler(color=sns.color_palette("colorblind")),
        "axes.titlesize": 10,
        "figure.titlesize": 11,
        "legend.frameon": False,
        "image.interpolation": "nearest",
        "savefig.dpi": DPI,
    }
    with mpl.rc_context(rc):
        yield


def _styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with style():
            return plot(*args, **kwargs)

    return wrapper


def model_styles(names: list[str]) -> dict[str, dict[str, Any]]:
    """Line colour, style and marker per model: the first black and solid, then the palette."""
    palette = sns.color_palette("colorblind")
    out = {}
    for i, name in enumerate(names):
        color = "black" if i == 0 else palette[(i - 1) % len(palette)]
        out[name] = {"color": color, "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
                     "marker": _MARKERS[i % len(_MARKERS)], "linewidth": 1.8 if i == 0 else 1.4}
    return out


def _new_figure(**kwargs: Any) -> Figure:
    """A figure from pyplot (which lets the active backend, e.g. a notebook's, display it),
    released from pyplot's list of open figures at once: shown only when returned, never leaked."""
    fig = plt.figure(dpi=DPI, **kwargs)
    plt.close(fig)
    return fig


def _figure(width: float, height: float) -> Figure:
    return _new_figure(figsize=(width, height), layout="constrained")


def _check_models(results: Mapping[str, Any]) -> list[str]:
    if not results:
        raise ValueError("nothing to plot: pass at least one model (name -> result)")
    return list(results)


def _legend_below(fig: Figure, ax: Axes, columns: int) -> None:
    """One legend for the whole figure, below the panels (the panels share their lines)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(columns, len(labels)))


def _grid_shape(panels: int, columns: int | None) -> tuple[int, int]:
    """(rows, columns) of `panels` panels in rows of `columns` (None: one row)."""
    if columns is not None and (int(columns) != columns or columns < 1):
        raise ValueError(f"columns must be a positive integer or None (one row), got {columns!r}")
    columns = panels if columns is None else min(int(columns), panels)
    return -(-panels // columns), columns


def _panel_grid(fig: Figure, panels: int, columns: int | None, **kwargs: Any) -> list[Axes]:
    """`panels` axes, row by row in rows of `columns`; the unused cells of the last row removed."""
    rows, cols = _grid_shape(panels, columns)
    axes = list(fig.subplots(rows, cols, squeeze=False, **kwargs).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return axes[:panels]


def _log_ticks(axis: mpl.axis.Axis) -> None:
    """A log scale on `axis` labelled 1, 2, 5, 10, 20, ... (plain numbers, no powers of ten)."""
    (axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale)("log")
    axis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(mpl.ticker.NullFormatter())


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
    "std_ratio": ("Noise level", "noise std ÷ {reference}'s (same image)"),
    "lag1": ("Spatial correlation", "lag-1 autocorrelation (mean of h, v)"),
    "corr_rb": ("Colour correlation", "R–B noise correlation"),
    "excess_kurtosis": ("Tails", "excess kurtosis (0 = Gaussian)"),
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
    return {k: {m: v[np.isfinite(v)] for m, v in values.items()} for k, values in out.items()}


@_styled
def statistics_overview(per_image: pd.DataFrame, reference: str | None = None) -> Figure:
    """Every model's per-image noise statistics beside the reference's, one row per model.

    per_image: `pngan.stats` per-image rows with a `model` and an `image` column (every model
    noising the same images). Panels: the noise std relative to the reference's on the same clean
    image (log scale: 1 = the same level), the lag-1 autocorrelation, the red-blue noise
    correlation, the excess kurtosis. Boxes span the 25th-75th percentile, whiskers the 10th-90th
    (the summary table's spread), dots are images, the dashed line is the reference's median;
    the reference is drawn in black, every other model in one colour (the rows name them).
    reference: default the first model.
    """
    needed = {"model", "image", "std_255", "lag1_h", "lag1_v", "corr_rb", "excess_kurtosis"}
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
    fig = _figure(11, 0.32 * len(names) + 1.5)
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
            _log_ticks(ax.xaxis)
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


@_styled
def histograms(stats: Mapping[str, NoiseStats], log: bool = False, zoom_on: str | None = None) -> Figure:
    """Noise histograms per channel (one panel each), one line per model.

    The histograms pool every pixel of every image. The legend gives each model's median
    per-image std and excess kurtosis (kappa), as in the summary table (pooling images of
    different noise levels would give even AWGN a positive kurtosis), and, when any noise falls
    outside the histogram's edges, how much. `log` shows the tails on a log scale over the full
    edges; linear scale zooms on the central 99.5 % of the widest model, or of `zoom_on` (e.g.
    the real noise: far wider models then run off the sides).
    """
    names = _check_models(stats)
    if zoom_on is not None and zoom_on not in names:
        raise ValueError(f"zoom_on '{zoom_on}' is not one of the models {names}")
    styles = model_styles(names)
    fig = _figure(11, 3.6)
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
    _legend_below(fig, axes[0], 2)
    return fig


@_styled
def noise_level(stats: Mapping[str, NoiseStats]) -> Figure:
    """Noise level functions: noise std against clean intensity, one panel per channel.

    Each point is a clean-intensity bin at the mean intensity of its pixels; bins with fewer
    pixels than the NoiseStats' `nlf_min_count` are left out. Accumulate one camera / ISO per
    NoiseStats: pooled over different noise levels, each bin's std depends on which images
    happen to have pixels of that intensity, and the curve turns jagged.
    """
    names = _check_models(stats)
    styles = model_styles(names)
    fig = _figure(11, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    for name in names:
        nlf = stats[name].noise_level()
        for c, ax in enumerate(axes):
            ax.plot(nlf.intensity[c] * 255.0, nlf.std[c] * 255.0, markersize=3, label=name, **styles[name])
    for c, ax in enumerate(axes):
        ax.set_title(f"{CHANNELS[c]} channel")
        ax.set_xlabel("clean intensity x (8-bit levels)")
        ax.set_xlim(0, 255)
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("noise std (8-bit levels)")
    min_count = min(s.nlf_min_count for s in stats.values())
    fig.suptitle(f"Noise level function, all pixels of {_images_note(stats)} "
                 f"(intensity bins with < {min_count} pixels hidden)")
    _legend_below(fig, axes[0], min(len(names), 5))
    return fig


def _group_models(groups: Mapping[str, Mapping[str, NoiseStats]]) -> list[str]:
    """Every model of any group, in first-seen order (the reference first)."""
    if not groups or not any(groups.values()):
        raise ValueError("nothing to plot: pass at least one group (name -> {model: NoiseStats})")
    return list(dict.fromkeys(name for models in groups.values() for name in models))


def _group_title(group: str, models: Mapping[str, NoiseStats]) -> str:
    count = max(s.images for s in models.values())
    return f"{group} ({count} image{'s' if count != 1 else ''})"


@_styled
def histograms_by_group(groups: Mapping[str, Mapping[str, NoiseStats]], log: bool = True, columns: int = 3) -> Figure:
    """Noise histograms per group of images (camera profile, camera/ISO), R, G, B pooled, one panel each.

    groups: group name -> {model: NoiseStats of that group's images}, the reference model first
    in each. Pooling images of different noise levels turns every histogram into a heavy-tailed
    mixture; per group the shapes compare. Each panel spans 1.5 times the reference's central
    99.5 % (models far wider run off the sides); `log` shows the tails (a Gaussian is a parabola).
    """
    names = _group_models(groups)
    styles = model_styles(names)
    rows, cols = _grid_shape(len(groups), columns)
    fig = _figure(3.7 * cols, 2.8 * rows + 0.9)
    axes = _panel_grid(fig, len(groups), columns, sharey=log)
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
    _legend_below(fig, axes[0], min(len(names), 5))
    return fig


@_styled
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
    rows, cols = _grid_shape(len(groups), columns)
    fig = _figure(3.7 * cols, 2.8 * rows + 0.9)
    axes = _panel_grid(fig, len(groups), columns, sharex=True, sharey=log)
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
            _log_ticks(ax.yaxis)
            ax.set_ylim(values.min() / 1.25, values.max() * 1.25)
        else:
            ax.set_ylim(bottom=0)
    fig.suptitle(f"Noise level function per group, {'R, G, B pooled' if channel is None else _channel_label(channel)}"
                 f"{' (log std axis: equal gaps = equal ratios)' if log else ''}")
    _legend_below(fig, axes[0], min(len(names), 5))
    return fig


# ---------------------------------------------------------------- spatial and cross-channel structure


@_styled
def autocorrelation_maps(stats: Mapping[str, NoiseStats], channel: int | None = None,
                         columns: int | None = None) -> Figure:
    """2-D autocorrelation R(dy, dx) per model on one shared diverging colour scale.

    The centre R(0, 0) = 1 is greyed out so the scale shows the off-centre structure; lags of
    11 x 11 and smaller are written in the cells. `columns`: panels per row (default: one row).
    """
    names = _check_models(stats)
    maps = {n: _select_channel(stats[n].autocorrelation().values, channel).copy() for n in names}
    lag = next(iter(maps.values())).shape[0] // 2
    for m in maps.values():
        m[m.shape[0] // 2, m.shape[1] // 2] = np.nan
    vmax = max(0.05, *(np.nanmax(np.abs(m)) for m in maps.values()))
    vmax = np.ceil(vmax * 20) / 20  # a round 0.05 step, so colour bars of different figures compare
    cmap = sns.color_palette("vlag", as_cmap=True).with_extremes(bad="0.8")
    rows, cols = _grid_shape(len(names), columns)
    fig = _figure(2.6 * cols + 1.0, 3.0 * rows + 0.2)
    axes = _panel_grid(fig, len(names), columns, sharex=True, sharey=True)
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


@_styled
def autocorrelation_profiles(stats: Mapping[str, NoiseStats], channel: int | None = None) -> Figure:
    """Autocorrelation along the horizontal (R(0, dx)) and vertical (R(dy, 0)) axes, one line per model."""
    names = _check_models(stats)
    styles = model_styles(names)
    fig = _figure(9, 3.6)
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
    _legend_below(fig, axes[0], min(len(names), 5))
    return fig


@_styled
def power_spectra(stats: Mapping[str, NoiseStats], channel: int | None = None, log: bool = True) -> Figure:
    """Radial noise power spectra, normalised by the noise variance (white noise is flat at 1)."""
    names = _check_models(stats)
    styles = model_styles(names)
    fig = _figure(6.5, 4.4)
    ax = fig.subplots()
    for name in names:
        psd = stats[name].power_spectrum()
        ax.plot(psd.frequency, _select_channel(psd.power, channel), markersize=3, label=name, **styles[name])
    ax.axhline(1.0, color="0.5", linewidth=1.0, linestyle=":", label="white noise (flat at 1)")
    if log:
        _log_ticks(ax.yaxis)
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("spatial frequency |f| (cycles/pixel; 0.5 = Nyquist)")
    ax.set_ylabel("power / noise variance")
    ax.set_title(f"Radial noise power spectrum, {_channel_label(channel)},\nmean over {_images_note(stats)}")
    _legend_below(fig, ax, 3)
    return fig


@_styled
def channel_correlations(stats: Mapping[str, NoiseStats], columns: int | None = None) -> Figure:
    """3 x 3 R, G, B noise correlation per model (mean over images), on one colour scale [-1, 1].

    `columns`: panels per row (default: one row)."""
    names = _check_models(stats)
    cmap = sns.color_palette("vlag", as_cmap=True)
    rows, cols = _grid_shape(len(names), columns)
    fig = _figure(2.5 * cols + 1.0, 2.8 * rows + 0.2)
    axes = _panel_grid(fig, len(names), columns)
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
    rows, cols = _grid_shape(panels, columns)
    fig = _figure(2.8 * cols + 1.0, (2.8 * h / w + 0.55) * rows + 0.35)
    axes = _panel_grid(fig, panels, columns)
    map_axes = list(axes)
    if clean is not None:
        ax = map_axes.pop(0)
        ax.imshow(_as_uint8(clean, "clean"))
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


@_styled
def variance_maps(maps: Mapping[str, np.ndarray], clean: Any | None = None, columns: int | None = None,
                  vmax: float | None = None) -> Figure:
    """Local noise std per model from AKLD's local variance maps (`pngan.stats.local_variance_map`).

    Shows sqrt(V) in 8-bit levels, channel mean, on one shared colour scale from 0 to `vmax`
    (default: the 99.5th percentile over all models; pass e.g. a multiple of the real noise's
    so one far noisier model does not flatten the others: it then saturates, and the colour
    bar's arrow says so); `clean`, when given, is shown first for reference. `columns`: panels
    per row (default: one row).
    """
    names = _check_models(maps)
    std = {n: np.sqrt(_channel_mean_map(n, maps[n])) * 255.0 for n in names}
    top = max(float(np.percentile(s, 99.5)) for s in std.values()) if vmax is None else float(vmax)
    if top <= 0:
        raise ValueError(f"vmax must be positive, got {vmax}")
    over = any(float(s.max()) > top for s in std.values())
    titles = {n: f"{n}\nmedian √V {np.median(std[n]):.1f}" for n in names}
    return _map_panels(std, titles, clean, "viridis", mpl.colors.Normalize(0.0, top),
                       {"label": "local noise std √V (8-bit levels)", "extend": "max" if over else "neither"},
                       "Local noise std from AKLD's local variance (mean of R, G, B)", columns)


@_styled
def kl_maps(maps: Mapping[str, np.ndarray], clean: Any | None = None, columns: int | None = None,
            log: bool = False) -> Figure:
    """Per-pixel KL of each model's local variance against the real one (`pngan.stats.kl_map`).

    Channel mean, one shared colour scale; each title gives the map's mean, the image's AKLD
    for that one draw; `clean`, when given, is shown first for reference. `log`: a log colour
    scale over [KL_LOG_MIN, KL_MAX] (the metric's whole range), so that models far apart in
    AKLD show on one scale; linear: 0 to the 99.5th percentile over all models. `columns`:
    panels per row (default: one row).
    """
    names = _check_models(maps)
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


# ---------------------------------------------------------------- crops at 1:1


_CROP_PAD, _CROP_GAP, _CROP_TITLE = 6, 8, 20  # pixels


def _as_uint8(image: Any, name: str) -> np.ndarray:
    batch = as_image_batch(image, name)
    if batch.shape[0] != 1:
        raise ValueError(f"{name}: expected one image, got a batch of {batch.shape[0]}")
    return np.clip(np.rint(batch[0] * 255.0), 0, 255).astype(np.uint8)


def _crop_box(box: tuple[int, int, int, int] | None, h: int, w: int) -> tuple[slice, slice]:
    top, left, ch, cw = box if box is not None else ((h - min(h, 128)) // 2, (w - min(w, 128)) // 2,
                                                     min(h, 128), min(w, 128))
    if top < 0 or left < 0 or ch < 1 or cw < 1 or top + ch > h or left + cw > w:
        raise ValueError(f"box {(top, left, ch, cw)} (top, left, height, width) does not fit the {h}x{w} image")
    return slice(top, top + ch), slice(left, left + cw)


def _noise_view(noisy: np.ndarray, clean: np.ndarray, gain: float) -> np.ndarray:
    """0.5 + gain (y - x) as uint8: mid grey where there is no noise."""
    return np.clip(np.rint(127.5 + gain * (noisy.astype(np.float64) - clean)), 0, 255).astype(np.uint8)


def _auto_gain(noisy: list[np.ndarray], clean: np.ndarray) -> float:
    std = max(float((y.astype(np.float64) - clean).std()) for y in noisy)
    return max(1.0, round(32.0 / std, 1)) if std > 0 else 1.0


def _fitted_fontsize(text: str, width_px: float, largest: float = 9.0, smallest: float = 6.0) -> float:
    """The largest font size up to `largest` at which `text` spans at most `width_px` pixels."""
    width_pt = mpl.textpath.TextPath((0, 0), text, size=largest).get_extents().width
    return float(np.clip(largest * width_px * 72.0 / DPI / max(width_pt, 1e-9), smallest, largest))


@_styled
def crops(
    clean: Any,
    noisy: Mapping[str, Any],
    box: tuple[int, int, int, int] | None = None,
    scale: int = 1,
    amplify: float | str | None = None,
    columns: int | None = None,
    gain_from: str | None = None,
) -> Figure:
    """The same crop of the clean image and of each noisy version, pixel for pixel.

    box: (top, left, height, width) in pixels (default: the central 128 x 128 or less). Each
    image pixel becomes `scale` x `scale` figure pixels at `DPI`, so `save` (and a notebook's
    inline display) shows the noise unresampled. amplify: a gain g adds, under each row of
    panels, a row of 0.5 + g (y - x), mid grey = no noise; "auto" picks g so that +-3 std of the
    noisiest model's crop noise (or of `gain_from`'s, e.g. the real noise) spans +-96 of the
    +-127 levels (one gain for all, so the panels compare; noisier versions then clip).
    columns: panels per row, clean included (default: one row).
    """
    names = _check_models(noisy)
    if "clean" in names:
        raise ValueError("'clean' names the first column; give the noisy versions other names")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer (pixel replication), got {scale}")
    if gain_from is not None and gain_from not in names:
        raise ValueError(f"gain_from '{gain_from}' is not one of the noisy versions {names}")
    base = _as_uint8(clean, "clean")
    rows_slice, cols_slice = _crop_box(box, *base.shape[:2])
    panels = {"clean": base[rows_slice, cols_slice]}
    for name in names:
        image = _as_uint8(noisy[name], name)
        if image.shape != base.shape:
            raise ValueError(f"{name}: shape {image.shape} differs from the clean image's {base.shape}")
        panels[name] = image[rows_slice, cols_slice]
    if amplify == "auto":
        amplify = _auto_gain([panels[n] for n in ([gain_from] if gain_from else names)], panels["clean"])
    elif amplify is not None and (isinstance(amplify, str) or amplify <= 0):
        raise ValueError(f"amplify must be a positive gain, 'auto' or None, got {amplify!r}")

    rows_per_block = 2 if amplify else 1
    blocks, cols = _grid_shape(len(panels), columns)
    ph, pw = (n * scale for n in panels["clean"].shape[:2])
    block_height = rows_per_block * (_CROP_TITLE + ph) + (rows_per_block - 1) * _CROP_GAP
    width = 2 * _CROP_PAD + cols * pw + (cols - 1) * _CROP_GAP
    height = 2 * _CROP_PAD + blocks * block_height + (blocks - 1) * 2 * _CROP_GAP
    fig = _new_figure(figsize=(width / DPI, height / DPI))
    items = list(panels.items())
    for block in range(blocks):
        for row in range(rows_per_block):
            for col, (name, crop) in enumerate(items[block * cols:(block + 1) * cols]):
                _crop_panel(fig, (width, height), (_CROP_PAD + col * (pw + _CROP_GAP),
                            _CROP_PAD + block * (block_height + 2 * _CROP_GAP) + row * (_CROP_TITLE + ph + _CROP_GAP)),
                            (pw, ph), name, crop, panels["clean"], amplify if row == 1 else None, scale)
    return fig


def _crop_panel(fig: Figure, size: tuple[int, int], corner: tuple[int, int], panel: tuple[int, int], name: str,
                crop: np.ndarray, clean: np.ndarray, gain: float | None, scale: int) -> None:
    """One crop (`gain` None) or its amplified noise at pixel `corner` (left, top incl. title) of the figure."""
    (width, height), (left, top), (pw, ph) = size, corner, panel
    # whole-pixel axes positions: the image is drawn without resampling
    bottom = height - (top + _CROP_TITLE + ph)
    ax = fig.add_axes((left / width, bottom / height, pw / width, ph / height))
    ax.set_axis_off()
    if gain is not None and name == "clean":
        ax.text(0.5, 0.5, f"noise × {gain:g}\n(mid grey = 0)", ha="center", va="center", fontsize=9,
                transform=ax.transAxes)
        return
    shown = crop if gain is None else _noise_view(crop, clean, gain)
    ax.set_title(name, fontsize=_fitted_fontsize(name, pw + _CROP_GAP - 2), pad=3)
    ax.imshow(np.repeat(np.repeat(shown, scale, axis=0), scale, axis=1), interpolation="nearest")


# ---------------------------------------------------------------- output


def save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write `fig` as a PNG at `DPI` (atomically: never a half-written file) and close it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: figures are saved as PNG; use a .png file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")  # same folder: the rename is atomic
    try:
        fig.savefig(tmp, dpi=DPI, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    plt.close(fig)  # figures made here are released already; a user's own pyplot figure is closed
    return path


# ---------------------------------------------------------------- training runs


def _read_logs(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    run_dir = Path(run_dir)
    frames = []
    for name in ("train_log.csv", "val_log.csv"):
        path = run_dir / name
        frame = pd.read_csv(path) if path.is_file() else pd.DataFrame({"step": []})
        frames.append(frame.dropna(axis=1, how="all"))
    if frames[0].empty and frames[1].empty:
        raise FileNotFoundError(f"{run_dir}: no train_log.csv or val_log.csv (has the run started?)")
    return frames[0], frames[1]


def _lines(ax: Axes, frame: pd.DataFrame, columns: Mapping[str, str], title: str, ylabel: str, log: bool = False) -> None:
    styles = model_styles(list(columns.values()))
    for column, label in columns.items():
        if column in frame and frame[column].notna().any():
            data = frame[["step", column]].dropna()
            ax.plot(data["step"], data[column], label=label, **{**styles[label], "markersize": 3})
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    if log:
        _log_ticks(ax.yaxis)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


@_styled
def gan_curves(run_dir: str | os.PathLike) -> Figure:
    """The METHOD.md §6 diagnostics of a PNGAN run, from its CSV logs: losses, noise levels,
    validation AKLD, the discriminator's margin and each weighted term's pull on G."""
    train, val = _read_logs(run_dir)
    fig = _figure(11, 6)
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


@_styled
def denoiser_curves(run_dir: str | os.PathLike) -> Figure:
    """Training loss and validation PSNR (denoised vs noisy input) of a denoiser run."""
    train, val = _read_logs(run_dir)
    fig = _figure(9, 3.2)
    left, right = fig.subplots(1, 2)
    _lines(left, train, {"loss": "training loss"}, "Training loss", "loss", log=True)
    _lines(right, val, {"psnr": "denoised", "psnr_input": "noisy input"}, "Validation PSNR", "PSNR (dB)")
    return fig
