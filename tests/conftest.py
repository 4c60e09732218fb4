from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
