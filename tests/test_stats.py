"""Noise statistics: analytic values on synthetic noise, and METHOD.md section 5 on the dev data."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from scipy import ndimage

from pngan import stats
from pngan.data.pairs import read_paired_folder

RNG = np.random.default_rng


def _blur_wrap(noise: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of each channel (so the stationary analytic results hold exactly)."""
    return np.stack([ndimage.convolve(noise[..., c], kernel, mode="wrap") for c in range(noise.shape[-1])], axis=-1)


def _kernel_autocorrelation(kernel: np.ndarray, max_lag: int) -> np.ndarray:
    """Analytic R(dy, dx) = sum_p k(p) k(p+d) / sum k^2 of white noise blurred by `kernel`."""
    kh, kw = kernel.shape
    padded = np.zeros((kh + 2 * max_lag, kw + 2 * max_lag))
    padded[max_lag:max_lag + kh, max_lag:max_lag + kw] = kernel
    out = np.zeros((2 * max_lag + 1, 2 * max_lag + 1))
    for dy in range(-max_lag, max_lag + 1):
        for dx in range(-max_lag, max_lag + 1):
            out[max_lag + dy, max_lag + dx] = (kernel * padded[max_lag + dy:max_lag + dy + kh,
                                                               max_lag + dx:max_lag + dx + kw]).sum()
    return out / (kernel**2).sum()


# An asymmetric kernel: wider along x than along y, so swapping h and v would show.
KERNEL = np.outer([1.0, 1.0], [1.0, 2.0, 1.0])


# ---------------------------------------------------------------- inputs


def test_uint8_numpy_and_float_tensor_give_the_same_noise():
    rng = RNG(0)
    clean = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    noisy = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    (_, from_numpy), = stats.iter_noise(clean, noisy)
    tensors = [torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (clean, noisy)]
    (_, from_torch), = stats.iter_noise(*tensors)
    np.testing.assert_allclose(from_numpy, (noisy.astype(float) - clean) / 255, atol=1e-12)
    np.testing.assert_allclose(from_torch, from_numpy, atol=1e-6)


def test_bad_inputs_name_the_problem():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"clean and noisy differ in shape: 1 x 8x8 vs 1 x 8x9 \(images x height x width\)"):
        list(stats.iter_noise(img, np.zeros((8, 9, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"noisy: float values span \[255, 255\]; float images must be in \[0, 1\]"):
        list(stats.iter_noise(img.astype(float), np.full((8, 8, 3), 255.0)))
    with pytest.raises(ValueError, match=r"noisy: expected a 3-channel image laid out H x W x 3 \(numpy\), got shape \(3, 8, 8\)"):
        list(stats.iter_noise(img, np.zeros((3, 8, 8), np.uint8)))
    with pytest.raises(ValueError, match="max_lag must be >= 2"):
        stats.NoiseStats(max_lag=1)
    with pytest.raises(ValueError, match="cannot group by \\['camera'\\]"):
        stats.summary_table({"m": [(img, img + 1)]}, group_by="camera")


# ---------------------------------------------------------------- autocorrelation


def test_white_noise_autocorrelation_is_zero_off_centre():
    h = w = 192
    noise = RNG(1).normal(0, 0.05, (h, w, 3))
    acf = stats.autocorrelation(noise, max_lag=5)
    assert acf.shape == (3, 11, 11)
    np.testing.assert_allclose(acf[:, 5, 5], 1.0)
    off = np.ones((11, 11), bool)
    off[5, 5] = False
    # each channel and lag: an estimate of 0 with std 1/sqrt(overlap); 4.5 sigma over 360 values
    assert np.abs(acf[:, off]).max() < 4.5 / np.sqrt((h - 5) * (w - 5))
    # the channel mean (3x the samples) within 3/sqrt(N) at every lag
    assert np.abs(acf.mean(axis=0)[off]).max() < 3 / np.sqrt(h * w)


def test_blurred_noise_autocorrelation_equals_the_kernels():
    white = RNG(2).normal(0, 0.05, (256, 256, 3))
    acf = stats.autocorrelation(_blur_wrap(white, KERNEL), max_lag=5)
    expected = _kernel_autocorrelation(KERNEL, 5)
    assert expected[5, 6] == pytest.approx(8 / 12) and expected[6, 5] == pytest.approx(6 / 12)
    np.testing.assert_allclose(acf.mean(axis=0), expected, atol=0.02)
    assert acf[:, 5, 6].mean() > acf[:, 6, 5].mean() + 0.15  # horizontal lag (dx) is the wider one


def test_autocorrelation_is_the_correlation_of_shifted_crops():
    # non-stationary on purpose (a ramp plus noise): the definition, not a stationary limit, is tested
    rng = RNG(3)
    noise = np.linspace(-1, 1, 40)[None, :, None] * rng.uniform(0.5, 1.5, (1, 1, 3)) + rng.normal(0, 0.5, (30, 40, 3))
    acf = stats.autocorrelation(noise, max_lag=4)
    for c, dy, dx in [(0, 0, 3), (1, 2, -1), (2, -4, 4), (0, 3, 0)]:
        a = noise[max(0, dy):30 + min(0, dy), max(0, dx):40 + min(0, dx), c]
        b = noise[max(0, -dy):30 - max(0, dy), max(0, -dx):40 - max(0, dx), c]
        np.testing.assert_allclose(acf[c, 4 + dy, 4 + dx], np.corrcoef(a.ravel(), b.ravel())[0, 1], rtol=1e-9)
        np.testing.assert_allclose(acf[c, 4 - dy, 4 - dx], acf[c, 4 + dy, 4 + dx], rtol=1e-9)
    circular = np.corrcoef(noise[..., 0].ravel(), np.roll(noise[..., 0], -3, axis=1).ravel())[0, 1]
    assert acf[0, 4, 7] > circular + 0.1  # a wrapping estimate would see the ramp's jump at the border


# ---------------------------------------------------------------- power spectrum


def test_white_noise_power_spectrum_is_flat_at_one():
    edges, power, counts = stats.power_spectrum(RNG(3).normal(0, 0.05, (256, 256, 3)), bins=16)
    assert edges[0] == 0 and edges[-1] == 0.5 and power.shape == (3, 16)
    # the periodogram is exponential with mean 1; a bin averages ~counts/2 independent values
    tolerance = 4.5 / np.sqrt(counts / 2)
    assert np.all(np.abs(power - 1) < tolerance)
    assert power.mean() == pytest.approx(1.0, abs=0.02)


def test_blurred_noise_power_spectrum_follows_the_kernel_response():
    h = w = 256
    white = RNG(4).normal(0, 0.05, (h, w, 3))
    edges, power, counts = stats.power_spectrum(_blur_wrap(white, KERNEL), bins=16)
    padded = np.zeros((h, w))
    padded[:KERNEL.shape[0], :KERNEL.shape[1]] = KERNEL
    response = np.abs(np.fft.fft2(padded)) ** 2 / (KERNEL**2).sum()  # |K(f)|^2, normalised
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    annuli = [(radius > lo) & (radius <= hi) for lo, hi in zip(edges[:-1], edges[1:])]  # DC (radius 0) left out
    np.testing.assert_array_equal(counts, [a.sum() for a in annuli])
    expected = np.array([response[a].mean() for a in annuli])
    assert expected[0] > 2.5 and expected[-1] < 0.2  # a low-pass: the test has something to see
    np.testing.assert_allclose(power.mean(axis=0), expected, rtol=0.1, atol=0.01)


# ---------------------------------------------------------------- channel correlation, moments


def test_independent_channels_correlate_as_identity():
    corr = stats.channel_correlation(RNG(5).normal(0, 0.05, (128, 128, 3)))
    np.testing.assert_allclose(corr, np.eye(3), atol=3 / np.sqrt(128 * 128))


def test_mixed_channels_correlate_as_the_mixing():
    mixing = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.3, -0.5, 0.5]])
    noise = RNG(6).normal(0, 0.02, (200, 200, 3)) @ mixing.T
    cov = mixing @ mixing.T
    expected = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(stats.channel_correlation(noise), expected, atol=0.02)


def test_moments_of_gaussian_and_uniform_noise():
    rng = RNG(7)
    gauss = stats.moments(rng.normal(0.01, 0.05, (300, 300, 3)))
    np.testing.assert_allclose(gauss["mean"], 0.01, atol=0.001)
    np.testing.assert_allclose(gauss["std"], 0.05, rtol=0.01)
    np.testing.assert_allclose(gauss["skewness"], 0.0, atol=0.03)
    np.testing.assert_allclose(gauss["excess_kurtosis"], 0.0, atol=0.06)
    uniform = stats.moments(rng.uniform(-0.1, 0.1, (300, 300, 3)))
    np.testing.assert_allclose(uniform["std"], 0.2 / np.sqrt(12), rtol=0.01)
    np.testing.assert_allclose(uniform["excess_kurtosis"], -1.2, atol=0.02)
    skewed = stats.moments(rng.exponential(0.05, (300, 300, 3)))  # skewness 2, excess kurtosis 6
    np.testing.assert_allclose(skewed["skewness"], 2.0, atol=0.1)
    np.testing.assert_allclose(skewed["excess_kurtosis"], 6.0, atol=0.6)


def test_streamed_moments_equal_moments_of_everything_at_once():
    rng = RNG(8)
    parts = [rng.gamma(2.0, 0.02, (n, 17, 3)) + 0.3 for n in (5, 40, 11)]  # a large mean on purpose
    acc = stats.NoiseStats(max_lag=2)
    for p in parts:
        acc.add(np.zeros_like(p), p)
    everything = np.concatenate([p.reshape(-1, 3) for p in parts])
    direct = stats.moments(everything.reshape(-1, 1, 3))
    streamed = acc.moments()
    np.testing.assert_allclose(streamed.loc[list(stats.CHANNELS), "std_255"], direct["std"] * 255, rtol=1e-10)
    np.testing.assert_allclose(streamed.loc[list(stats.CHANNELS), "skewness"], direct["skewness"], rtol=1e-8)
    np.testing.assert_allclose(streamed.loc[list(stats.CHANNELS), "excess_kurtosis"], direct["excess_kurtosis"], rtol=1e-8)
    assert streamed.loc["all", "std_255"] == pytest.approx(everything.std() * 255, rel=1e-10)


# ---------------------------------------------------------------- histogram, noise level function


def test_histogram_counts_each_8bit_level_in_its_own_bin():
    clean = np.full((4, 5, 3), 100, np.uint8)
    offsets = np.array([-70, -64, -1, 0, 0, 0, 1, 2, 64, 65] * 2).reshape(4, 5, 1)
    noisy = (clean.astype(int) + offsets).astype(np.uint8)
    acc = stats.NoiseStats(max_lag=2)
    acc.add(clean, noisy)
    hist = acc.histogram()
    centres = np.rint(0.5 * (hist.edges[:-1] + hist.edges[1:]) * 255).astype(int)
    inner = dict(zip(centres, hist.counts[0, 1:-1]))
    assert (hist.counts[0, 0], hist.counts[0, -1]) == (2, 2)  # -70 and 65 fall outside +-64
    assert inner[-64] == 2 and inner[-1] == 2 and inner[0] == 6 and inner[1] == 2 and inner[2] == 2 and inner[64] == 2
    assert hist.counts[0].sum() == 20 and hist.outside()[0] == pytest.approx(0.2)
    assert hist.density()[0].sum() * np.diff(hist.edges)[0] == pytest.approx(0.8)


def test_noise_level_function_recovers_a_linear_variance_law():
    a, b = 0.004, 0.0004  # Var = a x + b: std 5/255 at x = 0 to 17/255 at x = 1
    rng = RNG(9)
    acc = stats.NoiseStats(nlf_bins=16, nlf_min_count=2000)
    for _ in range(4):
        clean = rng.uniform(0, 1, (200, 200, 3))
        acc.add(clean, clean + rng.normal(0, 1, clean.shape) * np.sqrt(a * clean + b))
    nlf = acc.noise_level()
    assert nlf.std.shape == (3, 16) and np.isfinite(nlf.std).all()
    np.testing.assert_allclose(nlf.std**2, a * nlf.intensity + b, rtol=0.04)
    slope, intercept = np.polyfit(nlf.intensity.ravel(), (nlf.std**2).ravel(), 1)
    assert slope == pytest.approx(a, rel=0.03) and intercept == pytest.approx(b, rel=0.05)


def test_noise_level_masks_sparse_bins():
    clean = np.full((40, 40, 3), 0.5)
    clean[:2] = 0.01  # 80 pixels per channel in the lowest bin
    acc = stats.NoiseStats(nlf_bins=8, nlf_min_count=100)
    acc.add(clean, clean + RNG(10).normal(0, 0.01, clean.shape))
    nlf = acc.noise_level()
    assert nlf.counts[0, 0] == 80 and np.isnan(nlf.std[:, 0]).all()
    assert nlf.counts[0, 4] == 1520 and nlf.std[0, 4] == pytest.approx(0.01, rel=0.1)
    assert np.isnan(nlf.std[:, 1]).all()  # empty bins are masked too


# ---------------------------------------------------------------- the accumulator


def test_noise_free_images_do_not_dilute_the_means():
    noise = _blur_wrap(RNG(16).normal(0, 0.03, (64, 64, 3)), KERNEL)
    acc = stats.NoiseStats(max_lag=2, psd_bins=4)
    acc.add(np.zeros((64, 64, 3)), noise)
    acc.add(np.full((64, 64, 3), 0.5), np.full((64, 64, 3), 0.5))  # no noise at all: R undefined
    np.testing.assert_allclose(acc.autocorrelation().values, stats.autocorrelation(noise, 2), rtol=1e-9)
    np.testing.assert_allclose(acc.channel_correlation(), stats.channel_correlation(noise), rtol=1e-9)
    np.testing.assert_allclose(acc.power_spectrum().power, stats.power_spectrum(noise, 4)[1], rtol=1e-9)
    assert acc.images == 2 and np.isnan(acc.per_image().loc[1, "lag1_h"])


def test_noise_stats_accumulates_per_image_means():
    rng = RNG(11)
    white = rng.normal(0, 0.03, (96, 96, 3))
    blurred = _blur_wrap(rng.normal(0, 0.03, (96, 96, 3)), KERNEL)
    acc = stats.NoiseStats(max_lag=3, psd_bins=8)
    acc.add(np.zeros((96, 96, 3)), white, {"kind": "white"})
    acc.add(torch.zeros(1, 3, 96, 96), torch.from_numpy(blurred).permute(2, 0, 1)[None].float(), {"kind": "blurred"})
    expected = (stats.autocorrelation(white, 3) + stats.autocorrelation(blurred, 3)) / 2
    np.testing.assert_allclose(acc.autocorrelation().values, expected, atol=1e-6)
    corr = (stats.channel_correlation(white) + stats.channel_correlation(blurred)) / 2
    np.testing.assert_allclose(acc.channel_correlation(), corr, atol=1e-6)
    psd = (stats.power_spectrum(white, 8)[1] + stats.power_spectrum(blurred, 8)[1]) / 2
    np.testing.assert_allclose(acc.power_spectrum().power, psd, rtol=1e-5)
    rows = acc.per_image()
    assert list(rows["kind"]) == ["white", "blurred"] and list(rows.columns[1:]) == list(stats.SUMMARY_COLUMNS)
    assert rows.loc[1, "lag1_h"] == pytest.approx(expected_lag := _kernel_autocorrelation(KERNEL, 1)[1, 2], abs=0.05)
    assert abs(rows.loc[0, "lag1_h"]) < 0.05 < expected_lag
    for frame in (acc.histogram().frame(), acc.noise_level().frame(), acc.autocorrelation().frame(),
                  acc.power_spectrum().frame()):
        assert set(frame["channel"]) == set(stats.CHANNELS)


def test_summary_table_groups_by_metadata_and_aggregates_like_the_table():
    rng = RNG(12)
    clean = np.full((64, 64, 3), 128, np.uint8)

    def pairs(sigmas):
        return [(clean, np.clip(128 + rng.normal(0, s, clean.shape), 0, 255).round().astype(np.uint8)) for s in sigmas]

    sigmas = [2, 4, 6, 8, 10, 20]
    meta = [{"camera": "A" if i < 3 else "B"} for i in range(6)]
    table = stats.summary_table({"awgn": iter(pairs(sigmas))}, meta=meta, group_by="camera")
    assert list(table["camera"]) == ["A", "B"] and list(table["n_images"]) == [3, 3]
    np.testing.assert_allclose(table["std_255"], [4, 10], rtol=0.05)
    np.testing.assert_allclose(table["std_255_p10"], [2.4, 8.4], rtol=0.05)  # linear interpolation
    assert (table[["lag1_h", "lag1_v", "lag2_h", "corr_rg", "corr_gb", "corr_rb"]].abs() < 0.06).all().all()
    markdown = stats.table_markdown(table)
    assert markdown.splitlines()[2].startswith("| awgn | A | 3 | 4.0 [")
    # metadata per model (a mapping) instead of shared by all models (a sequence)
    per_model = stats.summary_table({"x": pairs([3, 3]), "y": pairs([9])},
                                    meta={"x": [{"iso": 100}, {"iso": 200}], "y": [{"iso": 100}]}, group_by="iso")
    assert list(zip(per_model["model"], per_model["iso"], per_model["n_images"])) == [("x", 100, 1), ("x", 200, 1), ("y", 100, 1)]
    with pytest.raises(ValueError, match="model 'y': more pairs than metadata entries \\(1\\)"):
        stats.summary_table({"y": pairs([9, 9])}, meta={"y": [{"iso": 100}]})


# ---------------------------------------------------------------- METHOD.md section 5 on the dev data

# (std median, p10, p90), (lag-1 h, lag-1 v), lag-2 h, (R-G, G-B, R-B), as printed in METHOD.md
SECTION5 = {
    "SIDD_small": ((16.4, 9.1, 32.3), (0.44, 0.45), 0.07, (0.28, 0.24, 0.53)),
    "PolyU": ((3.8, 2.8, 5.7), (0.70, 0.66), 0.43, (0.68, 0.62, 0.62)),
}


@pytest.mark.shared_data
def test_summary_table_reproduces_method_section5(real_pairs_dev):
    pairs = {name: read_paired_folder(real_pairs_dev / name) for name in SECTION5}
    table = stats.summary_table(pairs).set_index("model")
    for name, (std, lag1, lag2, corr) in SECTION5.items():
        row = table.loc[name]
        # the table rounds std to 0.1 and correlations to 0.01: agree up to that rounding
        np.testing.assert_allclose(row[["std_255", "std_255_p10", "std_255_p90"]].astype(float), std, atol=0.051)
        np.testing.assert_allclose(row[["lag1_h", "lag1_v"]].astype(float), lag1, atol=0.0051)
        assert row["lag2_h"] == pytest.approx(lag2, abs=0.0051)
        np.testing.assert_allclose(row[["corr_rg", "corr_gb", "corr_rb"]].astype(float), corr, atol=0.0051)
    assert table.loc["SIDD_small", "n_images"] == 25 and table.loc["PolyU", "n_images"] == 58


# ---------------------------------------------------------------- AKLD's maps, from pngan.metrics

needs_metrics = pytest.mark.skipif(importlib.util.find_spec("pngan.metrics") is None,
                                   reason="pngan.metrics (local_variance, akld_map) is not in this checkout yet")


def _levels_pair(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean 128 and real noise of +-1..20 levels; fake noise = exactly twice the real noise."""
    rng = RNG(seed)
    k = rng.integers(1, 21, (32, 32, 3)) * rng.choice([-1, 1], (32, 32, 3))
    clean = np.full((32, 32, 3), 128, np.uint8)
    return clean, (128 + k).astype(np.uint8), (128 + 2 * k).astype(np.uint8)


@needs_metrics
def test_local_variance_map_of_constant_energy_noise():
    clean, real, _ = _levels_pair(13)
    constant = (128 + 10 * np.sign(real.astype(int) - 128)).astype(np.uint8)  # |n| = 10/255 everywhere
    var = stats.local_variance_map(clean, constant)
    assert var.shape == (32, 32, 3)
    np.testing.assert_allclose(var, (10 / 255) ** 2, rtol=1e-4)  # weights sum to 1, mean not subtracted


@needs_metrics
def test_kl_map_is_zero_for_identical_and_exact_for_a_constant_ratio():
    clean, real, fake = _levels_pair(14)
    np.testing.assert_allclose(stats.kl_map(clean, real, real), 0.0, atol=1e-7)
    kl = stats.kl_map(clean, real, fake)  # variance ratio r = 4 at every pixel
    assert kl.shape == (32, 32, 3)
    np.testing.assert_allclose(kl, 0.5 * (4 - 1 - np.log(4)), rtol=1e-4)


def test_map_wrappers_pass_kit_tensors_and_return_channels_last(monkeypatch):
    """The adapters alone, with a stand-in pngan.metrics: (1, 3, H, W) float tensors in, H x W x 3 out."""
    import types

    seen = {}

    def local_variance(noise):
        seen["noise"] = noise
        return noise**2

    def akld_map(clean, real, fake):
        seen["akld"] = (clean, real, fake)
        return (fake - clean) - (real - clean)

    monkeypatch.setitem(__import__("sys").modules, "pngan.metrics",
                        types.SimpleNamespace(local_variance=local_variance, akld_map=akld_map))
    clean, real, fake = _levels_pair(15)
    var = stats.local_variance_map(clean, real)
    assert tuple(seen["noise"].shape) == (1, 3, 32, 32) and seen["noise"].dtype == torch.float32
    np.testing.assert_allclose(var, ((real.astype(float) - clean) / 255) ** 2, rtol=1e-4)
    diff = stats.kl_map(clean, real, fake)
    assert all(tuple(t.shape) == (1, 3, 32, 32) for t in seen["akld"])
    np.testing.assert_allclose(diff, (fake.astype(float) - real) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="fake: expected one image, got a batch of 2"):
        stats.kl_map(clean, real, np.stack([fake, fake]))
