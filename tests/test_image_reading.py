"""The image reading policy of pngan.images.read_image, case by case, and property-based: every input
is read exactly (a conversion warns, naming the file) or refused with a DataError naming it;
no input makes the reader raise anything else."""

from __future__ import annotations

import io
import re
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from pngan.images import DataError, read_image


def _rgb(h=6, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png(width, height, depth, colour, rows, chunks=()):
    """A PNG written by hand: Pillow cannot write 16-bit RGB(A) PNGs. `rows` are the unfiltered
    scanlines (filter byte 0 is added); `chunks` are (type, data) pairs put before IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in rows)
    body = b"".join(chunk(kind, data) for kind, data in chunks)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _bmp16(width, height, pixels):
    """A 16-bit (5-5-5) BMP: Pillow reads it as 8-bit RGB by scaling each 5-bit sample."""
    stride = (width * 2 + 3) & ~3
    rows = b"".join(pixels[y].astype("<u2").tobytes().ljust(stride, b"\0") for y in reversed(range(height)))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 0, len(rows), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(rows), 0, 0, 14 + len(info)) + info + rows


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def _refused(path, pattern):
    """pytest.raises for a DataError whose one-line message starts with the file's name."""
    return pytest.raises(DataError, match=re.escape(f"{path}: ") + pattern)


def _warns(path, pattern):
    return pytest.warns(UserWarning, match=re.escape(f"{path}: ") + pattern)


def _assert_one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- 8-bit RGB, grayscale, palette -------------------------------------------------------------

@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("PPM", ".ppm"), ("WEBP", ".webp")])
def test_8_bit_rgb_is_read_as_is_without_warning(tmp_path, fmt, suffix):
    img = _rgb(9, 11)
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    path = _save(Image.fromarray(img), tmp_path / f"x{suffix}", format=fmt, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_image(path)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, img)


def test_grayscale_replicated_exactly_with_warning(tmp_path):
    gray = _rgb()[:, :, 0]
    path = _save(Image.fromarray(gray), tmp_path / "g.png")
    with _warns(path, "grayscale image, replicated to 3 channels"):
        out = read_image(path)
    np.testing.assert_array_equal(out, np.dstack([gray] * 3))


def _palette_image(h=6, w=7, seed=0):
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (h, w), dtype=np.uint8)
    im = Image.frombytes("P", (w, h), index.tobytes())
    im.putpalette(palette.tobytes())
    return im, palette[index]


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("GIF", ".gif")])
def test_palette_lookup_is_exact_with_warning(tmp_path, fmt, suffix):
    im, expected = _palette_image()
    path = _save(im, tmp_path / f"p{suffix}", format=fmt)
    with _warns(path, "palette image, converted to RGB by exact palette lookup"):
        out = read_image(path)
    np.testing.assert_array_equal(out, expected)


def test_low_depth_palette_png_is_exact(tmp_path):
    # a 2-bit palette PNG: the indices are 2 bits, the colours 8 bits: still an exact lookup
    palette = np.array([[10, 20, 30], [200, 0, 7], [1, 2, 3], [255, 255, 0]], np.uint8)
    index = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint8)
    rows = [bytes([int("".join(f"{i:02b}" for i in row), 2)]) for row in index]
    path = tmp_path / "p2.png"
    path.write_bytes(_png(4, 2, 2, 3, rows, [(b"PLTE", palette.tobytes())]))
    with _warns(path, "palette image"):
        np.testing.assert_array_equal(read_image(path), palette[index])


# ---- alpha ---------------------------------------------------------------------------------------

def test_rgba_opaque_alpha_dropped_with_warning(tmp_path):
    img = _rgb()
    path = _save(Image.fromarray(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])), tmp_path / "o.png")
    with _warns(path, "opaque alpha channel dropped"):
        np.testing.assert_array_equal(read_image(path), img)


def test_rgba_with_one_translucent_pixel_refused(tmp_path):
    rgba = np.dstack([_rgb(), np.full((6, 7), 255, np.uint8)])
    rgba[3, 4, 3] = 254
    path = _save(Image.fromarray(rgba), tmp_path / "t.png")
    with _refused(path, r"image has a non-opaque alpha channel \(1 of 42 pixels not fully opaque\); flatten it") as err:
        read_image(path)
    _assert_one_line(err)


def test_bmp_with_alpha_in_its_unused_byte_refused(tmp_path):
    # Pillow writes RGBA as 32-bit BMP but reads the 4th byte back as padding (as the spec says)
    rgba = np.dstack([_rgb(), np.full((6, 7), 255, np.uint8)])
    path = _save(Image.fromarray(rgba), tmp_path / "opaque.bmp")
    np.testing.assert_array_equal(read_image(path), rgba[:, :, :3])
    rgba[1, 2, 3] = 0
    path = _save(Image.fromarray(rgba), tmp_path / "alpha.bmp")
    with _refused(path, "32-bit BMP whose unused 4th byte varies"):
        read_image(path)


def test_la_opaque_and_transparent(tmp_path):
    gray = _rgb()[:, :, 0]
    la = Image.merge("LA", [Image.fromarray(gray), Image.new("L", (7, 6), 255)])
    path = _save(la, tmp_path / "la.png")
    with _warns(path, "opaque alpha channel dropped; grayscale image, replicated to 3 channels"):
        np.testing.assert_array_equal(read_image(path), np.dstack([gray] * 3))
    alpha = np.full((6, 7), 255, np.uint8)
    alpha[0, 0] = 0
    path = _save(Image.merge("LA", [Image.fromarray(gray), Image.fromarray(alpha)]), tmp_path / "la_t.png")
    with _refused(path, "image has a non-opaque alpha channel"):
        read_image(path)


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("GIF", ".gif")])
def test_palette_with_transparency_treated_like_alpha(tmp_path, fmt, suffix):
    im, expected = _palette_image(seed=3)
    index = np.asarray(im)
    if fmt == "PNG":  # Pillow's GIF writer drops a transparent index that no pixel uses
        unused = next(i for i in range(256) if i not in index)
        path = _save(im, tmp_path / f"unused{suffix}", format=fmt, transparency=unused)
        with _warns(path, r"transparency \(no pixel transparent\) ignored; palette image, converted to RGB"):
            np.testing.assert_array_equal(read_image(path), expected)
    path = _save(im, tmp_path / f"used{suffix}", format=fmt, transparency=int(index[0, 0]))
    with _refused(path, "image has a non-opaque transparent colour"):
        read_image(path)


def test_rgb_colour_key_transparency(tmp_path):
    img = _rgb()
    path = _save(Image.fromarray(img), tmp_path / "key.png", transparency=tuple(int(v) for v in img[2, 2]))
    with _refused(path, r"image has a non-opaque transparent colour \(1 of 42"):
        read_image(path)


# ---- not 8 bits per sample -----------------------------------------------------------------------

def test_16_bit_rgb_png_refused(tmp_path):
    """Pillow opens a 48-bit PNG as mode 'RGB' and keeps only the high byte of each sample: the
    kit used to read it that way without a word."""
    deep = np.random.default_rng(1).integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    path = tmp_path / "rgb48.png"
    path.write_bytes(_png(6, 5, 16, 2, [row.astype(">u2").tobytes() for row in deep]))
    with Image.open(path) as im:
        assert im.mode == "RGB"  # what makes this case dangerous
    with _refused(path, r"16-bit RGB PNG: only 8-bit RGB, grayscale or palette images are read exactly \(re-quantising .*\); convert it to 8-bit RGB") as err:
        read_image(path)
    _assert_one_line(err)


@pytest.mark.parametrize("depth, colour, channels, what", [
    (16, 6, 4, "16-bit RGBA PNG"),
    (16, 0, 1, "16-bit grayscale PNG"),
    (16, 4, 2, r"16-bit grayscale\+alpha PNG"),
])
def test_16_bit_png_of_every_colour_type_refused(tmp_path, depth, colour, channels, what):
    deep = np.random.default_rng(2).integers(0, 65536, (3, 4, channels), dtype=np.uint16)
    path = tmp_path / f"deep{colour}.png"
    path.write_bytes(_png(4, 3, depth, colour, [row.astype(">u2").tobytes() for row in deep]))
    with _refused(path, what):
        read_image(path)


def test_16_bit_gray_png_written_by_pillow_refused(tmp_path):
    path = _save(Image.fromarray(np.full((4, 4), 40000, np.uint16)), tmp_path / "deep.png")
    with _refused(path, "16-bit grayscale PNG"):
        read_image(path)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_low_depth_grayscale_png_refused(tmp_path, depth):
    path = tmp_path / f"gray{depth}.png"
    path.write_bytes(_png(8, 2, depth, 0, [bytes(depth)] * 2))
    with _refused(path, f"{depth}-bit grayscale PNG"):
        read_image(path)


def test_16_bit_rgb_tiff_refused(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "rgb48.tif"
    tifffile.imwrite(path, np.full((4, 5, 3), 40000, np.uint16), photometric="rgb")
    with Image.open(path) as im:
        assert im.mode == "RGB"  # Pillow would keep the high byte only
    with _refused(path, re.escape("TIFF with 16/16/16 bits per sample (unsigned integer)")):
        read_image(path)


@pytest.mark.parametrize("mode, what", [("F", "TIFF with 32 bits per sample (float)"), ("I", "TIFF with 32 bits per sample (signed integer)"),
                                        ("I;16", "TIFF with 16 bits per sample (unsigned integer)")])
def test_float_and_integer_tiff_refused(tmp_path, mode, what):
    path = _save(Image.fromarray(_rgb()[:, :, 0]).convert(mode), tmp_path / f"{mode[:1]}.tif")
    with _refused(path, re.escape(what)):
        read_image(path)


@pytest.mark.parametrize("header, sample, what", [
    (b"P6\n3 2\n65535\n", ">u2", "PPM/PGM with maxval 65535"),
    (b"P6\n3 2\n1000\n", ">u2", "PPM/PGM with maxval 1000"),
    (b"P6\n3 2\n100\n", "u1", "PPM/PGM with maxval 100"),
    (b"P5\n3 2\n65535\n", ">u2", "PPM I image stored as I;16B, not 8 bits per sample"),
])
def test_ppm_not_8_bit_refused(tmp_path, header, sample, what):
    channels = 3 if header.startswith(b"P6") else 1
    path = tmp_path / "deep.ppm"
    path.write_bytes(header + np.arange(6 * channels).astype(sample).tobytes())
    with _refused(path, re.escape(what)):
        read_image(path)


def test_16_bit_bmp_refused(tmp_path):
    path = tmp_path / "rgb555.bmp"
    path.write_bytes(_bmp16(3, 2, np.arange(6, dtype=np.uint16).reshape(2, 3) * 1000))
    with _refused(path, r"BMP RGB image stored as BGR;15, not 8 bits per sample"):
        read_image(path)


def test_1_bit_refused(tmp_path):
    path = _save(Image.fromarray(_rgb()[:, :, 0] > 128), tmp_path / "bw.bmp")
    with _refused(path, "1-bit black-and-white image"):
        read_image(path)


# ---- other colour spaces ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk_refused(tmp_path, suffix):
    path = _save(Image.fromarray(_rgb()).convert("CMYK"), tmp_path / f"cmyk{suffix}")
    with _refused(path, r"CMYK image: CMYK to RGB is not exact .*; convert it to 8-bit RGB") as err:
        read_image(path)
    _assert_one_line(err)


def test_lab_tiff_refused(tmp_path):
    path = _save(Image.fromarray(_rgb()).convert("LAB"), tmp_path / "lab.tif")
    with _refused(path, "LAB image"):
        read_image(path)


# ---- EXIF orientation ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif")])
def test_exif_rotated_refused(tmp_path, fmt, suffix):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(Image.fromarray(_rgb()), tmp_path / f"rot{suffix}", format=fmt, exif=exif)
    with _refused(path, r"EXIF orientation 6 \(shown rotated 90 degrees clockwise\).*exif_transpose") as err:
        read_image(path)
    _assert_one_line(err)


def test_exif_orientation_1_read(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 1
    img = _rgb()
    path = _save(Image.fromarray(img), tmp_path / "up.png", exif=exif)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(path), img)


# ---- several frames ---------------------------------------------------------------------------------

def test_multi_frame_gif_reads_frame_0_with_warning(tmp_path):
    first, expected = _palette_image(seed=4)
    others = [_palette_image(seed=s)[0] for s in (5, 6)]
    path = _save(first, tmp_path / "anim.gif", save_all=True, append_images=others, duration=100, loop=0)
    with _warns(path, "3 frames, read frame 0 only; palette image"):
        np.testing.assert_array_equal(read_image(path), expected)


def test_multi_page_tiff_reads_page_0_with_warning(tmp_path):
    pages = [_rgb(seed=s) for s in range(3)]
    path = _save(Image.fromarray(pages[0]), tmp_path / "pages.tif", save_all=True, append_images=[Image.fromarray(p) for p in pages[1:]])
    with _warns(path, "3 frames, read frame 0 only"):
        np.testing.assert_array_equal(read_image(path), pages[0])


# ---- truncated, corrupt, empty, odd shapes, not files -------------------------------------------------

@pytest.mark.parametrize("cut", [1, 5, 12, 20, 100, -50, -20])
def test_truncated_png_refused(tmp_path, cut):
    data = (_save(Image.fromarray(_rgb(20, 20)), tmp_path / "full.png")).read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[:cut])
    with _refused(path, "cannot decode image") as err:
        read_image(path)
    _assert_one_line(err)
    if cut > 8:
        assert "truncated PNG" in str(err.value)


@pytest.mark.parametrize("cut", [-1, -2, -10, 0.5, 0.2])
def test_truncated_jpeg_refused(tmp_path, cut):
    data = (_save(Image.fromarray(_rgb(32, 32)), tmp_path / "full.jpg", quality=95)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    with _refused(path, "cannot decode image .*(?i:truncated)"):
        read_image(path)


def test_truncated_images_refused_even_if_pillow_is_told_to_load_them(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = (_save(Image.fromarray(_rgb(32, 32)), tmp_path / "full.jpg")).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with _refused(path, "cannot decode image"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is left as it was


def test_png_with_a_damaged_byte_refused(tmp_path):
    data = bytearray((_save(Image.fromarray(_rgb(20, 20)), tmp_path / "full.png")).read_bytes())
    data[len(data) // 2] ^= 0x10  # inside IDAT: Pillow alone might decode wrong pixels
    path = tmp_path / "flip.png"
    path.write_bytes(bytes(data))
    with _refused(path, r"cannot decode image \(PNG chunk IDAT at byte \d+ fails its CRC check\)"):
        read_image(path)


def test_empty_file_refused(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with _refused(tmp_path / "empty.png", r"empty file \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("name, data", [
    ("zero.png", _png(0, 0, 8, 2, [])),
    ("zero_wide.png", _png(0, 3, 8, 2, [b""] * 3)),
    ("zero.ppm", b"P6\n0 0\n255\n"),
    ("zero_high.ppm", b"P6\n4 0\n255\n"),
])
def test_zero_pixel_images_refused(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / name}: ")):
        read_image(tmp_path / name)


@pytest.mark.parametrize("h, w", [(1, 9), (9, 1), (1, 1)])
def test_one_pixel_wide_or_high_images_read_exactly(tmp_path, h, w):
    img = _rgb(h, w)
    path = _save(Image.fromarray(img), tmp_path / f"thin{h}x{w}.png")
    out = read_image(path)
    assert out.shape == (h, w, 3)
    np.testing.assert_array_equal(out, img)


def test_folder_named_like_an_image_refused(tmp_path):
    (tmp_path / "x.png").mkdir()
    with _refused(tmp_path / "x.png", "is a folder, not an image file"):
        read_image(tmp_path / "x.png")


def test_missing_file_refused(tmp_path):
    with _refused(tmp_path / "nope.png", "file not found"):
        read_image(tmp_path / "nope.png")


def test_not_an_image_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not an image\nat all\n")
    with _refused(tmp_path / "notes.png", r"cannot decode image \(not a PNG, JPEG, TIFF, BMP, WebP, PPM/PGM or GIF file") as err:
        read_image(tmp_path / "notes.png")
    _assert_one_line(err)


def test_other_formats_refused(tmp_path):
    path = _save(Image.fromarray(_rgb()), tmp_path / "x.tga", format="TGA")
    with _refused(path, "cannot decode image .*not a PNG, JPEG"):
        read_image(path)


def test_decompression_bomb_refused(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png(30000, 30000, 8, 2, [b""]))  # a 2.7 gigapixel header, almost no data
    with _refused(path, "image too large"):
        read_image(path)


# ---- property-based: no input makes the reader raise anything but DataError ----------------------------

_SUFFIXES = (".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".gif", ".PNG", ".dat")
# About 2 ms an example on one core; 2000 damaged images find a non-DataError in the old reader
# (e.g. DecompressionBombError from a flipped TIFF size) in most runs.
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]  # the autouse scratch fixture is harmless here


def _read_or_refuse(path: Path):
    """read_image's outcome, which must be an H x W x 3 uint8 array or a one-line DataError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = read_image(path)
    except DataError as err:
        message = str(err)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return err
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8, (type(out), getattr(out, "dtype", None))
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] >= 1 and out.shape[1] >= 1, out.shape
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# Each format's first bytes, so that random bytes get past format detection into the decoders.
_MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x01\x00\x00WEBPVP8",
          b"P6\n", b"P5 3 2 255\n", b"P3\n", b"P1\n", b"GIF89a", b"GIF87a"]


@settings(max_examples=600, deadline=None, database=None, suppress_health_check=_HEALTH)
@given(magic=st.sampled_from(_MAGIC), data=st.binary(max_size=3000), suffix=st.sampled_from(_SUFFIXES))
def test_random_bytes_are_read_or_refused(scratch, magic, data, suffix):
    path = scratch / f"random{suffix}"
    path.write_bytes(magic + data)
    _read_or_refuse(path)


# Each a (Pillow mode, format, save options) that Pillow can write; they cover the policy's cases.
_KINDS = [
    ("RGB", "PNG", {}), ("L", "PNG", {}), ("P", "PNG", {}), ("RGBA", "PNG", {}), ("LA", "PNG", {}),
    ("I;16", "PNG", {}), ("1", "PNG", {}), ("P", "PNG", {"transparency": 0}),
    ("RGB", "JPEG", {"quality": 90}), ("L", "JPEG", {}), ("CMYK", "JPEG", {}),
    ("RGB", "BMP", {}), ("P", "BMP", {}), ("RGBA", "BMP", {}), ("1", "BMP", {}),
    ("RGB", "TIFF", {}), ("RGB", "TIFF", {"compression": "tiff_lzw"}), ("RGB", "TIFF", {"compression": "tiff_deflate"}),
    ("I;16", "TIFF", {}), ("F", "TIFF", {}), ("CMYK", "TIFF", {}), ("RGBA", "TIFF", {}),
    ("RGB", "WEBP", {"lossless": True}), ("RGBA", "WEBP", {}),
    ("RGB", "PPM", {}), ("L", "PPM", {}), ("I;16", "PPM", {}),
    ("P", "GIF", {}), ("RGB", "GIF", {"save_all": True, "frames": 2}),
]


def _encode(mode, fmt, options, h, w, seed, exif_orientation):
    rng = np.random.default_rng(seed)
    options = dict(options)
    frames = options.pop("frames", 1)
    images = []
    for _ in range(frames):
        if mode == "I;16":
            im = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
        elif mode == "F":
            im = Image.fromarray(rng.random((h, w), dtype=np.float32))
        else:
            channels = len(Image.new(mode, (1, 1)).getbands())
            arr = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            if mode in ("RGBA", "LA") and rng.random() < 0.5:
                arr[..., -1] = 255  # an opaque alpha channel half of the time
            if mode == "RGBA":
                im = Image.fromarray(arr)
            elif mode == "LA":
                im = Image.merge("LA", [Image.fromarray(arr[..., 0]), Image.fromarray(arr[..., 1])])
            elif channels == 1:
                im = Image.fromarray(arr[..., 0]).convert(mode)
            else:
                im = Image.fromarray(arr[..., :3]).convert(mode)
        images.append(im)
    if frames > 1:
        options["append_images"] = images[1:]
    if exif_orientation and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _fix_png_crcs(data: bytearray) -> None:
    """Recompute the CRC of every complete PNG chunk, so that damage reaches Pillow's decoder."""
    pos = 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        end = pos + 12 + length
        if end > len(data):
            return
        data[end - 4:end] = struct.pack(">I", zlib.crc32(data[pos + 4:end - 4]))
        pos = end


@st.composite
def damaged_images(draw):
    kind = draw(st.sampled_from(_KINDS))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    orientation = draw(st.sampled_from([0, 0, 0, 1, 6]))
    data = bytearray(_encode(*kind, h, w, draw(st.integers(0, 2**16)), orientation))
    damage = draw(st.sampled_from(["none", "truncate", "flip", "both"]))
    if damage in ("truncate", "both"):
        del data[draw(st.integers(0, len(data))):]
    if damage in ("flip", "both") and data:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        if kind[1] == "PNG" and draw(st.booleans()):
            _fix_png_crcs(data)
    return kind, damage, bytes(data)


@settings(max_examples=2000, deadline=None, database=None, suppress_health_check=_HEALTH)
@given(case=damaged_images(), suffix=st.sampled_from(_SUFFIXES))
def test_valid_truncated_or_damaged_images_are_read_or_refused(scratch, case, suffix):
    kind, damage, data = case
    path = scratch / f"image{suffix}"
    path.write_bytes(data)
    _read_or_refuse(path)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=_HEALTH)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**16),
       fmt=st.sampled_from([("PNG", {}), ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}), ("PPM", {}), ("WEBP", {"lossless": True})]))
def test_lossless_8_bit_rgb_round_trips_exactly(h, w, seed, fmt):
    img = _rgb(h, w, seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.img"
        Image.fromarray(img).save(path, format=fmt[0], **fmt[1])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(read_image(path), img)
