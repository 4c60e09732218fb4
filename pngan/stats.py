"""Statistics of image noise: how a noise model's `n = noisy - clean` differs from real noise.

Inputs are a clean image and its noisy version, either as numpy arrays in channels-last form
(H x W x 3, or N x H x W x 3 for a batch) or as torch tensors in channels-first form (3 x H x W
or B x 3 x H x W). uint8 values are divided by 255; float values are taken to be in [0, 1]
already. Noise is computed in [0, 1] units; the per-image summaries report std and mean in
/255 units like METHOD.md section 5.

Two levels:
- `NoiseStats` streams images one by one and accumulates everything the inspection figures
  show (histograms, moments, noise level function, autocorrelation, power spectrum,
  cross-channel correlation) plus one summary row per image, without holding the images.
- `summary_table(pairs_by_model, ...)` gives METHOD.md section 5's table: per-image scalars,
  then the median (and 10th / 90th percentiles of std) per model and metadata group.

The per-pixel local variance and KL maps that AKLD averages come from `pngan.metrics`
(`local_variance_map`, `kl_map` below only adapt inputs and outputs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import fft

CHANNELS = ("R", "G", "B")
# Per-image summary columns, in the order of METHOD.md section 5 (plus mean and moments).
SUMMARY_COLUMNS = (
    "std_255", "mean_255", "lag1_h", "lag1_v", "lag2_h",
    "corr_rg", "corr_gb", "corr_rb", "skewness", "excess_kurtosis", "leak",
)


# ---------------------------------------------------------------- inputs


def as_image_batch(image: Any, name: str = "image") -> np.ndarray:
    """One image or a batch -> float64 array (N, H, W, 3) in [0, 1].

    numpy arrays are channels-last (H x W x 3 or N x H x W x 3); torch tensors are
    channels-first (3 x H x W or B x 3 x H x W). uint8 is scaled by 1/255.
    """
    if isinstance(image, np.ndarray):
        arr, channel_axis = image, -1
    elif hasattr(image, "detach"):  # a torch tensor
        tensor = image.detach().cpu()
        arr = (tensor if str(tensor.dtype) == "torch.uint8" else tensor.double()).numpy()  # numpy has no bf16
        if arr.ndim in (3, 4):
            arr = np.moveaxis(arr, -3, -1)
        channel_axis = -1
    else:
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(image).__name__}")
    if arr.ndim not in (3, 4) or arr.shape[channel_axis] != 3:
        layout = "H x W x 3 (numpy)" if isinstance(image, np.ndarray) else "3 x H x W or B x 3 x H x W (torch)"
        raise ValueError(f"{name}: expected a 3-channel image laid out {layout}, got shape {tuple(image.shape)}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float64) / 255.0
    else:
        arr = arr.astype(np.float64)
        # unclipped model outputs may overshoot [0, 1] a little; a 0-255 float image is a units error
        if arr.size and (arr.max() > 2.0 or arr.min() < -1.0):
            raise ValueError(f"{name}: float values span [{arr.min():.3g}, {arr.max():.3g}]; float images must be "
                             "in [0, 1] (pass uint8 for 0-255 data)")
    return arr[None] if arr.ndim == 3 else arr


def iter_noise(clean: Any, noisy: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (clean, noise) per image, each H x W x 3 float64 in [0, 1] units."""
    c, y = as_image_batch(clean, "clean"), as_image_batch(noisy, "noisy")
    if c.shape != y.shape:
        raise ValueError(f"clean and noisy differ in shape: {c.shape[0]} x {c.shape[1]}x{c.shape[2]} "
                         f"vs {y.shape[0]} x {y.shape[1]}x{y.shape[2]} (images x height x width)")
    for ci, yi in zip(c, y):
        yield ci, yi - ci


# ---------------------------------------------------------------- per-image statistics


def autocorrelation(noise: np.ndarray, max_lag: int = 5) -> np.ndarray:
    """Spatial autocorrelation per channel: (3, 2L+1, 2L+1), R[c, L+dy, L+dx].

    R(d) is the Pearson correlation between the noise and its copy shifted by d = (dy, dx),
    over the pixels where both exist (what np.corrcoef of the two shifted crops gives, and
    how METHOD.md section 5 measured it); R(0) = 1 and R(d) = R(-d). The products come from a
    zero-padded FFT (linear, never wrapping around the border), the crop sums from an integral
    image, so every lag costs the same whatever L.
    """
    h, w, _ = noise.shape
    if max_lag < 0 or max_lag >= min(h, w):
        raise ValueError(f"max_lag must be in [0, {min(h, w) - 1}] for a {h}x{w} image, got {max_lag}")
    # Channels first and contiguous: the FFTs and cumulative sums run about twice as fast.
    # Pearson ignores the mean; removing it keeps the sums well conditioned.
    centred = np.empty((3, h, w))
    np.subtract(np.moveaxis(noise, -1, 0), noise.reshape(-1, 3).mean(axis=0)[:, None, None], out=centred)
    shape = (fft.next_fast_len(h + max_lag), fft.next_fast_len(w + max_lag, real=True))
    products = fft.irfft2(np.abs(fft.rfft2(centred, s=shape)) ** 2, s=shape)
    lags = np.arange(-max_lag, max_lag + 1)
    sum_ab = products[:, lags[:, None] % shape[0], lags[None, :] % shape[1]]  # (3, 2L+1, 2L+1)
    count = np.outer(h - np.abs(lags), w - np.abs(lags))
    sum_b, sum_bb = _crop_sums(centred, lags), _crop_sums(centred**2, lags)  # crops of n(p)
    sum_a, sum_aa = sum_b[:, ::-1, ::-1], sum_bb[:, ::-1, ::-1]  # crops of n(p + d) = crops of n(p) at -d
    cov = sum_ab / count - sum_a * sum_b / count**2
    var_a, var_b = sum_aa / count - (sum_a / count) ** 2, sum_bb / count - (sum_b / count) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(var_a * var_b)


def _crop_sums(values: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Sum of `values` (C, H, W) over the pixels p whose shift p + (dy, dx) stays inside, per lag pair.

    Only the rows and columns of the integral image that crop corners touch are formed.
    """
    _, h, w = values.shape
    r0, r1 = np.maximum(0, -lags), h - np.maximum(0, lags)
    c0, c1 = np.maximum(0, -lags), w - np.maximum(0, lags)
    rows = np.unique(np.concatenate([r0, r1]))
    cols = np.unique(np.concatenate([c0, c1]))
    row_prefix = np.concatenate([np.zeros((values.shape[0], 1, w)), values.cumsum(axis=1)], axis=1)[:, rows]
    col_prefix = np.concatenate([np.zeros(row_prefix.shape[:2] + (1,)), row_prefix.cumsum(axis=2)], axis=2)
    integral = col_prefix[:, :, cols]  # integral[:, i, j] = sum of values[:, :rows[i], :cols[j]]
    ri0, ri1 = np.searchsorted(rows, r0), np.searchsorted(rows, r1)
    ci0, ci1 = np.searchsorted(cols, c0), np.searchsorted(cols, c1)
    return (integral[:, ri1[:, None], ci1[None, :]] - integral[:, ri0[:, None], ci1[None, :]]
            - integral[:, ri1[:, None], ci0[None, :]] + integral[:, ri0[:, None], ci0[None, :]])


def power_spectrum(noise: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radially averaged noise power spectrum per channel, normalised so white noise is flat at 1.

    P(f) = |DFT(n - mean)|^2 / (H W var), whose mean over all frequencies is exactly 1 (Parseval).
    Averaged over annuli of radius |f| (cycles/pixel) in `bins` equal bins on (0, 0.5]; the DC
    term and the corners beyond 0.5 are left out. Returns (edges (bins+1,), power (3, bins),
    frequencies per bin (bins,)).
    """
    h, w, _ = noise.shape
    centred = noise - noise.mean(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.abs(fft.fft2(centred, axes=(0, 1))) ** 2 / (h * w * (centred**2).mean(axis=(0, 1)))
    radius = np.hypot(*np.meshgrid(fft.fftfreq(h), fft.fftfreq(w), indexing="ij"))
    edges = np.linspace(0.0, 0.5, bins + 1)
    index = np.ceil(radius * (2 * bins)).astype(np.int64) - 1  # (0, 1/2b] -> 0, ... ; DC -> -1
    keep = (index >= 0) & (index < bins)
    counts = np.bincount(index[keep], minlength=bins).astype(np.float64)
    sums = np.stack([np.bincount(index[keep], weights=power[..., c][keep], minlength=bins) for c in range(3)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return edges, sums / counts, counts


def channel_correlation(noise: np.ndarray) -> np.ndarray:
    """3 x 3 Pearson correlation between the R, G, B noise of one image."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(noise.reshape(-1, 3), rowvar=False)


def moments(noise: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, std, skewness and excess kurtosis of one image's noise per channel (arrays of 3)."""
    acc = _Moments(3)
    acc.add(noise.reshape(-1, 3))
    return acc.result()


def _summary_row(clean: np.ndarray, noise: np.ndarray, acf: np.ndarray) -> dict[str, float]:
    """METHOD.md section 5's per-image scalars from the noise and its autocorrelation (L >= 2).

    std and mean are pooled over all pixels and channels (the table's std); lags, skewness and
    kurtosis are means over the three channels; h = horizontal (along x), v = vertical.
    """
    lag = acf.shape[1] // 2
    per_channel = moments(noise)
    corr = channel_correlation(noise)
    return {
        "std_255": float(noise.std() * 255.0),
        "mean_255": float(noise.mean() * 255.0),
        "lag1_h": float(acf[:, lag, lag + 1].mean()),
        "lag1_v": float(acf[:, lag + 1, lag].mean()),
        "lag2_h": float(acf[:, lag, lag + 2].mean()),
        "corr_rg": float(corr[0, 1]),
        "corr_gb": float(corr[1, 2]),
        "corr_rb": float(corr[0, 2]),
        "skewness": float(per_channel["skewness"].mean()),
        "excess_kurtosis": float(per_channel["excess_kurtosis"].mean()),
        "leak": content_leak(clean, clean + noise),
    }


def image_summary(clean: Any, noisy: Any) -> list[dict[str, float]]:
    """The per-image summary row (see `SUMMARY_COLUMNS`) of each image of `clean`/`noisy`."""
    return [_summary_row(c, n, autocorrelation(n, max_lag=2)) for c, n in iter_noise(clean, noisy)]


# ---------------------------------------------------------------- streaming accumulation


class _Moments:
    """Count, mean and central moment sums M2..M4 per column, merged batch by batch.

    Merging uses the pairwise update of Pebay (2008, Sandia SAND2008-6212, eqs. 2.1-2.3), so a
    large mean never cancels the small central moments.
    """

    def __init__(self, columns: int):
        self.n = np.zeros(columns)
        self.mean = np.zeros(columns)
        self.m2 = np.zeros(columns)
        self.m3 = np.zeros(columns)
        self.m4 = np.zeros(columns)

    def add(self, values: np.ndarray) -> None:
        """values: (samples, columns)."""
        nb = float(values.shape[0])
        if nb == 0:
            return
        mean_b = values.mean(axis=0)
        d = values - mean_b
        d2 = d * d
        self._combine(nb, mean_b, d2.sum(axis=0), (d2 * d).sum(axis=0), (d2 * d2).sum(axis=0))

    def merge(self, other: "_Moments") -> None:
        """Add the samples that `other` has accumulated."""
        if np.any(other.n > 0):
            self._combine(other.n, other.mean, other.m2, other.m3, other.m4)

    def _combine(self, nb, mean_b: np.ndarray, m2b: np.ndarray, m3b: np.ndarray, m4b: np.ndarray) -> None:
        na, n = self.n, self.n + nb
        delta = mean_b - self.mean
        self.m4 = (self.m4 + m4b + delta**4 * na * nb * (na**2 - na * nb + nb**2) / n**3
                   + 6 * delta**2 * (na**2 * m2b + nb**2 * self.m2) / n**2
                   + 4 * delta * (na * m3b - nb * self.m3) / n)
        self.m3 = (self.m3 + m3b + delta**3 * na * nb * (na - nb) / n**2
                   + 3 * delta * (na * m2b - nb * self.m2) / n)
        self.m2 = self.m2 + m2b + delta**2 * na * nb / n
        self.mean = self.mean + delta * nb / n
        self.n = n

    def result(self) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = self.m2 / self.n
            return {
                "mean": self.mean.copy(),
                "std": np.sqrt(var),
                "skewness": (self.m3 / self.n) / var**1.5,
                "excess_kurtosis": (self.m4 / self.n) / var**2 - 3.0,
            }


class _MeanOfFinite:
    """Element-wise mean over images of per-image arrays, skipping undefined (NaN) entries.

    A noise-free channel has no correlation and no normalised spectrum; it must not pull the
    mean of the other images towards 0.
    """

    def __init__(self, shape: tuple[int, ...]):
        self.total = np.zeros(shape)
        self.count = np.zeros(shape)

    def add(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        self.total += np.where(finite, values, 0.0)
        self.count += finite

    def merge(self, other: "_MeanOfFinite") -> None:
        self.total += other.total
        self.count += other.count

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.count


def level_edges(max_level: int = 64, levels_per_bin: int = 1) -> np.ndarray:
    """Histogram edges centred on 8-bit noise levels k/255, |k| <= max_level.

    8-bit noise only takes the values k/255; bins narrower than a level or not centred on the
    levels (the KLD's 64 bins on [-0.1, 0.1] are 0.8 levels wide) leave empty bins, and the
    histogram looks like a comb. Pass the KLD's `np.linspace(-0.1, 0.1, 65)` to NoiseStats to
    see exactly what the metric sees.
    """
    if max_level < 1 or levels_per_bin < 1 or (2 * max_level + 1) % levels_per_bin:
        raise ValueError(f"need max_level >= 1 and levels_per_bin dividing {2 * max_level + 1}, "
                         f"got max_level={max_level}, levels_per_bin={levels_per_bin}")
    return (np.arange(-max_level, max_level + 2, levels_per_bin) - 0.5) / 255.0


@dataclass(frozen=True)
class Histogram:
    """Noise histogram per channel on fixed edges, with one overflow bin each side."""

    edges: np.ndarray  # (bins + 1,) in [0, 1] noise units
    counts: np.ndarray  # (3, bins + 2): [underflow, bins..., overflow]

    def density(self) -> np.ndarray:
        """(3, bins) probability density per unit noise; the overflow mass is left out."""
        total = self.counts.sum(axis=1, keepdims=True)
        return self.counts[:, 1:-1] / total / np.diff(self.edges)

    def outside(self) -> np.ndarray:
        """Fraction of samples outside the edges, per channel."""
        return (self.counts[:, 0] + self.counts[:, -1]) / self.counts.sum(axis=1)

    def frame(self) -> pd.DataFrame:
        """Long form, one row per channel and bin (for CSV and `dvc plots`)."""
        dens = self.density()
        return pd.DataFrame([
            {"channel": CHANNELS[c], "left": self.edges[i], "right": self.edges[i + 1], "density": dens[c, i]}
            for c in range(3) for i in range(len(self.edges) - 1)
        ])


@dataclass(frozen=True)
class NoiseLevel:
    """Noise level function: noise std against clean intensity, per channel."""

    edges: np.ndarray  # (bins + 1,) clean intensity in [0, 1]
    intensity: np.ndarray  # (3, bins) mean clean intensity of the pixels in each bin
    std: np.ndarray  # (3, bins) noise std in [0, 1] units; NaN where count < min_count
    counts: np.ndarray  # (3, bins) pixels per bin; (1, bins) with the channels pooled

    def frame(self) -> pd.DataFrame:
        """Long form, one row per channel ('all' when pooled) and intensity bin (for CSV and `dvc plots`)."""
        names = CHANNELS if self.counts.shape[0] == 3 else ("all",)
        return pd.DataFrame([
            {"channel": names[c], "intensity": self.intensity[c, i], "std_255": self.std[c, i] * 255.0,
             "count": int(self.counts[c, i])}
            for c in range(len(names)) for i in range(self.counts.shape[1])
        ])


@dataclass(frozen=True)
class Autocorrelation:
    """Mean over images of the normalised autocorrelation, R[c, L+dy, L+dx]."""

    values: np.ndarray  # (3, 2L+1, 2L+1)

    @property
    def max_lag(self) -> int:
        return self.values.shape[1] // 2

    def frame(self) -> pd.DataFrame:
        """Long form, one row per channel and lag (for CSV and `dvc plots`)."""
        lag = self.max_lag
        return pd.DataFrame([
            {"channel": CHANNELS[c], "dy": dy, "dx": dx, "r": self.values[c, lag + dy, lag + dx]}
            for c in range(3) for dy in range(-lag, lag + 1) for dx in range(-lag, lag + 1)
        ])


@dataclass(frozen=True)
class PowerSpectrum:
    """Mean over images of the radial power spectrum (white noise = 1)."""

    edges: np.ndarray  # (bins + 1,) spatial frequency in cycles/pixel
    power: np.ndarray  # (3, bins)

    @property
    def frequency(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    def frame(self) -> pd.DataFrame:
        """Long form, one row per channel and frequency bin (for CSV and `dvc plots`)."""
        return pd.DataFrame([
            {"channel": CHANNELS[c], "frequency": f, "power": self.power[c, i]}
            for c in range(3) for i, f in enumerate(self.frequency)
        ])


class NoiseStats:
    """Accumulates the noise statistics of one noise model over any number of images.

    Add images one at a time (or in small batches) with `add`; nothing but fixed-size sums and
    one summary row per image is kept. Pooled results (`histogram`, `moments`, `noise_level`)
    weigh every pixel equally; `autocorrelation`, `power_spectrum`, `channel_correlation` are
    means of per-image normalised values, so each image counts once whatever its noise level.
    """

    def __init__(
        self,
        hist_edges: np.ndarray | None = None,
        nlf_bins: int = 32,
        nlf_min_count: int = 500,
        max_lag: int = 5,
        psd_bins: int = 32,
    ):
        """hist_edges: noise histogram edges in [0, 1] units (default: `level_edges()`, one bin
        per 8-bit level over +-64 levels); nlf_bins: equal clean-intensity bins on [0, 1];
        nlf_min_count: bins with fewer pixels are masked (NaN) in `noise_level`; max_lag:
        largest autocorrelation lag (>= 2, the summary needs lag 2); psd_bins: radial
        frequency bins on (0, 0.5] cycles/pixel."""
        if max_lag < 2:
            raise ValueError(f"max_lag must be >= 2 (the summary reports lag 2), got {max_lag}")
        self.hist_edges = level_edges() if hist_edges is None else np.asarray(hist_edges, dtype=np.float64)
        if self.hist_edges.ndim != 1 or len(self.hist_edges) < 2 or np.any(np.diff(self.hist_edges) <= 0):
            raise ValueError("hist_edges must be a 1-D increasing array of at least 2 edges")
        self.nlf_bins, self.nlf_min_count = nlf_bins, nlf_min_count
        self.max_lag, self.psd_bins = max_lag, psd_bins
        self._hist = np.zeros((3, len(self.hist_edges) + 1))
        self._moments = _Moments(3)
        self._moments_all = _Moments(1)  # the three channels pooled
        self._nlf = np.zeros((4, 3, nlf_bins))  # count, sum x, sum n, sum n^2
        self._acf = _MeanOfFinite((3, 2 * max_lag + 1, 2 * max_lag + 1))
        self._psd = _MeanOfFinite((3, psd_bins))
        self._corr = _MeanOfFinite((3, 3))
        self._rows: list[dict[str, Any]] = []

    @property
    def images(self) -> int:
        return len(self._rows)

    def add(self, clean: Any, noisy: Any, meta: Mapping[str, Any] | None = None) -> None:
        """Add one image (or a batch) of clean and noisy; `meta` is copied into its summary row."""
        for c, n in iter_noise(clean, noisy):
            self._add_image(c, n, dict(meta or {}))

    def _add_image(self, clean: np.ndarray, noise: np.ndarray, meta: dict[str, Any]) -> None:
        flat = noise.reshape(-1, 3)
        index = np.searchsorted(self.hist_edges, flat, side="right")  # 0 = underflow, bins+1 = overflow
        self._hist += np.stack([np.bincount(index[:, c], minlength=len(self.hist_edges) + 1) for c in range(3)])
        self._moments.add(flat)
        self._moments_all.add(flat.reshape(-1, 1))
        self._add_noise_level(clean.reshape(-1, 3), flat)
        acf = autocorrelation(noise, self.max_lag)
        self._acf.add(acf)
        self._psd.add(power_spectrum(noise, self.psd_bins)[1])
        self._corr.add(channel_correlation(noise))
        self._rows.append({**meta, **_summary_row(clean, noise, acf)})

    def _add_noise_level(self, clean: np.ndarray, noise: np.ndarray) -> None:
        index = np.clip((clean * self.nlf_bins).astype(np.int64), 0, self.nlf_bins - 1)
        for c in range(3):
            for k, weights in enumerate((None, clean[:, c], noise[:, c], noise[:, c] ** 2)):
                self._nlf[k, c] += np.bincount(index[:, c], weights=weights, minlength=self.nlf_bins)

    def _settings(self) -> tuple:
        return (tuple(self.hist_edges), self.nlf_bins, self.nlf_min_count, self.max_lag, self.psd_bins)

    @classmethod
    def merged(cls, parts: Iterable["NoiseStats"]) -> "NoiseStats":
        """One NoiseStats holding every image of `parts` (e.g. the groups of one model, pooled).

        The result equals adding all their images, in order, to one NoiseStats; all parts must
        share their settings (histogram edges, bins, lags).
        """
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to merge: pass at least one NoiseStats")
        first = parts[0]
        if any(p._settings() != first._settings() for p in parts[1:]):
            raise ValueError("cannot merge NoiseStats made with different settings (edges, bins or max_lag)")
        out = cls(first.hist_edges.copy(), first.nlf_bins, first.nlf_min_count, first.max_lag, first.psd_bins)
        for part in parts:
            out._hist += part._hist
            out._moments.merge(part._moments)
            out._moments_all.merge(part._moments_all)
            out._nlf += part._nlf
            out._acf.merge(part._acf)
            out._psd.merge(part._psd)
            out._corr.merge(part._corr)
            out._rows.extend(dict(r) for r in part._rows)
        return out

    def histogram(self) -> Histogram:
        return Histogram(self.hist_edges.copy(), self._hist.copy())

    def moments(self) -> pd.DataFrame:
        """Pooled mean, std (both /255), skewness, excess kurtosis: rows R, G, B and 'all'."""
        per_channel, pooled = self._moments.result(), self._moments_all.result()
        res = {k: np.concatenate([per_channel[k], pooled[k]]) for k in per_channel}
        return pd.DataFrame({
            "mean_255": res["mean"] * 255.0, "std_255": res["std"] * 255.0,
            "skewness": res["skewness"], "excess_kurtosis": res["excess_kurtosis"],
        }, index=pd.Index([*CHANNELS, "all"], name="channel"))

    def noise_level(self, pool_channels: bool = False) -> NoiseLevel:
        """Noise std per clean-intensity bin and channel; `pool_channels`: one curve (arrays of
        shape (1, bins)) of the pixels of all three channels, each binned by its own intensity."""
        count, sum_x, sum_n, sum_n2 = self._nlf.sum(axis=1, keepdims=True) if pool_channels else self._nlf
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sum_n / count
            var = np.maximum(sum_n2 / count - mean**2, 0.0)
            std = np.where(count >= max(self.nlf_min_count, 2), np.sqrt(var * count / (count - 1)), np.nan)
            intensity = sum_x / count
        return NoiseLevel(np.linspace(0.0, 1.0, self.nlf_bins + 1), intensity, std, count.copy())

    def autocorrelation(self) -> Autocorrelation:
        return Autocorrelation(self._acf.mean())

    def power_spectrum(self) -> PowerSpectrum:
        return PowerSpectrum(np.linspace(0.0, 0.5, self.psd_bins + 1), self._psd.mean())

    def channel_correlation(self) -> np.ndarray:
        """Mean over images of the 3 x 3 R, G, B noise correlation."""
        return self._corr.mean()

    def per_image(self) -> pd.DataFrame:
        """One summary row per image added (its meta first, then `SUMMARY_COLUMNS`)."""
        return pd.DataFrame(self._rows)


# ---------------------------------------------------------------- the summary table


def _load_pair(pair: Any) -> tuple[Any, Any, dict[str, Any]]:
    """(clean, noisy) tuple, or a `pngan.data.pairs.Pair` (whose load() gives noisy, clean)."""
    if hasattr(pair, "load"):
        noisy, clean = pair.load()
        if noisy is None or clean is None:
            raise ValueError(f"pair '{pair.name}' has no noisy or no clean image; noise statistics need both")
        return clean, noisy, dict(pair.meta)
    clean, noisy = pair
    return clean, noisy, {}


def per_image_table(
    pairs_by_model: Mapping[str, Iterable[Any]],
    meta: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> pd.DataFrame:
    """One row per model and image: `model`, `image` (index), metadata, `SUMMARY_COLUMNS`.

    pairs_by_model: model name -> iterable of (clean, noisy) tuples or `Pair`s, read lazily
    one at a time. meta: one mapping per pair, either shared by every model (the usual case:
    all models noise the same clean images) or given per model; a `Pair`'s own meta is used
    underneath it.
    """
    rows = []
    for model, pairs in pairs_by_model.items():
        model_meta = meta.get(model) if isinstance(meta, Mapping) else meta
        for i, pair in enumerate(pairs):
            clean, noisy, pair_meta = _load_pair(pair)
            if model_meta is not None:
                if i >= len(model_meta):
                    raise ValueError(f"model '{model}': more pairs than metadata entries ({len(model_meta)})")
                pair_meta.update(model_meta[i])
            for k, row in enumerate(image_summary(clean, noisy)):
                rows.append({"model": model, "image": f"{i}" if k == 0 else f"{i}.{k}", **pair_meta, **row})
    return pd.DataFrame(rows)


def summarize(per_image: pd.DataFrame, group_by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Median of each per-image column per model (and group), with the 10th/90th percentile of std.

    The aggregation of METHOD.md section 5: per-image values, then median [10th, 90th].
    """
    keys = ["model"] + ([group_by] if isinstance(group_by, str) else list(group_by or []))
    missing = [k for k in keys if k not in per_image.columns]
    if missing:
        raise ValueError(f"cannot group by {missing}: not in the per-image metadata "
                         f"(columns: {', '.join(map(str, per_image.columns))})")
    grouped = per_image.groupby(keys, sort=False, dropna=False)
    out = grouped[list(SUMMARY_COLUMNS)].median()
    out.insert(0, "n_images", grouped.size())
    out.insert(2, "std_255_p10", grouped["std_255"].quantile(0.1))
    out.insert(3, "std_255_p90", grouped["std_255"].quantile(0.9))
    return out.reset_index()


def summary_table(
    pairs_by_model: Mapping[str, Iterable[Any]],
    meta: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    group_by: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """METHOD.md section 5's real-noise table for any set of models, one row per model (and group).

    Columns: model, group keys, n_images, std_255 (median) with std_255_p10 / std_255_p90,
    mean_255, lag1_h, lag1_v, lag2_h, corr_rg, corr_gb, corr_rb, skewness, excess_kurtosis
    (medians over images). See `per_image_table` for the inputs; group_by names metadata keys
    (e.g. "dataset", or ["camera", "iso"]). Images are read and discarded one at a time.
    """
    return summarize(per_image_table(pairs_by_model, meta), group_by)


def table_markdown(summary: pd.DataFrame) -> str:
    """A `summarize` result in METHOD.md section 5's layout (markdown)."""
    keys = [c for c in summary.columns if c not in (*SUMMARY_COLUMNS, "n_images", "std_255_p10", "std_255_p90")]
    head = (f"| {' | '.join(keys)} | images | noise std /255 | lag-1 corr (h / v) | lag-2 corr (h) "
            f"| R-G / G-B / R-B corr | skewness | excess kurtosis |")
    lines = [head, "|" + "---|" * (len(keys) + 7)]
    for _, r in summary.iterrows():
        lines.append(
            f"| {' | '.join(str(r[k]) for k in keys)} | {r['n_images']} "
            f"| {r['std_255']:.1f} [{r['std_255_p10']:.1f}, {r['std_255_p90']:.1f}] "
            f"| {r['lag1_h']:.2f} / {r['lag1_v']:.2f} | {r['lag2_h']:.2f} "
            f"| {r['corr_rg']:.2f} / {r['corr_gb']:.2f} / {r['corr_rb']:.2f} "
            f"| {r['skewness']:.2f} | {r['excess_kurtosis']:.2f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- AKLD's maps (from pngan.metrics)


def _single_tensor(image: Any, name: str):
    import torch

    batch = as_image_batch(image, name)
    if batch.shape[0] != 1:
        raise ValueError(f"{name}: expected one image, got a batch of {batch.shape[0]}")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(batch, -1, 1))).float()


def _hwc(result: Any) -> np.ndarray:
    """A metric's (1, 3, H, W) or (3, H, W) map (tensor or array) -> H x W x 3 numpy."""
    arr = result.detach().cpu().numpy() if hasattr(result, "detach") else np.asarray(result)
    return np.moveaxis(arr[0] if arr.ndim == 4 else arr, 0, -1)


def local_variance_map(clean: Any, noisy: Any) -> np.ndarray:
    """AKLD's per-pixel local noise variance V of one image, H x W x 3 in [0, 1]^2 units.

    Computed by `pngan.metrics.local_variance` (the metric's own window and padding).
    """
    from pngan.metrics import local_variance

    c, y = _single_tensor(clean, "clean"), _single_tensor(noisy, "noisy")
    if c.shape != y.shape:
        raise ValueError(f"clean {tuple(c.shape)} and noisy {tuple(y.shape)} differ in shape")
    return _hwc(local_variance(y - c)).astype(np.float64)


def kl_map(clean: Any, real: Any, fake: Any) -> np.ndarray:
    """AKLD's per-pixel KL between the fake's and the real image's local variances, H x W x 3.

    Computed by `pngan.metrics.akld_map`; its mean over pixels and channels is the image's AKLD
    for this one draw.
    """
    from pngan.metrics import akld_map

    c, r, f = (_single_tensor(x, n) for x, n in ((clean, "clean"), (real, "real"), (fake, "fake")))
    if not c.shape == r.shape == f.shape:
        raise ValueError(f"clean {tuple(c.shape)}, real {tuple(r.shape)}, fake {tuple(f.shape)} differ in shape")
    return _hwc(akld_map(c, r, f)).astype(np.float64)


# ---------------------------------------------------------------- content leak

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights: the luminance whose edges `content_leak` looks for
CONTENT_LEAK_WINDOW = 2.0  # Gaussian std in pixels of the local averages [guess]


def _leak_image(image: Any, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"content_leak: {name} must be a numpy array (H x W x 3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"content_leak: {name} must be one H x W x 3 image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"content_leak: {name} must be uint8 (0-255) or float (0-1), got {image.dtype}")
    values = image.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"content_leak: {name} has non-finite values")
    if values.size and (values.max() > 2.0 or values.min() < -1.0):
        raise ValueError(f"content_leak: {name}'s float values span [{values.min():.3g}, {values.max():.3g}]; "
                         "float images must be in [0, 1] (pass uint8 for 0-255 data)")
    return values


def content_leak(clean: np.ndarray, noisy: np.ndarray, window: float = CONTENT_LEAK_WINDOW) -> float:
    """How much a noise follows the image's edges: the Pearson correlation, over the pixels of
    one image, between the local noise magnitude and the clean image's local gradient magnitude.

    Noise magnitude: the Gaussian-weighted (std `window` pixels) local RMS of n = noisy - clean,
    pooled over channels. Gradient magnitude: Sobel on the clean image's luminance (BT.601),
    smoothed by the same window. A generator that smooths the image it noises puts its edges
    into the noise: r near 1. White noise of constant level gives about 0; real noise has some
    (its level depends on intensity; JPEG keeps noise where there is detail and removes it in
    flat areas). Medians over the dev pairs at the default window: SIDD_small 0.13,
    SIDD_medium 0.12, Nam_CC60 0.46, PolyU 0.74; the simulated phones 0.14-0.16, DSLR-JPEG
    0.27-0.38; AWGN at each image's level 0.00-0.01 (more where clipping quiets saturated flat
    areas); a 1.5-px blur of the clean image plus that AWGN 0.15-0.94.
    Inputs: numpy H x W x 3, uint8 (0-255) or float (0-1), same shape; ValueError otherwise.
    Returns NaN when either map is constant (e.g. a flat clean image has no gradient).
    """
    from scipy import ndimage

    if not (isinstance(window, (int, float)) and not isinstance(window, bool) and np.isfinite(window) and window > 0):
        raise ValueError(f"content_leak: window must be a Gaussian std in pixels > 0, got {window!r}")
    x, y = _leak_image(clean, "clean"), _leak_image(noisy, "noisy")
    if x.shape != y.shape:
        raise ValueError(f"content_leak: clean {x.shape} and noisy {y.shape} differ in shape")
    if min(x.shape[:2]) < 3:
        raise ValueError(f"content_leak: images must be at least 3 x 3 pixels, got {x.shape[0]} x {x.shape[1]}")
    energy = ndimage.gaussian_filter(np.mean((y - x) ** 2, axis=2), window, mode="reflect")
    magnitude = np.sqrt(np.maximum(energy, 0.0))
    luma = x @ np.asarray(LUMA)
    gradient = np.hypot(ndimage.sobel(luma, axis=0, mode="reflect"), ndimage.sobel(luma, axis=1, mode="reflect"))
    edges = ndimage.gaussian_filter(gradient, window, mode="reflect")
    a, b = magnitude.ravel() - magnitude.mean(), edges.ravel() - edges.mean()
    scale = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / scale) if scale > 1e-300 else float("nan")
