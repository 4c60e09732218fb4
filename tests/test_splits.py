"""Splits without leakage, and per-metadata averages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pngan.data.pairs import Pair
from pngan.data.readers import read_dataset
from pngan.data.splits import group_key, group_metrics, split_pairs

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def synthetic_pairs(n_scenes: int, per_scene: int) -> list[Pair]:
    return [
        Pair(f"s{s}_{j}", None, None, {"dataset": "synth", "scene": f"s{s}", "camera": f"cam{s % 3}"})
        for s in range(n_scenes)
        for j in range(per_scene)
    ]


def parts_of(splits: dict[str, list[Pair]], key: str) -> dict[str, set[str]]:
    return {name: {str(p.meta.get(key, p.name)) for p in pairs} for name, pairs in splits.items()}


def assert_disjoint(splits: dict[str, list[Pair]], key: str) -> None:
    seen: dict[str, str] = {}
    for name, values in parts_of(splits, key).items():
        for v in values:
            assert v not in seen, f"{key} {v} in both {seen[v]} and {name}"
            seen[v] = name


def test_no_scene_in_two_splits_and_sizes_follow_fractions():
    pairs = synthetic_pairs(20, 3)
    splits = split_pairs(pairs, FRACTIONS, seed=0)
    assert_disjoint(splits, "scene")
    assert {k: len(v) for k, v in splits.items()} == {"train": 36, "val": 12, "test": 12}
    assert sorted(p.name for v in splits.values() for p in v) == sorted(p.name for p in pairs)


def test_deterministic_and_seed_dependent():
    pairs = synthetic_pairs(20, 2)
    names = lambda s: {k: [p.name for p in v] for k, v in s.items()}  # noqa: E731
    assert names(split_pairs(pairs, FRACTIONS, seed=3)) == names(split_pairs(pairs, FRACTIONS, seed=3))
    assert names(split_pairs(pairs, FRACTIONS, seed=3)) != names(split_pairs(pairs, FRACTIONS, seed=4))


def test_small_parts_get_a_group_when_there_are_enough():
    pairs = synthetic_pairs(3, 5)
    splits = split_pairs(pairs, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    assert all(len(v) == 5 for v in splits.values())
    assert split_pairs(synthetic_pairs(1, 4), {"train": 0.8, "test": 0.2})["test"] == []


def test_uneven_groups_land_close_to_the_targets():
    sizes = [11, 4, 3, 3, 2, 2]  # targets 17.5 / 3.75 / 3.75: the best is 11+3+3 / 4 / 2+2
    pairs = [Pair(f"g{g}_{j}", None, None, {"scene": f"g{g}"}) for g, n in enumerate(sizes) for j in range(n)]
    for seed in range(5):
        splits = split_pairs(pairs, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=seed)
        assert {k: len(v) for k, v in splits.items()} == {"train": 17, "val": 4, "test": 4}
        assert_disjoint(splits, "scene")


def test_group_by_camera_and_pairs_without_the_key():
    pairs = synthetic_pairs(9, 2) + [Pair("loose", None, None, {"dataset": "synth"})]
    splits = split_pairs(pairs, {"a": 0.5, "b": 0.5}, group_by="camera", seed=1)
    assert_disjoint(splits, "camera")
    assert group_key(pairs[-1], "camera") == ("synth", "file=loose")
    assert group_key(pairs[0], "file") == ("synth", "file=s0_0")
    # equal labels in different data sets are different groups
    assert group_key(Pair("x", None, None, {"dataset": "A", "scene": "1"}), "scene") != group_key(
        Pair("x", None, None, {"dataset": "B", "scene": "1"}), "scene"
    )


def test_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        split_pairs(synthetic_pairs(3, 1), {"train": 0.8, "val": 0.1})
    with pytest.raises(ValueError, match="non-negative"):
        split_pairs(synthetic_pairs(3, 1), {"train": 1.2, "val": -0.2})


@pytest.mark.shared_data
def test_dev_data_splits_keep_scenes_apart(real_pairs_dev):
    for family in ("SIDD_small", "PolyU", "Nam_CC60"):
        pairs = read_dataset("generic", real_pairs_dev / family)
        for seed in range(3):
            splits = split_pairs(pairs, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=seed)
            assert_disjoint(splits, "scene")
            assert all(splits.values()), family


def test_group_metrics_averages_by_metadata():
    rows = [
        {"name": "a", "camera": "S6", "iso": 100, "psnr": 30.0, "akld": 0.2, "block": 1},
        {"name": "b", "camera": "S6", "iso": 100, "psnr": 34.0, "akld": 0.4, "block": 2},
        {"name": "c", "camera": "S6", "iso": 800, "psnr": 20.0, "akld": 0.1, "block": 3},
        {"name": "d", "camera": "GP", "iso": 100, "psnr": 25.0, "akld": 0.3, "block": 4},
    ]
    out = group_metrics(rows)
    assert list(out.columns) == ["camera", "iso", "n", "psnr", "akld"]
    got = {(r.camera, r.iso): (r.n, r.psnr, r.akld) for r in out.itertuples()}
    assert got == {("GP", 100): (1, 25.0, 0.3), ("S6", 100): (2, 32.0, pytest.approx(0.3)), ("S6", 800): (1, 20.0, 0.1)}
    by_camera = group_metrics(pd.DataFrame(rows + [{"name": "e", "psnr": 40.0}]), by=["camera"], metrics=["psnr"])
    assert by_camera["psnr"].tolist()[:2] == [25.0, 28.0] and np.isnan(by_camera["camera"].iloc[2]) and by_camera["psnr"].iloc[2] == 40.0
    with pytest.raises(ValueError, match="no column.s. scene"):
        group_metrics(rows, by=["scene"])
