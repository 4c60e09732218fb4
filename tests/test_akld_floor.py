"""tools/akld_floor.py: its fitted gains recover known laws; its table marks what a family lacks."""

from __future__ import annotations

import pytest
import torch


def _samples(law, count: int = 6, size: int = 64, patch: int = 16):
    """(clean, noisy, level) triples with Gaussian noise of std level * law(clean); the clean
    images are flat patches of random colours (the fits average the energy over 5 x 5)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        clean = torch.rand(1, 3, size // patch, size // patch, generator=g).repeat_interleave(patch, dim=-2).repeat_interleave(patch, dim=-1)
        level = torch.full_like(clean, 8 / 255)
        out.append((clean, clean + level * law(clean) * torch.randn(clean.shape, generator=g), level))
    return out


def test_the_colour_gain_recovers_a_level_that_depends_on_another_channel(load_tool):
    tool = load_tool("akld_floor")
    law = lambda x: torch.cat([(1 + 3 * x[:, 2:]).sqrt(), torch.ones_like(x[:, :2])], dim=1)  # red's energy grows with blue
    weights = tool.fit_colour_gain(_samples(law, count=24))
    probe = torch.tensor([0.5, 0.5, 0.0, 0.5, 0.5, 1.0]).view(2, 3, 1, 1).permute(1, 2, 0, 3).reshape(1, 3, 2, 1)
    gain = tool.colour_gain_map(probe, weights)[0, :, :, 0]  # (channel, pixel)
    assert gain[0].tolist() == pytest.approx([1.0, 2.0], abs=0.15)
    assert gain[1:].sub(1).abs().max() < 0.15


def test_the_gradient_gain_puts_more_noise_where_the_texture_is(load_tool):
    tool = load_tool("akld_floor")
    law = lambda x: 1 + (tool.gradient_feature(x) > tool.gradient_feature(x).median())  # twice the std on the busier half
    edges, gain = tool.fit_gain(_samples(law), bins=2)
    assert gain.shape == (3, 2) and (gain[:, 1] / gain[:, 0]).tolist() == pytest.approx([2.0] * 3, rel=0.1)
    clean, _, level = _samples(law)[0]
    assert torch.allclose(tool.with_gain(level, clean, edges, gain), level * law(clean) * gain[:, :1].view(1, 3, 1, 1), rtol=0.1)


def test_map_noise_refuses_another_image_size(load_tool):
    tool = load_tool("akld_floor")
    with pytest.raises(ValueError, match="std map is"):
        tool.MapNoise(torch.ones(1, 3, 8, 8)).sample(torch.zeros(1, 3, 4, 4))


def test_the_table_marks_rows_a_family_cannot_have(load_tool):
    tool = load_tool("akld_floor")
    cell = {s: {"akld": 0.1, "fake_std": 4.0, "real_std": 4.2, "images": 3} for s in tool.SPLITS}
    text = tool.report({"simulated": {row: cell for row in tool.ROWS}, "PolyU": {"white@level": cell}}, 5, 32)
    line = next(l for l in text.splitlines() if l.startswith("| the simulator"))
    assert line.endswith("| 0.100 / 4.0 (4.2) · 0.100 / 4.0 (4.2) | — |")
