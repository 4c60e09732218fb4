"""pngan.metrics against independent NumPy/SciPy references written here (METHOD.md section 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from pngan import metrics
from pngan.noise.base import quantize

# cv2.getGaussianKernel(7, -1) (OpenCV smooth.dispatch.cpp, small_gaussian_tab): what DANet's code uses.
OPENCV_7 = np.array([1.0, 3.5, 7.0, 9.0, 7.0, 3.5, 1.0]) / 32.0


def np_gaussian_2d(size: int, sigma: float) -> np.ndarray:
    y, x = np.mgrid[: size, : size] - (size - 1) / 2
    g = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return g / g.sum()


def np_local_variance(noise: np.ndarray, window: np.ndarray, mode: str = "mirror") -> np.ndarray:
    """max(G * n^2, 1e-10) per (image, channel) plane with scipy's 2-D correlation."""
    out = np.empty_like(noise)
    for idx in np.ndindex(noise.shape[:-2]):
        out[idx] = ndimage.correlate(noise[idx] ** 2, window, mode=mode)
    return np.maximum(out, 1e-10)


def np_akld_map(clean, real, fake, window, mode="mirror"):
    ratio = np.clip(np_local_variance(fake - clean, window, mode) / np_local_variance(real - clean, window, mode), 0.1, 10)
    return 0.5 * (ratio - 1 - np.log(ratio))


def to_8bit(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    clean = to_8bit(torch.rand(2, 3, 20, 24, generator=g, dtype=torch.float64) * 0.6 + 0.2)
    real = to_8bit(clean + 0.05 * torch.randn(clean.shape, generator=g, dtype=torch.float64))
    fake = to_8bit(clean + 0.03 * torch.randn((4, *clean.shape), generator=g, dtype=torch.float64))
    return clean, real, fake


# ---------------------------------------------------------------- window and local variance


def test_gaussian_kernel_is_normalised_sigma_1p4_gaussian():
    kernel = metrics.gaussian_kernel(7, 1.4).numpy()
    assert kernel.shape == (7, 7)
    np.testing.assert_allclose(kernel, np_gaussian_2d(7, 1.4), rtol=1e-12, atol=0)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-15)


def test_nonpositive_sigma_follows_opencv():
    np.testing.assert_allclose(metrics.gaussian_kernel(7, -1).numpy(), np.outer(OPENCV_7, OPENCV_7), rtol=0, atol=1e-15)
    # sizes outside OpenCV's table use sigma = 0.3 ((size - 1) / 2 - 1) + 0.8
    np.testing.assert_allclose(metrics.gaussian_kernel(9, 0).numpy(), np_gaussian_2d(9, 1.7), rtol=1e-12)
    with pytest.raises(ValueError, match="positive odd integer, got 6"):
        metrics.gaussian_taps(6)


@pytest.mark.parametrize("sigma", [1.4, -1.0])
def test_separable_filter_equals_2d_filter(sigma):
    noise = torch.randn(2, 3, 16, 21, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    kernel = metrics.gaussian_kernel(7, sigma).expand(3, 1, 7, 7)
    reference = F.conv2d(F.pad(noise**2, (3, 3, 3, 3), mode="reflect"), kernel, groups=3).clamp(min=1e-10)
    torch.testing.assert_close(metrics.local_variance(noise, sigma=sigma), reference, rtol=1e-12, atol=0)


@pytest.mark.parametrize("sigma", [1.4, -1.0])
def test_local_variance_border_is_mirror_not_edge_repeat(sigma):
    noise = np.random.default_rng(2).normal(size=(1, 3, 12, 15))
    window = np.outer(*(2 * [metrics.gaussian_taps(7, sigma).numpy()]))
    ours = metrics.local_variance(torch.from_numpy(noise), sigma=sigma).numpy()
    np.testing.assert_allclose(ours, np_local_variance(noise, window, "mirror"), rtol=1e-12)
    edge_repeat = np_local_variance(noise, window, "reflect")
    border = np.ones((12, 15), bool)
    border[3:-3, 3:-3] = False
    assert np.abs(ours - edge_repeat)[..., border].max() > 1e-3  # the padding rule is visible
    np.testing.assert_allclose(ours[..., ~border], edge_repeat[..., ~border], rtol=1e-12)  # interior agrees


def test_local_variance_floor_and_small_image():
    assert torch.equal(metrics.local_variance(torch.zeros(1, 1, 5, 5)), torch.full((1, 1, 5, 5), 1e-10))
    with pytest.raises(ValueError, match=r"larger than 3 pixels per side .* \(1, 3, 3, 8\)"):
        metrics.local_variance(torch.zeros(1, 3, 3, 8))


# ---------------------------------------------------------------- AKLD


def test_akld_map_matches_scipy_reference_near_border(images):
    clean, real, fake = images
    ours = metrics.akld_map(clean, real, fake[0]).numpy()
    window = np_gaussian_2d(7, 1.4)
    reference = np_akld_map(clean.numpy(), real.numpy(), fake[0].numpy(), window)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)
    edge_repeat = np_akld_map(clean.numpy(), real.numpy(), fake[0].numpy(), window, "reflect")
    assert np.abs(ours - edge_repeat)[..., :3, :].max() > 1e-4


def test_akld_identical_noise_is_exactly_zero(images):
    clean, real, _ = images
    assert torch.equal(metrics.akld(clean, real, real.clone()), torch.zeros(2, dtype=real.dtype))
    assert torch.equal(metrics.akld(clean.float(), real.float(), real.float()), torch.zeros(2))


@pytest.mark.parametrize("r", [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0])
def test_akld_of_scaled_noise_is_analytic(r):
    g = torch.Generator().manual_seed(3)
    clean = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    noise = (0.02 * torch.randn(clean.shape, generator=g, dtype=torch.float64)).clamp(-0.1, 0.1)
    value = metrics.akld(clean, clean + noise, clean + r**0.5 * noise, quantize_fake=False)
    expected = 0.5 * (r - 1 - np.log(r))
    torch.testing.assert_close(value, torch.full((2,), expected, dtype=torch.float64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("r", "clipped"), [(20.0, 10.0), (0.05, 0.1)])
def test_akld_ratio_is_clipped(r, clipped):
    g = torch.Generator().manual_seed(4)
    clean = torch.full((1, 3, 12, 12), 0.5, dtype=torch.float64)
    noise = (0.02 * torch.randn(clean.shape, generator=g, dtype=torch.float64)).clamp(-0.1, 0.1)
    value = metrics.akld(clean, clean + noise, clean + r**0.5 * noise, quantize_fake=False)
    assert value.item() == pytest.approx(0.5 * (clipped - 1 - np.log(clipped)), rel=1e-9)


def test_akld_of_draws_is_mean_of_single_draws_and_chunk_independent(images):
    clean, real, fake = images
    singles = torch.stack([metrics.akld(clean, real, fake[i]) for i in range(fake.shape[0])])
    expected = singles.mean(dim=0)
    assert (singles.std(dim=0) > 0).all()  # the draws really differ
    per_image = clean[0].numel()
    for budget in (1, per_image, 3 * per_image, 10**9):
        torch.testing.assert_close(metrics.akld(clean, real, fake, max_chunk_elements=budget), expected, rtol=1e-12, atol=0)


def test_akld_quantizes_and_clamps_fake(images):
    clean, real, fake = images
    offset = fake[0] + 0.3 / 255  # rounds back to the same 8-bit levels
    torch.testing.assert_close(metrics.akld(clean, real, offset), metrics.akld(clean, real, fake[0]))
    assert not torch.allclose(metrics.akld(clean, real, offset, quantize_fake=False), metrics.akld(clean, real, fake[0]))
    continuous = fake[0] + 0.002 * torch.randn(fake[0].shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(
        metrics.akld(clean, real, continuous),
        metrics.akld(clean, real, quantize(continuous), quantize_fake=False),
        rtol=0,
        atol=0,
    )
    over = fake[0] * 1.5  # values above 1 are clamped before the noise is taken
    torch.testing.assert_close(
        metrics.akld(clean, real, over, quantize_fake=False),
        metrics.akld(clean, real, over.clamp(0, 1), quantize_fake=False),
    )


def _blurred_noise(shape: tuple[int, ...], width: float, seed: int) -> torch.Tensor:
    """Unit-variance noise, white (width 0) or blurred by a unit-energy Gaussian kernel (correlated)."""
    z = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if width == 0:
        return z
    taps = torch.from_numpy(ndimage.gaussian_filter1d(np.eye(1, 13, 6)[0], width))
    kernel = (taps[:, None] * taps[None, :]) / (taps[:, None] * taps[None, :]).square().sum().sqrt()
    return F.conv2d(F.pad(z, (6, 6, 6, 6), mode="circular"), kernel.expand(shape[1], 1, 13, 13), groups=shape[1])


def test_akld_scores_white_noise_below_an_independent_copy_of_correlated_real_noise():
    """AKLD compares two random local-energy maps, so the fake's own fluctuation counts against it:
    spatially correlated noise fluctuates more in a 7 x 7 window than white noise of the same
    variance, and an independent draw of the real (correlated) noise model scores worse than
    white noise at the right level (docs/METHOD.md §6.8)."""
    shape, s = (2, 3, 128, 128), 10 / 255
    clean = torch.full(shape, 0.5, dtype=torch.float64)
    real = clean + s * _blurred_noise(shape, 0.8, 0)  # lag-1 correlation about 0.67, like PolyU / Nam
    same_model = clean + s * torch.stack([_blurred_noise(shape, 0.8, seed) for seed in (1, 2)])
    white = clean + s * torch.stack([_blurred_noise(shape, 0.0, seed) for seed in (1, 2)])
    same, plain = (float(metrics.akld(clean, real, f, quantize_fake=False).mean()) for f in (same_model, white))
    assert plain < 0.8 * same
    # white real noise: the same-model (white) draw is again the best of the two
    real = clean + s * _blurred_noise(shape, 0.0, 0)
    assert float(metrics.akld(clean, real, white, quantize_fake=False).mean()) < float(metrics.akld(clean, real, same_model, quantize_fake=False).mean())


def test_akld_float32_matches_float64(images):
    clean, real, fake = images
    torch.testing.assert_close(
        metrics.akld(clean.float(), real.float(), fake.float()).double(),
        metrics.akld(clean, real, fake),
        rtol=1e-5,
        atol=1e-7,
    )


# ---------------------------------------------------------------- histogram KLD


def np_kld(clean: np.ndarray, real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """Per-image KL(real || fake) with np.histogram on 64 bins in [-0.1, 0.1] plus two overflow bins."""
    fake = np.round(np.clip(fake, 0, 1) * 255) / 255
    edges = np.concatenate([[-1e3], np.arange(65) * (0.2 / 64) - 0.1, [1e3]])
    out = []
    for c, y, z in zip(clean, real, fake):
        p = np.histogram(y - c, edges)[0] / (y - c).size + 1e-12
        q = np.histogram(z - c, edges)[0] / (z - c).size + 1e-12
        out.append(np.sum(p * np.log(p / q)))
    return np.array(out)


def test_kld_identical_noise_is_zero(images):
    clean, real, _ = images
    assert torch.equal(metrics.kld_histogram(clean, real, real.clone()), torch.zeros(2, dtype=torch.float64))


def test_kld_hand_built_66_bins():
    # 12 noise values (1 image, 3 channels, 2 x 2) around clean = 128/255; bin width 0.2 / 64.
    clean = torch.full((1, 3, 2, 2), 128 / 255, dtype=torch.float64)
    real_levels = torch.tensor([-30, -30, -25, 0, 0, 0, 1, 1, 1, 1, 26, 40], dtype=torch.float64)
    # fake: +0.3 / 255 rounds down, +0.6 / 255 rounds up to the next level, 1.3 is clamped to 1.0
    fake_values = torch.tensor([-25.3, 0.0, 0.3, 0.6, 0.4, 1.0, 1.2, 1.6, 1.7, 25.0, 26.0, 0.0], dtype=torch.float64)
    real = clean + real_levels.view(1, 3, 2, 2) / 255
    fake = clean + fake_values.view(1, 3, 2, 2) / 255
    fake[0, 2, 1, 1] = 1.3
    # bin index i + 1 holds [-0.1 + i w, -0.1 + (i + 1) w); 0 and 65 are the overflow bins.
    # -30/255 < -0.1 -> 0; -25/255 = -0.0980 -> 1; 0 -> 33; 1/255 = 0.0039 -> 34;
    # 25/255 = 0.0980 -> 64; 26/255 = 0.1020 and 40/255 -> 65; 127/255 (clamped 1.3) -> 65.
    p = np.zeros(66)
    p[[0, 1, 33, 34, 65]] = [2, 1, 3, 4, 2]
    q = np.zeros(66)  # fake levels after rounding: -25, 0, 0, 1, 0, 1, 1, 2, 2, 25, 26, clamp
    q[[1, 33, 34, 35, 64, 65]] = [1, 3, 3, 2, 1, 2]
    p, q = p / 12 + 1e-12, q / 12 + 1e-12
    expected = np.sum(p * np.log(p / q))
    assert metrics.kld_histogram(clean, real, fake).item() == pytest.approx(expected, rel=1e-12)
    assert np_kld(clean.numpy(), real.numpy(), fake.numpy())[0] == pytest.approx(expected, rel=1e-12)


def test_kld_bin_edges_unquantized():
    # Noise exactly on the edges -0.1, 0 and 0.1, and just beside them (no 8-bit rounding):
    # inner bins are [a, b), so -0.1 -> 1, 0 -> 33, 0.1 -> overflow 65; -0.0999 -> 1, -0.001 -> 32.
    clean = torch.tensor([0.0, 0.1, 0.5, 0.5], dtype=torch.float64).view(1, 1, 1, 4)
    real = torch.tensor([0.1, 0.0, 0.5, 0.5], dtype=torch.float64).view(1, 1, 1, 4)
    fake = torch.tensor([0.1, 0.1 - 0.0999, 0.499, 0.5], dtype=torch.float64).view(1, 1, 1, 4)
    p, q = np.zeros(66), np.zeros(66)
    p[[65, 1, 33]] = [1, 1, 2]
    q[[65, 1, 32, 33]] = [1, 1, 1, 1]
    p, q = p / 4 + 1e-12, q / 4 + 1e-12
    expected = np.sum(p * np.log(p / q))
    assert metrics.kld_histogram(clean, real, fake, quantize_fake=False).item() == pytest.approx(expected, rel=1e-12)


def test_kld_matches_numpy_histogram_and_averages_draws(images):
    clean, real, fake = images
    fake = fake + 0.4 / 255 * torch.randn(fake.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    singles = np.stack([np_kld(clean.numpy(), real.numpy(), f) for f in fake.numpy()])
    for i in range(fake.shape[0]):
        np.testing.assert_allclose(metrics.kld_histogram(clean, real, fake[i]).numpy(), singles[i], rtol=1e-10)
    np.testing.assert_allclose(
        metrics.kld_histogram(clean, real, fake, max_chunk_elements=1).numpy(), singles.mean(axis=0), rtol=1e-10
    )


# ---------------------------------------------------------------- image metrics


def test_psnr_of_constant_error():
    clean = torch.full((2, 3, 8, 8), 0.5, dtype=torch.float64)
    for e in (0.1, 0.01, 1 / 255):
        torch.testing.assert_close(
            metrics.psnr(clean + e, clean), torch.full((2,), 10 * np.log10(1 / e**2), dtype=torch.float64)
        )
    # clamped to [0, 1] first: 1.2 counts as 1.0, an error of 0.05
    assert metrics.psnr(torch.full((1, 3, 4, 4), 1.2), torch.full((1, 3, 4, 4), 0.95)).item() == pytest.approx(
        10 * np.log10(1 / 0.05**2)
    )


def test_rgb_to_y_known_colours():
    colours = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    y = metrics.rgb_to_y(colours.view(5, 3, 1, 1)).flatten()
    torch.testing.assert_close(y, torch.tensor([235.0, 16.0, 81.481, 144.553, 40.966]))


def np_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Wang et al. (2004) SSIM of 2-D arrays: 11 x 11 Gaussian window (sigma 1.5), valid positions only."""
    w = np_gaussian_2d(11, 1.5)

    def local_mean(a):
        return ndimage.correlate(a, w, mode="constant")[5:-5, 5:-5]

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = local_mean(x), local_mean(y)
    vx, vy, cxy = local_mean(x * x) - mx**2, local_mean(y * y) - my**2, local_mean(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(ssim.mean())


def test_ssim_protocols_match_direct_formula():
    g = torch.Generator().manual_seed(6)
    clean = torch.rand(2, 3, 32, 40, generator=g, dtype=torch.float64)
    clean = torch.from_numpy(ndimage.uniform_filter(clean.numpy(), size=(1, 1, 5, 5)))
    noisy = (clean + 0.08 * torch.randn(clean.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    rgb = [np.mean([np_ssim(a[c], b[c], 1.0) for c in range(3)]) for a, b in zip(noisy.numpy(), clean.numpy())]
    np.testing.assert_allclose(metrics.ssim_rgb(noisy, clean).numpy(), rgb, atol=1e-4)

    def y_np(img):
        return 16 + 65.481 * img[0] + 128.553 * img[1] + 24.966 * img[2]

    luma = [np_ssim(y_np(a), y_np(b), 255.0) for a, b in zip(noisy.numpy(), clean.numpy())]
    np.testing.assert_allclose(metrics.ssim_y(noisy, clean).numpy(), luma, atol=1e-4)
    assert abs(luma[0] - rgb[0]) > 1e-3  # the two protocols really differ
    torch.testing.assert_close(metrics.ssim_rgb(clean, clean), torch.ones(2, dtype=torch.float64))


def test_image_metrics_lists_per_image():
    clean = torch.full((2, 3, 16, 16), 0.5)
    out = metrics.image_metrics(clean, clean + 0.1)
    assert set(out) == {"psnr", "ssim_rgb", "ssim_y"}
    assert out["psnr"] == pytest.approx([20.0, 20.0], abs=1e-4)
    assert all(len(v) == 2 for v in out.values())


# ---------------------------------------------------------------- bad input


def test_shape_mismatch_names_the_shapes():
    a, b = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9)
    with pytest.raises(ValueError, match=r"akld: real_noisy shape \(1, 3, 8, 9\) does not match clean shape \(1, 3, 8, 8\)"):
        metrics.akld(a, b, a)
    with pytest.raises(ValueError, match=r"kld_histogram: fake_noisy shape \(2, 1, 3, 8, 9\) must be clean's shape \(1, 3, 8, 8\)"):
        metrics.kld_histogram(a, a, torch.zeros(2, 1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"akld_map: fake_noisy must be \(B, C, H, W\), got shape \(2, 1, 3, 8, 8\)"):
        metrics.akld_map(a, a, torch.zeros(2, 1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"psnr: shapes \(1, 3, 8, 8\) and \(1, 3, 8, 9\) differ"):
        metrics.psnr(a, b)
    with pytest.raises(ValueError, match=r"ssim_y: expected \(B, 3, H, W\) images, got shape \(3, 8, 8\)"):
        metrics.ssim_y(a[0], a[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_noise_metrics_do_not_synchronise_on_cuda(images):
    clean, real, fake = (t.float().cuda() for t in images)
    expected = metrics.akld(*(t.cpu() for t in (clean, real, fake)))
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = metrics.akld(clean, real, fake)
        kld = metrics.kld_histogram(clean, real, fake)
        psnr = metrics.psnr(fake[0], clean)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(value.cpu(), expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(kld.cpu(), metrics.kld_histogram(*(t.cpu() for t in (clean, real, fake))))
    assert psnr.shape == (2,)
