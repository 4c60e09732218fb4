"""Write reports/dev_runs.md from the DVC experiments `dev-<family>`: the default pipeline on
each family of the development pairs (`../shared/data/real_pairs_dev`, in this repository's
workspace only). The numbers are read from each experiment's metrics files, never typed.

Run the experiments first (about 25 minutes each on 2 CPU cores), then this script:

    dvc exp run --temp -n dev-sidd-small -S prepare.source=generic \\
        -S prepare.root=../shared/data/real_pairs_dev/SIDD_small
    python tools/dev_runs_report.py

A family whose experiment is missing is left out; a stage an experiment did not run (its
metrics file unchanged from the commit it started from) is shown as "not run".
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

FAMILIES = {"SIDD_small": "dev-sidd-small", "PolyU": "dev-polyu", "Nam_CC60": "dev-nam-cc60"}
MODELS = {
    "pngan": "PNGAN",
    "camera_fitted": "camera pipeline, fitted",
    "camera_random": "camera pipeline, random ranges",
    "heteroscedastic@camera": "heteroscedastic per camera/ISO",
    "heteroscedastic": "heteroscedastic, fitted",
    "correlated": "correlated Gaussian, fitted",
    "awgn_fitted": "AWGN, σ fitted",
    "awgn": "AWGN σ = 50/255",
}
PGAP_SHOWN = {"pngan": "PNGAN", "camera_fitted": "camera fitted", "heteroscedastic": "heteroscedastic"}
RATIOS = ("0", "0.5", "1")
NOT_RUN = "not run"
# The noise-model metrics, by the stage's name then (`generate` until it was renamed `noise_models`).
NOISE_MODELS_METRICS = ("reports/metrics/noise_models.json", "reports/metrics/generate.json")


def git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def experiment_ref(name: str) -> str | None:
    refs = (git("for-each-ref", "--format=%(refname)", "refs/exps") or "").split()
    return next((r for r in refs if r.endswith("/" + name)), None)


def metrics(ref: str, path: str) -> dict | None:
    """A metrics file as the experiment wrote it; None when the experiment did not write it."""
    text, base = git("show", f"{ref}:{path}"), git("show", f"{ref}^:{path}")
    return json.loads(text) if text is not None and text != base else None


def noise_models_metrics(ref: str) -> dict | None:
    """The noise-model metrics an experiment wrote, under the stage's current name or its old one."""
    return next((found for path in NOISE_MODELS_METRICS if (found := metrics(ref, path)) is not None), None)


def pgap_cell(pgap: dict | None) -> str:
    if pgap is None:
        return NOT_RUN
    scores = pgap.get("models", pgap)
    shown = ", ".join(f"{label} {scores[m]['pgap']:+.2f}" for m, label in PGAP_SHOWN.items())
    return f"real-trained {scores['real']['psnr']:.2f} dB; PGap {shown}"


def finetune_cell(ref: str) -> str:
    parts = []
    for ratio in RATIOS:
        run = metrics(ref, f"reports/metrics/finetune/ratio_{ratio}.json")
        if run:
            gains = ", ".join(f"{name} {next(iter(d['gain_psnr'].values())):+.2f}" for name, d in run["denoisers"].items())
            parts.append(f"ratio {ratio}: {gains}")
    return "; ".join(parts) or NOT_RUN


def report() -> str:
    runs = {fam: ref for fam, name in FAMILIES.items() if (ref := experiment_ref(name))}
    generated = {fam: noise_models_metrics(ref) for fam, ref in runs.items()}
    fams = [f for f in runs if generated[f]]
    lines = [
        "# The default pipeline on the real development pairs",
        "",
        "Each column: `dvc exp run --temp -n dev-<family> -S prepare.source=generic -S prepare.root=../shared/data/real_pairs_dev/<family>`",
        "with every other setting as in params.yaml at the commit named below; written by `python tools/dev_runs_report.py` from each",
        "experiment's metrics files. Held-out test blocks (split by scene), 10 draws per block and model.",
        "",
        "| noise model | " + " | ".join(f"{f}: AKLD ↓ / noise std (real)" for f in fams) + " |",
        "|---|" + "---:|" * len(fams),
    ]
    for model, label in MODELS.items():
        cells = [generated[f]["models"].get(model) for f in fams]
        lines.append(f"| {label} | " + " | ".join(f"{c['akld']:.3f} / {c['fake_std']:.1f} ({c['real_std']:.1f})" if c else "—" for c in cells) + " |")
    started = [(git("log", "-1", "--format=%h (%cs)", f"{runs[f]}^") or "?").strip() for f in fams]
    lines += [
        "",
        "| | " + " | ".join(fams) + " |",
        "|---|" + "---|" * len(fams),
        "| test blocks | " + " | ".join(str(generated[f].get("images")) for f in fams) + " |",
        "| kit commit the run started from | " + " | ".join(started) + " |",
        "| PGap (DnCNN) | " + " | ".join(pgap_cell(metrics(runs[f], "reports/metrics/pgap.json")) for f in fams) + " |",
        "| fine-tuning gain (dB) | " + " | ".join(finetune_cell(runs[f]) for f in fams) + " |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if not any(experiment_ref(name) for name in FAMILIES.values()):
        raise SystemExit(f"no experiment named {', '.join(FAMILIES.values())} here: run them first; reports/dev_runs.md left as it is")
    text = report()
    Path("reports/dev_runs.md").write_text(text)
    print(text)
