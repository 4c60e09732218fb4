"""Small stand-in networks for the training tests (the real ones live in pngan.models).

Training code builds networks by name; these are named 'trainer_standins:<Class>' (tests/ is on
sys.path under pytest, and on PYTHONPATH for the torchrun subprocess)."""

from __future__ import annotations

import torch
import torch.nn as nn

from pngan.noise.base import NoiseModel


class TinyGenerator(nn.Module):
    """y + conv(lrelu(conv(y))): a residual generator with a 5x5 receptive field.

    `nan_calls`: training-mode forward calls (0-based) whose output is NaN, to test the guard."""

    def __init__(self, width: int = 4, nan_calls: tuple[int, ...] = ()):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        self.nan_calls = set(nan_calls)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.tail(torch.nn.functional.leaky_relu(self.head(x), 0.2))
        if self.training:
            if self.calls in self.nan_calls:
                out = out * float("nan")
            self.calls += 1
        return out


class TinyDiscriminator(nn.Module):
    """Per-pixel logits (B, 1, H, W), with a batch norm like the paper's discriminator."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyDenoiser(nn.Module):
    """x - tail(relu(body(relu(head(x))))): a residual denoiser; `body` is its deepest feature map."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Conv2d(width, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.tail(torch.relu(self.body(torch.relu(self.head(x)))))


class StandinAWGN(NoiseModel):
    """x + sigma * N(0, 1), clipped and quantised by NoiseModel.sample (like pngan.noise 'awgn')."""

    name = "standin_awgn"

    def __init__(self, sigma: float = 50 / 255):
        self.sigma = sigma

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return clean + self.sigma * torch.randn(clean.shape, generator=generator, device=clean.device)
