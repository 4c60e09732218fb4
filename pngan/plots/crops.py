"""The same crop of a clean image and of its noisy versions, pixel for pixel, with the noise
amplified below: how noise looks at 1:1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from pngan.plots.common import DPI, as_uint8, check_models, grid_shape, new_figure, styled

_CROP_PAD, _CROP_GAP, _CROP_LINE = 6, 8, 20  # pixels (_CROP_LINE: one line of a panel's title)
_ONE_LINE_FONT = 8.0  # points; a name that fits its column only smaller breaks before its "@"

def _crop_box(box: tuple[int, int, int, int] | None, h: int, w: int) -> tuple[slice, slice]:
    top, left, ch, cw = box if box is not None else ((h - min(h, 128)) // 2, (w - min(w, 128)) // 2,
                                                     min(h, 128), min(w, 128))
    if top < 0 or left < 0 or ch < 1 or cw < 1 or top + ch > h or left + cw > w:
        raise ValueError(f"box {(top, left, ch, cw)} (top, left, height, width) does not fit the {h}x{w} image")
    return slice(top, top + ch), slice(left, left + cw)


def _noise_view(noisy: np.ndarray, clean: np.ndarray, gain: float) -> np.ndarray:
    """0.5 + gain (y - x) as uint8: mid grey where there is no noise."""
    return np.clip(np.rint(127.5 + gain * (noisy.astype(np.float64) - clean)), 0, 255).astype(np.uint8)


def _auto_gain(noisy: list[np.ndarray], clean: np.ndarray) -> float:
    std = max(float((y.astype(np.float64) - clean).std()) for y in noisy)
    return max(1.0, round(32.0 / std, 1)) if std > 0 else 1.0


def _fitted_fontsize(text: str, width_px: float, largest: float = 9.0, step: float = 0.25) -> float:
    """The largest font size up to `largest` (in `step`s, down to 4 pt) at which every line of
    `text` spans at most `width_px` pixels as the Agg renderer draws it (hinting widens small
    sizes, so each size is measured, not scaled)."""
    renderer, lines = RendererAgg(1, 1, DPI), text.split("\n")
    size = largest
    while size > 4.0 and max(renderer.get_text_width_height_descent(line, FontProperties(size=size), ismath=False)[0]
                             for line in lines) > width_px:
        size -= step
    return size


def _titles(names: list[str], width_px: float) -> tuple[dict[str, str], float]:
    """Each panel's title and the one font size they share: a conditioned model's name that fits
    its column only under _ONE_LINE_FONT breaks before its "@" (`heteroscedastic` / `@reference`)."""
    texts = {n: n.replace("@", "\n@", 1) if "@" in n and _fitted_fontsize(n, width_px) < _ONE_LINE_FONT else n for n in names}
    return texts, min(_fitted_fontsize(t, width_px) for t in texts.values())


@styled
def crops(
    clean: Any,
    noisy: Mapping[str, Any],
    box: tuple[int, int, int, int] | None = None,
    scale: int = 1,
    amplify: float | str | None = None,
    columns: int | None = None,
    gain_from: str | None = None,
) -> Figure:
    """The same crop of the clean image and of each noisy version, pixel for pixel.

    box: (top, left, height, width) in pixels (default: the central 128 x 128 or less). Each
    image pixel becomes `scale` x `scale` figure pixels at `DPI`, so `save` (and a notebook's
    inline display) shows the noise unresampled. amplify: a gain g adds, under each row of
    panels, a row of 0.5 + g (y - x), mid grey = no noise; "auto" picks g so that +-3 std of the
    noisiest model's crop noise (or of `gain_from`'s, e.g. the real noise) spans +-96 of the
    +-127 levels (one gain for all, so the panels compare; noisier versions then clip).
    columns: panels per row, clean included (default: one row).
    """
    names = check_models(noisy)
    if "clean" in names:
        raise ValueError("'clean' names the first column; give the noisy versions other names")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer (pixel replication), got {scale}")
    if gain_from is not None and gain_from not in names:
        raise ValueError(f"gain_from '{gain_from}' is not one of the noisy versions {names}")
    base = as_uint8(clean, "clean")
    rows_slice, cols_slice = _crop_box(box, *base.shape[:2])
    panels = {"clean": base[rows_slice, cols_slice]}
    for name in names:
        image = as_uint8(noisy[name], name)
        if image.shape != base.shape:
            raise ValueError(f"{name}: shape {image.shape} differs from the clean image's {base.shape}")
        panels[name] = image[rows_slice, cols_slice]
    if amplify == "auto":
        amplify = _auto_gain([panels[n] for n in ([gain_from] if gain_from else names)], panels["clean"])
    elif amplify is not None and (isinstance(amplify, str) or amplify <= 0):
        raise ValueError(f"amplify must be a positive gain, 'auto' or None, got {amplify!r}")

    rows_per_block = 2 if amplify else 1
    blocks, cols = grid_shape(len(panels), columns)
    ph, pw = (n * scale for n in panels["clean"].shape[:2])
    titles, fontsize = _titles(list(panels), pw + _CROP_GAP - 2)
    title_h = _CROP_LINE * max(text.count("\n") + 1 for text in titles.values())
    block_height = rows_per_block * (title_h + ph) + (rows_per_block - 1) * _CROP_GAP
    width = 2 * _CROP_PAD + cols * pw + (cols - 1) * _CROP_GAP
    height = 2 * _CROP_PAD + blocks * block_height + (blocks - 1) * 2 * _CROP_GAP
    fig = new_figure(figsize=(width / DPI, height / DPI))
    items = list(panels.items())
    for block in range(blocks):
        for row in range(rows_per_block):
            for col, (name, crop) in enumerate(items[block * cols:(block + 1) * cols]):
                _crop_panel(fig, (width, height), (_CROP_PAD + col * (pw + _CROP_GAP),
                            _CROP_PAD + block * (block_height + 2 * _CROP_GAP) + row * (title_h + ph + _CROP_GAP) + title_h),
                            (pw, ph), (titles[name], fontsize), crop, panels["clean"], amplify if row == 1 else None, scale)
    return fig


def _crop_panel(fig: Figure, size: tuple[int, int], corner: tuple[int, int], panel: tuple[int, int], title: tuple[str, float],
                crop: np.ndarray, clean: np.ndarray, gain: float | None, scale: int) -> None:
    """One crop (`gain` None) or its amplified noise with its top-left pixel at `corner` (left,
    top; the title above it) of the figure."""
    (width, height), (left, top), (pw, ph), (text, fontsize) = size, corner, panel, title
    # whole-pixel axes positions: the image is drawn without resampling
    bottom = height - (top + ph)
    ax = fig.add_axes((left / width, bottom / height, pw / width, ph / height))
    ax.set_axis_off()
    if gain is not None and text == "clean":
        ax.text(0.5, 0.5, f"noise × {gain:g}\n(mid grey = 0)", ha="center", va="center", fontsize=9,
                transform=ax.transAxes)
        return
    shown = crop if gain is None else _noise_view(crop, clean, gain)
    ax.set_title(text, fontsize=fontsize, pad=3, linespacing=1.1)
    ax.imshow(np.repeat(np.repeat(shown, scale, axis=0), scale, axis=1), interpolation="nearest")
