"""Gaussian-family classical noise models (METHOD.md §4, items 1, 2 and 4).

- `AWGN`: x + N(0, sigma^2) with a fixed sigma (the paper's Setting 1 input, sigma = 50/255).
- `FittedAWGN`: the same with sigma fitted on training pairs (one per data set, or per channel).
- `Heteroscedastic`: per channel Var(n) = a_c x + b_c in sRGB.
- `CorrelatedGaussian`: white noise blurred by a small Gaussian kernel, mixed across channels,
  scaled to a fitted std per channel.

Noise levels are fitted by maximum likelihood on the exact 8-bit likelihood of the training
pairs (clipping and rounding included, `pngan.noise.fitting.LevelHistogram`); correlations on
unclipped pixels with the rounding variance taken out. Models can also be built
with known parameters (e.g. to sample from them); `params()` returns the constructor arguments,
fitted values included, so `type(m)(**m.params())` rebuilds a fitted model.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import brentq, minimize

from pngan.noise.base import NoiseModel, TrainPairs, randn_like
from pngan.noise.fitting import LEVELS, QUANT_VAR, LevelHistogram, fit_constant_std, masked_noise

DEFAULT_MAX_CLIPPED_FRACTION = 1e-3  # [guess] correlations use clean values > ~3 noise std from 0 and 255


def _channel_values(value: float | Sequence[float], who: str, name: str, positive: bool = True) -> np.ndarray:
    """A scalar (same for all channels) or three values, as a float64 array of 3."""
    values = np.full(3, value, dtype=np.float64) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise ValueError(f"{who}: {name} must be one finite number or three (R, G, B), got {value!r}")
    if positive and np.any(values < 0):
        raise ValueError(f"{who}: {name} must be >= 0, got {value!r}")
    return values


def _per_channel(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def _not_fitted(who: str, needed: str) -> ValueError:
    return ValueError(f"{who}: not fitted; call fit(pairs) or pass {needed} to the constructor")


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


class AWGN(NoiseModel):
    """Additive white Gaussian noise with a fixed sigma; nothing to fit.

    The default, 50/255, is the synthetic input of the paper's Setting 1 (METHOD.md §1.1).
    """

    name = "awgn"

    def __init__(self, sigma: float = 50.0 / 255.0):
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"awgn: sigma must be a finite number >= 0, got {sigma!r}")
        self.sigma = float(sigma)

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return clean + self.sigma * randn_like(clean, generator)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma}


class FittedAWGN(NoiseModel):
    """Additive white Gaussian noise whose sigma is fitted on training pairs.

    sigma is the maximum-likelihood std of clip(round(x + N(0, sigma^2))) given the pairs,
    pooled over channels, or one per channel with `per_channel=True`.
    """

    name = "awgn_fitted"
    fitted_params = ("sigma",)

    def __init__(self, per_channel: bool = False, sigma: float | Sequence[float] | None = None):
        self.per_channel = bool(per_channel)
        if sigma is not None and not self.per_channel and np.ndim(sigma) != 0:
            raise ValueError(f"awgn_fitted: sigma must be one number unless per_channel=True, got {sigma!r}")
        self.sigma = None if sigma is None else _channel_values(sigma, self.name, "sigma")

    def fit(self, pairs: TrainPairs) -> "FittedAWGN":
        histogram = LevelHistogram.from_pairs(pairs, self.name)
        if self.per_channel:
            self.sigma = np.array([fit_constant_std(histogram, [c], self.name) for c in range(3)])
        else:
            self.sigma = np.full(3, fit_constant_std(histogram, [0, 1, 2], self.name))
        return self

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.sigma is None:
            raise _not_fitted(self.name, "sigma")
        return clean + _per_channel(self.sigma, clean) * randn_like(clean, generator)

    def params(self) -> dict[str, Any]:
        sigma = None if self.sigma is None else _floats(self.sigma) if self.per_channel else float(self.sigma[0])
        return {"per_channel": self.per_channel, "sigma": sigma}


class Heteroscedastic(NoiseModel):
    """Per channel Gaussian noise with Var(n) = a_c x + b_c, x the clean sRGB value in [0, 1].

    In sRGB the fitted slope a_c can be negative (the tone curve compresses highlights), so it
    is never forced positive; when sampling, the variance is floored at `var_floor` instead.
    A fit also records `x_range`, the clean intensities the training data covers (all but a
    share `range_tail` at each end), and holds the variance at its edge values outside it
    rather than extrapolating: a negative slope fitted on dark images would otherwise give
    bright pixels no noise at all.

    Fit: maximum likelihood of (a_c, b_c) on the exact 8-bit likelihood of the pairs. Without
    clipping its score equations are those of the weighted least-squares fit of noise energy
    n^2 against clean intensity with weights 1 / Var^2 (METHOD.md §4.2's fit, with the weights
    that make it efficient); unlike least squares on measured energy it stays unbiased where
    clipping cuts the noise off, which in real sRGB data is most dark pixels.
    """

    name = "heteroscedastic"
    fitted_params = ("a", "b", "x_range")

    def __init__(
        self,
        a: float | Sequence[float] | None = None,
        b: float | Sequence[float] | None = None,
        x_range: Sequence[float] | Sequence[Sequence[float]] | None = None,
        var_floor: float = 1e-6,  # [guess] (0.26/255)^2: below one 8-bit step
        range_tail: float = 1e-3,  # [guess]
    ):
        if (a is None) != (b is None):
            raise ValueError("heteroscedastic: pass both a and b, or neither (then fit)")
        if not var_floor > 0:
            raise ValueError(f"heteroscedastic: var_floor must be > 0, got {var_floor!r}")
        if not 0 <= range_tail < 0.5:
            raise ValueError(f"heteroscedastic: range_tail must be in [0, 0.5), got {range_tail!r}")
        self.a = None if a is None else _channel_values(a, self.name, "a", positive=False)
        self.b = None if b is None else _channel_values(b, self.name, "b", positive=False)
        self.x_range = np.array([[0.0, 1.0]] * 3) if x_range is None else self._checked_range(x_range)
        self.var_floor = float(var_floor)
        self.range_tail = float(range_tail)

    def _checked_range(self, x_range: Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
        ranges = np.asarray(x_range, dtype=np.float64)
        ranges = np.broadcast_to(ranges, (3, 2)).copy() if ranges.shape == (2,) else ranges
        if ranges.shape != (3, 2) or np.any(ranges[:, 0] > ranges[:, 1]) or np.any((ranges < 0) | (ranges > 1)):
            raise ValueError(f"{self.name}: x_range must be [low, high] in [0, 1], once or per channel, got {x_range!r}")
        return ranges

    def fit(self, pairs: TrainPairs) -> "Heteroscedastic":
        histogram = LevelHistogram.from_pairs(pairs, self.name)
        self.x_range = np.array([histogram.intensity_range(c, self.range_tail) for c in range(3)])
        lines = np.array([self._fit_line(histogram, c) for c in range(3)])
        self.a, self.b = lines[:, 0], lines[:, 1]
        return self

    def _fit_line(self, histogram: LevelHistogram, channel: int) -> tuple[float, float]:
        """(a, b) of one channel by L-BFGS from a = 0.

        Searched as variance = energy * (slope * (x - mean) / spread + level), with the
        channel's measured noise energy and the mean and std of its clean intensity, so the two
        coordinates are of order 1 and nearly uncorrelated.
        """
        energy = histogram.mean_energy[channel]
        mean, spread = histogram.mean_clean[channel], max(histogram.std_clean[channel], 1.0 / 255.0)
        centred = (np.clip(np.arange(LEVELS) / 255.0, *self.x_range[channel]) - mean) / spread

        def mean_neg_log_likelihood(line: np.ndarray) -> tuple[float, np.ndarray]:
            variance = energy * (line[0] * centred + line[1])
            floored = variance < self.var_floor
            value, gradient = histogram.neg_log_likelihood(channel, np.where(floored, self.var_floor, variance))
            gradient = np.where(floored, 0.0, gradient) * energy / histogram.total
            return value / histogram.total, np.array([gradient @ centred, gradient.sum()])

        result = minimize(
            mean_neg_log_likelihood, np.array([0.0, 1.0]), jac=True, method="L-BFGS-B",
            options={"ftol": 1e-12, "gtol": 1e-8},
        )
        if not result.success:  # its line search can stall on the floor's kink; a simplex search cannot
            result = minimize(
                lambda line: mean_neg_log_likelihood(line)[0], result.x, method="Nelder-Mead",
                options={"xatol": 1e-7, "fatol": 1e-13, "maxiter": 4000},
            )
        if not result.success:
            raise ValueError(f"{self.name}: the fit of channel {'RGB'[channel]} did not converge ({result.message})")
        slope, level = result.x
        return float(energy * slope / spread), float(energy * (level - slope * mean / spread))

    def variance(self, clean: torch.Tensor) -> torch.Tensor:
        """Noise variance a_c x + b_c per pixel of `clean` (B, 3, H, W), x held to x_range,
        floored at var_floor."""
        if self.a is None:
            raise _not_fitted(self.name, "a and b")
        x = clean.clamp(_per_channel(self.x_range[:, 0], clean), _per_channel(self.x_range[:, 1], clean))
        return (_per_channel(self.a, clean) * x + _per_channel(self.b, clean)).clamp_min(self.var_floor)

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return clean + self.variance(clean).sqrt() * randn_like(clean, generator)

    def params(self) -> dict[str, Any]:
        return {
            "a": None if self.a is None else _floats(self.a),
            "b": None if self.b is None else _floats(self.b),
            "x_range": [_floats(bounds) for bounds in self.x_range],
            "var_floor": self.var_floor,
            "range_tail": self.range_tail,
        }


MAX_KERNEL_SIGMA = 8.0  # lag-1 correlation 0.996: anything above is not noise but misalignment


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Sampled 1-D Gaussian of width `sigma` on +-ceil(4 sigma) taps, scaled to unit energy.

    Unit energy (sum of squares 1) makes the blurred i.i.d. unit noise keep unit variance.
    sigma = 0 gives the identity kernel [1].
    """
    if sigma == 0:
        return np.ones(1)
    radius = max(1, math.ceil(4.0 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / np.sqrt(np.sum(taps**2))


def kernel_lag1(sigma: float) -> float:
    """Lag-1 autocorrelation (either axis) of white noise blurred by `gaussian_kernel(sigma)`.

    For a separable unit-energy kernel k x k it is sum_i k_i k_(i+1); for sigma >~ 1 this is
    exp(-1 / (4 sigma^2)), the continuous Gaussian's value.
    """
    kernel = gaussian_kernel(sigma)
    return float(np.dot(kernel[:-1], kernel[1:]))


def kernel_sigma_for_lag1(rho: float) -> float:
    """The kernel width whose lag-1 autocorrelation is `rho` (0 for rho <= 0: a positive
    kernel cannot anti-correlate neighbours)."""
    if rho <= 0:
        return 0.0
    if rho >= kernel_lag1(MAX_KERNEL_SIGMA):
        raise ValueError(
            f"correlated: lag-1 noise correlation {rho:.4f} needs a kernel wider than {MAX_KERNEL_SIGMA}; "
            "clean and noisy images are probably misaligned"
        )
    return float(brentq(lambda s: kernel_lag1(s) - rho, 1e-3, MAX_KERNEL_SIGMA, xtol=1e-6))


def _product_sums(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[sum ab, sum a^2, sum b^2, count] over the masked positions."""
    a, b = a[mask], b[mask]
    return np.array([np.dot(a, b), np.dot(a, a), np.dot(b, b), a.size], dtype=np.float64)


def _correlation(sums: np.ndarray) -> float:
    """Correlation from `_product_sums`, with the 8-bit rounding variance (independent per
    pixel and channel, so it inflates only the variances) taken out."""
    cross, energy_a, energy_b, count = sums
    if count == 0:
        return 0.0
    return float(cross / np.sqrt(max(energy_a - count * QUANT_VAR, 1e-30) * max(energy_b - count * QUANT_VAR, 1e-30)))


def _valid_correlation(matrix: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The matrix with eigenvalues floored at `eps` and rescaled to unit diagonal, so an
    estimate from differently masked pixel sets is always a usable correlation matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    matrix = (vectors * np.maximum(values, eps)) @ vectors.T
    scale = np.sqrt(np.diag(matrix))
    return matrix / np.outer(scale, scale)


CHANNEL_PAIRS = ((0, 1), (1, 2), (0, 2))


class CorrelatedGaussian(NoiseModel):
    """Spatially and cross-channel correlated Gaussian noise, n = diag(std) L (k * w).

    w is i.i.d. N(0, 1) per channel, k a separable Gaussian blur of width `kernel_sigma`
    (`gaussian_kernel`, unit energy), L the Cholesky factor of the 3x3 channel correlation
    matrix `channel_corr`, std the noise std per channel. All channels share one kernel.

    Fit: std per channel by maximum likelihood (as `FittedAWGN(per_channel=True)`);
    `kernel_sigma` from the lag-1 autocorrelation pooled over channels and both axes
    (`kernel_sigma_for_lag1`); `channel_corr` from the same-pixel correlation of the three
    channels; both correlations on pixels away from clipping (`masked_noise`). Cross-channel
    mixing is on by default because demosaicking and the colour matrix correlate real sRGB
    noise strongly across channels (SIDD R-B about 0.5, METHOD.md §5) and a per-pixel
    discriminator or denoiser sees it; `cross_channel=False` fits independent channels.
    """

    name = "correlated"
    fitted_params = ("std", "kernel_sigma", "channel_corr")

    def __init__(
        self,
        std: float | Sequence[float] | None = None,
        kernel_sigma: float | None = None,
        channel_corr: Sequence[Sequence[float]] | None = None,
        cross_channel: bool = True,
        max_clipped_fraction: float = DEFAULT_MAX_CLIPPED_FRACTION,
    ):
        if (std is None) != (kernel_sigma is None):
            raise ValueError("correlated: pass both std and kernel_sigma, or neither (then fit)")
        if kernel_sigma is not None and not 0 <= kernel_sigma <= MAX_KERNEL_SIGMA:
            raise ValueError(f"correlated: kernel_sigma must be in [0, {MAX_KERNEL_SIGMA}], got {kernel_sigma!r}")
        if not 0 <= max_clipped_fraction < 1:
            raise ValueError(f"correlated: max_clipped_fraction must be in [0, 1), got {max_clipped_fraction!r}")
        self.std = None if std is None else _channel_values(std, self.name, "std")
        self.kernel_sigma = None if kernel_sigma is None else float(kernel_sigma)
        self.channel_corr = np.eye(3) if channel_corr is None else self._checked_corr(channel_corr)
        self.cross_channel = bool(cross_channel)
        self.max_clipped_fraction = float(max_clipped_fraction)

    def _checked_corr(self, matrix: Sequence[Sequence[float]]) -> np.ndarray:
        corr = np.asarray(matrix, dtype=np.float64)
        valid = corr.shape == (3, 3) and np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1.0)
        if not valid or np.any(np.linalg.eigvalsh(corr) <= 0):
            raise ValueError(
                f"{self.name}: channel_corr must be a symmetric positive definite 3x3 matrix with unit diagonal, "
                f"got {matrix!r}"
            )
        return corr

    def fit(self, pairs: TrainPairs) -> "CorrelatedGaussian":
        histogram = LevelHistogram.from_pairs(pairs, self.name)
        lag1 = np.zeros(4)
        cross = np.zeros((len(CHANNEL_PAIRS), 4))
        for noise, mask in masked_noise(pairs, self.max_clipped_fraction, self.name):
            lag1 += _product_sums(noise[:-1], noise[1:], mask[:-1] & mask[1:])  # vertical neighbours
            lag1 += _product_sums(noise[:, :-1], noise[:, 1:], mask[:, :-1] & mask[:, 1:])  # horizontal
            for i, (c, d) in enumerate(CHANNEL_PAIRS):
                cross[i] += _product_sums(noise[..., c], noise[..., d], mask[..., c] & mask[..., d])
        self.std = np.array([fit_constant_std(histogram, [c], self.name) for c in range(3)])
        self.kernel_sigma = kernel_sigma_for_lag1(_correlation(lag1))
        corr = np.eye(3)
        if self.cross_channel:
            for (c, d), sums in zip(CHANNEL_PAIRS, cross):
                corr[c, d] = corr[d, c] = _correlation(sums)
        self.channel_corr = _valid_correlation(corr)
        return self

    def lag1_correlation(self) -> float:
        """The model's lag-1 spatial autocorrelation of the noise, either axis, any channel."""
        if self.kernel_sigma is None:
            raise _not_fitted(self.name, "std and kernel_sigma")
        return kernel_lag1(self.kernel_sigma)

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.std is None:
            raise _not_fitted(self.name, "std and kernel_sigma")
        kernel = torch.as_tensor(gaussian_kernel(self.kernel_sigma), dtype=clean.dtype, device=clean.device)
        taps = kernel.numel()
        batch, _, height, width = clean.shape
        # white noise on a canvas padded by the kernel radius, blurred without padding: no border artefacts
        field = torch.randn(
            (batch, 3, height + taps - 1, width + taps - 1), generator=generator, device=clean.device, dtype=clean.dtype
        )
        field = F.conv2d(field, kernel.view(1, 1, 1, taps).expand(3, 1, 1, taps), groups=3)
        field = F.conv2d(field, kernel.view(1, 1, taps, 1).expand(3, 1, taps, 1), groups=3)
        mixing = self.std[:, None] * np.linalg.cholesky(self.channel_corr)
        mixing = torch.as_tensor(mixing, dtype=clean.dtype, device=clean.device)
        return clean + torch.einsum("cd,bdhw->bchw", mixing, field)

    def params(self) -> dict[str, Any]:
        return {
            "std": None if self.std is None else _floats(self.std),
            "kernel_sigma": self.kernel_sigma,
            "channel_corr": [_floats(row) for row in self.channel_corr],
            "cross_channel": self.cross_channel,
            "max_clipped_fraction": self.max_clipped_fraction,
        }
