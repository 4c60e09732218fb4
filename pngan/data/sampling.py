"""Data order that resumes exactly without any saved loader state.

The key protocol: a training dataset of n images answers `dataset[k]` for any integer k >= 0
with image `k % n`, its random crop and flip/rotation drawn from a generator seeded by
(dataset seed, k), as a dict of (3, h, w) float32 tensors in [0, 1]: 'clean', 'noisy' (the real
noisy image) and, when pre-drawn, 'synthetic' (the generator's input y_s). `PairDataset`
(pngan.data.patches) and `MixedPairDataset` (below) follow it.

`StepSampler` makes the keys: at step t, process `rank` draws its batch's image indices i from a
generator seeded by (seed, t, rank) and sends `k = i + n * u`, u being the sample's unique
global number, so every sample gets a fresh crop and any step can be rebuilt from (seed, t, rank).
Each process of a data-parallel run gets its own keys, so no DistributedSampler is needed.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pngan.runtime import keyed_generator


class StepSampler(Sampler[int]):
    """Keys for steps `start_step .. steps - 1` of one process, `batch` keys per step."""

    def __init__(self, num_images: int, batch: int, steps: int, seed: int, rank: int = 0, world_size: int = 1, start_step: int = 0):
        if num_images < 1:
            raise ValueError("StepSampler: the dataset is empty")
        if batch < 1:
            raise ValueError(f"StepSampler: batch must be positive, got {batch}")
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


def make_loader(dataset: Dataset, sampler: StepSampler, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """The training DataLoader: batches of `sampler.batch` keys from `sampler`, read by `workers`
    processes. Workers need no seeding: every random choice comes from the key, so batches are
    the same whatever the number of workers."""
    return DataLoader(dataset, batch_size=sampler.batch, sampler=sampler, num_workers=workers, pin_memory=pin_memory)


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

    def fingerprint(self) -> str:
        """The fingerprints of the sets it draws from, and the ratio (see `PairDataset.fingerprint`)."""
        parts = [getattr(d, "fingerprint", lambda: type(d).__name__)() for d in (self.real, self.fake) if d is not None]
        return "/".join([*parts, f"{self.fake_ratio:g}"])

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        g = keyed_generator(self.seed, key)
        use_fake = float(torch.rand((), generator=g)) < self.fake_ratio
        source = self.fake if use_fake else self.real
        n = len(source)
        j = int(torch.randint(n, (1,), generator=g))
        return source[j + n * key]
