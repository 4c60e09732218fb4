"""Where and how code runs: seeds, device, precision, atomic files, and what a run records."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from pngan.errors import ParamsError


def stable_seed(*parts: int | str) -> int:
    """The one way to derive a seed from parts: the same in every process and on every machine
    (Python salts its str hashes per process), different for different parts.

    Integer parts (a seed, a stream, a step, a rank, a key) are mixed by NumPy's SeedSequence into
    63 bits; parts that name something (an image, a model, a split) are hashed as the text
    'part:part:...' by CRC32. Both hashes stay because every committed result was drawn with them.
    """
    if any(isinstance(part, str) for part in parts):
        return zlib.crc32(":".join(map(str, parts)).encode())
    state = np.random.SeedSequence([int(part) for part in parts]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


def keyed_generator(*parts: int | str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded by `stable_seed(*parts)`."""
    return torch.Generator(device=device).manual_seed(stable_seed(*parts))


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); `deterministic` also forces deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else must name a device this machine has."""
    if name != "auto":
        return _available_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ParamsError(f"device '{name}' is not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"device '{name}': this machine has no CUDA GPU usable by torch {torch.__version__}; use device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ParamsError(f"device '{name}': this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ParamsError(f"device '{name}': MPS is not available here; use device auto or cpu")
    return device


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16 on x86 (read from /proc/cpuinfo on Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("amx_bf16", "avx512_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on CUDA with bf16 support or CPUs with fast bf16, else 'fp32'."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got '{precision}'")
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """Autocast context for 'bf16', a no-op for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; on success it is flushed to disk, given the
    mode the user's umask grants a new file, and renamed over `path` (never a torn file); on
    failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save, atomically (see `atomic_path`): never a torn checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


# keys whose values depend on the machine or the moment, not on the settings and the data
MACHINE_KEYS = re.compile(r"(^|_)seconds(_per_mp)?$|^(platform|python|torch|numpy|device_name)$")


def split_machine_facts(data: Any) -> tuple[Any, Any]:
    """(what a rerun reproduces, what depends on the machine or the moment), nested alike: the
    first goes into hashed, committed outputs, the second into untracked run-info files."""
    if not isinstance(data, dict):
        return data, None
    kept, machine = {}, {}
    for key, value in data.items():
        if MACHINE_KEYS.search(str(key)):
            machine[key] = value
            continue
        kept[key], facts = split_machine_facts(value)
        if facts:
            machine[key] = facts
    return kept, machine


def run_info(device: torch.device | None = None, precision: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """What a run's metrics record about where it ran."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(terse=True),
    }
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(device)
    if precision is not None:
        info["precision"] = precision
    if seed is not None:
        info["seed"] = seed
    return info


# ---- digests: what a result was made from ------------------------------------------------------


def json_digest(obj: Any) -> str:
    """SHA-256 (16 hex digits) of `obj` as JSON with sorted keys; a value JSON lacks is written
    as its str. What identifies settings: equal settings give equal digests in any process."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _digest_of(path: str, *version: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (16 hex digits); computed once per version of the file (inode,
    size, change and modification times) in a process."""
    stat = os.stat(path)
    return _digest_of(str(Path(path).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of the kit's own source (every .py file of the `pngan` package, line endings
    normalised): checkpoints and generated images record it, so that nothing made by other code
    is resumed or reused (DVC reruns a stage when its code changes; its persisted outputs must
    then be remade, not picked up)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()[:16]
