from __future__ import annotations

from pathlib import Path

import importlib.util
import sys
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
SHARED_DATA = REPO.parent / "shared" / "data" / "real_pairs_dev"


@pytest.fixture(scope="session")
def real_pairs_dev() -> Path:
    """The 143 real dev pairs beside the project; a user's clone has none, so tests skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dev pairs not found at {SHARED_DATA} (only present in the development workspace)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _scratch(tmp_path_factory, monkeypatch):
    """Notebook scratch output goes to a per-session temporary folder."""
    monkeypatch.setenv("PNGAN_SCRATCH", str(tmp_path_factory.getbasetemp() / "scratch"))


# The tiny generator file below: registry names only (a file may not name code paths).
TINY_GENERATOR_ARCH = ("dncnn", {"depth": 2, "width": 4, "batch_norm": False})
TINY_GENERATOR_INPUT = {"setting": 1, "noise": "awgn", "noise_kwargs": {"sigma": 0.1}}


@pytest.fixture
def generator_file(tmp_path):
    """A tiny PNGAN generator file (a 2-layer DnCNN, 5x5 receptive field), for generate / evaluate."""
    import torch

    from pngan import models
    from pngan.models.files import save_network_file

    torch.manual_seed(0)
    arch, kwargs = TINY_GENERATOR_ARCH
    path = tmp_path / "generator.pt"
    save_network_file(path, "generator", arch, kwargs, models.build(arch, **kwargs), input=TINY_GENERATOR_INPUT, summary={})
    return path


@pytest.fixture
def clean_dir(tmp_path):
    """Two clean PNGs of different sizes: clean/a.png (40x30) and clean/b.png (24x24)."""
    from pngan.images import write_png

    rng = np.random.default_rng(1)
    folder = tmp_path / "clean"
    for name, (h, w) in {"a": (30, 40), "b": (24, 24)}.items():
        write_png(folder / f"{name}.png", rng.integers(30, 220, size=(h, w, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="session")
def load_tool():
    """Import a maintainer script of tools/ by name (tools/ is not a package): load_tool("level_sources").
    tools/ goes on sys.path, as running a script puts it, for the module the scripts share."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
