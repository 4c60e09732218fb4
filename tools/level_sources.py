"""Write reports/level_sources.md: where the noise-aware generator's level comes from, compared on
the validation split (where the default was chosen) and the test split of each family.

For each `level_source` of `train_pngan_aware` (camera: one level per camera setting; iso_law:
one per camera, scaled by a fitted ISO law; all: one for every pair) the condition is fitted on
the training split exactly as training fits it (`pngan.train.aware.fit_condition`) and scored
with no generator: Gaussian noise at each held-out image's level (`LevelCondition.level_for`,
the level the generator is given), drawn and scored as the noise-model table does.

    python tools/level_sources.py --family SIDD_small=../shared/data/real_pairs_dev/SIDD_small \\
        --family PolyU=../shared/data/real_pairs_dev/PolyU --family simulated=simulated

Each family is prepared with params.yaml's `prepare` section (source generic and the family's
folder, or `simulated`: the section as it is) in a scratch folder: the same splits as its
development run. Settings come from params.yaml (`train_pngan_aware`, `noise_models`, `runtime`).
"""

from __future__ import annotations

import numpy as np
import torch
from families import parser, prepared, read, write

from pngan.data.pairs import training_arrays
from pngan.data.prepared import load_split
from pngan.noise.level import LevelNoise
from pngan.noise_models import score_model
from pngan.train.aware import fit_condition, level_source_of
from pngan.train.config import AwareGanConfig

SOURCES = ("camera", "iso_law", "all")
SPLITS = ("val", "test")


def score_family(root: str, params: dict) -> dict:
    """{source: {split: {akld, fake_std, real_std}}} for one family; a source its pairs cannot
    take (iso_law without ISO metadata) is left out."""
    section, seed = params["noise_models"], params["runtime"]["seed"]
    aware = {k: v for k, v in params["train_pngan_aware"].items() if k in ("level_knots", "level_axis", "estimator_options")}
    with prepared(root, params) as data:
        train = load_split(data, "train")
        arrays = training_arrays(train)
        chooses = level_source_of("auto", train)
        out: dict[str, dict] = {"auto": {"chooses": chooses}}
        for source in SOURCES:
            if source == "iso_law" and chooses != "iso_law":
                continue
            condition = fit_condition(AwareGanConfig(level_source=source, **aware), train, arrays)
            out[source] = {}
            for split in SPLITS:
                rows = score_model(f"gaussian@{source}", lambda p, c=condition: LevelNoise(c.level_for(p.meta)), load_split(data, split),
                                   section["samples"], seed, section["batch"], torch.device("cpu"), None)
                out[source][split] = {k: float(np.mean([r[k] for r in rows])) for k in ("akld", "fake_std", "real_std")}
                out[source][split]["images"] = len(rows)
        return out


def cell(result: dict, source: str, split: str) -> str:
    if source not in result:
        return "—"
    m = result[source][split]
    return f"{m['akld']:.3f} / {m['fake_std']:.1f} ({m['real_std']:.1f})"


def report(results: dict[str, dict], samples: int) -> str:
    fams = list(results)
    lines = [
        "# Where the noise-aware generator's level comes from",
        "",
        "Written by `python tools/level_sources.py` (its docstring gives the command). Gaussian noise at each held-out",
        "image's level, as the noise-aware generator is given it (no generator): AKLD ↓ / noise std /255 (real).",
        "",
        "| level_source | split | " + " | ".join(fams) + " |",
        "|---|---|" + "---:|" * len(fams),
    ]
    for source in SOURCES:
        for split in SPLITS:
            lines.append(f"| {source} | {split} | " + " | ".join(cell(results[f], source, split) for f in fams) + " |")
    lines += [
        "| auto chooses | | " + " | ".join(results[f]["auto"]["chooses"] for f in fams) + " |",
        "",
        f"Each family is split by scene as in its development run; every held-out block is noised {samples} times per",
        "source. camera: the level fitted on the training images of the block's camera setting (the all-pairs level for a",
        "setting not in training); iso_law: the all-pairs level times exp(camera offset + slope · log ISO), fitted on the",
        "training images (a camera not in training: the cameras' mean offset); all: the all-pairs level. — : the family's",
        "pairs carry no ISO. Validation chooses; the test split only reports.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parser(__doc__, "reports/level_sources.md").parse_args()
    families, params = read(args)
    results = {name: score_family(root, params) for name, root in families.items()}
    write(args.out, report(results, params["noise_models"]["samples"]), results)


if __name__ == "__main__":
    main()
