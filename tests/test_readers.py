"""Readers of every layout: the dev data, small fixtures in the official layouts, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from pngan.data import dnd, sidd
from pngan.data.readers import KINDS, detect_kind, read_dataset
from pngan.images import DataError, write_png

FAMILIES = ("SIDD_small", "SIDD_medium", "SIDD_misc", "PolyU", "Nam_CC60")


def image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def readme_table(root: Path) -> dict[str, int]:
    rows = re.findall(r"^\|\s*(\w+)\s*\|\s*(\d+)\s*\|", (root / "README.txt").read_text(), flags=re.M)
    return {name: int(n) for name, n in rows}


def manifest_rows(root: Path) -> list[dict[str, str]]:
    lines = (root / "MANIFEST.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def manifest_notes(root: Path) -> dict[tuple[str, str], str]:
    return {(r["dataset"], Path(r["file"]).stem): r["notes"] for r in manifest_rows(root) if r["role"] == "noisy"}


def manifest_sizes(root: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {(r["dataset"], Path(r["file"]).stem): (int(r["height"]), int(r["width"]), 3) for r in manifest_rows(root) if r["role"] == "noisy"}


# --- the dev data -------------------------------------------------------------------------


@pytest.mark.shared_data
def test_dev_families_load_with_readme_counts_and_matching_sizes(real_pairs_dev):
    table = readme_table(real_pairs_dev)
    sizes = manifest_sizes(real_pairs_dev)
    assert set(table) == set(FAMILIES)
    for family in FAMILIES:
        assert detect_kind(real_pairs_dev / family) == "generic"
        pairs = read_dataset("auto", real_pairs_dev / family)
        assert len(pairs) == table[family], family
        for p in pairs:
            assert p.noisy.path.stem == p.clean.path.stem == p.name
            assert p.noisy.path.parent.name == "noisy" and p.clean.path.parent.name == "clean"
            noisy, clean = p.load()
            assert noisy.shape == clean.shape and noisy.dtype == np.uint8
            assert noisy.shape == sizes[family, p.name], (family, p.name)


@pytest.mark.shared_data
def test_dev_metadata_parsed_from_names_agrees_with_manifest_notes(real_pairs_dev):
    notes = manifest_notes(real_pairs_dev)
    for p in read_dataset("generic", real_pairs_dev / "SIDD_small"):
        note = notes["SIDD_small", p.name]
        m = re.search(r"scene (\d+) phone (\w+) ISO (\d+)", note)
        assert (p.meta["scene"], p.meta["camera"], p.meta["iso"]) == (m[1], m[2], int(m[3]))
        assert p.meta["patch"] == int(re.search(r"patch#(\d+)", note)[1])
    for p in read_dataset("generic", real_pairs_dev / "PolyU"):
        m = re.search(r"camera (\w+) aperture f/([\d.]+) shutter 1/(\d+)s ISO (\d+) scene (\w+) crop (\d+)", notes["PolyU", p.name])
        assert (p.meta["camera"], p.meta["aperture"], p.meta["shutter"], p.meta["iso"], p.meta["scene"], p.meta["crop"]) == (
            m[1], m[2], int(m[3]), int(m[4]), m[5], int(m[6])
        )
    for p in read_dataset("generic", real_pairs_dev / "Nam_CC60"):
        m = re.search(r"camera ([\w ]+) ISO (\d+) scene-group (\w+) crop (\d+)", notes["Nam_CC60", p.name])
        assert (p.meta["camera"].replace("_", " "), p.meta["iso"], p.meta["scene"], p.meta["crop"]) == (m[1], int(m[2]), m[3], int(m[4]))
    # names that follow no known naming keep the file as their scene
    assert {p.meta["scene"] for p in read_dataset("generic", real_pairs_dev / "SIDD_misc")} == {f"sample_{i}" for i in range(12)}


@pytest.mark.shared_data
def test_name_pattern_groups_dev_sidd_medium_crops_by_source_image(real_pairs_dev):
    pairs = read_dataset("generic", real_pairs_dev / "SIDD_medium", name_pattern=r"(?P<scene>\d+)_(?P<crop>\d+)")
    assert {p.meta["scene"] for p in pairs} == {"0"}
    assert sorted(p.meta["crop"] for p in pairs) == list(range(10))
    with pytest.raises(DataError, match=r"sample_0\.png: name 'sample_0' does not match name_pattern"):
        read_dataset("generic", real_pairs_dev / "SIDD_misc", name_pattern=r"(?P<scene>\d+)_\d+")


# --- SIDD folders -------------------------------------------------------------------------

SMALL_INSTANCES = ("0001_001_S6_00100_00060_3200_L", "0052_002_IP_01600_01000_5500_N")


def write_sidd_small(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    images = {}
    for n, inst in enumerate(SMALL_INSTANCES):
        noisy, gt = image(8, 10, 2 * n), image(8, 10, 2 * n + 1)
        write_png(root / "Data" / inst / "NOISY_SRGB_010.PNG", noisy)
        write_png(root / "Data" / inst / "GT_SRGB_010.PNG", gt)
        images[f"{inst}_010"] = (noisy, gt)
    return images


def write_sidd_medium(root: Path) -> None:
    for inst in SMALL_INSTANCES:
        ident = inst[:4]
        for capture in ("010", "011"):
            for role in ("NOISY", "GT"):
                write_png(root / "Data" / inst / f"{ident}_{role}_SRGB_{capture}.PNG", image(6, 6, int(capture)))
        (root / "Data" / inst / f"{ident}_METADATA_RAW_010.MAT").write_bytes(b"not an image")


def test_sidd_small_folder_pairs_and_instance_metadata(tmp_path):
    images = write_sidd_small(tmp_path)
    assert detect_kind(tmp_path) == "sidd_small"
    pairs = read_dataset("sidd_small", tmp_path)
    assert [p.name for p in pairs] == sorted(images)
    for p in pairs:
        noisy, gt = p.load()
        np.testing.assert_array_equal(noisy, images[p.name][0])
        np.testing.assert_array_equal(gt, images[p.name][1])
    assert {k: pairs[1].meta[k] for k in ("dataset", "scene", "camera", "iso", "shutter", "illuminant", "brightness", "capture")} == {
        "dataset": "SIDD_small", "scene": "002", "camera": "IP", "iso": 1600, "shutter": 1000,
        "illuminant": 5500, "brightness": "N", "capture": "010",
    }
    assert pairs[0].meta["kind"] == "sidd_small" and pairs[0].meta["root"] == str(tmp_path)


def test_sidd_medium_folder_two_captures_per_instance(tmp_path):
    write_sidd_medium(tmp_path)
    assert detect_kind(tmp_path / "Data") == "sidd_medium"
    pairs = read_dataset("auto", tmp_path)
    assert [p.name for p in pairs] == [f"{i}_{c}" for i in SMALL_INSTANCES for c in ("010", "011")]
    assert pairs[2].noisy.path.name == "0052_NOISY_SRGB_010.PNG" and pairs[2].clean.path.name == "0052_GT_SRGB_010.PNG"
    assert all(p.meta["dataset"] == "SIDD_medium" for p in pairs)


def test_sidd_folder_errors_name_the_file(tmp_path):
    write_sidd_small(tmp_path)
    gt = tmp_path / "Data" / SMALL_INSTANCES[0] / "GT_SRGB_010.PNG"
    gt.unlink()
    with pytest.raises(DataError, match=re.escape(f"{gt.parent / 'NOISY_SRGB_010.PNG'}: no GT image for capture 010")):
        read_dataset("sidd_small", tmp_path)
    write_png(gt, image(8, 10, 0))
    (tmp_path / "Data" / "holiday_photos").mkdir()
    with pytest.raises(DataError, match="holiday_photos: folder name is not a SIDD scene instance"):
        read_dataset("sidd_small", tmp_path)


def test_parse_instance():
    assert sidd.parse_instance("0052_002_S6_01600_01000_5500_N")["iso"] == 1600
    assert sidd.parse_instance("0052_002_S6_01600_01000_5500_N_7") is None
    assert sidd.parse_name("0052_002_S6_01600_01000_5500_N_7")["patch"] == 7
    assert sidd.parse_name("0052_002_S6_01600_01000_5500_N_7")["instance"] == "0052_002_S6_01600_01000_5500_N"
    assert sidd.parse_name("0052_002_S6_01600_01000_5500") is None


# --- SIDD .mat blocks ---------------------------------------------------------------------


def write_blocks(path: Path, variable: str, array: np.ndarray) -> np.ndarray:
    scipy.io.savemat(path, {variable: array})
    return array


def test_sidd_validation_blocks_named_and_loaded_once_per_file(tmp_path, monkeypatch):
    noisy = write_blocks(tmp_path / "ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb", image(2 * 3 * 16, 16, 0).reshape(2, 3, 16, 16, 3))
    gt = write_blocks(tmp_path / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb", image(2 * 3 * 16, 16, 1).reshape(2, 3, 16, 16, 3))
    calls = []
    real_loadmat = scipy.io.loadmat
    monkeypatch.setattr(sidd.scipy.io, "loadmat", lambda path, **kw: calls.append(Path(path).name) or real_loadmat(path, **kw))
    sidd._load_block_array.cache_clear()
    assert detect_kind(tmp_path) == "sidd_val"
    pairs = read_dataset("sidd_val", tmp_path)
    assert [p.name for p in pairs] == ["0000-0000", "0000-0001", "0000-0002", "0001-0000", "0001-0001", "0001-0002"]
    assert calls == []  # listing reads the headers only
    for p in pairs:
        n, g = p.load()
        np.testing.assert_array_equal(n, noisy[p.meta["image"], p.meta["block"]])
        np.testing.assert_array_equal(g, gt[p.meta["image"], p.meta["block"]])
    assert sorted(calls) == ["ValidationGtBlocksSrgb.mat", "ValidationNoisyBlocksSrgb.mat"]
    assert pairs[4].meta["scene"] == "0001" and pairs[4].meta["block"] == 1


def test_sidd_benchmark_blocks_are_noisy_only(tmp_path):
    noisy = write_blocks(tmp_path / "BenchmarkNoisyBlocksSrgb.mat", "BenchmarkNoisyBlocksSrgb", image(48, 8, 3).reshape(2, 3, 8, 8, 3))
    assert detect_kind(tmp_path) == "sidd_benchmark"
    pairs = read_dataset("sidd_benchmark", tmp_path)
    assert len(pairs) == 6 and all(p.clean is None for p in pairs)
    n, g = pairs[5].load()
    assert g is None
    np.testing.assert_array_equal(n, noisy[1, 2])


def test_sidd_blocks_bad_variable_or_shape(tmp_path):
    path = tmp_path / "BenchmarkNoisyBlocksSrgb.mat"
    scipy.io.savemat(path, {"NoisyBlocks": np.zeros((2, 3, 8, 8, 3), np.uint8)})
    with pytest.raises(DataError, match=re.escape(f"{path}: no variable 'BenchmarkNoisyBlocksSrgb' (found: NoisyBlocks)")):
        read_dataset("sidd_benchmark", tmp_path)
    scipy.io.savemat(path, {"BenchmarkNoisyBlocksSrgb": np.zeros((6, 8, 8, 3), np.uint8)})
    with pytest.raises(DataError, match=re.escape(f"{path}: 'BenchmarkNoisyBlocksSrgb' is uint8 (6, 8, 8, 3); expected uint8 (images, blocks")):
        read_dataset("sidd_benchmark", tmp_path)
    scipy.io.savemat(path, {"BenchmarkNoisyBlocksSrgb": np.zeros((2, 3, 8, 8, 3), np.float32)})
    with pytest.raises(DataError, match=re.escape(f"{path}: 'BenchmarkNoisyBlocksSrgb' is single")):
        read_dataset("sidd_benchmark", tmp_path)


def test_sidd_validation_gt_shape_must_match_noisy(tmp_path):
    write_blocks(tmp_path / "ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb", np.zeros((2, 3, 8, 8, 3), np.uint8))
    gt = tmp_path / "ValidationGtBlocksSrgb.mat"
    write_blocks(gt, "ValidationGtBlocksSrgb", np.zeros((2, 2, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=re.escape(f"{gt}: shape (2, 2, 8, 8, 3) differs from")):
        read_dataset("sidd_val", tmp_path)


# --- DND ----------------------------------------------------------------------------------

MATLAB_V73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."


def write_v73(path: Path) -> h5py.File:
    """An HDF5 file with MATLAB's 512-byte v7.3 header in its user block."""
    f = h5py.File(path, "w", userblock_size=512)
    f.close()
    with path.open("r+b") as raw:
        raw.write(MATLAB_V73_HEADER.ljust(128, b" "))
    return h5py.File(path, "a")


def write_dnd(root: Path, sizes: list[tuple[int, int]], boxes: list[np.ndarray]) -> list[np.ndarray]:
    """DND layout: info.mat with a cell of per-image box arrays, images_srgb/%04d.mat (transposed)."""
    (root / "images_srgb").mkdir(parents=True)
    images = []
    for n, (h, w) in enumerate(sizes, start=1):
        img = image(h, w, n)
        images.append(img)
        with write_v73(root / "images_srgb" / f"{n:04d}.mat") as f:
            f["InoisySRGB"] = (img.astype(np.float32) / 255).T  # MATLAB keeps H x W x 3 as 3 x W x H
    with write_v73(root / "info.mat") as f:
        refs = f.create_group("#refs#")
        cell = []
        for n, b in enumerate(boxes):
            refs[f"b{n}"] = np.asarray(b, dtype=np.float64).T  # 20 x 4 stored as 4 x 20
            cell.append(refs[f"b{n}"].ref)
        info = f.create_group("info")
        info.create_dataset("boundingboxes", data=np.array([cell], dtype=h5py.ref_dtype))
    return images


def test_dnd_reads_transposed_v73_crops_with_one_based_boxes(tmp_path):
    boxes = [np.array([[1, 1, 4, 5], [3, 2, 10, 12], [5, 7, 8, 12]]), np.array([[2, 3, 9, 9], [1, 1, 10, 8]])]
    images = write_dnd(tmp_path, [(10, 12), (10, 9)], boxes)
    assert detect_kind(tmp_path) == "dnd"
    pairs = read_dataset("dnd", tmp_path)
    assert [p.name for p in pairs] == ["0001_01", "0001_02", "0001_03", "0002_01", "0002_02"]
    for p in pairs:
        r0, c0, r1, c1 = (p.meta[k] for k in ("r0", "c0", "r1", "c1"))
        noisy, clean = p.load()
        assert clean is None
        np.testing.assert_array_equal(noisy, images[p.meta["image"] - 1][r0 - 1 : r1, c0 - 1 : c1])
    assert pairs[3].meta["scene"] == "0002" and pairs[3].meta["block"] == 1


def test_dnd_box_outside_image_names_the_files(tmp_path):
    write_dnd(tmp_path, [(10, 12)], [np.array([[1, 1, 4, 5], [3, 2, 11, 12]])])
    image_file = tmp_path / "images_srgb" / "0001.mat"
    with pytest.raises(DataError, match=re.escape(f"{image_file}: bounding box 2 [r0 c0 r1 c1] = [3 2 11 12] from {tmp_path / 'info.mat'} lies outside the 10x12 image")):
        read_dataset("dnd", tmp_path)


def test_dnd_file_that_is_not_v73(tmp_path):
    write_dnd(tmp_path, [(10, 12)], [np.array([[1, 1, 4, 5]])])
    info = tmp_path / "info.mat"
    scipy.io.savemat(info, {"info": {"boundingboxes": np.ones((1, 4))}})  # MATLAB v5
    with pytest.raises(DataError, match=re.escape(f"{info}: not a MATLAB v7.3 (HDF5) file")):
        read_dataset("dnd", tmp_path)


def test_dnd_missing_image_variable(tmp_path):
    write_dnd(tmp_path, [(10, 12)], [np.array([[1, 1, 4, 5]])])
    path = tmp_path / "images_srgb" / "0001.mat"
    with write_v73(path) as f:
        f["Inoisy"] = np.zeros((3, 12, 10), np.float32)
    with pytest.raises(DataError, match=re.escape(f"{path}: no variable 'InoisySRGB' (found: Inoisy)")):
        dnd.read_dnd(tmp_path)


# --- PolyU and Nam ------------------------------------------------------------------------


def write_named(root: Path, names: list[str], ext: str) -> None:
    for n, name in enumerate(names):
        path = root / f"{name}{ext}"
        if ext.lower() == ".jpg":
            from PIL import Image

            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image(8, 8, n)).save(path, quality=95)
        else:
            write_png(path, image(8, 8, n))


def test_polyu_pairs_real_with_mean(tmp_path):
    stems = ["Canon5D2_5_160_3200_chair_11", "NikonD800_4-5_160_1800_classroom_5", "NikonD800_6-3_125_5000_plant__4"]
    write_named(tmp_path, [f"{s}_{r}" for s in stems for r in ("real", "mean")], ".JPG")
    assert detect_kind(tmp_path) == "polyu"
    pairs = read_dataset("polyu", tmp_path)
    assert [p.name for p in pairs] == sorted(stems)
    p = pairs[1]
    assert p.noisy.path.name == f"{p.name}_real.JPG" and p.clean.path.name == f"{p.name}_mean.JPG"
    assert {k: p.meta[k] for k in ("camera", "aperture", "shutter", "iso", "scene", "crop")} == {
        "camera": "NikonD800", "aperture": "4.5", "shutter": 160, "iso": 1800, "scene": "classroom", "crop": 5,
    }
    assert pairs[2].meta["scene"] == "plant" and pairs[2].meta["crop"] == 4
    assert p.load()[0].shape == (8, 8, 3)


def test_polyu_real_without_mean_and_unreadable_jpeg(tmp_path):
    write_named(tmp_path, ["Sony_3-5_200_1600_classroom_10_real", "Sony_3-5_200_1600_classroom_10_mean", "Sony_4-5_125_1600_toy_10_real"], ".JPG")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'Sony_4-5_125_1600_toy_10_real.JPG'}: no clean partner")):
        read_dataset("polyu", tmp_path)
    (tmp_path / "Sony_4-5_125_1600_toy_10_mean.JPG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    pairs = read_dataset("polyu", tmp_path)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'Sony_4-5_125_1600_toy_10_mean.JPG'}: cannot decode image")):
        pairs[1].load()
    write_named(tmp_path, ["holiday"], ".JPG")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'holiday.JPG'}: name does not follow the PolyU layout")):
        read_dataset("polyu", tmp_path)


def test_nam_cc15_and_cc60(tmp_path):
    cc15 = ["5dmark3_iso3200_1", "d800_iso1600_2", "d800_iso6400_2"]
    write_named(tmp_path / "cc15", [f"{s}_{r}" for s in cc15 for r in ("real", "mean")], ".png")
    assert detect_kind(tmp_path / "cc15") == "nam_cc15"
    pairs = read_dataset("nam_cc15", tmp_path / "cc15")
    assert [p.name for p in pairs] == cc15
    assert [(p.meta["camera"], p.meta["iso"], p.meta["scene"]) for p in pairs] == [("5dmark3", 3200, "1"), ("d800", 1600, "2"), ("d800", 6400, "2")]
    cc60 = ["Canon_EOS_5D_Mark3_ISO_3200_C1_47", "Nikon_D800_ISO_1600_B2_109", "Nikon_D800_ISO_6400_B2_113"]
    write_named(tmp_path / "cc60", [f"CC_{r}_{s}" for s in cc60 for r in ("Noisy", "Mean")], ".png")
    assert detect_kind(tmp_path / "cc60") == "nam_cc60"
    pairs = read_dataset("nam_cc60", tmp_path / "cc60")
    assert [p.name for p in pairs] == cc60
    assert pairs[0].noisy.path.name == f"CC_Noisy_{cc60[0]}.png" and pairs[0].clean.path.name == f"CC_Mean_{cc60[0]}.png"
    assert [(p.meta["camera"], p.meta["iso"], p.meta["scene"], p.meta["crop"]) for p in pairs] == [
        ("Canon_EOS_5D_Mark3", 3200, "C1", 47), ("Nikon_D800", 1600, "B2", 109), ("Nikon_D800", 6400, "B2", 113),
    ]
    (tmp_path / "cc60" / f"CC_Mean_{cc60[1]}.png").unlink()
    with pytest.raises(DataError, match=re.escape(f"CC_Noisy_{cc60[1]}.png: no clean partner")):
        read_dataset("nam_cc60", tmp_path / "cc60")


# --- generic, clean, dispatcher -----------------------------------------------------------


def test_empty_folders_are_errors_naming_the_folder(tmp_path):
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'noisy'}: no image files in folder")):
        read_dataset("generic", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    for kind in ("clean", "polyu", "nam_cc15", "nam_cc60"):
        with pytest.raises(DataError, match=re.escape(f"{empty}: no image files in folder")):
            read_dataset(kind, empty)
    with pytest.raises(DataError, match=re.escape(f"{empty}: no SIDD scene-instance folders")):
        read_dataset("sidd_medium", empty)
    with pytest.raises(DataError, match=re.escape(f"{empty}: cannot tell the data layout")):
        read_dataset("auto", empty)


def test_clean_folder_and_dispatcher_arguments(tmp_path):
    write_named(tmp_path, ["kodim01", "0001_001_S6_00100_00060_3200_L_3"], ".png")
    pairs = read_dataset("clean", tmp_path, dataset="mine")
    assert [(p.name, p.noisy, p.meta["dataset"]) for p in pairs] == [("0001_001_S6_00100_00060_3200_L_3", None, "mine"), ("kodim01", None, "mine")]
    assert pairs[0].meta["camera"] == "S6" and pairs[1].meta["scene"] == "kodim01"
    with pytest.raises(DataError, match="cannot tell the data layout"):
        read_dataset("auto", tmp_path)  # a clean folder is never guessed
    with pytest.raises(ValueError, match="unknown data kind 'sidd'; kinds: generic, clean, sidd_small"):
        read_dataset("sidd", tmp_path)
    with pytest.raises(ValueError, match="data kind 'polyu' takes no option.s. name_pattern; its options: dataset"):
        read_dataset("polyu", tmp_path, name_pattern="x")
    with pytest.raises(ValueError, match=r"name_pattern '\(' is not a regular expression"):
        read_dataset("clean", tmp_path, name_pattern="(")
    assert set(KINDS) == {"generic", "clean", "sidd_small", "sidd_medium", "sidd_val", "sidd_benchmark", "dnd", "polyu", "nam_cc15", "nam_cc60", "auto"}
