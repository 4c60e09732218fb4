"""Where things are written when a notebook runs outside the pipeline."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from pngan.runtime import code_digest


def scratch_dir(stage: str) -> Path:
    """A scratch folder for a notebook run by hand or under nbval: never a pipeline output.

    `$PNGAN_SCRATCH` chooses the root (default: `<system temp>/pngan-scratch`).
    """
    root = Path(os.environ.get("PNGAN_SCRATCH", Path(tempfile.gettempdir()) / "pngan-scratch"))
    path = root / stage
    path.mkdir(parents=True, exist_ok=True)
    return path


def versioned_scratch_dir(name: str) -> Path:
    """scratch/<name>-<code digest>: what this version of the kit builds in scratch (`made_once`)."""
    return scratch_dir(f"{name}-{code_digest()}")


def made_once(name: str, marker: str, build: Callable[[Path], Any]) -> Path:
    """scratch/<name>-<code digest>, made once by `build(folder)` and reused while `marker` (a file
    in it) exists: by this version of the kit only (another one builds its own). It is built in a
    side folder and renamed when complete, so an interrupted build is never reused."""
    folder = versioned_scratch_dir(name)
    if not (folder / marker).is_file():
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build(tmp)
        shutil.rmtree(folder)
        tmp.rename(folder)
    return folder
