"""Figures: the right panels, lines and legends for three models; PNGs written; crops pixel-exact."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage

from pngan import plots, stats
from pngan.noise import label
from pngan.plots.common import LABEL_WIDTH
from pngan.plots.results import akld_by_model, pgap_psnr
from pngan.data.pairs import read_paired_folder

BLUR = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


def _quantised(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def three_model_images(clean: np.ndarray, real: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """real noisy, AWGN of the real noise's std, and blurred white noise rescaled to that std."""
    rng = np.random.default_rng(seed)
    x = clean.astype(np.float64) / 255.0
    sigma = ((real.astype(np.float64) - clean) / 255.0).std()
    blurred = np.stack([ndimage.convolve(rng.normal(size=x.shape[:2]), BLUR, mode="reflect") for _ in range(3)], -1)
    return {
        "real": real,
        "AWGN": _quantised(x + rng.normal(0, sigma, x.shape)),
        "blurred": _quantised(x + blurred * sigma / blurred.std()),
    }


def three_model_stats(pairs: Iterable[tuple[np.ndarray, np.ndarray]], **kwargs: Any) -> dict[str, stats.NoiseStats]:
    """NoiseStats of the three models over (clean, real noisy) pairs, image by image."""
    out = {name: stats.NoiseStats(**kwargs) for name in ("real", "AWGN", "blurred")}
    for i, (clean, real) in enumerate(pairs):
        for name, noisy in three_model_images(clean, real, seed=i).items():
            out[name].add(clean, noisy)
    return out


def _synthetic_pairs(count: int = 2, size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """A colour gradient and a 'real' noise that is blurred and grows with intensity."""
    rng = np.random.default_rng(1)
    ramp = np.linspace(0.05, 0.95, size)
    clean = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), np.full((size, size), 0.5)], -1)
    pairs = []
    for _ in range(count):
        noise = np.stack([ndimage.convolve(rng.normal(size=(size, size)), BLUR, mode="wrap") for _ in range(3)], -1)
        pairs.append((_quantised(clean), _quantised(clean + noise * 0.05 * (0.3 + clean))))
    return pairs


@pytest.fixture(scope="module")
def results() -> dict[str, stats.NoiseStats]:
    return three_model_stats(_synthetic_pairs(), nlf_bins=8, nlf_min_count=50, max_lag=4, psd_bins=12)


def _legend_texts(fig: Figure) -> list[str]:
    legends = fig.legends or [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1, "each figure has exactly one legend"
    return [t.get_text() for t in legends[0].get_texts()]


def _saved(fig: Figure, tmp_path, name: str) -> np.ndarray:
    path = plots.save(fig, tmp_path / f"{name}.png")
    assert path.stat().st_size > 5000
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_histograms(results, tmp_path):
    fig = plots.histograms(results)
    assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes] == ["R channel", "G channel", "B channel"]
    assert all(len(ax.patches) == 3 for ax in fig.axes)  # one stairs line per model
    labels = _legend_texts(fig)
    assert [t.split(" (")[0] for t in labels] == ["real", "AWGN", "blurred"] and all("σ" in t for t in labels)
    assert fig.axes[0].get_xlabel() == "noise y − x (8-bit levels)"
    assert fig.axes[0].get_ylabel() == "probability per 8-bit level"
    png = _saved(fig, tmp_path, "hist")
    assert png.shape[:2] == (360, 1100)  # 11 x 3.6 inches at 100 dpi
    log = plots.histograms(results, log=True)
    assert all(ax.get_yscale() == "log" for ax in log.axes)


def test_noise_level(results, tmp_path):
    fig = plots.noise_level(results)
    assert len(fig.axes) == 3 and all(len(ax.lines) == 3 for ax in fig.axes)
    assert _legend_texts(fig) == ["real", "AWGN", "blurred"]
    assert fig.axes[0].get_ylabel() == "noise std (8-bit levels)"
    # the plotted 'real' line is the statistic itself, in 8-bit units
    x, y = fig.axes[0].lines[0].get_data()
    nlf = results["real"].noise_level()
    np.testing.assert_allclose(y, nlf.std[0] * 255)
    np.testing.assert_allclose(x, nlf.intensity[0] * 255)
    _saved(fig, tmp_path, "nlf")


def test_autocorrelation_maps_share_one_symmetric_scale(results, tmp_path):
    fig = plots.autocorrelation_maps(results)
    assert len(fig.axes) == 4  # three maps and the colour bar
    images = [ax.images[0] for ax in fig.axes[:3]]
    assert len({im.get_clim() for im in images}) == 1
    lo, hi = images[0].get_clim()
    assert lo == -hi and hi >= 0.05
    assert np.ma.getmaskarray(images[0].get_array())[4, 4]  # R(0, 0) = 1 greyed out (NaN, masked)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["real", "AWGN", "blurred"]
    _saved(fig, tmp_path, "acf_maps")
    with pytest.raises(ValueError, match="channel must be 0, 1, 2"):
        plots.autocorrelation_maps(results, channel=3)


def test_autocorrelation_profiles(results, tmp_path):
    fig = plots.autocorrelation_profiles(results, channel=1)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 4 for ax in fig.axes)  # 3 models + the zero line
    assert _legend_texts(fig) == ["real", "AWGN", "blurred"]
    lags, values = fig.axes[1].lines[2].get_data()  # 'blurred', vertical profile, G channel
    np.testing.assert_array_equal(lags, np.arange(5))
    np.testing.assert_allclose(values, results["blurred"].autocorrelation().values[1, 4:, 4])
    _saved(fig, tmp_path, "acf_profiles")


def test_power_spectra(results, tmp_path):
    fig = plots.power_spectra(results)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 4 and ax.get_yscale() == "log"
    assert _legend_texts(fig) == ["real", "AWGN", "blurred", "white noise (flat at 1)"]
    _saved(fig, tmp_path, "psd")


def test_channel_correlations(results, tmp_path):
    fig = plots.channel_correlations(results)
    assert len(fig.axes) == 4
    for ax, name in zip(fig.axes[:3], results):
        assert ax.images[0].get_clim() == (-1, 1) and len(ax.texts) == 9
        assert ax.texts[1].get_text() == f"{results[name].channel_correlation()[0, 1]:.2f}"
    _saved(fig, tmp_path, "corr")


def test_variance_and_kl_maps(tmp_path):
    rng = np.random.default_rng(2)
    var = {name: rng.uniform(0, 1e-3 * (i + 1), (40, 50, 3)) for i, name in enumerate(("real", "AWGN", "blurred"))}
    fig = plots.variance_maps(var)
    assert len(fig.axes) == 4 and len({ax.images[0].get_clim() for ax in fig.axes[:3]}) == 1
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), np.sqrt(var["blurred"].mean(-1)) * 255)
    _saved(fig, tmp_path, "var")
    kl = {"AWGN": rng.uniform(0, 0.2, (40, 50, 3)), "blurred": rng.uniform(0, 0.4, (40, 50))}
    fig = plots.kl_maps(kl, clean=np.full((40, 50, 3), 90, np.uint8))
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "clean\n"  # clean, 2 maps, colour bar
    assert fig.axes[2].get_title() == f"blurred\nmean KL {kl['blurred'].mean():.3f}"
    _saved(fig, tmp_path, "kl")
    with pytest.raises(ValueError, match="AWGN: expected an H x W or H x W x 3 map"):
        plots.kl_maps({"AWGN": np.zeros((4, 5, 2))})
    with pytest.raises(ValueError, match=r"blurred: map of \(4, 6\) differs from the first map's \(4, 5\)"):
        plots.kl_maps({"AWGN": np.zeros((4, 5)), "blurred": np.zeros((4, 6))})


@pytest.mark.parametrize("scale", [1, 3])
def test_crops_are_pixel_exact(tmp_path, scale):
    clean, real = _synthetic_pairs(1, size=80)[0]
    images = three_model_images(clean, real)
    box = (10, 20, 40, 32)
    fig = plots.crops(clean, images, box=box, scale=scale, amplify=4)
    assert len(fig.axes) == 8  # clean + 3 models, image row and noise row
    png = _saved(fig, tmp_path, f"crops{scale}")
    fig.canvas.draw()
    for ax, expected in ((fig.axes[2], images["AWGN"]), (fig.axes[0], clean)):
        bbox = ax.get_window_extent()
        x0, y0 = int(round(bbox.x0)), png.shape[0] - int(round(bbox.y1))
        assert (int(round(bbox.width)), int(round(bbox.height))) == (32 * scale, 40 * scale)
        crop = expected[10:50, 20:52]
        np.testing.assert_array_equal(png[y0:y0 + 40 * scale, x0:x0 + 32 * scale],
                                      np.repeat(np.repeat(crop, scale, 0), scale, 1))
    noise_ax = fig.axes[5]  # row 2, 'real' column: 127.5 + 4 (y - x)
    bbox = noise_ax.get_window_extent()
    x0, y0 = int(round(bbox.x0)), png.shape[0] - int(round(bbox.y1))
    amplified = np.clip(np.rint(127.5 + 4 * (real[10:50, 20:52].astype(float) - clean[10:50, 20:52])), 0, 255)
    np.testing.assert_array_equal(png[y0:y0 + 40 * scale:scale, x0:x0 + 32 * scale:scale], amplified)


@pytest.mark.parametrize("size", [64, 128])
def test_crop_titles_stay_within_their_column(size):
    """Long model names (heteroscedastic@reference) break before their '@', and every title
    shares one size at which it fits its crop's width: none runs into its neighbour's."""
    clean, real = _synthetic_pairs(1, size=size)[0]
    names = ["heteroscedastic@camera", "heteroscedastic@reference", "pngan_aware@reference", "real"]
    fig = plots.crops(clean, {n: real for n in names}, amplify=2)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    titles = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert "heteroscedastic\n@reference" in titles and "real" in titles
    assert len({ax.title.get_fontsize() for ax in titles.values()}) == 1
    for text, ax in titles.items():
        title, panel = ax.title.get_window_extent(renderer), ax.get_window_extent()
        assert title.width <= panel.width + 6, text  # 6: within the 8-pixel gap between columns
        assert title.y0 >= panel.y1, text  # above its own crop
        assert title.y1 <= fig.bbox.height, text


def test_crops_auto_gain_puts_the_noisiest_model_at_3_std_96_levels():
    clean, real = _synthetic_pairs(1, size=48)[0]
    images = three_model_images(clean, real)
    fig = plots.crops(clean, images, amplify="auto")
    loudest = max(((y.astype(float) - clean)).std() for y in images.values())
    assert fig.axes[4].texts[0].get_text() == f"noise × {round(32 / loudest, 1):g}\n(mid grey = 0)"
    with pytest.raises(ValueError, match="amplify must be a positive gain, 'auto' or None, got 'loud'"):
        plots.crops(clean, images, amplify="loud")


def test_crops_reject_bad_boxes_and_scales():
    clean, real = _synthetic_pairs(1, size=32)[0]
    with pytest.raises(ValueError, match=r"box \(20, 0, 16, 16\) \(top, left, height, width\) does not fit the 32x32 image"):
        plots.crops(clean, {"real": real}, box=(20, 0, 16, 16))
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        plots.crops(clean, {"real": real}, scale=1.5)


def test_figures_are_not_left_open_in_pyplot(results):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plots.power_spectra(results)
    assert plt.get_fignums() == before  # a notebook shows the returned figure once; scripts do not leak
    assert fig.dpi == plots.DPI


def test_a_legend_below_the_panels_wraps_to_the_figure_width():
    from pngan.plots.common import constrained_figure, legend_below

    fig = constrained_figure(4, 3)
    ax = fig.add_subplot()
    for i in range(6):
        ax.plot([0, 1], [i, 0], label=f"a rather long model name {i}")
    legend_below(fig, ax, columns=6)
    fig.draw_without_rendering()
    legend = fig.legends[-1]
    assert len(fig.legends) == 1 and 1 <= legend._ncols < 6
    extent = legend.get_window_extent()
    assert extent.x0 >= 0 and extent.x1 <= fig.bbox.width  # nothing cut off at either side
    fig = constrained_figure(12, 3)  # wide enough: one row, as asked
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="a")
    ax.plot([0, 1], [1, 0], label="b")
    legend_below(fig, ax, columns=6)
    assert fig.legends[-1]._ncols == 2


def test_save_writes_png_and_closes_pyplot_figures(tmp_path):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = plots.save(fig, tmp_path / "sub" / "line.png")
    assert not plt.fignum_exists(fig.number)
    with Image.open(path) as im:
        assert im.size == (200, 100)
    with pytest.raises(ValueError, match="line.jpg: figures are saved as PNG"):
        plots.save(fig, tmp_path / "line.jpg")
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.power_spectra({})


@pytest.mark.shared_data
def test_real_sidd_noise_against_awgn_and_blurred(real_pairs_dev, tmp_path):
    """On real SIDD noise the figures show what METHOD.md says: correlated, unlike AWGN."""
    pairs = [p.load()[::-1] for p in read_paired_folder(real_pairs_dev / "SIDD_small")[:3]]
    res = three_model_stats(pairs)
    fig = plots.autocorrelation_profiles(res)
    lag1 = {line.get_label(): line.get_ydata()[1] for line in fig.axes[0].lines if not line.get_label().startswith("_")}
    assert lag1["real"] > 0.3 and abs(lag1["AWGN"]) < 0.05 and lag1["blurred"] > 0.5
    _saved(fig, tmp_path, "sidd_profiles")


def test_linear_histograms_zoom_on_the_central_mass():
    """A narrow and a wide model: the x range is set by the wide one's central 99.5 %."""
    rng = np.random.default_rng(3)
    clean = np.full((100, 100, 3), 128, np.uint8)
    narrow, wide = stats.NoiseStats(max_lag=2), stats.NoiseStats(max_lag=2)
    narrow.add(clean, (128 + rng.integers(-2, 3, clean.shape)).astype(np.uint8))  # uniform on -2..2
    wide.add(clean, (128 + rng.integers(-10, 11, clean.shape)).astype(np.uint8))  # uniform on -10..10
    fig = plots.histograms({"narrow": narrow, "wide": wide})
    assert fig.axes[0].get_xlim() == (-10.5, 10.5)


def test_training_curves_draw_the_logs_the_loop_wrote(tmp_path):
    import pandas as pd

    from pngan.train.loop import TRAIN_LOG, VAL_LOG, read_logs

    with pytest.raises(FileNotFoundError, match="has the run started"):
        read_logs(tmp_path)
    pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5], "never": [None, None]}).to_csv(tmp_path / TRAIN_LOG, index=False)
    train, val = read_logs(tmp_path)  # no validation log yet
    assert list(train.columns) == ["step", "loss"] and val.empty
    pd.DataFrame({"step": [2], "psnr": [30.0], "psnr_input": [25.0]}).to_csv(tmp_path / VAL_LOG, index=False)
    fig = plots.denoiser_curves(*read_logs(tmp_path))
    assert [ax.get_title() for ax in fig.axes] == ["Training loss", "Validation PSNR"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 2]


@pytest.mark.parametrize("figure", ["akld", "pgap"])
def test_result_bars_keep_long_model_names_title_and_axis_label_inside_the_figure(figure):
    long_name = "heteroscedastic@level"  # the longest label the kit prints (about 70 characters)
    assert len(label(long_name)) > 60
    if figure == "akld":
        fig = akld_by_model(pd.DataFrame({"model": ["awgn", label(long_name)], "akld": [0.5, 0.1]}))
    else:
        fig = pgap_psnr({"models": {"real": {"psnr": 30.0}, "awgn": {"psnr": 29.0}, long_name: {"psnr": 29.5}}})
    fig.canvas.draw()
    box = fig.bbox
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    for text in (ax.title, ax.xaxis.label, *ax.get_yticklabels()):
        extent = text.get_window_extent(renderer)
        assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, f"{text.get_text()!r} runs off the figure"
    assert all(len(line) <= LABEL_WIDTH for t in ax.get_yticklabels() for line in t.get_text().split("\n"))
