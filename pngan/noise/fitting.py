"""Helpers for fitting noise models on real 8-bit (clean, noisy) training pairs.

Real 8-bit pairs bias naive noise statistics in two ways, and both are handled here:

- Clipping. Where clean + noise leaves [0, 255] the noisy value sticks at 0 or 255 and the
  measured variance reads low. In the dev SIDD_small pairs 41% of the clean values are below
  64 and 12% of those are clipped at 0; keeping only pixels safely away from clipping would
  keep 14% of all pixels, the bright ones. So noise levels are fitted by maximum likelihood
  on `LevelHistogram`, which treats a clipped value as "at most 0" / "at least 255"
  (censoring) and keeps every pixel. Clean values 0 and 255 are clipped themselves (the
  scene's true value is unknown) and are left out. Statistics that are ratios (correlations) use
  `masked_noise` instead: pixels whose clean level is rarely clipped and whose noisy value is
  not clipped.
- Quantisation. Rounding to 8-bit levels adds about 1/12 LSB^2 of variance (Sheppard's
  correction; exact to 1e-4 relative for noise std >= 1 LSB). The likelihood models rounding
  exactly; correlations subtract `QUANT_VAR` from their variances.

Pairs are read one at a time and reduced to sums, so any number of images of any sizes fit in
memory; `pairs` must be a sequence (some fits read it more than once), not a one-shot iterator.

Noise energy is the second moment of n = noisy - clean about zero, as in AKLD's local variance
map (DANet, ECCV 2020): a small offset between real noisy and clean images counts as noise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr

from pngan.noise.base import TrainPairs

LEVELS = 256
INTENSITY_AXES = ("channel", "luminance")  # what a noise level is a function of: the channel's clean value, or the clean luminance
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B
QUANT_VAR = 1.0 / (12.0 * 255.0**2)  # variance of rounding to 8-bit levels, in [0, 1]^2 units


def _checked(index: int, pair: tuple[np.ndarray, np.ndarray], who: str) -> tuple[np.ndarray, np.ndarray]:
    if len(pair) != 2:
        raise ValueError(f"{who}: training pair {index} must be (clean, noisy), got {len(pair)} items")
    clean, noisy = pair
    for side, image in (("clean", clean), ("noisy", noisy)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{who}: training pair {index}: {side} image must be a uint8 array, got {kind}")
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            raise ValueError(f"{who}: training pair {index}: {side} image must be H x W x 3, got shape {image.shape}")
    if clean.shape != noisy.shape:
        raise ValueError(f"{who}: training pair {index}: clean {clean.shape} and noisy {noisy.shape} differ in size")
    return clean, noisy


def checked_pairs(pairs: TrainPairs, who: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over (clean, noisy) uint8 pairs, raising ValueError (naming `who`) on bad input."""
    if isinstance(pairs, Iterator):
        raise ValueError(f"{who}: pairs must be a sequence (fits read them more than once), not a one-shot iterator")
    if len(pairs) == 0:
        raise ValueError(f"{who}: no training pairs given")
    return (_checked(i, pair, who) for i, pair in enumerate(pairs))


def _require_pixels(per_channel: np.ndarray, who: str) -> None:
    if np.any(per_channel == 0):
        raise ValueError(f"{who}: a channel has no clean value strictly between 0 and 255 to fit on")


def luminance_levels(clean: np.ndarray) -> np.ndarray:
    """The clean luminance (BT.601) of a uint8 H x W x 3 image, rounded to 8-bit levels (uint8 H x W)."""
    luma = clean.astype(np.float32) @ np.asarray(LUMA, dtype=np.float32)
    return np.clip(np.rint(luma), 0, LEVELS - 1).astype(np.uint8)


def is_clipped(image: np.ndarray) -> np.ndarray:
    return (image == 0) | (image == 255)


def usable_levels(pairs: TrainPairs, max_clipped_fraction: float, who: str) -> np.ndarray:
    """(3, 256) bool: clean levels, per channel, whose noisy pixels are rarely clipped.

    A level is usable when at most `max_clipped_fraction` of the noisy pixels at that clean
    level are 0 or 255; levels 0 and 255 never are, nor levels no pixel has.
    """
    if not 0.0 <= max_clipped_fraction < 1.0:
        raise ValueError(f"{who}: max_clipped_fraction must be in [0, 1), got {max_clipped_fraction}")
    total = np.zeros((3, LEVELS))
    clipped = np.zeros((3, LEVELS))
    for clean, noisy in checked_pairs(pairs, who):
        hits = is_clipped(noisy)
        for c in range(3):
            total[c] += np.bincount(clean[..., c].ravel(), minlength=LEVELS)
            clipped[c] += np.bincount(clean[..., c].ravel(), weights=hits[..., c].ravel(), minlength=LEVELS)
    usable = (total > 0) & (clipped <= max_clipped_fraction * total)
    usable[:, [0, LEVELS - 1]] = False
    return usable


def masked_noise(pairs: TrainPairs, max_clipped_fraction: float, who: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per pair: the noise n = noisy - clean in [0, 1] units and the bool mask of pixels to use.

    Both H x W x 3. The mask keeps pixels whose clean level is usable (see `usable_levels`)
    and whose noisy value is not clipped. Raises if no clean level is usable.
    """
    usable = usable_levels(pairs, max_clipped_fraction, who)
    if not usable.any():
        raise ValueError(f"{who}: every clean level is clipped too often (max_clipped_fraction={max_clipped_fraction})")
    channels = np.arange(3)
    for clean, noisy in checked_pairs(pairs, who):
        mask = usable[channels, clean] & ~is_clipped(noisy)
        yield (noisy.astype(np.float64) - clean) / 255.0, mask


class LevelHistogram:
    """How often each noisy 8-bit value occurs, per channel and clean 8-bit level.

    For any model whose noise at a pixel is N(0, variance) with the variance depending only on
    the channel and an 8-bit "level index" of the pixel, followed by rounding and clipping to
    8 bit, these counts are a sufficient statistic, and `neg_log_likelihood` is the exact
    likelihood of the data. The index is the channel's own clean level (`LevelHistogram(counts)`,
    `from_pairs(..., by="channel")`) or the clean luminance (`by="luminance"`); the clipping
    bounds always come from the channel's own clean value. Stored sparsely per channel: each
    occurring (index, clean level, noisy value) with its count.
    """

    def __init__(self, counts: np.ndarray):
        if counts.shape != (3, LEVELS, LEVELS):
            raise ValueError(f"level histogram must have shape (3, {LEVELS}, {LEVELS}), got {counts.shape}")
        entries = []
        for channel_counts in counts:
            clean, noisy = np.nonzero(channel_counts)
            entries.append((clean, clean, noisy, channel_counts[clean, noisy]))
        self._set(entries)

    def _set(self, entries: list[tuple[np.ndarray, ...]]) -> None:
        """Per channel, occurring (index, clean level, noisy value) and their counts."""
        self.entries = []
        share, energy, pixels = np.zeros((3, LEVELS)), np.zeros(3), np.ones(3)
        for c, (index, clean, noisy, count) in enumerate(entries):
            count = np.asarray(count, dtype=np.float64)
            pixels[c] = max(float(count.sum()), 1.0)  # a channel may be empty (tests)
            share[c] = np.bincount(index, weights=count, minlength=LEVELS) / pixels[c]
            energy[c] = float(count @ ((noisy - clean) / 255.0) ** 2) / pixels[c]
            # noisy value k means clean + noise (in LSB) rounds to k: noise in [k - 1/2, k + 1/2) - clean;
            # 0 and 255 are the clipped tails
            lower = np.where(noisy == 0, -np.inf, noisy - 0.5 - clean)
            upper = np.where(noisy == LEVELS - 1, np.inf, noisy + 0.5 - clean)
            self.entries.append((index, lower, upper, count))
        self.total = float(sum(entry[3].sum() for entry in self.entries))
        intensity = np.arange(LEVELS) / 255.0
        # per channel: the share of pixels at each index, the second moment of the measured noise
        # (where searches start) and the mean and std of the index's intensity (to centre and scale line fits)
        self.level_share = share
        self.mean_energy = energy
        self.mean_clean = share @ intensity
        self.std_clean = np.sqrt(np.maximum(share @ intensity**2 - self.mean_clean**2, 0.0))

    @classmethod
    def from_pairs(cls, pairs: TrainPairs, who: str, by: str = "channel") -> "LevelHistogram":
        """Counts of the pairs' pixels, indexed `by` the channel's clean level or the clean
        luminance (`luminance_levels`), leaving out clean values 0 and 255 of the channel: those
        are clipped themselves (the scene's true value is unknown), so their noise is not N(0, variance)."""
        if by not in INTENSITY_AXES:
            raise ValueError(f"{who}: noise levels are indexed by one of {', '.join(INTENSITY_AXES)}, got {by!r}")
        if by == "channel":
            counts = np.zeros((3, LEVELS * LEVELS))
            for clean, noisy in checked_pairs(pairs, who):
                index = clean.astype(np.int64) * LEVELS + noisy
                for c in range(3):
                    counts[c] += np.bincount(index[..., c].ravel(), minlength=LEVELS * LEVELS)
            counts = counts.reshape(3, LEVELS, LEVELS)
            counts[:, [0, LEVELS - 1], :] = 0
            _require_pixels(counts.sum(axis=(1, 2)), who)
            return cls(counts)
        sparse = np.zeros((3, LEVELS**3), dtype=np.int64)  # (luminance, clean, noisy) per channel: 128 MiB each
        for clean, noisy in checked_pairs(pairs, who):
            luma = luminance_levels(clean).astype(np.int64)
            for c in range(3):
                key = (luma * LEVELS + clean[..., c]) * LEVELS + noisy[..., c]
                kept = (clean[..., c] > 0) & (clean[..., c] < LEVELS - 1)
                sparse[c] += np.bincount(key[kept], minlength=LEVELS**3)
        _require_pixels(sparse.sum(axis=1), who)
        entries = []
        for row in sparse:
            key = np.nonzero(row)[0]
            entries.append((key // LEVELS**2, key // LEVELS % LEVELS, key % LEVELS, row[key]))
        histogram = cls.__new__(cls)
        histogram._set(entries)
        return histogram

    def intensity_range(self, channel: int, tail: float) -> tuple[float, float]:
        """Clean intensities (in [0, 1]) below and above which lies a share `tail` of the pixels."""
        cumulative = np.cumsum(self.level_share[channel])
        low = int(np.searchsorted(cumulative, tail, side="right"))
        high = int(np.searchsorted(cumulative, 1.0 - tail, side="left"))
        return low / 255.0, min(high, LEVELS - 1) / 255.0

    def neg_log_likelihood(self, channel: int, variance_of_level: np.ndarray) -> tuple[float, np.ndarray]:
        """-log P(data of `channel` | noise variance per clean level) and its gradient.

        `variance_of_level`: shape (256,), [0, 1]^2 units, > 0. Returns the value and its
        derivative with respect to each level's variance, shape (256,).
        """
        clean, lower, upper, count = self.entries[channel]
        variance = variance_of_level[clean]
        std = np.sqrt(variance) * 255.0
        z_lower, z_upper = lower / std, upper / std
        log_mass = _log_normal_mass(z_lower, z_upper)
        # d(-log mass)/d variance = (z_u phi(z_u) - z_l phi(z_l)) / (2 variance mass)
        slope = (_z_density_over(z_upper, log_mass) - _z_density_over(z_lower, log_mass)) / (2.0 * variance)
        gradient = np.bincount(clean, weights=count * slope, minlength=LEVELS)
        return -float(np.dot(count, log_mass)), gradient


def _log_normal_mass(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """log(Phi(upper) - Phi(lower)) for lower < upper, accurate far in either tail."""
    mirror = lower > 0  # use the lower tail, where Phi has full relative precision
    lower, upper = np.where(mirror, -upper, lower), np.where(mirror, -lower, upper)
    log_upper, log_lower = log_ndtr(upper), log_ndtr(lower)
    return log_upper + np.log1p(-np.exp(log_lower - log_upper))


def _z_density_over(z: np.ndarray, log_mass: np.ndarray) -> np.ndarray:
    """z phi(z) / mass, 0 at z = +-inf, computed in log space so far tails do not overflow."""
    finite = np.isfinite(z)
    z = np.where(finite, z, 0.0)
    log_ratio = np.where(finite, -0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_mass, -np.inf)
    return z * np.exp(log_ratio)


STD_RANGE = (1e-5, 1.0)  # searched noise std, [0, 1] units


def fit_constant_std(histogram: LevelHistogram, channels: Sequence[int], who: str) -> float:
    """Maximum-likelihood std of noise that is the same at every level of `channels`.

    Searched over the log variance with L-BFGS, from the measured (clipped) noise energy.
    """
    def mean_neg_log_likelihood(log_variance: np.ndarray) -> tuple[float, np.ndarray]:
        variance = np.full(LEVELS, np.exp(log_variance[0]))
        value, slope = 0.0, 0.0
        for c in channels:
            nll, gradient = histogram.neg_log_likelihood(c, variance)
            value, slope = value + nll, slope + gradient.sum() * variance[0]
        return value / histogram.total, np.array([slope / histogram.total])

    bounds = 2.0 * np.log(STD_RANGE)
    start = np.clip(np.log(histogram.mean_energy[list(channels)].mean() + 1e-12), *bounds)
    result = minimize(
        mean_neg_log_likelihood, np.array([start]), jac=True, method="L-BFGS-B", bounds=[tuple(bounds)],
        options={"ftol": 1e-15, "gtol": 1e-10},
    )
    if not result.success:
        raise ValueError(f"{who}: the noise level fit did not converge ({result.message})")
    return float(np.exp(0.5 * result.x[0]))
