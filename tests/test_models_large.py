"""MIRNet and MPRNet: official layouts and counts at the released size, weight sharing, the
forward against numbers produced by the official code, padding to any size, and training."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pngan.models import build, count_parameters
from pngan.models.mirnet import MIRNet
from pngan.models.mprnet import MPRNet

LAYOUTS = Path(__file__).parent / "data" / "layouts"
TINY_MIRNET = dict(n_feat=8, n_rrg=1, n_msrb=2, height=3, width=2)
TINY_MPRNET = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2)
DAU_COLUMN = re.compile(r"\.blocks\.(\d+)\.(\d+)\.")  # level, column


def _layout(name: str) -> dict:
    return json.loads((LAYOUTS / f"{name}.json").read_text())


def _shapes(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def _keys_by_tensor(model: torch.nn.Module) -> dict[int, list[str]]:
    """State-dict keys grouped by the storage they point to (shared modules share storage)."""
    groups: dict[int, list[str]] = defaultdict(list)
    for key, tensor in model.state_dict().items():
        groups[tensor.data_ptr()].append(key)
    return groups


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tensors are tiny: on a busy machine, extra threads cost far more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def released_mirnet() -> MIRNet:
    return MIRNet()


@pytest.fixture(scope="module")
def released_mprnet() -> MPRNet:
    return MPRNet()


# --- released size: counts and official layouts ------------------------------------------


def test_mirnet_released_counts(released_mirnet):
    state = released_mirnet.state_dict()
    assert count_parameters(released_mirnet) == 31_787_419 == _layout("mirnet")["parameters"]
    assert len(state) == 797
    assert sum(k.endswith(".filt") for k in state) == 48
    assert [k for k, _ in released_mirnet.named_buffers()] == [k for k in state if k.endswith(".filt")]


def test_mprnet_released_counts(released_mprnet):
    assert count_parameters(released_mprnet) == 15_741_025 == _layout("mprnet")["parameters"]
    assert len(released_mprnet.state_dict()) == 316


@pytest.mark.parametrize("name", ["mirnet", "mprnet"])
def test_released_layout_equals_official(name, released_mirnet, released_mprnet):
    model = released_mirnet if name == "mirnet" else released_mprnet
    official = _layout(name)
    assert official["source"] == f"swz30/{'MIRNet' if name == 'mirnet' else 'MPRNet'}"
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == official["keys"]
    assert _shapes(model) == list(official["keys"].items())  # same order too


def test_registry_builds_both():
    assert isinstance(build("mirnet", **TINY_MIRNET), MIRNet)
    assert isinstance(build("mprnet", **TINY_MPRNET), MPRNet)


# --- shared modules ----------------------------------------------------------------------


def test_mirnet_sharing_matches_official(released_mirnet):
    groups = list(_keys_by_tensor(released_mirnet).values())
    assert len(groups) == len(list(released_mirnet.parameters())) + 48
    shared = [g for g in groups if len(g) > 1]
    prelu = [g for g in shared if all(k.endswith("body.1.weight") and ".blocks." in k for k in g)]
    # one PReLU for every DAU: 3 RRG x 2 MSRB x 3 levels x 2 columns = 36 listings
    assert len(prelu) == 1 and len(prelu[0]) == 36
    # every other shared tensor is one DAU's weight listed under its two columns
    for group in (g for g in shared if g is not prelu[0]):
        columns = [DAU_COLUMN.search(k) for k in group]
        assert sorted(m.group(2) for m in columns) == ["0", "1"]
        assert len({DAU_COLUMN.sub(r".blocks.\1.*.", k) for k in group}) == 1
    dau = released_mirnet.body[0].body[0].blocks
    assert all(level[0] is level[1] for level in dau)
    # parameters() counts each shared tensor once; the state dict lists it under every path
    state = released_mirnet.state_dict()
    unique = sum(state[g[0]].numel() for g in groups if not g[0].endswith("filt"))
    assert unique == count_parameters(released_mirnet)


def test_mprnet_one_prelu_shared(released_mprnet):
    shared = [g for g in _keys_by_tensor(released_mprnet).values() if len(g) > 1]
    assert len(shared) == 1
    assert len(shared[0]) == 55 and all(k.endswith("body.1.weight") for k in shared[0])
    listed = sum(v.numel() for v in released_mprnet.state_dict().values())
    assert listed - count_parameters(released_mprnet) == 54


def test_each_model_owns_its_prelu():
    """The official MIRNet shares the DAU PReLU between all instances; ours must not."""
    a, b = MIRNet(**TINY_MIRNET), MIRNet(**TINY_MIRNET)
    assert {p.data_ptr() for p in a.parameters()}.isdisjoint(p.data_ptr() for p in b.parameters())


# --- forward equals the official code ------------------------------------------------------


def _deterministic_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights that depend only on the state-dict order; shared tensors get one value."""
    values: dict[int, torch.Tensor] = {}
    out = {}
    for index, (key, tensor) in enumerate(model.state_dict().items()):
        if key.endswith("filt"):
            out[key] = tensor
            continue
        if tensor.data_ptr() not in values:
            phase = torch.arange(tensor.numel(), dtype=torch.float64) * 0.7 + index
            scale = 0.3 / math.sqrt(tensor[0].numel())
            values[tensor.data_ptr()] = (scale * torch.sin(phase)).float().reshape(tensor.shape)
        out[key] = values[tensor.data_ptr()]
    return out


def _ramp_image() -> torch.Tensor:
    return 0.5 + 0.4 * torch.sin(torch.arange(3 * 16 * 24, dtype=torch.float32).reshape(1, 3, 16, 24) * 0.13)


# Produced by the official code (swz30/MIRNet @ 6934e83, swz30/MPRNet @ 43feb2a, Denoising) with
# the same tiny configurations, weights and input: output at (channel, row, col) and mean |out - x|.
PROBES = [(0, 0, 0), (1, 7, 11), (2, 15, 23), (0, 9, 4)]
OFFICIAL_MIRNET = ([0.471961, 0.156911, 0.056146, 0.394046], 0.02805)
OFFICIAL_MPRNET = [
    ([0.522545, 0.10248, 0.269709, 0.404494], 0.170581),
    ([0.515572, 0.130788, 0.11347, 0.368475], 0.025146),
    ([0.502617, 0.194995, 0.135672, 0.362148], 0.014284),
]


def _assert_matches(out: torch.Tensor, x: torch.Tensor, expected: tuple[list[float], float]) -> None:
    probes, mean_residual = expected
    assert [out[0, c, i, j].item() for c, i, j in PROBES] == pytest.approx(probes, abs=2e-6)
    assert (out - x).abs().mean().item() == pytest.approx(mean_residual, abs=2e-6)


def test_mirnet_forward_equals_official():
    model = MIRNet(**TINY_MIRNET)
    model.load_state_dict(_deterministic_weights(model))
    x = _ramp_image()
    with torch.no_grad():
        _assert_matches(model(x), x, OFFICIAL_MIRNET)


def test_mprnet_forward_equals_official():
    model = MPRNet(**TINY_MPRNET)
    model.load_state_dict(_deterministic_weights(model))
    x = _ramp_image()
    with torch.no_grad():
        outputs = model(x)
        assert len(outputs) == 3
        for out, expected in zip(outputs, OFFICIAL_MPRNET):
            _assert_matches(out, x, expected)
        assert torch.equal(model.denoise(x), outputs[0])


# --- any input size ----------------------------------------------------------------------


@pytest.mark.parametrize("size, multiple", [((37, 53), 4), ((8, 9), 4)])
def test_mirnet_any_size_is_reflect_pad_and_crop(size, multiple):
    model = MIRNet(n_feat=8, n_rrg=1, n_msrb=1, height=3, width=2).eval()
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    padded = F.pad(x, (0, -size[1] % multiple, 0, -size[0] % multiple), mode="reflect")
    with torch.no_grad():
        out = model(x)
        assert out.shape == x.shape
        torch.testing.assert_close(out, model(padded)[..., : size[0], : size[1]])


def test_mprnet_any_size_returns_three_input_sized_images():
    model = MPRNet(**TINY_MPRNET).eval()
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    padded = F.pad(x, (0, 3, 0, 3), mode="reflect")
    with torch.no_grad():
        outputs, reference = model(x), model(padded)
    assert [tuple(o.shape) for o in outputs] == [(1, 3, 37, 53)] * 3
    for out, ref in zip(outputs, reference):
        torch.testing.assert_close(out, ref[..., :37, :53])


def test_too_small_or_wrong_rank_inputs_are_refused():
    with pytest.raises(ValueError, match="smaller than the minimum 8x8"):
        MPRNet(**TINY_MPRNET)(torch.rand(1, 3, 7, 16))
    with pytest.raises(ValueError, match="smaller than the minimum 4x4"):
        MIRNet(**TINY_MIRNET)(torch.rand(1, 3, 16, 3))
    with pytest.raises(ValueError, match=r"expected a \(B, C, H, W\) batch"):
        MIRNet(**TINY_MIRNET)(torch.rand(3, 16, 16))


# --- training ----------------------------------------------------------------------------


def _noisy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    rows, cols = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    clean = torch.stack([0.5 + 0.3 * torch.sin(6 * rows + 2 * c) * torch.cos(4 * cols) for c in range(3)])
    clean = clean.expand(2, 3, 24, 24).contiguous()
    return clean, clean + 0.1 * torch.randn(clean.shape, generator=g)


def _train(model: torch.nn.Module, loss_fn, steps: int) -> tuple[float, float]:
    """Adam on one fixed noisy batch; returns the first and last training loss."""
    clean, noisy = _noisy_batch()
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(model(noisy), clean)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def _denoised_vs_noisy_mse(denoise) -> tuple[float, float]:
    clean, noisy = _noisy_batch()
    with torch.no_grad():
        return F.mse_loss(denoise(noisy), clean).item(), F.mse_loss(noisy, clean).item()


def test_tiny_mirnet_learns_to_denoise():
    torch.manual_seed(0)
    model = MIRNet(n_feat=8, n_rrg=1, n_msrb=1, height=2, width=2)
    first, last = _train(model, F.mse_loss, steps=25)
    assert last < 0.5 * first
    denoised, noisy = _denoised_vs_noisy_mse(model)
    assert denoised < 0.9 * noisy  # better than the input, not just better than the random start


def test_tiny_mprnet_learns_to_denoise_on_all_stages():
    torch.manual_seed(0)
    model = MPRNet(**TINY_MPRNET)

    def all_stages(outputs, clean):
        return sum(F.mse_loss(out, clean) for out in outputs)

    first, last = _train(model, all_stages, steps=25)
    assert last < 0.5 * first
    denoised, noisy = _denoised_vs_noisy_mse(model.denoise)
    assert denoised < 0.9 * noisy
