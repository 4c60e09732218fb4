"""SIDD and DND submission files: official structure and round trips."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from pngan.data.readers import read_dataset
from pngan.data.submission import read_dnd_submission, read_sidd_submission, write_dnd_submission, write_sidd_submission
from pngan.images import DataError


def blocks(grid: tuple[int, int], size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"{i:04d}-{k:04d}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(grid[0]) for k in range(grid[1])}


def test_sidd_submission_layout_and_round_trip(tmp_path):
    denoised = blocks((2, 3))
    path = write_sidd_submission(tmp_path / "SubmitSrgb.mat", denoised, time_mp=1.5, optional_data={"MethodName": "PNGAN-kit"}, grid=(2, 3))
    raw = scipy.io.loadmat(path)
    cells = raw["DenoisedBlocksSrgb"]
    assert cells.dtype == object and cells.shape == (2, 3)  # a 2 x 3 MATLAB cell
    assert cells[1, 2].dtype == np.uint8 and cells[1, 2].shape == (8, 8, 3)
    np.testing.assert_array_equal(cells[1, 2], denoised["0001-0002"])
    assert raw["TimeMPSrgb"].item() == 1.5
    assert set(raw["OptionalData"].dtype.names) == {"MethodName", "Authors", "PaperTitle", "Venue", "MachineSpecs"}
    back, time_mp, optional = read_sidd_submission(path)
    assert time_mp == 1.5 and optional["MethodName"] == "PNGAN-kit"
    assert back.keys() == denoised.keys()
    for name in denoised:
        np.testing.assert_array_equal(back[name], denoised[name])


def test_sidd_submission_from_benchmark_reader(tmp_path):
    noisy = np.random.default_rng(1).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": noisy})
    pairs = read_dataset("sidd_benchmark", tmp_path)
    denoised = {p.name: 255 - p.load()[0] for p in pairs}
    back, _, _ = read_sidd_submission(write_sidd_submission(tmp_path / "out" / "SubmitSrgb.mat", denoised, 0.0, grid=(2, 3)))
    for i in range(2):
        for k in range(3):
            np.testing.assert_array_equal(back[f"{i:04d}-{k:04d}"], 255 - noisy[i, k])


def test_sidd_submission_refuses_incomplete_or_wrong_blocks(tmp_path):
    denoised = blocks((2, 3))
    del denoised["0001-0001"]
    with pytest.raises(ValueError, match=r"1 missing \(first: \['0001-0001'\]\)"):
        write_sidd_submission(tmp_path / "s.mat", denoised, 0.0, grid=(2, 3))
    denoised = blocks((2, 3))
    denoised["0000-0001"] = denoised["0000-0001"].astype(np.float32)
    with pytest.raises(ValueError, match="block 0000-0001: expected uint8 H x W x 3, got float32"):
        write_sidd_submission(tmp_path / "s.mat", denoised, 0.0, grid=(2, 3))
    with pytest.raises(ValueError, match="40 x 32|0039-0031"):
        write_sidd_submission(tmp_path / "s.mat", blocks((2, 3)), 0.0)  # the official grid needs all 1280 blocks


def test_dnd_submission_layout_and_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    crops = {f"{n:04d}_{b:02d}": rng.random((6, 5, 3)).astype(np.float32) for n in (1, 2) for b in (1, 2, 3)}
    crops["0002_03"] = (crops["0002_03"] * 255).round().astype(np.uint8)  # uint8 crops are stored in [0, 1]
    files = write_dnd_submission(tmp_path, crops, images=2, boxes=3)
    assert [f.name for f in files] == ["0001.mat", "0002.mat"]
    raw = scipy.io.loadmat(files[1])
    assert raw["Idenoised"].dtype == object and raw["Idenoised"].shape == (1, 3)  # a 1 x 3 MATLAB cell
    assert raw["Idenoised"][0, 2].dtype == np.float32
    assert raw["israw"].item() == 0 and raw["eval_version"].item() == "1.0"
    back = read_dnd_submission(tmp_path, images=2)
    assert back.keys() == crops.keys()
    np.testing.assert_array_equal(back["0001_02"], crops["0001_02"])
    np.testing.assert_allclose(back["0002_03"], crops["0002_03"] / 255.0, atol=1e-7)
    (tmp_path / "0002.mat").unlink()
    with pytest.raises(DataError, match="0002.mat: file not found"):
        read_dnd_submission(tmp_path, images=2)
