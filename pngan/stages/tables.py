"""Stage `tables`: the kit's tables, read from the pipeline's metrics files, never typed in.

Writes markdown + CSV to `tables_dir`. A metric a table needs that is missing is an error,
never a blank. `python -m pngan.stages.tables --sync-readme` copies the generated tables into
the README's marked blocks (`make repro` does it after `dvc repro`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from pngan import paper as paper_numbers
from pngan.errors import DataError
from pngan.noise import LABELS
from pngan.noise import label as noise_label
from pngan.runtime import atomic_write_text
from pngan.stages import smoke
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import read_json

SECTIONS = ("tables",)  # and ablation's fake_ratios (dvc.yaml: --from)
COMMITTED = {"noise_models_metrics": "reports/metrics/noise_models.json", "pgap_metrics": "reports/metrics/pgap.json",
             "finetune_dir": "reports/metrics/finetune"}


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


def _order(key: str) -> tuple[int, int]:
    """Rows in LABELS order (a key listed there in its place), else a kind fitted per group just
    above the pooled kind."""
    kind, _, group = key.partition("@")
    if key in LABELS:
        return list(LABELS).index(key), 0
    return (list(LABELS).index(kind) if kind in LABELS else len(LABELS), 0 if group else 1)


def noise_model_table(noise_models_metrics: str | Path) -> pd.DataFrame:
    data = read_json(noise_models_metrics)
    models = need(data, "models", str(noise_models_metrics))
    rows = []
    for key in sorted(models, key=_order):
        m = models[key]
        row = {"model": noise_label(key), "key": key}
        for metric in ("akld", "kld", "fake_std", "real_std", "fake_psnr", "real_psnr", "leak", "real_leak"):
            row[metric] = need(m, metric, f"{noise_models_metrics} [models.{key}]")
        source = m.get("input")
        row["input"] = noise_label(source) if source else ""
        row["input_akld"] = need(models, f"{source}.akld", str(noise_models_metrics)) if source else None
        rows.append(row)
    return pd.DataFrame(rows)


def noise_model_markdown(table: pd.DataFrame, images: int, samples: int, dataset: str) -> str:
    lines = [
        "| noise model | AKLD ↓ | KLD ↓ | noise std /255 (real) | noisy PSNR dB (real) | content leak (real) | input: its AKLD |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in table.itertuples():
        inp = f"{r.input}: {r.input_akld:.3f}" if r.input else "—"
        lines.append(
            f"| {r.model} | {r.akld:.3f} | {r.kld:.3f} | {r.fake_std:.2f} ({r.real_std:.2f}) "
            f"| {r.fake_psnr:.2f} ({r.real_psnr:.2f}) | {r.leak:.2f} ({r.real_leak:.2f}) | {inp} |"
        )
    lines.append("")
    lines.append(
        f"Test split of `{dataset}`: {images} images, {samples} draws per image and model; "
        "models fitted on the training split only. AKLD and KLD as defined in METHOD.md §2 "
        "(lower is better); fakes clamped and rounded to 8 bit. The oracle is a reference, not a bound. "
        "Content leak: per image, the correlation between the local noise magnitude and the clean image's "
        "gradient magnitude (METHOD.md §2; first draw), mean over images; a model that smooths the image scores high."
    )
    if table["key"].str.endswith("@reference").any():
        lines.append("")
        lines.append(
            "Camera-setting rows (`@camera`; the noise-aware PNGAN and, at its very level, `heteroscedastic@level`) take "
            "the level fitted on the training split for the image's camera setting (the noise-aware generator's: a "
            "per-camera ISO law where the pairs carry camera and ISO, METHOD.md §8.5). Reference rows take a level estimated blindly (no clean image) from the noisy image "
            "of *another* source image of the same camera setting (the next test image by name, or a training image "
            "where the test split has none; failing both, the same camera at the nearest ISO, then any camera); the scored "
            "image's own noisy version is never used. All reference rows use the same estimate per image."
        )
    return "\n".join(lines) + "\n"


def pgap_markdown(pgap_metrics: str | Path, noise_models_metrics: str | Path) -> tuple[str, pd.DataFrame]:
    """Table 1 of the paper (noise generation) beside the kit's PGap / AKLD / KLD per noise model."""
    data, models_metrics = read_json(pgap_metrics), read_json(noise_models_metrics)
    models = need(data, "models", str(pgap_metrics))
    real_psnr = need(models, "real.psnr", str(pgap_metrics))
    rows = []
    for key in sorted((k for k in models if k != "real"), key=_order):
        rows.append({
            "model": noise_label(key), "key": key,
            "pgap": need(models, f"{key}.pgap", str(pgap_metrics)),
            "psnr_real_trained": real_psnr, "psnr_fake_trained": need(models, f"{key}.psnr", str(pgap_metrics)),
            "akld": need(models_metrics, f"models.{key}.akld", str(noise_models_metrics)),
            "kld": need(models_metrics, f"models.{key}.kld", str(noise_models_metrics)),
        })
    table = pd.DataFrame(rows)
    paper = paper_numbers.NOISE_GENERATION
    lines = [f"**Paper** ({paper_numbers.PAPER}, SIDD):", "", "| | " + " | ".join(paper) + " |",
             "|---|" + "---:|" * len(paper)]
    for metric, label in (("pgap", "PGap (dB) ↓"), ("akld", "AKLD ↓")):
        lines.append(f"| {label} | " + " | ".join(f"{v[metric]:.3g}" for v in paper.values()) + " |")
    den = need(data, "denoiser", str(pgap_metrics))
    dataset = ", ".join(need(data, "dataset", str(pgap_metrics)))
    lines += ["", f"**This kit** ({dataset}):", "",
              "| noise model | PGap (dB) ↓ | PSNR, trained on real | PSNR, trained on fake | AKLD ↓ | KLD ↓ |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.model} | {r.pgap:.2f} | {r.psnr_real_trained:.2f} | {r.psnr_fake_trained:.2f} | {r.akld:.3f} | {r.kld:.3f} |")
    lines += ["", (
        f"PGap: the same {den['arch']} ({_kwargs(den['arch_kwargs'])}; {den['steps']} steps, batch {den['batch']}, "
        f"{den['crop']}px crops) trained on the {need(data, 'train_images', str(pgap_metrics))} real training patches "
        f"or on fake pairs made from the same clean patches, tested on the {need(data, 'test_images', str(pgap_metrics))} "
        "real test images (PSNR, RGB). The paper does not name its PGap denoiser nor its AKLD window; "
        "its numbers are on SIDD at full scale, the kit's on the data set named above."
    )]
    if "oracle" in models:  # two draws of the same noise law: what PGap reads when nothing differs
        lines[-1] += (f" The oracle's PGap ({models['oracle']['pgap']:+.2f} dB) is the run-to-run noise of the estimate "
                      "at this training budget: differences of that size between models are not significant.")
    return "\n".join(lines) + "\n", table


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kwargs.items()) or "default size"


def _cell(scores: dict[str, Any]) -> str:
    if "submission" in scores:
        return "submission file¹"
    return f"{scores['psnr']:.2f}/{scores['ssim_y']:.3f}"


CONTROL = "real"  # the generator label of the fake_ratio-0 runs: real pairs only, the control every generator shares


def finetune_runs(finetune_dir: str | Path, fake_ratios: Sequence[float]) -> dict[float, dict[str, Any]]:
    """The finetune metrics of every ratio of the sweep (an error names a missing one, or one
    written before the runs were per generator)."""
    runs = {}
    for r in fake_ratios:
        path = Path(finetune_dir) / f"ratio_{r}.json"
        runs[float(r)] = data = read_json(path)
        if "runs" not in data and "denoisers" in data:
            raise DataError(f"{path}: finetune metrics of the old format ('denoisers', one generator, no 'runs' per generator): "
                            "rerun the finetune stage (dvc repro finetune) to rewrite them")
    return runs


def _generator(key: str) -> str:
    """A generator's display name; the control's says what it is."""
    return "real pairs only (control)" if key == CONTROL else noise_label(key)


def denoising_markdown(runs: dict[float, dict[str, Any]], headline: float) -> str:
    """Table 2 of the paper (denoising) with the kit's rows at the headline fake ratio: each start
    before fine-tuning, then fine-tuned (`*`) with each generator's pairs."""
    if headline not in runs:
        raise MissingMetric(f"tables.headline_fake_ratio {headline} is not in the finetune sweep {sorted(runs)}")
    run, source = runs[headline], f"finetune ratio {headline}"
    sets = need(run, "test_sets", source)
    columns = list(paper_numbers.DENOISING_DATASETS) + [n for n in sets if n not in paper_numbers.DENOISING_DATASETS]
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for method, scores in paper_numbers.DENOISING.items():
        cells = [f"{scores[c][0]:.2f}/{scores[c][1]:.3f}" if c in scores else "—" for c in columns]
        lines.append(f"| {method} (paper) | " + " | ".join(cells) + " |")
    by_start: dict[str, dict[str, dict[str, Any]]] = {}
    for generator, results in need(run, "runs", source).items():
        for label, result in results.items():
            by_start.setdefault(label, {})[generator] = result
    for label, results in by_start.items():
        shared, first = next(iter(results.items()))  # every generator's run starts from the same scores
        name = first["arch"].replace("ridnet", "RIDNet").replace("dncnn", "DnCNN").replace("mirnet", "MIRNet").replace("mprnet", "MPRNet")
        rows = [(f"{name}, kit, trained on real", f"{shared}.{label}.before", first["before"])]
        rows += [(f"{name}*, kit, fine-tuned (fake ratio {headline:g}) — {_generator(g)}", f"{g}.{label}.after", r["after"])
                 for g, r in results.items()]
        for row, where, scores in rows:
            cells = [_cell(need(scores, c, f"{source} [{where}]")) if c in sets else "not run²" for c in columns]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", (
        "PSNR (RGB) / SSIM (Y channel of MATLAB's rgb2ycbcr, the authors' test protocol; RGB SSIM in the CSV). "
        f"Kit rows: laptop-size networks, {run['steps']} fine-tuning steps; `*` = fine-tuned on real pairs mixed with "
        "the named generator's pairs (at fake ratio 0: real pairs only). "
        "¹ no public ground truth: the denoised images are written in the benchmark's submission layout. "
        "² data set not selected: add it to `finetune.extra_test_sets` in params.yaml. "
        "MPRNet and MIRNet run at paper size only (configs/paper.yaml)."
    )]
    return "\n".join(lines) + "\n"


def ablation_table(runs: dict[float, dict[str, Any]]) -> pd.DataFrame:
    """One row per fake ratio, generator ('real' at ratio 0: the control they share), start and test set."""
    rows = []
    for ratio, run in sorted(runs.items()):
        for generator, results in need(run, "runs", f"finetune ratio {ratio}").items():
            for label, result in results.items():
                for test_set, gain in result["gain_psnr"].items():
                    rows.append({"fake_ratio": ratio, "generator": generator, "denoiser": label, "test_set": test_set,
                                 "psnr_before": result["before"][test_set]["psnr"], "psnr_after": result["after"][test_set]["psnr"],
                                 "gain_psnr": gain})
    return pd.DataFrame(rows)


def ablation_markdown(table: pd.DataFrame) -> str:
    lines = ["| fake ratio | generator | denoiser | test set | PSNR before | PSNR after | gain (dB) |",
             "|---:|---|---|---|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.fake_ratio:g} | {_generator(r.generator)} | {r.denoiser} | {r.test_set} | {r.psnr_before:.2f} "
                     f"| {r.psnr_after:.2f} | {r.gain_psnr:+.2f} |")
    lines += ["", "Each row fine-tunes the same starting denoiser for the same number of steps; fake ratio 0 "
              "fine-tunes on real pairs only (the control for 'more real fine-tuning', shared by both generators), "
              "1 on the generator's pairs only."]
    return "\n".join(lines) + "\n"


def committed_metrics() -> dict[str, Any]:
    """The metrics files committed with the repository, and the fine-tuning ratios they hold: what
    the tables notebook reads when it runs by hand (a fresh clone has them)."""
    found = {name: smoke.committed(path) for name, path in COMMITTED.items()}
    missing = [COMMITTED[name] for name, path in found.items() if path is None]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: committed metrics not found (run the notebook from the repository)")
    ratios = sorted(json.loads(p.stem.removeprefix("ratio_")) for p in found["finetune_dir"].glob("ratio_*.json"))
    return {**{name: str(path) for name, path in found.items()}, "fake_ratios": ratios}


def _write(out: Path, name: str, markdown: str, table: pd.DataFrame | None = None) -> None:
    atomic_write_text(out / f"{name}.md", markdown)
    if table is not None:
        table.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")


def run(
    noise_models_metrics: str | None = None,
    pgap_metrics: str | None = None,
    finetune_dir: str | None = None,
    fake_ratios: Sequence[float] = (0, 0.5),
    headline_fake_ratio: float = 0.5,
    tables_dir: str | None = None,
) -> dict[str, Any]:
    """Build every table from the metrics files; returns {table name: markdown} and the ablation table.

    With no metrics paths (a notebook run by hand) it reads the committed ones (`committed_metrics`).
    """
    out = _out_dir(tables_dir, "tables")
    if noise_models_metrics is None:
        committed = committed_metrics()
        noise_models_metrics, pgap_metrics = committed["noise_models_metrics"], committed["pgap_metrics"]
        finetune_dir, fake_ratios = committed["finetune_dir"], committed["fake_ratios"]
    data = read_json(noise_models_metrics)
    table = noise_model_table(noise_models_metrics)
    dataset = ", ".join(need(data, "dataset", noise_models_metrics))
    noise_md = noise_model_markdown(table, need(data, "images", noise_models_metrics), need(data, "samples", noise_models_metrics), dataset)
    _write(out, "noise_models", noise_md, table)
    pgap_md, pgap_table = pgap_markdown(pgap_metrics, noise_models_metrics)
    runs = finetune_runs(finetune_dir, fake_ratios)
    ablation = ablation_table(runs)
    paper_md = ("### Noise generation (paper Table 1)\n\n" + pgap_md + "\n### Denoising (paper Table 2)\n\n"
                + denoising_markdown(runs, float(headline_fake_ratio))
                + "\n### Fine-tuning ablation: share of generated pairs, per generator\n\n" + ablation_markdown(ablation))
    _write(out, "paper_tables", paper_md, pgap_table)
    ablation.to_csv(out / "finetune_ablation.csv", index=False, float_format="%.6g")
    return {"noise_models": noise_md, "paper_tables": paper_md, "noise_models_table": table, "ablation": ablation}


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
