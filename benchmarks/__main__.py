"""`python -m benchmarks [--quick] [--only NAME ...] [--out DIR]`: run every benchmarks/bench_*.py.

Exits 1 when a benchmark flags a failed correctness check (`ok: false` in its result).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import time
from pathlib import Path

import benchmarks
from benchmarks.common import REPORT_DIR, write_report


# run first: the loader benchmark compares its throughput with the train report's consumption
FIRST = ("train",)


def available() -> list[str]:
    """Benchmark names: the `<name>` of every benchmarks/bench_<name>.py, in running order."""
    names = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    return sorted(names, key=lambda n: n not in FIRST)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--only", action="append", metavar="NAME", help=f"run only these (any of: {', '.join(available())})")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help=f"report folder (default {REPORT_DIR})")
    args = parser.parse_args(argv)
    names = available()
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(sorted(names))}")
    rows, failed = [], []
    for name in [n for n in names if n in args.only] if args.only else names:
        start = time.perf_counter()
        bench = importlib.import_module(f"benchmarks.bench_{name}")
        takes_dir = "report_dir" in inspect.signature(bench.run).parameters
        result = bench.run(quick=args.quick, **({"report_dir": args.out} if takes_dir else {}))
        path = write_report(name, result, args.out)
        rows.append((name, time.perf_counter() - start, result.get("ok"), result.get("summary", ""), path))
        if result.get("ok") is False:
            failed.append(name)
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'time':>7}  ok   result")
    for name, seconds, ok, summary, path in rows:
        print(f"{name:<{width}}  {seconds:6.1f}s  {'-' if ok is None else 'yes' if ok else 'NO ':<3}  {summary}  [{path}]")
    if failed:
        print(f"FAILED correctness checks: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
