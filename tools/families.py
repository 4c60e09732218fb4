"""What the maintainer scripts of tools/ share: development families named on the command line
(`--family NAME=FOLDER`), each prepared in a scratch folder, and a report written as markdown
beside its numbers as JSON."""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

from pngan.data.prepared import PrepareConfig, build


def parser(doc: str, out: str) -> argparse.ArgumentParser:
    """`--family` (repeatable), `--params` and `--out`; the description is the docstring's first paragraph."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--family", action="append", required=True, metavar="NAME=FOLDER", help="a family (generic layout), or NAME=simulated")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--out", default=out, help="markdown file, or - to print it only")
    return p


def read(args: argparse.Namespace) -> tuple[dict[str, str], dict]:
    """({name: folder}, params.yaml's content) from parsed arguments."""
    return dict(spec.split("=", 1) for spec in args.family), yaml.safe_load(args.params.read_text())


@contextmanager
def prepared(root: str | Path, params: dict) -> Iterator[Path]:
    """The family prepared by params.yaml's `prepare` section in a scratch folder, removed after:
    source generic on the family's folder (or the section as it is for `simulated`), so its
    splits are those of the family's development run."""
    section = params["prepare"]
    prepare = dict(section) if str(root) == "simulated" else {**section, "source": "generic", "root": str(root)}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "prepare"
        build(data, PrepareConfig(**prepare))
        yield data


def write(out: str, text: str, results: dict) -> None:
    """The report to `out` and its numbers beside it (.json), or the report to stdout for `-`."""
    if out == "-":
        print(text, end="")
        return
    Path(out).write_text(text)
    Path(out).with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
