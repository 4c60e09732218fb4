"""Noise levels as functions of clean intensity (noise level functions, NLF), per channel.

`NoiseLevel` is the std of the noise n = noisy - clean (in [0, 1] units) as a piecewise-linear
function of clean intensity on shared knots, one row per channel: the condition of the
noise-aware generator (METHOD.md §8.5; files: pngan.noise.condition). Three sources:

- `fit_level(pairs)`: from clean/noisy training pairs of one camera setting, by maximum
  likelihood of the exact 8-bit observation model (rounding and clipping, as
  pngan.noise.fitting).
- `estimate_level(noisy)`: blind, from noisy images alone (reference mode), below.
- `NoiseLevel.constant(sigma)`: a level the user gives.

Blind estimation (`estimate_level`). Without the clean image, noise is told from scene content
only where the scene is flat. The estimator:

1. cuts every image into blocks (`block` = 16 px, every `stride` = 8 px) and per block and
   channel removes a least-squares polynomial surface (`surface` = 1: a plane, so smooth
   shading counts as scene, not noise). Each block gives its intensity (its mean: the clean
   intensity to within std / 16), its residual energy e0 and lag-1 product sum e1 per pixel;
   the rounding variance 1/12 LSB^2 is taken off e0.
2. Clipping: a block with pixels at 0 or 255 reads too quiet and too bright/dark. Its mean and
   variance are turned into those of the unclipped values by moment inversion of the
   censored normal (`censored`); blocks more than `max_clipped` clipped are left out.
3. Correlation: real sRGB noise is spatially correlated (lag-1 0.45 on SIDD, 0.7 on
   PolyU / Nam, METHOD.md §5.3), so removing a block's surface also removes part of the
   noise, and more of it the wider the correlation; estimators that assume white noise
   underestimate (measured below). The noise is modelled as white noise blurred by a
   Gaussian kernel (the `correlated` model of §4.4); its width follows from the median
   e1 / e0 of the flat blocks, and exact traces over the block give the expected e0 per unit
   variance (kappa) and the gamma law of e0 for pure noise (`_correlation_table`).
4. Texture: per knot, start from the `init_quantile` (10 %) least energetic blocks, then
   iterate (`iterations`): keep the blocks whose e0 lies below the `keep` (95 %) quantile of the
   pure-noise gamma law at the current level, and whose e1 / e0 lies within `texture_cut`
   robust stds of the noise's (texture is smooth: its e1 / e0 is near 2, the noise's well below;
   unlike the energy test, this one does not lean on the current level estimate).
   The kept blocks' e0, divided by kappa and by the mean of the truncated gamma law (selecting
   the quiet blocks biases low; this undoes it exactly for pure noise), are fitted by a
   variance piecewise linear in intensity (non-negative least squares). Knots with fewer than
   `min_blocks` (hat-weighted) kept blocks take the value interpolated from their neighbours.
5. Several references (one camera setting): each is estimated alone and per knot the median of
   their stds is taken, weighted by the blocks each kept there (`pool`).

Measured on synthetic noise (smooth images, 3 x 256^2): a constant std of 10/255 is found within
2 %, white or correlated (lag-1 0.45); a heteroscedastic level within 5 % at mid-range knots.
On the dev pairs (estimate / truth of the RMS std over the image, median [10 %, 90 %]; truth:
`fit_level` of the pair), one reference image, uncalibrated: SIDD_small 0.89 [0.86, 0.94],
SIDD_medium 0.92, Nam 0.87 [0.75, 1.43], PolyU 0.60 [0.37, 0.83]; the simulated phones 0.96-1.03.
Assuming white noise (`correlated=False`) reads lower still (SIDD 0.85, PolyU 0.43), and a
wavelet (Haar) median-absolute-deviation estimate, which also assumes white noise and no
clipping, reads 0.49 on SIDD and 0.16 on PolyU. Out of reach blind is noise at scales beyond a
block: even on the true noise, a 16-px plane and the correlation model keep 77 % of PolyU's
JPEG noise variance (98 % of SIDD's); and noise that JPEG smooths away in flat regions. So the
kit calibrates: `calibrate_estimator(pairs)` returns per channel the median ratio true /
estimated level on training pairs, and `estimate_level(..., calibration=...)` multiplies by it.
Calibrated on the other half of the family's pairs, one reference gives SIDD 0.99 [0.95, 1.05],
Nam 0.97 [0.83, 1.69], PolyU 1.02 [0.58, 1.43]; all references of a camera setting (2-5) give
SIDD 0.97-0.99, Nam 0.98 [0.81, 1.19]. A 512 x 512 image takes about 0.06 s.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize, nnls
from scipy.special import gammainc, gammaincinv, ndtr

from pngan.errors import DataError
from pngan.noise.base import NoiseModel, randn_like
from pngan.noise.fitting import INTENSITY_AXES, LEVELS, LUMA, QUANT_VAR, STD_RANGE, LevelHistogram, checked_pairs, fit_constant_std

CHANNELS = 3
MAX_KNOTS = 257  # a level function finer than one knot per 8-bit level says nothing more


# ---- the level ---------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _numbers(values: Any, what: str) -> tuple[float, ...]:
    """A list / tuple / 1-D array of finite real numbers as floats; DataError otherwise."""
    if isinstance(values, (np.ndarray, torch.Tensor)):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise DataError(f"{what} must be a list of numbers, got {type(values).__name__}")
    if not all(_number(v) for v in values):
        bad = next(v for v in values if not _number(v))
        raise DataError(f"{what} must hold numbers only, got {bad!r:.40}")
    floats = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in floats):
        raise DataError(f"{what} must be finite, got {list(floats)!r:.120}")
    return floats


def _checked_knots(values: Any) -> tuple[float, ...]:
    knots = _numbers(values, "knots")
    if not 2 <= len(knots) <= MAX_KNOTS:
        raise DataError(f"knots: expected 2 to {MAX_KNOTS} intensities, got {len(knots)}")
    if knots[0] != 0.0 or knots[-1] != 1.0:
        raise DataError(f"knots must run from 0.0 to 1.0 (clean intensity), got {knots[0]!r} ... {knots[-1]!r}")
    if any(b <= a for a, b in zip(knots, knots[1:])):
        raise DataError(f"knots must be strictly increasing, got {list(knots)!r:.120}")
    return knots


def _checked_sigma(rows: Any, count: int) -> tuple[tuple[float, ...], ...]:
    if isinstance(rows, (np.ndarray, torch.Tensor)):
        rows = rows.tolist()
    if not isinstance(rows, (list, tuple)) or len(rows) != CHANNELS:
        got = f"{len(rows)} rows" if isinstance(rows, (list, tuple)) else type(rows).__name__
        raise DataError(f"sigma must be 3 rows (R, G, B) of {count} stds, got {got}")
    table = []
    for name, row in zip("RGB", rows):
        values = _numbers(row, f"sigma ({name})")
        if len(values) != count:
            raise DataError(f"sigma ({name}) must hold one std per knot ({count}), got {len(values)}")
        if any(v < 0 for v in values):
            raise DataError(f"sigma ({name}) must be >= 0, got {min(values)!r}")
        table.append(values)
    return tuple(table)


def _checked_axis(axis: Any) -> str:
    if not isinstance(axis, str) or axis not in INTENSITY_AXES:
        raise DataError(f"axis must be one of {', '.join(INTENSITY_AXES)} (what the level is a function of), got {axis!r:.40}")
    return axis


@dataclass(frozen=True)
class NoiseLevel:
    """Per-channel noise std (in [0, 1] units, i.e. /255 levels divided by 255) as a
    piecewise-linear function of clean intensity on shared knots: of each channel's own clean
    value (`axis` "channel"), or of the clean luminance (BT.601; "luminance"), which sRGB noise
    follows more closely (a pixel's noise in one channel grows with the light in all three:
    demosaicking and colour correction mix them; docs/METHOD.md §8.5)."""

    knots: tuple[float, ...]  # increasing intensities in [0, 1], K >= 2, first 0.0 and last 1.0
    sigma: tuple[tuple[float, ...], ...]  # 3 rows (R, G, B) of K values >= 0
    axis: str = "channel"  # "channel" | "luminance"

    def __post_init__(self) -> None:
        knots = _checked_knots(self.knots)
        object.__setattr__(self, "knots", knots)
        object.__setattr__(self, "sigma", _checked_sigma(self.sigma, len(knots)))
        _checked_axis(self.axis)

    # ---- evaluation
    def map(self, clean: torch.Tensor) -> torch.Tensor:
        """The std map of a clean image batch (B, 3, H, W) (or one image, 3 x H x W) in [0, 1]: per channel, the level at
        each pixel's clean value or luminance (`axis`; linear between knots; values outside
        [0, 1] take the end knots'). Same device and dtype as `clean`."""
        if not isinstance(clean, torch.Tensor) or clean.ndim not in (3, 4) or clean.shape[-3] != CHANNELS:
            shape = tuple(clean.shape) if hasattr(clean, "shape") else type(clean).__name__
            raise ValueError(f"noise level map: expected a (B, 3, H, W) tensor of clean images, got {shape}")
        dtype = clean.dtype if clean.is_floating_point() else torch.float32
        knots = torch.tensor(self.knots, dtype=dtype, device=clean.device)
        table = torch.tensor(self.sigma, dtype=dtype, device=clean.device)
        batch = clean.to(dtype) if clean.ndim == 4 else clean.to(dtype)[None]
        result = level_map(table, knots, batch, self.axis)
        return result if clean.ndim == 4 else result[0]

    def table(self) -> torch.Tensor:
        """(3, K) float32: the std of each channel at each knot."""
        return torch.tensor(self.sigma, dtype=torch.float32)

    def mean_std(self, clean: torch.Tensor | np.ndarray | None = None) -> float:
        """The RMS std (in [0, 1] units) over an image's pixels and channels: torch (B, 3, H, W)
        or (3, H, W) in [0, 1], or numpy H x W x 3 (uint8, or float in [0, 1]). None: over
        clean intensity uniform on [0, 1] (exact for the piecewise-linear level)."""
        if clean is None:
            knots, sigma = np.asarray(self.knots), np.asarray(self.sigma)
            a, b = sigma[:, :-1], sigma[:, 1:]
            energy = ((a * a + a * b + b * b) / 3.0 * np.diff(knots)).sum(axis=1).mean()
            return float(math.sqrt(energy))
        if isinstance(clean, np.ndarray):
            if clean.ndim != 3 or clean.shape[2] != CHANNELS:
                raise ValueError(f"noise level mean_std: expected an H x W x 3 image, got shape {clean.shape}")
            scale = 255.0 if clean.dtype == np.uint8 else 1.0
            clean = torch.from_numpy(np.ascontiguousarray(np.moveaxis(clean, -1, 0))).double() / scale
        elif isinstance(clean, torch.Tensor) and not clean.is_floating_point():
            clean = clean.double() / 255.0
        return float(self.map(clean.double()).square().mean().sqrt())

    # ---- new levels
    def scaled(self, factor: float | Sequence[float]) -> "NoiseLevel":
        """This level times `factor` (one number, or one per channel R, G, B), >= 0."""
        factors = _channel_factors(factor, "noise level scale factor")
        return NoiseLevel(self.knots, tuple(tuple(f * v for v in row) for f, row in zip(factors, self.sigma)), self.axis)

    def to_dict(self) -> dict[str, Any]:
        return {"knots": list(self.knots), "sigma": [list(row) for row in self.sigma], "axis": self.axis}

    @classmethod
    def from_dict(cls, data: Any, where: str = "noise level") -> "NoiseLevel":
        """Validate an untrusted entry {"knots": [...], "sigma": [[...] x 3], "axis": ...}
        ("axis" may be absent: "channel", as files before it); any fault is a DataError naming `where`."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a mapping with knots and sigma, got {type(data).__name__}")
        missing, extra = sorted({"knots", "sigma"} - data.keys()), sorted(map(str, data.keys() - {"knots", "sigma", "axis"}))
        if missing or extra:
            problems = [missing and f"missing {', '.join(missing)}", extra and f"unknown {', '.join(extra)}"]
            raise DataError(f"{where}: " + "; ".join(p for p in problems if p))
        try:
            return cls(data["knots"], data["sigma"], data.get("axis", "channel"))
        except DataError as err:
            raise DataError(f"{where}: {err}") from None

    @classmethod
    def constant(cls, sigma: float | Sequence[float], knots: int = 2) -> "NoiseLevel":
        """A flat level: one std for every channel or one per channel (R, G, B), in [0, 1] units,
        on `knots` uniformly spaced knots."""
        if not isinstance(knots, (int, np.integer)) or isinstance(knots, bool) or not 2 <= knots <= MAX_KNOTS:
            raise DataError(f"knots: expected a count from 2 to {MAX_KNOTS}, got {knots!r}")
        stds = _channel_factors(sigma, "constant noise level")
        return cls(uniform_knots(int(knots)), tuple((s,) * int(knots) for s in stds))

    @classmethod
    def from_table(cls, knots: Sequence[float], table: Any, axis: str = "channel") -> "NoiseLevel":
        """From knots and a (3, K) table (nested lists, numpy or torch) of stds in [0, 1] units."""
        return cls(tuple(_numbers(knots, "knots")), table, axis)


class LevelNoise(NoiseModel):
    """Gaussian noise at a given level: y = x + s(x) n, n ~ N(0, 1), s the level's std at each
    pixel's clean value and channel. With a level estimated from a reference image it is the
    classical counterpart of a noise-aware generator told the same level."""

    name = "level_gaussian"

    def __init__(self, level: NoiseLevel):
        self.level = level

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return clean + self.level.map(clean) * randn_like(clean, generator)

    def params(self) -> dict[str, Any]:
        return {"level": self.level.to_dict()}


def uniform_knots(count: int) -> tuple[float, ...]:
    """`count` knots uniformly spaced on [0, 1], exactly 0.0 and 1.0 at the ends."""
    return tuple(float(k) for k in np.linspace(0.0, 1.0, count))


def _channel_factors(value: Any, what: str) -> tuple[float, float, float]:
    values = [value] * CHANNELS if _number(value) else value
    numbers = _numbers(values, what)
    if len(numbers) != CHANNELS or any(v < 0 for v in numbers):
        raise DataError(f"{what}: expected one number >= 0 or three (R, G, B), got {value!r:.80}")
    return numbers  # type: ignore[return-value]


def intensity(clean: torch.Tensor, axis: str) -> torch.Tensor:
    """What a level of `axis` is read at, per pixel and channel, for clean images (B, 3, H, W):
    the images themselves ("channel"), or their BT.601 luminance in every channel ("luminance")."""
    if _checked_axis(axis) == "channel":
        return clean
    weights = torch.tensor(LUMA, dtype=clean.dtype, device=clean.device).view(1, CHANNELS, 1, 1)
    return (clean * weights).sum(dim=1, keepdim=True).expand_as(clean)


def level_map(table: torch.Tensor, knots: torch.Tensor, clean: torch.Tensor, axis: str = "channel") -> torch.Tensor:
    """Batched level map: `table` (B, 3, K) or (3, K) stds at `knots` (K,), `clean` (B, 3, H, W)
    -> (B, 3, H, W), linear interpolation per sample and channel at each pixel's `intensity`,
    constant outside the knots. Computed in `clean`'s dtype on its device."""
    if clean.ndim != 4 or clean.shape[1] != CHANNELS:
        raise ValueError(f"level_map: expected clean images (B, 3, H, W), got {tuple(clean.shape)}")
    count = knots.shape[-1]
    if knots.ndim != 1 or count < 2 or table.shape[-2:] != (CHANNELS, count) or table.ndim not in (2, 3):
        raise ValueError(f"level_map: expected a (B, 3, K) or (3, K) table on K >= 2 knots, got table {tuple(table.shape)}, knots {tuple(knots.shape)}")
    batch = clean.shape[0]
    if table.ndim == 3 and table.shape[0] != batch:
        raise ValueError(f"level_map: {table.shape[0]} tables for a batch of {batch} images")
    dtype = clean.dtype if clean.is_floating_point() else torch.float32
    x = intensity(clean.to(dtype), axis)
    knots = knots.to(device=x.device, dtype=dtype)
    table = table.to(device=x.device, dtype=dtype).expand(batch, CHANNELS, count)
    flat = x.reshape(batch, CHANNELS, -1).clamp(knots[0], knots[-1])
    left = (torch.searchsorted(knots, flat.contiguous(), right=True) - 1).clamp(0, count - 2)
    k0, k1 = knots[left], knots[left + 1]
    t = (flat - k0) / (k1 - k0)
    s0, s1 = table.gather(2, left), table.gather(2, left + 1)
    # s0 + (s1 - s0) t: exact at a knot (t = 0) and for a flat segment; t = 1 only at the last knot
    return torch.where(t >= 1, s1, s0 + (s1 - s0) * t).reshape(x.shape)


# ---- fitting on pairs (clean image known) --------------------------------------------------------


def _hats(knots: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(x), K): the piecewise-linear basis on `knots` at `x` (constant beyond the ends)."""
    x = np.clip(x, knots[0], knots[-1])
    basis = np.zeros((x.size, knots.size))
    right = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, knots.size - 2)
    t = (x - knots[right]) / (knots[right + 1] - knots[right])
    rows = np.arange(x.size)
    basis[rows, right] = 1 - t
    basis[rows, right + 1] += t
    return basis


def fit_level(pairs: Sequence[tuple[np.ndarray, np.ndarray]], knots: int = 9, min_pixels: float = 1000.0, axis: str = "channel") -> NoiseLevel:
    """The noise level function of (clean, noisy) uint8 H x W x 3 pairs (one camera setting of
    the training split): per channel, the std of n = noisy - clean against clean intensity (the
    channel's own value, or the luminance: `axis`), piecewise linear on `knots` uniformly spaced knots.

    Maximum likelihood of the exact 8-bit observation model (`pngan.noise.fitting`): at clean
    level x the noisy value is round(clip(x + N(0, sigma(x)^2))), so rounding and clipping at 0
    and 255 enter the likelihood exactly (a noisy 0 or 255 is censored, clean 0 and 255 are left
    out). sigma(x) = sum_k s_k h_k(x) with h_k the hat functions on the knots; the s_k are found
    by L-BFGS on log s_k. A knot whose hat-weighted pixel count is below `min_pixels` (per
    channel) is not fitted: the function is piecewise linear on the other knots, so its value is
    the one interpolated from its neighbours (the nearest fitted one's beyond the last). A channel
    with no such knot gets the constant level fitted on all its pixels.
    """
    count = _knot_count(knots)
    grid = np.asarray(uniform_knots(count))
    histogram = LevelHistogram.from_pairs(pairs, "fit_level", by=_checked_axis(axis))
    rows = []
    for c in range(CHANNELS):
        pixels = float(sum(entry.sum() for entry in histogram.entries[c][3:]))
        support = pixels * (histogram.level_share[c] @ _hats(grid, np.arange(LEVELS) / (LEVELS - 1)))
        fitted = grid[support >= min_pixels]
        if fitted.size == 0:
            rows.append((fit_constant_std(histogram, [c], "fit_level"),) * count)
            continue
        stds = _fit_channel(histogram, c, fitted, pixels)
        rows.append(tuple(float(v) for v in _basis(fitted, grid) @ stds))
    return NoiseLevel(tuple(grid), tuple(rows), axis)


def _knot_count(knots: Any) -> int:
    if not isinstance(knots, (int, np.integer)) or isinstance(knots, bool) or not 2 <= knots <= MAX_KNOTS:
        raise ValueError(f"knots: expected a count from 2 to {MAX_KNOTS}, got {knots!r}")
    return int(knots)


def _basis(knots: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hat basis on `knots` (constant beyond them); a single knot is the constant function."""
    return np.ones((x.size, 1)) if knots.size == 1 else _hats(knots, x)


def _fit_channel(histogram: LevelHistogram, channel: int, knots: np.ndarray, pixels: float) -> np.ndarray:
    """Maximum-likelihood stds at `knots` of one channel (see `fit_level`)."""
    basis = _basis(knots, np.arange(LEVELS) / (LEVELS - 1))  # (256, k)
    clean, lower, upper, count = histogram.entries[channel]
    noise = np.where(np.isfinite(lower), lower + 0.5, upper - 0.5) / (LEVELS - 1)
    energy = np.bincount(clean, weights=count * noise**2, minlength=LEVELS)
    share = np.bincount(clean, weights=count, minlength=LEVELS)
    start = np.sqrt((energy @ basis) / np.maximum(share @ basis, 1e-12))
    bounds = np.log(STD_RANGE)
    start = np.clip(np.log(np.maximum(start, STD_RANGE[0])), *bounds)

    def mean_neg_log_likelihood(log_std: np.ndarray) -> tuple[float, np.ndarray]:
        stds = np.exp(log_std)
        sigma = basis @ stds
        value, gradient = histogram.neg_log_likelihood(channel, sigma**2)
        return value / pixels, (basis.T @ (gradient * 2.0 * sigma)) * stds / pixels

    result = minimize(
        mean_neg_log_likelihood, start, jac=True, method="L-BFGS-B", bounds=[tuple(bounds)] * knots.size,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    if not result.success and not np.isfinite(result.fun):
        raise ValueError(f"fit_level: the fit of channel {'RGB'[channel]} did not converge ({result.message})")
    return np.exp(result.x)


# ---- blind estimation (no clean image) -----------------------------------------------------------

_W_GRID = np.linspace(0.0, 3.0, 31)  # widths of the Gaussian correlation model searched
_STRIP_BLOCKS = 24  # block rows processed at once (bounds memory on large references)


@functools.lru_cache(maxsize=8)
def _surface_basis(block: int, degree: int) -> np.ndarray:
    """(block^2, 1, 3 or 6) orthonormal basis of what is removed from each block: the
    polynomial surface of `degree` (0: its mean, 1: a plane, 2: a quadric)."""
    y, x = np.mgrid[0:block, 0:block].astype(np.float64)
    x, y = (x.ravel() - x.mean()) / block, (y.ravel() - y.mean()) / block
    columns = [x**i * y**j for total in range(degree + 1) for i, j in ((total - j, j) for j in range(total + 1))]
    basis, _ = np.linalg.qr(np.stack(columns, axis=1))
    return basis


def _axis_correlation(width: float, size: int) -> np.ndarray:
    """(size, size) correlation along one axis of white noise blurred by the unit-energy Gaussian
    kernel of `width` (pngan.noise.gaussian.gaussian_kernel's model of correlated noise)."""
    if width == 0:
        return np.eye(size)
    radius = max(1, math.ceil(4.0 * width))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / width) ** 2)
    kernel /= np.sqrt(np.sum(kernel**2))
    lags = np.array([np.dot(kernel[: kernel.size - d], kernel[d:]) if d < kernel.size else 0.0 for d in range(size)])
    return lags[np.abs(np.arange(size)[:, None] - np.arange(size)[None, :])]


@functools.lru_cache(maxsize=8)
def _correlation_table(block: int, surface: int) -> np.ndarray:
    """Per correlation width of `_W_GRID`, rows (kappa, ratio, shape) for a pure-noise block of
    unit variance after removing `_surface_basis`: kappa = E[e0] (mean residual energy per
    pixel), ratio = E[e1] / E[e0] (e1: lag-1 products, both axes, per pixel), shape = the gamma
    shape matching the mean and variance of e0 (e0 is a weighted sum of chi-squares)."""
    basis, size = _surface_basis(block, surface), block * block
    keep = np.eye(size) - basis @ basis.T
    right = np.zeros((size, size))  # pairs (p, p + 1 along x) and (p, p + 1 along y)
    index = np.arange(size).reshape(block, block)
    right[index[:, :-1].ravel(), index[:, 1:].ravel()] = 1.0
    right[index[:-1, :].ravel(), index[1:, :].ravel()] = 1.0
    rows = []
    for width in _W_GRID:
        axis = _axis_correlation(float(width), block)
        covariance = keep @ np.kron(axis, axis) @ keep
        trace = np.trace(covariance)
        rows.append((trace / size, np.sum(right * covariance) / trace, trace**2 / (2.0 * np.sum(covariance**2))))
    return np.array(rows)


# censored normal Y = max(0, X), X ~ N(t, 1): mean g1(t), variance g2(t), and g1 / sqrt(g2)
_T = np.linspace(-2.5, 8.0, 2101)
_G1 = _T * ndtr(_T) + np.exp(-0.5 * _T**2) / math.sqrt(2.0 * math.pi)
_G2 = (_T**2 + 1.0) * ndtr(_T) + _T * np.exp(-0.5 * _T**2) / math.sqrt(2.0 * math.pi) - _G1**2
_H = _G1 / np.sqrt(_G2)


def _uncensor(values: np.ndarray, low: bool) -> tuple[np.ndarray, np.ndarray]:
    """Blocks (n, m) of 8-bit values clipped at 0 (`low`) or 255: per block the factor that
    turns the clipped variance into the unclipped one, and the unclipped mean (8-bit units).
    Moment inversion of the censored normal: mean / std of the clipped values gives t = mean /
    std of the unclipped ones; rounding puts the clipping point half a level inside."""
    z = (values if low else 255.0 - values)
    z = np.maximum(z, 0.5) - 0.5
    mean, variance = z.mean(axis=-1), np.maximum(z.var(axis=-1), 1e-12)
    t = np.interp(mean / np.sqrt(variance), _H, _T)
    g2 = np.interp(t, _T, _G2)
    latent = t * np.sqrt(variance / g2) + 0.5
    return 1.0 / g2, (latent if low else 255.0 - latent)


def _block_stats(image: np.ndarray, block: int, stride: int, surface: int, censored: bool) -> tuple[np.ndarray, ...]:
    """Per block and channel of a uint8 H x W x 3 image: intensity mu (the block's mean, in
    [0, 1]), residual energy e0 and lag-1 product sum e1 per pixel after removing the block's
    polynomial surface, in [0, 1]^2 units, and the fraction of clipped pixels. Blocks with clipped
    pixels get their mean and energies corrected for the clipping (`_uncensor`)."""
    basis = _surface_basis(block, surface)
    windows = np.lib.stride_tricks.sliding_window_view(image, (block, block), axis=(0, 1))[::stride, ::stride]
    out: list[list[np.ndarray]] = [[], [], [], []]
    for top in range(0, windows.shape[0], _STRIP_BLOCKS):
        values = windows[top : top + _STRIP_BLOCKS].reshape(-1, CHANNELS, block * block).astype(np.float64)
        residual = values - (values @ basis) @ basis.T
        mean = values.mean(axis=-1)
        e0 = np.einsum("ncp,ncp->nc", residual, residual) / residual.shape[-1]
        square = residual.reshape(-1, CHANNELS, block, block)
        e1 = (np.einsum("ncij,ncij->nc", square[..., :, 1:], square[..., :, :-1])
              + np.einsum("ncij,ncij->nc", square[..., 1:, :], square[..., :-1, :])) / residual.shape[-1]
        low, high = (values <= 0).mean(axis=-1), (values >= 255).mean(axis=-1)
        if censored:
            for side, fraction in ((True, low), (False, high)):
                hit = np.nonzero(fraction > 0)
                if hit[0].size:
                    factor, latent = _uncensor(values[hit], side)
                    e0[hit] *= factor
                    e1[hit] *= factor
                    mean[hit] = latent
        for i, part in enumerate((mean / 255.0, e0 / 255.0**2, e1 / 255.0**2, low + high)):
            out[i].append(part)
    return tuple(np.concatenate(part) for part in out)


def _checked_noisy(noisy: Any, who: str) -> list[np.ndarray]:
    images = [noisy] if isinstance(noisy, np.ndarray) else list(noisy) if isinstance(noisy, (list, tuple)) else None
    if images is None:
        raise DataError(f"{who}: expected noisy uint8 H x W x 3 images (a list), got {type(noisy).__name__}")
    if not images:
        raise DataError(f"{who}: no noisy images given")
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != CHANNELS:
            kind = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise DataError(f"{who}: image {i} must be a uint8 H x W x 3 array, got {kind}")
    return images


def _checked_calibration(calibration: Any) -> tuple[float, float, float] | None:
    if calibration is None:
        return None
    try:
        factors = _channel_factors(calibration, "calibration")
    except DataError as err:
        raise DataError(f"estimate_level: {err} (the factors calibrate_estimator returns)") from None
    if not all(f > 0 for f in factors):
        raise DataError(f"estimate_level: calibration factors must be > 0, got {calibration!r:.80}")
    return factors


def _fit_variance(x: np.ndarray, variance: np.ndarray, scale: np.ndarray, weights: np.ndarray, grid: np.ndarray, min_blocks: float) -> np.ndarray | None:
    """Stds at the knots `grid` of the variance function, piecewise linear in intensity, fitted
    to the blocks' variance estimates at intensities `x` by least squares (weighted by
    1 / `scale`^2, the expected variance: an estimate's spread grows with it), non-negative.
    Only knots that at least `min_blocks` blocks support (hat-weighted counts `weights`) are
    fitted, or with none such, those with any block; the others are interpolated from their
    neighbours (the nearest fitted one's beyond the ends). None when no knot has a block. A
    least-squares line, unlike a kernel average, is not pulled towards the interior at the
    ends, where the level function is steepest (the dark end of sRGB)."""
    supported = weights >= min_blocks
    if not supported.any():
        supported = weights > 0
    if not supported.any():
        return None
    fitted = grid[supported]
    design = _basis(fitted, x) / scale[:, None]
    values, _ = nnls(design, variance / scale)
    return np.sqrt(_basis(fitted, grid) @ values)


def estimate_level(
    noisy: Sequence[np.ndarray],
    knots: int = 9,
    calibration: float | Sequence[float] | None = None,
    *,
    block: int = 16,
    stride: int = 8,
    surface: int = 1,
    init_quantile: float = 0.1,
    keep: float = 0.95,
    texture_cut: float = 2.5,
    iterations: int = 6,
    max_clipped: float = 0.5,
    min_blocks: float = 4.0,
    censored: bool = True,
    correlated: bool = True,
    pool: str = "images",
    axis: str = "channel",
) -> NoiseLevel:
    """The noise level of noisy uint8 H x W x 3 images of one camera setting, with no clean
    image: the NLF against the estimated clean intensity (the module docstring gives the
    method and its accuracy). Pass one image or several (their flat blocks are pooled).

    `calibration`: None, or one factor or three (R, G, B) from `calibrate_estimator`, which
    multiply the estimate. Options (plain values, stored in generator files):
    `block`, `stride`: block side and step in pixels; `surface`: polynomial degree removed per
    block (0 mean, 1 plane, 2 quadric); `init_quantile`: the share of least energetic blocks per
    knot the iteration starts from; `keep`: the pure-noise quantile below which a block's
    energy is kept; `texture_cut`: how many robust stds a block's lag-1 ratio may stray from the
    noise's; `iterations`; `max_clipped`: the largest share of clipped pixels a block may have;
    `min_blocks`: the (hat-weighted) kept blocks a knot needs, else it is interpolated;
    `censored`: correct clipped blocks; `correlated`: model the noise's spatial correlation
    (False: assume white noise); `pool`: how several images combine, "images" (each is
    estimated alone, as the calibration measured it, and per knot the median of their stds is
    taken, weighted by the blocks each kept there: one textured image cannot drag it up) or
    "blocks" (all their blocks in one estimate: the flattest image's blocks then dominate, which
    reads 5-20 % lower than the single-image calibration expects). `axis`: the level against
    each channel's intensity or the luminance (a block's, from its channel means), as
    `NoiseLevel`. Raises DataError when no usable flat block is found.
    """
    who = "estimate_level"
    count = _knot_count(knots)
    images = _checked_noisy(noisy, who)
    factors = _checked_calibration(calibration)
    _check_options(block, stride, surface, init_quantile, keep, texture_cut, iterations, max_clipped, min_blocks)
    if pool not in ("images", "blocks"):
        raise ValueError(f"estimate_level: pool must be 'images' or 'blocks', got {pool!r}")
    _checked_axis(axis)
    stats = [_block_stats(image, block, stride, surface, censored) for image in images if min(image.shape[:2]) >= block]
    if not stats:
        raise DataError(f"{who}: every noisy image is smaller than one {block} x {block} block")
    if pool == "blocks":
        stats = [tuple(np.concatenate([s[i] for s in stats]) for i in range(4))]
    grid = np.asarray(uniform_knots(count))
    settings = dict(grid=grid, table=_correlation_table(block, surface), init_quantile=init_quantile, keep=keep,
                    texture_cut=texture_cut, iterations=iterations, min_blocks=min_blocks, correlated=correlated)
    rows = []
    for c in range(CHANNELS):
        found = []  # per image (or for the pooled blocks): (stds at the knots, kept blocks per knot)
        for mu, e0, e1, clipped in stats:
            energy = e0[:, c] - QUANT_VAR  # rounding to 8 bit: white, so (nearly) all of it stays in the residual
            usable = (clipped[:, c] <= max_clipped) & (energy > 0)
            x = mu[:, c] if axis == "channel" else mu @ np.asarray(LUMA)
            if usable.any():
                result = _estimate_channel(x[usable], energy[usable], e1[usable, c] / energy[usable], **settings)
                if result is not None:
                    found.append(result)
        if not found:
            raise DataError(f"{who}: found no flat, unclipped region to estimate channel {'RGB'[c]}'s noise on")
        sigma, support = (np.stack(part) for part in zip(*found))
        weights = np.where(support.sum(axis=0) > 0, support, 1.0)  # a knot no image supports: their plain median
        rows.append(tuple(float(v) for v in _weighted_median(sigma, weights)))
    level = NoiseLevel(tuple(grid), tuple(rows), axis)
    return level if factors is None else level.scaled(factors)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per column of (images, knots) `values`, the weighted median (the lower one at a tie)."""
    order = np.argsort(values, axis=0)
    values, weights = np.take_along_axis(values, order, 0), np.take_along_axis(weights, order, 0)
    cumulative = np.cumsum(weights, axis=0)
    index = np.argmax(cumulative >= 0.5 * cumulative[-1], axis=0)
    return values[index, np.arange(values.shape[1])]


def _estimate_channel(x: np.ndarray, energy: np.ndarray, ratio: np.ndarray, grid: np.ndarray, table: np.ndarray, init_quantile: float,
                      keep: float, texture_cut: float, iterations: int, min_blocks: float, correlated: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """One channel's level from its usable blocks (intensity `x`, residual energy, lag-1 ratio
    e1 / e0): (stds at the knots, hat-weighted count of the blocks kept per knot), or None when
    no block qualifies. Steps 3-4 of the module docstring."""
    steps = np.arange(len(_W_GRID))
    hats = _hats(grid, x)
    # start: per knot, the blocks of least energy (the flattest), by init_quantile
    kept = np.zeros(x.size, dtype=bool)
    for k in range(grid.size):
        near = hats[:, k] > 0
        if near.any():
            kept |= near & (energy <= np.quantile(energy[near], init_quantile))
    sigma = support = None
    for step in range(iterations + 1):
        rho = float(np.median(ratio[kept]))
        spread = 1.4826 * float(np.median(np.abs(ratio[kept] - rho))) + 1e-6
        w = float(np.interp(rho, table[:, 1], steps)) if correlated else 0.0
        kappa, shape = np.interp(w, steps, table[:, 0]), np.interp(w, steps, table[:, 2])
        if step == 0:  # the init_quantile lowest of a gamma(shape): their mean, relative
            cut = gammaincinv(shape, init_quantile)
            bias = kappa * gammainc(shape + 1, cut) / init_quantile
        else:
            expected = (hats @ sigma) ** 2 * kappa
            cut = gammaincinv(shape, keep)
            kept = (energy < cut / shape * expected) & (np.abs(ratio - rho) < texture_cut * spread)
            if not kept.any():
                break
            bias = kappa * gammainc(shape + 1, cut) / keep
        scale = np.ones(int(kept.sum())) if sigma is None else expected[kept]
        counts = hats[kept].sum(axis=0)
        fitted = _fit_variance(x[kept], energy[kept] / bias, scale, counts, grid, min_blocks)
        if fitted is None:
            break
        sigma, support = fitted, counts
    return None if sigma is None else (sigma, support)


def _check_options(block, stride, surface, init_quantile, keep, texture_cut, iterations, max_clipped, min_blocks) -> None:
    checks = [
        (isinstance(block, int) and not isinstance(block, bool) and 4 <= block <= 64, f"block must be an integer from 4 to 64, got {block!r}"),
        (isinstance(stride, int) and not isinstance(stride, bool) and 1 <= stride, f"stride must be an integer >= 1, got {stride!r}"),
        (surface in (0, 1, 2) and not isinstance(surface, bool), f"surface must be 0 (block mean), 1 (plane) or 2 (quadric), got {surface!r}"),
        (_number(init_quantile) and 0 < init_quantile < 1, f"init_quantile must be in (0, 1), got {init_quantile!r}"),
        (_number(keep) and 0 < keep < 1, f"keep must be in (0, 1), got {keep!r}"),
        (_number(texture_cut) and texture_cut > 0, f"texture_cut must be > 0, got {texture_cut!r}"),
        (isinstance(iterations, int) and not isinstance(iterations, bool) and 0 <= iterations <= 100, f"iterations must be an integer from 0 to 100, got {iterations!r}"),
        (_number(max_clipped) and 0 <= max_clipped < 1, f"max_clipped must be in [0, 1), got {max_clipped!r}"),
        (_number(min_blocks) and min_blocks >= 0, f"min_blocks must be >= 0, got {min_blocks!r}"),
    ]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise ValueError("estimate_level: " + "; ".join(problems))


def calibrate_estimator(pairs: Sequence[tuple[np.ndarray, np.ndarray]], knots: int = 9, max_pairs: int | None = 64, axis: str = "channel",
                        **options: Any) -> list[float]:
    """Per channel (R, G, B), the factor true / estimated noise level on (clean, noisy) uint8
    training pairs, for `estimate_level(..., calibration=...)`: on each pair, the RMS over the
    clean image of `fit_level` of that pair against that of `estimate_level` of its noisy image
    alone (with `options`), both against `axis`; the median over pairs. At most `max_pairs` pairs (evenly spaced)
    are used (None: all); each costs about half a second. Pairs the estimator cannot read (smaller
    than a block, no flat unclipped region) are skipped. Plain floats (stored in files)."""
    count = _knot_count(knots)
    checked = list(checked_pairs(pairs, "calibrate_estimator"))
    if max_pairs is not None:
        if not isinstance(max_pairs, int) or isinstance(max_pairs, bool) or max_pairs < 1:
            raise ValueError(f"calibrate_estimator: max_pairs must be an integer >= 1 or None, got {max_pairs!r}")
        if len(checked) > max_pairs:
            checked = [checked[i] for i in np.linspace(0, len(checked) - 1, max_pairs).round().astype(int)]
    ratios = []
    for clean, noisy in checked:
        image = torch.from_numpy(np.ascontiguousarray(np.moveaxis(clean, -1, 0))).double()[None] / 255.0
        truth = fit_level([(clean, noisy)], knots=count, axis=axis).map(image).square().mean(dim=(0, 2, 3)).sqrt()
        try:
            guess = estimate_level([noisy], knots=count, axis=axis, **options).map(image).square().mean(dim=(0, 2, 3)).sqrt()
        except DataError:  # too small, or no flat unclipped block: the pair says nothing about the estimator
            continue
        if bool((guess > 0).all()):
            ratios.append((truth / guess).numpy())
    if not ratios:
        raise ValueError("calibrate_estimator: no pair gave a blind estimate (too small, no flat region, or zero noise); nothing to calibrate")
    return [float(v) for v in np.median(np.stack(ratios), axis=0)]
