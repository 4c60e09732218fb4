"""Patch sets on disk, and PairDataset: aligned crops under the key protocol, lazy or cached,
deterministic whatever the number of loader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pngan.data.pairs import ArrayImage, FileImage, Pair
from pngan.data.patches import PairDataset, crop_boxes, dihedral, make_patch_set, read_patch_set
from pngan.data.readers import read_dataset
from pngan.data.sampling import StepSampler, make_loader
from pngan.images import DataError, write_png

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


def array_pair(index: int, loads: list[str] | None = None) -> Pair:
    """An in-memory pair; each image load is appended to `loads`."""
    noisy, clean = coded_pair(index)

    def loader(side: str, image: np.ndarray):
        return lambda: (loads.append(f"{side}{index}") if loads is not None else None) or image

    return Pair(f"p{index}", ArrayImage(f"noisy{index}", loader("noisy", noisy)), ArrayImage(f"clean{index}", loader("clean", clean)), {"scene": f"s{index}"})


def written_pairs(root, n: int, clean_only: bool = False) -> list[Pair]:
    for i in range(n):
        noisy, clean = coded_pair(i)
        write_png(root / "clean" / f"p{i}.png", clean)
        if not clean_only:
            write_png(root / "noisy" / f"p{i}.png", noisy)
    return read_dataset("clean", root / "clean") if clean_only else read_dataset("generic", root)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.numpy() * 255).round().astype(np.int64)


def decode(item: dict) -> tuple[int, int, int, int]:
    """(source index, top, left, transform) of a sample, from the position code of its clean crop."""
    clean = to_uint8(item["clean"])
    top, left = clean[0].min(), clean[1].min()
    crop = clean.shape[1]
    source = torch.from_numpy(np.stack(np.mgrid[top : top + crop, left : left + crop]))
    matches = [t for t in range(8) if np.array_equal(dihedral(source, t).numpy(), clean[:2])]
    assert len(matches) == 1 and len(np.unique(clean[2])) == 1
    return int(clean[2, 0, 0]), int(top), int(left), matches[0]


def test_crops_of_noisy_and_clean_are_aligned_and_all_8_transforms_reachable():
    dataset = PairDataset([array_pair(i) for i in range(4)], crop=16, seed=0)
    transforms = set()
    for key in range(64):
        item = dataset[key]
        assert set(item) == {"clean", "noisy"} and item["clean"].shape == item["noisy"].shape == (3, 16, 16)
        assert item["clean"].dtype == item["noisy"].dtype == torch.float32
        clean, noisy = to_uint8(item["clean"]), to_uint8(item["noisy"])
        # every pixel of the noisy crop is the noisy value at the clean pixel's own position
        assert np.array_equal(noisy[:2], clean[:2])
        index, top, left, t = decode(item)
        assert index == key % 4  # the key protocol: image k % n
        assert np.array_equal(noisy[2], (index + pattern(clean[0], clean[1])) % 256)
        assert 0 <= top <= SIZE - 16 and 0 <= left <= SIZE + 8 - 16
        assert torch.equal(dataset[key]["noisy"], item["noisy"])  # a key always gives the same sample
        transforms.add(t)
    assert transforms == set(range(8))
    plain = PairDataset([array_pair(0)], crop=16, augment=False)
    assert {decode(plain[k])[3] for k in range(10)} == {0}
    assert len({decode(plain[k])[1:3] for k in range(10)}) > 5  # fresh crops per key
    assert decode(PairDataset([array_pair(0)], crop=16, seed=1)[0]) != decode(dataset[0])


def test_whole_images_without_crop_are_the_pairs_themselves():
    dataset = PairDataset([array_pair(i) for i in range(3)])
    for key in range(3):
        noisy, clean = coded_pair(key)
        assert np.array_equal(to_uint8(dataset[key]["clean"]).transpose(1, 2, 0), clean)
        assert np.array_equal(to_uint8(dataset[key]["noisy"]).transpose(1, 2, 0), noisy)
    with pytest.raises(IndexError, match="keys are integers >= 0, got -1"):
        dataset[-1]


def test_dihedral_transforms_are_the_8_distinct_symmetries():
    a = torch.arange(12).reshape(1, 3, 4)
    outs = [dihedral(a, t) for t in range(8)]
    assert len({o.numpy().tobytes() + bytes(o.shape) for o in outs}) == 8
    np.testing.assert_array_equal(dihedral(a, 1)[0].numpy(), np.rot90(a[0].numpy()))  # counter-clockwise
    np.testing.assert_array_equal(dihedral(a, 4)[0].numpy(), a[0].numpy()[:, ::-1])
    np.testing.assert_array_equal(dihedral(a, 5)[0].numpy(), np.rot90(a[0].numpy())[:, ::-1])
    with pytest.raises(ValueError, match="dihedral code must be in 0..7, got 8"):
        dihedral(a, 8)


def loader_batches(dataset: PairDataset, workers: int, steps: int = 3, seed: int = 1) -> list[dict]:
    return list(make_loader(dataset, StepSampler(len(dataset), 4, steps, seed), workers=workers))


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        assert all(torch.equal(x[k], y[k]) for k in x)


def test_loader_is_deterministic_whatever_the_workers_and_resumes_at_any_step(tmp_path):
    pairs = written_pairs(tmp_path, 6)
    single = loader_batches(PairDataset(pairs, crop=16, seed=5), workers=0)
    assert len(single) == 3 and single[0]["clean"].shape == (4, 3, 16, 16)
    assert_same_batches(single, loader_batches(PairDataset(pairs, crop=16, seed=5), workers=0))
    assert_same_batches(single, loader_batches(PairDataset.from_folder(tmp_path, crop=16, seed=5), workers=2))
    assert_same_batches(single, loader_batches(PairDataset(pairs, crop=16, seed=5, cache=True), workers=2))
    # a run restarted at step 2 gets the batch of the uninterrupted run, without loader state
    resumed = list(make_loader(PairDataset(pairs, crop=16, seed=5), StepSampler(6, 4, 3, seed=1, start_step=2)))
    assert_same_batches(single[2:], resumed)
    assert not torch.equal(single[0]["clean"], single[1]["clean"])  # each step new samples
    other = loader_batches(PairDataset(pairs, crop=16, seed=6), workers=0)
    assert not torch.equal(single[0]["clean"], other[0]["clean"])  # the dataset seed picks the crops


def test_reads_lazily_by_default_and_caches_within_its_bound():
    loads: list[str] = []
    lazy = PairDataset([array_pair(i, loads) for i in range(6)], crop=16)
    assert loads == [] and lazy.cached == 0
    items = [lazy[k] for k in range(12)]
    assert len(loads) == 2 * 12  # both images of every sample read when asked for
    image_bytes = 2 * SIZE * (SIZE + 8) * 3
    loads.clear()
    cached = PairDataset([array_pair(i, loads) for i in range(6)], crop=16, cache=True, cache_mb=3.5 * image_bytes / 2**20)
    assert cached.cached == 3 and sorted(loads) == sorted(f"{s}{i}" for i in range(4) for s in ("clean", "noisy"))  # the 4th did not fit
    loads.clear()
    for k, item in enumerate(items):
        again = cached[k]
        assert all(torch.equal(item[side], again[side]) for side in item)
    assert sorted(loads) == sorted(f"{s}{k % 6}" for k in range(12) if k % 6 >= 3 for s in ("clean", "noisy"))
    assert PairDataset([array_pair(i) for i in range(6)], cache=True).cached == 6  # the default bound holds a small set


def test_synthetic_input_is_drawn_once_per_image_and_cut_like_the_pair():
    dataset = PairDataset([array_pair(i) for i in range(3)], crop=16, seed=2)
    # image 1: the negative of its clean image (shows the crop and flip); the others: their index
    fixed = dataset.with_synthetic(lambda clean, index: 1 - clean if index == 1 else torch.full_like(clean, index / 255))
    assert fixed.cached == 3 and dataset.cached == 0
    for key in range(12):
        item, plain = fixed[key], dataset[key]
        assert set(item) == {"clean", "noisy", "synthetic"}
        assert torch.equal(item["clean"], plain["clean"]) and torch.equal(item["noisy"], plain["noisy"])
        index = key % 3
        want = 1 - item["clean"] if index == 1 else torch.full_like(item["clean"], index / 255)
        assert torch.allclose(item["synthetic"], want, atol=1e-6)  # same crop and flip as the clean image
    with pytest.raises(ValueError, match=r"with_synthetic keeps every image and its synthetic input in memory: more than cache_mb = 0.01 MiB by image 0 \('p0'\)"):
        PairDataset([array_pair(0)], cache_mb=0.01).with_synthetic(lambda clean, index: clean)
    with pytest.raises(ValueError, match=r"make returned \(1, 3, 8, 8\)"):
        dataset.with_synthetic(lambda clean, index: clean[..., :8, :8])


def test_clean_only_pairs_missing_sides_and_too_small_images(tmp_path):
    pairs = written_pairs(tmp_path, 2, clean_only=True)
    item = PairDataset(pairs, crop=8, sides=("clean",))[0]
    assert set(item) == {"clean"} and item["clean"].shape == (3, 8, 8)
    with pytest.raises(DataError, match=r"p0.png: pair 'p0' has no noisy image \(this data set needs clean and noisy\)"):
        PairDataset(pairs, crop=8)
    with pytest.raises(DataError, match=r"p0.png: 56x48 image is smaller than the 50x50 crop"):
        PairDataset(pairs, crop=50, sides=("clean",))[0]
    mixed = PairDataset(pairs + [array_pair(3)], crop=8, sides=("clean",))
    assert set(mixed[2]) == {"clean"}
    with pytest.raises(ValueError, match="sides must be distinct names among"):
        PairDataset(pairs, sides=("clean", "synthetic"))
    with pytest.raises(ValueError, match="from the clean images; this data set has none"):
        PairDataset([array_pair(0)], sides=("noisy",)).with_synthetic(lambda clean, index: clean)


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
    dataset = PairDataset.from_folder(tmp_path / "out", crop=16)
    assert len(dataset) == 13 and dataset[0]["noisy"].shape == (3, 16, 16)
    assert dataset.pairs[0].meta["source"] == "p0"  # read through the index, with its metadata


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
