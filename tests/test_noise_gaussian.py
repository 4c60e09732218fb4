"""Gaussian-family noise models: sampling, fitting on 8-bit pairs, and fits on real SIDD pairs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from pngan.data.pairs import read_paired_folder, training_arrays
from pngan.noise import build
from pngan.noise.base import quantize
from pngan.noise.fitting import LevelHistogram, masked_noise, usable_levels
from pngan.noise.gaussian import (
    AWGN,
    CorrelatedGaussian,
    FittedAWGN,
    Heteroscedastic,
    gaussian_kernel,
    kernel_lag1,
    kernel_sigma_for_lag1,
)

LSB = 1.0 / 255.0
CHANNEL_CORR = [[1.0, 0.3, 0.5], [0.3, 1.0, 0.25], [0.5, 0.25, 1.0]]


@pytest.fixture(scope="module")
def gradients() -> torch.Tensor:
    """Two smooth 8-bit clean images spanning [0.05, 0.95] (R across, G down, B diagonal):
    2 x 512 x 512 x 3 = 1.57 M samples."""
    ramp = torch.linspace(0.05, 0.95, 512)
    image = torch.stack([ramp.expand(512, 512), ramp[:, None].expand(512, 512), (ramp[:, None] + ramp) / 2])
    return quantize(image.expand(2, 3, 512, 512).contiguous())


def as_pairs(clean: torch.Tensor, noisy: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """(B, 3, H, W) tensors on 8-bit levels -> (clean, noisy) uint8 H x W x 3 pairs."""
    def to_uint8(images: torch.Tensor) -> np.ndarray:
        return (images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()

    return list(zip(to_uint8(clean), to_uint8(noisy)))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def lag1(noise: torch.Tensor, dim: int) -> float:
    """Lag-1 autocorrelation of zero-mean noise along `dim`."""
    head, tail = noise.narrow(dim, 0, noise.shape[dim] - 1), noise.narrow(dim, 1, noise.shape[dim] - 1)
    return float((head * tail).mean() / (noise**2).mean())


# ---------------------------------------------------------------- AWGN


def test_awgn_default_is_the_papers_setting_1():
    assert AWGN().params() == {"sigma": 50 / 255}
    assert build("awgn").params() == {"sigma": 50 / 255}


def test_awgn_sample_std_matches_sigma():
    clean = torch.full((1, 3, 512, 512), 128 * LSB)  # far from clipping at 10/255
    noise = (AWGN(sigma=10 * LSB).sample(clean, seeded(0)) - clean) / LSB
    # 8-bit rounding adds 1/12 LSB^2 to the variance
    assert float(noise.std()) == pytest.approx(math.sqrt(100 + 1 / 12), rel=0.01)
    assert abs(float(noise.mean())) < 0.05


# ---------------------------------------------------------------- recovery of known parameters


@pytest.mark.parametrize("per_channel", [False, True])
def test_fitted_awgn_recovers_sigma(gradients, per_channel):
    sigma = [8 * LSB, 16 * LSB, 32 * LSB] if per_channel else 25 * LSB
    noisy = FittedAWGN(per_channel=per_channel, sigma=sigma).sample(gradients, seeded(1))
    fitted = FittedAWGN(per_channel=per_channel).fit(as_pairs(gradients, noisy))
    assert fitted.params()["sigma"] == pytest.approx(sigma, rel=0.05)


def test_fitted_awgn_undoes_clipping_where_the_raw_std_does_not(gradients):
    """At sigma = 40/255 the gradients' dark and bright ends clip: the raw noise std reads low."""
    sigma = 40 * LSB
    noisy = AWGN(sigma).sample(gradients, seeded(2))
    raw_std = float((noisy - gradients).pow(2).mean().sqrt())
    assert raw_std < 0.97 * sigma  # the bias the fit must remove
    assert FittedAWGN().fit(as_pairs(gradients, noisy)).sigma[0] == pytest.approx(sigma, rel=0.01)


def test_fitted_awgn_undoes_rounding_where_the_raw_std_does_not():
    """At sigma = 1 LSB rounding adds 1/12 LSB^2: 4% on the std."""
    clean = torch.full((4, 3, 256, 256), 100 * LSB)
    noisy = AWGN(1 * LSB).sample(clean, seeded(3))
    raw_std = float((noisy - clean).pow(2).mean().sqrt())
    assert raw_std == pytest.approx(math.sqrt(1 + 1 / 12) * LSB, rel=0.01)
    assert FittedAWGN().fit(as_pairs(clean, noisy)).sigma[0] == pytest.approx(LSB, rel=0.01)


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.004, 0.002, 0.006], [0.0004, 0.0002, 0.0008]),  # noise grows with intensity
        ([-0.002, -0.001, -0.003], [0.003, 0.002, 0.0035]),  # sRGB-like: the tone curve compresses highlights
    ],
    ids=["positive_slope", "negative_slope"],
)
def test_heteroscedastic_recovers_its_line(gradients, a, b):
    noisy = Heteroscedastic(a=a, b=b).sample(gradients, seeded(4))
    fitted = Heteroscedastic().fit(as_pairs(gradients, noisy))
    assert fitted.params()["a"] == pytest.approx(a, rel=0.05)
    assert fitted.params()["b"] == pytest.approx(b, rel=0.05)
    # the clean intensities covered, less 0.1% at each end: R and G are uniform on
    # [0.05, 0.95]; B, the mean of two uniforms, has P(B < 0.05 + s) = 2 s^2 / 0.9^2
    tail = math.sqrt(0.001 * 0.81 / 2)
    assert np.allclose(fitted.x_range, [[0.05, 0.95], [0.05, 0.95], [0.05 + tail, 0.95 - tail]], atol=0.005)


def test_heteroscedastic_holds_variance_outside_its_intensity_range():
    model = Heteroscedastic(a=-0.01, b=0.006, x_range=[0.1, 0.4])
    variance = model.variance(torch.tensor([0.0, 0.1, 0.25, 0.4, 0.9]).view(1, 1, 1, 5).expand(1, 3, 1, 5))[0, 0, 0]
    assert variance.tolist() == pytest.approx([0.005, 0.005, 0.0035, 0.002, 0.002])


def test_heteroscedastic_floors_negative_variance():
    model = Heteroscedastic(a=-1.0, b=0.5, var_floor=(4 * LSB) ** 2)  # a x + b < 0 above x = 0.5
    clean = torch.full((1, 3, 512, 512), 230 * LSB)
    assert torch.allclose(model.variance(clean), torch.tensor((4 * LSB) ** 2))
    noise = (model.sample(clean, seeded(5)) - clean) / LSB
    assert float(noise.std()) == pytest.approx(math.sqrt(16 + 1 / 12), rel=0.02)


def test_correlated_recovers_std_kernel_and_channel_correlation(gradients):
    truth = CorrelatedGaussian(std=[10 * LSB, 14 * LSB, 18 * LSB], kernel_sigma=0.8, channel_corr=CHANNEL_CORR)
    noisy = truth.sample(gradients, seeded(6))
    fitted = CorrelatedGaussian().fit(as_pairs(gradients, noisy)).params()
    assert fitted["std"] == pytest.approx(truth.params()["std"], rel=0.05)
    assert fitted["kernel_sigma"] == pytest.approx(0.8, rel=0.05)
    for c, d in [(0, 1), (1, 2), (0, 2)]:
        assert fitted["channel_corr"][c][d] == pytest.approx(CHANNEL_CORR[c][d], rel=0.05)


def test_correlated_without_cross_channel_fits_independent_channels(gradients):
    clean = gradients[:1, :, ::4, ::4]
    noisy = CorrelatedGaussian(std=12 * LSB, kernel_sigma=0.6, channel_corr=CHANNEL_CORR).sample(clean, seeded(7))
    fitted = CorrelatedGaussian(cross_channel=False).fit(as_pairs(clean, noisy))
    assert np.array_equal(fitted.channel_corr, np.eye(3))


# ---------------------------------------------------------------- correlated kernel


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.5])
def test_kernel_lag1_matches_the_continuous_gaussian(sigma):
    # white noise blurred by a Gaussian of width s has autocorrelation exp(-d^2 / (4 s^2))
    assert kernel_lag1(sigma) == pytest.approx(math.exp(-1 / (4 * sigma**2)), abs=1e-3)
    assert float(np.sum(gaussian_kernel(sigma) ** 2)) == pytest.approx(1.0)


def test_kernel_sigma_for_lag1_inverts_kernel_lag1():
    for sigma in (0.3, 0.6, 1.2, 4.0):
        assert kernel_sigma_for_lag1(kernel_lag1(sigma)) == pytest.approx(sigma, rel=1e-4)
    assert kernel_sigma_for_lag1(-0.1) == 0.0
    assert kernel_lag1(0.0) == 0.0
    with pytest.raises(ValueError, match="misaligned"):
        kernel_sigma_for_lag1(0.999)


@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.5])
def test_correlated_sample_lag1_matches_its_kernel(sigma):
    model = CorrelatedGaussian(std=6 * LSB, kernel_sigma=sigma)
    clean = torch.full((2, 3, 256, 256), 128 * LSB)
    noise = model.sample(clean, seeded(8)) - clean
    # rounding adds 1/12 LSB^2 of white variance to the 36 LSB^2 of the model
    expected = model.lag1_correlation() * 36 / (36 + 1 / 12)
    assert lag1(noise, dim=3) == pytest.approx(expected, abs=0.01)
    assert lag1(noise, dim=2) == pytest.approx(expected, abs=0.01)
    if sigma >= 1.0:
        assert model.lag1_correlation() == pytest.approx(math.exp(-1 / (4 * sigma**2)), abs=1e-3)


# ---------------------------------------------------------------- sampling contract

MODELS = {
    "awgn": lambda: AWGN(20 * LSB),
    "awgn_fitted": lambda: FittedAWGN(per_channel=True, sigma=[10 * LSB, 20 * LSB, 30 * LSB]),
    "heteroscedastic": lambda: Heteroscedastic(a=[-0.002] * 3, b=[0.003] * 3),
    "correlated": lambda: CorrelatedGaussian(std=20 * LSB, kernel_sigma=0.7, channel_corr=CHANNEL_CORR),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_sample_is_seeded_clipped_and_on_8bit_levels(kind):
    model = MODELS[kind]()
    clean = torch.linspace(0, 1, 48).expand(2, 3, 48, 48).contiguous()  # includes 0 and 1: clipping
    first = model.sample(clean, seeded(11))
    assert first.shape == clean.shape and first.dtype == torch.float32
    assert torch.equal(first, model.sample(clean, seeded(11)))
    assert not torch.equal(first, model.sample(clean, seeded(12)))
    assert float(first.min()) == 0.0 and float(first.max()) == 1.0
    levels = first * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)


@pytest.mark.parametrize("kind", ["awgn_fitted", "heteroscedastic", "correlated"])
def test_sample_before_fit_raises(kind):
    with pytest.raises(ValueError, match=f"{kind}: not fitted"):
        build(kind).sample(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_params_are_plain_json_and_rebuild_the_model(kind):
    model = MODELS[kind]()
    params = json.loads(json.dumps(model.params()))
    assert build(kind, **params).params() == model.params()


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kind", ["awgn_fitted", "heteroscedastic", "correlated"])
def test_fit_rejects_bad_pairs(kind):
    good = np.full((8, 8, 3), 100, np.uint8)
    with pytest.raises(ValueError, match=f"{kind}: no training pairs given"):
        build(kind).fit([])
    with pytest.raises(ValueError, match="training pair 0: noisy image must be a uint8 array, got float64"):
        build(kind).fit([(good, good / 255.0)])
    with pytest.raises(ValueError, match=r"training pair 1: clean \(8, 8, 3\) and noisy \(8, 9, 3\) differ in size"):
        build(kind).fit([(good, good), (good, np.zeros((8, 9, 3), np.uint8))])
    with pytest.raises(ValueError, match="training pair 0: clean image must be H x W x 3"):
        build(kind).fit([(good[..., 0], good[..., 0])])
    with pytest.raises(ValueError, match="not a one-shot iterator"):
        build(kind).fit(iter([(good, good)]))


def test_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        AWGN(-0.1)
    with pytest.raises(ValueError, match="one number unless per_channel=True"):
        FittedAWGN(sigma=[0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="pass both a and b"):
        Heteroscedastic(a=0.001)
    with pytest.raises(ValueError, match="three"):
        Heteroscedastic(a=[0.001, 0.002], b=0.001)
    with pytest.raises(ValueError, match=r"x_range must be \[low, high\] in \[0, 1\]"):
        Heteroscedastic(a=0.001, b=0.001, x_range=[0.6, 0.4])
    with pytest.raises(ValueError, match=r"max_clipped_fraction must be in \[0, 1\)"):
        CorrelatedGaussian(max_clipped_fraction=1.5)
    with pytest.raises(ValueError, match="positive definite"):
        CorrelatedGaussian(std=0.1, kernel_sigma=1.0, channel_corr=[[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]])


# ---------------------------------------------------------------- fitting helpers


def test_likelihood_is_exact_for_rounded_clipped_gaussian_noise():
    """P(noisy = k | clean level, std) sums to 1 over k and matches the sampled frequency of 0."""
    level, std = 10, 8 * LSB

    def probability(noisy_value: int) -> float:
        counts = np.zeros((3, 256, 256))
        counts[0, level, noisy_value] = 1
        return math.exp(-LevelHistogram(counts).neg_log_likelihood(0, np.full(256, std**2))[0])

    # beyond k = 80 (8.7 std above the level) the mass is below 1e-17
    assert sum(probability(k) for k in range(80)) == pytest.approx(1.0, abs=1e-9)
    clean = torch.full((1, 3, 256, 256), level * LSB)
    sampled_zero = float((AWGN(std).sample(clean, seeded(9)) == 0).float().mean())
    assert probability(0) == pytest.approx(norm.cdf((0.5 - level) / 8), abs=1e-9)
    assert sampled_zero == pytest.approx(probability(0), abs=0.004)


def test_likelihood_gradient_matches_finite_differences(gradients):
    pairs = as_pairs(gradients[:1], AWGN(20 * LSB).sample(gradients[:1], seeded(10)))
    histogram = LevelHistogram.from_pairs(pairs, "test")
    variance = np.random.default_rng(0).uniform(0.5, 2.0, 256) * (20 * LSB) ** 2
    _, gradient = histogram.neg_log_likelihood(1, variance)
    for level in (20, 128, 240):
        step = np.zeros(256)
        step[level] = 1e-4 * variance[level]
        up = histogram.neg_log_likelihood(1, variance + step)[0]
        down = histogram.neg_log_likelihood(1, variance - step)[0]
        numeric = (up - down) / (2 * step[level])
        assert gradient[level] == pytest.approx(numeric, rel=1e-4)


def test_usable_levels_drop_often_clipped_levels_and_masks_drop_clipped_pixels():
    clean = np.zeros((64, 64, 3), np.uint8)
    clean[:32], clean[32:] = 10, 128
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 10, clean.shape).round(), 0, 255).astype(np.uint8)
    pairs = [(clean, noisy)]
    usable = usable_levels(pairs, 1e-3, "test")
    assert not usable[:, 10].any()  # 16% of its noisy values are clipped at 0
    assert usable[:, 128].all()
    assert usable.sum() == 3
    assert not usable_levels([(np.full((4, 4, 3), 255, np.uint8),) * 2], 1e-3, "test").any()
    (noise, mask), = masked_noise(pairs, 1e-3, "test")
    assert np.array_equal(mask, clean == 128)
    assert np.allclose(noise, (noisy.astype(float) - clean) / 255)


# ---------------------------------------------------------------- real SIDD pairs


@pytest.fixture(scope="module")
def sidd_pairs(real_pairs_dev) -> list[tuple[np.ndarray, np.ndarray]]:
    """Four SIDD_small pairs (256 x 256, noisy PSNR about 17-24 dB) as (clean, noisy)."""
    return training_arrays(read_paired_folder(real_pairs_dev / "SIDD_small")[:4])


@pytest.mark.shared_data
def test_fits_on_real_sidd_pairs_are_sane(sidd_pairs):
    clean = torch.tensor(np.stack([c for c, _ in sidd_pairs])).permute(0, 3, 1, 2).float() / 255
    real = torch.tensor(np.stack([n for _, n in sidd_pairs])).permute(0, 3, 1, 2).float() / 255
    per_image_std = (real - clean).pow(2).mean(dim=(2, 3)).sqrt().numpy()  # (images, channels)
    real_std = (real - clean).pow(2).mean(dim=(0, 2, 3)).sqrt().numpy()

    awgn = FittedAWGN().fit(sidd_pairs)
    assert per_image_std.min() < awgn.sigma[0] < per_image_std.max()
    per_channel = FittedAWGN(per_channel=True).fit(sidd_pairs)
    assert np.all((per_image_std.min(axis=0) < per_channel.sigma) & (per_channel.sigma < per_image_std.max(axis=0)))

    # noise drawn from each fitted model on the same clean images (clipped like the real noise)
    # has the real noise std per channel to within 10%. Not closer: in dark regions real sRGB
    # noise has a negative mean (-3 to -13 LSB here: through the concave tone curve the noisy
    # mean falls below the clean value), which zero-mean models cannot carry, so the fits
    # explain the extra clipping at 0 with a somewhat larger variance.
    hetero = Heteroscedastic().fit(sidd_pairs)
    correlated = CorrelatedGaussian().fit(sidd_pairs)
    for model in (per_channel, hetero, correlated):
        model_std = (model.sample(clean, seeded(13)) - clean).pow(2).mean(dim=(0, 2, 3)).sqrt().numpy()
        assert model_std == pytest.approx(real_std, rel=0.10), type(model).__name__
    assert np.all(hetero.variance(torch.full((1, 3, 1, 1), 0.5)).numpy() > 0)

    # the same estimator gives the correlated model's std; SIDD noise is correlated over about
    # one pixel (lag-1 about 0.45) and red-blue more than red-green or green-blue (METHOD.md §5)
    assert np.allclose(correlated.std, per_channel.sigma)
    assert 0.3 < correlated.lag1_correlation() < 0.65
    corr = correlated.channel_corr
    assert corr[0, 2] > max(corr[0, 1], corr[1, 2]) > 0.1
    real_lag1 = (lag1(real - clean, dim=3) + lag1(real - clean, dim=2)) / 2
    assert correlated.lag1_correlation() == pytest.approx(real_lag1, abs=0.1)

    # nothing to fit in the fixed AWGN
    assert AWGN().fit(sidd_pairs).params() == {"sigma": 50 / 255}


def test_fits_ignore_saturated_clean_pixels(gradients):
    """Where the scene is brighter than white (darker than black) clean and noisy both clip:
    those pixels say nothing about the noise level and must not pull it to 0."""
    a, b = [0.004] * 3, [0.0004] * 3
    clean = gradients[:1]
    noisy = Heteroscedastic(a=a, b=b).sample(clean, seeded(14))
    (clean_u8, noisy_u8), = as_pairs(clean, noisy)
    saturated = np.zeros((128, 512, 3), np.uint8)
    saturated[:, :256] = 255
    pairs = [(clean_u8, noisy_u8), (saturated, saturated)]
    fitted = Heteroscedastic().fit(pairs)
    assert fitted.params()["a"] == pytest.approx(a, rel=0.05)
    assert fitted.params()["b"] == pytest.approx(b, rel=0.05)
