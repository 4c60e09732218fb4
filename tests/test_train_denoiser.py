"""Denoiser training: losses, mixing real and generated pairs, learning, validation, init weights."""

from __future__ import annotations

import csv

import pytest
import torch
from torch.utils.data import Dataset
from trainer_standins import tiny_denoiser_config, tiny_pairs

from pngan.data.sampling import MixedPairDataset
from pngan.train import train_denoiser
from pngan.errors import CheckpointError
from pngan.models.files import load_network_file
from pngan.train.denoiser import restoration_loss


class Untouchable(Dataset):
    """A data set that fails the test if anything reads it."""

    def __len__(self) -> int:
        raise AssertionError("the fake data set was touched")

    def __getitem__(self, key):
        raise AssertionError("the fake data set was touched")


class Tagged(Dataset):
    """Returns which set a sample came from and the key it was asked for."""

    def __init__(self, tag: float, n: int):
        self.tag, self.n = tag, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        return {"tag": torch.tensor(self.tag), "key": torch.tensor(key)}


def test_restoration_losses():
    a, b = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]])
    assert restoration_loss(a, b, "l1").item() == pytest.approx(0.75)
    assert restoration_loss(a, b, "mse").item() == pytest.approx((0.25 + 1.0) / 2)
    want = ((0.25 + 1e-2) ** 0.5 + (1.0 + 1e-2) ** 0.5) / 2
    assert restoration_loss(a, b, "charbonnier", eps=0.1).item() == pytest.approx(want)
    with pytest.raises(ValueError, match="loss must be l1, charbonnier or mse, got 'l2'"):
        restoration_loss(a, b, "l2")


def test_fake_ratio_zero_never_touches_the_fake_set_and_one_never_the_real():
    real_only = MixedPairDataset(Tagged(0.0, 5), Untouchable(), 0.0, seed=1)
    assert len(real_only) == 5 and all(real_only[k]["tag"] == 0 for k in range(200))
    fake_only = MixedPairDataset(Untouchable(), Tagged(1.0, 3), 1.0, seed=1)
    assert len(fake_only) == 3 and all(fake_only[k]["tag"] == 1 for k in range(200))
    with pytest.raises(ValueError, match="needs a dataset of generated pairs"):
        MixedPairDataset(Tagged(0.0, 5), None, 0.3)


def test_mixed_draws_follow_the_ratio_and_give_unique_keys():
    mixed = MixedPairDataset(Tagged(0.0, 5), Tagged(1.0, 3), 0.25, seed=2)
    items = [mixed[k] for k in range(800)]
    share = sum(float(it["tag"]) for it in items) / len(items)
    assert share == pytest.approx(0.25, abs=0.05)
    assert int(mixed[7]["key"]) == int(items[7]["key"])  # a key always gives the same sample
    for tag, n in ((0.0, 5), (1.0, 3)):
        keys = [int(it["key"]) for it in items if float(it["tag"]) == tag]
        assert len(set(keys)) == len(keys)  # every sample asks for a fresh crop
        assert all(k // n == i for k, i in zip(keys, [k for k in range(800) if float(items[k]["tag"]) == tag]))


def test_training_with_fake_ratio_zero_ignores_the_fake_set(tmp_path):
    mixed = MixedPairDataset(tiny_pairs(), Untouchable(), 0.0)
    summary = train_denoiser(tiny_denoiser_config(steps=2), mixed, None, tmp_path)
    assert summary["steps"] == 2 and summary["fake_ratio"] == 0.0


def _l1(network: torch.nn.Module, data) -> float:
    batch = [data[k] for k in range(len(data))]
    noisy, clean = torch.stack([b["noisy"] for b in batch]), torch.stack([b["clean"] for b in batch])
    with torch.no_grad():
        return (network(noisy) - clean).abs().mean().item()


def test_denoiser_learns(tmp_path):
    torch.manual_seed(0)
    train = tiny_pairs(n=6, sigma=40.0, smooth=True)
    check = tiny_pairs(n=6, sigma=40.0, crop=None, seed=1, smooth=True)
    cfg = tiny_denoiser_config(steps=60, lr=5e-3, batch=4, ckpt_every=60, log_every=30, arch_kwargs={"width": 8})
    train_denoiser(cfg, train, None, tmp_path)
    with pytest.raises(CheckpointError, match="is a code path; a file may only name the kit's networks"):
        load_network_file(tmp_path / "denoiser.pt", "denoiser")  # the file names the user's own class
    trained, info = load_network_file(tmp_path / "denoiser.pt", "denoiser", arch=cfg.arch)  # the user's setting may
    assert info["format"] == "pngan-denoiser" and info["summary"]["steps"] == 60
    noisy_l1 = sum((check[k]["noisy"] - check[k]["clean"]).abs().mean().item() for k in range(6)) / 6
    assert _l1(trained, check) < 0.85 * noisy_l1


def test_validation_reports_psnr(tmp_path):
    pytest.importorskip("pngan.metrics")
    from pngan.metrics import psnr

    val = tiny_pairs(n=3, crop=None, seed=4)
    summary = train_denoiser(tiny_denoiser_config(steps=2, val_every=1), tiny_pairs(), val, tmp_path)
    noisy = torch.stack([val[k]["noisy"] for k in range(3)])
    clean = torch.stack([val[k]["clean"] for k in range(3)])
    assert summary["validation"]["psnr_input"] == pytest.approx(float(psnr(noisy, clean).mean()), rel=1e-9)
    with open(tmp_path / "val_log.csv", newline="") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["1", "2"]


def test_initial_weights_are_loaded_and_checked(tmp_path):
    train_denoiser(tiny_denoiser_config(steps=1), tiny_pairs(), None, tmp_path / "a")
    start = torch.load(tmp_path / "a" / "denoiser.pt", weights_only=True)["state_dict"]
    # a learning rate of ~0: the fine-tuned weights are the initial ones
    cfg = tiny_denoiser_config(steps=1, lr=1e-30, lr_min=1e-31, init=str(tmp_path / "a" / "denoiser.pt"))
    summary = train_denoiser(cfg, tiny_pairs(), None, tmp_path / "b")
    assert summary["initialised_from"] == str(tmp_path / "a" / "denoiser.pt")
    tuned = torch.load(tmp_path / "b" / "denoiser.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(start[k], tuned[k], atol=1e-20) for k in start)
    with pytest.raises(CheckpointError, match="initial weights.*do not fit TinyDenoiser"):
        train_denoiser(tiny_denoiser_config(steps=1, arch_kwargs={"width": 6}), tiny_pairs(), None, tmp_path / "c", init=tmp_path / "a" / "denoiser.pt")
    assert not (tmp_path / "c" / "denoiser.pt").exists()


def test_a_multi_stage_network_trains_on_the_sum_of_its_stage_losses(tmp_path):
    """MPRNet returns [stage 3, stage 2, stage 1]: the loss covers all three, validation the first."""
    from pngan.models import final_output

    target = torch.zeros(1, 3, 4, 4)
    stages = [torch.full((1, 3, 4, 4), v) for v in (0.1, 0.2, 0.3)]
    assert float(restoration_loss(stages, target, "l1")) == pytest.approx(0.6)
    assert final_output(stages) is stages[0]
