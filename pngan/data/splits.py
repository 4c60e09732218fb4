"""Train / val / test splits without leakage, and per-metadata averages.

A split never puts one group (a scene, a camera, a source image: any metadata key) in two
parts. Groups are keyed by (dataset, value), so equal labels of different data sets stay apart;
a pair without the key is its own group.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pngan.data.pairs import Pair
from pngan.data.readers import INT_META_KEYS


def group_key(pair: Pair, group_by: str) -> tuple[str, str]:
    """The group a pair belongs to: (dataset, meta[group_by]), or its own name when the key is absent."""
    if group_by != "file" and group_by in pair.meta:
        return str(pair.meta.get("dataset", "")), f"{group_by}={pair.meta[group_by]}"
    return str(pair.meta.get("dataset", "")), f"file={pair.name}"


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions or any(f < 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")


def _assign(
    order: np.ndarray, sizes: list[int], fractions: Mapping[str, float], total: int
) -> tuple[list[str], dict[str, int]]:
    """Greedy pass: each group, in `order`, goes to the part furthest below its target count;
    parts with a positive fraction that are still empty take the last groups if they must."""
    positive = [s for s in fractions if fractions[s] > 0]
    counts = dict.fromkeys(fractions, 0)
    part_of = [""] * len(sizes)
    for visited, g in enumerate(order):
        empty = [s for s in positive if counts[s] == 0]
        candidates = empty if len(empty) >= len(order) - visited else positive
        part = max(candidates, key=lambda s: (fractions[s] * total - counts[s], fractions[s]))
        part_of[g] = part
        counts[part] += sizes[g]
    return part_of, counts


def split_pairs(
    pairs: Sequence[Pair],
    fractions: Mapping[str, float],
    group_by: str = "scene",
    seed: int = 0,
    tries: int = 64,
) -> dict[str, list[Pair]]:
    """Split pairs into named parts (e.g. {'train': .8, 'val': .1, 'test': .1}) by whole groups.

    `group_by` is a metadata key ('scene', 'camera', 'image', ...) or 'file'. `tries` seeded
    random group orders are each assigned greedily (a group goes to the part furthest below its
    target pair count; every part with a positive fraction gets a group while there are
    enough); the assignment closest to the target counts wins. Deterministic for a given seed;
    pairs keep their input order inside each part.
    """
    _check_fractions(fractions)
    groups: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for p in pairs:
        groups[group_key(p, group_by)].append(p)
    keys = sorted(groups)
    sizes = [len(groups[k]) for k in keys]
    rng = np.random.default_rng(seed)
    candidates = [_assign(rng.permutation(len(keys)), sizes, fractions, len(pairs)) for _ in range(tries)]
    part_of, _ = min(candidates, key=lambda c: sum(abs(c[1][s] - fractions[s] * len(pairs)) for s in fractions))
    part_by_key = dict(zip(keys, part_of))
    return {s: [p for p in pairs if part_by_key[group_key(p, group_by)] == s] for s in fractions}


def group_metrics(
    per_image: pd.DataFrame | Sequence[Mapping[str, Any]],
    by: Sequence[str] = ("camera", "iso"),
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Average per-image metric rows by metadata keys: one row per group, with its size `n`.

    `metrics` defaults to every numeric column that is not a grouping key or an integer
    metadata field (iso, block, crop ...). Rows without a key form their own (NaN) group.
    """
    frame = per_image if isinstance(per_image, pd.DataFrame) else pd.DataFrame(list(per_image))
    by = list(by)
    missing = [k for k in by if k not in frame.columns]
    if missing:
        raise ValueError(f"group_metrics: no column(s) {', '.join(missing)} in the per-image rows (columns: {', '.join(map(str, frame.columns))})")
    if metrics is None:
        metrics = [c for c in frame.select_dtypes("number").columns if c not in by and c not in INT_META_KEYS]
    grouped = frame.groupby(by, dropna=False, sort=True)
    out = grouped[list(metrics)].mean()
    out.insert(0, "n", grouped.size())
    return out.reset_index()
