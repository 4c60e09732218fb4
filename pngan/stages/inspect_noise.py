"""Stage `inspect_noise`: how the noise of every model differs from real noise, in figures and tables.

Reads the prepared test split (the real noisy/clean pairs) and the one draw per model and test
image that stage `noise_models` keeps (`<noise_models_dir>/<model>/<image>.png`), and streams them
image by image through `pngan.stats.NoiseStats`: one accumulator per model and metadata group
(camera profile on simulated data, camera and ISO on real data), pooled per model for the
figures. Writes METHOD.md §5's summary table (per model, per model and group, per image) and the
curves behind the figures as CSV for `dvc plots`, and every figure as PNG.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pngan import noise_models as nm
from pngan import plots, stats
from pngan.data.pairs import Pair
from pngan.data.prepared import MANIFEST, given_or_smoke, load_split
from pngan.images import DataError, read_image
from pngan.runtime import select_device
from pngan.paths import made_once, versioned_scratch_dir
from pngan.stages import smoke
from pngan.stages.common import read_json

SECTIONS = ("inspect_noise",)
REAL = "real"
# Models shown right after real noise, in this order: the true simulator, then the two generators.
LEADING = (nm.ORACLE, nm.PNGAN, nm.PNGAN_AWARE)
# Metadata keys that group test images, in order of preference (METHOD.md §6: report per camera/ISO).
GROUP_KEYS = (("profile",), ("camera", "iso"), ("camera",), ("iso",))
METRICS_FILE = "noise_models.json"
SMOKE_DIR = "inspect_noise-smoke"


# ---------------------------------------------------------------- inputs


def find_pipeline_outputs(start: str | Path | None = None) -> dict[str, str]:
    """The pipeline's inputs of this stage when this clone has them (artifacts/prepare and
    artifacts/noise_models, from `start` or its parent, see `smoke.committed`); {} otherwise."""
    data, draws = smoke.committed(f"artifacts/prepare/{MANIFEST}", start), smoke.committed("artifacts/noise_models", start)
    if data is None or draws is None or not draws.is_dir():
        return {}
    found = {"data_dir": str(data.parent), "noise_models_dir": str(draws)}
    metrics = draws.parent.parent / "reports" / "metrics" / METRICS_FILE
    if metrics.is_file():
        found["noise_models_metrics"] = str(metrics)
    return found


def draws_or_smoke(data_dir: str | None, noise_models_dir: str | None,
                   noise_models_metrics: str | None) -> tuple[Path, Path, Path | None]:
    """(data, draws folder, noise_models metrics): as given, or, with no `noise_models_dir`, every
    model's draws on the smoke data set at smoke size (`pngan.stages.smoke`), made once in scratch."""
    if noise_models_dir is not None:
        return given_or_smoke(data_dir, smoke.settings("prepare")), Path(noise_models_dir), Path(noise_models_metrics) if noise_models_metrics else None
    if data_dir is not None:
        raise ValueError("data_dir is given but noise_models_dir is not: pass the noise_models stage's output folder "
                         "made from that data set (or neither, for a small simulated set made in scratch)")
    data = given_or_smoke(None, smoke.settings("prepare"))
    names = [p.name for p in load_split(data, "test")]
    metrics = versioned_scratch_dir(SMOKE_DIR) / METRICS_FILE
    if metrics.is_file() and not all((metrics.parent / "draws" / m / f"{n}.png").is_file()
                                     for m in read_json(metrics)["models"] for n in names):
        metrics.unlink()  # the scratch data set was remade since: draw again
    folder = made_once(SMOKE_DIR, METRICS_FILE, lambda out: smoke_draws(data, out))
    return data, folder / "draws", folder / METRICS_FILE


def smoke_draws(data: Path, out: Path) -> None:
    """Every classical model's and the oracle's first draw on each test image
    (out/draws/<model>/<image>.png) and their scores (out/noise_models.json), at smoke size."""
    samples = smoke.settings("noise_models")["samples"]
    summary, _ = nm.evaluate(load_split(data, "train"), load_split(data, "test"), nm.CLASSICAL, {}, True, {},
                             samples, 0, 8, select_device("auto"), out / "draws")
    (out / METRICS_FILE).write_text(json.dumps(summary))


def model_names(noise_models_dir: Path, noise_models_metrics: Path | None, models: Sequence[str] | None) -> list[str]:
    """The models to inspect (default: those of the metrics file, else the folder's subfolders),
    ordered oracle, pngan, then as listed; real noise is not among them (it always comes first)."""
    if models is None:
        listed = list(read_json(noise_models_metrics)["models"]) if noise_models_metrics else sorted(
            p.name for p in noise_models_dir.iterdir() if p.is_dir())
        models = [m for m in LEADING if m in listed] + [m for m in listed if m not in LEADING]
    if REAL in models:
        raise ValueError(f"'{REAL}' names the real noise, which is always shown; do not list it among the models")
    missing = [m for m in models if not (noise_models_dir / m).is_dir()]
    if missing:
        raise DataError(f"{noise_models_dir}: no folder for model(s) {missing} (run stage noise_models with them)")
    return list(models)


def line_models(models: Sequence[str], noise_models_metrics: Path | None, most: int) -> list[str]:
    """The models drawn in the line figures (histograms, noise levels, profiles, spectra), which
    more than `most` lines would crowd: then the oracle and pngan, and the others in order of
    their AKLD in stage noise_models' metrics (closest to real first; listed order without them)."""
    if len(models) <= most:
        return list(models)
    akld = {}
    if noise_models_metrics is not None:
        akld = {m: v.get("akld", np.inf) for m, v in read_json(noise_models_metrics)["models"].items()}
    leading = [m for m in models if m in LEADING]
    others = sorted((m for m in models if m not in LEADING), key=lambda m: akld.get(m, np.inf))  # stable
    chosen = set((leading + others)[:most])
    return [m for m in models if m in chosen]


def group_keys(test: Sequence[Pair], group_by: str | Sequence[str] | None) -> list[str]:
    """Metadata keys that group the test images: `group_by` ([] for none), or by default the
    first of profile / camera + ISO / camera / ISO that every test image has."""
    if group_by is not None:
        keys = [group_by] if isinstance(group_by, str) else list(group_by)
        lacking = [p for p in test if any(k not in p.meta for k in keys)]
        if lacking:
            raise ValueError(f"group_by {keys}: {len(lacking)} of {len(test)} test images lack that metadata "
                             f"(first: {lacking[0].name}, whose keys are {', '.join(map(str, lacking[0].meta))})")
        return keys
    for keys in GROUP_KEYS:
        if all(all(k in p.meta for k in keys) for p in test):
            return list(keys)
    return []


def group_label(meta: Mapping[str, Any], keys: Sequence[str]) -> str:
    return " ".join(f"{meta[k]}" if k != "iso" else f"ISO {meta[k]}" for k in keys) if keys else "all"


# ---------------------------------------------------------------- statistics


def accumulate(test: Sequence[Pair], noise_models_dir: Path, models: Sequence[str], keys: Sequence[str],
               options: Mapping[str, Any]) -> dict[str, dict[str, stats.NoiseStats]]:
    """NoiseStats per model (real first) and group label, reading one test image at a time."""
    per_group: dict[str, dict[str, stats.NoiseStats]] = {m: {} for m in (REAL, *models)}
    for pair in test:
        noisy, clean = pair.load()
        label = group_label(pair.meta, keys)
        meta = {"image": pair.name, **{k: pair.meta[k] for k in keys}}
        for model in (REAL, *models):
            fake = noisy if model == REAL else read_image(noise_models_dir / model / f"{pair.name}.png")
            if fake.shape != clean.shape:
                raise DataError(f"{noise_models_dir / model / pair.name}.png: {fake.shape} differs from the clean "
                                f"image's {clean.shape} (generated from another data set?)")
            per_group[model].setdefault(label, stats.NoiseStats(**options)).add(clean, fake, meta)
    return per_group


def per_image_table(pooled: Mapping[str, stats.NoiseStats]) -> pd.DataFrame:
    """One row per model and image: model, image, group keys, the summary columns."""
    return pd.concat([s.per_image().assign(model=m) for m, s in pooled.items()], ignore_index=True).pipe(
        lambda t: t[["model", *[c for c in t.columns if c != "model"]]])


def example_pair(test: Sequence[Pair], per_image: pd.DataFrame, name: str | None) -> Pair:
    """The named test pair, or the one whose real noise std is the median (a typical image)."""
    if name is None:
        real = per_image[per_image["model"] == REAL].sort_values("std_255", kind="stable")
        name = str(real["image"].iloc[len(real) // 2])
    for pair in test:
        if pair.name == name:
            return pair
    raise ValueError(f"example image '{name}' is not in the test split")


def _wide(curves: Mapping[str, np.ndarray], x_name: str, x: np.ndarray) -> pd.DataFrame:
    """x column, then one column per model (for `dvc plots`: one line per listed column)."""
    return pd.DataFrame({x_name: x, **curves})


def curve_tables(pooled: Mapping[str, stats.NoiseStats]) -> dict[str, pd.DataFrame]:
    """The curves behind the figures, one column per model: R, G, B pooled (histogram, noise level)
    or their mean (autocorrelation, power spectrum)."""
    first = next(iter(pooled.values()))
    hist_edges = first.histogram().edges * 255.0
    nlf_edges = first.noise_level().edges * 255.0
    lags = np.arange(first.max_lag + 1)
    acf = {m: s.autocorrelation().values.mean(axis=0) for m, s in pooled.items()}
    return {
        "histogram": _wide({m: s.histogram().density().mean(axis=0) / 255.0 for m, s in pooled.items()},
                           "noise_level", 0.5 * (hist_edges[:-1] + hist_edges[1:])),
        "noise_level": _wide({m: s.noise_level(pool_channels=True).std[0] * 255.0 for m, s in pooled.items()},
                             "intensity", 0.5 * (nlf_edges[:-1] + nlf_edges[1:])),
        "autocorrelation_h": _wide({m: a[first.max_lag, first.max_lag:] for m, a in acf.items()}, "lag", lags),
        "autocorrelation_v": _wide({m: a[first.max_lag:, first.max_lag] for m, a in acf.items()}, "lag", lags),
        "power_spectrum": _wide({m: s.power_spectrum().power.mean(axis=0) for m, s in pooled.items()},
                                "frequency", first.power_spectrum().frequency),
    }


def noise_level_by_group(per_group: Mapping[str, Mapping[str, stats.NoiseStats]]) -> pd.DataFrame:
    """Noise level functions per model and group (R, G, B pooled, as in the figure), long form; bins
    too sparse to show are left out."""
    table = pd.concat([s.noise_level(pool_channels=True).frame().assign(model=m, group=g)
                       for m, groups in per_group.items() for g, s in groups.items()], ignore_index=True)
    return table.loc[table["std_255"].notna(), ["model", "group", "intensity", "std_255", "count"]]


# ---------------------------------------------------------------- figures


def by_group(per_group: Mapping[str, Mapping[str, stats.NoiseStats]]) -> dict[str, dict[str, stats.NoiseStats]]:
    """model -> group -> stats turned into group -> model -> stats, groups from the quietest real noise up."""
    real = per_group[REAL]
    order = sorted(real, key=lambda g: float(real[g].per_image()["std_255"].median()))
    return {g: {m: groups[g] for m, groups in per_group.items() if g in groups} for g in order}


def balanced_columns(panels: int, most: int = 6) -> int:
    """Panels per row for rows of at most `most` panels, as even as possible (11 -> 6 + 5)."""
    return -(-panels // -(-panels // most))


def make_figures(pooled: Mapping[str, stats.NoiseStats], per_group: Mapping[str, Mapping[str, stats.NoiseStats]],
                 per_image: pd.DataFrame, lines: Sequence[str], example: Pair, noise_models_dir: Path, crop_size: int,
                 crop_scale: int) -> dict[str, Figure]:
    """Every figure of the stage, by file stem, in reading order. Line figures show real noise and
    the models `lines`; the others (crops, overview, maps, matrices) every model."""
    figs: dict[str, Figure] = {}
    shown = [REAL, *lines]
    drawn = {m: pooled[m] for m in shown}
    noisy, clean = example.load()
    views = {REAL: noisy, **{m: read_image(noise_models_dir / m / f"{example.name}.png") for m in pooled if m != REAL}}
    h, w = clean.shape[:2]
    size = min(crop_size, h, w)
    figs["noise_crops"] = plots.crops(clean, views, box=((h - size) // 2, (w - size) // 2, size, size),
                                      scale=crop_scale, amplify="auto", gain_from=REAL,
                                      columns=balanced_columns(len(views) + 1))
    figs["overview"] = plots.statistics_overview(per_image, reference=REAL)
    figs["histograms"] = plots.histograms(drawn, zoom_on=REAL)
    figs["histograms_log"] = plots.histograms(drawn, log=True)
    groups = {g: {m: s for m, s in models.items() if m in shown} for g, models in by_group(per_group).items()}
    if len(groups) > 1:
        group_columns = balanced_columns(len(groups), most=3)
        figs["histograms_by_group"] = plots.histograms_by_group(groups, log=True, columns=group_columns)
    figs["noise_level"] = plots.noise_level(drawn)
    if len(groups) > 1:
        figs["noise_level_by_group"] = plots.noise_level_by_group(groups, columns=group_columns)
    columns = balanced_columns(len(pooled))
    figs["autocorrelation_maps"] = plots.autocorrelation_maps(pooled, columns=columns)
    figs["autocorrelation_profiles"] = plots.autocorrelation_profiles(drawn)
    figs["power_spectra"] = plots.power_spectra(drawn)
    figs["channel_correlations"] = plots.channel_correlations(pooled, columns=columns)
    variance = {m: stats.local_variance_map(clean, v) for m, v in views.items()}
    # the real noise sets the scale: a far noisier model saturates instead of flattening the others
    top = 2.0 * float(np.percentile(np.sqrt(variance[REAL].mean(axis=-1)), 99.5)) * 255.0
    figs["variance_maps"] = plots.variance_maps(variance, clean, columns=balanced_columns(len(views) + 1),
                                                vmax=top if top > 0 else None)
    kl = {m: stats.kl_map(clean, noisy, v) for m, v in views.items() if m != REAL}
    figs["kl_maps"] = plots.kl_maps(kl, clean, columns=balanced_columns(len(kl) + 1), log=True)
    return figs


# ---------------------------------------------------------------- the stage


def run(
    data_dir: str | None = None,
    noise_models_dir: str | None = None,
    noise_models_metrics: str | None = None,
    models: Sequence[str] | None = None,
    group_by: str | Sequence[str] | None = None,
    example_image: str | None = None,
    crop_size: int = 128,
    crop_scale: int = 1,
    max_lag: int = 5,
    hist_max_level: int = 128,
    nlf_bins: int = 32,
    nlf_min_count: int = 500,
    psd_bins: int = 32,
    max_lines: int = 7,
    figures_dir: str | None = None,
    stats_dir: str | None = None,
) -> dict[str, Any]:
    """Noise statistics of real noise and every model on the test split, their tables and figures.

    models: default every model of the noise_models metrics (else of the folder), oracle and pngan
    first. group_by: metadata key(s) for the per-group tables and noise level functions; default
    the camera profile (simulated data) or camera and ISO (real data) when every test image has
    them, [] for none. example_image: the test image of the crops and AKLD maps (default: the one
    with the median real noise level). max_lines: most models drawn in one line figure (see
    `line_models`); the crops, overview, maps and matrices show every model. Returns the tables,
    the statistics and the figures.
    """
    data, draws_dir, metrics = draws_or_smoke(data_dir, noise_models_dir, noise_models_metrics)
    test = load_split(data, "test")
    names = model_names(draws_dir, metrics, models)
    keys = group_keys(test, group_by)
    options = dict(hist_edges=stats.level_edges(hist_max_level), max_lag=max_lag, nlf_bins=nlf_bins,
                   nlf_min_count=nlf_min_count, psd_bins=psd_bins)
    per_group = accumulate(test, draws_dir, names, keys, options)
    pooled = {m: stats.NoiseStats.merged(groups.values()) for m, groups in per_group.items()}
    per_image = per_image_table(pooled)
    summary = stats.summarize(per_image)
    group_summary = stats.summarize(per_image, keys) if keys else None
    example = example_pair(test, per_image, example_image)
    lines = line_models(names, metrics, max_lines - 1)
    figures = make_figures(pooled, per_group, per_image, lines, example, draws_dir, crop_size, crop_scale)
    curves = curve_tables(pooled)
    if stats_dir:
        write_tables(Path(stats_dir), summary, group_summary, per_image, curves,
                     noise_level_by_group(per_group) if keys else None)
    if figures_dir:
        for name, fig in figures.items():
            plots.save(fig, Path(figures_dir) / f"{name}.png")
    return {"summary": summary, "by_group": group_summary, "per_image": per_image, "curves": curves,
            "stats": pooled, "stats_by_group": per_group, "figures": figures, "models": [REAL, *names],
            "line_models": [REAL, *lines],
            "group_by": keys, "example_image": example.name, "data_dir": str(data), "noise_models_dir": str(draws_dir)}


def write_tables(folder: Path, summary: pd.DataFrame, group_summary: pd.DataFrame | None, per_image: pd.DataFrame,
                 curves: Mapping[str, pd.DataFrame], nlf_groups: pd.DataFrame | None) -> None:
    """The CSV tables (and summary.md) in `folder`; the per-group ones only when there are groups."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"summary": summary, "per_image": per_image, **curves}
    if group_summary is not None:
        tables.update(summary_by_group=group_summary, noise_level_by_group=nlf_groups)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False, float_format="%.6g")
    text = "## Noise statistics per model\n\n" + stats.table_markdown(summary) + "\n"
    if group_summary is not None:
        text += "\n## Per group\n\n" + stats.table_markdown(group_summary) + "\n"
    (folder / "summary.md").write_text(text)
