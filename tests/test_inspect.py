"""Stage inspect_noise: every figure and table written, the real row equal to direct statistics,
the oracle beside real noise and AWGN far from it; the figures and merging it adds to plots/stats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pngan import plots, stats
from pngan.data.prepared import load_split
from pngan.images import DataError
from pngan.stages import inspect_noise, noise_models, prepare, smoke

FIGURES = {"noise_crops", "overview", "histograms", "histograms_log", "histograms_by_group", "noise_level",
           "noise_level_by_group", "autocorrelation_maps", "autocorrelation_profiles", "power_spectra",
           "channel_correlations", "variance_maps", "kl_maps"}
SOURCES = ["real", "oracle", "awgn"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The smoke data set and stage noise_models' draws of AWGN sigma 50/255 and the oracle."""
    out = tmp_path_factory.mktemp("noise_models")
    data = out / "prepared"
    prepare.run(out_dir=str(data), **smoke.settings("prepare"))
    noise_models.run(data_dir=str(data), models=["awgn"], model_options={"awgn": {"sigma": 50 / 255}}, samples=1,
                     out_dir=str(out / "draws"), metrics_file=str(out / "noise_models.json"))
    return {"data_dir": str(data), "noise_models_dir": str(out / "draws"), "noise_models_metrics": str(out / "noise_models.json")}


@pytest.fixture(scope="module")
def result(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect")
    res = inspect_noise.run(**inputs, nlf_min_count=100, figures_dir=str(out / "figures"), stats_dir=str(out / "stats"))
    res["out"] = out
    return res


def test_writes_every_figure(result):
    written = {p.stem: p for p in (result["out"] / "figures").glob("*.png")}
    assert set(written) == FIGURES == set(result["figures"])
    for name, path in written.items():
        with Image.open(path) as im:
            assert im.format == "PNG" and min(im.size) >= 150, name
            assert np.asarray(im.convert("L")).std() > 5, f"{name}: a blank image"


def test_writes_the_tables_with_their_columns(result):
    folder = result["out"] / "stats"
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary.columns) == ["model", "n_images", "std_255", "std_255_p10", "std_255_p90",
                                     *stats.SUMMARY_COLUMNS[1:]]
    assert list(summary["model"]) == SOURCES  # real first, then the oracle, then as listed
    by_group = pd.read_csv(folder / "summary_by_group.csv")
    assert list(by_group.columns[:3]) == ["model", "profile", "n_images"]
    per_image = pd.read_csv(folder / "per_image.csv")
    assert list(per_image.columns) == ["model", "image", "profile", *stats.SUMMARY_COLUMNS]
    test_images = len(load_split(result["data_dir"], "test"))
    assert len(per_image) == 3 * test_images and (summary["n_images"] == test_images).all()
    for name, x in (("histogram", "noise_level"), ("noise_level", "intensity"), ("autocorrelation_h", "lag"),
                    ("autocorrelation_v", "lag"), ("power_spectrum", "frequency")):
        table = pd.read_csv(folder / f"{name}.csv")
        assert list(table.columns) == [x, *SOURCES], name
    assert len(pd.read_csv(folder / "autocorrelation_h.csv")) == 6  # lags 0..5
    assert len(pd.read_csv(folder / "histogram.csv")) == 257  # one bin per 8-bit level on +-128
    nlf = pd.read_csv(folder / "noise_level_by_group.csv")
    assert list(nlf.columns) == ["model", "group", "intensity", "std_255", "count"]
    assert set(nlf["model"]) == set(SOURCES) and nlf["std_255"].notna().all() and (nlf["count"] >= 100).all()
    assert "| model | profile | images |" in (folder / "summary.md").read_text()


def test_real_row_equals_statistics_of_the_real_test_pairs(result):
    direct = stats.summary_table({"real": load_split(result["data_dir"], "test")})
    row = result["summary"].set_index("model").loc["real"]
    for column in ("n_images", "std_255", "std_255_p10", "std_255_p90", *stats.SUMMARY_COLUMNS):
        assert row[column] == pytest.approx(direct[column].iloc[0], rel=1e-12), column


def test_oracle_is_close_to_real_noise_and_awgn_far(result):
    table = result["summary"].set_index("model")
    real, oracle, awgn = table.loc["real"], table.loc["oracle"], table.loc["awgn"]
    assert 10 < real["std_255"] < 25
    assert oracle["std_255"] == pytest.approx(real["std_255"], rel=0.15)
    assert oracle["lag1_h"] == pytest.approx(real["lag1_h"], abs=0.1) and real["lag1_h"] > 0.2
    assert oracle["corr_rb"] == pytest.approx(real["corr_rb"], abs=0.15)
    assert 40 < awgn["std_255"] < 52  # sigma 50, a little less where 0 and 255 clip it
    assert abs(awgn["lag1_h"]) < 0.05 and abs(awgn["corr_rb"]) < 0.05


def test_pooled_statistics_are_the_merge_of_the_groups(result):
    pooled, groups = result["stats"]["real"], result["stats_by_group"]["real"]
    assert len(groups) > 1 and pooled.images == sum(g.images for g in groups.values())
    np.testing.assert_array_equal(pooled.histogram().counts, sum(g.histogram().counts for g in groups.values()))


def test_merged_noise_stats_equal_adding_every_image_to_one():
    rng = np.random.default_rng(0)
    clean = rng.integers(20, 236, (4, 40, 48, 3)).astype(np.uint8)
    sigma = 4 + 4 * np.arange(4)[:, None, None, None]  # four noise levels
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
    whole, parts = stats.NoiseStats(max_lag=3, nlf_bins=8), [stats.NoiseStats(max_lag=3, nlf_bins=8) for _ in range(2)]
    for i in range(4):
        whole.add(clean[i], noisy[i], {"i": i})
        parts[i // 2].add(clean[i], noisy[i], {"i": i})
    merged = stats.NoiseStats.merged(parts)
    pd.testing.assert_frame_equal(merged.moments(), whole.moments(), rtol=1e-10)
    pd.testing.assert_frame_equal(merged.per_image(), whole.per_image())
    np.testing.assert_allclose(merged.noise_level().std, whole.noise_level().std, rtol=1e-10)
    np.testing.assert_allclose(merged.autocorrelation().values, whole.autocorrelation().values, rtol=1e-12)
    np.testing.assert_allclose(merged.power_spectrum().power, whole.power_spectrum().power, rtol=1e-12)
    with pytest.raises(ValueError, match="different settings"):
        stats.NoiseStats.merged([whole, stats.NoiseStats(max_lag=4)])


def test_overview_puts_each_image_beside_the_reference(result):
    fig = result["figures"]["overview"]
    level = fig.axes[0]
    assert [t.get_text() for t in level.get_yticklabels()] == SOURCES
    ratios = {i: c.get_offsets()[:, 0] for i, c in enumerate(level.collections)}  # one dot cloud per model
    np.testing.assert_allclose(ratios[0], 1.0)  # real against itself
    per_image = result["per_image"].set_index(["model", "image"])["std_255"]
    np.testing.assert_allclose(np.sort(ratios[2]), np.sort((per_image["awgn"] / per_image["real"]).to_numpy()))
    with pytest.raises(ValueError, match=r"per_image lacks column\(s\) \['corr_rb'\]"):
        plots.statistics_overview(result["per_image"].drop(columns="corr_rb"))


def test_group_figures_have_one_panel_per_group(result):
    groups = inspect_noise.by_group(result["stats_by_group"])
    stds = [float(g["real"].per_image()["std_255"].median()) for g in groups.values()]
    assert stds == sorted(stds), "groups run from the quietest real noise up"
    fig = result["figures"]["noise_level_by_group"]
    assert [ax.get_title().split(" (")[0] for ax in fig.axes] == list(groups)
    group, models = next(iter(groups.items()))
    _, y = fig.axes[0].lines[2].get_data()  # awgn
    assert np.isfinite(y).sum() >= 10
    np.testing.assert_allclose(y, models["awgn"].noise_level(pool_channels=True).std[0] * 255.0)


def test_crops_wrap_into_rows_pixel_exact(tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 256, (40, 40, 3)).astype(np.uint8)
    views = {f"m{i}": rng.integers(0, 256, (40, 40, 3)).astype(np.uint8) for i in range(4)}
    fig = plots.crops(clean, views, box=(4, 4, 32, 32), scale=2, columns=3, amplify=2.0)
    assert len(fig.axes) == 10  # 5 panels in rows of 3, each with its noise row
    png = np.asarray(Image.open(plots.save(fig, tmp_path / "c.png")).convert("RGB"))
    ax = next(a for a in fig.axes if a.get_title() == "m3")  # second row of panels, second column
    box = ax.get_window_extent()
    top, left = png.shape[0] - int(round(box.y1)), int(round(box.x0))
    assert top > png.shape[0] // 2
    np.testing.assert_array_equal(png[top:top + 64:2, left:left + 64:2], views["m3"][4:36, 4:36])
    with pytest.raises(ValueError, match="gain_from 'real' is not one of the noisy versions"):
        plots.crops(clean, views, amplify="auto", gain_from="real")


def test_bad_inputs_name_the_problem(inputs, tmp_path):
    with pytest.raises(DataError, match=r"no folder for model\(s\) \['pngan'\]"):
        inspect_noise.run(**inputs, models=["pngan"])
    with pytest.raises(ValueError, match="'real' names the real noise"):
        inspect_noise.run(**inputs, models=["real"])
    with pytest.raises(ValueError, match=r"group_by \['camera'\]: \d+ of \d+ test images lack that metadata"):
        inspect_noise.run(**inputs, group_by="camera")
    with pytest.raises(ValueError, match="data_dir is given but noise_models_dir is not"):
        inspect_noise.run(data_dir=inputs["data_dir"])


def test_finds_the_pipeline_outputs_from_the_root_or_notebooks(tmp_path):
    assert inspect_noise.find_pipeline_outputs(tmp_path) == {}
    (tmp_path / "artifacts" / "prepare").mkdir(parents=True)
    (tmp_path / "artifacts" / "prepare" / "manifest.csv").write_text("patch\n")
    (tmp_path / "artifacts" / "noise_models").mkdir()
    (tmp_path / "notebooks").mkdir()
    artifacts = tmp_path / "artifacts"
    expected = {"data_dir": str(artifacts / "prepare"), "noise_models_dir": str(artifacts / "noise_models")}
    assert inspect_noise.find_pipeline_outputs(tmp_path) == expected
    assert inspect_noise.find_pipeline_outputs(tmp_path / "notebooks") == expected


def test_example_image_has_the_median_real_noise_level(result):
    real = result["per_image"].query("model == 'real'").set_index("image")["std_255"]
    assert real[result["example_image"]] == pytest.approx(real.sort_values().iloc[len(real) // 2])
