"""SIMNet, the generator the PNGAN authors shipped (compiled only), rebuilt from its bytecode.

Source: caiyuanhao1998/PNGAN @ 193586927666695b0a941b64dc7530a710ba1cee,
networks/__pycache__/SIMNet.cpython-37.pyc (no .py was released), read with Python 3.7's `dis`.
It is a cut-down MIRNet (swz30/MIRNet): same conv_in -> RRGs -> conv_out (+ input) trunk, but

- the dual attention unit is replaced by a "CAU": conv3x3 -> PReLU -> conv3x3 -> channel
  attention (1-D conv, k = 5, no bias, `x * a + x`) -> conv1x1, + input;
- there is no selective-kernel fusion; its defaults are height 1, width 2, so each multi-scale
  block is single-scale: one CAU listed twice (`[CAU] * width`, shared weights, applied twice in
  a row) and a conv3x3, + input. With height > 1 its forward cannot run (it reshapes the
  concatenated scales to n_feat channels), so the multi-scale machinery is left out here;
- every CAU uses the same PReLU module (a default argument evaluated once), listed under each
  CAU's `body.1` in the state dict; here one PReLU is shared within a model;
- no biases (`bias=True` here adds them to every 2-D conv; the authors' group-closing conv
  never had one). Defaults: n_feat 64, 3 RRG x 2 MSRB: 802,207 parameters.

State-dict keys follow the authors' module names (`conv_in`, `body.<g>.body.<b>.blocks.0.<w>...`,
`body.<g>.body.<n_msrb>` for each group's closing conv, `conv_out`). Any H, W.
Output is not clamped.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pngan.models.blocks import ChannelAttention1d, conv2d


class CAU(nn.Module):
    """Channel attention unit: conv -> act -> conv -> CA -> conv1x1, + input."""

    def __init__(self, n_feat: int, act: nn.Module, kernel_size: int, ca_kernel: int, bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            conv2d(n_feat, n_feat, kernel_size, bias), act, conv2d(n_feat, n_feat, kernel_size, bias)
        )
        self.CA = ChannelAttention1d(ca_kernel)
        self.conv1x1 = nn.Conv2d(n_feat, n_feat, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1x1(self.CA(self.body(x)))


class MSRB(nn.Module):
    """One CAU applied `width` times in a row (shared weights), then conv3x3, + input."""

    def __init__(self, n_feat: int, width: int, act: nn.Module, kernel_size: int, ca_kernel: int, bias: bool):
        super().__init__()
        unit = CAU(n_feat, act, kernel_size, ca_kernel, bias)
        self.blocks = nn.ModuleList([nn.ModuleList([unit] * width)])
        self.conv_out = nn.Conv2d(n_feat, n_feat, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for unit in self.blocks[0]:
            h = unit(h)
        return x + self.conv_out(h)


class RRG(nn.Module):
    """Recursive residual group: `n_msrb` MSRBs -> conv3x3, + input."""

    def __init__(
        self, n_feat: int, n_msrb: int, width: int, act: nn.Module, kernel_size: int, ca_kernel: int, bias: bool
    ):
        super().__init__()
        blocks = [MSRB(n_feat, width, act, kernel_size, ca_kernel, bias) for _ in range(n_msrb)]
        self.body = nn.Sequential(*blocks, conv2d(n_feat, n_feat, 3, bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SIMNet(nn.Module):
    """The authors' shipped generator: (B, 3, H, W) synthetic noisy -> fake noisy, any H, W.

    Args:
        n_feat: feature channels (64).
        n_rrg: residual groups (3).
        n_msrb: blocks per group (2).
        width: times each block's shared CAU is applied (2).
        kernel_size: conv kernel of conv_in / conv_out / CAU body (3).
        ca_kernel: taps of the channel-attention 1-D conv (5).
        bias: biases in every 2-D conv (False).
        zero_init_last: zero `conv_out` (and its bias) so the generator starts as the identity.
    """

    def __init__(
        self,
        n_feat: int = 64,
        n_rrg: int = 3,
        n_msrb: int = 2,
        width: int = 2,
        kernel_size: int = 3,
        ca_kernel: int = 5,
        bias: bool = False,
        zero_init_last: bool = False,
    ):
        super().__init__()
        act = nn.PReLU()
        self.conv_in = conv2d(3, n_feat, kernel_size, bias)
        self.body = nn.Sequential(
            *[RRG(n_feat, n_msrb, width, act, kernel_size, ca_kernel, bias) for _ in range(n_rrg)]
        )
        self.conv_out = conv2d(n_feat, 3, kernel_size, bias)
        if zero_init_last:
            nn.init.zeros_(self.conv_out.weight)
            if self.conv_out.bias is not None:
                nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_out(self.body(self.conv_in(x)))
