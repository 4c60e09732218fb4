"""Command line: `python -m pngan <command>` (or the `pngan` script).

    generate        noise a folder of clean images with a trained generator (a noise-aware one at
                    a camera setting, a level, or a reference folder's level)
    evaluate        AKLD / KLD / PSNR of a fake noisy folder against the real noisy one
    train-pngan     adversarial training (torchrun-ready: torchrun --nproc_per_node N -m pngan train-pngan ...)
    train-pngan-aware  the same for the noise-aware generator (pngan.train.aware)
    train-denoiser  denoiser training: the frozen D_d, the PGap denoiser, fine-tuning on real + fake

Training settings come from params.yaml: its `runtime` section, then a stage's section
(`train_pngan`, `train_pngan_aware`, `denoiser_real` by default), whose keys win, then `--set key=value` overrides
(YAML-typed), as the pipeline merges them. Data folders use the kit's prepared layout:
DIR/train/{noisy,clean}/*.png and DIR/val/{noisy,clean}/*.png.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Sequence

from pngan import params as P
from pngan.errors import report_user_errors


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    params = P.load(args.params)
    sections = ["runtime", args.section] if "runtime" in params else [args.section]
    values: dict[str, Any] = {}
    for name in sections:
        values.update(P.section(params, name, args.params))
    values.update(P.parse_overrides(args.set))
    return values, f"{args.params} [{', '.join(sections)}]"


def _finish(summary: dict[str, Any], path: Path | None) -> None:
    from pngan.train.distributed import launched_by_torchrun

    if launched_by_torchrun() and int(os.environ.get("RANK", "0")) != 0:
        return
    text = json.dumps(summary, indent=2)
    if path is not None:
        from pngan.runtime import atomic_write_text

        atomic_write_text(path, text + "\n")
    print(text)


def cmd_train_pngan(args: argparse.Namespace) -> int:
    return _train_generator(args, aware=False)


def cmd_train_pngan_aware(args: argparse.Namespace) -> int:
    return _train_generator(args, aware=True)


def _train_generator(args: argparse.Namespace, aware: bool) -> int:
    """Either generator, on a prepared data set, aligned through the given D_d."""
    from pngan.data.patches import training_sets
    from pngan.models.files import load_network_file
    from pngan.train import AwareGanConfig, GanConfig, train_pngan, train_pngan_aware

    config, train_with = (AwareGanConfig, train_pngan_aware) if aware else (GanConfig, train_pngan)
    values, where = _settings(args)
    cfg = config.from_dict(values, where)
    denoiser, _ = load_network_file(args.denoiser, "denoiser")
    train, val = training_sets(args.data, cfg.crop, cfg.seed)
    _finish(train_with(cfg, train, val, denoiser, args.out), args.summary)
    return 0


def cmd_train_denoiser(args: argparse.Namespace) -> int:
    from pngan.data.patches import PairDataset, training_sets
    from pngan.data.sampling import MixedPairDataset
    from pngan.train.config import DenoiserConfig
    from pngan.train.denoiser import train_denoiser

    values, where = _settings(args)
    if args.init is not None:
        values["init"] = str(args.init)
    cfg = DenoiserConfig.from_dict(values, where)
    if cfg.fake_ratio > 0 and args.fake is None:
        raise P.ParamsError(f"{where}: fake_ratio {cfg.fake_ratio} needs --fake DIR (generated pairs: DIR/noisy, DIR/clean)")
    real, val = training_sets(args.data, cfg.crop, cfg.seed)
    fake = PairDataset.from_folder(args.fake, cfg.crop, True, cfg.seed) if cfg.fake_ratio > 0 else None
    train = real if cfg.fake_ratio == 0 else MixedPairDataset(real if cfg.fake_ratio < 1 else None, fake, cfg.fake_ratio, cfg.seed)
    _finish(train_denoiser(cfg, train, val, args.out), args.summary)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from pngan.generate import generate_folder

    written = generate_folder(
        args.checkpoint,
        args.input,
        args.output,
        seed=args.seed,
        samples=args.samples,
        setting=args.setting,
        device=args.device,
        tile=args.tile,
        overlap=args.overlap,
        precision=args.precision,
        overwrite=args.overwrite,
        reference=args.reference,
        camera=args.camera,
        iso=args.iso,
        level=args.level,
        level_margin=args.level_margin,
    )
    print(f"wrote {len(written)} image(s) to {args.output}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pngan.generate import check_report_path, score_folders

    if args.json is not None:
        check_report_path(args.json)  # now, not after minutes of scoring
    scores = score_folders(args.clean, args.real, args.fake)
    rows = scores["images"] + [{"name": f"mean ({scores['n_images']} images, {scores['n_draws']} draw(s))", **scores["mean"]}]
    width = max(len(r["name"]) for r in rows)
    print(f"{'image':<{width}} {'AKLD':>8} {'KLD':>8} {'PSNR real':>10} {'PSNR fake':>10}")
    for row in rows:
        print(f"{row['name']:<{width}} {row['akld']:>8.4f} {row['kld']:>8.4f} {row['psnr_real']:>10.2f} {row['psnr_fake']:>10.2f}")
    if args.json is not None:
        from pngan.runtime import atomic_write_text

        atomic_write_text(args.json, json.dumps(scores, indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pngan", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="noise clean images with a trained generator")
    g.add_argument("--checkpoint", type=Path, required=True, help="generator.pt (or a training checkpoint.pt)")
    g.add_argument("--input", type=Path, required=True, help="folder of clean images")
    g.add_argument("--output", type=Path, required=True, help="folder for the noisy PNGs (new or empty, and outside --input)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--samples", type=int, default=None, help="L >= 1 draws per image into OUTPUT/1 ... OUTPUT/L")
    g.add_argument("--setting", type=int, choices=(1, 2), default=None, help="synthetic input (default: the one trained on)")
    g.add_argument("--device", default="auto")
    g.add_argument("--tile", type=int, default=512, help="tile size in pixels (0: whole image at once)")
    g.add_argument("--overlap", type=int, default=32, help="context pixels around each tile, cropped off")
    g.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    g.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder (replaces only the <name>.png files written)")
    a = g.add_argument_group("noise level (noise-aware generators only; give one)")
    a.add_argument("--reference", type=Path, default=None, metavar="NOISY_DIR", help="noisy images of the camera to imitate: a clean image takes the level of the reference of its name, the others that of all pooled")
    a.add_argument("--camera", default=None, metavar="NAME", help="a camera the generator was trained on (with --iso: a trained setting, or any ISO in the trained range for a generator with an ISO law) or a simulated profile")
    a.add_argument("--iso", type=int, default=None, metavar="N", help="the ISO of --camera (real data: the setting is 'NAME ISO N')")
    a.add_argument("--level", default=None, metavar="SIGMA", help="noise std in 8-bit levels (/255): one number, or R,G,B")
    a.add_argument("--level-margin", type=float, default=2.0, metavar="X", help="refuse levels beyond the trained range / X ... * X (default 2)")
    g.set_defaults(run=cmd_generate)

    e = sub.add_parser("evaluate", help="score fake noisy images against real ones")
    e.add_argument("--clean", type=Path, required=True)
    e.add_argument("--real", type=Path, required=True)
    e.add_argument("--fake", type=Path, required=True, help="fake noisy folder (or its numbered draw folders 1 ... L)")
    e.add_argument("--json", type=Path, default=None, help="also write the scores as JSON to this file (missing folders are created)")
    e.set_defaults(run=cmd_evaluate)

    trainers = (("train-pngan", "train_pngan", cmd_train_pngan), ("train-pngan-aware", "train_pngan_aware", cmd_train_pngan_aware),
                ("train-denoiser", "denoiser_real", cmd_train_denoiser))
    for name, section, runner in trainers:
        t = sub.add_parser(name, help=f"training; settings from params.yaml section '{section}'")
        t.add_argument("--params", type=Path, default=P.DEFAULT_FILE)
        t.add_argument("--section", default=section)
        t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting (YAML-typed)")
        t.add_argument("--data", type=Path, required=True, help="prepared data: DIR/train/{noisy,clean}, DIR/val/{noisy,clean}")
        t.add_argument("--out", type=Path, required=True, help="run folder: checkpoint, logs, final network")
        t.add_argument("--summary", type=Path, default=None, help="also write the run summary as JSON")
        if name.startswith("train-pngan"):
            t.add_argument("--denoiser", type=Path, required=True, help="the frozen D_d: a denoiser.pt from train-denoiser")
        else:
            t.add_argument("--fake", type=Path, default=None, help="generated pairs (noisy, clean) for fake_ratio > 0")
            t.add_argument("--init", type=Path, default=None, help="starting weights for fine-tuning (sets the 'init' setting)")
        t.set_defaults(run=runner)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return report_user_errors(lambda: args.run(args))
