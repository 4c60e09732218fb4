"""Pixel-level discriminator of PNGAN: one real/fake logit per pixel.

Layout of the authors' `Discriminator_dense` (caiyuanhao1998/PNGAN @ 19358692,
networks/__pycache__/synthetic2real.cpython-37.pyc; METHOD.md §1.7), keys `net.0/2/3/5/7`:
conv3x3(3->w) LReLU(0.2) -> conv3x3(w->2w) BN LReLU -> conv3x3(2w->4w) LReLU -> conv1x1(4w->1),
stride 1 and size-preserving padding everywhere (7x7 receptive field), 371,329 parameters at w = 64.
The authors applied a sigmoid; this returns logits for a numerically stable BCE-with-logits loss.
`in_channels` (default 3, the paper's) lets a conditioned task feed the image with its condition,
e.g. [y, level map] (6 channels) for the noise-aware generator (pngan.train.aware).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class PixelDiscriminator(nn.Module):
    """(B, in_channels, H, W) image in [0, 1] (and any condition channels) -> (B, 1, H, W) logits."""

    def __init__(self, width: int = 64, negative_slope: float = 0.2, in_channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(4 * width, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
