"""The report's PNG plots (class frequency, symbols per page, object sizes, fonts) drawn with matplotlib.

Figures are built as ``matplotlib.figure.Figure`` on the Agg canvas, never through pyplot, so no GUI
backend is ever touched and nothing global changes between calls. Sizes are fixed (``PLOT_SIZE_PX``)
so reports compare side by side.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless everywhere; the figures below do not need pyplot anyway

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from deepscores.formats.atomic import atomic_write_bytes  # noqa: E402
from deepscores.stats import DatasetStats  # noqa: E402

_DPI = 100
#: (width, height) in pixels of each plot file.
PLOT_SIZE_PX = {
    "class_frequency.png": (1600, 700),
    "symbols_per_page.png": (900, 500),
    "object_size.png": (900, 500),
    "by_font.png": (900, 500),
}
_BAR = "#3b6ea5"


def _figure(name: str) -> Figure:
    width, height = PLOT_SIZE_PX[name]
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    # No bbox_inches="tight": it would change the pixel size from one dataset to the next.
    figure.savefig(buffer, format="png", dpi=_DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _empty(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()


def plot_class_frequency(stats: DatasetStats, path: Path) -> Path:
    """Instances per class, most frequent first, log scale, every class named on the x axis."""
    figure = _figure(path.name)
    axes = figure.add_axes((0.05, 0.3, 0.93, 0.62))
    names, counts = list(stats.class_counts), list(stats.class_counts.values())
    if not names:
        _empty(axes, "no symbols")
    else:
        positions = np.arange(len(names))
        axes.bar(positions, counts, color=_BAR, width=0.8)
        axes.set_yscale("log")
        axes.set_xticks(positions, names, rotation=90, fontsize=max(4, min(9, int(900 / len(names)))))
        axes.set_xlim(-0.6, len(names) - 0.4)
        axes.set_ylabel("instances (log scale)")
        axes.grid(axis="y", alpha=0.3)
    axes.set_title(f"Class frequency: {stats.symbols:,} symbols in {stats.classes_present} classes")
    return _save(figure, path)


def plot_symbols_per_page(stats: DatasetStats, path: Path) -> Path:
    figure = _figure(path.name)
    axes = figure.add_axes((0.1, 0.13, 0.85, 0.77))
    hist = stats.symbols_per_page_histogram
    if not hist["counts"]:
        _empty(axes, "no pages")
    else:
        edges = np.asarray(hist["edges"])
        axes.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color=_BAR, edgecolor="white")
        median = stats.symbols_per_sheet["median"]
        axes.axvline(median, color="#c0392b", label=f"median {median:g}")
        axes.legend()
        axes.set_xlabel("symbols per page")
        axes.set_ylabel("pages")
    axes.set_title(f"Symbols per page ({stats.pages:,} pages)")
    return _save(figure, path)


def plot_object_size(stats: DatasetStats, path: Path, bins_per_decade: int = 10) -> Path:
    """Box areas on a log x axis, the stored fine histogram summed into coarser log bins."""
    figure = _figure(path.name)
    axes = figure.add_axes((0.1, 0.13, 0.85, 0.77))
    area = stats.object_area_px
    fine = np.asarray(area["histogram"]["counts"], dtype=np.int64)
    per_decade = area["histogram"]["bins_per_decade"]
    if fine.sum() == 0:
        _empty(axes, "no boxes")
    else:
        group = max(1, per_decade // bins_per_decade)
        fine = np.pad(fine, (0, (-fine.size) % group))
        coarse = fine.reshape(-1, group).sum(axis=1)
        edges = 10.0 ** (np.arange(coarse.size + 1) * group / per_decade)
        first = int(np.flatnonzero(coarse)[0])  # start the axis at the smallest box, not at 1 px²
        coarse, edges = coarse[first:], edges[first:]
        axes.bar(edges[:-1], coarse, width=np.diff(edges), align="edge", color=_BAR, edgecolor="white")
        axes.set_xscale("log")
        axes.axvline(area["median"], color="#c0392b", label=f"median {area['median']:g} px²")
        axes.legend()
        axes.set_xlabel("box area w·h (px², log scale)")
        axes.set_ylabel("symbols")
    axes.set_title("Object size")
    return _save(figure, path)


def plot_by_font(stats: DatasetStats, path: Path) -> Path:
    """Pages and mean symbols per page for each font."""
    figure = _figure(path.name)
    fonts = list(stats.by_font)
    left = figure.add_axes((0.08, 0.13, 0.4, 0.75))
    right = figure.add_axes((0.57, 0.13, 0.4, 0.75))
    if not fonts:
        _empty(left, "no pages")
        right.set_axis_off()
    else:
        positions = np.arange(len(fonts))
        left.bar(positions, [stats.by_font[f]["pages"] for f in fonts], color=_BAR)
        right.bar(positions, [stats.by_font[f]["symbols_per_page"] for f in fonts], color="#6a9f58")
        for axes, label in ((left, "pages"), (right, "symbols per page")):
            axes.set_xticks(positions, fonts, rotation=30, ha="right")
            axes.set_title(label)
    figure.suptitle("By font")
    return _save(figure, path)


def write_report_plots(stats: DatasetStats, out_dir: Path) -> list[Path]:
    """Every plot of the report, in ``out_dir``; the paths written."""
    return [plot_class_frequency(stats, out_dir / "class_frequency.png"),
            plot_symbols_per_page(stats, out_dir / "symbols_per_page.png"),
            plot_object_size(stats, out_dir / "object_size.png"),
            plot_by_font(stats, out_dir / "by_font.png")]
