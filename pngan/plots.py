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


def _images_note(stats: Mapping[str, NoiseStats]) -> str:
    """How many images each model's statistics come from, for the figure title."""
    counts = {name: s.images for name, s in stats.items()}
    if len(set(counts.values())) == 1:
        count = next(iter(counts.values()))
        return f"{count} image{'s' if count != 1 else ''}"
    return "images: " + ", ".join(f"{name} {count}" for name, count in counts.items())


def _channel_label(channel: int | None) -> str:
    return "mean of R, G, B" if channel is None else f"{CHANNELS[channel]} channel"


def _select_channel(values: np.ndarray, channel: int | None) -> np.ndarray:
    if channel is not None and channel not in (0, 1, 2):
        raise ValueError(f"channel must be 0, 1, 2 (R, G, B) or None for their mean, got {channel}")
    return values.mean(axis=0) if channel is None else values[channel]


# ---------------------------------------------------------------- distributions


def _central_half_width(counts: np.ndarray, edges: np.ndarray, mass: float) -> float:
    """Smallest |edge| bound of the bins holding the central `mass` (counts: [under, bins..., over])."""
    cumulative = np.cumsum(counts) / counts.sum()
    first, last = np.searchsorted(cumulative, [(1 - mass) / 2, (1 + mass) / 2])  # indices into counts
    left = edges[int(np.clip(first - 1, 0, len(edges) - 1))]  # counts[k] is the bin [edges[k-1], edges[k]]
    right = edges[int(np.clip(last, 0, len(edges) - 1))]
    return float(max(abs(left), abs(right)))


@_styled
def histograms(stats: Mapping[str, NoiseStats], log: bool = False) -> Figure:
    """Noise histograms per channel (one panel each), one line per model.

    The histograms pool every pixel of every image. The legend gives each model's median
    per-image std and excess kurtosis (kappa), as in the summary table (pooling images of
    different noise levels would give even AWGN a positive kurtosis), and, when any noise falls
    outside the histogram's edges, how much. `log` shows the tails on a log scale over the full
    edges; linear scale zooms on the central 99.5 % of the widest model.
    """
    names = _check_models(stats)
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
    _legend_below(fig, axes[0], len(names))
    return fig


# ---------------------------------------------------------------- spatial and cross-channel structure


@_styled
def autocorrelation_maps(stats: Mapping[str, NoiseStats], channel: int | None = None) -> Figure:
    """2-D autocorrelation R(dy, dx) per model on one shared diverging colour scale.

    The centre R(0, 0) = 1 is greyed out so the scale shows the off-centre structure; lags of
    11 x 11 and smaller are written in the cells.
    """
    names = _check_models(stats)
    maps = {n: _select_channel(stats[n].autocorrelation().values, channel).copy() for n in names}
    lag = next(iter(maps.values())).shape[0] // 2
    for m in maps.values():
        m[m.shape[0] // 2, m.shape[1] // 2] = np.nan
    vmax = max(0.05, *(np.nanmax(np.abs(m)) for m in maps.values()))
    vmax = np.ceil(vmax * 20) / 20  # a round 0.05 step, so colour bars of different figures compare
    cmap = sns.color_palette("vlag", as_cmap=True).with_extremes(bad="0.8")
    fig = _figure(2.6 * len(names) + 1.0, 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    for ax, name in zip(axes, names):
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
        ax.set_xlabel("horizontal lag dx (px)")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.grid(False)
    axes[0].set_ylabel("vertical lag dy (px)")
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="correlation R(dy, dx)")
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
    _legend_below(fig, axes[0], len(names))
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
        ax.set_yscale("log")
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("spatial frequency |f| (cycles/pixel; 0.5 = Nyquist)")
    ax.set_ylabel("power / noise variance")
    ax.set_title(f"Radial noise power spectrum, {_channel_label(channel)},\nmean over {_images_note(stats)}")
    _legend_below(fig, ax, 2)
    return fig


@_styled
def channel_correlations(stats: Mapping[str, NoiseStats]) -> Figure:
    """3 x 3 R, G, B noise correlation per model (mean over images), on one colour scale [-1, 1]."""
    names = _check_models(stats)
    cmap = sns.color_palette("vlag", as_cmap=True)
    fig = _figure(2.5 * len(names) + 1.0, 3.0)
    axes = np.atleast_1d(fig.subplots(1, len(names)))
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
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="correlation")
    fig.suptitle(f"Cross-channel noise correlation, mean over {_images_note(stats)}")
    return fig


# ---------------------------------------------------------------- AKLD's maps


def _map_panels(values: dict[str, np.ndarray], titles: dict[str, str], clean: Any | None,
                cmap: str, vmax: float, colorbar_label: str, suptitle: str) -> Figure:
    names = list(values)
    h, w = next(iter(values.values())).shape
    panels = len(names) + (clean is not None)
    fig = _figure(2.8 * panels + 1.0, 2.8 * h / w + 0.9)
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    if clean is not None:
        ax = axes.pop(0)
        ax.imshow(_as_uint8(clean, "clean"))
        ax.set_title("clean\n")
        ax.set_axis_off()
    for ax, name in zip(axes, names):
        if values[name].shape != (h, w):
            raise ValueError(f"{name}: map of {values[name].shape} differs from the first map's {(h, w)}")
        image = ax.imshow(values[name], cmap=cmap, vmin=0.0, vmax=vmax)
        ax.set_title(titles[name])
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.85, label=colorbar_label)
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
def variance_maps(maps: Mapping[str, np.ndarray], clean: Any | None = None) -> Figure:
    """Local noise std per model from AKLD's local variance maps (`pngan.stats.local_variance_map`).

    Shows sqrt(V) in 8-bit levels, channel mean, on one shared colour scale (0 to the 99.5th
    percentile over all models); `clean`, when given, is shown first for reference.
    """
    names = _check_models(maps)
    std = {n: np.sqrt(_channel_mean_map(n, maps[n])) * 255.0 for n in names}
    vmax = max(float(np.percentile(s, 99.5)) for s in std.values())
    titles = {n: f"{n}\nmedian √V {np.median(std[n]):.1f}" for n in names}
    return _map_panels(std, titles, clean, "viridis", vmax, "local noise std √V (8-bit levels)",
                       "Local noise std from AKLD's local variance (mean of R, G, B)")


@_styled
def kl_maps(maps: Mapping[str, np.ndarray], clean: Any | None = None) -> Figure:
    """Per-pixel KL of each model's local variance against the real one (`pngan.stats.kl_map`).

    Channel mean, one shared colour scale; each title gives the map's mean, the image's AKLD
    for that one draw; `clean`, when given, is shown first for reference.
    """
    names = _check_models(maps)
    kl = {n: _channel_mean_map(n, maps[n]) for n in names}
    vmax = max(1e-6, *(float(np.percentile(k, 99.5)) for k in kl.values()))
    titles = {n: f"{n}\nmean KL {np.mean(np.asarray(maps[n])):.3f}" for n in names}
    return _map_panels(kl, titles, clean, "magma", vmax, "KL(local variance) per pixel",
                       "Where each model's local noise variance departs from the real one (mean of R, G, B)")


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


@_styled
def crops(
    clean: Any,
    noisy: Mapping[str, Any],
    box: tuple[int, int, int, int] | None = None,
    scale: int = 1,
    amplify: float | str | None = None,
) -> Figure:
    """The same crop of the clean image and of each noisy version, pixel for pixel.

    box: (top, left, height, width) in pixels (default: the central 128 x 128 or less). Each
    image pixel becomes `scale` x `scale` figure pixels at `DPI`, so `save` (and a notebook's
    inline display) shows the noise unresampled. amplify: a gain g adds a second row with
    0.5 + g (y - x), mid grey = no noise; "auto" picks g so that +-3 std of the noisiest
    model's crop noise spans +-96 of the +-127 levels (one gain for all, so the panels compare).
    """
    names = _check_models(noisy)
    if "clean" in names:
        raise ValueError("'clean' names the first column; give the noisy versions other names")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer (pixel replication), got {scale}")
    base = _as_uint8(clean, "clean")
    rows_slice, cols_slice = _crop_box(box, *base.shape[:2])
    panels = {"clean": base[rows_slice, cols_slice]}
    for name in names:
        image = _as_uint8(noisy[name], name)
        if image.shape != base.shape:
            raise ValueError(f"{name}: shape {image.shape} differs from the clean image's {base.shape}")
        panels[name] = image[rows_slice, cols_slice]
    if amplify == "auto":
        amplify = _auto_gain([panels[n] for n in names], panels["clean"])
    elif amplify is not None and (isinstance(amplify, str) or amplify <= 0):
        raise ValueError(f"amplify must be a positive gain, 'auto' or None, got {amplify!r}")

    rows = 2 if amplify else 1
    ph, pw = (n * scale for n in panels["clean"].shape[:2])
    width = 2 * _CROP_PAD + len(panels) * pw + (len(panels) - 1) * _CROP_GAP
    height = 2 * _CROP_PAD + rows * (_CROP_TITLE + ph) + (rows - 1) * _CROP_GAP
    fig = _new_figure(figsize=(width / DPI, height / DPI))
    for row in range(rows):
        # whole-pixel axes positions: the image is drawn without resampling
        bottom = height - (_CROP_PAD + row * (_CROP_TITLE + ph + _CROP_GAP) + _CROP_TITLE + ph)
        for col, (name, crop) in enumerate(panels.items()):
            left = _CROP_PAD + col * (pw + _CROP_GAP)
            ax = fig.add_axes((left / width, bottom / height, pw / width, ph / height))
            ax.set_axis_off()
            if row == 1 and name == "clean":
                ax.text(0.5, 0.5, f"noise × {amplify:g}\n(mid grey = 0)", ha="center", va="center",
                        fontsize=9, transform=ax.transAxes)
                continue
            if row == 1:
                crop, name = _noise_view(crop, panels["clean"], amplify), f"{name} noise"
            ax.set_title(name, fontsize=9, pad=3)
            ax.imshow(np.repeat(np.repeat(crop, scale, axis=0), scale, axis=1), interpolation="nearest")
    return fig


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
        ax.set_yscale("log")
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
