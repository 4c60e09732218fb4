"""RIDNet (Anwar & Barnes, "Real Image Denoising with Feature Attention", ICCV 2019).

Module structure and state-dict keys transcribed from the official code, saeed-anwar/RIDNet @
d19ba1bb168f0e701588141c8db4a6f6ae973b3e (TestCode/code/model/ridnet.py, ops.py, common.py):
at n_feats 64, 4 EAM blocks, reduction 16 it has 1,499,371 parameters in 104 state-dict entries,
the two 1x1 mean-shift convs (`sub_mean`, `add_mean`) included.

Two forward modes, both taking and returning (B, 3, H, W) images in [0, 1]:
- `mean_shift=True`, the official forward: scale to [0, rgb_range], subtract the mean with
  `sub_mean`, run head -> EAM blocks -> tail, add the mean to the *residual* with `add_mean`,
  add the (scaled) input, scale back. (Adding the mean to the residual is the official code's
  choice; trained weights compensate in the tail bias.)
- `mean_shift=False`, the PNGAN authors' forward (caiyuanhao1998/PNGAN @ 19358692,
  networks/RIDNet/ridnet.py): works on [0, 1] directly and skips the mean-shift layers, which
  stay in the state dict so the same files load in both modes.
The mean-shift layers are constants here (requires_grad False).
"""

from __future__ import annotations

import torch
import torch.nn as nn

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean of the EDSR code base, as in the official RIDNet


def _conv_relu(in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding, dilation=dilation), nn.ReLU())


class MeanShift(nn.Conv2d):
    """1x1 conv that adds `sign * rgb_range * mean` per channel (identity weight)."""

    def __init__(self, rgb_range: float, rgb_mean: tuple[float, float, float], sign: int):
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean))
        self.requires_grad_(False)


class BasicBlock(nn.Module):
    """conv + activation in `body` (official `ops.BasicBlock`, and `BasicBlockSig` with a sigmoid)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, padding: int, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MergeRunDual(nn.Module):
    """Two dilated two-conv paths (dilations 1,2 and 3,4), concatenated, conv, + input."""

    def __init__(self, c: int):
        super().__init__()
        self.body1 = nn.Sequential(*_conv_relu(c, c, 3, 1, 1), *_conv_relu(c, c, 3, 2, 2))
        self.body2 = nn.Sequential(*_conv_relu(c, c, 3, 3, 3), *_conv_relu(c, c, 3, 4, 4))
        self.body3 = _conv_relu(2 * c, c, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body3(torch.cat([self.body1(x), self.body2(x)], dim=1))


class ResidualBlock(nn.Module):
    """relu(x + conv(relu(conv(x))))."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class EResidualBlock(nn.Module):
    """relu(x + conv1x1(relu(conv(relu(conv(x))))))."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class CALayer(nn.Module):
    """Squeeze-excitation channel attention: x * sigmoid(conv1x1(relu(conv1x1(avgpool(x)))))."""

    def __init__(self, c: int, reduction: int):
        super().__init__()
        self.c1 = BasicBlock(c, c // reduction, 1, 0)
        self.c2 = BasicBlock(c // reduction, c, 1, 0, act=nn.Sigmoid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.c2(self.c1(x.mean(dim=(2, 3), keepdim=True)))


class EAM(nn.Module):
    """Enhancement attention module (official `Block`): merge-and-run, two residual blocks, CA."""

    def __init__(self, c: int, reduction: int):
        super().__init__()
        self.r1 = MergeRunDual(c)
        self.r2 = ResidualBlock(c)
        self.r3 = EResidualBlock(c)
        self.ca = CALayer(c, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.r3(self.r2(self.r1(x))))


class RIDNet(nn.Module):
    """Real-image denoiser: (B, 3, H, W) noisy in [0, 1] -> clean estimate in [0, 1] scale, any H, W.

    Args:
        n_feats: feature channels (64).
        n_blocks: EAM blocks, named b1 ... bN as in the official code (4).
        reduction: channel-attention reduction (16).
        mean_shift: official forward (True) or the PNGAN authors' [0, 1] forward (False).
        rgb_range: the scale the official forward works on (255).
    """

    def __init__(
        self,
        n_feats: int = 64,
        n_blocks: int = 4,
        reduction: int = 16,
        mean_shift: bool = True,
        rgb_range: float = 255.0,
    ):
        super().__init__()
        self.mean_shift = mean_shift
        self.rgb_range = rgb_range
        self.sub_mean = MeanShift(rgb_range, RGB_MEAN, sign=-1)
        self.add_mean = MeanShift(rgb_range, RGB_MEAN, sign=1)
        self.head = BasicBlock(3, n_feats, 3, 1)
        self.block_names = [f"b{i + 1}" for i in range(n_blocks)]
        for name in self.block_names:
            self.add_module(name, EAM(n_feats, reduction))
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """head -> EAM blocks -> tail, on whatever scale the mode works in."""
        h = self.head(x)
        for name in self.block_names:
            h = getattr(self, name)(h)
        return self.tail(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.mean_shift:
            return x + self.residual(x)
        scaled = x * self.rgb_range
        out = self.add_mean(self.residual(self.sub_mean(scaled))) + scaled
        return out / self.rgb_range
