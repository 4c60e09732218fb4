"""The embedded simulated camera: sources, profiles calibrated to real noise, determinism."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from pngan import stats
from pngan.data import simulate as S
from pngan.images import read_image, to_image, to_tensor
from pngan.metrics import psnr

CORRELATION_TOLERANCE = 0.04  # measured on 4 crops: allowed distance outside the real 10-90% range
STD_TOLERANCE = 0.10  # relative
PSNR_TOLERANCE_DB = 1.0


@pytest.fixture(scope="module")
def sources() -> dict[str, np.ndarray]:
    return {name: image for name, _, image in S.embedded_sources()}


@pytest.fixture(scope="module")
def crops(sources) -> list[np.ndarray]:
    """Four 160 x 160 crops of different content (skin, food, machine, portrait)."""
    return [
        sources["astronaut"][40:200, 200:360],
        sources["coffee"][150:310, 100:260],
        sources["motorcycle_left"][200:360, 300:460],
        sources["grace_hopper"][100:260, 150:310],
    ]


def test_embedded_sources_load_offline():
    found = S.embedded_sources()
    names = [name for name, _, _ in found]
    assert len(names) == len(set(names)) >= 10
    assert {"astronaut", "coffee", "motorcycle_left", "motorcycle_right", "grace_hopper"} <= set(names)
    scenes = {name: scene for name, scene, _ in found}
    assert scenes["motorcycle_left"] == scenes["motorcycle_right"] == "motorcycle"
    assert len(set(scenes.values())) == len(names) - 1
    for name, _, image in found:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= 256 and image.std() > 10, name


def noise_row(clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """What REAL_NOISE_STATISTICS records for one uint8 pair, measured as its comment says."""
    row = stats.image_summary(clean, noisy)[0]
    (_, noise), = stats.iter_noise(clean, noisy)
    row["lag2_v"] = float(stats.autocorrelation(noise, max_lag=2)[:, 4, 2].mean())  # R[c, L + dy, L + dx], L = 2
    row["psnr"] = float(psnr(to_tensor(noisy)[None], to_tensor(clean)[None])[0])
    return row


def test_noise_row_on_known_noise():
    rng = np.random.default_rng(0)
    clean = np.full((256, 256, 3), 128, np.uint8)
    white = rng.normal(0, 8, (256, 257, 1))
    # n = a + shift(a): lag-1 correlation 1/2, lag-2 zero; identical channels: correlation 1
    noisy = np.clip(128 + np.round(np.repeat(white[:, :-1] + white[:, 1:], 3, axis=2)), 0, 255).astype(np.uint8)
    row = noise_row(clean, noisy)
    assert row["lag1_h"] == pytest.approx(0.5, abs=0.02) and abs(row["lag2_h"]) < 0.02
    assert abs(row["lag1_v"]) < 0.02 and abs(row["lag2_v"]) < 0.02
    assert row["corr_rg"] == pytest.approx(1.0, abs=1e-9) and row["corr_rb"] == pytest.approx(1.0, abs=1e-9)
    assert row["std_255"] == pytest.approx(8 * np.sqrt(2), rel=0.03)
    # the same noise along columns: the vertical lags take the values
    row = noise_row(clean, np.ascontiguousarray(noisy.transpose(1, 0, 2)))
    assert row["lag1_v"] == pytest.approx(0.5, abs=0.02) and abs(row["lag1_h"]) < 0.02
    independent = np.clip(128 + np.round(rng.normal(0, 5, clean.shape)), 0, 255).astype(np.uint8)
    row = noise_row(clean, independent)
    assert max(abs(row[k]) for k in ("lag1_h", "lag1_v", "lag2_h", "lag2_v", "corr_rg", "corr_gb", "corr_rb")) < 0.02
    assert row["psnr"] == pytest.approx(10 * np.log10(255**2 / 25), abs=0.2)


def test_simulate_is_deterministic_per_seed(crops):
    clean = crops[0]
    a = S.simulate(clean, "phone_iso800", seed=7)
    assert a.dtype == np.uint8 and a.shape == clean.shape
    assert np.array_equal(a, S.simulate(clean, "phone_iso800", seed=7))
    assert not np.array_equal(a, S.simulate(clean, "phone_iso800", seed=8))
    jpeg = S.simulate(clean, "dslr_jpeg_iso3200", seed=7)
    assert np.array_equal(jpeg, S.simulate(clean, "dslr_jpeg_iso3200", seed=7))
    assert not np.array_equal(jpeg, S.simulate(clean, "dslr_jpeg_iso3200", seed=8))


def test_simulator_noise_model_is_the_simulator(crops):
    clean = crops[1]
    model = S.SimulatorNoise("dslr_jpeg_iso6400")
    batch = model.sample(to_tensor(clean)[None], torch.Generator().manual_seed(3))
    assert np.array_equal(to_image(batch[0]), S.simulate(clean, "dslr_jpeg_iso6400", seed=3))
    assert model.params()["jpeg_quality"] == 75


def test_unknown_profile_is_refused(crops):
    with pytest.raises(ValueError, match="unknown camera profile 'phone_iso99'; known: phone_iso3200"):
        S.simulate(crops[0], "phone_iso99", seed=0)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        S.simulate(crops[0].astype(np.float32), "phone_iso800", seed=0)


def _median_statistics(crops: list[np.ndarray], profile: str) -> dict[str, float]:
    rows = [noise_row(clean, S.simulate(clean, profile, seed=i)) for i, clean in enumerate(crops)]
    return {key: float(np.median([r[key] for r in rows])) for key in rows[0]}


@pytest.mark.parametrize("profile", list(S.PROFILES))
def test_profile_noise_lands_in_its_real_family(crops, profile):
    measured = _median_statistics(crops, profile)
    target = S.REAL_NOISE_STATISTICS[S.PROFILES[profile].family]
    low, _, high = target["std_255"]
    assert low * (1 - STD_TOLERANCE) <= measured["std_255"] <= high * (1 + STD_TOLERANCE)
    low, _, high = target["psnr"]
    assert low - PSNR_TOLERANCE_DB <= measured["psnr"] <= high + PSNR_TOLERANCE_DB
    for key in ("lag1_h", "lag1_v", "lag2_h", "lag2_v", "corr_rg", "corr_gb", "corr_rb"):
        low, _, high = target[key]
        assert low - CORRELATION_TOLERANCE <= measured[key] <= high + CORRELATION_TOLERANCE, (key, measured[key], target[key])
    if S.PROFILES[profile].family.startswith("SIDD"):
        assert measured["corr_rb"] > measured["corr_rg"]  # SIDD: red-blue correlate more than red-green


def test_profiles_span_the_noise_levels_of_real_data(crops):
    psnr = {name: _median_statistics(crops[:2], name)["psnr"] for name in S.PROFILES}
    assert min(psnr.values()) <= 19.0 and max(psnr.values()) >= 34.0
    assert len(S.PROFILES) >= 4 and all(17.0 <= v <= 38.0 for v in psnr.values())


@pytest.mark.shared_data
def test_real_noise_table_is_what_pngan_stats_measures(real_pairs_dev):
    folder = real_pairs_dev / "SIDD_small"
    names = sorted(os.listdir(folder / "noisy"))
    rows = [noise_row(read_image(folder / "clean" / n), read_image(folder / "noisy" / n)) for n in names]
    for key, (low, median, high) in S.REAL_NOISE_STATISTICS["SIDD_small"].items():
        values = [r[key] for r in rows]
        assert np.median(values) == pytest.approx(median, abs=1e-3)
        assert np.percentile(values, 10) == pytest.approx(low, abs=1e-3) and np.percentile(values, 90) == pytest.approx(high, abs=1e-3)
