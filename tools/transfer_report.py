"""Write reports/transfer.md: a noise-aware generator trained on one family of real pairs, used for
the cameras of other families in reference mode (its level estimated blindly from another noisy
image of the target camera setting), against each target family's own fitted models.

The generator is the pooled-SIDD development run's (`dev-sidd-all`, see tools/dev_runs_report.py);
fetch it from the experiment, then score it on each target family:

    dvc get . artifacts/train_pngan_aware/generator.pt --rev <dev-sidd-all's commit> -o /tmp/sidd_aware.pt
    python tools/transfer_report.py --generator /tmp/sidd_aware.pt \\
        --family PolyU=../shared/data/real_pairs_dev/PolyU --family Nam_CC60=../shared/data/real_pairs_dev/Nam_CC60

Each target family is prepared with params.yaml's `prepare` section (source generic, its folder;
the same test split as its own development run) in a scratch folder, and scored by
`pngan.stages.noise_models.run` with the noise_models section's draws and seed: the transferred
generator in reference mode (`pngan_aware@reference`) and at its all-pairs level (`pngan_aware`:
the target's cameras are not among its trained settings), beside the target's own fitted AWGN
and the Gaussian and AWGN at the same reference level. Nothing is trained on the target family
but the classical fits.
"""

from __future__ import annotations

from pathlib import Path

from families import parser, prepared, read, write

from pngan.stages import noise_models

ROWS = {
    "pngan_aware@reference": "noise-aware PNGAN (SIDD-trained), reference level",
    "pngan_aware": "noise-aware PNGAN (SIDD-trained), its all-pairs level",
    "heteroscedastic@reference": "Gaussian at the same reference level",
    "awgn@reference": "AWGN, σ from the same reference",
    "awgn_fitted": "AWGN, σ fitted on the target's training split",
}
MODELS = ["awgn_fitted", "heteroscedastic@reference", "awgn@reference"]


def score_family(generator: Path, root: Path, params: dict) -> dict:
    """The noise-model summary of one target family, prepared as its development run prepares it."""
    section = params["noise_models"]
    with prepared(root, params) as data:
        return noise_models.run(data_dir=str(data), models=MODELS, aware_checkpoint=str(generator), oracle=False,
                                samples=section["samples"], seed=params["runtime"]["seed"], batch=section["batch"],
                                out_dir=str(data.parent / "out"))


def cell(m: dict | None, awgn: dict) -> str:
    if m is None:
        return "not run"
    return f"{m['akld']:.3f} / {m['fake_std']:.1f} ({m['real_std']:.1f}) / {m['fake_std'] / awgn['fake_std']:.2f}"


def report(results: dict[str, dict], generator: Path, samples: int) -> str:
    fams = list(results)
    lines = [
        "# Transfer: a noise-aware generator trained on SIDD, used for other cameras",
        "",
        f"Generator: `{generator.name}`, trained on the pooled SIDD development pairs (run `dev-sidd-all`); written by",
        "`python tools/transfer_report.py` (its docstring gives the commands).",
        "",
        "| model | " + " | ".join(f"{f}: AKLD ↓ / std (real) / std ÷ fitted AWGN's" for f in fams) + " |",
        "|---|" + "---:|" * len(fams),
    ]
    for model, label in ROWS.items():
        lines.append(f"| {label} | " + " | ".join(cell(results[f]["models"].get(model), results[f]["models"]["awgn_fitted"]) for f in fams) + " |")
    lines += [
        "",
        "| | " + " | ".join(fams) + " |",
        "|---|" + "---|" * len(fams),
        "| test blocks | " + " | ".join(str(results[f]["images"]) for f in fams) + " |",
        "| references of another camera setting | "
        + " | ".join(str(results[f]["models"]["pngan_aware@reference"]["params"].get("images_with_a_reference_of_another_setting", "?")) for f in fams) + " |",
        "",
        f"Protocol: each target family is split by scene as in its own development run; its test blocks are noised {samples} times",
        "per model. The reference level is estimated blindly (the generator file's estimator and calibration, fitted on SIDD)",
        "from the noisy image of another source image of the same camera setting of the target family, never from the scored",
        "image's own noisy version; the Gaussian and AWGN rows read the same estimate. The fitted AWGN is fitted on the",
        "target's training split: the classical model that needs the target's clean pairs, which the generator never saw.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = parser(__doc__, "reports/transfer.md")
    p.add_argument("--generator", type=Path, required=True, help="the noise-aware generator file to transfer")
    args = p.parse_args()
    families, params = read(args)
    results = {name: score_family(args.generator, Path(root), params) for name, root in families.items()}
    kept = {name: {model: {k: v for k, v in r["models"][model].items() if k in ("akld", "kld", "fake_std", "real_std", "leak", "real_leak")}
                   for model in ROWS if model in r["models"]} for name, r in results.items()}
    write(args.out, report(results, args.generator, params["noise_models"]["samples"]), kept)


if __name__ == "__main__":
    main()
