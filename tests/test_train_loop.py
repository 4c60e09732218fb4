"""The training loop's memory layout: NHWC only where its gradients are right."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pngan.models.aware import AwareGenerator
from pngan.models.ridnet import RIDNet
from pngan.train.distributed import DistContext
from pngan.train.loop import Runtime, use_channels_last

CPU_BF16 = Runtime(DistContext(), "bf16")


def _weight_grad(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor, bf16: bool, channels_last: bool) -> torch.Tensor:
    conv = copy.deepcopy(conv)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    y.float().backward(grad)
    return conv.weight.grad


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_dilated_conv_gradients_are_right_in_the_training_layout(dilation):
    """A CPU bf16 run keeps a dilated conv NCHW, and its weight gradient then matches fp32 to bf16
    precision. With NHWC, PyTorch 2.13 gives gradients off by about their own size (dilation 2)
    or non-finite (3), so this fails if the guard goes."""
    torch.manual_seed(dilation)
    conv = nn.Conv2d(40, 40, 3, padding=dilation, dilation=dilation)
    x, grad = torch.randn(8, 40, 64, 64), torch.randn(8, 40, 64, 64)
    reference = _weight_grad(conv, x, grad, bf16=False, channels_last=False)
    nhwc = use_channels_last(True, CPU_BF16, conv)
    assert nhwc == (dilation == 1)
    got = _weight_grad(conv, x, grad, bf16=True, channels_last=nhwc)
    assert torch.isfinite(got).all()
    assert float((got - reference).abs().max() / reference.abs().max()) < 0.05


@pytest.mark.parametrize("dilation", [2, 3, 4])
def test_a_frozen_dilated_conv_passes_right_input_gradients_in_nhwc_bf16(dilation):
    """The bug of the test above is in the weight gradient only: a frozen dilated conv (PNGAN's
    D_d, which G's gradient flows through) gives the input gradient of fp32 to bf16 precision
    in NHWC too, which is why `use_channels_last` lets a task with a frozen one run NHWC."""
    torch.manual_seed(dilation)
    conv = nn.Conv2d(40, 40, 3, padding=dilation, dilation=dilation).requires_grad_(False)
    x, grad = torch.randn(8, 40, 64, 64), torch.randn(8, 40, 64, 64)

    def input_grad(bf16, channels_last):
        layer, inp = copy.deepcopy(conv), x.clone()
        if channels_last:
            layer, inp = layer.to(memory_format=torch.channels_last), inp.to(memory_format=torch.channels_last)
        inp.requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = layer(inp)
        y.float().backward(grad)
        return inp.grad.float()

    reference = input_grad(bf16=False, channels_last=False)
    got = input_grad(bf16=True, channels_last=True)
    assert torch.isfinite(got).all()
    assert float((got - reference).abs().max() / reference.abs().max()) < 0.05


def test_channels_last_is_used_wherever_it_is_safe():
    plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    assert use_channels_last(True, CPU_BF16, plain, None)
    assert plain[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not use_channels_last(False, CPU_BF16, nn.Conv2d(3, 8, 3))  # not asked for
    for network in (AwareGenerator(width=8, depth=2), RIDNet(n_feats=8, n_blocks=1, reduction=4, mean_shift=False)):
        # the dilated networks of the kit: NCHW on a CPU bf16 run, NHWC in fp32 (where it is right)
        before = copy.deepcopy(network)
        assert not use_channels_last(True, CPU_BF16, network, plain)
        assert all(p.is_contiguous() for p in network.parameters())
        assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), network.state_dict().values()))
        assert use_channels_last(True, Runtime(DistContext(), "fp32"), network)


def test_frozen_dilated_networks_keep_nhwc_and_trained_ones_do_not():
    """The guard counts only dilated convs that train: PNGAN's task with a frozen RIDNet D_d runs
    NHWC on a CPU bf16 run (its G and D are plain); the noise-aware task, whose G is dilated,
    and a RIDNet being trained, run NCHW."""
    from trainer_standins import profile_pairs, tiny_aware_config, tiny_gan_config

    from pngan.train.aware import AwarePnganTask, fit_condition
    from pngan.train.gan import PnganTask
    from pngan.train.loop import NanGuard

    def ridnet():
        return RIDNet(n_feats=8, n_blocks=1, reduction=4, mean_shift=False)

    guard = NanGuard(10, DistContext())
    pngan = PnganTask(tiny_gan_config(channels_last=True), CPU_BF16, ridnet(), None, guard)
    assert pngan.channels_last
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in pngan.denoiser.parameters() if p.dim() == 4)
    frozen = ridnet().requires_grad_(False)
    assert use_channels_last(True, CPU_BF16, frozen) and not use_channels_last(True, CPU_BF16, ridnet())
    cfg = tiny_aware_config(channels_last=True, generator_kwargs={"width": 4, "depth": 2})  # block 2: dilation 2
    condition = fit_condition(cfg, profile_pairs().pairs)
    assert not AwarePnganTask(cfg, CPU_BF16, ridnet(), None, guard, condition).channels_last
