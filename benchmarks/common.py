"""Helpers shared by the benchmarks: timing, peak memory and reports."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from pngan.runtime import atomic_write_text, run_info

REPORT_DIR = Path(__file__).resolve().parents[1] / "reports" / "bench"
SUMMARY_HEADER = (
    "# Benchmarks\n\n"
    "Written by `python -m benchmarks`; one JSON file per benchmark beside this file, and here the\n"
    "latest line of each.\n\n"
    "| benchmark | result | ok | when (UTC) | where |\n"
    "|---|---|---|---|---|\n"
)


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timeit(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of `fn()` over `repeat` calls after `warmup` calls; pending CUDA
    work is synchronised before and after every timed call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory(device: torch.device | str | None = None) -> int:
    """Peak bytes: `torch.cuda.max_memory_allocated` for a CUDA device, else the process's peak RSS."""
    if device is not None and torch.device(device).type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB, macOS bytes


def _summary_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("benchmark", "---"):
            rows[cells[0]] = line
    return rows


def write_report(name: str, result: dict[str, Any], out_dir: str | Path = REPORT_DIR) -> Path:
    """Write `<out_dir>/<name>.json` (result + where and when it ran) and update the line of `name`
    in `<out_dir>/SUMMARY.md`: the result's one-line `summary`, or else its top-level scalars."""
    out_dir = Path(out_dir)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    where = run_info()
    where["torch_threads"] = torch.get_num_threads()
    # timings on a shared machine mean little without its load and OpenMP's wait policy (an actively
    # spinning OpenMP runtime is many times slower on an oversubscribed CPU)
    where["load_avg_1m"] = round(os.getloadavg()[0], 2)
    where["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")
    if torch.cuda.is_available():
        where["cuda_device"] = torch.cuda.get_device_name()
    path = atomic_write_text(
        out_dir / f"{name}.json", json.dumps({"name": name, "when": when, "where": where, "result": result}, indent=2) + "\n"
    )
    summary_path = out_dir / "SUMMARY.md"
    rows = _summary_rows(summary_path.read_text()) if summary_path.exists() else {}
    place = where.get("cuda_device", where["platform"])
    ok = {True: "yes", False: "NO"}.get(result.get("ok"), "-")
    summary = result.get("summary") or ", ".join(
        f"{k}={v}" for k, v in result.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)
    )
    summary = summary.replace("|", "\\|")  # a bare | would split the table cell
    rows[name] = f"| {name} | {summary} | {ok} | {when} | {place}, {where['torch_threads']} threads |"
    atomic_write_text(summary_path, SUMMARY_HEADER + "\n".join(rows[k] for k in sorted(rows)) + "\n")
    return path


def laptop_sizes() -> dict[str, dict[str, Any]]:
    """The network sizes of params.yaml (what a CPU user trains): generator, discriminator and D_d
    keyword arguments, without training-only options."""
    from pngan.params import load

    params = load()
    gan = params.get("train_pngan", {})
    generator = {k: v for k, v in gan.get("generator_kwargs", {}).items() if k != "zero_init_last"}
    return {
        "generator_kwargs": generator,
        "discriminator_kwargs": dict(gan.get("discriminator_kwargs", {})),
        "denoiser_kwargs": dict(params.get("denoiser_real", {}).get("arch_kwargs", {})),
    }


def standalone(name: str, run: Callable[..., dict[str, Any]], doc: str, flags: dict[str, str] | None = None) -> None:
    """`python -m benchmarks.bench_<name> [--quick] [flags]`: run one benchmark, write its report,
    print it. `flags`: more on/off options (name -> help), passed to `run` as keywords when given."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    for flag, help_text in (flags or {}).items():
        parser.add_argument(flag, action="store_true", help=help_text)
    args = vars(parser.parse_args())
    quick = args.pop("quick")
    result = run(quick, **{key: True for key, on in args.items() if on})
    write_report(name, result)
    print(json.dumps(result, indent=2))
