"""Camera-pipeline noise models: published random draws, and noise levels fitted on pairs."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from pngan import noise
from pngan.images import DataError, to_image, to_tensor
from pngan.isp import add_camera_noise
from pngan.noise import camera
from pngan.noise.base import quantize
from pngan.noise.camera import CameraFitted, CameraRandom


def _smooth_scenes(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth, slightly tinted scenes with sRGB levels in [0.15, 0.85]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / size
    scenes = []
    for _ in range(count):
        base = sum(np.sin(2 * np.pi * (rng.uniform(0.5, 3) * cols + rng.uniform(0.5, 3) * rows) + rng.uniform(0, 6.3)) for _ in range(3))
        base = (base - base.min()) / (base.max() - base.min())
        image = 0.15 + 0.7 * base[..., None] + rng.uniform(-0.05, 0.05, 3)
        scenes.append(np.round(255 * np.clip(image, 0, 1)).astype(np.uint8))
    return scenes


def _pairs(model: CameraFitted, scenes: list[np.ndarray], levels: list[tuple[float, float]], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    g = torch.Generator().manual_seed(seed)
    return [(c, to_image(quantize(add_camera_noise(to_tensor(c)[None], model.isp(*lv), g)))[0]) for c, lv in zip(scenes, levels)]


def test_registry_builds_both_models():
    assert isinstance(noise.build("camera_random"), CameraRandom)
    assert isinstance(noise.build("camera_fitted", mode="fixed"), CameraFitted)


def test_camera_random_draws_stay_in_published_ranges():
    model = CameraRandom()
    g = torch.Generator().manual_seed(0)
    draws = [model.draw(g) for _ in range(2000)]
    assert all(1.9 <= p.red_gain <= 2.4 and 1.5 <= p.blue_gain <= 1.9 for p in draws)
    assert all(1e-4 <= p.shot <= 0.012 for p in draws)
    residual = np.log([p.read for p in draws]) - (2.18 * np.log([p.shot for p in draws]) + 1.20)
    assert abs(residual.std() - 0.26) < 0.02 and abs(residual.mean()) < 0.03
    assert len({p.rgb2cam for p in draws[:50]}) == 50  # a fresh colour matrix per draw


def test_camera_random_samples_per_image_and_with_jpeg():
    clean = torch.full((2, 3, 32, 32), 0.5)
    model = CameraRandom(jpeg_quality=(60, 100))
    a = model.sample(clean, torch.Generator().manual_seed(1))
    assert a.shape == clean.shape and torch.equal(a, (a * 255).round() / 255)
    assert torch.equal(a, model.sample(clean, torch.Generator().manual_seed(1)))
    assert (a[0] - clean[0]).std() != pytest.approx((a[1] - clean[1]).std().item(), rel=0.01)  # two different cameras
    assert model.params() == {"demosaic": "bilinear", "jpeg_quality": [60, 100], "jpeg_subsampling": "4:2:0"}
    with pytest.raises(ValueError, match="jpeg_quality must be a range"):
        CameraRandom(jpeg_quality=(90, 50))
    with pytest.raises(ValueError, match="demosaic must be one of"):
        CameraRandom(demosaic="vng")


def test_camera_fitted_recovers_shot_and_read_from_a_million_samples():
    truth = (0.002, 4e-5)
    model = CameraFitted(mode="fixed")
    scenes = _smooth_scenes(8, 384)  # 8 x 384^2 = 1.18 M Bayer sites
    pairs = _pairs(model, scenes, [truth] * len(scenes), seed=2)
    fitted = CameraFitted(mode="fixed").fit(pairs)
    assert fitted.n_sites >= 1_000_000  # Bayer sites the fit used
    assert fitted.shot == pytest.approx(truth[0], rel=0.05)
    assert fitted.read == pytest.approx(truth[1], rel=0.05)
    assert fitted.n_images == 8 and fitted.read_slope == 0.0  # one level: no slope to see


def test_camera_fitted_lognormal_recovers_the_spread_of_levels():
    model = CameraFitted()
    scenes = _smooth_scenes(6, 160, seed=1)
    shots = [1e-3, 4e-3] * 3
    levels = [(s, 20 * s**2) for s in shots]  # log read = log 20 + 2 log shot
    fitted = CameraFitted().fit(_pairs(model, scenes, levels, seed=3))
    assert fitted.log_shot_mean == pytest.approx(np.mean(np.log(shots)), abs=0.05)
    assert fitted.log_shot_std == pytest.approx(0.5 * math.log(4), abs=0.05)
    assert fitted.read_slope == pytest.approx(2.0, abs=0.3)
    g = torch.Generator().manual_seed(0)
    drawn = np.log([fitted.draw_levels(g)[0] for _ in range(4000)])
    assert drawn.mean() == pytest.approx(fitted.log_shot_mean, abs=0.05) and drawn.std() == pytest.approx(fitted.log_shot_std, rel=0.05)


def test_camera_fitted_params_rebuild_the_model():
    fitted = CameraFitted(log_shot_mean=math.log(2e-3), log_shot_std=0.5, read_log_mean=math.log(1e-5), read_slope=2.0, read_log_std=0.3)
    rebuilt = CameraFitted(**fitted.params())
    assert rebuilt.params().keys() == fitted.params().keys()
    for key in ("log_shot_mean", "log_shot_std", "read_log_mean", "read_slope", "read_log_std"):
        assert rebuilt.params()[key] == pytest.approx(fitted.params()[key], rel=1e-12)
    clean = torch.full((2, 3, 24, 24), 0.4)
    assert torch.equal(fitted.sample(clean, torch.Generator().manual_seed(5)), rebuilt.sample(clean, torch.Generator().manual_seed(5)))
    fixed = CameraFitted(mode="fixed", shot=1e-3, read=1e-6)
    assert fixed.draw_levels(torch.Generator()) == pytest.approx((1e-3, 1e-6))


def test_camera_fitted_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="camera_fitted: not fitted"):
        CameraFitted().sample(torch.zeros(1, 3, 8, 8))
    white = np.full((64, 64, 3), 255, np.uint8)
    with pytest.raises(DataError, match="no pair has 500 unclipped Bayer sites"):
        CameraFitted().fit([(white, white)])
    with pytest.raises(DataError, match=r"pair 0: clean \(64, 64, 3\) and noisy \(32, 64, 3\) differ in size"):
        CameraFitted().fit([(white, white[:32])])
    with pytest.raises(DataError, match="no training pairs"):
        CameraFitted().fit([])
    with pytest.raises(ValueError, match="mode must be 'lognormal' or 'fixed'"):
        CameraFitted(mode="median")


def test_camera_fitted_sees_only_pairs():
    # the fitted model must not learn the simulated camera from its profiles
    source = inspect.getsource(camera)
    assert "simulate" not in source and "PROFILES" not in source
