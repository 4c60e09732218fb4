"""Stage `prepare`: noisy/clean pairs split by scene, written in the kit's one prepared layout
(`pngan.data.prepared`): training patches, validation and test blocks, a manifest.

The source is the embedded simulated camera by default, or any real data set that
`pngan.data.readers` knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from pngan import plots
from pngan.data import prepared, simulate
from pngan.runtime import stable_seed
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json

SECTIONS = ("prepare",)
CONFIG = prepared.PrepareConfig


def run(out_dir: str | None = None, metrics_file: str | None = None, **settings: Any) -> dict[str, Any]:
    """Build the prepared data set with the `prepare` settings; returns (and writes) its summary."""
    out = _out_dir(out_dir, "prepare")
    summary = prepared.build(out, prepared.PrepareConfig(**settings), overwrite=out_dir is None)  # scratch: rebuilt in place
    if metrics_file:
        write_json(metrics_file, summary)
    return summary


def examples_figure(data_dir: str | Path) -> Figure:
    """A test block under every simulated camera profile (real data: the block's own noise)."""
    test = prepared.load_split(data_dir, "test")
    noisy, clean = test[0].load()
    present = {p.meta["profile"] for p in test if "profile" in p.meta}
    profiles = [name for name in simulate.PROFILES if name in present]  # the simulator's order: noisiest first
    views = {p: simulate.simulate(clean, p, stable_seed("examples", p)) for p in profiles} or {test[0].name: noisy}
    size = min(96, *clean.shape[:2])
    return plots.crops(clean, views, box=((clean.shape[0] - size) // 2, (clean.shape[1] - size) // 2, size, size),
                       scale=2, amplify="auto")
