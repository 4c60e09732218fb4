"""SMNet, the PNGAN generator as the paper describes it (Cai et al., NeurIPS 2021, Fig. 3).

    y_f = y_s + tail(SRG_G(... SRG_1(head(y_s))))       head, tail: conv3x3 (3 <-> C)
    SRG(x) = x + conv3x3(MAB_B(... MAB_1(act(conv3x3(x)))))
    MAB(x) = x + conv3x3_{3C->C}(cat[branch_0(x), branch_1(x), branch_2(x)])
    branch_0(x) = CA(x)                                           full resolution
    branch_s(x) = act(conv_{k_s}(up_bilinear(CA(blurpool^s(x)))))  1/2^s resolution, s >= 1
    CA(x) = x * sigmoid(conv1d_k(avgpool(x))) + x

Choices where the paper leaves room (each is a constructor argument):
- The full-resolution branch is channel attention alone; each lower-resolution branch is
  blur-pool (one [1,2,1] stride-2 blur-pool per halving, so 1/4 is two anti-aliased steps) ->
  channel attention -> bilinear up -> one conv. The conv after the 4x upsampling is 5x5
  (`up_kernel_sizes=(3, 5)`): the wider kernel smooths the coarser branch, and it is what
  gives the ~1.7 M parameters quoted for the paper's generator (exactly 1,725,433 here).
- `act` (LeakyReLU 0.2 by default) after each SRG's entry conv and after each resampled branch's
  conv. Without it the generator has no spatially local nonlinearity (the attention gates are
  global per channel), so it could only filter its input noise linearly and could not make the
  noise depend on the local signal level; `act="none"` gives that purely linear-gated variant.
- All convolutions have biases; the 1-D attention conv has none.
- Input is reflect-padded to a multiple of 2^(number of resampled branches) and cropped back.
- `zero_init_last` zero-initialises the tail conv, so the generator starts as the identity
  (output = its noisy input), a common way to keep early GAN training stable.

Output is not clamped: the generated noisy image may leave [0, 1]; callers clamp.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pngan.models.blocks import BlurPool2d, ChannelAttention1d, conv2d, crop_to, make_activation, pad_to_multiple


class ScaleBranch(nn.Module):
    """Channel attention at 1/2^`levels` resolution, back to full size by bilinear up + conv."""

    def __init__(self, width: int, levels: int, kernel_size: int, ca_kernel: int, act: str):
        super().__init__()
        self.down = nn.Sequential(*[BlurPool2d(width, filt_size=3, stride=2) for _ in range(levels)])
        self.ca = ChannelAttention1d(ca_kernel)
        self.conv = conv2d(width, width, kernel_size) if levels else nn.Identity()
        self.act = make_activation(act) if levels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ca(self.down(x))
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.act(self.conv(y))


class MAB(nn.Module):
    """Multi-scale attention block: parallel scale branches, concatenated, fused, + input."""

    def __init__(self, width: int, up_kernel_sizes: tuple[int, ...], ca_kernel: int, act: str):
        super().__init__()
        kernels = (0, *up_kernel_sizes)  # branch 0 (full resolution) has no conv
        self.branches = nn.ModuleList(
            ScaleBranch(width, level, k, ca_kernel, act) for level, k in enumerate(kernels)
        )
        self.fuse = conv2d(width * len(kernels), width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))


class SRG(nn.Module):
    """Residual group: conv -> act -> `n_mab` MABs -> conv, + input."""

    def __init__(self, width: int, n_mab: int, up_kernel_sizes: tuple[int, ...], ca_kernel: int, act: str):
        super().__init__()
        self.body = nn.Sequential(
            conv2d(width, width, 3),
            make_activation(act),
            *[MAB(width, up_kernel_sizes, ca_kernel, act) for _ in range(n_mab)],
            conv2d(width, width, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SMNet(nn.Module):
    """PNGAN generator: (B, 3, H, W) synthetic noisy image -> fake realistic noisy image, any H, W.

    Args:
        width: feature channels C (paper 64).
        n_groups: residual groups G (paper 3).
        n_mab: MABs per group B (paper 2).
        up_kernel_sizes: conv kernel after upsampling, one per lower-resolution branch
            (1/2, 1/4, ...); its length sets the number of extra scales.
        ca_kernel: taps of the channel-attention 1-D conv (paper 3).
        act: nonlinearity, see the module docstring ('lrelu', 'relu', 'prelu', 'none').
        zero_init_last: start as the identity map by zeroing the tail conv.
    """

    def __init__(
        self,
        width: int = 64,
        n_groups: int = 3,
        n_mab: int = 2,
        up_kernel_sizes: tuple[int, ...] = (3, 5),
        ca_kernel: int = 3,
        act: str = "lrelu",
        zero_init_last: bool = False,
    ):
        super().__init__()
        up_kernel_sizes = tuple(up_kernel_sizes)
        self.multiple = 2 ** len(up_kernel_sizes)
        self.head = conv2d(3, width, 3)
        self.body = nn.Sequential(*[SRG(width, n_mab, up_kernel_sizes, ca_kernel, act) for _ in range(n_groups)])
        self.tail = conv2d(width, 3, 3)
        if zero_init_last:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        padded = pad_to_multiple(x, self.multiple)
        out = padded + self.tail(self.body(self.head(padded)))
        return crop_to(out, size)
