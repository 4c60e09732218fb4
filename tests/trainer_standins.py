"""Small stand-in networks for the training tests (the real ones live in pngan.models).

Training code builds networks by name; these are named 'trainer_standins:<Class>' (tests/ is on
sys.path under pytest, and on PYTHONPATH for the torchrun subprocess)."""

from __future__ import annotations

import torch
import torch.nn as nn

from pngan.noise.base import NoiseModel


class TinyGenerator(nn.Module):
    """y + conv(lrelu(conv(y))): a residual generator with a 5x5 receptive field.

    `nan_calls`: training-mode forward calls (0-based) whose output is NaN, to test the guard;
    `zero_init_last`: start as the identity."""

    def __init__(self, width: int = 4, nan_calls: tuple[int, ...] = (), zero_init_last: bool = False):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        if zero_init_last:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
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


def tensor_pairs(clean: torch.Tensor, noisy: torch.Tensor, crop: int | None = 16, augment: bool = True, seed: int = 0):
    """A PairDataset (in memory) of (n, 3, H, W) uint8 clean and noisy batches; image i is named
    'clean i' / 'noisy i' in error messages."""
    from pngan.data.pairs import ArrayImage, Pair
    from pngan.data.patches import PairDataset

    def image(batch: torch.Tensor, side: str, i: int) -> ArrayImage:
        array = batch[i].permute(1, 2, 0).numpy()
        return ArrayImage(f"{side} {i}", lambda: array)

    pairs = [Pair(f"image {i}", image(noisy, "noisy", i), image(clean, "clean", i)) for i in range(len(clean))]
    return PairDataset(pairs, crop, augment, seed, cache=True)


def tiny_pairs(n: int = 4, size: int = 24, crop: int | None = 16, sigma: float = 20.0, seed: int = 0, smooth: bool = False):
    """n random clean images (white, or `smooth` bilinear blends of a 3x3 grid) and their noisy
    versions (clean + N(0, sigma^2) in 8-bit levels) as a key-protocol PairDataset."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 3 if smooth else size, 3 if smooth else size, generator=g)
    clean = (nn.functional.interpolate(base, size=(size, size), mode="bilinear") * 200 + 20).round()
    noisy = (clean + sigma * torch.randn(clean.shape, generator=g)).clamp(0, 255).round()
    return tensor_pairs(clean.to(torch.uint8), noisy.to(torch.uint8), crop=crop, seed=seed)


# what every tiny training run shares: no validation, exact fp32 on the CPU
TINY_RUN = dict(val_every=0, precision="fp32", device="cpu", deterministic=True)


def tiny_gan_config(**overrides):
    from pngan.train.config import GanConfig

    values = dict(
        generator="trainer_standins:TinyGenerator",
        generator_kwargs={"width": 4},
        discriminator="trainer_standins:TinyDiscriminator",
        discriminator_kwargs={"width": 4},
        input_noise="trainer_standins:StandinAWGN",
        crop=16,
        batch=2,
        steps=4,
        log_every=2,
        ckpt_every=2,
        **TINY_RUN,
    )
    values.update(overrides)
    return GanConfig(**values)


def tiny_denoiser_config(**overrides):
    from pngan.train.config import DenoiserConfig

    values = dict(
        arch="trainer_standins:TinyDenoiser",
        arch_kwargs={"width": 4},
        crop=16,
        batch=2,
        steps=4,
        lr=1e-3,
        log_every=2,
        ckpt_every=2,
        **TINY_RUN,
    )
    values.update(overrides)
    return DenoiserConfig(**values)


PROFILES = {"phone_iso100": 6.0, "phone_iso3200": 20.0}  # simulated camera settings: their noise std in /255


def profile_pairs(crop: int | None = 16, per_group: int = 2, size: int = 24, seed: int = 0):
    """Random clean images and noisy versions at each simulated profile's noise std, with the
    profile as metadata (the camera setting a noise-aware generator's levels are fitted per)."""
    import numpy as np

    from pngan.data.pairs import ArrayImage, Pair
    from pngan.data.patches import PairDataset

    rng = np.random.default_rng(seed)
    pairs = []
    for profile, std in PROFILES.items():
        for i in range(per_group):
            clean = rng.integers(40, 215, size=(size, size, 3), dtype=np.uint8)
            noisy = np.clip(clean + rng.normal(0, std, clean.shape), 0, 255).round().astype(np.uint8)
            pairs.append(Pair(f"{profile}_{i}", ArrayImage(f"noisy {profile} {i}", lambda a=noisy: a),
                              ArrayImage(f"clean {profile} {i}", lambda a=clean: a), {"profile": profile}))
    return PairDataset(pairs, crop, crop is not None, seed, cache=True)


def tiny_aware_config(**overrides):
    """The noise-aware task at test size: the kit's own aware generator and discriminator, tiny."""
    from pngan.train.config import AwareGanConfig

    values = dict(
        generator_kwargs={"width": 4, "depth": 1},
        discriminator_kwargs={"width": 4},
        level_knots=3,
        crop=16,
        batch=2,
        steps=4,
        log_every=1,
        ckpt_every=2,
        **TINY_RUN,
    )
    values.update(overrides)
    return AwareGanConfig(**values)
