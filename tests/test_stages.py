"""Pipeline stages at smoke size: what each writes, and the contracts between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from pngan import plots
from pngan.data.prepared import load_split
from pngan.errors import DataError
from pngan.stages import finetune, noise_models, pgap, prepare, smoke, tables
from pngan.stages.tables import MissingMetric


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare.run(out_dir=str(out / "p"), **smoke.settings("prepare"))
    return out / "p"


def test_prepare_splits_by_scene_and_is_reproducible(data_dir, tmp_path):
    manifest = pd.read_csv(data_dir / "manifest.csv")
    scenes = manifest.groupby("scene")["split"].nunique()
    assert (scenes == 1).all(), f"scenes in two splits: {list(scenes[scenes > 1].index)}"
    assert set(manifest["split"]) == {"train", "val", "test"}
    again = tmp_path / "again"
    prepare.run(out_dir=str(again), **smoke.settings("prepare"))
    for rel in manifest["noisy"].head(3):
        split = manifest.loc[manifest["noisy"] == rel, "split"].iloc[0]
        assert (data_dir / split / rel).read_bytes() == (again / split / rel).read_bytes()


def test_noise_models_fits_kind_at_key_per_group(data_dir, tmp_path):
    summary = noise_models.run(data_dir=str(data_dir), models=["awgn_fitted", "awgn_fitted@camera"], oracle=False,
                           samples=1, out_dir=str(tmp_path))
    per_group = summary["models"]["awgn_fitted@camera"]["params"]
    test_profiles = {p.meta["profile"] for p in load_split(data_dir, "test")}
    assert set(per_group) == test_profiles
    sigmas = [v["sigma"] for v in per_group.values()]
    assert len(set(sigmas)) == len(sigmas) > 1, "each camera profile has its own fitted sigma"


def test_pgap_is_the_difference_of_two_psnrs_on_one_test_set(data_dir, tmp_path):
    report = pgap.run(data_dir=str(data_dir), models=["awgn"], oracle=False, out_dir=str(tmp_path), **smoke.settings("runtime", "pgap"))
    real, awgn = report["models"]["real"], report["models"]["awgn"]
    assert awgn["pgap"] == pytest.approx(real["psnr"] - awgn["psnr"], abs=1e-12)
    assert report["test_images"] == len(load_split(data_dir, "test"))


def test_finetune_at_ratio_zero_never_touches_the_generator(data_dir, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a generator was loaded at fake_ratio 0")

    for name in ("load_generators", "noise_images", "generator_file"):
        monkeypatch.setattr(finetune, name, boom)
    missing = {g: str(tmp_path / f"no_{g}.pt") for g in ("pngan", "pngan_aware")}
    report = finetune.run(data_dir=str(data_dir), out_dir=str(tmp_path), generator_checkpoints=missing,
                          **{**smoke.settings("runtime", "finetune"), "fake_ratio": 0.0})
    assert list(report["runs"]) == ["real"], "the control runs once per start, as generator 'real'"
    result = report["runs"]["real"]["ridnet"]
    name = next(iter(result["after"]))
    assert result["gain_psnr"][name] == pytest.approx(result["after"][name]["psnr"] - result["before"][name]["psnr"])


def _drawn_by_pgap(data_dir, fake_root, generators):
    """fake_root/<generator>/noisy/<name>.png for every training image, as stage pgap leaves them
    (here: the real noisy images, shifted per generator so that the runs differ)."""
    from pngan.images import write_png

    for shift, generator in enumerate(generators):
        for pair in load_split(data_dir, "train"):
            write_png(fake_root / generator / "noisy" / f"{pair.name}.png", pair.noisy.load() // (shift + 1))


def test_finetune_runs_every_generator_with_every_start(data_dir, tmp_path):
    generators = ("pngan", "pngan_aware")
    _drawn_by_pgap(data_dir, tmp_path / "fake", generators)
    metrics, per_image = tmp_path / "m" / "ratio_0.5.json", tmp_path / "per_image.csv"
    report = finetune.run(data_dir=str(data_dir), out_dir=str(tmp_path / "out"), generators=generators, fake_root=str(tmp_path / "fake"),
                          metrics_file=str(metrics), per_image_file=str(per_image),
                          **{**smoke.settings("runtime", "finetune"), "starts": {"a": None, "b": None}})
    assert set(report) == {"fake_ratio", "steps", "runs", "test_sets", "run"}
    assert list(report["runs"]) == list(generators)
    for runs in report["runs"].values():
        assert list(runs) == ["a", "b"]
        for result in runs.values():
            assert set(result) == {"arch", "start", "before", "after", "gain_psnr", "train_seconds"}
    assert report["runs"]["pngan"]["a"]["before"] == report["runs"]["pngan_aware"]["a"]["before"], "one start, scored once"
    assert report["runs"]["pngan"]["a"]["after"] != report["runs"]["pngan_aware"]["a"]["after"], "each generator's own pairs"
    written = json.loads(metrics.read_text())
    assert written["runs"]["pngan"]["a"].keys() == {"arch", "start", "before", "after", "gain_psnr"}, "seconds go to run_info"
    assert json.loads(metrics.with_suffix(".run.json").read_text())["runs"]["pngan_aware"]["b"]["train_seconds"] >= 0
    rows = pd.read_csv(per_image)
    assert set(rows.groupby(["generator", "denoiser", "when"]).size().index) == {
        (g, s, w) for g in generators for s in ("a", "b") for w in ("before", "after")}


def test_finetune_draws_each_generator_with_its_kind_and_refuses_a_mixed_source(data_dir, tmp_path, generator_file):
    """Drawn here: the paper generator as is, the noise-aware one at each image's camera setting,
    with the seeds pgap draws with (stable_seed(seed, generator))."""
    import torch
    from test_aware import _aware_file

    from pngan.errors import ParamsError
    from pngan.generate import GeneratorNoise
    from pngan.images import read_image, to_image, to_tensor
    from pngan.runtime import keyed_generator, stable_seed

    files = {"pngan": str(generator_file), "pngan_aware": str(_aware_file(tmp_path / "aware.pt"))}
    cpu = torch.device("cpu")
    fakes = finetune.fake_training_pairs(data_dir, tuple(files), None, files, (), tmp_path, 0, cpu)
    train = load_split(data_dir, "train")
    assert {g: [p.name for p in pairs] for g, pairs in fakes.items()} == {g: [p.name for p in train] for g in files}
    aware, pair = GeneratorNoise.from_file(files["pngan_aware"], cpu), train[0]
    expected = aware.for_meta(pair.meta).sample(to_tensor(pair.clean.load())[None], keyed_generator(stable_seed(0, "pngan_aware"), pair.name))
    assert (read_image(tmp_path / "fake" / "pngan_aware" / "noisy" / f"{pair.name}.png") == to_image(expected[0])).all()
    with pytest.raises(ParamsError, match="either fake_root"):
        finetune.fake_training_pairs(data_dir, ("pngan",), str(tmp_path / "fake"), {"pngan": files["pngan"]}, (), tmp_path, 0, cpu)
    with pytest.raises(ParamsError, match=r"\['mine'\] need a file in generator_checkpoints"):
        finetune.fake_training_pairs(data_dir, ("mine",), None, {}, (), tmp_path, 0, cpu)


def _metrics(tmp_path, models):
    path = tmp_path / "noise_models.json"
    path.write_text(json.dumps({"models": models, "images": 3, "samples": 2, "dataset": ["x"]}))
    return path


ROW = {"akld": 0.5, "kld": 0.1, "fake_std": 10.0, "real_std": 11.0, "fake_psnr": 28.0, "real_psnr": 27.5, "leak": 0.3, "real_leak": 0.1}


def test_noise_table_orders_rows_and_shows_the_input_score(tmp_path):
    path = _metrics(tmp_path, {"awgn": {**ROW, "akld": 2.0}, "pngan": {**ROW, "input": "awgn"}, "oracle": ROW})
    table = tables.noise_model_table(path)
    assert list(table["key"]) == ["oracle", "pngan", "awgn"]
    md = tables.noise_model_markdown(table, 3, 2, "x")
    assert "| PNGAN (this kit) | 0.500 |" in md and "AWGN σ = 50/255 (the paper's Setting 1 input): 2.000" in md
    assert "| 0.30 (0.10) |" in md  # content leak (real)
    assert "another* source image" not in md  # the reference protocol only under a table with reference rows


def test_noise_table_puts_each_reference_row_beside_its_camera_row_and_states_the_protocol(tmp_path):
    keys = ["awgn", "heteroscedastic@reference", "pngan", "heteroscedastic@camera", "pngan_aware@reference", "oracle",
            "awgn@reference", "pngan_aware"]
    table = tables.noise_model_table(_metrics(tmp_path, {k: ROW for k in keys}))
    assert list(table["key"]) == ["oracle", "pngan_aware", "pngan_aware@reference", "pngan", "heteroscedastic@camera",
                                  "heteroscedastic@reference", "awgn@reference", "awgn"]
    md = tables.noise_model_markdown(table, 3, 2, "x")
    assert "of *another* source image of the same camera setting" in md and "never used" in md


def test_tables_fail_loudly_on_a_missing_metric(tmp_path):
    path = _metrics(tmp_path, {"awgn": {k: v for k, v in ROW.items() if k != "kld"}})
    with pytest.raises(MissingMetric, match=r"noise_models.json \[models.awgn\]: metric 'kld' is missing"):
        tables.noise_model_table(path)
    path = _metrics(tmp_path, {"pngan": {**ROW, "input": "awgn"}})
    with pytest.raises(MissingMetric, match="metric 'awgn.akld' is missing"):
        tables.noise_model_table(path)


def _finetune_run(sets, after, generators=("pngan",), ratio=0.5, gain=0.5):
    scores = {"psnr": 30.0, "ssim_rgb": 0.8, "ssim_y": 0.85, "psnr_noisy": 25.0}
    result = {"arch": "ridnet", "before": {n: scores for n in sets}, "after": after,
              "gain_psnr": {n: gain for n in after if "psnr" in after[n]}}
    return {"fake_ratio": ratio, "steps": 10, "test_sets": sets, "runs": {g: {"ridnet": result} for g in generators}}


def test_denoising_table_marks_unselected_sets_and_rejects_missing_selected_ones():
    scores = {"psnr": 31.0, "ssim_rgb": 0.8, "ssim_y": 0.86, "psnr_noisy": 25.0}
    runs = {0.5: _finetune_run({"simulated": "prepared", "PolyU": "polyu"}, {"simulated": scores, "PolyU": scores})}
    md = tables.denoising_markdown(runs, 0.5)
    row = next(line for line in md.splitlines() if line.startswith("| RIDNet*, kit"))
    # columns: SIDD DND PolyU Nam simulated
    assert row.split("|")[1:-1][1:] == [" not run² ", " not run² ", " 31.00/0.860 ", " not run² ", " 31.00/0.860 "]
    broken = {0.5: _finetune_run({"simulated": "prepared", "PolyU": "polyu"}, {"simulated": scores})}
    with pytest.raises(MissingMetric, match=r"\[pngan.ridnet.after\]: metric 'PolyU' is missing"):
        tables.denoising_markdown(broken, 0.5)
    with pytest.raises(MissingMetric, match="headline_fake_ratio 0.25 is not in the finetune sweep"):
        tables.denoising_markdown(runs, 0.25)


def test_denoising_table_shows_each_generator_once_after_one_shared_start():
    from pngan.noise import label

    scores = {"psnr": 31.0, "ssim_rgb": 0.8, "ssim_y": 0.86, "psnr_noisy": 25.0}
    md = tables.denoising_markdown({0.5: _finetune_run({"simulated": "prepared"}, {"simulated": scores}, ("pngan", "pngan_aware"))}, 0.5)
    kit = [line.split("|")[1].strip() for line in md.splitlines() if "RIDNet" in line and "(paper)" not in line]
    assert kit == ["RIDNet, kit, trained on real", f"RIDNet*, kit, fine-tuned (fake ratio 0.5) — {label('pngan')}",
                   f"RIDNet*, kit, fine-tuned (fake ratio 0.5) — {label('pngan_aware')}"]


def test_ablation_shares_the_real_only_control_between_generators(tmp_path):
    import matplotlib.pyplot as plt

    sets, scores = {"simulated": "prepared"}, {"simulated": {"psnr": 31.0, "ssim_rgb": 0.8, "ssim_y": 0.86, "psnr_noisy": 25.0}}
    both = ("pngan", "pngan_aware")
    runs = {0.0: _finetune_run(sets, scores, ("real",), 0.0, 0.1), 0.5: _finetune_run(sets, scores, both, 0.5, 0.3),
            1.0: _finetune_run(sets, scores, both, 1.0, 0.2)}
    table = tables.ablation_table(runs)
    assert list(zip(table["fake_ratio"], table["generator"])) == [(0.0, "real"), (0.5, "pngan"), (0.5, "pngan_aware"),
                                                                  (1.0, "pngan"), (1.0, "pngan_aware")]
    assert list(table.columns) == ["fake_ratio", "generator", "denoiser", "test_set", "psnr_before", "psnr_after", "gain_psnr"]
    md = tables.ablation_markdown(table).splitlines()
    assert md[2] == "| 0 | real pairs only (control) | ridnet | simulated | 30.00 | 31.00 | +0.10 |"
    fig = plots.finetune_ablation(table)
    lines = fig.axes[0].get_lines()[:-1]  # the last one: the zero line
    assert [(list(line.get_xdata()), list(line.get_ydata())) for line in lines] == [([0.0, 0.5, 1.0], [0.1, 0.3, 0.2])] * 2
    plt.close(fig)


def test_old_format_finetune_metrics_are_refused_by_name(tmp_path):
    old = {"fake_ratio": 0.5, "steps": 10, "test_sets": {"simulated": "prepared"}, "denoisers": {"ridnet": {}}}
    (tmp_path / "ratio_0.5.json").write_text(json.dumps(old))
    with pytest.raises(DataError, match=r"ratio_0.5.json: finetune metrics of the old format .* rerun the finetune stage"):
        tables.finetune_runs(tmp_path, [0.5])


def test_readme_sync_replaces_marked_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.md").write_text("| a |\n|---|\n| 1 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- BEGIN t.md -->\nold\n<!-- END t.md -->\nend\n")
    assert tables.sync_readme(readme) == 1
    assert readme.read_text() == "intro\n<!-- BEGIN t.md -->\n| a |\n|---|\n| 1 |\n<!-- END t.md -->\nend\n"


def test_stable_seed_does_not_depend_on_the_process():
    code = "from pngan.runtime import stable_seed; print(stable_seed(0, 'a'), stable_seed(1, 'a'), stable_seed(0, 1))"
    outputs = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    first, second, third = outputs.pop().split()
    assert len({first, second, third}) == 3


def test_stable_seed_keeps_the_values_every_committed_result_was_drawn_with():
    """Named parts: CRC32 of 'a:b'; integer parts: NumPy's SeedSequence, 63 bits. Changing either
    would change every split, crop and noise draw of the pipeline."""
    import zlib

    from pngan.runtime import keyed_generator, stable_seed

    assert stable_seed(0, "a") == zlib.crc32(b"0:a") == 3291919157
    assert stable_seed("img") == zlib.crc32(b"img")
    assert stable_seed(0, 1) == 5836529245451711556
    assert stable_seed(0, 1, 2, 3) == 3704038207228929986
    assert keyed_generator(0, 1).initial_seed() == stable_seed(0, 1)


def test_finetune_starts_from_released_weights_by_architecture(tmp_path):
    """A start given as {arch, arch_kwargs, weights} loads a plain (DataParallel-wrapped) state dict."""
    import torch

    from pngan.denoise import load_denoiser
    from pngan.models import build

    kwargs = {"depth": 3, "width": 4}
    net = build("dncnn", **kwargs)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "released.pth")
    loaded, arch, got_kwargs, weights = load_denoiser(
        {"arch": "dncnn", "arch_kwargs": kwargs, "weights": str(tmp_path / "released.pth")}, torch.device("cpu"))
    assert (arch, got_kwargs, weights) == ("dncnn", kwargs, str(tmp_path / "released.pth"))
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(ValueError, match=r"a released-weights start is \{arch, arch_kwargs, weights\}"):
        load_denoiser({"arch": "dncnn", "weight": "x"}, torch.device("cpu"))
