"""Where things are written when a notebook runs outside the pipeline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def scratch_dir(stage: str) -> Path:
    """A scratch folder for a notebook run by hand or under nbval: never a pipeline output.

    `$PNGAN_SCRATCH` chooses the root (default: `<system temp>/pngan-scratch`).
    """
    root = Path(os.environ.get("PNGAN_SCRATCH", Path(tempfile.gettempdir()) / "pngan-scratch"))
    path = root / stage
    path.mkdir(parents=True, exist_ok=True)
    return path
