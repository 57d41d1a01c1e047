"""Dataset statistics: the paper's Table II (symbols per sheet and per class) and beyond, streamed
page by page from ``xml_annotations/`` (never the images); `deepscores.report` writes them out. Memory stays flat: per page we keep one int (its symbol count) and per symbol 8 bytes (box width,
height, class and page-size index) until ``exact_limit`` symbols; past that the per-symbol values
are folded into fixed histograms and the medians of object areas and relative sizes come from
those (``median_method`` says which). Standard deviations are population ones (``ddof=0``).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscores.classes import Catalogue, dataset_catalogue
from deepscores.errors import DeepScoresError
from deepscores.gallery import not_producible
from deepscores.stats_sources import _coco_pages, _page_groups, _PageData, _read_page

#: Above this many symbols the exact per-symbol arrays give way to histograms (8 B per symbol kept).
EXACT_LIMIT = 5_000_000
#: Object-area histogram: log-spaced bins, this many per decade, from 1 px² to 10^AREA_DECADES px²
#: (bin i covers [10^(i/B), 10^((i+1)/B))). At 100 per decade a histogram median is within 1.2 %.
AREA_BINS_PER_DECADE = 100
AREA_DECADES = 8
#: Relative box sizes (fraction of the page) are binned at 1/REL_BINS when histograms are used:
#: under half a pixel on a 1894-px-wide page.
REL_BINS = 4096
#: The skew counts: classes (among those present) with fewer instances than each of these.
RARE_THRESHOLDS = (18, 100, 1000)

#: Published figures of DeepScores (Tuggener et al. 2018, Table II and text).
PAPER = {
    "pages": 300_000, "symbols": 80_000_000, "classes": 123,
    "symbols_per_sheet": {"mean": 243, "std": 203, "max": 7_664, "min": 4, "median": 212},
    "symbols_per_class": {"mean": 650_000, "std": 4_000_000, "max": 44_000_000, "min": 18, "median": 20_000},
}


@dataclass(frozen=True)
class DatasetStats:
    """Everything ``stats.json`` holds, in its key order. Sizes in pixels unless named ``relative``."""

    dataset: str
    catalogue: str
    pages: int
    scores: int
    symbols: int
    classes_present: int
    hidden_symbols: int
    occluded_symbols: int
    std_kind: str
    symbols_per_sheet: dict[str, float | None]
    symbols_per_class: dict[str, float | None]
    skew: dict[str, Any]
    class_counts: dict[str, int]          # present classes, most frequent first
    classes_absent: list[str]             # catalogue classes with no instance that a score can make
    classes_unknown: list[str]            # names in the files that the catalogue lacks
    object_area_px: dict[str, Any]
    relative_size_per_class: dict[str, dict[str, float]]
    image_sizes: dict[str, int]           # "WxH" → pages
    symbols_per_page_histogram: dict[str, list[float]]
    by_font: dict[str, dict[str, float]]
    by_split: dict[str, dict[str, float]]
    by_source: dict[str, dict[str, float]]
    defects: list[dict[str, str]] = field(default_factory=list)
    #: Catalogue classes with no instance that no score can make (gallery.not_producible) → reason.
    classes_not_producible: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- accumulating -----------------------------------------------------------------------------------
class _Column:
    """A growing numpy column in chunks (1 Ki doubling up to 1 Mi entries): growth never copies what
    is stored, and a rare class does not hold a megabyte chunk."""

    CHUNK = 1 << 20

    def __init__(self, dtype: type) -> None:
        self.dtype, self.chunks, self.fill, self.length = dtype, [], 0, 0

    def extend(self, values: np.ndarray) -> None:
        self.length += values.size
        while values.size:
            if not self.chunks or self.fill == self.chunks[-1].size:
                size = min(self.CHUNK, 2 * self.chunks[-1].size) if self.chunks else 1024
                self.chunks.append(np.empty(size, self.dtype))
                self.fill = 0
            take = min(self.chunks[-1].size - self.fill, values.size)
            self.chunks[-1][self.fill:self.fill + take] = values[:take]
            self.fill += take
            values = values[take:]

    def array(self) -> np.ndarray:
        if not self.chunks:
            return np.empty(0, self.dtype)
        return np.concatenate(self.chunks[:-1] + [self.chunks[-1][:self.fill]])


class _Accumulator:
    #: Symbols buffered before the relative-size histograms are updated (one bincount per batch).
    REL_BATCH = 1 << 18

    def __init__(self, exact_limit: int) -> None:
        self.exact_limit = exact_limit
        self.class_index: dict[str, int] = {}
        self.class_counts = np.zeros(0, np.int64)
        self.page_counts = _Column(np.int32)
        self.score_ids: set[str] = set()
        self.sizes: dict[tuple[int, int], int] = {}  # page size → index stored per symbol
        self.size_pages: Counter = Counter()
        self.area_hist = np.zeros(AREA_BINS_PER_DECADE * AREA_DECADES + 1, np.int64)  # last bin: ≥ 10^decades
        self.zero_area = 0
        self.area_min: int | None = None
        self.area_max: int | None = None
        self.hidden = self.occluded = 0
        self.groups: dict[str, Counter] = {"font": Counter(), "split": Counter(), "source": Counter()}
        self.group_pages: dict[str, Counter] = {"font": Counter(), "split": Counter(), "source": Counter()}
        # Exact mode: per class, box widths, heights and page-size index (uint16 each: 6 B per symbol).
        self.exact: dict[int, tuple[_Column, _Column, _Column]] | None = {}
        self.rel_hist: np.ndarray | None = None  # (classes, 2, REL_BINS + 1) once histograms are used
        self.exact_pending: list[tuple[np.ndarray, ...]] = []
        self.exact_pending_n = 0
        self.rel_pending: list[np.ndarray] = []
        self.rel_pending_n = 0

    def _class_ids(self, names: list[str]) -> np.ndarray:
        index = self.class_index
        for name in names:
            if name not in index:
                index[name] = len(index)
        if len(index) > self.class_counts.size:
            self.class_counts = np.concatenate([self.class_counts, np.zeros(len(index) - self.class_counts.size, np.int64)])
        return np.fromiter((index[n] for n in names), np.int64, len(names))

    def add(self, page: _PageData, split: str, source: str) -> None:
        n = len(page.class_names)
        self.page_counts.extend(np.array([n], np.int32))
        self.score_ids.add(page.score_id or page.name.split("-p")[0])
        size = (page.width, page.height)
        size_id = self.sizes.setdefault(size, len(self.sizes))
        self.size_pages[size] += 1
        self.hidden += page.hidden
        self.occluded += page.occluded
        font = page.font or (page.name.rsplit("-", 1)[-1] if "-" in page.name else "unknown")
        for kind, group in (("font", font), ("split", split), ("source", source)):
            self.groups[kind][group] += n
            self.group_pages[kind][group] += 1
        if n == 0:
            return
        cls = self._class_ids(page.class_names)
        self.class_counts += np.bincount(cls, minlength=self.class_counts.size)
        w = np.clip(page.boxes[:, 2] - page.boxes[:, 0], 0, None)
        h = np.clip(page.boxes[:, 3] - page.boxes[:, 1], 0, None)
        area = w * h
        positive = area[area > 0]
        self.zero_area += n - positive.size
        if positive.size:
            self.area_min = int(positive.min()) if self.area_min is None else min(self.area_min, int(positive.min()))
            self.area_max = int(positive.max()) if self.area_max is None else max(self.area_max, int(positive.max()))
            self.area_hist += np.bincount(_area_bins(positive), minlength=self.area_hist.size)
        if self.exact is not None and (self.symbols() > self.exact_limit or max(size) > 65535 or len(self.sizes) > 65535):
            self._to_histograms()
        if self.exact is None:
            self._add_rel(cls, w / page.width, h / page.height)
            return
        self.exact_pending.append((cls, w, h, np.full(n, size_id, np.int64)))
        self.exact_pending_n += n
        if self.exact_pending_n >= self.REL_BATCH:
            self.flush_exact()

    def flush_exact(self) -> None:
        """Move the buffered symbols into their classes' columns: one sort per batch, not per page."""
        if self.exact is None or not self.exact_pending:
            return
        cls, w, h, size = (np.concatenate(parts) for parts in zip(*self.exact_pending))
        self.exact_pending, self.exact_pending_n = [], 0
        order = np.argsort(cls, kind="stable")
        classes, starts = np.unique(cls[order], return_index=True)
        ends = np.append(starts[1:], cls.size)
        w16, h16, s16 = (a[order].astype(np.uint16) for a in (w, h, size))
        for class_id, a, b in zip(classes.tolist(), starts.tolist(), ends.tolist()):
            columns = self.exact.get(class_id)
            if columns is None:
                columns = self.exact[class_id] = (_Column(np.uint16), _Column(np.uint16), _Column(np.uint16))
            for column, values in zip(columns, (w16, h16, s16)):
                column.extend(values[a:b])

    def symbols(self) -> int:
        return int(self.class_counts.sum())

    def _add_rel(self, cls: np.ndarray, rel_w: np.ndarray, rel_h: np.ndarray, flush: bool = False) -> None:
        bins_w = np.minimum((rel_w * REL_BINS).astype(np.int64), REL_BINS)
        bins_h = np.minimum((rel_h * REL_BINS).astype(np.int64), REL_BINS)
        # Flat index (class, axis, bin); bincount once per batch: per page it would sweep the whole table.
        self.rel_pending += [(cls * 2) * (REL_BINS + 1) + bins_w, (cls * 2 + 1) * (REL_BINS + 1) + bins_h]
        self.rel_pending_n += cls.size
        if flush or self.rel_pending_n >= self.REL_BATCH:
            self.flush_rel()

    def flush_rel(self) -> None:
        classes = len(self.class_index)
        if self.rel_hist is None or self.rel_hist.shape[0] < classes:
            grown = np.zeros((classes, 2, REL_BINS + 1), np.int64)
            if self.rel_hist is not None:
                grown[:self.rel_hist.shape[0]] = self.rel_hist
            self.rel_hist = grown
        if self.rel_pending:
            flat = np.concatenate(self.rel_pending)
            self.rel_hist += np.bincount(flat, minlength=self.rel_hist.size).reshape(self.rel_hist.shape)
        self.rel_pending, self.rel_pending_n = [], 0

    def _to_histograms(self) -> None:
        assert self.exact is not None
        self.flush_exact()
        dims = np.array(list(self.sizes), dtype=np.float64).reshape(-1, 2)
        exact, self.exact = self.exact, None
        for class_id in sorted(exact):
            w, h, size = (c.array() for c in exact.pop(class_id))  # freed class by class
            self._add_rel(np.full(w.size, class_id), w / dims[size, 0], h / dims[size, 1])
        self.flush_rel()


def _area_bins(area: np.ndarray) -> np.ndarray:
    bins = np.floor(np.log10(area) * AREA_BINS_PER_DECADE).astype(np.int64)
    return np.minimum(bins, AREA_BINS_PER_DECADE * AREA_DECADES)


def _summary(values: np.ndarray) -> dict[str, float | None]:
    """mean, population std, max, min, median (None for no values)."""
    if values.size == 0:
        return {"mean": None, "std": None, "max": None, "min": None, "median": None}
    values = values.astype(np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "max": float(values.max()),
            "min": float(values.min()), "median": float(np.median(values))}


def _hist_median(counts: np.ndarray, centres: np.ndarray) -> float | None:
    total = int(counts.sum())
    if total == 0:
        return None
    cumulative = np.cumsum(counts)
    # The lower and upper middle ranks, as np.median averages them for an even count.
    lo = int(np.searchsorted(cumulative, (total + 1) // 2))
    hi = int(np.searchsorted(cumulative, total // 2 + 1))
    return float((centres[lo] + centres[hi]) / 2)


# -- the whole dataset ------------------------------------------------------------------------------
def _page_files(root: Path) -> list[tuple[str, Path]]:
    folder = root / "xml_annotations"
    with os.scandir(folder) as entries:
        names = sorted(e.name[:-4] for e in entries if e.name.endswith(".xml") and not e.name.startswith("."))
    return [(name, folder / f"{name}.xml") for name in names]


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("stats"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)


def compute_stats(dataset_dir: str | Path, progress: bool = False, *, exact_limit: int = EXACT_LIMIT) -> DatasetStats:
    """Statistics of the dataset in ``dataset_dir``, read page by page from ``xml_annotations/``
    (or, without page XMLs, from ``coco/*.json``).

    A folder with neither is no dataset: ``DeepScoresError`` naming it. A page whose annotation
    file is missing (listed in splits or the manifest) or unreadable is a defect in the result and
    the rest is analysed. ``exact_limit``: symbols up to which medians are exact (see module doc).
    """
    root = Path(dataset_dir)
    has_xml, has_coco = (root / "xml_annotations").is_dir(), (root / "coco").is_dir()
    if not has_xml and not has_coco:
        raise DeepScoresError(f"{root}: not a deepscores dataset (no xml_annotations/ and no coco/ folder)")
    catalogue = dataset_catalogue(root)
    split_of, source_of, defects = _page_groups(root)
    acc = _Accumulator(exact_limit)
    seen: set[str] = set()
    if has_xml:
        files = _page_files(root)
        bar = _progress(progress)
        task = bar.add_task("stats", total=len(files)) if bar is not None else None
        if bar is not None:
            bar.start()
        try:
            for name, path in files:
                seen.add(name)
                try:
                    page = _read_page(path, name)
                except DeepScoresError as exc:
                    defects.append({"page": name, "file": f"xml_annotations/{name}.xml", "error": str(exc)})
                else:
                    acc.add(page, split_of.get(name, "none"), source_of.get(name, "unknown"))
                if bar is not None:
                    bar.advance(task)
        finally:
            if bar is not None:
                bar.stop()
        for name in sorted((set(split_of) | set(source_of)) - seen):
            path = root / "xml_annotations" / f"{name}.xml"
            defects.append({"page": name, "file": f"xml_annotations/{name}.xml", "error": f"{path}: no such file"})
    else:
        for name, page, error in _coco_pages(root):
            if page is None:
                defects.append({"page": "", "file": name, "error": error})
            else:
                acc.add(page, split_of.get(name, "none"), source_of.get(name, "unknown"))
    return _finish(root, catalogue, acc, defects)


def _group_table(symbols: Counter, pages: Counter) -> dict[str, dict[str, float]]:
    return {g: {"pages": pages[g], "symbols": symbols[g], "symbols_per_page": symbols[g] / pages[g]}
            for g in sorted(pages)}


def _finish(root: Path, catalogue: Catalogue, acc: _Accumulator, defects: list[dict[str, str]]) -> DatasetStats:
    names = sorted(acc.class_index, key=acc.class_index.__getitem__)
    counts = {n: int(acc.class_counts[acc.class_index[n]]) for n in names if acc.class_counts[acc.class_index[n]] > 0}
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    per_page = acc.page_counts.array()
    symbols = int(per_page.sum())
    present = np.array(list(ordered.values()), dtype=np.int64)
    top_k = math.ceil(0.1 * present.size)
    skew = {
        "top_class": next(iter(ordered), None),
        "top_class_share": float(present[0] / symbols) if symbols else None,
        "top_10pct_classes": top_k,
        "top_10pct_share": float(present[:top_k].sum() / symbols) if symbols else None,
        "classes_below": {str(t): int((present < t).sum()) for t in RARE_THRESHOLDS},
    }
    area, rel = _sizes(acc, names)
    if per_page.size:
        top = int(per_page.max())
        edges = np.linspace(0, max(top, 1), min(50, max(top, 1)) + 1)
        page_hist = {"edges": edges.tolist(), "counts": np.histogram(per_page, edges)[0].tolist()}
    else:
        page_hist = {"edges": [], "counts": []}
    return DatasetStats(
        dataset=str(root), catalogue=catalogue.name, pages=int(per_page.size), scores=len(acc.score_ids),
        symbols=symbols, classes_present=len(ordered), hidden_symbols=acc.hidden, occluded_symbols=acc.occluded,
        std_kind="population (ddof=0)", symbols_per_sheet=_summary(per_page), symbols_per_class=_summary(present),
        skew=skew, class_counts=ordered,
        classes_absent=[n for n in catalogue.names if n not in ordered and n not in not_producible(catalogue.name)],
        classes_not_producible={n: why for n, why in not_producible(catalogue.name).items() if n not in ordered},
        classes_unknown=sorted(n for n in ordered if n not in catalogue),
        object_area_px=area, relative_size_per_class=rel,
        image_sizes={f"{w}x{h}": n for (w, h), n in sorted(acc.size_pages.items())},
        symbols_per_page_histogram=page_hist,
        by_font=_group_table(acc.groups["font"], acc.group_pages["font"]),
        by_split=_group_table(acc.groups["split"], acc.group_pages["split"]),
        by_source=_group_table(acc.groups["source"], acc.group_pages["source"]),
        defects=defects,
    )


def _sizes(acc: _Accumulator, names: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Object areas (box w*h) and per-class median relative box sizes, exact or from histograms."""
    edges = 10.0 ** (np.arange(acc.area_hist.size + 1) / AREA_BINS_PER_DECADE)
    rel: dict[str, dict[str, float]] = {}
    if acc.exact is not None:
        acc.flush_exact()
        method = "exact"
        dims = np.array(list(acc.sizes), dtype=np.float64).reshape(-1, 2)
        areas = np.empty(sum(c[0].length for c in acc.exact.values()), np.int32)
        filled = 0
        for class_id in sorted(acc.exact):
            w, h, size = (c.array() for c in acc.exact[class_id])
            rel[names[class_id]] = {"median_width": float(np.median(w / dims[size, 0])),
                                    "median_height": float(np.median(h / dims[size, 1]))}
            areas[filled:filled + w.size] = w.astype(np.int32) * h
            filled += w.size
        positive = areas[areas > 0]
        median = float(np.median(positive)) if positive.size else None
    else:
        acc.flush_rel()
        method = f"histogram ({AREA_BINS_PER_DECADE} log bins per decade; relative sizes in 1/{REL_BINS} of the page)"
        centres = np.sqrt(edges[:-1] * edges[1:])  # geometric centre of a log bin
        median = _hist_median(acc.area_hist, centres)
        if median is not None:
            median = float(min(max(median, acc.area_min), acc.area_max))
        rel_centres = (np.arange(REL_BINS + 1) + 0.5) / REL_BINS
        for i, name in enumerate(names):
            hist = acc.rel_hist[i] if acc.rel_hist is not None and i < acc.rel_hist.shape[0] else None
            if hist is not None and hist[0].sum():
                rel[name] = {"median_width": _hist_median(hist[0], rel_centres),
                             "median_height": _hist_median(hist[1], rel_centres)}
    area = {"measure": "box area w*h in pixels (boxes of zero area excluded)", "min": acc.area_min,
            "median": median, "max": acc.area_max, "median_method": method, "zero_area_boxes": acc.zero_area,
            # Edges follow from the bin index (10^(i/B)); trailing empty bins are left out.
            "histogram": {"bins_per_decade": AREA_BINS_PER_DECADE, "first_edge": 1,
                          "counts": acc.area_hist[:int(np.flatnonzero(acc.area_hist).max(initial=-1)) + 1].tolist()}}
    return area, dict(sorted(rel.items()))


# -- the report -------------------------------------------------------------------------------------
