"""Noise clean images with a trained PNGAN generator, and score noisy folders.

    generator, info = load_generator("runs/pngan/generator.pt")
    noise = build_input_noise(info["input"])                          # the synthetic input it expects
    fake = generate_noisy(generator, noise, clean, seed=0)             # (1, 3, H, W) in 8-bit levels
    model = GeneratorNoise.from_file("runs/pngan/generator.pt")        # the same, as a noise model
    generate_folder("runs/pngan/generator.pt", "clean/", "fake/")     # one PNG per clean image
    aware = GeneratorNoise.from_file("runs/pngan_aware/generator.pt")  # a noise-aware generator ...
    aware.for_camera("GP", 800).sample(clean)                          # ... at a camera and ISO,
    aware.for_level(NoiseLevel.constant(12 / 255)).sample(clean)       # a level, or a reference's level
    generate_folder("runs/pngan_aware/generator.pt", "clean/", "fake/", reference="my_noisy/")
    scores = score_folders("clean/", "real/", "fake/")                # AKLD / KLD / PSNR per image

Large images go through the generator tile by tile (`pngan.models.tiling`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from pngan.data.pairs import _by_stem as _unique_stems
from pngan.data.pairs import Pair, list_images, read_clean_folder
from pngan.errors import OutputError, ParamsError
from pngan.images import IMAGE_EXTENSIONS, DataError, is_image_file, read_image, to_image, to_tensor, write_png
from pngan.models.aware import add_noise, generator_input
from pngan.models.files import load_network_file
from pngan.models.tiling import apply_tiled
from pngan.noise.base import NoiseModel, quantize, randn_like
from pngan.noise.condition import LevelCondition
from pngan.noise.level import NoiseLevel
from pngan.noise.synthetic import build_input_noise, spec_for_setting
from pngan.runtime import autocast, file_digest, keyed_generator, select_device, stable_seed


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a PNGAN generator file (or training checkpoint), in eval mode, and the
    file's description (arch, kwargs, summary, and a paper generator's `input` spec or a
    noise-aware one's `condition`, a LevelCondition). Safe on untrusted files."""
    return load_network_file(path, "generator", device)


def is_aware(info: dict[str, Any]) -> bool:
    """Whether a loaded generator file is a noise-aware generator's (it then needs a level)."""
    return "condition" in info


class GeneratorNoise(NoiseModel):
    """A trained generator used as a noise model, like any classical one: y = G(y_s), with y_s
    drawn from the input noise it was trained with, G applied tile by tile."""

    name = "pngan"

    def __init__(self, generator: nn.Module, input_noise: NoiseModel, input_name: str, precision: str = "fp32",
                 tile: int = 512, overlap: int = 32, info: dict[str, Any] | None = None):
        self.generator, self.input_noise, self.input_name = generator.eval(), input_noise, input_name
        self.precision, self.tile, self.overlap, self.info = precision, tile, overlap, info or {}

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu", **options: Any) -> "GeneratorNoise | AwareGeneratorNoise":
        """Load a generator file (or training checkpoint) written by `train_pngan`, or by
        `train_pngan_aware`: that one comes back as an AwareGeneratorNoise, which needs a level."""
        generator, info = load_generator(path, device)
        if is_aware(info):
            return AwareGeneratorNoise(generator, info["condition"], info={"file": str(path), "sha256": file_digest(path), "arch": info.get("arch")}, **options)
        spec = info["input"]
        return cls(generator, build_input_noise(spec), spec["noise"], info={"file": str(path), "sha256": file_digest(path), "arch": info.get("arch"), "input": spec}, **options)

    @torch.no_grad()
    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        y_s = self.input_noise.sample(clean, generator)
        with autocast(clean.device, self.precision):
            return apply_tiled(self.generator, y_s, self.tile, self.overlap).float()

    def params(self) -> dict[str, Any]:
        return dict(self.info)


class AwareGeneratorNoise(NoiseModel):
    """A noise-aware generator as a noise model: y = x + s * G([z, x, s]) / rms, s the level map
    of the level it is set to: a trained camera setting (`for_group`), any level (`for_level`),
    or one estimated from noisy images without their clean ones (`for_reference`). A level
    beyond the trained range by more than `margin` (x / margin ... x * margin) is refused."""

    name = "pngan_aware"

    def __init__(self, generator: nn.Module, condition: LevelCondition, level: NoiseLevel | None = None, margin: float | None = 2.0,
                 precision: str = "fp32", tile: int = 512, overlap: int = 32, info: dict[str, Any] | None = None):
        if margin is not None and not margin >= 1:
            raise ParamsError(f"margin must be >= 1 (or None: any level), got {margin!r}")
        self.generator, self.condition, self.level, self.margin = generator.eval(), condition, level, margin
        self.precision, self.tile, self.overlap, self.info = precision, tile, overlap, info or {}

    def _at(self, level: NoiseLevel) -> "AwareGeneratorNoise":
        model = copy.copy(self)
        model.level = level
        return model

    def for_group(self, key: str) -> "AwareGeneratorNoise":
        """At the level of a camera setting it was trained on (e.g. 'GP ISO 800', 'phone_iso3200')."""
        return self._at(self.condition.level_of(key))

    def for_camera(self, camera: str, iso: float | None = None) -> "AwareGeneratorNoise":
        """At the level of a camera (or simulated profile) and ISO: a trained setting, or, for a
        generator with an ISO law, a trained camera at any ISO within the trained range."""
        return self._at(self.condition.level_at(camera, iso))

    def for_meta(self, meta: dict[str, Any]) -> "AwareGeneratorNoise":
        """At the level of a pair's camera setting (`LevelCondition.level_for`), else at the
        level fitted on every training pair (as `heteroscedastic@camera` falls back to its all-pairs fit)."""
        return self._at(self.condition.level_for(meta))

    def for_level(self, level: NoiseLevel, what: str = "level") -> "AwareGeneratorNoise":
        return self._at(self.condition.check_level(level, self.margin, what))

    def for_reference(self, noisy: Any, what: str = "reference") -> "AwareGeneratorNoise":
        """At the level estimated blindly from noisy images of the target camera (`estimate_level`
        with the file's calibration): best another image of the same camera and ISO, not the noisy
        version of the very image to be noised (docs/METHOD.md §8.2)."""
        return self._at(self.condition.check_level(self.condition.estimate(noisy), self.margin, what, DataError))

    @torch.no_grad()
    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.level is None:
            raise ParamsError(f"a noise-aware generator needs a level: for_group(camera setting: {self.condition.describe_groups()}), for_level(...) or for_reference(noisy images)")
        s = self.level.map(clean).to(clean)
        z = randn_like(clean, generator)
        with autocast(clean.device, self.precision):
            u = apply_tiled(self.generator, generator_input(z, clean, s, self.condition.input_bounds), self.tile, self.overlap).float()
        return add_noise(clean, s, u, self.condition.hold_level)

    def params(self) -> dict[str, Any]:
        return {**self.info, "level": None if self.level is None else self.level.to_dict(), "hold_level": self.condition.hold_level}


@torch.no_grad()
def generate_noisy(
    generator: nn.Module,
    noise: NoiseModel,
    clean: torch.Tensor,
    seed: int = 0,
    tile: int = 512,
    overlap: int = 32,
    precision: str = "fp32",
    name: str = "",
    sample: int = 0,
) -> torch.Tensor:
    """Fake noisy version of `clean` (1, 3, H, W) in [0, 1]: synthetic input y_s from `noise`
    drawn with a generator seeded by (seed, name, sample), G applied tile-wise, clamped and
    rounded to 8 bit. The image's name, not its place in the folder, keys the draw, so a file
    gets the same noise whatever else is in its folder."""
    device = next(generator.parameters()).device
    clean = clean.to(device)
    y_s = noise.sample(clean, keyed_generator(seed, stable_seed(name), sample, device=device))
    with autocast(device, precision):
        fake = apply_tiled(generator, y_s, tile, overlap)
    return quantize(fake.float())


# ---- writing a folder ---------------------------------------------------------------------------
# Safe by default: an output never is, contains or lies inside the input; it appears whole or not
# at all; --overwrite replaces only the <stem>.png files this command writes.


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image read under the kit's policy (`pngan.images.read_image`), so every
    input that would be refused is refused before any work is done."""
    height, width = read_image(path).shape[:2]
    return width, height


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` (existing or not) is `folder` or lies inside it, links resolved. samefile
    also catches what resolve() misses (bind mounts, case-insensitive file systems)."""
    folder, path = folder.resolve(), path.resolve()
    return any(p == folder or (p.exists() and folder.exists() and os.path.samefile(p, folder)) for p in (path, *path.parents))


def _refuse_overlap(output_dir: Path, input_dir: Path) -> None:
    # Noisy images inside the clean folder would be read back as clean ones (or replace them).
    if _inside(output_dir, input_dir):
        raise OutputError(f"{output_dir}: output folder is (or lies inside, links resolved) the input folder {input_dir}; choose a folder outside it")
    if _inside(input_dir, output_dir):
        raise OutputError(f"{output_dir}: output folder contains the input folder {input_dir}; choose a folder outside it")


def _prepare_output(output_dir: Path, files: list[Path], samples: int | None, overwrite: bool) -> None:
    """Refuse, before any work, an output that the `files` (relative paths) cannot be written
    into without touching what is already there."""
    if output_dir.is_symlink() and not output_dir.exists():
        raise OutputError(f"{output_dir}: is a link to a missing folder ({os.readlink(output_dir)}); create that folder or choose another output")
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir}: exists and is not a folder; choose a folder")
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if not overwrite:
        raise OutputError(f"{output_dir}: output folder is not empty; choose another folder or pass --overwrite (it replaces only the images this command writes)")
    for path in (output_dir / f for f in files):
        if path.is_dir() or (path.parent.exists() and not path.parent.is_dir()):
            raise OutputError(f"{path}: a folder or file is in the way of the image to write; move it away or choose another output")
    # `evaluate` scores the numbered folders as draws, ignoring images beside them: no mixing runs
    draws = {str(i) for i in range(1, (samples or 0) + 1)}
    stale = sorted(p.name + "/" * p.is_dir() for p in output_dir.iterdir() if (p.is_dir() and p.name.isdigit() and p.name not in draws) or (samples and is_image_file(p)))
    if stale:
        raise OutputError(f"{output_dir}: holds {', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''} from another run, which `evaluate` would mix with this one; remove them or choose another output")


@contextlib.contextmanager
def _staging(output_dir: Path) -> Iterator[Path]:
    """A hidden folder to write into, removed on exit whatever happens (a failed run leaves
    nothing that blocks the rerun). It sits beside the output, on the same file system, so
    that publishing is renames; inside an existing output where that is a mount point or its
    parent is not writable (`--output .` in a home folder)."""
    real = output_dir.resolve()
    real.parent.mkdir(parents=True, exist_ok=True)
    inside = real.is_dir() and (os.stat(real).st_dev != os.stat(real.parent).st_dev or not os.access(real.parent, os.W_OK))
    home = real if inside else real.parent
    stage = Path(tempfile.mkdtemp(dir=home, prefix=f".{real.name}.partial-"))
    umask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(umask)
    os.chmod(stage, 0o777 & ~umask)  # mkdtemp's 0700 would become the output folder's mode
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, output_dir: Path, files: list[Path]) -> None:
    """Move the finished files into place: a new output in one rename, an existing one file by file."""
    real = output_dir.resolve()
    if not real.exists():
        os.rename(stage, real)
        return
    for name in files:
        (real / name).parent.mkdir(exist_ok=True)
        os.replace(stage / name, real / name)


Draw = Callable[[Pair, torch.Tensor, int], torch.Tensor]  # (pair, clean (1, 3, H, W), draw index) -> fake


def generate_folder(
    checkpoint: str | Path,
    input_dir: str | Path,
    output_dir: str | Path,
    seed: int = 0,
    samples: int | None = None,
    setting: int | None = None,
    device: str = "auto",
    tile: int = 512,
    overlap: int = 32,
    precision: str = "fp32",
    overwrite: bool = False,
    reference: str | Path | None = None,
    camera: str | None = None,
    iso: int | None = None,
    level: str | float | Sequence[float] | None = None,
    level_margin: float = 2.0,
) -> list[Path]:
    """Write one 8-bit PNG per clean image of `input_dir` into `output_dir`, same stem; with
    `samples` L, L independent draws into output_dir/1 ... output_dir/L. Returns the files.

    A noise-aware generator needs exactly one level source: `reference`, a folder of noisy images
    from the target camera (a clean image takes the level estimated from the reference of its
    name, the others the level of all references pooled); `camera` (with `iso` for real data: a
    camera setting it was trained on, or with an ISO law any ISO of a trained camera within the
    trained ISOs); or `level`, a noise std in 8-bit levels (one number, or
    R, G, B). A level more than `level_margin` times outside the trained range is refused.
    Everything that can be checked cheaply is checked before any image is written."""
    if samples is not None and samples < 1:
        raise ValueError(f"--samples {samples}: must be >= 1 (draws per image; leave it out for one image per input)")
    sources = _level_sources(reference, camera, iso, level)
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    inputs = [input_dir] if reference is None else [input_dir, Path(reference)]  # the references are read too
    pairs = read_clean_folder(input_dir)  # lists the folder, refuses a.png beside a.jpg
    draws = [Path()] if samples is None else [Path(str(i + 1)) for i in range(samples)]
    for draw in draws:  # a numbered folder may itself be a link into an input
        for folder in inputs:
            _refuse_overlap(output_dir / draw, folder)
    files = [draw / f"{pair.name}.png" for pair in pairs for draw in draws]
    _prepare_output(output_dir, files, samples, overwrite)
    for pair in pairs:
        _image_size(pair.clean.path)
    generator, info = load_generator(checkpoint, select_device(device))
    if is_aware(info):
        model_of = _aware_models(checkpoint, AwareGeneratorNoise(generator, info["condition"], margin=level_margin, precision=precision, tile=tile, overlap=overlap),
                                 pairs, sources, setting, reference, camera, iso, level)
        on = next(generator.parameters()).device
        draw_fake: Draw = lambda pair, clean, index: model_of(pair).sample(clean.to(on), keyed_generator(seed, stable_seed(pair.name), index, device=on))  # noqa: E731
    else:
        if sources:
            raise ParamsError(f"{checkpoint}: {' '.join(sources)}: a paper PNGAN generator takes no noise level (it was trained without one); these options are for noise-aware generators (train-pngan-aware)")
        spec = spec_for_setting(info["input"], setting)
        if spec != info["input"]:
            print(f"note: the generator was trained on {info['input']}, now fed {spec}", flush=True)
        noise = build_input_noise(spec)
        draw_fake = lambda pair, clean, index: generate_noisy(generator, noise, clean, seed, tile, overlap, precision, pair.name, index)  # noqa: E731
    from tqdm.auto import tqdm

    with _staging(output_dir) as stage:
        for pair in tqdm(pairs, desc="generate", dynamic_ncols=True):
            clean = to_tensor(pair.clean.load()).unsqueeze(0)
            for index, draw in enumerate(draws):
                write_png(stage / draw / f"{pair.name}.png", to_image(draw_fake(pair, clean, index)[0]))
        _publish(stage, output_dir, files)
    return [output_dir / f for f in files]


def _level_sources(reference: Any, camera: Any, iso: Any, level: Any) -> list[str]:
    """The level options given, refusing combinations that never work (checked before any work)."""
    if iso is not None and camera is None:
        raise ParamsError(f"--iso {iso} needs --camera NAME (a real camera setting is 'NAME ISO N')")
    given = [option for option, value in (("--reference", reference), ("--camera", camera), ("--level", level)) if value is not None]
    if len(given) > 1:
        raise ParamsError(f"{' and '.join(given)}: give one level source: --reference NOISY_DIR, --camera NAME [--iso N] or --level SIGMA")
    if level is not None:
        parse_level(level)
    return given


def parse_level(value: str | float | Sequence[float]) -> NoiseLevel:
    """A constant level from a std in 8-bit levels: one number ('12') or R, G, B ('10,12,15')."""
    parts = value.split(",") if isinstance(value, str) else [value] if isinstance(value, (int, float)) else list(value)
    try:
        stds = [float(p) for p in parts]
    except (TypeError, ValueError):
        stds = []
    if len(stds) not in (1, 3) or not all(math.isfinite(x) and x >= 0 for x in stds):
        raise ParamsError(f"--level {value}: expected a noise std >= 0 in 8-bit levels, one number (e.g. 12) or three R,G,B (e.g. 10,12,15)")
    stds = stds * 3 if len(stds) == 1 else stds
    return NoiseLevel.from_table((0.0, 1.0), [[x / 255, x / 255] for x in stds])


def _aware_models(checkpoint: str | Path, model: AwareGeneratorNoise, pairs: list[Pair], sources: list[str], setting: int | None,
                  reference: str | Path | None, camera: str | None, iso: int | None, level: Any) -> Callable[[Pair], AwareGeneratorNoise]:
    """The noise model of each clean image, at the level its source gives; every refusal here
    comes before the first image is written."""
    condition = model.condition
    if setting is not None:
        raise ParamsError(f"{checkpoint}: --setting picks a paper generator's synthetic input; a noise-aware generator has none")
    if not sources:
        low, high = condition.range
        raise ParamsError(
            f"{checkpoint}: a noise-aware generator needs a noise level: --reference NOISY_DIR, --camera NAME [--iso N] "
            f"(trained camera settings: {condition.describe_groups()}) or --level SIGMA (in 8-bit levels; trained {low:.1f}-{high:.1f})"
        )
    try:
        if camera is not None:
            fixed = model.for_camera(camera, iso)
        elif level is not None:
            fixed = model.for_level(parse_level(level), what=f"--level {level}")
        else:
            return _reference_models(model, Path(reference), pairs)
    except (ParamsError, DataError) as err:
        raise type(err)(f"{checkpoint}: {err}") from None
    return lambda pair: fixed


def _reference_models(model: AwareGeneratorNoise, folder: Path, pairs: list[Pair]) -> Callable[[Pair], AwareGeneratorNoise]:
    """A clean image takes the level estimated from the noisy reference of its name; the others
    the level estimated from every reference pooled (and the output says which did which)."""
    references = _by_stem(folder)
    if not references:
        raise DataError(f"{folder}: --reference folder holds no images; give noisy images from the camera to imitate")
    own = {pair.name: model.for_reference([read_image(references[pair.name])], f"reference {references[pair.name]}") for pair in pairs if pair.name in references}
    rest = [pair.name for pair in pairs if pair.name not in own]
    pooled = model.for_reference([read_image(p) for p in references.values()], f"references in {folder} pooled") if rest else None
    if own:
        print(f"level: {len(own)} image(s) take the level estimated from the reference of the same name in {folder}", flush=True)
    if rest:
        shown = ", ".join(rest[:3]) + (", ..." if len(rest) > 3 else "")
        print(f"level: {len(rest)} image(s) ({shown}) have no reference of their name in {folder}: they take the level estimated from all {len(references)} reference(s) pooled", flush=True)
    return lambda pair: own[pair.name] if pair.name in own else pooled


# ---- scoring ------------------------------------------------------------------------------------

# AKLD's 7x7 window reflect-pads 3 pixels, which needs more than 3 per side (metrics.local_variance).
MIN_SIDE = 4


def _by_stem(folder: Path) -> dict[str, Path]:
    """Image files by stem; `a.png` beside `a.bmp` is refused, naming both (which one to score?)."""
    return _unique_stems(list_images(folder), folder)


def _draw_folders(fake_dir: Path) -> list[Path]:
    """The fake folder itself, or its numbered sample folders 1 ... L (not both: images beside
    the numbered folders would be silently left out)."""
    numbered = sorted((p for p in fake_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)) if fake_dir.is_dir() else []
    loose = [p.name for p in fake_dir.iterdir() if is_image_file(p)] if numbered else []
    if loose:
        raise DataError(f"{fake_dir}: holds both images ({', '.join(sorted(loose)[:3])}{', ...' if len(loose) > 3 else ''}) and numbered draw folders; keep one layout")
    return numbered or [fake_dir]


def _refuse_unpaired(clean_dir: Path, clean_files: dict[str, Path], side: str, folder: Path, files: dict[str, Path]) -> None:
    extra = sorted(files.keys() - clean_files.keys())
    if extra:
        shown = ", ".join(files[n].name for n in extra[:3]) + (", ..." if len(extra) > 3 else "")
        raise DataError(f"{folder}: {len(extra)} {side} image(s) without a clean partner in {clean_dir} ({shown}); remove them or add their clean images")
    missing = sorted(clean_files.keys() - files.keys())
    if missing:
        raise DataError(f"{clean_files[missing[0]]}: no {side} image named '{missing[0]}' in {folder} ({len(missing)} missing in all)")


def _check_sizes(clean: Path, others: list[Path]) -> None:
    """From the headers, before any scoring: every image of a set the clean one's size, >= MIN_SIDE."""
    width, height = _image_size(clean)
    if min(width, height) < MIN_SIDE:
        raise DataError(f"{clean}: image is {width}x{height} pixels; AKLD needs at least {MIN_SIDE}x{MIN_SIDE} (7x7 window); remove it or use larger images")
    for path in others:
        size = _image_size(path)
        if size != (width, height):
            raise DataError(f"{path}: size {size[0]}x{size[1]} differs from its clean image {clean} ({width}x{height})")


def check_report_path(path: Path, option: str = "--json") -> None:
    """Refuse, before the work, a report file that cannot be written (a missing folder is created)."""
    if path.is_dir():
        raise OutputError(f"{path}: {option} names a folder; give a file name such as {path / 'scores.json'}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise OutputError(f"{path}: {option} names an image file, which the JSON would replace; give a .json file name")
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise OutputError(f"{path}: {option} goes through {existing}, which is a file, not a folder")


def score_folders(clean_dir: str | Path, real_dir: str | Path, fake_dir: str | Path) -> dict[str, Any]:
    """AKLD and KLD of the fake noise against the real noise, and both noisy images' PSNR, per
    image (paired by file stem) and their means. A fake folder with numbered subfolders
    (`generate --samples L`) counts as L draws per image. Every image must have its partners."""
    from pngan.metrics import akld, kld_histogram, psnr

    clean_dir, real_dir = Path(clean_dir), Path(real_dir)
    clean_files, real_files = _by_stem(clean_dir), _by_stem(real_dir)
    folders = _draw_folders(Path(fake_dir))
    draws = [_by_stem(folder) for folder in folders]
    _refuse_unpaired(clean_dir, clean_files, "real", real_dir, real_files)
    for d, (folder, files) in enumerate(zip(folders, draws), 1):
        _refuse_unpaired(clean_dir, clean_files, f"fake ({d})", folder, files)
    for name in sorted(clean_files):
        _check_sizes(clean_files[name], [real_files[name]] + [d[name] for d in draws])
    rows = []
    for name in sorted(clean_files):
        clean = to_tensor(read_image(clean_files[name])).unsqueeze(0)
        real = to_tensor(read_image(real_files[name])).unsqueeze(0)
        fakes = [to_tensor(read_image(d[name])).unsqueeze(0) for d in draws]
        fake = torch.stack(fakes)
        rows.append(
            {
                "name": name,
                "akld": float(akld(clean, real, fake)[0]),
                "kld": float(kld_histogram(clean, real, fake)[0]),
                "psnr_real": float(psnr(real, clean)[0]),
                "psnr_fake": float(np.mean([float(psnr(f, clean)[0]) for f in fakes])),
            }
        )
    keys = ("akld", "kld", "psnr_real", "psnr_fake")
    return {"images": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}, "n_images": len(rows), "n_draws": len(draws)}
