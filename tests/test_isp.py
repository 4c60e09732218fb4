"""The camera pipeline: exact inverses, demosaicking, raw noise, random draws, JPEG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pngan import isp


def _params(camera: str = "brooks_2", demosaic: str = "bilinear", shot: float = 0.0, read: float = 0.0) -> isp.CameraParams:
    return isp.CameraParams.for_camera(camera, red_gain=2.1, blue_gain=1.7, brightness=1.25, shot=shot, read=read, demosaic=demosaic)


def _smooth_image(height: int = 48, width: int = 40, low: float = 0.25, high: float = 0.75, seed: int = 0) -> torch.Tensor:
    """Moderately saturated colours well inside the gamut of every camera matrix."""
    g = torch.Generator().manual_seed(seed)
    base = low + (high - low) * torch.rand(1, 1, height, width, generator=g)
    tint = 0.08 * (torch.rand(1, 3, height, width, generator=g) - 0.5)
    return (base + tint).clamp(0, 1)


def test_tone_curve_and_gamma_are_exact_inverses():
    x = torch.linspace(0, 1, 1001)
    assert torch.allclose(isp.smoothstep(isp.inverse_smoothstep(x)), x, atol=2e-6)
    assert torch.allclose(isp.inverse_smoothstep(isp.smoothstep(x)), x, atol=2e-4)  # flat ends of the curve
    y = torch.linspace(0.01, 1, 1000)
    assert torch.allclose(isp.gamma_expand(isp.gamma_compress(y)), y, atol=1e-6)
    assert isp.smoothstep(torch.tensor(0.25)).item() == pytest.approx(3 * 0.25**2 - 2 * 0.25**3)
    assert isp.gamma_compress(torch.tensor(0.0)).item() == pytest.approx(1e-8 ** (1 / 2.2))  # the epsilon


@pytest.mark.parametrize("camera", list(isp.XYZ_TO_CAMERA))
def test_rgb_to_camera_keeps_white(camera):
    m = np.asarray(isp.rgb_to_camera_matrix(isp.XYZ_TO_CAMERA[camera]))
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(np.diag(m) > 0)


@pytest.mark.parametrize("camera", ["brooks_1", "brooks_4", "canon_eos_5d_mark_ii", "nikon_d800"])
def test_unprocess_process_round_trip(camera):
    clean = _smooth_image()
    params = _params(camera)
    raw = isp.unprocess(clean, params)
    assert raw.min() > 0 and raw.max() < 1 and raw.mean(dim=1).max() < 0.9  # nothing clipped, no safe-gain fade
    assert (isp.process(raw, params) - clean).abs().max() < 1e-3


def test_safe_inverse_gains_keep_highlights_white():
    params = _params()
    white = torch.ones(1, 3, 4, 4)
    np.testing.assert_allclose(isp.safe_invert_gains(white, params).numpy(), 1.0, rtol=1e-6)
    dark = torch.full((1, 3, 4, 4), 0.3)
    np.testing.assert_allclose(isp.safe_invert_gains(dark, params).numpy(), (dark / isp.apply_gains(torch.ones_like(dark), params)).numpy(), rtol=1e-6)
    # forward gains of the safely inverted white clip back to white
    assert torch.equal(isp.apply_gains(isp.safe_invert_gains(white, params), params).clamp(0, 1), white)


def test_mosaic_is_rggb():
    image = torch.stack([torch.full((4, 4), v) for v in (0.1, 0.5, 0.9)]).unsqueeze(0)
    raw = isp.mosaic(image)[0, 0]
    expected = torch.tensor([[0.1, 0.5, 0.1, 0.5], [0.5, 0.9, 0.5, 0.9]] * 2)
    assert torch.equal(raw, expected)


@pytest.mark.parametrize("method", isp.DEMOSAIC_METHODS)
@pytest.mark.parametrize("size", [(8, 8), (7, 10)])
def test_demosaic_of_constant_colour_is_exact(method, size):
    colour = torch.tensor([0.2, 0.55, 0.8]).view(1, 3, 1, 1)
    image = colour.expand(2, 3, *size).contiguous()
    assert (isp.demosaic(isp.mosaic(image), method) - image).abs().max() < 1e-6


@pytest.mark.parametrize("method", isp.DEMOSAIC_METHODS)
def test_demosaic_reproduces_linear_ramps_and_keeps_sites(method):
    rows, cols = torch.meshgrid(torch.arange(12.0), torch.arange(14.0), indexing="ij")
    image = torch.stack([0.01 * rows + 0.02 * cols, 0.5 - 0.01 * cols, 0.1 + 0.015 * rows]).unsqueeze(0)
    out = isp.demosaic(isp.mosaic(image), method)
    assert (out - image)[..., 2:-2, 2:-2].abs().max() < 1e-5  # interior: linear functions are exact
    raw = torch.rand(1, 1, 9, 11, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(isp.mosaic(isp.demosaic(raw, method)), raw)  # each site keeps its own value


def test_demosaic_rejects_bad_input():
    with pytest.raises(ValueError, match="demosaic method must be one of"):
        isp.demosaic(torch.zeros(1, 1, 8, 8), "nearest")
    with pytest.raises(ValueError, match=r"expects a \(B, 1, H, W\) mosaic"):
        isp.demosaic(torch.zeros(1, 3, 8, 8))


def test_raw_noise_variance_matches_shot_and_read():
    shot, read = 0.01, 2e-4
    g = torch.Generator().manual_seed(0)
    for level in (0.05, 0.4):
        raw = torch.full((1, 1, 1000, 1000), level)
        noise = isp.raw_noise(raw, shot, read, g).double()
        expected = shot * level + read
        assert abs(noise.var().item() / expected - 1) < 0.02
        assert abs(noise.mean().item()) < 4 * math.sqrt(expected / noise.numel())


def test_camera_noise_without_noise_returns_the_input():
    clean = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    out = isp.add_camera_noise(clean, _params(shot=0.0, read=0.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out, clean, atol=1e-6)


def test_camera_noise_is_seeded_and_heteroscedastic():
    clean = torch.cat([torch.full((1, 3, 64, 64), 0.2), torch.full((1, 3, 64, 64), 0.7)])
    params = _params(shot=0.004, read=1e-5)
    a = isp.add_camera_noise(clean, params, torch.Generator().manual_seed(5))
    b = isp.add_camera_noise(clean, params, torch.Generator().manual_seed(5))
    c = isp.add_camera_noise(clean, params, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - clean)[0].std() != pytest.approx((a - clean)[1].std().item(), rel=0.05)


def test_noise_reduction_smooths_noise():
    clean = torch.full((1, 3, 96, 96), 0.5)
    plain = _params(shot=0.004, read=1e-5)
    smoothed = isp.CameraParams(**{**plain.__dict__, "luma_sigma": 1.0, "chroma_sigma": 2.0})
    n_plain = isp.add_camera_noise(clean, plain, torch.Generator().manual_seed(0)) - clean
    n_smooth = isp.add_camera_noise(clean, smoothed, torch.Generator().manual_seed(0)) - clean

    def lag1(n: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([n[..., :-1].flatten(), n[..., 1:].flatten()]))[0, 1])

    assert lag1(n_smooth) > lag1(n_plain) + 0.2
    assert n_smooth.std() < n_plain.std()


def test_random_draws_follow_the_published_distributions():
    g = torch.Generator().manual_seed(0)
    draws = [isp.random_params(g) for _ in range(3000)]
    red = np.array([p.red_gain for p in draws])
    blue = np.array([p.blue_gain for p in draws])
    log_shot = np.log([p.shot for p in draws])
    residual = np.log([p.read for p in draws]) - (2.18 * log_shot + 1.20)
    assert 1.9 <= red.min() and red.max() <= 2.4 and 1.5 <= blue.min() and blue.max() <= 1.9
    assert math.log(1e-4) <= log_shot.min() and log_shot.max() <= math.log(0.012)
    assert abs(log_shot.mean() - 0.5 * (math.log(1e-4) + math.log(0.012))) < 0.1  # log-uniform
    assert abs(residual.mean()) < 0.02 and abs(residual.std() - 0.26) < 0.015
    brightness = 1 / np.array([p.brightness for p in draws])
    assert abs(brightness.mean() - 0.8) < 0.01 and abs(brightness.std() - 0.1) < 0.01


def test_jpeg_helpers():
    rng = np.random.default_rng(0)
    clean = rng.integers(60, 200, (32, 48, 3), dtype=np.uint8)
    coded = isp.jpeg_roundtrip(clean, 75)
    assert coded.shape == clean.shape and coded.dtype == np.uint8 and not np.array_equal(coded, clean)
    assert np.array_equal(isp.jpeg_noise(clean, clean, 75), clean)  # no noise in, no noise out
    with pytest.raises(ValueError, match=r"JPEG quality must be in \[1, 100\], got 0"):
        isp.jpeg_roundtrip(clean, 0)
    with pytest.raises(ValueError, match="expects an H x W x 3 uint8 array"):
        isp.jpeg_roundtrip(clean.astype(np.float32), 90)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown camera leica; known: brooks_1"):
        isp.CameraParams.for_camera("leica", red_gain=2, blue_gain=2)
    with pytest.raises(ValueError, match="camera weights must be non-negative"):
        isp.CameraParams.for_camera({"brooks_1": -1.0}, red_gain=2, blue_gain=2)
    with pytest.raises(ValueError, match="noise levels must be >= 0"):
        _params(shot=-1.0)
    with pytest.raises(ValueError, match="demosaic must be one of"):
        _params(demosaic="ahd")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_camera_noise_runs_on_cuda():
    clean = _smooth_image().cuda()
    params = _params(demosaic="malvar", shot=0.004, read=1e-5)
    noisy = isp.add_camera_noise(clean, params, torch.Generator(device="cuda").manual_seed(0))
    assert noisy.device.type == "cuda" and noisy.dtype == torch.float32
    assert 0.01 < (noisy - clean).std().item() < 0.2
