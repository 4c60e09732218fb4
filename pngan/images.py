"""Image files in and out, with errors that name the file and the problem.

Reading policy (`read_image`; generate, evaluate and every data reader read images through it, so
the policy is the same everywhere; documented in the README). Every input is read exactly or
refused. "Exactly" means that each returned value is a stored 8-bit sample (or a palette entry);
nothing is re-quantised, colour-converted, rotated or filled in. A conversion warns
(`UserWarning` naming the file and what was done); a refusal raises `DataError`, one line that
names the file, the problem and the fix.

- 8-bit RGB: read as is.
- 8-bit grayscale (L): replicated to three channels, with a warning.
- Palette (P, any index depth): exact palette lookup to RGB, with a warning.
- Alpha (RGBA, LA, PA, palette or colour-key transparency): if every pixel is fully opaque the
  alpha channel is dropped, with a warning; any transparent or semi-transparent pixel: refused
  (which background to flatten onto is the user's choice, not the kit's).
- Samples that are not 8 bits (16-bit PNG/TIFF, PPM/PGM with maxval other than 255, 5-6-5 BMP,
  1/2/4-bit grayscale, 32-bit integer, float): refused. Pillow itself would reduce a 48-bit PNG
  or TIFF to 8 bits without a word, so the bit depth is taken from the file (PNG IHDR, TIFF
  BitsPerSample, PPM maxval, the decoder's raw mode), not from Pillow's mode.
  Re-quantising silently would change the noise statistics.
- CMYK, YCbCr, LAB, HSV and other colour spaces: refused (their conversion to RGB is not exact).
- EXIF orientation other than 1 (a JPEG/TIFF/PNG/WebP shown rotated or mirrored): refused. The
  stored pixels are not the image as shown; rotating some files and not others would misalign
  noisy/clean pairs, and rotation moves the sensor's Bayer phase that noise models fit.
- Several frames (animated GIF/PNG/WebP, multi-page TIFF, MPO, the format of many camera JPEGs
  with an embedded preview): frame 0 is read (exactly), with a warning.
- Truncated or corrupt files (a decoder error, a PNG chunk CRC mismatch or missing IEND, an
  empty or 0-pixel file), folders, and formats other than PNG, JPEG, TIFF, BMP, WebP,
  PPM/PGM and GIF: refused. Pillow's LOAD_TRUNCATED_IMAGES is not honoured: truncated images
  are never completed with gray.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from pngan.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


# Formats whose bit depth read_image checks; Pillow is not asked to guess any other (TGA, PSD,
# DDS, FITS, ... each have their own ways of being 16-bit or lossy).
_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "PPM", "GIF")  # JPEG includes MPO
_FORMAT_NAMES = "PNG, JPEG, TIFF, BMP, WebP, PPM/PGM or GIF"
_TO_RGB = "convert it to 8-bit RGB (e.g. PNG) first"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}
_ORIENTATION = {2: "mirrored", 3: "rotated 180 degrees", 4: "flipped", 5: "transposed", 6: "rotated 90 degrees clockwise",
                7: "transversed", 8: "rotated 90 degrees counter-clockwise"}
_ONLY_8_BIT = "only 8-bit RGB, grayscale or palette images are read exactly"
_REQUANTISE = f"{_ONLY_8_BIT} (re-quantising silently would change the noise statistics)"
# Pillow modes that are not 8-bit RGB, grayscale or palette, and why they are not converted.
_REFUSED_MODES = {
    "1": ("1-bit black-and-white image", f"{_ONLY_8_BIT} (a 1-bit image holds no camera noise)"),
    "I": ("32-bit integer image", _REQUANTISE),
    "F": ("32-bit float image", _REQUANTISE),
    "CMYK": ("CMYK image", "CMYK to RGB is not exact (it depends on the colour profile)"),
    "YCbCr": ("YCbCr image", "YCbCr to RGB is not exact"),
    "LAB": ("LAB image", "LAB to RGB is not exact"),
    "HSV": ("HSV image", "HSV to RGB is not exact"),
}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _refuse(path: Path, what: str, why: str, fix: str = _TO_RGB) -> DataError:
    return DataError(f"{path}: {what}: {why}; {fix}")


def _corrupt(path: Path, problem: str) -> DataError:
    return DataError(f"{path}: cannot decode image ({_one_line(problem)}); the file is corrupt or truncated: re-export or re-download it")


def _decoder_error(path: Path, err: Exception) -> DataError:
    if isinstance(err, Image.DecompressionBombError):
        return DataError(f"{path}: image too large ({_one_line(err)}); crop or tile it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file")
    return _corrupt(path, f"{type(err).__name__}: {err}")


def _pillow(path: Path, call, *args, **kwargs):
    """Run one Pillow call on the file being read: whatever it raises (OSError, SyntaxError,
    ValueError, EOFError, struct.error, zlib.error, DecompressionBombError, MemoryError, an
    IndexError from a malformed header, ...) becomes a DataError naming the file."""
    try:
        return call(*args, **kwargs)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001  (a decoder's failure on bad bytes is a property of the file)
        raise _decoder_error(path, err) from err


def _png_header(path: Path, data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR, after checking the chunk structure: every chunk
    complete and its CRC right, IHDR first, IEND present. Pillow checks neither IDAT CRCs nor
    IEND, so a damaged or cut PNG can otherwise decode to wrong pixels without an error."""
    pos, header, view = len(_PNG_SIGNATURE), None, memoryview(data)
    while True:
        if pos + 12 > len(data):
            raise _corrupt(path, f"truncated PNG: no IEND chunk, the file ends at byte {len(data)}")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        name = repr(kind)[2:-1]
        end = pos + 12 + length
        if end > len(data):
            raise _corrupt(path, f"truncated PNG: chunk {name} at byte {pos} needs {length} bytes, the file ends at byte {len(data)}")
        if zlib.crc32(view[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            raise _corrupt(path, f"PNG chunk {name} at byte {pos} fails its CRC check")
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise _corrupt(path, f"PNG does not start with an IHDR chunk (found {name})")
            header = (data[pos + 16], data[pos + 17])
        if kind == b"IEND":
            return header
        pos = end


def _raw_depth(im: Image.Image) -> str | None:
    """What the decoder's raw mode or arguments say about samples that are not 8 bits, or None.
    Catches formats where Pillow's mode hides it: 'RGB;16B' (48-bit PNG), 'RGB;16L' (48-bit
    TIFF), 'BGR;15'/'BGR;16' (5-6-5 BMP), 'L;2'/'L;4' (low-depth gray), PPM maxval != 255."""
    for tile in im.tile:
        args = tile.args
        if tile.codec_name in ("ppm", "ppm_plain") and isinstance(args, tuple) and args[-1] != 255:
            return f"PPM/PGM with maxval {args[-1]} (8-bit is 255)"
        rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else ""
        base, _, suffix = rawmode.partition(";")
        digits = "".join(c for c in suffix if c.isdigit())
        if base in ("P", "PA") or not digits:
            continue
        bits = int(digits)
        if bits in (24, 32) and len(base) * 8 == bits:  # 'BGR;24': three 8-bit samples
            continue
        if bits != 8:
            return f"{im.format} {im.mode} image stored as {rawmode}, not 8 bits per sample"
    return None


def _depth_problem(im: Image.Image, png: tuple[int, int] | None) -> str | None:
    """Why this file's samples are not 8 bits (and Pillow would re-quantise them), or None."""
    if png is not None:
        depth, colour = png
        if colour != 3 and depth != 8:
            return f"{depth}-bit {_PNG_COLOUR.get(colour, f'colour type {colour}')} PNG"
    if im.format == "TIFF":
        tags = im.tag_v2
        bits = tags.get(258, (1,))
        bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
        palette = tags.get(262) == 3
        sample_format = tags.get(339, (1,))
        sample_format = tuple(sample_format) if isinstance(sample_format, (tuple, list)) else (sample_format,)
        kind = {1: "unsigned integer", 2: "signed integer", 3: "float"}.get(max(sample_format, default=1), "undefined")
        if any(b != 8 for b in bits) and not (palette and all(b <= 8 for b in bits)) or kind != "unsigned integer":
            return f"TIFF with {'/'.join(map(str, bits))} bits per sample ({kind})"
        colormap = tags.get(320) if palette else None
        if colormap and not (all(v % 256 == 0 for v in colormap) or all(v % 257 == 0 for v in colormap)):
            return "TIFF palette with 16-bit colours (Pillow would round them to 8 bits)"
    return _raw_depth(im)


def _bmp_hidden_alpha(tiles: list, data: bytes) -> bool:
    """Whether a 32-bit BMP read as RGB has a 4th byte that varies from pixel to pixel. By the
    BMP spec it is unused, and Pillow ignores it; but Pillow and other tools write RGBA there,
    so a varying 4th byte is most likely an alpha channel that would be dropped unseen."""
    for tile in tiles:
        args = tile.args
        if tile.codec_name != "raw" or not isinstance(args, tuple) or len(args) < 2 or not isinstance(args[0], str):
            continue
        rawmode, stride = args[0], args[1]
        x0, y0, x1, y1 = tile.extents
        width, height = x1 - x0, y1 - y0
        if len(rawmode) != 4 or "X" not in rawmode or not isinstance(stride, int) or stride < 4 * width:
            continue
        block = data[tile.offset:tile.offset + stride * height]
        if len(block) < stride * height:
            continue
        pad = np.frombuffer(block, np.uint8).reshape(height, stride)[:, :4 * width].reshape(height, width, 4)[:, :, rawmode.index("X")]
        if pad.size and pad.min() != pad.max():
            return True
    return False


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as an H x W x 3 uint8 array, exactly, or raise DataError (one line naming the
    file, the problem and the fix). Exact conversions (grayscale, palette, an opaque alpha
    channel, frame 0 of several) warn with the file's name. See the module docstring."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an image file; give the path of an image")
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({_one_line(err.strerror or err)}); check its permissions") from err
    if not data:
        raise DataError(f"{path}: empty file (0 bytes); re-export or re-download it")
    png = _png_header(path, data) if data.startswith(_PNG_SIGNATURE) else None
    # Truncated images are refused, never completed with gray, whatever other code has set.
    allow_truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        return _decode(path, data, png)
    finally:
        if allow_truncated:
            ImageFile.LOAD_TRUNCATED_IMAGES = allow_truncated


def _decode(path: Path, data: bytes, png: tuple[int, int] | None) -> np.ndarray:
    try:
        im = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError as err:
        raise DataError(f"{path}: cannot decode image (not a {_FORMAT_NAMES} file, or a damaged one); "
                        f"check the file, or convert it to 8-bit RGB PNG") from err
    except Exception as err:  # noqa: BLE001  (see _pillow)
        raise _decoder_error(path, err) from err
    with im:
        width, height = im.size
        if width < 1 or height < 1:
            raise DataError(f"{path}: image of {width}x{height} pixels (empty); re-export it")
        depth = _pillow(path, _depth_problem, im, png)
        if depth:
            raise _refuse(path, depth, _REQUANTISE)
        mode = im.mode
        if mode.startswith("I;16"):
            raise _refuse(path, f"16-bit grayscale image ({mode})", _REQUANTISE)
        if mode in _REFUSED_MODES:
            what, why = _REFUSED_MODES[mode]
            raise _refuse(path, what, why)
        if mode not in ("RGB", "L", "P", "RGBA", "LA", "PA"):
            raise _refuse(path, f"{mode} image", _ONLY_8_BIT)
        frames = _pillow(path, lambda: getattr(im, "n_frames", 1))
        _pillow(path, im.seek, 0)
        # Before load: Pillow's TIFF reader applies the orientation while loading (then drops the tag).
        orientation = _pillow(path, lambda: im.getexif().get(0x0112))
        if orientation in _ORIENTATION:
            raise DataError(f"{path}: EXIF orientation {orientation} (shown {_ORIENTATION[orientation]}): the stored pixels are not the image as shown, "
                            "and rotating some files but not others would misalign noisy/clean pairs; save the pixels upright without the "
                            "orientation tag (e.g. PIL.ImageOps.exif_transpose), the same way for both images of a pair")
        tiles = list(im.tile)  # load() clears them
        _pillow(path, im.load)
        if im.format == "BMP" and mode == "RGB" and _pillow(path, _bmp_hidden_alpha, tiles, data):
            raise DataError(f"{path}: 32-bit BMP whose unused 4th byte varies, most likely an alpha channel that would be dropped unseen; "
                            "save it as PNG (flattened onto the background you want if it is transparent)")
        notes = [f"{frames} frames, read frame 0 only"] if frames > 1 else []
        transparency = "transparency" in im.info
        if mode in ("RGBA", "LA", "PA") or transparency:
            rgba = np.asarray(_pillow(path, im.convert, "RGBA"))
            alpha = rgba[:, :, 3]
            opaque = int(np.count_nonzero(alpha == 255))
            if opaque < alpha.size:
                source = "alpha channel" if mode in ("RGBA", "LA", "PA") else "transparent colour"
                raise DataError(f"{path}: image has a non-opaque {source} ({alpha.size - opaque} of {alpha.size} pixels not fully opaque); "
                                "flatten it onto the background you want and save it as RGB")
            notes.append("opaque alpha channel dropped" if mode in ("RGBA", "LA", "PA") else "transparency (no pixel transparent) ignored")
            arr = rgba[:, :, :3]
            if mode in ("L", "LA"):
                notes.append("grayscale image, replicated to 3 channels")
            elif mode in ("P", "PA"):
                notes.append("palette image, converted to RGB by exact palette lookup")
        elif mode == "L":
            arr = np.repeat(np.asarray(im)[:, :, None], 3, axis=2)
            notes.append("grayscale image, replicated to 3 channels")
        elif mode == "P":
            arr = np.asarray(_pillow(path, im.convert, "RGB"))
            notes.append("palette image, converted to RGB by exact palette lookup")
        else:
            arr = np.asarray(im)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[:2] != (height, width):
        raise DataError(f"{path}: decoded to {arr.shape} {arr.dtype}, expected {height} x {width} x 3 uint8; convert it to 8-bit RGB PNG")
    if notes:
        warnings.warn(f"{path}: {'; '.join(notes)}", stacklevel=3)
    return np.ascontiguousarray(arr)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an H x W x 3 uint8 array as PNG, atomically (never a half-written file)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected H x W x 3 uint8, got {image.shape} {image.dtype}")
    from pngan.runtime import atomic_path  # runtime imports torch; reading images should not

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
    return path


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> float32 in [0, 1]."""
    return image.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 with rounding and clipping."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def to_tensor(image: np.ndarray):
    """uint8 H x W x 3 (or N x H x W x 3) -> float32 torch tensor (3, H, W) / (N, 3, H, W) in [0, 1]."""
    import torch

    # Convert in NumPy: torch's threaded elementwise ops cost more than they save on small crops.
    chw = np.ascontiguousarray(np.moveaxis(image, -1, -3), dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(chw)


def to_image(tensor) -> np.ndarray:
    """float torch tensor (3, H, W) / (N, 3, H, W) in [0, 1] -> uint8 H x W x 3 / N x H x W x 3 (rounded)."""
    t = tensor.detach().float().clamp(0, 1).mul(255.0).round().to("cpu", dtype=__import__("torch").uint8)
    return t.movedim(-3, -1).contiguous().numpy()
