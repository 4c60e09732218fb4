"""MIRNet (Zamir et al., "Learning Enriched Features for Real Image Restoration and
Enhancement", ECCV 2020), the real-noise denoiser that PNGAN fine-tunes (METHOD.md §1.9).

The module tree reproduces the state-dict layout of the official release, so the official
weights and the PNGAN authors' MIRNet_sidd.pth / MIRNet_polyu.pth load without renaming.
Layout facts transcribed from swz30/MIRNet @ 6934e830cac66b6c774d74dc6321d4f43fc8a928,
networks/MIRNet_model.py and utils/antialias.py:

- within each multi-scale residual block (MSRB), the `width` dual-attention units (DAU) of one
  resolution level are a single module listed `width` times (`blocks.<level>.<column>`);
- every DAU uses one PReLU (`body.1`), shared by all of them; the other PReLUs are separate;
- the stride-2 downsamplers blur with a fixed [1, 2, 1] x [1, 2, 1] / 16 kernel stored as a
  persistent buffer `filt` of shape (C, 1, 3, 3), after reflect padding by 1;
- no convolution has a bias at the released configuration.

Released configuration: n_feat 64, 3 RRG x 2 MSRB, height 3, width 2: 31,787,419 parameters,
797 state-dict entries (48 of them `filt` buffers).

Unlike the official code, whose shared PReLU is a default argument and therefore shared by
every MIRNet built in the same process, each model here owns its PReLU.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pngan.models import blocks


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad a (B, C, H, W) batch to a multiple of `multiple`; also return the original H, W.

    Reflect padding needs the padding to be smaller than the image, hence the minimum size.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height < multiple or width < multiple:
        raise ValueError(f"input {height}x{width} is smaller than the minimum {multiple}x{multiple}")
    return blocks.pad_to_multiple(x, multiple), height, width


def _conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)


class SpatialAttention(nn.Module):
    """Gate each pixel by a 5x5 conv over the channel-wise max and mean maps."""

    def __init__(self, kernel_size: int = 5):
        super().__init__()
        # The extra `conv` level mirrors the official key `SA.spatial.conv.weight`.
        self.spatial = nn.ModuleDict({"conv": _conv(2, 1, kernel_size)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial["conv"](pooled))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global mean -> 1x1 down -> ReLU -> 1x1 up -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int, bias: bool):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=bias),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1, bias=bias),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class DAU(nn.Module):
    """Dual attention unit: conv-act-conv, spatial and channel attention side by side, 1x1 fuse, + input."""

    def __init__(self, channels: int, act: nn.Module, reduction: int, bias: bool):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3, bias), act, _conv(channels, channels, 3, bias))
        self.SA = SpatialAttention()
        self.CA = ChannelAttention(channels, reduction, bias)
        self.conv1x1 = nn.Conv2d(2 * channels, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        return self.conv1x1(torch.cat([self.SA(res), self.CA(res)], dim=1)) + x


class SKFF(nn.Module):
    """Selective kernel feature fusion: per-channel softmax weights over `n_inputs` same-size streams."""

    def __init__(self, channels: int, n_inputs: int, reduction: int, bias: bool):
        super().__init__()
        squeezed = max(channels // reduction, 4)
        self.conv_du = nn.Sequential(nn.Conv2d(channels, squeezed, 1, bias=bias), nn.PReLU())
        self.fcs = nn.ModuleList(nn.Conv2d(squeezed, channels, 1, bias=bias) for _ in range(n_inputs))

    def forward(self, streams: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(streams, dim=1)  # (B, n, C, H, W)
        summary = self.conv_du(stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True))
        weights = torch.stack([fc(summary) for fc in self.fcs], dim=1).softmax(dim=1)
        return (stacked * weights).sum(dim=1)


class ResidualDownSample(nn.Module):
    """Halve the resolution and double the channels: learned path + blur-pool shortcut."""

    def __init__(self, channels: int, bias: bool):
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=bias),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            nn.PReLU(),
            blocks.BlurPool2d(channels),
            nn.Conv2d(channels, 2 * channels, 1, bias=bias),
        )
        self.bot = nn.Sequential(blocks.BlurPool2d(channels), nn.Conv2d(channels, 2 * channels, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x) + self.bot(x)


class ResidualUpSample(nn.Module):
    """Double the resolution and halve the channels: transposed-conv path + bilinear shortcut."""

    def __init__(self, channels: int, bias: bool):
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=bias),
            nn.PReLU(),
            nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1, bias=bias),
            nn.PReLU(),
            nn.Conv2d(channels, channels // 2, 1, bias=bias),
        )
        self.bot = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(channels, channels // 2, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x) + self.bot(x)


class Resample(nn.Module):
    """`steps` chained x2 down- (or up-) samplers starting from `channels` channels."""

    def __init__(self, channels: int, steps: int, down: bool, bias: bool):
        super().__init__()
        stages = []
        for _ in range(steps):
            stages.append(ResidualDownSample(channels, bias) if down else ResidualUpSample(channels, bias))
            channels = channels * 2 if down else channels // 2
        self.body = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MSRB(nn.Module):
    """Multi-scale residual block: `height` resolution levels x `width` DAU columns, with every
    level's streams resampled to each level and fused by SKFF between columns."""

    def __init__(self, n_feat: int, height: int, width: int, act: nn.Module, reduction: int, bias: bool):
        super().__init__()
        self.height, self.width = height, width
        feats = [n_feat * 2**level for level in range(height)]
        # One DAU per level, reused in every column (official weight sharing).
        self.blocks = nn.ModuleList(
            nn.ModuleList([DAU(c, act, reduction, bias)] * width) for c in feats
        )
        self.last_up = nn.ModuleDict(
            {str(level): Resample(feats[level], level, down=False, bias=bias) for level in range(1, height)}
        )
        # Keys "<in channels>_<factor>", insertion order as in the official release.
        self.down = nn.ModuleDict()
        for level in range(height - 1):
            for steps in range(height - 1 - level, 0, -1):
                self.down[f"{feats[level]}_{2**steps}"] = Resample(feats[level], steps, down=True, bias=bias)
        self.up = nn.ModuleDict()
        for level in range(height - 1, 0, -1):
            for steps in range(level, 0, -1):
                self.up[f"{feats[level]}_{2**steps}"] = Resample(feats[level], steps, down=False, bias=bias)
        self.conv_out = _conv(n_feat, n_feat, 3, bias)
        self.selective_kernel = nn.ModuleList(SKFF(c, height, reduction, bias) for c in feats)

    def _to_level(self, x: torch.Tensor, source: int, target: int) -> torch.Tensor:
        if source == target:
            return x
        table = self.down if source < target else self.up
        return table[f"{x.shape[1]}_{2 ** abs(target - source)}"](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        streams = []
        h = x
        for level in range(self.height):
            if level:
                h = self._to_level(h, level - 1, level)
            h = self.blocks[level][0](h)
            streams.append(h)
        for column in range(1, self.width):
            fused = [
                self.selective_kernel[target]([self._to_level(s, source, target) for source, s in enumerate(streams)])
                for target in range(self.height)
            ]
            streams = [self.blocks[level][column](f) for level, f in enumerate(fused)]
        at_full_res = [streams[0]] + [self.last_up[str(level)](streams[level]) for level in range(1, self.height)]
        return self.conv_out(self.selective_kernel[0](at_full_res)) + x


class RRG(nn.Module):
    """Recursive residual group: MSRBs then a 3x3 conv, + input."""

    def __init__(self, n_feat: int, n_msrb: int, height: int, width: int, act: nn.Module, reduction: int, bias: bool):
        super().__init__()
        blocks: list[nn.Module] = [MSRB(n_feat, height, width, act, reduction, bias) for _ in range(n_msrb)]
        self.body = nn.Sequential(*blocks, _conv(n_feat, n_feat, 3, bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class MIRNet(nn.Module):
    """MIRNet denoiser: (B, 3, H, W) in [0, 1] -> denoised (B, 3, H, W) (not clamped).

    Any H, W >= 2**(height - 1): the input is reflect-padded at the bottom/right to a multiple
    of 2**(height - 1) and the output cropped back. Defaults are the released configuration
    (official names: n_RRG, n_MSRB); `reduction` is the channel squeeze of the attention layers.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_feat: int = 64,
        kernel_size: int = 3,
        n_rrg: int = 3,
        n_msrb: int = 2,
        height: int = 3,
        width: int = 2,
        reduction: int = 8,
        bias: bool = False,
    ):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError("MIRNet adds its input to the output: in_channels must equal out_channels")
        if height < 1 or width < 1 or n_feat < reduction:
            raise ValueError(f"need height >= 1, width >= 1 and n_feat >= reduction; got {height}, {width}, {n_feat}")
        self.multiple = 2 ** (height - 1)
        act = nn.PReLU()  # the one PReLU all DAUs share
        self.conv_in = _conv(in_channels, n_feat, kernel_size, bias)
        self.body = nn.Sequential(
            *(RRG(n_feat, n_msrb, height, width, act, reduction, bias) for _ in range(n_rrg))
        )
        self.conv_out = _conv(n_feat, out_channels, kernel_size, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, height, width = pad_to_multiple(x, self.multiple)
        out = self.conv_out(self.body(self.conv_in(padded))) + padded
        return out[..., :height, :width]
