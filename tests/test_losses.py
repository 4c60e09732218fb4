"""PNGAN losses against hand computations (METHOD.md section 1.3-1.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from trainer_standins import TinyDenoiser

from pngan.losses import (
    DenoiserFeatures,
    alignment_l1,
    auto_feature_layer,
    perceptual,
    relativistic_d_loss,
    relativistic_g_loss,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _hand_losses(c_real: np.ndarray, c_fake: np.ndarray, mean_over: str) -> tuple[float, float]:
    """L_D and L_G written out with explicit sigmoid and log (float64)."""
    axis = None if mean_over == "batch_space" else 0
    mean_fake = c_fake.mean(axis=axis, keepdims=axis is not None)
    mean_real = c_real.mean(axis=axis, keepdims=axis is not None)
    d_real_fake = _sigmoid(c_real - mean_fake)  # D_Ra(y_r, y_f)
    d_fake_real = _sigmoid(c_fake - mean_real)  # D_Ra(y_f, y_r)
    loss_d = -np.mean(np.log(d_real_fake)) - np.mean(np.log(1.0 - d_fake_real))
    loss_g = -np.mean(np.log(1.0 - d_real_fake)) - np.mean(np.log(d_fake_real))
    return float(loss_d), float(loss_g)


@pytest.mark.parametrize("mean_over", ["batch_space", "batch"])
def test_relativistic_losses_equal_hand_computation(mean_over):
    rng = np.random.default_rng(3)
    c_real = rng.normal(0.5, 1.5, size=(3, 1, 2, 4))
    c_fake = rng.normal(-0.3, 1.0, size=(3, 1, 2, 4))
    want_d, want_g = _hand_losses(c_real, c_fake, mean_over)
    got_d = relativistic_d_loss(torch.tensor(c_real), torch.tensor(c_fake), mean_over)
    got_g = relativistic_g_loss(torch.tensor(c_real), torch.tensor(c_fake), mean_over)
    assert got_d.item() == pytest.approx(want_d, rel=1e-6)
    assert got_g.item() == pytest.approx(want_g, rel=1e-6)


def test_the_two_mean_options_differ():
    c_real = torch.tensor([[[[2.0, -1.0]]], [[[0.0, 3.0]]]])
    c_fake = torch.tensor([[[[1.0, 0.0]]], [[[-2.0, 1.0]]]])
    assert relativistic_d_loss(c_real, c_fake, "batch") != pytest.approx(relativistic_d_loss(c_real, c_fake, "batch_space").item())


def test_bce_path_is_stable_for_extreme_logits():
    ones = torch.ones(2, 1, 3, 3)
    # D perfectly right: L_D ~ 0, L_G = softplus(200) + softplus(200) = 400
    c_real, c_fake = (100 * ones).requires_grad_(), (-100 * ones).requires_grad_()
    assert relativistic_d_loss(c_real, c_fake).item() == pytest.approx(0.0, abs=1e-30)
    loss_g = relativistic_g_loss(c_real, c_fake)
    assert loss_g.item() == pytest.approx(400.0)
    loss_g.backward()
    assert torch.isfinite(c_real.grad).all() and torch.isfinite(c_fake.grad).all()
    # D perfectly wrong: L_D = 400, gradients finite
    c_real, c_fake = (-100 * ones).requires_grad_(), (100 * ones).requires_grad_()
    loss_d = relativistic_d_loss(c_real, c_fake)
    assert loss_d.item() == pytest.approx(400.0)
    loss_d.backward()
    assert torch.isfinite(c_real.grad).all() and c_real.grad.abs().sum() > 0


def test_bf16_logits_are_computed_in_float32():
    c_real = torch.full((1, 1, 2, 2), 100.0, dtype=torch.bfloat16)
    c_fake = torch.full((1, 1, 2, 2), -100.0, dtype=torch.bfloat16)
    loss = relativistic_g_loss(c_real, c_fake)
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(400.0)


def test_logit_maps_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        relativistic_d_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 3))
    with pytest.raises(ValueError, match="mean_over must be"):
        relativistic_d_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), "space")


def test_alignment_l1_is_the_mean_absolute_difference():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    b = torch.tensor([[[[1.0, 1.0], [0.0, 7.0]]]])
    assert alignment_l1(a, b).item() == pytest.approx((1 + 0 + 2 + 4) / 4)


def test_channel_normalised_perceptual_ignores_feature_scale():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2, 3, 5, 5, generator=g)
    fake = real + 0.5 * torch.randn(2, 3, 5, 5, generator=g)
    scale = torch.tensor([0.1, 1.0, 5.0]).view(1, 3, 1, 1)
    base = perceptual(real, fake, "channel")
    assert perceptual(real * scale, fake * scale, "channel").item() == pytest.approx(base.item(), rel=1e-4)
    # raw features: the term shrinks with the features (the vanishing term of METHOD.md section 6)
    assert perceptual(real * 1e-3, fake * 1e-3, "none").item() == pytest.approx(perceptual(real, fake, "none").item() * 1e-6, rel=1e-4)
    # channel normalisation: divide by the per-channel std of real and fake features pooled
    std = torch.cat([real, fake]).std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    want = (((fake - real) / std) ** 2).mean()
    assert base.item() == pytest.approx(want.item(), rel=1e-4)
    assert perceptual(real, real, "channel").item() == 0.0
    # a dead channel in the reference is not blown up
    dead = real.clone()
    dead[:, 0] = 0.0
    assert perceptual(dead, fake, "channel").item() < 10


def test_denoiser_features_capture_the_named_module():
    net = TinyDenoiser(4).eval()
    x = torch.rand(2, 3, 8, 8)
    feats = DenoiserFeatures(net, "head")
    out, feat = feats(x)
    assert torch.equal(out, net(x))
    assert torch.equal(feat, net.head(x))
    with pytest.raises(ValueError, match="perceptual_layer 'nope' is not a module of TinyDenoiser; modules: head, body, tail"):
        DenoiserFeatures(net, "nope")


def test_auto_feature_layer_picks_the_deepest_full_resolution_features():
    assert auto_feature_layer(TinyDenoiser(4)) == "body"
    dncnn_like = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1))
    assert auto_feature_layer(dncnn_like) == "3"
    with pytest.raises(ValueError, match="set perceptual_layer"):
        auto_feature_layer(nn.Conv2d(3, 3, 1))
