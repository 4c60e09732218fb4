"""Write reports/dev_runs.md from the DVC experiments `dev-<family>`: the default pipeline on
each family of the development pairs (`../shared/data/real_pairs_dev`, in this repository's
workspace only). The numbers are read from each experiment's metrics files, never typed.

Run the experiments first (about 30 minutes each on 2 CPU cores), then this script:

    dvc exp run --temp -n dev-sidd-small -S prepare.source=generic \\
        -S prepare.root=../shared/data/real_pairs_dev/SIDD_small
    # the same for dev-polyu (PolyU) and dev-nam-cc60 (Nam_CC60)
    python tools/dev_runs_report.py            # or --out - to print it only

The pooled SIDD family (dev-sidd-all) reads one generic folder of links to the SIDD_small,
SIDD_medium and SIDD_misc pairs (no two of their names clash; the reader follows links).
Link with absolute paths, and name the folder sidd_all (the folder's name is the data set's):

    mkdir -p /tmp/sidd_all/clean /tmp/sidd_all/noisy
    for f in SIDD_small SIDD_medium SIDD_misc; do for r in clean noisy; do
        ln -s "$PWD"/../shared/data/real_pairs_dev/$f/$r/* /tmp/sidd_all/$r/; done; done
    dvc exp run --temp -n dev-sidd-all -S prepare.source=generic -S prepare.root=/tmp/sidd_all

Each family's column is also kept in reports/dev_runs.json: a family with no experiment here
(experiments live in one clone's git refs) keeps the column of its last run, with the commit
that run started from; a family run again replaces its column. A stage an experiment did not
run (its metrics file unchanged from the commit it started from), or a model or metric its
metrics do not have (an experiment from before it was added), is shown as "not run".
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

FAMILIES = {
    "SIDD_small": "dev-sidd-small",
    "SIDD (all dev pairs)": "dev-sidd-all",
    "PolyU": "dev-polyu",
    "Nam_CC60": "dev-nam-cc60",
}
# Generators first, then the classical models; each @reference row after its counterpart.
MODELS = {
    "pngan_aware": "noise-aware PNGAN, camera setting's level",
    "pngan_aware@reference": "noise-aware PNGAN, reference level",
    "heteroscedastic@level": "heteroscedastic, the noise-aware generator's camera-setting level",
    "pngan": "PNGAN",
    "camera_fitted": "camera pipeline, fitted",
    "camera_random": "camera pipeline, random ranges",
    "heteroscedastic@camera": "heteroscedastic per camera/ISO",
    "heteroscedastic@reference": "heteroscedastic, reference level",
    "heteroscedastic": "heteroscedastic, fitted",
    "correlated": "correlated Gaussian, fitted",
    "awgn_fitted": "AWGN, σ fitted",
    "awgn@reference": "AWGN, σ from reference",
    "awgn": "AWGN σ = 50/255",
}
GENERATORS = {"real": "real pairs only", "pngan": "PNGAN", "pngan_aware": "noise-aware"}  # finetune runs
PGAP_SHOWN = {"pngan_aware": "noise-aware", "pngan": "PNGAN", "camera_fitted": "camera fitted", "heteroscedastic": "heteroscedastic"}
RATIOS = ("0", "0.5", "1")
SUMMARY_ROWS = ("test blocks", "draws per block and model", "kit commit the run started from", "PGap (DnCNN)", "fine-tuning gain (dB)")
NOT_RUN = "not run"
# The noise-model metrics, by the stage's name then (`generate` until it was renamed `noise_models`).
NOISE_MODELS_METRICS = ("reports/metrics/noise_models.json", "reports/metrics/generate.json")
PROTOCOL = (
    "Every model is fitted (each generator trained) on the training split only and scored on the held-out "
    "test blocks (split by scene), each noised as many times as the table below says. Cells: AKLD ↓ / noise "
    "std /255 (real) / content leak (real), the leak being the correlation of the local noise magnitude with "
    "the clean image's gradient. \"Per camera/ISO\": the level fitted on the training split for the "
    "image's camera setting (the all-pairs fit for a setting not in training). \"Camera setting's level\": the "
    "noise-aware generator's, fitted on the training split: a per-camera ISO law where the pairs carry camera and "
    "ISO (docs/METHOD.md §8.5), so a setting not in training takes its camera's level at its ISO. \"Reference level\" (and σ from reference): a level "
    "estimated blindly from the noisy image of another source image of the same camera setting (the next "
    "test image by name, or a training image where the test split has none), never from the scored image's "
    "own noisy version."
)


def git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def experiment_refs(name: str) -> list[str]:
    """The experiments of a name, newest run first."""
    refs = (git("for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/exps") or "").split()
    return [r for r in refs if r.endswith("/" + name)]


def experiment_ref(name: str) -> str | None:
    return next(iter(experiment_refs(name)), None)


def denoiser_ref(name: str) -> str | None:
    """The newest experiment of a name that ran the PGap stage (a run may stop at noise_models)."""
    return next((r for r in experiment_refs(name) if metrics(r, "reports/metrics/pgap.json") is not None), None)


def metrics(ref: str, path: str) -> dict | None:
    """A metrics file as the experiment wrote it; None when the experiment did not write it."""
    text, base = git("show", f"{ref}:{path}"), git("show", f"{ref}^:{path}")
    return json.loads(text) if text is not None and text != base else None


def noise_models_metrics(ref: str) -> dict | None:
    """The noise-model metrics an experiment wrote, under the stage's current name or its old one."""
    return next((found for path in NOISE_MODELS_METRICS if (found := metrics(ref, path)) is not None), None)


def noise_cell(m: dict | None) -> str:
    if m is None:
        return NOT_RUN
    leak = f"{m['leak']:.2f} ({m['real_leak']:.2f})" if "leak" in m else NOT_RUN
    return f"{m['akld']:.3f} / {m['fake_std']:.1f} ({m['real_std']:.1f}) / {leak}"


def pgap_cell(pgap: dict | None) -> str:
    if pgap is None:
        return NOT_RUN
    scores = pgap.get("models", pgap)
    shown = ", ".join(f"{label} " + (f"{scores[m]['pgap']:+.2f}" if m in scores else NOT_RUN) for m, label in PGAP_SHOWN.items())
    return f"real-trained {scores['real']['psnr']:.2f} dB; PGap {shown}"


def finetune_cell(ref: str) -> str:
    """Gain per ratio and generator; the old format (`denoisers`: PNGAN's runs, or real pairs only at 0) too."""
    parts = []
    for ratio in RATIOS:
        run = metrics(ref, f"reports/metrics/finetune/ratio_{ratio}.json")
        if run:
            runs = run.get("runs") or {("real" if float(ratio) == 0 else "pngan"): run["denoisers"]}
            for generator, starts in runs.items():
                gains = ", ".join(f"{name} {next(iter(d['gain_psnr'].values())):+.2f}" for name, d in starts.items())
                parts.append(f"ratio {ratio}, {GENERATORS.get(generator, generator)}: {gains}")
    return "; ".join(parts) or NOT_RUN


def column(ref: str) -> dict | None:
    """One family's cells from its newest experiment (None: it wrote no noise-model metrics)."""
    generated = noise_models_metrics(ref)
    if not generated:
        return None
    denoised = denoiser_ref(ref.rsplit("/", 1)[-1])

    def commit(run: str) -> str:
        return (git("log", "-1", "--format=%h (%cs)", f"{run}^") or "?").strip()

    started = commit(ref) + ("" if denoised in (ref, None) else f"; PGap and fine-tuning: {commit(denoised)}")
    return {
        "models": {model: noise_cell(generated["models"].get(model)) for model in MODELS},
        "test blocks": str(generated.get("images")),
        "draws per block and model": str(generated.get("samples")),
        "kit commit the run started from": started,
        "PGap (DnCNN)": pgap_cell(metrics(denoised, "reports/metrics/pgap.json") if denoised else None),
        "fine-tuning gain (dB)": finetune_cell(denoised) if denoised else NOT_RUN,
    }


def columns(kept: dict[str, dict]) -> dict[str, dict]:
    """Every family's column: from its experiment here, else as `kept` (the last report's) has it."""
    fresh = {fam: col for fam, name in FAMILIES.items() if (ref := experiment_ref(name)) and (col := column(ref))}
    return {fam: fresh.get(fam) or kept[fam] for fam in FAMILIES if fam in fresh or fam in kept}


def report(cols: dict[str, dict]) -> str:
    fams = list(cols)
    lines = [
        "# The default pipeline on the real development pairs",
        "",
        "Each column: `dvc exp run --temp -n dev-<family> -S prepare.source=generic -S prepare.root=../shared/data/real_pairs_dev/<family>`",
        "(the pooled SIDD column: a folder of links to the SIDD_small, SIDD_medium and SIDD_misc pairs, see tools/dev_runs_report.py)",
        "with every other setting as in params.yaml at the commit named below; written by `python tools/dev_runs_report.py` from each",
        "experiment's metrics files.",
        "",
        "| noise model | " + " | ".join(f"{f}: AKLD ↓ / std (real) / leak (real)" for f in fams) + " |",
        "|---|" + "---:|" * len(fams),
    ]
    for model, label in MODELS.items():
        lines.append(f"| {label} | " + " | ".join(cols[f]["models"].get(model, NOT_RUN) for f in fams) + " |")
    lines += ["", PROTOCOL, "", "| | " + " | ".join(fams) + " |", "|---|" + "---|" * len(fams)]
    lines += [f"| {row} | " + " | ".join(cols[f][row] for f in fams) + " |" for row in SUMMARY_ROWS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports/dev_runs.md", help="file to write ('-': print only); default %(default)s")
    parser.add_argument("--columns", default="reports/dev_runs.json", help="the kept columns, read and rewritten; default %(default)s")
    args = parser.parse_args()
    kept_path = Path(args.columns)
    kept = json.loads(kept_path.read_text()) if kept_path.exists() else {}
    if not any(experiment_ref(name) for name in FAMILIES.values()):
        raise SystemExit(f"no experiment named {', '.join(FAMILIES.values())} here: run them first; nothing written")
    cols = columns(kept)
    text = report(cols)
    if args.out != "-":
        Path(args.out).write_text(text)
        kept_path.write_text(json.dumps(cols, indent=1, ensure_ascii=False) + "\n")
    print(text, end="")
