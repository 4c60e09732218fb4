"""The noise-model table's protocols: reference mode (the level from another image of the camera
setting, the same estimate for the generator and its classical counterparts) and content leak."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pngan import noise
from pngan import noise_models as nm
from pngan.data.pairs import ArrayImage, Pair
from pngan.errors import DataError, ParamsError
from pngan.generate import AwareGeneratorNoise
from pngan.models.aware import AwareGenerator
from pngan.noise.base import NoiseModel
from pngan.noise.gaussian import AWGN
from pngan.noise.condition import IsoLaw, LevelCondition
from pngan.noise.level import LevelNoise, NoiseLevel
from pngan.stages.settings import CHECKS


def _pair(name: str, source: str, setting: str, std: float = 10.0, size: int = 48, seed: int = 0) -> Pair:
    rng = np.random.default_rng(seed)
    clean = np.tile(np.linspace(60, 190, size, dtype=np.float64)[None, :, None], (size, 1, 3)).round().astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, std, clean.shape), 0, 255).round().astype(np.uint8)
    return Pair(name, ArrayImage(f"noisy {name}", lambda a=noisy: a), ArrayImage(f"clean {name}", lambda a=clean: a),
                {"profile": setting, "source": source})


def test_a_reference_is_another_source_image_of_the_same_setting():
    test = [_pair("a_0", "a", "iso800"), _pair("a_1", "a", "iso800"), _pair("b_0", "b", "iso800"), _pair("c_0", "c", "iso3200")]
    train = [_pair("t_0", "t", "iso3200"), _pair("u_0", "u", "iso100")]
    assert nm.reference_of(test[0], test, train).name == "b_0"  # not its own crop a_1
    assert nm.reference_of(test[2], test, train).name == "a_0"  # wraps around, by name
    # c_0 is alone in its setting in the test split: a training image of that setting, never c_0
    assert nm.reference_of(test[3], test, train).name == "t_0"
    # no other image of its setting anywhere: another setting, never its own source
    assert nm.reference_of(test[3], test, []).name in {"a_0", "a_1", "b_0"}
    with pytest.raises(DataError, match="no image of another source"):
        nm.reference_of(test[0], test[:2], [])


def _camera_pair(name: str, camera: str, iso: int) -> Pair:
    pair = _pair(name, name, "unused")
    return Pair(pair.name, pair.noisy, pair.clean, {"camera": camera, "iso": iso, "source": name})


def test_without_its_setting_a_reference_comes_from_the_same_camera_at_the_nearest_iso():
    test = [_camera_pair("s_800", "S6", 800), _camera_pair("s_3200", "S6", 3200), _camera_pair("n_1600", "N6", 1600),
            _camera_pair("g_1600", "GP", 1600)]
    train = [_camera_pair("s_t_100", "S6", 100), _camera_pair("s_t_1600", "S6", 1600)]
    assert nm.reference_of(test[0], test, train).name == "s_t_1600"  # same camera: 1 stop away beats 2 stops (3200)
    assert nm.reference_of(test[0], test, []).name == "s_3200"
    assert nm.reference_of(test[2], test, train).name == "g_1600"  # no other N6 image: another camera, same ISO first


def test_reference_choice_survives_missing_isos_and_equal_names():
    """Real metadata has gaps (an ISO read as NaN) and folders may repeat a stem: the choice must
    still be made, never by comparing two pairs."""
    test = [_camera_pair("a", "S6", 800), _camera_pair("b", "S6", float("nan")), _camera_pair("c", "S6", float("nan"))]
    twin = _camera_pair("b", "S6", 800)
    twin = Pair("b", twin.noisy, twin.clean, {**twin.meta, "source": "b2"})
    assert nm.reference_of(test[0], [*test, twin], []).name == "b"
    assert nm.reference_of(test[1], test, []).name in {"a", "c"}


def test_reference_rows_share_one_estimate_per_image():
    test = [_pair("a_0", "a", "iso800", std=6.0, seed=1), _pair("b_0", "b", "iso800", std=6.0, seed=2),
            _pair("c_0", "c", "iso3200", std=20.0, seed=3), _pair("d_0", "d", "iso3200", std=20.0, seed=4)]
    seen = []

    def estimate(noisy):
        seen.append(noisy)
        return NoiseLevel.from_table((0.0, 1.0), [[float(noisy.std()) / 255] * 2, [0.02, 0.04], [0.03, 0.03]])

    chosen, refs = nm.reference_models(["heteroscedastic@reference", "awgn@reference"], test, [], estimate, None)
    assert refs == {"a_0": "b_0", "b_0": "a_0", "c_0": "d_0", "d_0": "c_0"}
    assert len(seen) == 4  # one estimate per reference image, shared by every reference row
    level = chosen["heteroscedastic@reference"](test[0]).level
    assert level.sigma[1] == (0.02, 0.04)
    flat = chosen["awgn@reference"](test[0]).level
    reference = test[1].noisy.load()
    assert flat.mean_std() == pytest.approx(level.mean_std(reference), rel=1e-9)
    assert all(len(set(row)) == 1 for row in flat.sigma) and len({row[0] for row in flat.sigma}) == 1  # one std
    with pytest.raises(ValueError, match="a reference level sets only"):
        nm.reference_models(["correlated@reference"], test, [], estimate, None)


def test_reference_models_are_not_fitted_on_training_pairs():
    with pytest.raises(ValueError, match="only the noise-model table scores"):
        nm.fit_models(["heteroscedastic@reference"], {}, [])


def test_settings_allow_reference_models_only_in_the_noise_model_table():
    CHECKS["noise_models"]({"models": ["heteroscedastic@reference", "awgn@reference"]}, "params.yaml [noise_models]", {})
    with pytest.raises(ParamsError, match="a reference level sets only"):
        CHECKS["noise_models"]({"models": ["correlated@reference"]}, "params.yaml [noise_models]", {})
    with pytest.raises(ParamsError, match="only the noise_models stage"):
        CHECKS["pgap"]({"models": ["heteroscedastic@reference"]}, "params.yaml [pgap]", {})


def test_settings_refuse_listing_the_gaussian_at_the_generators_level():
    with pytest.raises(ParamsError, match="heteroscedastic@level: the Gaussian at the noise-aware generator's level is scored with that generator"):
        CHECKS["noise_models"]({"models": ["heteroscedastic@level"]}, "params.yaml [noise_models]", {})


def test_the_noise_aware_generator_comes_with_a_gaussian_at_its_very_level():
    law = IsoLaw(0.5, {"GP": 0.0}, (100.0, 1600.0))
    condition = LevelCondition(NoiseLevel.constant(0.01), {}, "iso_law", iso_law=law)
    aware = AwareGeneratorNoise(AwareGenerator(width=4, depth=1), condition)
    pairs = [Pair("a", None, None, {"camera": "GP", "iso": 400}), Pair("b", None, None, {"camera": "GP", "iso": 1600})]
    rows = nm.references(pairs, oracle=True, generators={"pngan_aware": aware})
    assert list(rows) == ["pngan_aware", nm.AT_LEVEL]  # no oracle: these pairs are not simulated
    for pair, std in zip(pairs, (0.2, 0.4)):  # 0.01 * sqrt(ISO)
        gaussian, generator = rows[nm.AT_LEVEL](pair), rows["pngan_aware"](pair)
        assert isinstance(gaussian, LevelNoise) and gaussian.level == generator.level
        assert gaussian.level.mean_std() == pytest.approx(std)


def test_reference_keys_have_their_own_labels():
    assert noise.label("awgn@reference") == "AWGN, σ from a reference image"
    assert "reference image" in noise.label("pngan_aware@reference")
    assert noise.label("heteroscedastic@camera") == "Heteroscedastic Gaussian, fitted per camera setting"


class _Blurred(NoiseModel):
    """A 'generator' that smooths the image and adds white noise: its noise carries the edges."""

    name = "blurred"

    def _sample(self, clean, generator):
        smooth = torch.nn.functional.avg_pool2d(clean, 5, stride=1, padding=2, count_include_pad=False)
        return smooth + 0.02 * torch.randn(clean.shape, generator=generator)


def _edges_pair() -> Pair:
    rng = np.random.default_rng(0)
    clean = np.full((64, 64, 3), 60, np.uint8)
    clean[:, 32:] = 200
    clean[20:44, 10:20] = 150
    noisy = np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255).round().astype(np.uint8)
    return Pair("edges", ArrayImage("noisy", lambda: noisy), ArrayImage("clean", lambda: clean), {})


def test_content_leak_is_scored_and_catches_a_smoothing_model():
    pair = _edges_pair()
    awgn, _ = nm.score_pair(noise.build("awgn", sigma=5 / 255), pair, 2, 0, 2, torch.device("cpu"))
    blurred, _ = nm.score_pair(_Blurred(), pair, 2, 0, 2, torch.device("cpu"))
    assert abs(awgn["leak"]) < 0.2 and abs(awgn["real_leak"]) < 0.2  # white noise of one level
    assert blurred["leak"] > 0.6 > awgn["leak"] + 0.4
    assert blurred["real_leak"] == awgn["real_leak"]  # the real noise's value does not depend on the model


def test_a_generator_file_of_the_wrong_kind_is_refused(generator_file):
    with pytest.raises(DataError, match="not a noise-aware generator file"):
        nm.load_generators({nm.PNGAN_AWARE: str(generator_file)}, torch.device("cpu"))
    assert set(nm.load_generators({nm.PNGAN: str(generator_file), nm.PNGAN_AWARE: None}, torch.device("cpu"))) == {nm.PNGAN}


def test_drawn_images_are_reused_only_for_the_same_draw(tmp_path):
    """A resumed stage keeps its drawn fakes; a changed model (or seed) redraws them all, so a
    retrained generator never leaves the fakes of its predecessor behind."""
    pairs = [_pair("a", "a", "s"), _pair("b", "b", "s")]
    cpu = torch.device("cpu")

    def draw(sigma, seed=0):
        out = nm.noise_images(lambda pair: AWGN(sigma / 255), pairs, tmp_path, seed, cpu)
        return {p.name: (p.noisy.path.stat().st_ino, p.noisy.load()) for p in out}

    first = draw(5.0)
    again = draw(5.0)
    assert all(again[k][0] == first[k][0] for k in first)  # the same files: not redrawn
    stronger = draw(20.0)
    for k in first:
        assert np.abs(stronger[k][1].astype(float) - pairs[0].clean.load()).std() > 2 * np.abs(first[k][1].astype(float) - pairs[0].clean.load()).std()
    reseeded = draw(20.0, seed=1)
    assert not np.array_equal(reseeded["a"][1], stronger["a"][1])
    assert (tmp_path / nm.SOURCE_FILE).read_text().strip() != ""
