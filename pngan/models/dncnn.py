"""DnCNN (Zhang et al., TIP 2017) in KAIR's layout, `model.N.weight/bias` keys.

One class, two configurations:
- default, the kit's PGap denoiser: 17 conv layers, 64 channels, batch norm in the 15 inner
  layers, residual (the network predicts the noise and subtracts it): 559,363 parameters;
- `DnCNN.kair_color()`: KAIR's released colour blind model (`dncnn_color_blind.pth`): 20 conv
  layers, batch norm folded into the conv biases (`batch_norm=False`), residual: 668,227
  parameters, 40 state-dict entries, so released KAIR weights load.
Layout transcribed from cszn/KAIR @ fc1732f4a4514e42ce15e5b3a1e18c828af47a1e
(models/network_dncnn.py, models/basicblock.py): conv(+ReLU) head, conv(+BN)+ReLU body, conv
tail, flattened into one `nn.Sequential` named `model`. Batch norm uses torch's defaults
(KAIR trains with eps 1e-4 and its own momentum; only affects unmerged training checkpoints).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class DnCNN(nn.Module):
    """(B, C, H, W) noisy image -> denoised image, any H, W.

    Args:
        depth: number of conv layers (17; KAIR's blind models 20).
        width: feature channels (64).
        batch_norm: batch norm after each inner conv (True; False for BN folded into biases).
        residual: predict the noise and subtract it (True) or predict the clean image (False).
        channels: image channels (3).
    """

    def __init__(
        self, depth: int = 17, width: int = 64, batch_norm: bool = True, residual: bool = True, channels: int = 3
    ):
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN needs depth >= 2, got {depth}")
        self.residual = residual
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(width, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    @classmethod
    def kair_color(cls) -> "DnCNN":
        """KAIR's colour blind DnCNN (20 layers, BN folded into the convs)."""
        return cls(depth=20, width=64, batch_norm=False, residual=True, channels=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return x - out if self.residual else out
