"""PNGAN training loop: frozen D_d, discriminator learning, NaN guard, stale checkpoints,
synthetic input, validation, configuration and the key-protocol data order."""

from __future__ import annotations

import csv

import pytest
import torch
from trainer_standins import TinyDenoiser, TinyDiscriminator, tensor_pairs, tiny_gan_config, tiny_pairs

from pngan.data.sampling import StepSampler
from pngan.images import DataError
from pngan.losses import relativistic_d_loss
from pngan.params import ParamsError
from pngan.train import GanConfig, train_pngan
from pngan.train.loop import NanGuard, Runtime, TrainingDiverged
from pngan.train.distributed import DistContext
from pngan.train.gan import PnganTask


def _task(cfg: GanConfig, denoiser: torch.nn.Module, val_set=None) -> PnganTask:
    ctx = DistContext()
    return PnganTask(cfg, Runtime(ctx, "fp32"), denoiser, val_set, NanGuard(cfg.nan_patience, ctx))


def _batch(dataset, cfg: GanConfig, step: int) -> dict[str, torch.Tensor]:
    keys = StepSampler(len(dataset), cfg.batch, cfg.steps, cfg.seed).keys_for_step(step)
    items = [dataset[k] for k in keys]
    return {name: torch.stack([it[name] for it in items]) for name in items[0]}


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- the frozen denoiser -------------------------------------------------------------------


def test_denoiser_is_frozen_while_gradients_reach_the_generator_through_it():
    torch.manual_seed(0)
    denoiser = TinyDenoiser(4).train()
    before_dd = _params(denoiser)
    # only the alignment term: any change of G must come through D_d
    cfg = tiny_gan_config(w_adv=0.0, w_perceptual=0.0, lr_g=1e-2)
    task = _task(cfg, denoiser)
    before_g = _params(task.generator)
    data = tiny_pairs()
    for step in range(3):
        task.train_step(_batch(data, cfg, step), step, diagnose=step == 2)
    assert not denoiser.training
    assert all(p.grad is None and not p.requires_grad for p in denoiser.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before_dd, _params(denoiser)))
    dd_ids = {id(p) for p in denoiser.parameters()}
    for opt in (task.opt_g, task.opt_d):
        in_opt = {id(p) for group in opt.param_groups for p in group["params"]}
        assert not in_opt & dd_ids
        assert not {id(p) for p in opt.state} & dd_ids
    changed = [not torch.equal(a, b) for a, b in zip(before_g, _params(task.generator))]
    assert all(changed)


@pytest.mark.parametrize("d_steps", [1, 2])
def test_only_the_discriminator_steps_give_it_gradients(d_steps):
    cfg = tiny_gan_config(d_steps=d_steps)
    task = _task(cfg, TinyDenoiser(4))
    counts = {id(p): 0 for p in task.discriminator.parameters()}
    for p in task.discriminator.parameters():
        p.register_post_accumulate_grad_hook(lambda param: counts.__setitem__(id(param), counts[id(param)] + 1))
    task.train_step(_batch(tiny_pairs(), cfg, 0), 0, diagnose=True)
    assert set(counts.values()) == {d_steps}  # none from G's step (nor from the diagnostics)
    assert all(p.requires_grad for p in task.discriminator.parameters())


def test_discriminator_learns_an_easy_case():
    """real = clean + strong noise, fake = clean: a few D updates must lower L_D from ln 4."""
    torch.manual_seed(0)
    data = tiny_pairs(n=4, sigma=40.0)
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in ("clean", "noisy")}
    disc = TinyDiscriminator(8)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        c_real, c_fake = disc(torch.cat([batch["noisy"], batch["clean"]])).chunk(2)
        loss = relativistic_d_loss(c_real, c_fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(2 * torch.log(torch.tensor(2.0)).item(), abs=0.15)
    assert losses[-1] < 0.5 * losses[0]


# ---- NaN guard ------------------------------------------------------------------------------


def test_nan_step_is_skipped_without_touching_weights_or_optimizer_state():
    cfg = tiny_gan_config(generator_kwargs={"width": 4, "nan_calls": (1,)})
    task = _task(cfg, TinyDenoiser(4))
    data = tiny_pairs()
    task.train_step(_batch(data, cfg, 0), 0, diagnose=False)
    g_before, d_before = _params(task.generator), _params(task.discriminator)
    adam_steps = [float(s["step"]) for s in task.opt_g.state.values()]
    task.guard.begin_step()
    result = task.train_step(_batch(data, cfg, 1), 1, diagnose=True)
    assert {k: float(v) for k, v in task.guard.flags.items()} == {"L_D": 1.0, "L_G": 1.0}
    assert torch.isnan(result.losses["L1"])
    assert all(torch.equal(a, b) for a, b in zip(g_before, _params(task.generator)))
    assert all(torch.equal(a, b) for a, b in zip(d_before, _params(task.discriminator)))
    assert [float(s["step"]) for s in task.opt_g.state.values()] == adam_steps
    task.guard.begin_step()
    task.train_step(_batch(data, cfg, 2), 2, diagnose=False)
    assert {k: float(v) for k, v in task.guard.flags.items()} == {"L_D": 0.0, "L_G": 0.0}
    assert not all(torch.equal(a, b) for a, b in zip(g_before, _params(task.generator)))


def test_nan_step_is_logged_and_training_continues(tmp_path, capsys):
    cfg = tiny_gan_config(generator_kwargs={"width": 4, "nan_calls": (2,)}, steps=4, log_every=4)
    summary = train_pngan(cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path)
    assert summary["skipped_steps"] == 1
    rows = _read_csv(tmp_path / "train_log.csv")
    assert [(r["step"], r["skipped"]) for r in rows] == [("3", "L_D+L_G"), ("4", "")]
    assert "step 3: non-finite L_D, L_G; update skipped" in capsys.readouterr().out


def test_consecutive_nan_steps_stop_training_with_a_clear_error(tmp_path):
    cfg = tiny_gan_config(generator_kwargs={"width": 4, "nan_calls": tuple(range(1, 10))}, steps=8, nan_patience=3)
    with pytest.raises(TrainingDiverged, match=r"3 consecutive steps with non-finite losses or gradients \(steps 2-4; last: L_D=nan"):
        train_pngan(cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path)


# ---- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_with_other_model_settings_is_moved_aside_not_resumed(tmp_path, capsys):
    torch.manual_seed(0)
    denoiser = TinyDenoiser(4)
    old_cfg = tiny_gan_config(steps=2)
    old_identity = train_pngan(old_cfg, tiny_pairs(), None, denoiser, tmp_path)["identity"]
    old_bytes = (tmp_path / "checkpoint.pt").read_bytes()
    new_cfg = tiny_gan_config(steps=2, generator_kwargs={"width": 6})
    summary = train_pngan(new_cfg, tiny_pairs(), None, denoiser, tmp_path)
    assert summary["resumed_from"] == 0 and summary["identity"] != old_identity
    aside = tmp_path / f"checkpoint.pt.stale-{old_identity}"
    assert aside.read_bytes() == old_bytes
    assert (tmp_path / f"train_log.csv.stale-{old_identity}").exists()
    out = capsys.readouterr().out
    assert (
        f"made with other model-shaping settings, input weights, training data or code (identity {old_identity}, now {summary['identity']}); "
        f"moved aside to {aside.name} and starting fresh"
    ) in out
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["identity"] == summary["identity"] and state["models"]["generator"]["head.weight"].shape[0] == 6
    # the same settings again: resumed (nothing left to do), nothing moved
    summary = train_pngan(new_cfg, tiny_pairs(), None, denoiser, tmp_path)
    assert summary["resumed_from"] == 2 and len(list(tmp_path.glob("checkpoint.pt.stale-*"))) == 1
    # the same settings with another frozen denoiser: not resumed either
    summary = train_pngan(new_cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path)
    assert summary["resumed_from"] == 0 and len(list(tmp_path.glob("checkpoint.pt.stale-*"))) == 2


def test_an_inert_loss_term_is_reported(tmp_path, capsys):
    # raw (unnormalised) features scaled far down: the perceptual pull vanishes next to L1's
    cfg = tiny_gan_config(steps=2, log_every=1, perceptual_norm="none", w_perceptual=1e-9)
    train_pngan(cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path)
    out = capsys.readouterr().out
    assert out.count("warning: the weighted perceptual term's gradient on G is") == 1 and "nearly inert" in out
    rows = _read_csv(tmp_path / "train_log.csv")
    assert all(float(r["gradnorm_perceptual"]) < 1e-3 * float(r["gradnorm_l1"]) for r in rows)


def test_final_generator_file_describes_itself(tmp_path):
    cfg = tiny_gan_config(steps=2, input_sigma=30 / 255)
    train_pngan(cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path)
    state = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert state["format"] == "pngan-generator" and state["arch"] == "trainer_standins:TinyGenerator"
    assert state["kwargs"] == {"width": 4}
    assert state["input"] == {"setting": 1, "noise": "trainer_standins:StandinAWGN", "noise_kwargs": {}}
    assert state["summary"]["steps"] == 2 and state["summary"]["perceptual"] == "denoiser:body"
    assert set(state["state_dict"]) == {"head.weight", "head.bias", "tail.weight", "tail.bias"}


# ---- synthetic input ------------------------------------------------------------------------


def test_fresh_input_noise_per_step_and_fixed_mode_per_image():
    cfg = tiny_gan_config()
    task = _task(cfg, TinyDenoiser(4))
    batch = _batch(tiny_pairs(), cfg, 0)
    a, b = task.synthetic_input(batch, 0), task.synthetic_input(batch, 1)
    assert not torch.equal(a, b) and torch.equal(a, task.synthetic_input(batch, 0))
    assert torch.equal(a * 255, (a * 255).round())  # 8-bit levels

    from pngan.train.gan import with_fixed_input

    data = tiny_pairs(crop=None)
    fixed = with_fixed_input(data, tiny_gan_config(input_noise_fixed=True, input_noise_kwargs={"sigma": 0.1}))
    n = len(data)
    first, again = fixed[1], fixed[1 + 5 * n]
    assert torch.equal(first["synthetic"], again["synthetic"])
    assert (first["synthetic"] - first["clean"]).std().item() == pytest.approx(0.1, rel=0.15)
    with pytest.raises(ValueError, match="input_noise_fixed needs a dataset with a `with_synthetic` method"):
        with_fixed_input([data[0]], cfg)


def test_input_spec_of_the_two_settings():
    from pngan.noise.synthetic import input_spec

    assert input_spec(GanConfig(input_sigma=0.1).to_dict()) == {"setting": 1, "noise": "awgn", "noise_kwargs": {"sigma": 0.1}}
    assert input_spec(GanConfig(setting=2).to_dict()) == {"setting": 2, "noise": "camera_random", "noise_kwargs": {}}


# ---- validation -----------------------------------------------------------------------------


def test_validation_scores_the_generator_against_real_noise(tmp_path):
    pytest.importorskip("pngan.metrics")
    from trainer_standins import StandinAWGN

    sigma = 20 / 255
    g = torch.Generator().manual_seed(5)
    clean = torch.rand(6, 3, 24, 24, generator=g) * 0.6 + 0.2
    real = StandinAWGN(sigma).sample(clean, torch.Generator().manual_seed(9))
    to8 = lambda t: (t * 255).round().to(torch.uint8)  # noqa: E731
    val = tensor_pairs(to8(clean), to8(real), crop=16, augment=False)
    # an identity generator (zero tail, learning rates ~0): its fakes are the synthetic input itself
    cfg = tiny_gan_config(
        steps=1, lr_g=1e-20, lr_d=1e-20, lr_min=1e-21, generator_kwargs={"width": 4, "zero_init_last": True}, input_noise_kwargs={"sigma": sigma}
    )
    summary = train_pngan(cfg, tiny_pairs(), val, TinyDenoiser(4), tmp_path)
    v = summary["validation"]
    assert set(v) == {"akld", "kld", "akld_input", "std_fake_255", "std_real_255"}
    assert v["akld"] == pytest.approx(v["akld_input"], rel=1e-9)
    assert 0 < v["akld"] < 0.2  # two draws of one noise law
    assert v["std_real_255"] == pytest.approx(20, rel=0.1) and v["std_fake_255"] == pytest.approx(20, rel=0.1)
    rows = _read_csv(tmp_path / "val_log.csv")
    assert [r["step"] for r in rows] == ["1"] and float(rows[0]["akld"]) == pytest.approx(v["akld"], rel=1e-5)


# ---- configuration --------------------------------------------------------------------------


def test_config_from_dict_parses_yaml_numbers_and_names_unknown_keys():
    cfg = GanConfig.from_dict({"lr_g": "2e-4", "input_sigma": "50/255", "betas": [0.5, "0.999"], "generator_kwargs": {"width": 8}})
    assert cfg.lr_g == 2e-4 and cfg.input_sigma == pytest.approx(50 / 255) and cfg.betas == (0.5, 0.999)
    with pytest.raises(ParamsError, match=r"train_pngan: unknown parameter 'w_advv' \(did you mean 'w_adv'\?\)"):
        GanConfig.from_dict({"w_advv": 1.0}, where="train_pngan")
    with pytest.raises(ParamsError, match=r"GanConfig.steps: expected an integer, got 'many'"):
        GanConfig.from_dict({"steps": "many"})
    with pytest.raises(ParamsError, match="setting must be 1 or 2, got 3"):
        GanConfig.from_dict({"setting": 3})


def test_identity_hash_covers_model_settings_not_schedule_length():
    base = GanConfig()
    assert GanConfig(steps=5, log_every=1, device="cpu").identity_hash() == base.identity_hash()
    for change in ({"generator_kwargs": {"width": 32}}, {"setting": 2}, {"w_adv": 1e-3}, {"discriminator_kwargs": {"width": 32}}):
        assert GanConfig(**change).identity_hash() != base.identity_hash()


# ---- data order and the key protocol ---------------------------------------------------------


def test_step_sampler_keys_are_reproducible_per_step_and_unique():
    full = list(StepSampler(5, 3, 6, seed=1))
    assert len(full) == 18 and len(set(full)) == 18
    assert list(StepSampler(5, 3, 6, seed=1, start_step=4)) == full[12:]
    assert all(0 <= k % 5 < 5 for k in full)
    assert [k // 5 for k in full] == list(range(18))  # u: the unique global sample number
    rank1 = list(StepSampler(5, 3, 6, seed=1, rank=1, world_size=2))
    assert not set(rank1) & set(StepSampler(5, 3, 6, seed=1, rank=0, world_size=2))


def test_pair_dataset_crops_and_flips_clean_and_noisy_identically():
    g = torch.Generator().manual_seed(0)
    clean = (torch.rand(2, 3, 20, 24, generator=g) * 255).to(torch.uint8)
    data = tensor_pairs(clean, 255 - clean, crop=8, seed=3)
    seen = set()
    for key in range(40):
        item = data[key]
        assert item["clean"].shape == (3, 8, 8)
        assert torch.allclose(item["clean"] + item["noisy"], torch.ones(3, 8, 8))
        assert torch.equal(item["clean"], data[key]["clean"])
        seen.add(item["clean"].sum().item())
    assert len(seen) > 30  # fresh crops per key
    with pytest.raises(DataError, match="clean 0: 24x20 image is smaller than the 21x21 crop"):
        tensor_pairs(clean, clean, crop=21)[0]


def test_channels_last_trains_the_same_networks_and_keeps_the_run_identity(tmp_path):
    """NHWC storage is a speed option: same updates (to float rounding), same identity, so a
    run may switch it on or off between resumptions."""
    trained = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        cfg = tiny_gan_config(steps=3, channels_last=channels_last)
        summary = train_pngan(cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path / str(channels_last))
        state = torch.load(tmp_path / str(channels_last) / "checkpoint.pt", weights_only=False)
        trained[channels_last] = (summary["identity"], state["models"]["generator"])
    assert trained[False][0] == trained[True][0]
    for name, value in trained[False][1].items():
        assert torch.allclose(value, trained[True][1][name], atol=1e-5), name
    cl = tiny_gan_config(channels_last=True)
    task = _task(cl, TinyDenoiser(4))
    conv = next(p for p in task.generator.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
