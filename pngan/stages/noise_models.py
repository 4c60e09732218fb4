"""Stage `noise_models`: every noise model noises the clean test images and is scored against real noise.

Models are fitted on the training split only, then draw `samples` noisy versions of each clean
test image (`pngan.noise_models`). Per image: AKLD and histogram KLD (mean over draws), the fake
and real noise std, the noisy PSNR and the content leak. Both generators are scored: the paper's
PNGAN and the noise-aware one, at each image's camera setting (`pngan_aware`) and at a level
estimated from another noisy test image of that setting (`pngan_aware@reference`), beside the
classical models given the same reference level (`heteroscedastic@reference`, `awgn@reference`). On simulated data the oracle rows are two independent
draws of the true simulator: what a perfect generator scores (a reference, not a bound; see
METHOD.md §5). One draw per model and image is kept as PNG for stage `inspect_noise`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure

from pngan import noise_models as nm
from pngan import plots
from pngan.data.prepared import given_or_smoke, load_split
from pngan.images import read_image
from pngan.runtime import run_info, select_device
from pngan.stages import smoke
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json

SECTIONS = ("noise_models",)  # and runtime's seed and device (dvc.yaml: --from)


def run(
    data_dir: str | None = None,
    models: Sequence[str] = nm.CLASSICAL,
    model_options: dict[str, dict] | None = None,
    generator_checkpoint: str | None = None,
    aware_checkpoint: str | None = None,
    oracle: bool = True,
    samples: int = 2,
    seed: int = 0,
    batch: int = 8,
    device: str = "auto",
    out_dir: str | None = None,
    metrics_file: str | None = None,
    per_image_file: str | None = None,
    by_group_file: str | None = None,
) -> dict[str, Any]:
    """Fit, sample and score every noise model; returns (and writes) the summary."""
    data = given_or_smoke(data_dir, smoke.settings("prepare"))
    out = _out_dir(out_dir, "noise_models")
    dev = select_device(device)
    train, test = load_split(data, "train"), load_split(data, "test")
    generators = nm.load_generators({nm.PNGAN: generator_checkpoint, nm.PNGAN_AWARE: aware_checkpoint}, dev)
    summary, per_image = nm.evaluate(train, test, models, model_options or {}, oracle, generators, samples, seed, batch, dev, out)
    summary.update(samples=samples, dataset=sorted({str(p.meta.get("dataset")) for p in test}), run=run_info(dev, seed=seed))
    if per_image_file:
        Path(per_image_file).parent.mkdir(parents=True, exist_ok=True)
        per_image.to_csv(per_image_file, index=False, float_format="%.6g")
    groups = nm.by_group(per_image)
    if by_group_file and groups is not None:
        Path(by_group_file).parent.mkdir(parents=True, exist_ok=True)
        groups.to_csv(by_group_file, index=False, float_format="%.6g")
    if metrics_file:
        write_json(metrics_file, summary)
    return summary


def crops_figure(data_dir: str | None, out_dir: str | None, models: Sequence[str]) -> Figure:
    """Clean / real / every model on the same crop of the test image with the median real noise."""
    pair = nm.median_noise_pair(load_split(given_or_smoke(data_dir, smoke.settings("prepare")), "test"))
    keep_dir = _out_dir(out_dir, "noise_models")
    noisy, clean = pair.load()
    views = {"real": noisy, **{m: read_image(keep_dir / m / f"{pair.name}.png") for m in models}}
    size = min(96, *clean.shape[:2])
    # one gain for all panels, set by the real noise: AWGN sigma=50 saturates, the rest compare
    return plots.crops(clean, views, box=(0, 0, size, size), scale=2, amplify="auto", gain_from="real", columns=5)
