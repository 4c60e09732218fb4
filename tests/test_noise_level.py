"""Noise level functions (pngan.noise.level): the level type and its files, the fit on pairs,
the blind estimate from noisy images alone and its calibration; and the content-leak statistic
(pngan.stats.content_leak)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from pngan.errors import DataError
from pngan.noise.gaussian import gaussian_kernel
from pngan.noise.level import NoiseLevel, calibrate_estimator, estimate_level, fit_level, level_map, uniform_knots
from pngan.stats import content_leak

KNOTS = (0.0, 0.25, 1.0)
TABLE = ((0.02, 0.04, 0.01), (0.0, 0.1, 0.1), (0.05, 0.05, 0.05))


def _level() -> NoiseLevel:
    return NoiseLevel.from_table(KNOTS, [list(row) for row in TABLE])


def _smooth_images(count: int, size: int = 256, low: float = 0.04, high: float = 0.96, cells: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour images (bicubic upsampling of a cells x cells grid), float in [low, high]
    rounded to 8-bit levels."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = ndimage.zoom(rng.random((cells, cells, 3)), (size / cells, size / cells, 1), order=3)
        image = (image - image.min()) / (image.max() - image.min())
        images.append(np.round((low + (high - low) * image) * 255) / 255)
    return images


def _noisy(clean: np.ndarray, level: NoiseLevel, rng: np.random.Generator, kernel_sigma: float = 0.0) -> np.ndarray:
    """uint8 round(clip(clean + level(clean) * z)), z unit white noise, or blurred by a unit-energy
    Gaussian kernel (spatially correlated, like demosaicked sRGB noise)."""
    std = np.moveaxis(level.map(torch.from_numpy(np.moveaxis(clean, -1, 0)))[...].numpy(), 0, -1)
    z = rng.standard_normal(clean.shape)
    if kernel_sigma:
        kernel = gaussian_kernel(kernel_sigma)
        z = ndimage.convolve1d(ndimage.convolve1d(z, kernel, axis=0, mode="wrap"), kernel, axis=1, mode="wrap")
    return np.clip(np.round((clean + std * z) * 255), 0, 255).astype(np.uint8)


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255).astype(np.uint8)


# ---- the level type ----------------------------------------------------------------------------


def test_a_level_round_trips_through_plain_json():
    level = _level()
    entry = json.loads(json.dumps(level.to_dict()))
    assert entry == {"knots": list(KNOTS), "sigma": [list(row) for row in TABLE], "axis": "channel"}
    assert NoiseLevel.from_dict(entry) == level
    del entry["axis"]  # files written before levels of luminance: the channel's own intensity
    assert NoiseLevel.from_dict(entry) == level
    lum = NoiseLevel(KNOTS, TABLE, "luminance")
    assert NoiseLevel.from_dict(json.loads(json.dumps(lum.to_dict()))) == lum != level
    with pytest.raises(DataError, match="axis must be one of channel, luminance"):
        NoiseLevel.from_dict({**lum.to_dict(), "axis": "hue"})
    assert level.table().dtype == torch.float32 and torch.equal(level.table(), torch.tensor(TABLE, dtype=torch.float32))
    assert NoiseLevel.from_dict(NoiseLevel.constant([0.01, 0.02, 0.03], knots=5).to_dict()).sigma[2] == (0.03,) * 5


def _entry(**change):
    entry = {"knots": list(KNOTS), "sigma": [list(row) for row in TABLE]}
    entry.update(change)
    return entry


@pytest.mark.parametrize("entry, message", [
    (_entry(sigma=[[0.1, 0.1, 0.1]] * 2), "3 rows"),
    (_entry(sigma=[[0.1, 0.1]] * 3), "one std per knot"),
    (_entry(knots=[0.0, 1.0]), "one std per knot"),
    (_entry(sigma=[[0.1, float("nan"), 0.1]] * 3), "finite"),
    (_entry(sigma=[[0.1, float("inf"), 0.1]] * 3), "finite"),
    (_entry(sigma=[[0.1, -0.01, 0.1]] * 3), ">= 0"),
    (_entry(knots=[0.0, 0.6, 0.5, 1.0], sigma=[[0.1] * 4] * 3), "strictly increasing"),
    (_entry(knots=[0.0, 0.0, 1.0]), "strictly increasing"),
    (_entry(knots=[0.1, 0.5, 1.0]), "from 0.0 to 1.0"),
    (_entry(knots=[0.0, 0.5, 2.0]), "from 0.0 to 1.0"),
    (_entry(knots=["0", 0.5, 1.0]), "numbers only"),
    (_entry(knots="0 0.5 1"), "list of numbers"),
    (_entry(sigma=[[0.1, "0.1", 0.1]] * 3), "numbers only"),
    (_entry(sigma=[[0.1, True, 0.1]] * 3), "numbers only"),
    (_entry(sigma="0.1"), "3 rows"),
    (_entry(knots=[0.0]), "2 to"),
    ({"knots": list(KNOTS)}, "missing sigma"),
    ({**_entry(), "code": "os.system"}, "unknown code"),
    ([0.0, 1.0], "expected a mapping"),
])
def test_from_dict_refuses_bad_entries_naming_where(entry, message):
    with pytest.raises(DataError, match=r"generator\.pt: fallback: .*" + message):
        NoiseLevel.from_dict(entry, where="generator.pt: fallback")


def test_the_map_interpolates_exactly_at_knots_and_linearly_between():
    level = _level()
    x = torch.tensor([0.0, 0.25, 1.0, 0.125, 0.625, 0.4, -0.5, 1.5], dtype=torch.float64)
    clean = x.view(1, 1, 1, -1).expand(2, 3, 1, -1)
    got = level.map(clean)
    assert got.dtype == torch.float64 and got.shape == clean.shape

    def expected(row):
        a, b, c = row
        return [a, b, c, (a + b) / 2, (b + c) / 2, b + (c - b) * 0.15 / 0.75, a, c]  # outside [0, 1]: the end knots

    for channel, row in enumerate(TABLE):
        assert got[1, channel, 0].tolist() == pytest.approx(expected(row), abs=1e-15)
        assert got[1, channel, 0, :3].tolist() == list(row)  # exactly at the knots
    assert torch.equal(level.map(clean[0]), got[0])  # one image (3, H, W) too
    assert level.map(clean.float()).dtype == torch.float32


def test_a_constant_level_gives_a_constant_map_and_its_own_rms():
    clean = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0))
    flat = NoiseLevel.constant(0.03)
    assert flat.knots == (0.0, 1.0) and torch.equal(flat.map(clean), torch.full_like(clean, 0.03))
    per_channel = NoiseLevel.constant([0.01, 0.02, 0.04], knots=5)
    assert per_channel.knots == uniform_knots(5)
    assert torch.allclose(per_channel.map(clean), torch.tensor([0.01, 0.02, 0.04]).view(1, 3, 1, 1).expand_as(clean))
    assert per_channel.mean_std() == pytest.approx(math.sqrt((0.01**2 + 0.02**2 + 0.04**2) / 3))
    assert per_channel.mean_std(clean) == pytest.approx(per_channel.mean_std())
    # a line a + (b - a) x over uniform x: RMS sqrt((a^2 + ab + b^2) / 3)
    line = NoiseLevel.from_table((0.0, 1.0), [[0.01, 0.05]] * 3)
    assert line.mean_std() == pytest.approx(math.sqrt((0.01**2 + 0.01 * 0.05 + 0.05**2) / 3))
    assert line.mean_std(np.full((4, 4, 3), 255, np.uint8)) == pytest.approx(0.05)  # H x W x 3 uint8 image
    with pytest.raises(DataError):
        NoiseLevel.constant(-0.1)


def test_scaled_multiplies_per_channel():
    level = _level()
    assert level.scaled(2.0).sigma == tuple(tuple(2 * v for v in row) for row in TABLE)
    assert level.scaled([1.0, 0.0, 3.0]).sigma == (TABLE[0], (0.0, 0.0, 0.0), tuple(3 * v for v in TABLE[2]))
    with pytest.raises(DataError):
        level.scaled([1.0, 2.0])


def test_level_map_batched_equals_the_per_sample_map():
    levels = [_level(), _level().scaled(0.5), NoiseLevel.from_table(KNOTS, [[0.1, 0.0, 0.2]] * 3)]
    clean = torch.rand(3, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    knots = torch.tensor(KNOTS)
    batched = level_map(torch.stack([lv.table() for lv in levels]), knots, clean)
    for i, lv in enumerate(levels):
        assert torch.allclose(batched[i], lv.map(clean[i : i + 1])[0], atol=1e-7)
    assert torch.allclose(level_map(levels[0].table(), knots, clean), levels[0].map(clean), atol=1e-7)  # one (3, K) table for all
    with pytest.raises(ValueError, match="2 tables for a batch of 3"):
        level_map(torch.stack([lv.table() for lv in levels[:2]]), knots, clean)


# ---- fitting on pairs ----------------------------------------------------------------------------

NINE = uniform_knots(9)
# A heteroscedastic level, std = sqrt(a x + b) per channel, in [0, 1] units: 3-8 /255 in the darks
TRUE_LEVEL = NoiseLevel.from_table(NINE, [[math.sqrt(a * x + b) for x in NINE] for a, b in ((4e-4, 1.5e-4), (2e-4, 4e-4), (8e-4, 2e-4))])


def test_fit_level_recovers_a_known_level_through_rounding_and_clipping():
    rng = np.random.default_rng(2)
    cleans = _smooth_images(4, low=0.0, high=1.0)
    pairs = [(_uint8(c), _noisy(c, TRUE_LEVEL, rng)) for c in cleans]
    clipped = np.mean([((n == 0) | (n == 255)).mean() for _, n in pairs])
    assert clipped > 0.001  # the dark and bright ends do clip
    fitted = np.array(fit_level(pairs, knots=9).sigma)
    truth = np.array(TRUE_LEVEL.sigma)
    assert fitted[:, 2:7] == pytest.approx(truth[:, 2:7], rel=0.05)  # mid-range knots
    assert fitted[:, 1] == pytest.approx(truth[:, 1], rel=0.05)  # the dark knot, where clipping cuts the noise off
    # control: the naive std of the noise at the darkest clean levels (1-5), clipped at 0, reads low
    clean = np.concatenate([p[0][..., 0].ravel() for p in pairs])
    noise = np.concatenate([(p[1][..., 0].astype(float) - p[0][..., 0]).ravel() for p in pairs]) / 255
    near = (clean >= 1) & (clean <= 5)
    naive = math.sqrt(np.mean(noise[near] ** 2) - 1 / 12 / 255**2)
    assert near.sum() > 100 and naive < 0.9 * truth[0, 0]


def test_fit_level_interpolates_knots_without_pixels():
    rng = np.random.default_rng(3)
    level = NoiseLevel.constant([0.02, 0.03, 0.04], knots=9)
    cleans = []
    for c in _smooth_images(2, low=0.1, high=0.95):
        c = c.copy()
        c[(c > 0.5) & (c < 0.875)] = 0.45  # no clean value strictly between knots 0.5 and 0.875
        cleans.append(c)
    pairs = [(_uint8(c), _noisy(c, level, rng)) for c in cleans]
    fitted = np.array(fit_level(pairs, knots=9).sigma)
    assert np.all(np.isfinite(fitted)) and np.all(fitted > 0)
    # knots 0.625 and 0.75 lie on the line between their fitted neighbours 0.5 and 0.875
    assert fitted[:, 5] == pytest.approx(fitted[:, 4] + (fitted[:, 7] - fitted[:, 4]) / 3, rel=1e-9)
    assert fitted[:, 6] == pytest.approx(fitted[:, 4] + 2 * (fitted[:, 7] - fitted[:, 4]) / 3, rel=1e-9)
    assert fitted[:, 3:8] == pytest.approx(np.array(level.sigma)[:, 3:8], rel=0.05)


# A level of luminance (the same numbers as TRUE_LEVEL, read at each pixel's luminance)
LUMA_LEVEL = NoiseLevel(TRUE_LEVEL.knots, TRUE_LEVEL.sigma, "luminance")


def test_a_luminance_level_reads_every_channel_at_the_pixels_luminance():
    level, by_channel = NoiseLevel(KNOTS, TABLE, "luminance"), _level()
    clean = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    luma = (clean * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(level.map(clean), by_channel.map(luma))
    assert not torch.allclose(level.map(clean), by_channel.map(clean))
    grey = clean[:, :1].expand(-1, 3, -1, -1)  # grey pixels: luminance is the value, the axes agree
    assert torch.allclose(level.map(grey), by_channel.map(grey), atol=1e-6)
    table = torch.tensor(TABLE).expand(2, -1, -1)
    assert torch.equal(level_map(table, torch.tensor(KNOTS), clean, "luminance"), level.map(clean))
    assert level.scaled(2.0).axis == "luminance" and level.mean_std() == by_channel.mean_std()


def _map_error(level: NoiseLevel, truth: NoiseLevel, cleans: list[np.ndarray]) -> float:
    """RMS relative error of `level`'s per-pixel std map against `truth`'s over the images."""
    maps = [(level.map(torch.from_numpy(np.moveaxis(c, -1, 0))), truth.map(torch.from_numpy(np.moveaxis(c, -1, 0)))) for c in cleans]
    return float(torch.cat([(a / b - 1).flatten() for a, b in maps]).square().mean().sqrt())


def test_fit_level_of_luminance_recovers_noise_that_follows_the_luminance():
    rng = np.random.default_rng(5)
    cleans = _smooth_images(4, low=0.0, high=1.0)
    pairs = [(_uint8(c), _noisy(c, LUMA_LEVEL, rng)) for c in cleans]
    fitted = fit_level(pairs, knots=9, axis="luminance")
    assert fitted.axis == "luminance"
    assert np.array(fitted.sigma)[:, 3:6] == pytest.approx(np.array(LUMA_LEVEL.sigma)[:, 3:6], rel=0.05)
    assert _map_error(fitted, LUMA_LEVEL, cleans) < 0.03
    # control: against each channel's own value, the same noise is misread pixel by pixel
    assert _map_error(fit_level(pairs, knots=9), LUMA_LEVEL, cleans) > 3 * _map_error(fitted, LUMA_LEVEL, cleans)


# ---- blind estimate ------------------------------------------------------------------------------


def _references(level: NoiseLevel, kernel_sigma: float = 0.0, count: int = 3, seed: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    cleans = _smooth_images(count, seed=seed, cells=3)
    return cleans, [_noisy(c, level, rng, kernel_sigma) for c in cleans]


# Tolerances. Statistical error: thousands of 16 x 16 blocks per estimate, about 1 %. Bias: the
# smooth test images still curve inside a block (about +1 % at 10/255) and the correlation
# model is exact for this noise. 5 % for a constant level leaves room for both; 10 % per knot for
# the heteroscedastic level, whose knots each rest on a fraction of the blocks and whose variance
# curves between knots (the estimator fits a variance linear between knots).


@pytest.mark.parametrize("kernel_sigma", [0.0, 0.6])  # white, and correlated like SIDD (lag-1 0.45)
def test_estimate_level_recovers_a_constant_level_from_noisy_images_alone(kernel_sigma):
    level = NoiseLevel.constant([8 / 255, 10 / 255, 12 / 255], knots=9)
    cleans, noisy = _references(level, kernel_sigma)
    estimate = estimate_level(noisy)
    assert np.array(estimate.sigma)[:, 1:8] == pytest.approx(np.array(level.sigma)[:, 1:8], rel=0.05)
    assert estimate.mean_std(cleans[0]) == pytest.approx(level.mean_std(), rel=0.05)
    if kernel_sigma:  # control: assuming white noise underestimates correlated noise (here by 3 %)
        assert estimate_level(noisy, correlated=False).mean_std(cleans[0]) < 0.985 * estimate.mean_std(cleans[0])


def test_estimate_level_recovers_a_heteroscedastic_level():
    cleans, noisy = _references(TRUE_LEVEL, kernel_sigma=0.6)
    estimate = np.array(estimate_level(noisy).sigma)
    assert estimate[:, 2:7] == pytest.approx(np.array(TRUE_LEVEL.sigma)[:, 2:7], rel=0.10)
    assert estimate[2, 6] > 1.1 * estimate[1, 6]  # the channels' levels are told apart (B 1.2 x G at 0.75)


def test_estimate_level_of_luminance_reads_blocks_at_their_luminance():
    cleans, noisy = _references(LUMA_LEVEL, kernel_sigma=0.6)
    estimate = estimate_level(noisy, axis="luminance")
    assert estimate.axis == "luminance"
    assert _map_error(estimate, LUMA_LEVEL, cleans) < 0.08
    assert _map_error(estimate_level(noisy), LUMA_LEVEL, cleans) > 1.5 * _map_error(estimate, LUMA_LEVEL, cleans)


def test_one_image_suffices_and_a_single_array_is_accepted():
    level = NoiseLevel.constant(10 / 255, knots=9)
    cleans, noisy = _references(level, count=1)
    assert estimate_level(noisy[0]) == estimate_level(noisy)
    assert estimate_level(noisy[0], knots=5).knots == uniform_knots(5)
    assert estimate_level(noisy).mean_std(cleans[0]) == pytest.approx(level.mean_std(), rel=0.05)


def test_a_textured_reference_does_not_drag_the_pooled_estimate_up():
    level = NoiseLevel.constant(8 / 255, knots=9)
    cleans, noisy = _references(level, count=3)
    rng = np.random.default_rng(10)
    texture = ndimage.gaussian_filter(rng.standard_normal((256, 256, 3)), (2, 2, 0))
    busy = np.clip(0.5 + 0.5 * texture / texture.std() * 0.15, 0, 1)  # structure everywhere, 8x the noise
    busy_noisy = _noisy(np.round(busy * 255) / 255, level, rng)
    assert estimate_level([busy_noisy]).mean_std(cleans[0]) > 1.5 * level.mean_std()  # alone it misleads
    for pool in ("images", "blocks"):
        pooled = estimate_level([*noisy, busy_noisy], pool=pool)
        assert pooled.mean_std(cleans[0]) == pytest.approx(level.mean_std(), rel=0.05)


def test_calibration_scales_the_estimate_and_is_fitted_on_pairs():
    level = NoiseLevel.constant(10 / 255, knots=9)
    cleans, noisy = _references(level, kernel_sigma=1.0, count=4)
    plain = estimate_level(noisy[2:], correlated=False)
    assert estimate_level(noisy[2:], 9, None, correlated=False) == plain
    assert estimate_level(noisy[2:], calibration=2.0, correlated=False) == plain.scaled(2.0)
    assert estimate_level(noisy[2:], calibration=[1.5, 1.0, 0.5], correlated=False) == plain.scaled([1.5, 1.0, 0.5])
    # the white-noise estimator misses correlated noise; calibrated on two other pairs it does not
    factors = calibrate_estimator([(_uint8(c), n) for c, n in zip(cleans[:2], noisy[:2])], correlated=False)
    assert isinstance(factors, list) and len(factors) == 3 and all(type(f) is float for f in factors)
    assert min(factors) > 1.1
    assert plain.mean_std(cleans[2]) < 0.9 * level.mean_std()
    calibrated = estimate_level(noisy[2:], calibration=factors, correlated=False)
    assert calibrated.mean_std(cleans[2]) == pytest.approx(level.mean_std(), rel=0.05)
    tiny = (np.full((8, 8, 3), 128, np.uint8), _noisy(np.full((8, 8, 3), 128 / 255), level, np.random.default_rng(0)))
    assert calibrate_estimator([tiny, (_uint8(cleans[0]), noisy[0])], correlated=False) == calibrate_estimator([(_uint8(cleans[0]), noisy[0])], correlated=False)
    with pytest.raises(ValueError, match="no pair gave a blind estimate"):
        calibrate_estimator([tiny])  # smaller than a block: skipped, and then nothing is left
    for bad in ([1.0, 2.0], "2", [1.0, float("nan"), 1.0], 0.0, {"r": 1.0}):
        with pytest.raises(DataError, match="calibration"):
            estimate_level(noisy[2:], calibration=bad)


@pytest.mark.parametrize("noisy, message", [
    ([], "no noisy images"),
    ([np.zeros((32, 32, 3), np.float32)], "image 0 must be a uint8"),
    ([np.zeros((32, 32), np.uint8)], "image 0 must be a uint8 H x W x 3"),
    ("noisy.png", "expected noisy uint8"),
    ([np.zeros((8, 8, 3), np.uint8)], "smaller than one 16 x 16 block"),
])
def test_estimate_level_refuses_bad_images(noisy, message):
    with pytest.raises(DataError, match=message):
        estimate_level(noisy)


@pytest.mark.parametrize("options", [{"block": 2}, {"keep": 1.5}, {"surface": 3}, {"iterations": -1}, {"max_clipped": 1.0}, {"pool": "mean"}])
def test_estimate_level_refuses_bad_options(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        estimate_level([np.zeros((32, 32, 3), np.uint8)], **options)


# ---- content leak --------------------------------------------------------------------------------


def _texture(size: int = 384, seed: int = 5) -> np.ndarray:
    """A grey-ish textured image in [0.15, 0.85]: random structure at scales of 2 to 16 pixels."""
    rng = np.random.default_rng(seed)
    field = sum(ndimage.gaussian_filter(rng.standard_normal((size, size)), s) * s for s in (2, 4, 8, 16))
    field = (field - field.min()) / (field.max() - field.min())
    return np.repeat((0.15 + 0.7 * field)[..., None], 3, axis=2)


def _gradient_magnitude(image: np.ndarray) -> np.ndarray:
    luma = image.mean(axis=2)
    return np.hypot(ndimage.sobel(luma, axis=0), ndimage.sobel(luma, axis=1))[..., None]


def test_white_noise_does_not_leak_content():
    clean = _texture()
    rng = np.random.default_rng(6)
    noisy = np.clip(clean + 0.04 * rng.standard_normal(clean.shape), 0, 1)
    assert abs(content_leak(clean, noisy)) < 0.05
    assert abs(content_leak(_uint8(clean), _uint8(noisy))) < 0.05  # 8-bit inputs


def test_noise_that_follows_the_gradient_leaks_content():
    clean = _texture()
    rng = np.random.default_rng(7)
    gradient = _gradient_magnitude(clean)
    noisy = clean + 0.1 * gradient * rng.standard_normal(clean.shape)
    assert content_leak(clean, noisy) > 0.9
    # and a smoothing generator: the noise it makes is (blur - identity) of the image
    blurred = ndimage.gaussian_filter(clean, (1.5, 1.5, 0)) + 0.01 * rng.standard_normal(clean.shape)
    assert content_leak(clean, blurred) > 0.5


def test_signal_dependent_noise_leaks_where_intensity_goes_with_gradient():
    """Texture whose contrast grows with brightness: noise whose std grows with intensity
    follows the gradient too (real SIDD noise does, r about 0.13); white noise does not."""
    size = 384
    ramp = np.linspace(0.1, 0.9, size)[None, :, None]
    clean = np.broadcast_to(ramp, (size, size, 3)) * (0.8 + 0.4 * (_texture(size) - 0.5))
    rng = np.random.default_rng(8)
    hetero = clean + np.sqrt(0.002 * clean) * rng.standard_normal(clean.shape)
    white = clean + 0.03 * rng.standard_normal(clean.shape)
    assert content_leak(clean, hetero) > 0.3
    assert abs(content_leak(clean, white)) < 0.05


@pytest.mark.parametrize("clean, noisy, message", [
    (np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), "differ in shape"),
    (np.zeros((8, 8)), np.zeros((8, 8)), "H x W x 3"),
    (np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3)), "one H x W x 3"),
    (np.zeros((8, 8, 3), np.int32), np.zeros((8, 8, 3), np.int32), "uint8 .* or float"),
    (np.zeros((8, 8, 3)), np.full((8, 8, 3), 200.0), r"must be in \[0, 1\]"),
    (np.zeros((8, 8, 3)), np.full((8, 8, 3), np.nan), "non-finite"),
    (torch.zeros(8, 8, 3), np.zeros((8, 8, 3)), "numpy array"),
])
def test_content_leak_validates_its_inputs(clean, noisy, message):
    with pytest.raises(ValueError, match=message):
        content_leak(clean, noisy)


def test_content_leak_validates_its_window_and_is_nan_without_edges():
    image = _texture(64)
    for window in (0, -1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="window"):
            content_leak(image, image, window=window)
    flat = np.full((32, 32, 3), 0.5)
    assert math.isnan(content_leak(flat, flat + 0.01 * np.random.default_rng(0).standard_normal(flat.shape)))
