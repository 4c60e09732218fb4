"""Write reports/akld_floor.md: what AKLD rewards, and what a generator told the level could still win.

Two measurements, both with Gaussian noise only (no generator), drawn and scored as the
noise-model table does (`pngan.noise_models.score_model`):

1. On the simulated camera, whose true noise law is known: the simulator itself (an independent
   draw, the table's oracle) against white Gaussian noise at the simulator's true per-pixel std
   (estimated from `--draws` simulator draws of the same clean image), and that std scaled.
   AKLD compares local variances (7 x 7 window); spatially correlated noise has a more variable
   local variance than white noise of the same std, so the metric can prefer white noise to the
   true law, and a level a little below the truth.
2. On every family: Gaussian noise at the noise-aware generator's condition level
   (`fit_condition`, as training fits it; the table's heteroscedastic@level), then that level
   times a gain fitted on the training split by least squares, two ways: on the clean image's
   local gradient per channel (edges), and on the clean pixel's colour (the classical
   counterparts of the generator's learned gain, `pngan.models.aware`), and last the level scaled to the
   scored image's own noise RMS per channel. That row reads the scored image's noisy partner,
   which no model may: it bounds what knowing each image's exact level would give.

    python tools/akld_floor.py --family simulated=simulated \\
        --family SIDD_small=../shared/data/real_pairs_dev/SIDD_small --family PolyU=../shared/data/real_pairs_dev/PolyU

Families are prepared as in `tools/level_sources.py` (params.yaml's `prepare` section, in a
scratch folder: the splits of the family's development run).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from families import parser, prepared, read, write

from pngan.data.pairs import Pair, training_arrays
from pngan.data.prepared import load_split
from pngan.data.simulate import SimulatorNoise
from pngan.images import to_tensor
from pngan.models.aware import gradient_magnitude
from pngan.noise.base import NoiseModel, randn_like
from pngan.noise.condition import LevelCondition
from pngan.noise.level import LevelNoise
from pngan.noise_models import score_model
from pngan.train.aware import fit_condition
from pngan.train.config import AwareGanConfig

SPLITS = ("val", "test")
SCALES = (0.9, 0.95, 1.05)  # the true std scaled: where AKLD's optimum lies
GAIN_BINS = 10  # quantile bins of the clean image's local gradient
ROWS = {  # row key: what it is, in the report
    "simulator": "the simulator (an independent draw: the table's oracle)",
    "white@true": "white Gaussian at the simulator's true std",
    **{f"white@true×{k:g}": f"the same, std × {k:g}" for k in SCALES},
    "white@level": "Gaussian at the noise-aware generator's level (heteroscedastic@level)",
    "white@level+gradient": "the same, times a gain on the clean gradient (least squares on training)",
    "white@level+colour": "the same, times a gain on the clean colour (least squares on training)",
    "white@image_rms": "the same, scaled to the scored image's own noise RMS (reads its noisy partner: a bound)",
}


class MapNoise(NoiseModel):
    """Gaussian noise of a fixed per-pixel std map (1, 3, H, W): for one clean image only."""

    name = "map_gaussian"

    def __init__(self, std: torch.Tensor):
        self.std = std

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if clean.shape[-2:] != self.std.shape[-2:]:
            raise ValueError(f"{self.name}: the std map is {tuple(self.std.shape[-2:])}, the image {tuple(clean.shape[-2:])}")
        return clean + self.std.to(clean) * randn_like(clean, generator)


def gradient_feature(clean: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W): each channel's clean gradient magnitude, as the generator's gain reads it."""
    return gradient_magnitude(clean)


def colour_features(clean: torch.Tensor, channel: int, knots: int = 9) -> torch.Tensor:
    """(H W, knots * 4): hat functions of the channel's clean value times [1, R, G, B]: a level
    that bends with the channel's own value and tilts with the pixel's colour."""
    v = clean[0].flatten(1)
    hats = (1 - (v[channel][:, None] - torch.linspace(0, 1, knots)[None]).abs() * (knots - 1)).clamp_min(0)
    colour = torch.cat([torch.ones(v.shape[1], 1), v.T], dim=1)
    return (hats[:, :, None] * colour[:, None, :]).flatten(1)


def fit_colour_gain(samples: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], pixels: int = 300_000) -> list[torch.Tensor]:
    """Per channel, least-squares weights of `colour_features` for the noise energy / level^2
    (averaged over 5 x 5 to tame its spread), on a random subset of the training pixels."""
    weights = []
    for c in range(3):
        a = torch.cat([colour_features(clean, c) for clean, _, _ in samples]).double()
        b = torch.cat([F.avg_pool2d(((noisy - clean) / level.clamp_min(1e-4)).square(), 5, 1, 2, count_include_pad=False)[0, c].flatten()
                       for clean, noisy, level in samples]).double()
        keep = torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(c))[:pixels]
        weights.append(torch.linalg.lstsq(a[keep], b[keep, None]).solution)
    return weights


def colour_gain_map(clean: torch.Tensor, weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """(1, 3, H, W) gain: the square root of the fitted energy ratio, floored at 0.05 in energy."""
    ratio = [(colour_features(clean, c).double() @ w).clamp_min(0.05).float().reshape(clean.shape[-2:]) for c, w in enumerate(weights)]
    return torch.stack(ratio)[None].sqrt()


def fit_gain(samples: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], bins: int = GAIN_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """(edges, gain (3, bins)) from (clean, noisy, level map) triples: per channel, the RMS of
    noise / level in each quantile bin of `gradient_feature` (the classical counterpart of the
    generator's gradient gain: a level that rises on edges, fitted by the same energy ratio)."""
    feature = torch.cat([gradient_feature(clean).transpose(0, 1).flatten(1) for clean, _, _ in samples], dim=1)
    ratio = torch.cat([((noisy - clean) / level.clamp_min(1e-4)).square().transpose(0, 1).flatten(1) for clean, noisy, level in samples], dim=1)
    pooled = feature.flatten()[torch.randperm(feature.numel(), generator=torch.Generator().manual_seed(0))[:200_000]]
    edges = torch.quantile(pooled, torch.linspace(0, 1, bins + 1)[1:-1])
    index = torch.bucketize(feature, edges)
    gain = torch.stack([torch.stack([r[i == k].mean() for k in range(bins)]) for r, i in zip(ratio, index)]).sqrt()
    return edges, gain.nan_to_num(1.0)  # an empty bin (tied quantiles, e.g. many flat pixels): the level itself


def with_gain(level: torch.Tensor, clean: torch.Tensor, edges: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """`level` times the gain of each pixel's gradient bin, per channel."""
    index = torch.bucketize(gradient_feature(clean), edges)
    return level * torch.stack([gain[c][index[:, c]] for c in range(gain.shape[0])], dim=1)


def _tensors(pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
    noisy, clean = pair.load()
    return to_tensor(clean)[None], to_tensor(noisy)[None]


def true_std(pair: Pair, draws: int, seed: int) -> torch.Tensor:
    """The simulator's per-pixel noise std on the pair's clean image, from `draws` draws."""
    clean, _ = _tensors(pair)
    simulator, generator = SimulatorNoise(pair.meta["profile"]), torch.Generator().manual_seed(seed)
    energy = sum((simulator.sample(clean, generator) - clean).square() for _ in range(draws))
    return (energy / draws).sqrt()


def choosers(train: Sequence[Pair], condition: LevelCondition, simulated: bool, draws: int, seed: int) -> dict[str, Callable[[Pair], NoiseModel]]:
    """Each row's noise model for a held-out pair."""
    def level(pair: Pair) -> torch.Tensor:
        return condition.level_for(pair.meta).map(_tensors(pair)[0])

    samples = [(*_tensors(p), level(p)) for p in train]
    edges, gain = fit_gain(samples)
    colour = fit_colour_gain(samples)

    def image_rms(pair: Pair) -> NoiseModel:
        clean, noisy = _tensors(pair)
        s = level(pair)
        return MapNoise(s * ((noisy - clean).square().mean(dim=(-2, -1), keepdim=True) / s.square().mean(dim=(-2, -1), keepdim=True)).sqrt())

    known: dict[str, torch.Tensor] = {}

    def truth(pair: Pair) -> torch.Tensor:  # drawn once per block for every scaled row
        if pair.name not in known:
            known[pair.name] = true_std(pair, draws, seed)
        return known[pair.name]

    rows: dict[str, Callable[[Pair], NoiseModel]] = {}
    if simulated:
        rows["simulator"] = lambda p: SimulatorNoise(p.meta["profile"])
        rows["white@true"] = lambda p: MapNoise(truth(p))
        for k in SCALES:
            rows[f"white@true×{k:g}"] = lambda p, k=k: MapNoise(k * truth(p))
    rows["white@level"] = lambda p: LevelNoise(condition.level_for(p.meta))
    rows["white@level+gradient"] = lambda p: MapNoise(with_gain(level(p), _tensors(p)[0], edges, gain))
    rows["white@level+colour"] = lambda p: MapNoise(level(p) * colour_gain_map(_tensors(p)[0], colour))
    rows["white@image_rms"] = image_rms
    return rows


def score_family(root: str, params: dict, draws: int) -> dict:
    """{row: {split: {akld, fake_std, real_std, images}}} for one family."""
    section, seed = params["noise_models"], params["runtime"]["seed"]
    aware = {k: v for k, v in params["train_pngan_aware"].items() if k in ("level_source", "level_knots", "level_axis", "estimator_options")}
    with prepared(root, params) as data:
        train = load_split(data, "train")
        condition = fit_condition(AwareGanConfig(**aware), train, training_arrays(train))
        out: dict[str, dict] = {}
        for name, model_for in choosers(train, condition, root == "simulated", draws, seed).items():
            out[name] = {}
            for split in SPLITS:
                rows = score_model(name, model_for, load_split(data, split), section["samples"], seed, section["batch"], torch.device("cpu"), None)
                out[name][split] = {k: float(np.mean([r[k] for r in rows])) for k in ("akld", "fake_std", "real_std")}
                out[name][split]["images"] = len(rows)
        return out


def report(results: dict[str, dict], samples: int, draws: int) -> str:
    fams = list(results)
    lines = [
        "# What AKLD rewards, and what a generator told the level could still win",
        "",
        "Written by `python tools/akld_floor.py` (its docstring gives the command). Gaussian noise only, no generator;",
        "AKLD ↓ / noise std /255 (real), validation | test.",
        "",
        "| row | " + " | ".join(fams) + " |",
        "|---|" + "---|" * len(fams),
    ]
    for row, text in ROWS.items():
        cells = []
        for f in fams:
            r = results[f].get(row)
            cells.append("—" if r is None else " · ".join(f"{r[s]['akld']:.3f} / {r[s]['fake_std']:.1f} ({r[s]['real_std']:.1f})" for s in SPLITS))
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Every held-out block is noised {samples} times per row; the simulator's true std comes from {draws} further draws",
        "of it on the same clean block. — : the true law is known only for the simulated camera. The gains are fitted on",
        "the training split (the gradient gain, per channel, scales the level by the clean gradient's bin, the colour",
        "gain by the pixel's colour); the image-RMS row reads each scored image's own noisy partner, which no",
        "model may, and bounds what knowing each image's exact level would give.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = parser(__doc__, "reports/akld_floor.md")
    p.add_argument("--draws", type=int, default=32, help="simulator draws per block for its true std")
    args = p.parse_args()
    families, params = read(args)
    results = {name: score_family(root, params, args.draws) for name, root in families.items()}
    write(args.out, report(results, params["noise_models"]["samples"], args.draws), results)


if __name__ == "__main__":
    main()
