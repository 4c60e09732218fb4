"""MPRNet, denoising variant (Zamir et al., "Multi-Stage Progressive Image Restoration",
CVPR 2021), a real-noise denoiser that PNGAN fine-tunes (METHOD.md §1.9).

The module tree reproduces the state-dict layout of the official release so its weights load
without renaming. Layout facts transcribed from swz30/MPRNet @
43feb2aed45f5e0b9082c78c8c455160e30a3a82, Denoising/MPRNet.py:

- three stages: stage 1 sees the image as four quadrants, stage 2 as two halves (top/bottom),
  stage 3 at full resolution; supervised attention modules (SAM) pass features and an
  intermediate image from one stage to the next;
- one PReLU is shared by every channel attention block (CAB) and is listed under each
  (`...body.1.weight`); the channel attention (`CA`) is registered before `body`;
- each U-Net level has two CABs; resampling is bilinear x2 / x0.5 followed by a 1x1 conv;
- no convolution has a bias at the released configuration.

Released (denoising) configuration: n_feat 80, scale_unetfeats 48, scale_orsnetfeats 32,
num_cab 8, reduction 4: 15,741,025 parameters, 316 state-dict entries.

Stage 1's four quadrants and stage 2's two halves are processed as one batch (the official
code loops over them); every operation is per sample, so the result is the same.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pngan.models.mirnet import ChannelAttention, pad_to_multiple

CABS_PER_UNET_LEVEL = 2  # fixed in the official architecture
MULTIPLE = 8  # two halvings into patches, then two U-Net downsamplings of each patch
Features = list[torch.Tensor]  # one feature map per U-Net level, full resolution first


def _conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)


def _split(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Cut the batch in two halves along spatial `dim` and stack the halves along the batch."""
    return torch.cat(x.chunk(2, dim=dim), dim=0)


def _join(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of `_split`: put the two batch halves back side by side along `dim`."""
    return torch.cat(x.chunk(2, dim=0), dim=dim)


class CAB(nn.Module):
    """Channel attention block: conv-act-conv, channel attention, + input."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module):
        super().__init__()
        self.CA = ChannelAttention(channels, reduction, bias)
        self.body = nn.Sequential(
            _conv(channels, channels, kernel_size, bias), act, _conv(channels, channels, kernel_size, bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.CA(self.body(x)) + x


def _cabs(n: int, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> list[nn.Module]:
    return [CAB(channels, kernel_size, reduction, bias, act) for _ in range(n)]


def _unet_level(channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(*_cabs(CABS_PER_UNET_LEVEL, channels, kernel_size, reduction, bias, act))


class SAM(nn.Module):
    """Supervised attention module: predicts the stage's image and gates the features with it."""

    def __init__(self, n_feat: int, kernel_size: int, bias: bool):
        super().__init__()
        self.conv1 = _conv(n_feat, n_feat, kernel_size, bias)
        self.conv2 = _conv(n_feat, 3, kernel_size, bias)
        self.conv3 = _conv(3, n_feat, kernel_size, bias)

    def forward(self, feats: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        restored = self.conv2(feats) + image
        gated = self.conv1(feats) * torch.sigmoid(self.conv3(restored)) + feats
        return gated, restored


class DownSample(nn.Module):
    """Bilinear x0.5, then 1x1 conv adding `extra` channels."""

    def __init__(self, channels: int, extra: int):
        super().__init__()
        self.down = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False),
            nn.Conv2d(channels, channels + extra, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x)


class UpSample(nn.Module):
    """Bilinear x2, then 1x1 conv from `channels + extra` down to `channels` channels."""

    def __init__(self, channels: int, extra: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(channels + extra, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class Encoder(nn.Module):
    """Three-level U-Net encoder; with `csff` it adds the previous stage's encoder and decoder
    features at each level (cross-stage feature fusion)."""

    def __init__(
        self, n_feat: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, step: int, csff: bool
    ):
        super().__init__()
        widths = [n_feat, n_feat + step, n_feat + 2 * step]
        self.encoder_level1 = _unet_level(widths[0], kernel_size, reduction, bias, act)
        self.encoder_level2 = _unet_level(widths[1], kernel_size, reduction, bias, act)
        self.encoder_level3 = _unet_level(widths[2], kernel_size, reduction, bias, act)
        self.down12 = DownSample(widths[0], step)
        self.down23 = DownSample(widths[1], step)
        self.csff = csff
        if csff:
            for prefix in ("csff_enc", "csff_dec"):
                for level, c in enumerate(widths, start=1):
                    self.add_module(f"{prefix}{level}", nn.Conv2d(c, c, 1, bias=bias))

    def _fuse(self, level: int, x: torch.Tensor, enc: Features | None, dec: Features | None) -> torch.Tensor:
        if enc is None or dec is None:
            return x
        csff_enc, csff_dec = getattr(self, f"csff_enc{level}"), getattr(self, f"csff_dec{level}")
        return x + csff_enc(enc[level - 1]) + csff_dec(dec[level - 1])

    def forward(self, x: torch.Tensor, enc: Features | None = None, dec: Features | None = None) -> Features:
        if (enc is None) != (dec is None) or (enc is not None and not self.csff):
            raise ValueError("pass both previous-stage feature lists, and only to an encoder built with csff")
        e1 = self._fuse(1, self.encoder_level1(x), enc, dec)
        e2 = self._fuse(2, self.encoder_level2(self.down12(e1)), enc, dec)
        e3 = self._fuse(3, self.encoder_level3(self.down23(e2)), enc, dec)
        return [e1, e2, e3]


class SkipUpSample(UpSample):
    """UpSample, then add the skip connection."""

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.up(x) + skip


class Decoder(nn.Module):
    """Three-level U-Net decoder with channel-attention on the skip connections."""

    def __init__(self, n_feat: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, step: int):
        super().__init__()
        widths = [n_feat, n_feat + step, n_feat + 2 * step]
        self.decoder_level1 = _unet_level(widths[0], kernel_size, reduction, bias, act)
        self.decoder_level2 = _unet_level(widths[1], kernel_size, reduction, bias, act)
        self.decoder_level3 = _unet_level(widths[2], kernel_size, reduction, bias, act)
        self.skip_attn1 = CAB(widths[0], kernel_size, reduction, bias, act)
        self.skip_attn2 = CAB(widths[1], kernel_size, reduction, bias, act)
        self.up21 = SkipUpSample(widths[0], step)
        self.up32 = SkipUpSample(widths[1], step)

    def forward(self, feats: Features) -> Features:
        e1, e2, e3 = feats
        d3 = self.decoder_level3(e3)
        d2 = self.decoder_level2(self.up32(d3, self.skip_attn2(e2)))
        d1 = self.decoder_level1(self.up21(d2, self.skip_attn1(e1)))
        return [d1, d2, d3]


class ORB(nn.Module):
    """Original-resolution block: `num_cab` CABs then a 3x3 conv, + input."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, num_cab: int):
        super().__init__()
        self.body = nn.Sequential(
            *_cabs(num_cab, channels, kernel_size, reduction, bias, act), _conv(channels, channels, kernel_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class ORSNet(nn.Module):
    """Stage 3: three ORBs at full resolution, each followed by the stage-2 U-Net features of one
    level, brought up to full resolution and projected to the ORSNet width."""

    def __init__(
        self, n_feat: int, orsnet_step: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool,
        unet_step: int, num_cab: int,
    ):
        super().__init__()
        width = n_feat + orsnet_step
        self.orb1 = ORB(width, kernel_size, reduction, act, bias, num_cab)
        self.orb2 = ORB(width, kernel_size, reduction, act, bias, num_cab)
        self.orb3 = ORB(width, kernel_size, reduction, act, bias, num_cab)
        self.up_enc1 = UpSample(n_feat, unet_step)
        self.up_dec1 = UpSample(n_feat, unet_step)
        self.up_enc2 = nn.Sequential(UpSample(n_feat + unet_step, unet_step), UpSample(n_feat, unet_step))
        self.up_dec2 = nn.Sequential(UpSample(n_feat + unet_step, unet_step), UpSample(n_feat, unet_step))
        for prefix in ("conv_enc", "conv_dec"):
            for level in (1, 2, 3):
                self.add_module(f"{prefix}{level}", nn.Conv2d(n_feat, width, 1, bias=bias))

    def forward(self, x: torch.Tensor, enc: Features, dec: Features) -> torch.Tensor:
        x = self.orb1(x) + self.conv_enc1(enc[0]) + self.conv_dec1(dec[0])
        x = self.orb2(x) + self.conv_enc2(self.up_enc1(enc[1])) + self.conv_dec2(self.up_dec1(dec[1]))
        x = self.orb3(x) + self.conv_enc3(self.up_enc2(enc[2])) + self.conv_dec3(self.up_dec2(dec[2]))
        return x


class MPRNet(nn.Module):
    """MPRNet denoiser on (B, 3, H, W) images in [0, 1].

    `forward(x)` returns the three stage outputs `[stage3, stage2, stage1]`, final image first,
    like the official code (train with a loss on all three); `denoise(x)` returns the final image
    only. Outputs are not clamped. Any H, W >= 8: the input is reflect-padded at the
    bottom/right to a multiple of 8 and every output cropped back. Defaults are the released
    denoising configuration; the official argument names are kept.
    """

    def __init__(
        self,
        in_c: int = 3,
        out_c: int = 3,
        n_feat: int = 80,
        scale_unetfeats: int = 48,
        scale_orsnetfeats: int = 32,
        num_cab: int = 8,
        kernel_size: int = 3,
        reduction: int = 4,
        bias: bool = False,
    ):
        super().__init__()
        if in_c != 3 or out_c != 3:
            raise ValueError("MPRNet's supervised attention predicts RGB images: in_c and out_c must be 3")
        if n_feat < reduction:
            raise ValueError(f"n_feat ({n_feat}) must be at least reduction ({reduction})")
        act = nn.PReLU()  # the one PReLU all CABs share
        for stage in (1, 2, 3):
            self.add_module(
                f"shallow_feat{stage}",
                nn.Sequential(_conv(in_c, n_feat, kernel_size, bias), CAB(n_feat, kernel_size, reduction, bias, act)),
            )
        self.stage1_encoder = Encoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats, csff=False)
        self.stage1_decoder = Decoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats)
        self.stage2_encoder = Encoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats, csff=True)
        self.stage2_decoder = Decoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats)
        self.stage3_orsnet = ORSNet(
            n_feat, scale_orsnetfeats, kernel_size, reduction, act, bias, scale_unetfeats, num_cab
        )
        self.sam12 = SAM(n_feat, kernel_size=1, bias=bias)
        self.sam23 = SAM(n_feat, kernel_size=1, bias=bias)
        self.concat12 = _conv(2 * n_feat, n_feat, kernel_size, bias)
        self.concat23 = _conv(2 * n_feat, n_feat + scale_orsnetfeats, kernel_size, bias)
        self.tail = _conv(n_feat + scale_orsnetfeats, out_c, kernel_size, bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        padded, height, width = pad_to_multiple(x, MULTIPLE)
        return [out[..., :height, :width] for out in self._stages(padded)]

    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        """The final (stage 3) image only."""
        return self.forward(x)[0]

    def _stages(self, x3: torch.Tensor) -> list[torch.Tensor]:
        # Batch layout: halves = [top; bottom], quadrants = [top-left; bottom-left; top-right; bottom-right].
        x2 = _split(x3, dim=2)
        x1 = _split(x2, dim=3)

        enc1 = [_join(f, dim=3) for f in self.stage1_encoder(self.shallow_feat1(x1))]
        dec1 = self.stage1_decoder(enc1)
        sam_feats2, image1 = self.sam12(dec1[0], x2)

        stage2_in = self.concat12(torch.cat([self.shallow_feat2(x2), sam_feats2], dim=1))
        enc2 = [_join(f, dim=2) for f in self.stage2_encoder(stage2_in, enc1, dec1)]
        dec2 = self.stage2_decoder(enc2)
        sam_feats3, image2 = self.sam23(dec2[0], x3)

        stage3_in = self.concat23(torch.cat([self.shallow_feat3(x3), sam_feats3], dim=1))
        image3 = self.tail(self.stage3_orsnet(stage3_in, enc2, dec2)) + x3
        return [image3, image2, _join(image1, dim=2)]
