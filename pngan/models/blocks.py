"""Building blocks shared by several architectures.

- `BlurPool2d`: anti-aliased downsampling (binomial blur, then stride), the `downsamp` of MIRNet's
  `utils/antialias.py` (swz30/MIRNet @ 6934e830): same padding, same normalised binomial filter,
  same persistent buffer name `filt` (C, 1, k, k), so MIRNet-layout checkpoints load.
- `ChannelAttention1d`: efficient channel attention (global average pool -> 1-D conv across
  channels -> sigmoid) with the residual form `x * a + x` of PNGAN's MAB and the authors' SIMNet.
- `pad_to_multiple` / `crop_to`: let networks with down-sampling branches take any H, W.
- `conv2d` (size-preserving conv) and `make_activation` (activation by name).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv2d(in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True) -> nn.Conv2d:
    """Size-preserving convolution (odd kernel, zero padding kernel_size // 2)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


def make_activation(name: str) -> nn.Module:
    """'lrelu' (LeakyReLU 0.2), 'relu', 'prelu' or 'none'."""
    factories = {
        "lrelu": lambda: nn.LeakyReLU(0.2),
        "relu": nn.ReLU,
        "prelu": nn.PReLU,
        "none": nn.Identity,
    }
    if name not in factories:
        raise ValueError(f"unknown activation '{name}'; choose from {', '.join(factories)}")
    return factories[name]()


class BlurPool2d(nn.Module):
    """Blur each channel with the normalised binomial filter of size `filt_size`, then subsample.

    filt_size 3 is the [1, 2, 1] x [1, 2, 1] / 16 filter. Output size is ceil(H / stride).
    """

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2, pad_mode: str = "reflect"):
        super().__init__()
        if filt_size < 1:
            raise ValueError(f"filt_size must be >= 1, got {filt_size}")
        self.stride = stride
        self.pad_mode = pad_mode
        before, after = (filt_size - 1) // 2, math.ceil((filt_size - 1) / 2)
        self.padding = (before, after, before, after)
        row = torch.tensor([math.comb(filt_size - 1, i) for i in range(filt_size)], dtype=torch.float32)
        filt = row[:, None] * row[None, :]
        self.register_buffer("filt", (filt / filt.sum()).expand(channels, 1, -1, -1).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.padding):
            x = F.pad(x, self.padding, mode=self.pad_mode)
        return F.conv2d(x, self.filt, stride=self.stride, groups=x.shape[1])


class ChannelAttention1d(nn.Module):
    """`x * sigmoid(conv1d(avgpool(x))) + x`: a k-tap 1-D convolution across the channel axis."""

    def __init__(self, k_size: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # (B, C)
        weights = torch.sigmoid(self.conv(pooled.unsqueeze(1))).squeeze(1)  # (B, C)
        return x * weights[:, :, None, None] + x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right so H and W are multiples of `multiple`.

    Reflect padding (no edge artefact for the network to learn); replicate where the image is too
    small to reflect (reflect needs the pad to be smaller than the side).
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo `pad_to_multiple`: keep the top-left `size` = (H, W)."""
    return x[..., : size[0], : size[1]]
