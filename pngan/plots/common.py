"""What every figure of the kit shares: one style, figures released from pyplot at once, panel
grids, and `save` (a PNG at the fixed `DPI`).

Nothing here selects a backend: figures come from pyplot under whatever backend is active (a
notebook's inline one, Agg in a headless script) and are released from pyplot at once, so a
returned Figure shows once in a notebook and no figure piles up in scripts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pngan.stats import as_image_batch

DPI = 100  # figures are made and saved at this dpi, so crops map 1 image pixel to `scale` pixels
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LABEL_WIDTH = 40  # characters per line of a tick label


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The one style of every figure here (seaborn whitegrid, colour-blind palette), as a context.

    Every plotting function applies it itself; use it around your own plots to match them.
    It changes matplotlib's settings only inside the `with` block.
    """
    rc = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.8),
        "axes.prop_cycle": mpl.cycler(color=sns.color_palette("colorblind")),
        "axes.titlesize": 10,
        "figure.titlesize": 11,
        "legend.frameon": False,
        "image.interpolation": "nearest",
        "savefig.dpi": DPI,
    }
    with mpl.rc_context(rc):
        yield


def styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with style():
            return plot(*args, **kwargs)

    return wrapper


def model_styles(names: list[str]) -> dict[str, dict[str, Any]]:
    """Line colour, style and marker per model: the first black and solid, then the palette."""
    palette = sns.color_palette("colorblind")
    out = {}
    for i, name in enumerate(names):
        color = "black" if i == 0 else palette[(i - 1) % len(palette)]
        out[name] = {"color": color, "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
                     "marker": _MARKERS[i % len(_MARKERS)], "linewidth": 1.8 if i == 0 else 1.4}
    return out


def new_figure(**kwargs: Any) -> Figure:
    """A figure from pyplot (which lets the active backend, e.g. a notebook's, display it),
    released from pyplot's list of open figures at once: shown only when returned, never leaked."""
    fig = plt.figure(dpi=DPI, **kwargs)
    plt.close(fig)
    return fig


def constrained_figure(width: float, height: float) -> Figure:
    return new_figure(figsize=(width, height), layout="constrained")


def wrapped(labels: Iterable[str], width: int = LABEL_WIDTH) -> list[str]:
    """Tick labels broken into lines of at most `width` characters: a long model name would
    otherwise squeeze the axes until the title and axis label run off the figure."""
    return [textwrap.fill(str(text), width) for text in labels]


def check_models(results: Mapping[str, Any]) -> list[str]:
    if not results:
        raise ValueError("nothing to plot: pass at least one model (name -> result)")
    return list(results)


def legend_below(fig: Figure, ax: Axes, columns: int) -> None:
    """One legend for the whole figure, below the panels (the panels share their lines), in at
    most `columns` columns and as few rows as fit the figure's width (a wider one is cut off)."""
    handles, labels = ax.get_legend_handles_labels()
    for ncols in range(min(columns, len(labels)), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=ncols)
        if ncols == 1 or legend.get_window_extent().width <= fig.bbox.width:
            return
        legend.remove()


def grid_shape(panels: int, columns: int | None) -> tuple[int, int]:
    """(rows, columns) of `panels` panels in rows of `columns` (None: one row)."""
    if columns is not None and (int(columns) != columns or columns < 1):
        raise ValueError(f"columns must be a positive integer or None (one row), got {columns!r}")
    columns = panels if columns is None else min(int(columns), panels)
    return -(-panels // columns), columns


def panel_grid(fig: Figure, panels: int, columns: int | None, **kwargs: Any) -> list[Axes]:
    """`panels` axes, row by row in rows of `columns`; the unused cells of the last row removed."""
    rows, cols = grid_shape(panels, columns)
    axes = list(fig.subplots(rows, cols, squeeze=False, **kwargs).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return axes[:panels]


def log_ticks(axis: mpl.axis.Axis) -> None:
    """A log scale on `axis` labelled 1, 2, 5, 10, 20, ... (plain numbers, no powers of ten)."""
    (axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale)("log")
    axis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(mpl.ticker.NullFormatter())


def as_uint8(image: Any, name: str) -> np.ndarray:
    """One image (H x W x 3 or a batch of one, any scale `pngan.stats` reads) as uint8."""
    batch = as_image_batch(image, name)
    if batch.shape[0] != 1:
        raise ValueError(f"{name}: expected one image, got a batch of {batch.shape[0]}")
    return np.clip(np.rint(batch[0] * 255.0), 0, 255).astype(np.uint8)



def save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write `fig` as a PNG at `DPI` (atomically: never a half-written file) and close it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: figures are saved as PNG; use a .png file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")  # same folder: the rename is atomic
    try:
        fig.savefig(tmp, dpi=DPI, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    plt.close(fig)  # figures made here are released already; a user's own pyplot figure is closed
    return path
