"""The noise-aware generator (`aware_generator`): it shapes noise, a level map sets its scale.

    u = G([z, x, s])                  z ~ N(0, 1) drawn by the caller, x clean, s the level map
    n = s * g * u / rms(u)            rms per image and channel (`hold_level`), else n = s * g * u
    y = x + n                         clamped and rounded to 8 bit only by the consumer

g = exp(gain([x, s])) is the optional colour gain (`gain_width` > 0): a per-pixel network (1 x 1
convolutions) of the clean pixel's colour and level, zero-initialised (g = 1: the fitted level).
The per-channel level function reads each channel's clean value alone; in sRGB a channel's noise
also depends on the other two (the colour matrix mixes the sensor's channels), which the gain
learns (docs/METHOD.md §8.5). With `gain_gradient` the gain also reads the clean image's local
gradient magnitude per channel, g = exp(gain([x, s, |grad x|])): after JPEG compression and
in-camera sharpening, real noise is several times stronger on edges than in flat regions at the
same intensity (docs/METHOD.md §8.5). The generator then outputs [u, log g], 6 channels.

s is the noise std per pixel and channel that a fitted noise level function gives the clean image
(`pngan.noise.level`). G only shapes a unit-level field (spatial correlation, channel mixing,
dependence on the image); with `hold_level` it cannot move the level at all, because the D_d
alignment term pulls a conditioned generator's level down (docs/METHOD.md §6.6). A zero level
gives the clean image exactly: the generator adds noise, it never redraws the image.

With `residual_from_z` the last conv starts at zero and adds to z, so that at step 0 u = z and the
generator is exactly the fitted classical model; without it u is the conv stack's own output.

With `kernel` k > 0 the network does not output u itself but, per pixel, a k x k x 3 filter for
each output channel, applied to z and normalised to unit energy: u_c(p) = sum w_c(p, q) z(q),
sum w_c(p, q)^2 = 1. Every pixel's noise then has exactly the level's variance, and G can only
shape how it is correlated across neighbours and channels: what demosaicking and colour
correction do to sensor noise (docs/METHOD.md §8.5). `residual_from_z` then adds a start filter
to the zero-initialised output: the identity, or (`start_width`, `start_mixing`) the fitted
correlated Gaussian's (pngan.noise.gaussian.CorrelatedGaussian: a Gaussian blur of that width,
then the 3 x 3 channel mixing), so that step 0 is that classical model at the level map.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pngan.noise.gaussian import gaussian_kernel

IN_CHANNELS = 9  # [z, x, s]
GRADIENT_SCALE = 10.0  # edge gradients of ~0.02-0.2 per pixel (of 1) brought to the order of 1 for the gain
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
        kernel: int = 0,
        start_width: float = 0.0,
        start_mixing: tuple[float, ...] | None = None,
        gain_width: int = 0,
        gain_gradient: bool = False,
    ):
        super().__init__()
        if width < 1 or depth < 0 or not dilations or min(dilations) < 1:
            raise ValueError(f"aware_generator: width >= 1, depth >= 0 and dilations >= 1 needed, got {width}, {depth}, {dilations}")
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 0 or (kernel and kernel % 2 == 0):
            raise ValueError(f"aware_generator: kernel must be 0 (G outputs the field) or an odd filter size >= 1, got {kernel!r}")
        if not isinstance(gain_width, int) or isinstance(gain_width, bool) or gain_width < 0:
            raise ValueError(f"aware_generator: gain_width must be 0 (no colour gain) or a positive width, got {gain_width!r}")
        if not isinstance(gain_gradient, bool) or (gain_gradient and not gain_width):
            raise ValueError(f"aware_generator: gain_gradient must be true or false, and needs gain_width > 0, got {gain_gradient!r}")
        self.residual_from_z, self.level_scale, self.kernel = bool(residual_from_z), float(level_scale), kernel
        self.gain_gradient = gain_gradient
        start = start_filter(kernel, start_width, start_mixing) if kernel else torch.zeros(0)
        self.register_buffer("start", start, persistent=False)  # rebuilt from the kwargs: not in the state dict
        self.head = nn.Conv2d(IN_CHANNELS, width, 3, padding=1)
        self.blocks = nn.Sequential(*(_Block(width, dilations[i % len(dilations)], negative_slope) for i in range(depth)))
        self.act = nn.LeakyReLU(negative_slope)
        self.tail = nn.Conv2d(width, 3 * 3 * kernel * kernel if kernel else 3, 3, padding=1)
        if self.residual_from_z:  # step 0: u = z exactly, the classical model
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
        self.gain = colour_gain(gain_width, negative_slope, 9 if gain_gradient else 6) if gain_width else None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        z, x, s = inputs.split(3, dim=1)
        condition = torch.cat([x, s * self.level_scale], dim=1)
        h = self.blocks(self.head(torch.cat([z, condition], dim=1)))
        out = self.tail(self.act(h))
        if self.kernel:
            u = filter_noise(z, out + self.start.to(out) if self.residual_from_z else out, self.kernel)
        else:
            u = z + out if self.residual_from_z else out
        if self.gain is None:
            return u
        if self.gain_gradient:
            condition = torch.cat([condition, GRADIENT_SCALE * gradient_magnitude(x)], dim=1)
        return torch.cat([u, self.gain(condition)], dim=1)


def colour_gain(width: int, negative_slope: float, inputs: int = 6) -> nn.Sequential:
    """[x, s] (6 channels; 9 with the gradient) -> log g (3): two hidden 1 x 1 layers of `width`,
    the last zeroed so that g starts at 1."""
    layers = nn.Sequential(nn.Conv2d(inputs, width, 1), nn.LeakyReLU(negative_slope), nn.Conv2d(width, width, 1),
                           nn.LeakyReLU(negative_slope), nn.Conv2d(width, 3, 1))
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return layers


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|grad x| per pixel and channel: central differences, the border replicated (a flat border
    has zero gradient). Needs one pixel of context, which tiling's overlap gives."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dx = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    dy = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    return 0.5 * torch.sqrt(dx.square() + dy.square())


def start_filter(kernel: int, width: float, mixing: tuple[float, ...] | None) -> torch.Tensor:
    """(3 * 3 * k * k, 1, 1): per output channel c, the k x k x 3 filter mixing[c, d] g(q) of
    input channel d at offset q, g the unit-energy Gaussian of `width` (0: the centre tap alone)
    cut to k x k; `mixing` row-major 3 x 3 (None: the identity), e.g. the Cholesky factor of a
    channel correlation matrix. Each output channel's filter is left unnormalised here
    (`filter_noise` normalises)."""
    if not (isinstance(width, (int, float)) and not isinstance(width, bool) and 0 <= width <= 3):
        raise ValueError(f"aware_generator: start_width must be a number in [0, 3], got {width!r}")
    matrix = torch.eye(3, dtype=torch.float64) if mixing is None else torch.as_tensor(mixing, dtype=torch.float64)
    if matrix.numel() != 9 or not bool(torch.isfinite(matrix).all()) or not bool((matrix.reshape(3, 3).square().sum(dim=1) > 0).all()):
        raise ValueError(f"aware_generator: start_mixing must be 9 finite numbers (a 3 x 3 matrix, no zero row), got {mixing!r:.80}")
    taps = torch.as_tensor(gaussian_kernel(float(width)), dtype=torch.float64)
    pad = kernel // 2 - taps.numel() // 2
    taps = F.pad(taps, (pad, pad)) if pad >= 0 else taps[-pad : taps.numel() + pad]
    spatial = taps[:, None] * taps[None, :]  # k x k
    weights = matrix.reshape(3, 3)[:, :, None, None] * spatial  # (out, in, k, k)
    return weights.reshape(3 * 3 * kernel * kernel, 1, 1).float()


@functools.lru_cache(maxsize=16)
def _inside_taps(height: int, width: int, kernel: int, channels: int, device: torch.device) -> torch.Tensor:
    """(1, 1, channels * k * k, H, W): 1 where a filter tap falls inside an H x W image; one per
    size (tiles and crops repeat a few sizes), not one per forward pass."""
    inside = F.unfold(torch.ones(1, 1, height, width, device=device), kernel, padding=kernel // 2)
    return inside.view(1, 1, kernel * kernel, height, width).repeat(1, 1, channels, 1, 1)


def filter_noise(z: torch.Tensor, weights: torch.Tensor, kernel: int) -> torch.Tensor:
    """Per-pixel filters of white noise z (B, 3, H, W): `weights` (B, 3 * 3 * k * k, H, W) hold,
    for each output channel, a k x k x 3 filter, which is normalised to unit energy over the taps
    inside the image (zero padding is no noise), so every output pixel has z's variance."""
    batch, channels, height, width = z.shape
    taps = channels * kernel * kernel
    w = weights.float().view(batch, channels, taps, height, width)
    w = w * _inside_taps(height, width, kernel, channels, z.device)
    w = w * torch.rsqrt(w.square().sum(dim=2, keepdim=True) + RMS_EPS)
    patches = F.unfold(z.float(), kernel, padding=kernel // 2).view(batch, 1, taps, height, width)
    return (w * patches).sum(dim=2).to(z.dtype)


def generator_input(z: torch.Tensor, clean: torch.Tensor, level: torch.Tensor,
                    bounds: tuple[Sequence[float], Sequence[float]] | None = None) -> torch.Tensor:
    """The generator's 9-channel input [z, x, s]: one tensor, so it can be tiled (`apply_tiled`).
    `bounds`: (low, high) per channel (`LevelCondition.input_bounds`), the trained levels' range,
    to which s is clamped here: G and its gain are learned functions of the level and do not
    extrapolate beyond it (an ISO law can ask for levels no training pair had). Only what the
    networks read is clamped; `add_noise` scales the noise by the true level."""
    if bounds is not None:
        low, high = (torch.as_tensor(b, dtype=level.dtype, device=level.device).view(1, 3, 1, 1) for b in bounds)
        level = torch.minimum(torch.maximum(level, low), high)
    return torch.cat([z, clean, level], dim=1)


def unit_rms(u: torch.Tensor) -> torch.Tensor:
    """u scaled to root-mean-square 1 per image and channel."""
    return u * torch.rsqrt(u.square().mean(dim=(-2, -1), keepdim=True) + RMS_EPS)


def add_noise(clean: torch.Tensor, level: torch.Tensor, out: torch.Tensor, hold_level: bool = True) -> torch.Tensor:
    """clean + level * g * u, not clamped: `out` is the generator's u (3 channels) or [u, log g]
    (6, with a colour gain); u at unit RMS per image and channel when `hold_level`."""
    u, log_gain = split_gain(out)
    noise = unit_rms(u) if hold_level else u
    return clean + (level if log_gain is None else level * log_gain.exp()) * noise


def split_gain(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(u, log g) of a generator's output; log g is None without a colour gain."""
    return (out, None) if out.shape[1] == 3 else out.split(3, dim=1)
