"""`python -m pngan generate / evaluate / train-*`: round trips, tiling, folder protection, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_GENERATOR_INPUT
from trainer_standins import TinyDenoiser, TinyGenerator

from pngan.cli import main
from pngan.generate import load_generator
from pngan.models.tiling import apply_tiled
from pngan.images import read_image, write_png
from pngan.models import build
from pngan.models.files import save_network_file

# the `generator_file` and `clean_dir` fixtures live in conftest.py (test_generate_safety uses them too)
INPUT = TINY_GENERATOR_INPUT


def _images(folder) -> dict[str, np.ndarray]:
    return {p.name: read_image(p) for p in sorted(folder.glob("*.png"))}


def test_generate_writes_one_png_per_clean_image_reproducibly(tmp_path, generator_file, clean_dir):
    args = ["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--device", "cpu", "--tile", "16"]
    assert main([*args, "--output", str(tmp_path / "out1")]) == 0
    assert main([*args, "--output", str(tmp_path / "out2")]) == 0
    assert main([*args, "--output", str(tmp_path / "out3"), "--seed", "1"]) == 0
    first, second, other = _images(tmp_path / "out1"), _images(tmp_path / "out2"), _images(tmp_path / "out3")
    clean = _images(clean_dir)
    assert sorted(first) == ["a.png", "b.png"]
    for name in first:
        assert first[name].shape == clean[name].shape and first[name].dtype == np.uint8
        assert np.array_equal(first[name], second[name]) and not np.array_equal(first[name], other[name])
    # the generator's output equals G(y_s) for the recorded synthetic input, untiled
    from pngan.generate import generate_noisy
    from pngan.images import to_image, to_tensor
    from pngan.noise.synthetic import build_input_noise

    net, info = load_generator(generator_file)
    fake = generate_noisy(net, build_input_noise(info["input"]), to_tensor(clean["a.png"])[None], seed=0, tile=0, name="a")
    assert np.array_equal(to_image(fake[0]), first["a.png"])


def test_generate_samples_go_to_numbered_folders(tmp_path, generator_file, clean_dir):
    out = tmp_path / "draws"
    assert main(["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--output", str(out), "--samples", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["1", "2"]
    one, two = _images(out / "1"), _images(out / "2")
    assert sorted(one) == sorted(two) == ["a.png", "b.png"]
    assert not np.array_equal(one["a.png"], two["a.png"])


def test_output_folder_is_protected(tmp_path, generator_file, clean_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--output", str(out)]
    assert main(args) == 2
    assert f"{out}: output folder is not empty; choose another folder or pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "keep.txt"]


def test_tiled_generation_equals_untiled_when_the_overlap_covers_the_receptive_field():
    torch.manual_seed(0)
    net = TinyGenerator(4).eval()  # two 3x3 convs: 2 pixels of context
    x = torch.rand(1, 3, 37, 29)
    whole = apply_tiled(net, x, tile=0)
    assert torch.allclose(apply_tiled(net, x, tile=8, overlap=2), whole, atol=1e-6)
    assert torch.allclose(apply_tiled(net, x, tile=10, overlap=5), whole, atol=1e-6)
    seams = (apply_tiled(net, x, tile=8, overlap=0) - whole).abs()
    assert seams.max() > 1e-3  # without context the tile borders differ (so the test can fail)


def test_missing_and_incompatible_checkpoints_are_clear_errors(tmp_path, clean_dir, capsys):
    def run(checkpoint) -> str:
        out = tmp_path / f"out_{len(list(tmp_path.iterdir()))}"
        assert main(["generate", "--checkpoint", str(checkpoint), "--input", str(clean_dir), "--output", str(out)]) == 2
        return capsys.readouterr().err

    assert f"{tmp_path / 'nope.pt'}: generator file not found" in run(tmp_path / "nope.pt")
    denoiser = save_network_file(tmp_path / "denoiser.pt", "denoiser", "trainer_standins:TinyDenoiser", {"width": 4}, TinyDenoiser(4))
    assert "is a 'pngan-denoiser' file, expected a PNGAN generator ('pngan-generator')" in run(denoiser)
    wrong = save_network_file(tmp_path / "wrong.pt", "generator", "dncnn", {"depth": 3, "width": 6}, build("dncnn", depth=3, width=4), input=INPUT)
    err = run(wrong)
    assert "weights do not fit DnCNN: shape mismatches" in err and len(err) < 600  # a few keys, not all
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert f"{junk}: not a PyTorch file, or damaged" in run(junk)
    plain = tmp_path / "plain.pt"
    torch.save(TinyGenerator(4).state_dict(), plain)
    assert "not a PNGAN generator file (no 'format' entry" in run(plain)


def test_generate_from_a_training_checkpoint(tmp_path, clean_dir):
    from trainer_standins import tiny_gan_config, tiny_pairs

    from pngan.train import train_pngan

    cfg = tiny_gan_config(steps=1, generator="dncnn", generator_kwargs={"depth": 2, "width": 4}, input_noise="awgn")
    train_pngan(cfg, tiny_pairs(), None, TinyDenoiser(4), tmp_path / "run")
    from_ckpt, info = load_generator(tmp_path / "run" / "checkpoint.pt")
    final, _ = load_generator(tmp_path / "run" / "generator.pt")
    assert info["input"]["noise"] == "awgn" and info["summary"]["step"] == 1
    assert all(torch.equal(a, b) for a, b in zip(from_ckpt.state_dict().values(), final.state_dict().values()))


def test_evaluate_round_trip(tmp_path, generator_file, clean_dir, capsys):
    pytest.importorskip("pngan.metrics")
    from pngan.metrics import akld, psnr

    real = tmp_path / "real"
    assert main(["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--output", str(real), "--seed", "7"]) == 0
    fake = tmp_path / "fake"
    assert main(["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--output", str(fake)]) == 0
    scores_file = tmp_path / "scores.json"
    assert main(["evaluate", "--clean", str(clean_dir), "--real", str(real), "--fake", str(fake), "--json", str(scores_file)]) == 0
    printed = capsys.readouterr().out
    scores = json.loads(scores_file.read_text())
    assert [r["name"] for r in scores["images"]] == ["a", "b"] and scores["n_draws"] == 1
    from pngan.images import to_tensor

    c, r, f = (to_tensor(read_image(d / "a.png"))[None] for d in (clean_dir, real, fake))
    assert scores["images"][0]["akld"] == pytest.approx(float(akld(c, r, f)[0]), rel=1e-6)
    assert scores["images"][0]["psnr_real"] == pytest.approx(float(psnr(r, c)[0]), rel=1e-9)
    assert "mean (2 images, 1 draw(s))" in printed
    # numbered draw folders count as L draws per image
    draws = tmp_path / "draws"
    assert main(["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--output", str(draws), "--samples", "2"]) == 0
    assert main(["evaluate", "--clean", str(clean_dir), "--real", str(real), "--fake", str(draws), "--json", str(scores_file)]) == 0
    assert json.loads(scores_file.read_text())["n_draws"] == 2 and "mean (2 images, 2 draw(s))" in capsys.readouterr().out
    # the real folder scored against itself: AKLD exactly 0
    assert main(["evaluate", "--clean", str(clean_dir), "--real", str(real), "--fake", str(real), "--json", str(scores_file)]) == 0
    assert json.loads(scores_file.read_text())["mean"]["akld"] == 0.0


def test_evaluate_names_a_missing_fake_image(tmp_path, clean_dir, capsys):
    pytest.importorskip("pngan.metrics")
    real, fake = tmp_path / "real", tmp_path / "fake"
    for name in ("a", "b"):
        write_png(real / f"{name}.png", read_image(clean_dir / f"{name}.png"))
    write_png(fake / "a.png", read_image(clean_dir / "a.png"))
    assert main(["evaluate", "--clean", str(clean_dir), "--real", str(real), "--fake", str(fake)]) == 2
    assert f"{clean_dir / 'b.png'}: no fake (1) image named 'b'" in capsys.readouterr().err


def test_train_commands_read_params_and_refuse_unknown_keys(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(2):
            clean = rng.integers(20, 220, size=(20, 20, 3), dtype=np.uint8)
            write_png(tmp_path / "data" / split / "clean" / f"{i}.png", clean)
            write_png(tmp_path / "data" / split / "noisy" / f"{i}.png", np.clip(clean.astype(int) + 9, 0, 255).astype(np.uint8))
    section = {"arch": "trainer_standins:TinyDenoiser", "arch_kwargs": {"width": 4}, "crop": 16, "batch": 2, "steps": 2, "val_every": 0, "device": "cpu"}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"denoiser_real": section}))
    base = ["train-denoiser", "--params", str(params), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    assert main([*base, "--set", "stepz=3"]) == 2
    assert f"{params} [denoiser_real]: unknown parameter 'stepz' (did you mean 'steps'?)" in capsys.readouterr().err
    assert main([*base, "--set", "fake_ratio=0.5"]) == 2
    assert "fake_ratio 0.5 needs --fake DIR" in capsys.readouterr().err
    from pngan.data.patches import training_sets

    train, val = training_sets(tmp_path / "data", 16, 0)
    assert len(val) == 2 and val.crop is None
    assert len(train) == 2 and train.cached == 0 and train[5]["noisy"].shape == (3, 16, 16)  # read per sample, not held
    pytest.importorskip("pngan.metrics")  # the run validates on DIR/val at the end
    assert main([*base, "--set", "steps=1", "--summary", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["steps"] == 1
    assert (tmp_path / "run" / "denoiser.pt").exists()


def test_another_setting_changes_only_the_synthetic_input():
    from pngan.noise.synthetic import spec_for_setting

    trained = {"setting": 1, "noise": "awgn", "noise_kwargs": {"sigma": 0.1}}
    assert spec_for_setting(trained, None) == trained == spec_for_setting(trained, 1)
    assert spec_for_setting(trained, 2) == {"setting": 2, "noise": "camera_random", "noise_kwargs": {}}
    camera = {"setting": 2, "noise": "camera_random", "noise_kwargs": {}}
    assert spec_for_setting(camera, 1) == {"setting": 1, "noise": "awgn", "noise_kwargs": {"sigma": 50 / 255}}
