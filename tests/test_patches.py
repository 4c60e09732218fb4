"""Patch sets on disk and the lazy, aligned, deterministic patch dataset and loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from pngan.data.pairs import ArrayImage, FileImage, Pair
from pngan.data.patches import PairPatchDataset, crop_boxes, dihedral, make_loader, make_patch_set, read_patch_set
from pngan.data.readers import read_dataset
from pngan.io import DataError, write_png

SIZE = 48  # source images are SIZE x (SIZE + 8)


def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (7 * y + 13 * x) % 251


def coded_pair(index: int) -> tuple[np.ndarray, np.ndarray]:
    """clean encodes each pixel's position (R = y, G = x, B = index); noisy = clean + a known pattern in B."""
    y, x = np.mgrid[0:SIZE, 0 : SIZE + 8]
    clean = np.stack([y, x, np.full_like(y, index)], axis=-1).astype(np.uint8)
    noisy = clean.copy()
    noisy[..., 2] = (index + pattern(y, x)) % 256
    return noisy, clean


def array_pair(index: int) -> Pair:
    noisy, clean = coded_pair(index)
    return Pair(f"p{index}", ArrayImage(f"noisy{index}", lambda: noisy), ArrayImage(f"clean{index}", lambda: clean), {"scene": f"s{index}"})


def written_pairs(root, n: int, clean_only: bool = False) -> list[Pair]:
    for i in range(n):
        noisy, clean = coded_pair(i)
        write_png(root / "clean" / f"p{i}.png", clean)
        if not clean_only:
            write_png(root / "noisy" / f"p{i}.png", noisy)
    return read_dataset("clean", root / "clean") if clean_only else read_dataset("generic", root)


def decode(item: dict) -> tuple[int, int, int]:
    """(top, left, transform) of a sample, recovered from the position code of its clean crop."""
    clean = (item["clean"].numpy().transpose(1, 2, 0) * 255).round().astype(np.int64)
    top, left = clean[..., 0].min(), clean[..., 1].min()
    crop = clean.shape[0]
    y, x = np.mgrid[top : top + crop, left : left + crop]
    source = np.stack([y, x], axis=-1)
    matches = [t for t in range(8) if np.array_equal(dihedral(source, t), clean[..., :2])]
    assert len(matches) == 1
    return int(top), int(left), matches[0]


def test_crops_of_noisy_and_clean_are_aligned_and_all_8_transforms_reachable():
    dataset = PairPatchDataset([array_pair(i) for i in range(4)], crop=16, seed=0)
    transforms = set()
    for epoch in range(16):
        for index in range(4):
            item = dataset[epoch, index]
            assert item["name"] == f"p{index}" and item["clean"].shape == item["noisy"].shape == (3, 16, 16)
            assert item["clean"].dtype == torch.float32
            clean = (item["clean"].numpy().transpose(1, 2, 0) * 255).round().astype(np.int64)
            noisy = (item["noisy"].numpy().transpose(1, 2, 0) * 255).round().astype(np.int64)
            # every pixel of the noisy crop is the noisy value at the clean pixel's own position
            assert np.array_equal(noisy[..., :2], clean[..., :2])
            assert np.array_equal(noisy[..., 2], (index + pattern(clean[..., 0], clean[..., 1])) % 256)
            top, left, t = decode(item)
            assert 0 <= top <= SIZE - 16 and 0 <= left <= SIZE + 8 - 16
            transforms.add(t)
    assert transforms == set(range(8))
    plain = PairPatchDataset([array_pair(0)], crop=16, augment=False)
    assert {decode(plain[e, 0])[2] for e in range(10)} == {0}


def test_dihedral_transforms_are_the_8_distinct_symmetries():
    a = np.arange(12).reshape(3, 4, 1)
    outs = [dihedral(a, t) for t in range(8)]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    np.testing.assert_array_equal(dihedral(a, 1)[..., 0], np.rot90(a[..., 0]))
    np.testing.assert_array_equal(dihedral(a, 4)[..., 0], a[:, ::-1, 0])
    with pytest.raises(ValueError):
        dihedral(a, 8)


def batches(loader, epochs: int = 2) -> list[dict]:
    return [batch for _ in range(epochs) for batch in loader]


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["name"] == y["name"]
        assert torch.equal(x["clean"], y["clean"]) and torch.equal(x["noisy"], y["noisy"])


def test_loader_deterministic_across_workers_and_epochs(tmp_path):
    pairs = written_pairs(tmp_path, 6)
    single = batches(make_loader(PairPatchDataset(pairs, crop=16, seed=5), batch=4, workers=0, seed=1))
    again = batches(make_loader(PairPatchDataset(pairs, crop=16, seed=5), batch=4, workers=0, seed=1))
    two_workers = batches(make_loader(PairPatchDataset(tmp_path, crop=16, seed=5), batch=4, workers=2, seed=1))
    assert_same_batches(single, again)
    assert_same_batches(single, two_workers)
    # each epoch reshuffles and draws new crops; another seed gives other samples
    assert single[0]["name"] + single[1]["name"] != single[2]["name"] + single[3]["name"]
    other = batches(make_loader(PairPatchDataset(pairs, crop=16, seed=6), batch=4, workers=0, seed=1))
    assert not torch.equal(single[0]["clean"], other[0]["clean"])
    ordered = batches(make_loader(PairPatchDataset(pairs, crop=16), batch=6, shuffle=False), epochs=1)
    assert ordered[0]["name"] == [f"p{i}" for i in range(6)]


def test_distributed_loader_needs_a_process_group_and_covers_the_data(tmp_path):
    dataset = PairPatchDataset([array_pair(i) for i in range(5)], crop=8)
    with pytest.raises(ValueError, match="initialised torch.distributed process group"):
        make_loader(dataset, batch=2, distributed=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        loader = make_loader(dataset, batch=5, distributed=True, seed=3)
        first, second = next(iter(loader)), next(iter(loader))
        assert sorted(first["name"]) == sorted(second["name"]) == [f"p{i}" for i in range(5)]
        assert first["name"] != second["name"]  # DistributedSampler told the new epoch
    finally:
        dist.destroy_process_group()


def test_clean_only_pairs_and_too_small_images(tmp_path):
    pairs = written_pairs(tmp_path, 2, clean_only=True)
    item = PairPatchDataset(pairs, crop=8)[0]
    assert set(item) == {"clean", "name"} and item["clean"].shape == (3, 8, 8)
    with pytest.raises(DataError, match=r"p0.png: 56x48 image is smaller than the 50x50 crop"):
        PairPatchDataset(pairs, crop=50)[0]
    with pytest.raises(ValueError, match="mix noisy.clean and clean-only"):
        PairPatchDataset(pairs + [array_pair(3)], crop=8)


def test_patch_set_crops_match_sources_and_small_images_stay_whole(tmp_path):
    pairs = written_pairs(tmp_path / "src", 3)
    small = tmp_path / "small"
    noisy, clean = coded_pair(9)
    write_png(small / "n.png", noisy[:20, :30])
    write_png(small / "c.png", clean[:20, :30])
    pairs.append(Pair("tiny", FileImage(small / "n.png"), FileImage(small / "c.png"), {"dataset": "mini", "scene": "t", "iso": 100}))
    patches = make_patch_set(pairs, tmp_path / "out", size=32, per_image=4, seed=7)
    assert len(patches) == 3 * 4 + 1
    assert len(list((tmp_path / "out" / "noisy").iterdir())) == len(list((tmp_path / "out" / "clean").iterdir())) == 13
    for p in patches:
        n, c = p.load()
        src = next(s for s in pairs if s.name == p.meta["source"])
        sn, sc = src.load()
        box = (slice(p.meta["top"], p.meta["top"] + p.meta["height"]), slice(p.meta["left"], p.meta["left"] + p.meta["width"]))
        np.testing.assert_array_equal(n, sn[box])
        np.testing.assert_array_equal(c, sc[box])
        assert p.meta["clean_source"] == str(src.clean) and p.meta["scene"] == src.meta["scene"]
        assert "kind" not in p.meta
    tiny = [p for p in patches if p.meta["source"] == "tiny"]
    assert len(tiny) == 1 and (tiny[0].meta["height"], tiny[0].meta["width"]) == (20, 30) and tiny[0].meta["iso"] == 100
    assert {(p.meta["height"], p.meta["width"]) for p in patches if p.meta["source"] != "tiny"} == {(32, 32)}
    # deterministic, seed-dependent, and never silently mixed with an older set
    again = make_patch_set(pairs, tmp_path / "again", size=32, per_image=4, seed=7)
    assert [(p.meta["top"], p.meta["left"]) for p in again] == [(p.meta["top"], p.meta["left"]) for p in patches]
    with pytest.raises(FileExistsError, match="already holds a patch set"):
        make_patch_set(pairs, tmp_path / "again", size=32, per_image=4, seed=8)
    other = make_patch_set(pairs, tmp_path / "again", size=32, per_image=4, seed=8, overwrite=True)
    assert [(p.meta["top"], p.meta["left"]) for p in other] != [(p.meta["top"], p.meta["left"]) for p in patches]
    assert [p.name for p in read_patch_set(tmp_path / "out")] == [p.name for p in patches]
    dataset = PairPatchDataset(tmp_path / "out", crop=16)
    assert len(dataset) == 13 and dataset[0]["noisy"].shape == (3, 16, 16)


def test_clean_only_patch_set(tmp_path):
    pairs = written_pairs(tmp_path / "src", 2, clean_only=True)
    patches = make_patch_set(pairs, tmp_path / "out", size=16, per_image=2)
    assert not (tmp_path / "out" / "noisy").exists() and len(patches) == 4
    assert all(p.noisy is None for p in patches)


def test_crop_boxes_cover_every_offset():
    rng = np.random.default_rng(0)
    boxes = crop_boxes(10, 12, 8, 2000, rng)
    assert {b[0] for b in boxes} == set(range(3)) and {b[1] for b in boxes} == set(range(5))
    assert crop_boxes(6, 20, 8, 3, rng)[0][::2] == (0, 6)  # the short side is kept whole
