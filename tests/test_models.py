"""Networks PNGAN trains and freezes: counts, layouts, shapes, and what each forward must do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pngan.models import build, count_parameters
from pngan.models.blocks import BlurPool2d, ChannelAttention1d, pad_to_multiple
from pngan.models.dncnn import DnCNN
from pngan.models.ridnet import RGB_MEAN, RIDNet
from pngan.models.simnet import SIMNet
from pngan.models.smnet import SMNet
from pngan.models.vgg import VGG19Features, vgg19_layer_names
from pngan.models.weights import check_layout

LAYOUTS = Path(__file__).parent / "data" / "layouts"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- parameter counts and state-dict sizes at the paper / released configurations -------------

@pytest.mark.parametrize(
    "make, params, entries",
    [
        (lambda: SMNet(), 1_725_433, 88),
        (lambda: SIMNet(), 802_207, 71),
        (lambda: build("pixel_discriminator"), 371_329, 13),
        (lambda: RIDNet(), 1_499_371, 104),
        (lambda: DnCNN(), 559_363, 109),
        (lambda: DnCNN.kair_color(), 668_227, 40),
        (lambda: VGG19Features(), 20_024_384, 32),
    ],
    ids=["smnet", "simnet", "discriminator", "ridnet", "dncnn_pgap", "dncnn_kair", "vgg19"],
)
def test_parameter_count_and_entries(make, params, entries):
    model = make()
    assert count_parameters(model) == params
    assert len(model.state_dict()) == entries


def test_ridnet_layout_equals_official_in_both_modes():
    check_layout(RIDNet(mean_shift=True), LAYOUTS / "ridnet.json")
    check_layout(RIDNet(mean_shift=False), LAYOUTS / "ridnet.json")


def test_dncnn_kair_layout_equals_official():
    check_layout(DnCNN.kair_color(), LAYOUTS / "dncnn_kair_color.json")


def test_check_layout_reports_the_difference():
    with pytest.raises(AssertionError, match=r"keys absent from the model \(2\): model\.38\.weight, model\.38\.bias"):
        check_layout(DnCNN(depth=19, batch_norm=False), LAYOUTS / "dncnn_kair_color.json")
    # every entry but the tail bias [3] changes with the width
    with pytest.raises(AssertionError, match=r"wrong shapes \(39\): model\.0\.weight \[32, 3, 3, 3\] vs layout \[64"):
        check_layout(DnCNN(depth=20, width=32, batch_norm=False), LAYOUTS / "dncnn_kair_color.json")


def test_simnet_shares_one_cau_per_block_and_one_prelu():
    block = SIMNet().body[0].body[0]
    assert block.blocks[0][0] is block.blocks[0][1]
    prelus = {id(m) for m in SIMNet(n_feat=8).modules() if isinstance(m, torch.nn.PReLU)}
    assert len(prelus) == 1


# --- any H, W: output shape equals input shape -------------------------------------------------

TINY = {
    "smnet": lambda: SMNet(width=8, n_groups=1, n_mab=1),
    "simnet": lambda: SIMNet(n_feat=8, n_rrg=1, n_msrb=1),
    "ridnet_official": lambda: RIDNet(n_feats=16, n_blocks=1, reduction=4, mean_shift=True),
    "ridnet_pngan": lambda: RIDNet(n_feats=16, n_blocks=1, reduction=4, mean_shift=False),
    "dncnn_bn": lambda: DnCNN(depth=4, width=8),
    "dncnn_plain": lambda: DnCNN(depth=4, width=8, batch_norm=False, residual=False),
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("size", [(37, 53), (2, 3)])
def test_output_shape_equals_input_shape(name, size):
    model = TINY[name]().eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_discriminator_gives_one_logit_per_pixel_with_a_7x7_receptive_field():
    disc = build("pixel_discriminator", width=8).eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        base = disc(x)
        x[0, :, 20, 30] += 1.0
        changed = (disc(x) - base).abs()[0, 0] > 0
    assert base.shape == (1, 1, 37, 53)
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (17, 23, 27, 33)


def test_discriminator_returns_unbounded_logits():
    disc = build("pixel_discriminator", width=8).eval()
    with torch.no_grad():
        disc.net[7].bias.fill_(-5.0)
        out = disc(torch.rand(1, 3, 9, 9))
    assert out.max() < 0  # a sigmoid output could never be negative


# --- generators start as the identity when their last layer is zero ---------------------------

@pytest.mark.parametrize(
    "make",
    [
        lambda z: SMNet(width=8, n_groups=2, n_mab=1, zero_init_last=z),
        lambda z: SIMNet(n_feat=8, n_rrg=1, zero_init_last=z),
    ],
    ids=["smnet", "simnet"],
)
def test_generator_is_identity_when_last_layer_is_zero(make):
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert torch.equal(make(True)(x), x)
        assert not torch.allclose(make(False)(x), x, atol=1e-4)


def test_smnet_gradients_reach_every_parameter():
    model = SMNet(width=8, n_groups=1, n_mab=1, zero_init_last=False)
    model(torch.rand(1, 3, 16, 20)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# --- shared blocks -----------------------------------------------------------------------------

def test_blurpool_is_the_normalised_121_filter_then_stride_2():
    pool = BlurPool2d(channels=1)
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[0, 0, 3, 3] = 1.0
    out = pool(impulse)[0, 0]
    assert out.shape == (4, 4)
    expected = torch.zeros(4, 4)
    expected[1:3, 1:3] = 1 / 16  # (3, 3) sits diagonally next to the samples (2|4, 2|4)
    assert torch.allclose(out, expected)
    assert torch.allclose(pool(torch.full((1, 1, 7, 7), 0.3)), torch.full((1, 1, 4, 4), 0.3))


def test_channel_attention_with_zero_weights_scales_by_one_and_a_half():
    ca = ChannelAttention1d(3)
    torch.nn.init.zeros_(ca.conv.weight)
    x = torch.randn(2, 5, 4, 6)
    assert torch.allclose(ca(x), 1.5 * x)


def test_pad_to_multiple_reflects_and_keeps_the_original_corner():
    x = torch.arange(15.0).view(1, 1, 3, 5)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 8)
    assert torch.equal(padded[..., :3, :5], x)
    assert torch.equal(padded[0, 0, 3, :5], x[0, 0, 1])  # reflect: row 3 mirrors row 1


# --- RIDNet's two forward modes -------------------------------------------------------------

def _tiny_ridnet(mean_shift: bool, rgb_range: float = 255.0) -> RIDNet:
    torch.manual_seed(1)
    return RIDNet(n_feats=16, n_blocks=2, reduction=4, mean_shift=mean_shift, rgb_range=rgb_range).eval()


def test_ridnet_official_forward_is_the_pngan_forward_on_the_mean_shifted_255_scale():
    official, pngan = _tiny_ridnet(True), _tiny_ridnet(False)
    pngan.load_state_dict(official.state_dict())  # one state dict serves both modes
    x = torch.rand(1, 3, 19, 23)
    mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        # official: x' = 255x; out = x' + tail(...(x' - 255m)) + 255m; the PNGAN forward on
        # z = 255(x - m) is z + tail(...(z)), so official = (pngan(z) + 2 * 255 m) / 255.
        expected = (pngan(255 * (x - mean)) + 2 * 255 * mean) / 255
        got = official(x)
        assert torch.allclose(got, expected, atol=1e-4)
        assert (got - pngan(x)).abs().max() > 1e-3  # the modes really differ on [0, 1] input


def test_ridnet_modes_agree_when_mean_shift_is_the_identity():
    official, pngan = _tiny_ridnet(True, rgb_range=1.0), _tiny_ridnet(False, rgb_range=1.0)
    with torch.no_grad():
        official.sub_mean.bias.zero_()
        official.add_mean.bias.zero_()
    pngan.load_state_dict(official.state_dict())
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        assert torch.allclose(official(x), pngan(x), atol=1e-6)


def test_ridnet_mean_shift_layers_are_frozen_constants():
    model = RIDNet(n_feats=16, n_blocks=1, reduction=4)
    assert torch.allclose(model.sub_mean.bias, -255 * torch.tensor(RGB_MEAN))
    assert torch.equal(model.add_mean.weight.view(3, 3), torch.eye(3))
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"}


# --- DnCNN ------------------------------------------------------------------------------------

def test_dncnn_residual_subtracts_the_predicted_noise():
    x = torch.rand(1, 3, 9, 11)
    for residual, expected in ((True, x), (False, torch.zeros_like(x))):
        model = DnCNN(depth=3, width=8, residual=residual).eval()
        torch.nn.init.zeros_(model.model[-1].weight)
        torch.nn.init.zeros_(model.model[-1].bias)
        with torch.no_grad():
            assert torch.equal(model(x), expected)


def test_dncnn_batch_norm_flag_places_bn_after_inner_convs_only():
    kinds = [type(m).__name__ for m in DnCNN(depth=4, width=8).model]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]


# --- VGG19 features -----------------------------------------------------------------------------

def _torchvision_vgg19_feature_layout() -> dict[str, list[int]]:
    """torchvision/models/vgg.py cfgs['E'] written out: conv indices and channel widths."""
    convs = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
             14: (256, 256), 16: (256, 256), 19: (256, 512), 21: (512, 512), 23: (512, 512),
             25: (512, 512), 28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}
    keys: dict[str, list[int]] = {}
    for index, (cin, cout) in convs.items():
        keys[f"features.{index}.weight"] = [cout, cin, 3, 3]
        keys[f"features.{index}.bias"] = [cout]
    return keys


@pytest.fixture(scope="module")
def vgg() -> VGG19Features:
    return VGG19Features()


def test_vgg19_layout_is_torchvisions(vgg):
    assert {k: list(v.shape) for k, v in vgg.state_dict().items()} == _torchvision_vgg19_feature_layout()


def test_vgg19_layer_names_and_indices(vgg):
    names = vgg19_layer_names()
    assert len(names) == 37
    assert {n: names.index(n) for n in ("conv1_1", "pool1", "conv3_4", "conv5_4", "relu5_4", "pool5")} == {
        "conv1_1": 0, "pool1": 4, "conv3_4": 16, "conv5_4": 34, "relu5_4": 35, "pool5": 36,
    }
    assert vgg.index == 34
    with pytest.raises(ValueError, match="unknown VGG19 layer 'conv6_1'"):
        VGG19Features("conv6_1")


def test_vgg19_returns_normalised_conv5_4_before_relu(vgg):
    x = torch.rand(1, 3, 37, 53, requires_grad=True)
    feats = vgg(x)
    assert feats.shape == (1, 512, 2, 3)  # four 2x2 max-pools before conv5_4: 37 -> 2, 53 -> 3
    assert feats.min() < 0  # before the ReLU
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    # random-init deep features are tiny, so compare relatively
    torch.testing.assert_close(feats, vgg.features[:35]((x - mean) / std), rtol=1e-4, atol=1e-12)
    shallow = VGG19Features("conv1_1")
    conv = shallow.features[0]
    expected = torch.nn.functional.conv2d((x - mean) / std, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(shallow(x), expected)
    feats.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg19_is_frozen(vgg):
    vgg.train()
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())


# --- registry -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kind, kwargs, cls",
    [
        ("smnet", {"width": 8, "n_groups": 1, "n_mab": 1}, SMNet),
        ("simnet", {"n_feat": 8, "n_rrg": 1}, SIMNet),
        ("ridnet", {"n_feats": 8, "n_blocks": 1, "reduction": 4}, RIDNet),
        ("dncnn", {"depth": 3, "width": 8}, DnCNN),
    ],
)
def test_registry_builds_each_network(kind, kwargs, cls):
    assert type(build(kind, **kwargs)) is cls
