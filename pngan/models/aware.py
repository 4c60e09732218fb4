"""The noise-aware generator (`aware_generator`): it shapes noise, a level map sets its scale.

    u = G([z, x, s])                  z ~ N(0, 1) drawn by the caller, x clean, s the level map
    n = s * u / rms(u)                rms per image and channel (`hold_level`), else n = s * u
    y = x + n                         clamped and rounded to 8 bit only by the consumer

s is the noise std per pixel and channel that a fitted noise level function gives the clean image
(`pngan.noise.level`). G only shapes a unit-level field (spatial correlation, channel mixing,
dependence on the image); with `hold_level` it cannot move the level at all, because the D_d
alignment term pulls a conditioned generator's level down (docs/METHOD.md §6.6). A zero level
gives the clean image exactly: the generator adds noise, it never redraws the image.

With `residual_from_z` the last conv starts at zero and adds to z, so that at step 0 u = z and the
generator is exactly the fitted classical model; without it u is the conv stack's own output.
"""

from __future__ import annotations

import torch
import torch.nn as nn

IN_CHANNELS = 9  # [z, x, s]
RMS_EPS = 1e-12  # keeps an all-zero field finite (its noise is then zero: s * 0)


class _Block(nn.Module):
    """x + conv(act(conv(x))), both convs at one dilation (spatial context beyond 3x3 cheaply)."""

    def __init__(self, width: int, dilation: int, negative_slope: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AwareGenerator(nn.Module):
    """(B, 9, H, W) = [z, x, s] -> (B, 3, H, W) unit-level noise field u.

    conv3x3(9 -> width) -> `depth` residual blocks (dilations cycling through `dilations`) ->
    act -> conv3x3(width -> 3). 119,883 parameters at the defaults (width 40, depth 4; 597,827 at
    width 64, depth 8); a receptive field of 5 + 4 * (the blocks' dilations summed) pixels, 29 at
    the defaults: enough for the few-pixel correlation demosaicking gives sRGB noise.
    The level channels are multiplied by `level_scale` on the way in: stds of a few /255 would
    otherwise barely move the first layer.
    """

    def __init__(
        self,
        width: int = 40,
        depth: int = 4,
        dilations: tuple[int, ...] = (1, 2),
        residual_from_z: bool = True,
        level_scale: float = 10.0,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        if width < 1 or depth < 0 or not dilations or min(dilations) < 1:
            raise ValueError(f"aware_generator: width >= 1, depth >= 0 and dilations >= 1 needed, got {width}, {depth}, {dilations}")
        self.residual_from_z, self.level_scale = bool(residual_from_z), float(level_scale)
        self.head = nn.Conv2d(IN_CHANNELS, width, 3, padding=1)
        self.blocks = nn.Sequential(*(_Block(width, dilations[i % len(dilations)], negative_slope) for i in range(depth)))
        self.act = nn.LeakyReLU(negative_slope)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        if self.residual_from_z:  # step 0: u = z exactly, the classical model
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        z, x, s = inputs.split(3, dim=1)
        h = self.blocks(self.head(torch.cat([z, x, s * self.level_scale], dim=1)))
        out = self.tail(self.act(h))
        return z + out if self.residual_from_z else out


def generator_input(z: torch.Tensor, clean: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """The generator's 9-channel input [z, x, s]: one tensor, so it can be tiled (`apply_tiled`)."""
    return torch.cat([z, clean, level], dim=1)


def unit_rms(u: torch.Tensor) -> torch.Tensor:
    """u scaled to root-mean-square 1 per image and channel."""
    return u * torch.rsqrt(u.square().mean(dim=(-2, -1), keepdim=True) + RMS_EPS)


def add_noise(clean: torch.Tensor, level: torch.Tensor, u: torch.Tensor, hold_level: bool = True) -> torch.Tensor:
    """clean + level * u (u at unit RMS per image and channel when `hold_level`), not clamped."""
    return clean + level * (unit_rms(u) if hold_level else u)
