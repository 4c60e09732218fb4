"""`python -m pngan.params check [--params params.yaml]`: validate every section of params.yaml
(unknown keys, types, ranges, registry names, data folders) before any stage runs or DVC
removes a stage's outputs; `make repro` runs it first.

`python -m pngan.params flags OVERLAY.yaml`: print the `dvc exp run -S ...` arguments that apply
an overlay (e.g. configs/paper.yaml) to params.yaml.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Sequence

from pngan import params as P
from pngan.errors import report_user_errors


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pngan.params")
    sub = ap.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate every section of a parameters file")
    check.add_argument("--params", type=Path, default=P.DEFAULT_FILE)
    flags = sub.add_parser("flags", help="dvc exp run -S arguments of an overlay")
    flags.add_argument("overlay", type=Path)
    flags.add_argument("--params", type=Path, default=P.DEFAULT_FILE)
    args = ap.parse_args(argv)
    return report_user_errors(lambda: _check(args.params) if args.command == "check" else _flags(args.overlay, args.params))


def _check(path: Path) -> int:
    from pngan.stages.settings import check_params  # imports torch: only for this command

    checked = check_params(P.load(path), path)
    print(f"{path}: {len(checked)} sections valid ({', '.join(checked)})")
    return 0


def _flags(overlay: Path, params: Path) -> int:
    found = P.overlay_flags(P.load(overlay), P.load(params), overlay)
    print(" ".join(f"-S {shlex.quote(f)}" for f in found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
