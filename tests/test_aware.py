"""The noise-aware generator: it adds noise at the level it is told (never redrawing the image),
starts as the classical draw, trains, resumes and runs under DDP like the paper's, and its files
and command line refuse what they cannot honour with one line."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from test_ddp import _torchrun
from test_resume import Interrupted, _interrupt_at, _log, assert_same_training_state
from trainer_standins import PROFILES, TinyDenoiser, profile_pairs, tiny_aware_config

from pngan import models
from pngan.cli import main
from pngan.data.pairs import Pair
from pngan.data.patches import PairDataset, make_patch_set
from pngan.errors import CheckpointError, DataError, ParamsError
from pngan.generate import AwareGeneratorNoise, GeneratorNoise, load_generator
from pngan.images import read_image, write_png
from pngan.losses import level_nll
from pngan.models.aware import AwareGenerator, add_noise, colour_gain, filter_noise, generator_input, gradient_magnitude, unit_rms
from pngan.models.files import save_network_file
from pngan.noise.base import quantize
from pngan.noise.condition import IsoLaw, LevelCondition, camera_setting, fit_iso_law
from pngan.noise.gaussian import CorrelatedGaussian, kernel_lag1
from pngan.noise.level import NoiseLevel
from pngan.train.aware import AwarePnganTask, LevelPairs, fit_condition, fit_start, level_source_of, train_pngan_aware
from pngan.train.loop import NanGuard, Runtime
from pngan.train.distributed import DistContext

KNOTS = (0.0, 0.5, 1.0)


def _constant(std_255: float) -> NoiseLevel:
    return NoiseLevel.from_table(KNOTS, [[std_255 / 255] * len(KNOTS)] * 3)


def _condition(levels: dict[str, float] = PROFILES, hold_level: bool = True) -> LevelCondition:
    groups = {key: _constant(std) for key, std in levels.items()}
    return LevelCondition(fallback=_constant(float(np.mean(list(levels.values())))), groups=groups, hold_level=hold_level)


def _law_condition() -> LevelCondition:
    """Cameras 'GP' and 'IP' trained at ISO 100-3200, their std doubling every 4x ISO (slope 0.5),
    IP's half of GP's; the fallback a constant 10/255."""
    law = IsoLaw(0.5, {"GP": math.log(0.1), "IP": math.log(0.05)}, (100.0, 3200.0))
    fallback = _constant(10.0)
    groups = {"GP ISO 100": fallback.scaled(law.factor("GP", 100)), "IP ISO 3200": fallback.scaled(law.factor("IP", 3200))}
    return LevelCondition(fallback, groups, "iso_law", iso_law=law)


def _shaping_generator(seed: int = 0, **kwargs) -> AwareGenerator:
    """A tiny aware generator whose tail is not zero, as after training: its field is not z."""
    torch.manual_seed(seed)
    net = AwareGenerator(width=8, depth=2, **kwargs)
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    return net.eval()


def _aware_file(path, condition: LevelCondition | object = None, **extra):
    """A noise-aware generator file; `condition`: a LevelCondition, or any entry to store as is."""
    net = _shaping_generator()
    entry = (condition or _condition()).to_dict() if condition is None or isinstance(condition, LevelCondition) else condition
    return save_network_file(path, "generator", "aware_generator", {"width": 8, "depth": 2}, net, condition=entry, summary={}, **extra)


def _gray(value: float = 0.5, size: int = 64) -> torch.Tensor:
    return torch.full((1, 3, size, size), round(value * 255) / 255)


def _smooth_image(seed: int = 0, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(size, size), mode="bilinear")
    return (base * 180 + 40).round() / 255


# ---- the noise it adds -----------------------------------------------------------------------


@pytest.mark.parametrize("hold_level", [True, False])
def test_a_zero_level_returns_the_clean_image_exactly(hold_level):
    model = AwareGeneratorNoise(_shaping_generator(residual_from_z=False), _condition(hold_level=hold_level))
    clean = _smooth_image()
    fake = model.for_level(_constant(0.0)).sample(clean, torch.Generator().manual_seed(1))
    assert torch.equal(fake, clean)
    assert not torch.equal(model.for_level(_constant(10.0)).sample(clean), clean)  # control: a level does add noise


def test_the_noise_std_follows_the_requested_level():
    model = AwareGeneratorNoise(_shaping_generator(), _condition(), margin=None)
    clean = _gray()
    stds = []
    for std in (4.0, 10.0, 25.0):
        fake = model.for_level(_constant(std)).sample(clean, torch.Generator().manual_seed(0))
        stds.append(float((fake - clean).std()) * 255)
        assert stds[-1] == pytest.approx(std, rel=0.05)  # hold_level: the requested level, whatever G's field
    assert stds == sorted(stds)
    # and on an image, with a level that rises with intensity: brighter pixels get more noise
    rising = NoiseLevel.from_table(KNOTS, [[2 / 255, 8 / 255, 14 / 255]] * 3)
    image = torch.cat([_gray(0.1, 32), _gray(0.9, 32)], dim=-1)
    noise = (model.for_level(rising).sample(image) - image) * 255
    assert float(noise[..., :32].std()) < 0.5 * float(noise[..., 32:].std())


def test_without_hold_level_the_generator_sets_the_level():
    """Control for the test above: a field of RMS 3 triples the noise unless the level is held."""

    class Loud(torch.nn.Module):
        def forward(self, inputs):
            return 3 * inputs[:, :3]

    clean = _gray()
    for hold, expected in ((True, 10.0), (False, 30.0)):
        fake = AwareGeneratorNoise(Loud(), _condition(hold_level=hold), margin=None).for_level(_constant(10.0)).sample(clean)
        assert float((fake - clean).std()) * 255 == pytest.approx(expected, rel=0.05)


def test_step_zero_is_the_classical_draw_at_the_level():
    net = AwareGenerator(width=8, depth=2)  # zero tail added to z
    clean, level = _smooth_image(), NoiseLevel.from_table(KNOTS, [[3 / 255, 9 / 255, 5 / 255]] * 3)
    fake = AwareGeneratorNoise(net, _condition()).for_level(level).sample(clean, torch.Generator().manual_seed(7))
    z = torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
    assert torch.equal(fake, quantize(clean + level.map(clean) * unit_rms(z)))
    # while a generator that learned something differs from it
    shaped = AwareGeneratorNoise(_shaping_generator(), _condition()).for_level(level).sample(clean, torch.Generator().manual_seed(7))
    assert not torch.equal(shaped, fake)


# ---- the filtering generator (generator_kwargs kernel > 0) ---------------------------------------


def _lag1_and_channels(u: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Lag-1 autocorrelation (both axes) and the 3 x 3 channel correlation of noise fields (B, 3, H, W)."""
    energy = u.square().mean()
    lag1 = float(((u[..., 1:] * u[..., :-1]).mean() + (u[..., 1:, :] * u[..., :-1, :]).mean()) / (2 * energy))
    return lag1, torch.corrcoef(u.transpose(0, 1).reshape(3, -1))


def test_filtered_noise_has_unit_variance_at_every_pixel_borders_included():
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(1, 3 * 3 * 25, 8, 8, generator=g).expand(4000, -1, -1, -1)  # random filters, the same for every draw
    u = filter_noise(torch.randn(4000, 3, 8, 8, generator=g), weights, 5)
    variance = u.var(dim=0)  # per pixel and channel over 4000 draws: about +-2 % each
    assert float(variance.mean()) == pytest.approx(1.0, abs=0.01)
    assert float((variance - 1).abs().max()) < 0.12
    assert float((variance[..., 0, :] - 1).abs().max()) < 0.12  # a border row, whose filters lose taps to the padding
    # control: the same filters unnormalised give each pixel its filters' energy
    raw = (weights[0].view(3, 75, 8, 8).square().sum(dim=1))
    assert float(raw.min()) > 10


def test_a_filtering_generator_starts_at_white_noise_or_at_the_fitted_correlated_gaussian():
    z = torch.randn(16, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    inputs = torch.cat([z, torch.rand_like(z), torch.full_like(z, 0.04)], dim=1)
    with torch.no_grad():
        white = AwareGenerator(width=8, depth=1, kernel=5)(inputs)
    assert torch.allclose(white, z, atol=1e-6)  # the identity filter: u = z, the classical draw
    corr = torch.tensor([[1.0, 0.3, 0.5], [0.3, 1.0, 0.2], [0.5, 0.2, 1.0]])
    mixing = torch.linalg.cholesky(corr).flatten().tolist()
    with torch.no_grad():
        u = AwareGenerator(width=8, depth=1, kernel=5, start_width=0.7, start_mixing=mixing)(inputs)[..., 4:-4, 4:-4]
    lag1, channels = _lag1_and_channels(u)
    assert float(u.var()) == pytest.approx(1.0, abs=0.03)
    assert lag1 == pytest.approx(kernel_lag1(0.7), abs=0.02)
    assert torch.allclose(channels, corr, atol=0.03)
    assert _lag1_and_channels(white)[0] == pytest.approx(0.0, abs=0.02)  # control
    with pytest.raises(ValueError, match="kernel must be 0 .* or an odd filter size"):
        AwareGenerator(kernel=4)
    with pytest.raises(ValueError, match="start_mixing must be 9 finite numbers"):
        AwareGenerator(kernel=3, start_mixing=[1.0, 0.0])


def test_the_correlated_start_is_fitted_on_the_training_pairs_and_kept_in_the_file(tmp_path):
    cfg = tiny_aware_config(generator_kwargs={"width": 4, "depth": 1, "kernel": 3}, start="correlated", steps=2)
    data = profile_pairs()
    start = fit_start(cfg, data.pairs)
    fitted = CorrelatedGaussian().fit([(c, n) for n, c in (p.load() for p in data.pairs)])
    assert start["start_width"] == pytest.approx(fitted.kernel_sigma)
    mixing = np.asarray(start["start_mixing"]).reshape(3, 3)
    assert np.allclose(mixing @ mixing.T, fitted.channel_corr)
    assert fit_start(tiny_aware_config(), data.pairs) == {}  # white: nothing to fit
    train_pngan_aware(cfg, data, None, TinyDenoiser(4), tmp_path)
    network, info = load_generator(tmp_path / "generator.pt")
    assert info["kwargs"]["start_width"] == start["start_width"] and info["kwargs"]["kernel"] == 3
    assert torch.equal(network.start, AwareGenerator(**info["kwargs"]).start)
    with pytest.raises(ParamsError, match="start: correlated needs a filtering generator"):
        tiny_aware_config(start="correlated")
    with pytest.raises(ParamsError, match="start_width is set by the noise-aware task"):
        tiny_aware_config(generator_kwargs={"kernel": 3, "start_width": 1.0})


def test_the_discriminator_keeps_the_paper_layout_and_takes_the_level_beside_the_image():
    assert models.count_parameters(models.build("pixel_discriminator")) == 371_329
    conditioned = models.build("pixel_discriminator", width=8, in_channels=6)
    assert conditioned(torch.rand(2, 6, 16, 12)).shape == (2, 1, 16, 12)
    assert models.count_parameters(models.build("pixel_discriminator", in_channels=6)) == 371_329 + 3 * 64 * 9


def test_the_default_generator_is_laptop_sized_and_tiles_exactly():
    net = models.build("aware_generator")
    assert 100_000 <= models.count_parameters(net) <= 300_000
    model = AwareGeneratorNoise(_shaping_generator(), _condition(), tile=16, overlap=16)
    clean = _smooth_image(size=40)
    whole = AwareGeneratorNoise(_shaping_generator(), _condition(), tile=0)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.for_level(_constant(9.0)).sample(clean, g()), whole.for_level(_constant(9.0)).sample(clean, g()))


def test_levels_are_looked_up_by_camera_setting_and_checked_against_the_trained_range():
    model = AwareGeneratorNoise(_shaping_generator(), _condition(), margin=2.0)
    assert model.for_group("phone_iso3200").level == _constant(20.0)
    with pytest.raises(ParamsError, match=r"camera setting 'phone_iso800' is not one the generator was trained on; known: 'phone_iso100', 'phone_iso3200'"):
        model.for_group("phone_iso800")
    model.for_level(_constant(40.0))  # 2 x the largest trained level: still accepted
    with pytest.raises(ParamsError, match=r"noise level 41.00/255 \(RMS\) is outside what the generator was trained on, 6.00-20.00/255"):
        model.for_level(_constant(41.0))
    with pytest.raises(ParamsError, match="needs a level"):
        model.sample(_gray())


def test_the_camera_setting_key_is_the_one_the_noise_model_table_uses():
    from pngan.noise_models import group_of as stage_group_of

    metas = [{"profile": "phone_iso3200"}, {"camera": "GP", "iso": 800}, {"camera": "IP"}, {"scene": "x"}, {"profile": "p", "camera": "GP", "iso": 1}]
    for meta in metas:
        assert camera_setting(meta) == stage_group_of(Pair("p", None, None, meta), "camera")


def test_an_iso_law_serves_any_iso_of_a_trained_camera_and_refuses_the_rest():
    condition = _law_condition()
    # GP at ISO 400: 10 * 0.1 * sqrt(400) = 20/255; IP is half of GP at every ISO
    assert condition.level_at("GP", 400).mean_std() * 255 == pytest.approx(20.0)
    assert condition.level_at("IP", 400).mean_std() * 255 == pytest.approx(10.0)
    stds = [condition.level_at("GP", iso).mean_std() for iso in (100, 200, 800, 3200)]
    assert stds == sorted(stds) and stds[-1] / stds[0] == pytest.approx(math.sqrt(32))
    with pytest.raises(ParamsError, match=r"camera 'N6' is not one the generator was trained on; known: 'GP', 'IP'"):
        condition.level_at("N6", 400)
    with pytest.raises(ParamsError, match=r"ISO 6400 is outside the ISOs the generator was trained on, 100-3200"):
        condition.level_at("GP", 6400)
    with pytest.raises(ParamsError, match=r"camera 'GP' needs an ISO"):
        condition.level_at("GP", None)
    # scoring a pair: its camera's level at its ISO, beyond the trained ISOs too; an unknown camera
    # takes the cameras' mean offset; no ISO, the fallback
    assert condition.level_for({"camera": "GP", "iso": "6400"}).mean_std() * 255 == pytest.approx(80.0)
    assert condition.level_for({"camera": "N6", "iso": 400}).mean_std() * 255 == pytest.approx(math.sqrt(20.0 * 10.0))
    assert condition.level_for({"camera": "N6"}) == condition.fallback
    assert condition.level_for({"camera": float("nan"), "iso": float("nan")}) == condition.fallback


def test_the_iso_law_recovers_a_known_slope_and_camera_offsets():
    rng = np.random.default_rng(0)
    slope, offsets = 0.4, {"A": 0.0, "B": -0.5}
    images = []
    for camera, offset in offsets.items():
        for iso in (200, 800, 3200):
            clean = rng.integers(30, 225, size=(64, 64, 3), dtype=np.uint8)
            std = math.exp(offset + slope * math.log(iso / 200)) * 4.0
            noisy = np.clip(clean + rng.normal(0, std, clean.shape), 0, 255).round().astype(np.uint8)
            images.append((camera, float(iso), [(clean, noisy)]))
    fallback = _constant(10.0)
    law = fit_iso_law(images, fallback)
    assert law.slope == pytest.approx(slope, abs=0.02)
    assert law.cameras["B"] - law.cameras["A"] == pytest.approx(-0.5, abs=0.03)
    assert law.iso_range == (pytest.approx(200), pytest.approx(3200))
    assert fallback.scaled(law.factor("A", 800)).mean_std() * 255 == pytest.approx(4.0 * 4 ** 0.4, rel=0.04)
    one_iso = fit_iso_law([(c, 800.0, pairs) for c, _, pairs in images], fallback)
    assert one_iso.slope == 0.0


def test_auto_fits_an_iso_law_on_real_camera_settings_and_per_setting_levels_on_profiles():
    data = profile_pairs()
    assert level_source_of("auto", data.pairs) == "camera"
    with pytest.raises(ParamsError, match="level_source iso_law: the training pairs need camera and ISO metadata"):
        level_source_of("iso_law", data.pairs)
    # the same pairs as camera GP at ISO 100 and 3200 (std 6 and 20): the law goes through both
    real = [Pair(p.name, p.noisy, p.clean, {"camera": "GP", "iso": p.meta["profile"].removeprefix("phone_iso"), "source": p.name})
            for p in data.pairs]
    condition = fit_condition(tiny_aware_config(), real)
    assert condition.group_key == "iso_law" and sorted(condition.groups) == ["GP ISO 100", "GP ISO 3200"]
    assert condition.iso_law.slope == pytest.approx(math.log(20 / 6) / math.log(32), rel=0.1)
    assert condition.level_at("GP", 100).mean_std() * 255 == pytest.approx(6.0, rel=0.15)
    assert condition.level_at("GP", 3200).mean_std() * 255 == pytest.approx(20.0, rel=0.15)
    items = LevelPairs(PairDataset(real, None, False, 0), condition)
    assert torch.equal(items[0]["level"], condition.level_at("GP", 100).table().float())


# ---- training ----------------------------------------------------------------------------------


def test_the_levels_come_from_the_training_pairs_per_camera_setting():
    data = profile_pairs()
    condition = fit_condition(tiny_aware_config(), data.pairs)
    assert sorted(condition.groups) == sorted(PROFILES)
    for profile, std in PROFILES.items():
        assert condition.groups[profile].mean_std() * 255 == pytest.approx(std, rel=0.25)
    items = LevelPairs(data, condition)
    assert items.group_names == ("phone_iso100", "phone_iso3200", "other")
    first = items[0]
    assert first["level"].shape == (3, 3) and torch.equal(first["level"], condition.groups["phone_iso100"].table().float())
    assert int(items[len(data) - 1]["group"]) == 1


def test_a_luminance_condition_is_fitted_trained_and_estimated_on_luminance():
    cfg = tiny_aware_config(level_axis="luminance")
    data = profile_pairs()
    condition = fit_condition(cfg, data.pairs)
    assert condition.axis == "luminance" and {level.axis for level in condition.groups.values()} == {"luminance"}
    assert LevelCondition.from_dict(json.loads(json.dumps(condition.to_dict()))) == condition
    noisy, _ = data.pairs[0].load()
    assert condition.estimate([noisy]).axis == "luminance"
    # the task reads its levels at the clean luminance (a steep level, so that the axes differ)
    steep = LevelCondition(NoiseLevel((0.0, 0.5, 1.0), ((0.01, 0.05, 0.1),) * 3, "luminance"), group_key="all")
    task = AwarePnganTask(cfg, Runtime(DistContext(), "fp32"), TinyDenoiser(4), None, NanGuard(10, DistContext()), steep)
    items = LevelPairs(data, steep)
    batch = {k: torch.stack([items[i][k] for i in (0, 3)]) for k in ("clean", "noisy", "level")}
    _, _, s = task.fake(batch, 0)
    assert torch.allclose(s, steep.fallback.map(batch["clean"]), atol=1e-6)
    assert not torch.allclose(s, NoiseLevel(steep.knots, steep.fallback.sigma).map(batch["clean"]), atol=1e-3)
    with pytest.raises(ParamsError, match="level_axis must be one of channel, luminance, got 'hue'"):
        tiny_aware_config(level_axis="hue")


def test_at_step_zero_the_task_fakes_the_classical_draw_and_d_sees_the_level():
    cfg = tiny_aware_config()
    data = profile_pairs()
    condition = fit_condition(cfg, data.pairs)
    ctx = DistContext()
    task = AwarePnganTask(cfg, Runtime(ctx, "fp32"), TinyDenoiser(4), None, NanGuard(10, ctx), condition)
    items = LevelPairs(data, condition)
    batch = {k: torch.stack([items[i][k] for i in (0, 3)]) for k in ("clean", "noisy", "level")}
    y_s, y_f, s = task.fake(batch, 0)
    assert torch.equal(y_s, y_f) and s.shape == batch["clean"].shape
    assert task.discriminator.net[0].in_channels == 6
    result = task.train_step(batch, 0, diagnose=True)
    assert np.isfinite(result.diagnostics["std_fake_255"])
    _, y_f_after, _ = task.fake(batch, 0)
    assert not torch.equal(y_f_after, y_f)  # G moved


def test_training_writes_an_aware_generator_file_and_per_setting_levels(tmp_path):
    cfg = tiny_aware_config(steps=2, val_every=1)
    summary = train_pngan_aware(cfg, profile_pairs(), profile_pairs(crop=None, seed=1), TinyDenoiser(4), tmp_path)
    with open(tmp_path / "val_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"std_fake_255@phone_iso100", "std_fake_255@phone_iso3200", "std_real_255@phone_iso3200", "akld", "akld_input"} <= set(rows[0])
    assert float(rows[-1]["std_real_255@phone_iso100"]) < float(rows[-1]["std_real_255@phone_iso3200"])
    state = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert state["arch"] == "aware_generator" and state["kwargs"] == {"width": 4, "depth": 1, "residual_from_z": True}
    assert "input" not in state and sorted(state["condition"]["groups"]) == sorted(PROFILES)
    assert summary["level_groups"] == sorted(PROFILES)
    for path in (tmp_path / "generator.pt", tmp_path / "checkpoint.pt"):  # the checkpoint stands in for the file too
        model = GeneratorNoise.from_file(path)
        assert isinstance(model, AwareGeneratorNoise) and model.condition == LevelCondition.from_dict(state["condition"])
        assert model.for_group("phone_iso3200").sample(_gray(size=16)).shape == (1, 3, 16, 16)


def test_aware_resume_is_bit_identical(tmp_path, monkeypatch):
    cfg = tiny_aware_config(steps=6, generator_kwargs={"width": 4, "depth": 1, "gain_width": 4})  # the gain's own rate resumes too
    data, dd = profile_pairs(), TinyDenoiser(4)
    train_pngan_aware(cfg, data, None, dd, tmp_path / "straight")
    with monkeypatch.context() as m:
        _interrupt_at(m, AwarePnganTask, 3)  # 3 steps done, the checkpoint holds 2
        with pytest.raises(Interrupted):
            train_pngan_aware(cfg, data, None, dd, tmp_path / "resumed")
    assert train_pngan_aware(cfg, data, None, dd, tmp_path / "resumed")["resumed_from"] == 2
    assert_same_training_state(tmp_path / "straight", tmp_path / "resumed")
    assert _log(tmp_path / "resumed" / "train_log.csv") == _log(tmp_path / "straight" / "train_log.csv")
    # other levels (same data, same settings: say a changed fit) are another run: never resumed
    import pngan.train.aware as aware

    fit = aware.fit_level
    monkeypatch.setattr(aware, "fit_level", lambda pairs, **options: fit(pairs, **options).scaled(1.5))
    assert train_pngan_aware(cfg, data, None, dd, tmp_path / "resumed")["resumed_from"] == 0


@pytest.mark.slow
def test_two_process_aware_training_keeps_replicas_identical(tmp_path):
    import yaml

    make_patch_set(profile_pairs(crop=None).pairs, tmp_path / "data" / "train", size=24, per_image=1)
    denoiser = tmp_path / "denoiser.pt"
    save_network_file(denoiser, "denoiser", "dncnn", {"depth": 2, "width": 4, "batch_norm": False}, models.build("dncnn", depth=2, width=4, batch_norm=False))
    section = {"generator_kwargs": {"width": 4, "depth": 1, "gain_width": 4}, "discriminator_kwargs": {"width": 4}, "level_knots": 3, "crop": 16, "batch": 2,
               "steps": 3, "log_every": 1, "ckpt_every": 2, "val_every": 0, "precision": "fp32", "device": "cpu"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train_pngan_aware": section}))
    common = ["train-pngan-aware", "--params", "params.yaml", "--data", "data", "--denoiser", str(denoiser), "--out", "run"]
    first = _torchrun([*common, "--summary", "first.json"], tmp_path, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((tmp_path / "first.json").read_text())
    assert summary["world_size"] == 2 and len(set(summary["replica_digests"])) == 1
    assert summary["level_groups"] == sorted(PROFILES)
    second = _torchrun([*common, "--summary", "second.json", "--set", "steps=4"], tmp_path, 2)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = json.loads((tmp_path / "second.json").read_text())
    assert resumed["resumed_from"] == 3 and len(set(resumed["replica_digests"])) == 1


# ---- files and the command line ----------------------------------------------------------------


def _generate(capsys, checkpoint, clean_dir, output, *options):
    code = main(["generate", "--checkpoint", str(checkpoint), "--input", str(clean_dir), "--output", str(output), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(code, err, *phrases):
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    for phrase in phrases:
        assert phrase in err, err


def test_generate_at_a_camera_setting_a_level_or_a_reference(tmp_path, clean_dir, capsys):
    path = _aware_file(tmp_path / "aware.pt")
    code, out, err = _generate(capsys, path, clean_dir, tmp_path / "sim", "--camera", "phone_iso3200")
    assert code == 0, err
    strong = read_image(tmp_path / "sim" / "a.png").astype(float) - read_image(clean_dir / "a.png")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "flat", "--level", "6")
    assert code == 0, err
    weak = read_image(tmp_path / "flat" / "a.png").astype(float) - read_image(clean_dir / "a.png")
    assert weak.std() < 0.5 * strong.std()
    # reference mode: a.png has a same-name reference, b.png takes the pooled level
    refs = tmp_path / "refs"
    rng = np.random.default_rng(0)
    write_png(refs / "a.png", np.clip(128 + rng.normal(0, 18, (40, 40, 3)), 0, 255).astype(np.uint8))
    write_png(refs / "z.png", np.clip(128 + rng.normal(0, 18, (40, 40, 3)), 0, 255).astype(np.uint8))
    code, out, err = _generate(capsys, path, clean_dir, tmp_path / "ref", "--reference", str(refs))
    assert code == 0, err
    assert "1 image(s) take the level estimated from the reference of the same name" in out
    assert "1 image(s) (b) have no reference of their name" in out and "all 2 reference(s) pooled" in out


def test_real_camera_settings_are_camera_and_iso(tmp_path, clean_dir, capsys):
    path = _aware_file(tmp_path / "aware.pt", _condition({"GP ISO 800": 10.0, "IP ISO 100": 4.0}))
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "ok", "--camera", "GP", "--iso", "800")
    assert code == 0, err
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out", "--camera", "GP", "--iso", "1600")
    _one_line_error(code, err, f"{path}: camera setting 'GP ISO 1600' is not one the generator was trained on; known: 'GP ISO 800', 'IP ISO 100'")
    assert not (tmp_path / "out").exists()


def test_a_generator_with_an_iso_law_takes_any_trained_iso_of_a_trained_camera(tmp_path, clean_dir, capsys):
    path = _aware_file(tmp_path / "aware.pt", _law_condition())
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "ok", "--camera", "IP", "--iso", "1600")  # not a trained setting
    assert code == 0, err
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out", "--camera", "IP", "--iso", "6400")
    _one_line_error(code, err, f"{path}: ISO 6400 is outside the ISOs the generator was trained on, 100-3200")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out", "--camera", "N6", "--iso", "800")
    _one_line_error(code, err, "camera 'N6' is not one the generator was trained on; known: 'GP', 'IP'")
    assert not (tmp_path / "out").exists()


def test_out_of_range_and_missing_or_misplaced_levels_are_one_line_errors(tmp_path, clean_dir, capsys, generator_file):
    path = _aware_file(tmp_path / "aware.pt")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out", "--level", "90")
    _one_line_error(code, err, "--level 90: noise level 90.00/255 (RMS) is outside what the generator was trained on, 6.00-20.00/255 (accepted with margin 2x: 3.00-40.00/255)")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out", "--level", "90", "--level-margin", "5")
    assert code == 0, err
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out2")
    _one_line_error(code, err, "a noise-aware generator needs a noise level: --reference NOISY_DIR, --camera NAME [--iso N]", "'phone_iso100', 'phone_iso3200'")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out2", "--level", "5", "--camera", "phone_iso100")
    _one_line_error(code, err, "--camera and --level: give one level source")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out2", "--iso", "800")
    _one_line_error(code, err, "--iso 800 needs --camera NAME")
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out2", "--level", "1,2")
    _one_line_error(code, err, "--level 1,2: expected a noise std >= 0 in 8-bit levels")
    code, _, err = _generate(capsys, generator_file, clean_dir, tmp_path / "out2", "--camera", "phone_iso100")
    _one_line_error(code, err, "--camera: a paper PNGAN generator takes no noise level")
    assert not (tmp_path / "out2").exists()


def test_generate_refuses_a_reference_folder_that_overlaps_the_output(tmp_path, clean_dir, capsys):
    path = _aware_file(tmp_path / "aware.pt")
    refs = tmp_path / "refs"
    write_png(refs / "a.png", np.full((30, 40, 3), 128, np.uint8))
    before = sorted(p.name for p in refs.iterdir())
    for output in (refs, refs / "noisy", tmp_path):
        code, _, err = _generate(capsys, path, clean_dir, output, "--reference", str(refs), "--overwrite")
        _one_line_error(code, err, str(output), "input folder")
    assert sorted(p.name for p in refs.iterdir()) == before


def _garbage_conditions():
    good, law = _condition().to_dict(), _law_condition().to_dict()
    level = good["groups"]["phone_iso100"]

    def changed(**entries):
        return {**good, **entries}

    return {
        "not a mapping": "level",
        "another kind": changed(kind="code"),
        "unknown key": changed(run="subprocess:Popen"),
        "groups not a mapping": changed(groups=["phone_iso100"]),
        "a level that is not one": changed(groups={"phone_iso100": {"knots": [0, 1], "sigma": "x"}}),
        "a negative level": changed(groups={"phone_iso100": {**level, "sigma": [[-1.0] * 3] * 3}}),
        "a range its levels do not give": changed(range={"min_std": 0.0, "max_std": 1e9}),
        "hold_level not a flag": changed(hold_level="yes"),
        "an estimator option estimate_level lacks": changed(estimator={"options": {"__class__": 1}, "calibration": None}),
        "an estimator option that is not a plain value": changed(estimator={"options": {"block": {"__reduce__": [1]}}, "calibration": None}),
        "a calibration that is not finite": changed(estimator={"options": {}, "calibration": [1.0, float("nan"), 1.0]}),
        "a calibration of two factors": changed(estimator={"options": {}, "calibration": [1.0, 1.0]}),
        "an estimator option the condition sets": changed(estimator={"options": {"axis": "luminance"}, "calibration": None}),
        "levels of two axes": changed(groups={"phone_iso100": {**level, "axis": "luminance"}}),
        "an ISO law on a per-setting condition": changed(iso_law={"slope": 0.5, "cameras": {"GP": -3.0}, "iso_range": [100, 3200]}),
        "an ISO law that is not finite": {**law, "iso_law": {**law["iso_law"], "slope": float("nan")}},
        "an ISO law with a reversed range": {**law, "iso_law": {**law["iso_law"], "iso_range": [3200, 100]}},
        "an ISO law with no camera": {**law, "iso_law": {**law["iso_law"], "cameras": {}}},
        "an ISO law with an unknown entry": {**law, "iso_law": {**law["iso_law"], "code": "os:system"}},
        "an iso_law group key without its law": {**law, "iso_law": None},
    }


@pytest.mark.parametrize("name", list(_garbage_conditions()))
def test_a_generator_file_with_a_garbage_condition_is_refused(name, tmp_path, clean_dir, capsys):
    path = _aware_file(tmp_path / "aware.pt", _garbage_conditions()[name])
    with pytest.raises(CheckpointError, match=str(path)):
        load_generator(path)
    code, _, err = _generate(capsys, path, clean_dir, tmp_path / "out", "--level", "10")
    _one_line_error(code, err, str(path), "condition")
    assert not (tmp_path / "out").exists()


def test_a_file_with_both_an_input_spec_and_a_condition_is_refused(tmp_path):
    path = _aware_file(tmp_path / "aware.pt", input={"setting": 1, "noise": "awgn", "noise_kwargs": {}})
    with pytest.raises(CheckpointError, match="holds both a synthetic-input spec and a level condition"):
        load_generator(path)


def test_the_condition_entry_round_trips():
    condition = _condition()
    entry = condition.to_dict()
    assert set(entry) == {"kind", "knots", "group_key", "groups", "fallback", "range", "hold_level", "estimator", "iso_law"}
    assert entry["range"] == {"min_std": pytest.approx(6.0), "max_std": pytest.approx(20.0)}
    assert LevelCondition.from_dict(json.loads(json.dumps(entry))) == condition
    older = {key: value for key, value in entry.items() if key != "iso_law"}  # files written before the ISO law
    assert LevelCondition.from_dict(json.loads(json.dumps(older))) == condition
    law = _law_condition()
    assert LevelCondition.from_dict(json.loads(json.dumps(law.to_dict()))) == law
    with pytest.raises(DataError):
        LevelCondition.from_dict({**entry, "knots": [0.0, 1.0]})


# ---------------------------------------------------------------- the colour gain


def test_a_colour_gain_starts_at_the_fitted_level_and_scales_it_exactly():
    generator = AwareGenerator(width=4, depth=1, gain_width=8)
    clean, z = _gray(size=16), torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    s = torch.full_like(clean, 10 / 255)
    out = generator(generator_input(z, clean, s))
    assert out.shape == (1, 6, 16, 16) and torch.equal(out[:, 3:], torch.zeros_like(clean))
    assert torch.allclose(add_noise(clean, s, out), add_noise(clean, s, z))  # g = 1: the classical draw
    with torch.no_grad():
        generator.gain[-1].bias.copy_(torch.log(torch.tensor([2.0, 1.0, 0.5])))
    noise = add_noise(clean, s, generator(generator_input(z, clean, s))) - clean
    rms = noise.square().mean(dim=(-2, -1)).sqrt().flatten() * 255
    assert torch.allclose(rms, torch.tensor([20.0, 10.0, 5.0]), rtol=1e-4)  # hold_level: exactly s * g in RMS


def test_the_level_likelihood_is_least_at_the_noise_variance():
    noise = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * (8 / 255)
    values = {k: float(level_nll(noise, torch.full_like(noise, k * 8 / 255))) for k in (0.8, 0.95, 1.0, 1.05, 1.25)}
    assert min(values, key=values.get) == 1.0
    log_std = torch.zeros((), requires_grad=True)
    level_nll(noise, (8 / 255) * 0.5 * log_std.exp()).backward()
    assert float(log_std.grad) < 0  # a level too low is pushed up


def test_a_weighted_likelihood_leaves_out_the_images_of_weight_zero():
    g = torch.Generator().manual_seed(0)
    noise = torch.cat([torch.randn(1, 3, 64, 64, generator=g) * (8 / 255), torch.randn(1, 3, 64, 64, generator=g) * (40 / 255)])
    log_std = torch.zeros((), requires_grad=True)
    std = (8 / 255) * log_std.exp() * torch.ones_like(noise)
    assert level_nll(noise, std, weight=torch.tensor([1.0, 0.0])).item() == pytest.approx(level_nll(noise[:1], std[:1]).item(), rel=1e-6)
    assert level_nll(noise, std, weight=torch.ones(2)).item() == pytest.approx(level_nll(noise, std).item(), rel=1e-6)
    level_nll(noise, std, weight=torch.tensor([1.0, 0.0])).backward()
    assert abs(float(log_std.grad)) < 0.05  # the 8/255 image alone: already at its level, the 40/255 one ignored
    none = level_nll(noise, std, weight=torch.zeros(2))
    assert none.item() == 0.0 and none.requires_grad  # still in the graph (DDP needs every parameter used)
    with pytest.raises(ValueError, match="one weight per image"):
        level_nll(noise, std, weight=torch.ones(3))


def test_pairs_without_a_camera_setting_are_marked_only_beside_pairs_with_one():
    data = profile_pairs()
    condition = fit_condition(tiny_aware_config(), data.pairs)
    assert "known" not in LevelPairs(data, condition)[0]  # every pair has its setting
    mixed = PairDataset([Pair(p.name, p.noisy, p.clean, {} if i % 2 else p.meta) for i, p in enumerate(data.pairs)], None, False, 0)
    items = LevelPairs(mixed, condition)
    assert [float(items[i]["known"]) for i in range(4)] == [1.0, 0.0, 1.0, 0.0]
    assert torch.equal(items[1]["level"], condition.fallback.table().float())  # an unlabelled pair: the all-pairs level


def test_the_task_trains_the_gain_by_the_likelihood_alone_at_its_own_rate():
    cfg = tiny_aware_config(generator_kwargs={"width": 4, "depth": 1, "gain_width": 8}, lr_gain=1e-2)
    data = profile_pairs()
    condition = fit_condition(cfg, data.pairs)
    ctx = DistContext()
    task = AwarePnganTask(cfg, Runtime(ctx, "fp32"), TinyDenoiser(4), None, NanGuard(10, ctx), condition)
    assert [g["lr"] for g in task.opt_g.param_groups] == [cfg.lr_g, cfg.lr_gain]
    items = LevelPairs(data, condition)
    batch = {k: torch.stack([items[i][k] for i in (0, 3)]) for k in ("clean", "noisy", "level")}
    _, y_f, _ = task.fake(batch, 0)
    (grad,) = torch.autograd.grad(y_f.sum(), list(task.generator.gain.parameters())[-1], allow_unused=True)
    assert grad is None or not grad.any()  # the fake sees the gain detached: PNGAN's losses cannot move the level
    before = [p.detach().clone() for p in task.generator.gain.parameters()]
    result = task.train_step(batch, 0, diagnose=False)
    assert "L_level" in result.losses and float(result.losses["L_level"]) < 0  # log v of a few /255 is negative
    assert any(not torch.equal(a, b) for a, b in zip(before, task.generator.gain.parameters()))


def test_the_gain_learns_a_level_that_depends_on_another_channel():
    """Real noise whose red-channel level doubles with the clean blue value: the per-channel level
    cannot see it, the gain learns it from the likelihood."""
    torch.manual_seed(0)
    gain = colour_gain(16, 0.2)
    optimizer = torch.optim.Adam(gain.parameters(), 1e-2)
    for _ in range(300):
        clean = torch.rand(8, 3, 8, 8)
        s = torch.full_like(clean, 10 / 255)
        truth = s * torch.cat([1 + clean[:, 2:], torch.ones_like(clean[:, :2])], dim=1)
        loss = level_nll(truth * torch.randn_like(clean), s * gain(torch.cat([clean, 10 * s], dim=1)).exp())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        probe = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 1.0]]).view(2, 3, 1, 1)
        g = gain(torch.cat([probe, torch.full_like(probe, 10 / 255 * 10)], dim=1)).exp().flatten(1)
    assert g[0, 0] == pytest.approx(1.0, abs=0.12) and g[1, 0] == pytest.approx(2.0, abs=0.2)  # red: 1 + blue
    assert g[:, 1:].sub(1).abs().max() < 0.12  # green and blue: unchanged


def test_the_gradient_feature_is_the_central_difference_magnitude_per_channel():
    slopes = torch.tensor([0.01, 0.02, 0.0]).view(1, 3, 1, 1)
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8) * slopes
    g = gradient_magnitude(ramp)
    assert torch.allclose(g[..., 1:-1], slopes.expand(1, 3, 8, 6))
    assert torch.allclose(g[..., 0], slopes[..., 0].expand(1, 3, 8) / 2)  # border replicated: a one-sided half step
    diagonal = ramp + ramp.transpose(-2, -1)
    assert torch.allclose(gradient_magnitude(diagonal)[0, 0, 3, 3], torch.tensor(0.01 * math.sqrt(2)))
    assert not gradient_magnitude(_gray(0.3, size=9)).any()  # a flat image: no gradient


def test_a_gradient_gain_adds_three_inputs_starts_at_one_and_tiles_exactly():
    plain, edged = AwareGenerator(kernel=5, gain_width=32), AwareGenerator(kernel=5, gain_width=32, gain_gradient=True)
    assert models.count_parameters(plain.gain) == 1_379 and models.count_parameters(edged.gain) == 1_379 + 3 * 32
    clean, z = _smooth_image(size=32), torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    s = torch.full_like(clean, 6 / 255)
    assert not edged(generator_input(z, clean, s))[:, 3:].any()  # zero-initialised: g = 1
    net = _shaping_generator(gain_width=8, gain_gradient=True)
    torch.nn.init.normal_(net.gain[-1].weight, std=0.3)
    clean = _smooth_image(size=40) + (torch.arange(40) >= 20).float().view(1, 1, 1, 40) * 0.2  # a vertical edge
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    tiled = AwareGeneratorNoise(net, _condition(), tile=16, overlap=16).for_level(_constant(9.0)).sample(clean, g())
    whole = AwareGeneratorNoise(net, _condition(), tile=0).for_level(_constant(9.0)).sample(clean, g())
    assert torch.equal(tiled, whole)


def test_the_networks_read_the_level_clamped_to_the_trained_range():
    per_channel = NoiseLevel.from_table(KNOTS, [[2 / 255, 4 / 255, 6 / 255], [1 / 255] * 3, [9 / 255, 3 / 255, 3 / 255]])
    condition = LevelCondition(fallback=_constant(5.0), groups={"a": per_channel, "b": _constant(8.0)})
    low, high = condition.input_bounds
    assert np.allclose(np.array(low) * 255, [2, 1, 3]) and np.allclose(np.array(high) * 255, [8, 8, 9])
    z, clean = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    s = torch.tensor([0.5, 5.0, 20.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2) / 255
    read = generator_input(z, clean, s, condition.input_bounds)
    assert torch.equal(read[:, :6], torch.cat([z, clean], dim=1))  # only the level is clamped
    assert torch.allclose(read[:, 6:, 0, 0].flatten() * 255, torch.tensor([2.0, 5.0, 9.0]))
    assert torch.equal(generator_input(z, clean, s)[:, 6:], s)  # no bounds: as given
    net = _shaping_generator(gain_width=8, gain_gradient=True)
    torch.nn.init.normal_(net.gain[-1].weight, std=0.3)
    trained = _condition({"low": 5.0, "high": 20.0})
    image = _smooth_image(size=32)

    def noise(std):
        model = AwareGeneratorNoise(net, trained, margin=None).for_level(_constant(std))
        return model._sample(image, torch.Generator().manual_seed(1)) - image

    # beyond the trained levels G and its gain see the nearest trained one; the noise still
    # scales with the level asked for
    assert torch.allclose(noise(40.0), 2 * noise(20.0), atol=1e-6)
    assert torch.allclose(noise(2.5), 0.5 * noise(5.0), atol=1e-6)
    assert not torch.allclose(noise(10.0), 0.5 * noise(20.0), atol=1e-4)  # within them the level is read


def test_the_gain_learns_a_level_that_rises_on_edges():
    """Real sRGB noise after sharpening and JPEG: twice the level on a strong edge. The level
    function of the clean value cannot see it; the gradient gain learns it from the likelihood."""
    torch.manual_seed(0)
    gain = colour_gain(16, 0.2, inputs=9)
    optimizer = torch.optim.Adam(gain.parameters(), 1e-2)
    for _ in range(300):
        steps = (torch.rand(8, 1, 1, 1) < 0.5).float() * 0.2  # half the images hold an edge of 0.2
        clean = 0.4 + steps * (torch.arange(8) >= 4).float().view(1, 1, 1, 8).expand(8, 3, 8, 8)
        edge = gradient_magnitude(clean)
        s = torch.full_like(clean, 10 / 255)
        truth = s * (1 + 10 * edge)  # 1 where flat, 2 beside the edge (gradient 0.1)
        features = torch.cat([clean, 10 * s, 10 * edge], dim=1)
        loss = level_nll(truth * torch.randn_like(clean), s * gain(features).exp())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        probe = torch.full((2, 3, 1, 1), 0.5)
        edge = torch.tensor([0.0, 0.1]).view(2, 1, 1, 1).expand(2, 3, 1, 1)
        g = gain(torch.cat([probe, torch.full_like(probe, 10 / 255 * 10), 10 * edge], dim=1)).exp().flatten(1)
    assert g[0].sub(1).abs().max() < 0.12 and g[1].sub(2).abs().max() < 0.2


def test_bad_colour_gain_settings_are_refused():
    with pytest.raises(ParamsError, match="lr_gain must be > 0"):
        tiny_aware_config(generator_kwargs={"width": 4, "depth": 1, "gain_width": 8}, lr_gain=0.0)
    for width in (-1, True, 2.5):
        with pytest.raises(ValueError, match="gain_width must be 0"):
            AwareGenerator(gain_width=width)
    for kwargs in ({"gain_gradient": True}, {"gain_width": 8, "gain_gradient": 1}):  # no gain to read it; not a bool
        with pytest.raises(ValueError, match="gain_gradient must be true or false, and needs gain_width"):
            AwareGenerator(**kwargs)
        with pytest.raises(ParamsError, match="^generator(_kwargs)?: network .aware_generator.*gain_gradient"):  # before any stage runs
            tiny_aware_config(generator_kwargs={"width": 4, "depth": 1, **kwargs})
    with pytest.raises(ParamsError, match="generator: network .aware_generator. refuses .*kernel must be"):
        tiny_aware_config(generator_kwargs={"width": 4, "depth": 1, "kernel": 4})


def test_a_generator_file_with_a_colour_gain_generates_at_its_level(tmp_path):
    generator = AwareGenerator(width=4, depth=1, gain_width=8)
    with torch.no_grad():
        generator.gain[-1].bias.fill_(math.log(1.5))
    path = tmp_path / "g.pt"
    save_network_file(path, "generator", "aware_generator", {"width": 4, "depth": 1, "gain_width": 8}, generator,
                      condition=_condition().to_dict(), summary={})
    model = GeneratorNoise.from_file(path).for_group("phone_iso100")
    clean = _gray(size=64)
    noise = model.sample(clean, torch.Generator().manual_seed(0)) - clean
    assert float(noise.std() * 255) == pytest.approx(1.5 * PROFILES["phone_iso100"], rel=0.05)
