"""Stage `tables`: the kit's tables, read from the pipeline's metrics files, never typed in.

Writes markdown + CSV to `tables_dir`. A metric a table needs that is missing is an error,
never a blank. `python -m pngan.stages.tables --sync-readme` copies the generated tables into
the README's marked blocks (`make repro` does it after `dvc repro`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from pngan import plots
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import read_json
from pngan.runtime import atomic_write_text

# Display names and order (best references first, the paper's fixed input last).
NOISE_MODELS = {
    "oracle": "Oracle: the true simulator, an independent draw",
    "pngan": "PNGAN (this kit)",
    "camera_fitted": "Camera pipeline, noise levels fitted",
    "heteroscedastic": "Heteroscedastic Gaussian, fitted",
    "correlated": "Spatially correlated Gaussian, fitted",
    "awgn_fitted": "AWGN, σ fitted",
    "camera_random": "Camera pipeline, published random ranges",
    "awgn": "AWGN σ = 50/255 (the paper's Setting 1 input)",
}


class MissingMetric(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def need(data: dict[str, Any], path: str, source: str) -> Any:
    """data['a']['b'] for path 'a.b', or a loud error naming the file and the key."""
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise MissingMetric(f"{source}: metric '{path}' is missing (rerun the stage that writes it)")
        value = value[key]
    if value is None:
        raise MissingMetric(f"{source}: metric '{path}' is empty")
    return value


def model_label(key: str) -> str:
    """Display name of a noise model key; `kind@meta` is the kind fitted per metadata group."""
    kind, _, group = key.partition("@")
    label = NOISE_MODELS.get(kind, kind)
    return f"{label.replace(', fitted', '')}, fitted per {group}" if group else label


def _order(key: str) -> tuple[int, int]:
    kind, _, group = key.partition("@")
    return (list(NOISE_MODELS).index(kind) if kind in NOISE_MODELS else len(NOISE_MODELS), 0 if group else 1)


def noise_model_table(generate_metrics: str | Path) -> pd.DataFrame:
    data = read_json(generate_metrics)
    models = need(data, "models", str(generate_metrics))
    rows = []
    for key in sorted(models, key=_order):
        m = models[key]
        row = {"model": model_label(key), "key": key}
        for metric in ("akld", "kld", "fake_std", "real_std", "fake_psnr", "real_psnr"):
            row[metric] = need(m, metric, f"{generate_metrics} [models.{key}]")
        source = m.get("input")
        row["input"] = model_label(source) if source else ""
        row["input_akld"] = need(models, f"{source}.akld", str(generate_metrics)) if source else None
        rows.append(row)
    return pd.DataFrame(rows)


def noise_model_markdown(table: pd.DataFrame, images: int, samples: int, dataset: str) -> str:
    lines = [
        "| noise model | AKLD ↓ | KLD ↓ | noise std /255 (real) | noisy PSNR dB (real) | input: its AKLD |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in table.itertuples():
        inp = f"{r.input}: {r.input_akld:.3f}" if r.input else "—"
        lines.append(
            f"| {r.model} | {r.akld:.3f} | {r.kld:.3f} | {r.fake_std:.2f} ({r.real_std:.2f}) "
            f"| {r.fake_psnr:.2f} ({r.real_psnr:.2f}) | {inp} |"
        )
    lines.append("")
    lines.append(
        f"Test split of `{dataset}`: {images} images, {samples} draws per image and model; "
        "models fitted on the training split only. AKLD and KLD as defined in METHOD.md §2 "
        "(lower is better); fakes clamped and rounded to 8 bit. The oracle is a reference, not a bound."
    )
    return "\n".join(lines) + "\n"


def akld_figure(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    with plots.style():
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
        ax.barh(table["model"][::-1], table["akld"][::-1], color="0.35")
        ax.set_xscale("log")
        ax.set_xlabel("AKLD on the test split (log scale, lower is better)")
        ax.set_title("Noise models against real noise")
        fig.tight_layout()
    return fig


def smoke_metrics(out: Path) -> str:
    """Metrics of a small scratch run, for a notebook run outside the pipeline."""
    from pngan.stages import generate  # only here: the pipeline's tables stage never runs it

    path = out / "generate.json"
    generate.run(metrics_file=str(path))
    return str(path)


def run(
    generate_metrics: str | None = None,
    tables_dir: str | None = None,
) -> dict[str, str]:
    """Build every table from the metrics files; returns {table name: markdown}.

    Metrics paths left at None are produced by a small scratch run (notebook outside the pipeline).
    """
    out = _out_dir(tables_dir, "tables")
    generate_metrics = generate_metrics or smoke_metrics(out)
    data = read_json(generate_metrics)
    table = noise_model_table(generate_metrics)
    dataset = ", ".join(need(data, "dataset", generate_metrics))
    md = noise_model_markdown(table, need(data, "images", generate_metrics), need(data, "samples", generate_metrics), dataset)
    atomic_write_text(out / "noise_models.md", md)
    table.to_csv(out / "noise_models.csv", index=False, float_format="%.6g")
    return {"noise_models": md, "noise_models_csv": str(out / "noise_models.csv")}


BLOCK = re.compile(r"(<!-- BEGIN (\S+) -->\n)(.*?)(<!-- END \2 -->)", re.S)


def sync_readme(readme: str | Path = "README.md") -> int:
    """Replace each `<!-- BEGIN path -->...<!-- END path -->` block with the file at `path`."""
    readme = Path(readme)
    text = readme.read_text()
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        count += 1
        return match.group(1) + Path(match.group(2)).read_text().strip() + "\n" + match.group(4)

    new = BLOCK.sub(replace, text)
    if new != text:
        atomic_write_text(readme, new)
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pngan.stages.tables")
    ap.add_argument("--sync-readme", action="store_true", help="copy generated tables into README.md")
    args = ap.parse_args(argv)
    if args.sync_readme:
        print(f"README.md: {sync_readme()} table block(s) synced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
