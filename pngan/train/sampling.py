"""Data order that resumes exactly without any saved loader state.

The key protocol: a training dataset of n images answers `dataset[k]` for any integer k >= 0
with image `k % n`, its random crop and flip/rotation drawn from a generator seeded by
(dataset seed, k), as a dict of (3, h, w) float tensors in [0, 1]: 'clean', 'noisy' (the real
noisy image) and, when pre-drawn, 'synthetic' (the generator's input y_s).

`StepSampler` makes the keys: at step t, process `rank` draws its batch's image indices i from a
generator seeded by (seed, t, rank) and sends `k = i + n * u`, u being the sample's unique
global number, so every sample gets a fresh crop and any step can be rebuilt from (seed, t, rank).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pngan.data.pairs import Pair
from pngan.io import DataError


def derive_seed(*keys: int) -> int:
    """A 63-bit seed mixed from integer keys (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


def keyed_generator(*keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded by `derive_seed(*keys)`."""
    return torch.Generator(device=device).manual_seed(derive_seed(*keys))


class StepSampler(Sampler[int]):
    """Keys for steps `start_step .. steps - 1` of one process, `batch` keys per step."""

    def __init__(self, num_images: int, batch: int, steps: int, seed: int, rank: int = 0, world_size: int = 1, start_step: int = 0):
        if num_images < 1:
            raise ValueError("StepSampler: the dataset is empty")
        self.num_images, self.batch, self.steps = num_images, batch, steps
        self.seed, self.rank, self.world_size, self.start_step = seed, rank, world_size, start_step

    def keys_for_step(self, step: int) -> list[int]:
        indices = torch.randint(self.num_images, (self.batch,), generator=keyed_generator(self.seed, step, self.rank))
        first = (step * self.world_size + self.rank) * self.batch
        return [int(i) + self.num_images * (first + j) for j, i in enumerate(indices.tolist())]

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start_step, self.steps):
            yield from self.keys_for_step(step)

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step) * self.batch


def dihedral(image: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a (..., H, W) tensor: rotate by 90 * (code % 4), then
    flip left-right when code >= 4."""
    out = torch.rot90(image, code % 4, dims=(-2, -1))
    return out.flip(-1) if code >= 4 else out


def _as_chw_uint8(image: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(image))
    if t.dtype != torch.uint8 or t.ndim != 3 or 3 not in (t.shape[0], t.shape[-1]):
        raise DataError(f"{what}: expected an 8-bit RGB image (H x W x 3 or 3 x H x W uint8), got {tuple(t.shape)} {t.dtype}")
    return (t.permute(2, 0, 1) if t.shape[-1] == 3 and t.shape[0] != 3 else t).contiguous()


class TensorPairDataset(Dataset):
    """In-memory (clean, noisy) pairs that follow the key protocol.

    Images are kept as 8-bit (3, H, W) tensors and converted to float per sample. With `crop`
    set, each key gets a random crop (and, with `augment`, one of the 8 flips/rotations, the same
    for every image of the sample); with `crop=None` the whole image is returned (validation).
    """

    def __init__(
        self,
        clean: Sequence[np.ndarray | torch.Tensor],
        noisy: Sequence[np.ndarray | torch.Tensor],
        crop: int | None = None,
        augment: bool = True,
        seed: int = 0,
        names: Sequence[str] | None = None,
        synthetic: Sequence[np.ndarray | torch.Tensor] | None = None,
    ):
        if len(clean) != len(noisy) or len(clean) == 0:
            raise ValueError(f"TensorPairDataset: need as many clean as noisy images (>= 1), got {len(clean)} and {len(noisy)}")
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(clean))]
        self.clean = [_as_chw_uint8(c, f"{n} (clean)") for c, n in zip(clean, self.names)]
        self.noisy = [_as_chw_uint8(c, f"{n} (noisy)") for c, n in zip(noisy, self.names)]
        self.synthetic = None if synthetic is None else [_as_chw_uint8(s, f"{n} (synthetic)") for s, n in zip(synthetic, self.names)]
        for name, c, y in zip(self.names, self.clean, self.noisy):
            if c.shape != y.shape:
                raise DataError(f"{name}: noisy image {tuple(y.shape)} and clean image {tuple(c.shape)} differ in size")
            if crop is not None and min(c.shape[1:]) < crop:
                raise DataError(f"{name}: image {c.shape[2]}x{c.shape[1]} is smaller than the crop size {crop}")
        self.crop, self.augment, self.seed = crop, augment, seed

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair], crop: int | None = None, augment: bool = True, seed: int = 0) -> "TensorPairDataset":
        """Load every pair of a reader's list into memory."""
        loaded = [p.load() for p in pairs]
        for pair, (noisy, clean) in zip(pairs, loaded):
            if noisy is None or clean is None:
                raise DataError(f"{pair.name}: a training pair needs both a noisy and a clean image")
        return cls([c for _, c in loaded], [n for n, _ in loaded], crop, augment, seed, [p.name for p in pairs])

    def with_synthetic(self, make: Callable[[torch.Tensor, int], torch.Tensor]) -> "TensorPairDataset":
        """A copy carrying one pre-drawn synthetic input per image: `make(clean (1, 3, H, W), index)`
        returns it in [0, 1] (8-bit levels); crops and flips then cut it like the pair."""
        drawn = []
        for i, c in enumerate(self.clean):
            s = make(c.unsqueeze(0).float().div(255.0), i)[0]
            drawn.append(s.clamp(0, 1).mul(255.0).round().to(torch.uint8))
        return TensorPairDataset(self.clean, self.noisy, self.crop, self.augment, self.seed, self.names, drawn)

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        if key < 0:
            raise IndexError(f"keys are integers >= 0, got {key}")
        index = key % len(self.clean)
        images = {"clean": self.clean[index], "noisy": self.noisy[index]}
        if self.synthetic is not None:
            images["synthetic"] = self.synthetic[index]
        if self.crop is not None:
            g = keyed_generator(self.seed, key)
            h, w = images["clean"].shape[1:]
            top = int(torch.randint(h - self.crop + 1, (1,), generator=g))
            left = int(torch.randint(w - self.crop + 1, (1,), generator=g))
            code = int(torch.randint(8, (1,), generator=g)) if self.augment else 0
            images = {k: dihedral(v[:, top : top + self.crop, left : left + self.crop], code) for k, v in images.items()}
        return {k: v.float().div(255.0).contiguous() for k, v in images.items()}


class MixedPairDataset(Dataset):
    """Real and generated pairs mixed per sample, following the key protocol.

    Key k picks the generated set with probability `fake_ratio` (from a generator seeded by
    (seed, k)), an image j of the chosen set uniformly, and asks that set for key `j + n_set * k`
    (unique, so crops stay fresh). fake_ratio 0 never touches `fake`; 1 never touches `real`.
    """

    def __init__(self, real: Dataset | None, fake: Dataset | None, fake_ratio: float, seed: int = 0):
        if not 0.0 <= fake_ratio <= 1.0:
            raise ValueError(f"fake_ratio must be in [0, 1], got {fake_ratio}")
        if fake_ratio > 0 and fake is None:
            raise ValueError(f"fake_ratio {fake_ratio} > 0 needs a dataset of generated pairs")
        if fake_ratio < 1 and real is None:
            raise ValueError(f"fake_ratio {fake_ratio} < 1 needs a dataset of real pairs")
        self.real, self.fake, self.fake_ratio, self.seed = real, fake, fake_ratio, seed

    def __len__(self) -> int:
        return len(self.fake if self.fake_ratio == 1.0 else self.real)

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        g = keyed_generator(self.seed, key)
        use_fake = float(torch.rand((), generator=g)) < self.fake_ratio
        source = self.fake if use_fake else self.real
        n = len(source)
        j = int(torch.randint(n, (1,), generator=g))
        return source[j + n * key]
