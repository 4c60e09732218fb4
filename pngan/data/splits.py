"""Train / val / test splits without leakage, their CSV manifests, and per-metadata averages.

A split never puts one group (a scene, a camera, a source image: any metadata key) in two
parts. Groups are keyed by (dataset, value), so equal labels of different data sets stay apart;
a pair without the key is its own group.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from pngan.data.pairs import FileImage, ImageRef, Pair
from pngan.data.readers import INT_META_KEYS, read_dataset, typed_meta
from pngan.images import DataError
from pngan.runtime import atomic_write_text

MANIFEST_COLUMNS = ("split", "name", "noisy", "clean")
META_FIRST = ("dataset", "scene", "camera", "iso")


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


def _source(ref: ImageRef | None) -> str:
    return "" if ref is None else str(ref)


def write_manifest(path: str | Path, splits: Mapping[str, Iterable[Pair]]) -> Path:
    """Write one CSV row per pair: its split, name, image sources and every metadata key."""
    rows = [
        {"split": split, "name": p.name, "noisy": _source(p.noisy), "clean": _source(p.clean), **p.meta}
        for split, pairs in splits.items()
        for p in pairs
    ]
    keys = {k for row in rows for k in row}
    columns = [*MANIFEST_COLUMNS, *(k for k in META_FIRST if k in keys)]
    columns += sorted(keys - set(columns))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: ("" if row.get(c) is None else row[c]) for c in columns} for row in rows)
    return atomic_write_text(path, buffer.getvalue())


class _Reread:
    """Pairs of array-backed data sets (.mat blocks, DND crops), read again once per (kind, root)."""

    def __init__(self) -> None:
        self._by_source: dict[tuple[str, str], dict[str, Pair]] = {}

    def pair(self, kind: str, root: str, name: str) -> Pair | None:
        if (kind, root) not in self._by_source:
            self._by_source[kind, root] = {p.name: p for p in read_dataset(kind, root)}
        return self._by_source[kind, root].get(name)


def read_manifest(path: str | Path) -> dict[str, list[Pair]]:
    """Read a manifest written by `write_manifest` back into {split: [Pair, ...]}.

    Image sources that are files are used as they are; the others (blocks of .mat files) are
    found again by reading the row's `kind` and `root` and taking the pair of the same name.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: not a manifest, missing column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    reread = _Reread()
    splits: dict[str, list[Pair]] = {}
    for line, row in enumerate(rows, start=2):
        split, name, noisy, clean = row.pop("split"), row.pop("name"), row.pop("noisy"), row.pop("clean")
        meta = typed_meta(row, where=f"{path}:{line}")
        refs = [_resolve_source(source, side, name, meta, reread, f"{path}:{line}") for source, side in ((noisy, "noisy"), (clean, "clean"))]
        splits.setdefault(split, []).append(Pair(name, refs[0], refs[1], meta))
    return splits


def _resolve_source(source: str, side: str, name: str, meta: dict[str, Any], reread: _Reread, where: str) -> ImageRef | None:
    if source == "":
        return None
    if Path(source).is_file():
        return FileImage(Path(source))
    if "kind" not in meta or "root" not in meta:
        raise DataError(f"{where}: {side} image {source} of '{name}' is not a file and the row names no kind/root to find it")
    pair = reread.pair(meta["kind"], meta["root"], name)
    if pair is None or getattr(pair, side) is None:
        raise DataError(f"{where}: '{name}' is no longer in {meta['kind']} data at {meta['root']}")
    return getattr(pair, side)


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
