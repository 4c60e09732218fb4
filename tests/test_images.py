"""Image reading policy and paired-folder errors: every bad input names its file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pngan.data.pairs import read_clean_folder, read_paired_folder
from pngan.images import DataError, read_image, to_image, to_tensor, to_uint8, write_png


def _rgb(h=8, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _pair_folder(root, names=("a", "b"), ext_noisy=".png", ext_clean=".PNG"):
    (root / "noisy").mkdir(parents=True, exist_ok=True)
    (root / "clean").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(_rgb(seed=i)).save(root / "noisy" / f"{name}{ext_noisy}", format="PNG")
        Image.fromarray(_rgb(seed=10 + i)).save(root / "clean" / f"{name}{ext_clean}", format="PNG")
    return root


def test_png_round_trip_is_exact(tmp_path):
    img = _rgb(17, 9)
    write_png(tmp_path / "x.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), img)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_tensor_round_trip_and_rounding():
    img = _rgb(5, 7)
    np.testing.assert_array_equal(to_image(to_tensor(img)), img)
    assert to_tensor(img).shape == (3, 5, 7)
    assert to_uint8(np.array([0.5 / 255, 1.49 / 255, 2.0, -1.0])).tolist() == [0, 1, 255, 0]


def test_grayscale_is_replicated_with_warning(tmp_path):
    gray = _rgb()[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    with pytest.warns(UserWarning, match="g.png: grayscale"):
        out = read_image(tmp_path / "g.png")
    assert out.shape == (8, 10, 3) and (out[:, :, 2] == gray).all()


def test_rgba_opaque_dropped_transparent_refused(tmp_path):
    rgba = np.dstack([_rgb(), np.full((8, 10), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "o.png")
    with pytest.warns(UserWarning, match="o.png: opaque alpha"):
        np.testing.assert_array_equal(read_image(tmp_path / "o.png"), rgba[:, :, :3])
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(tmp_path / "t.png")
    with pytest.raises(DataError, match="t.png: image has a non-opaque alpha"):
        read_image(tmp_path / "t.png")


def test_16_bit_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DataError, match="deep.png: .*only 8-bit RGB"):
        read_image(tmp_path / "deep.png")


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="bad.jpg: cannot decode image"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(DataError, match="nope.png: file not found"):
        read_image(tmp_path / "nope.png")


def test_paired_folder_pairs_by_name_any_extension_case(tmp_path):
    pairs = read_paired_folder(_pair_folder(tmp_path / "set"))
    assert [p.name for p in pairs] == ["a", "b"]
    noisy, clean = pairs[1].load()
    np.testing.assert_array_equal(noisy, _rgb(seed=1))
    np.testing.assert_array_equal(clean, _rgb(seed=11))
    assert pairs[0].meta == {"dataset": "set", "scene": "a"}


def test_paired_folder_errors(tmp_path):
    with pytest.raises(DataError, match="missing: folder not found"):
        read_paired_folder(tmp_path / "missing")
    (tmp_path / "empty" / "noisy").mkdir(parents=True)
    (tmp_path / "empty" / "clean").mkdir()
    with pytest.raises(DataError, match="noisy: no image files"):
        read_paired_folder(tmp_path / "empty")
    root = _pair_folder(tmp_path / "unpaired")
    Image.fromarray(_rgb()).save(root / "noisy" / "c.png")
    with pytest.raises(DataError, match=r"noisy/c.png: no clean partner"):
        read_paired_folder(root)


def test_size_mismatch_names_both_files(tmp_path):
    root = _pair_folder(tmp_path / "s", names=("a",))
    Image.fromarray(_rgb(9, 10)).save(root / "clean" / "a.PNG", format="PNG")
    (pair,) = read_paired_folder(root)
    with pytest.raises(DataError, match=r"noisy/a.png: size 10x8 differs from its clean image .*clean/a.PNG \(10x9\)"):
        pair.load()


def test_clean_folder(tmp_path):
    (tmp_path / "c").mkdir()
    Image.fromarray(_rgb()).save(tmp_path / "c" / "k01.png")
    (pair,) = read_clean_folder(tmp_path / "c")
    assert pair.noisy is None and pair.load()[1].shape == (8, 10, 3)
