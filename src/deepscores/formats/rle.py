"""Per-instance full-extent masks as COCO run-length encodings: ``instance_rle/<page>.json.gz``.

The instance PNG keeps one owner per pixel, so a symbol covered by another loses pixels there. COCO
``segm`` evaluation and the obb_anns ``area`` want each symbol's whole mask, overlaps kept; this
sidecar stores them so that finalize builds both without re-rendering a page.

File layout (compact JSON, gzip-compressed with no timestamp, so equal masks give equal bytes)::

    {"size": [H, W], "counts": ["<COCO compressed RLE of symbol 1>", ...] | null}

``counts[i]`` belongs to ``symbols[i]`` (instance id ``i + 1``) and is the pycocotools compressed
string of the full page mask (column-major, as ``pycocotools.mask.encode`` writes it), so
``{"size": [H, W], "counts": counts[i]}`` is a ready COCO ``segmentation``. ``counts`` is null
when the page was produced without instance masks.

Size, measured on Verovio pages (Leipzig): a Bach chorale page (537 symbols) 202 KiB as JSON,
13 KiB gzipped; a Joplin piano page (1778 symbols) 349 KiB / 42 KiB. `encode_instances` does a page
in one pass (37 ms for 2,074 symbols; 77 ms one by one with `encode_instance`).
Page-level strings repeat a long zero run per column, which gzip removes; so the file is gzipped.

Runs are computed from each symbol's box-local mask, never from a page-sized array per symbol:
a page holds hundreds of symbols and a page mask is megabytes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_util

from deepscores.formats import FormatError
from deepscores.formats.atomic import atomic_write_bytes

#: The folder, relative to the dataset root, the sidecars live in.
RLE_FOLDER = "instance_rle"

InstanceMask = tuple[tuple[int, int, int, int], np.ndarray]


def _on_page(bbox_xyxy: Sequence[int], local_mask: np.ndarray, height: int, width: int
             ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The part of ``local_mask`` (placed at ``bbox_xyxy``) that lies on the page, and that part's box;
    a box entirely off the page gives an empty mask at (0, 0, 0, 0). Clipping first keeps every run
    on the page. A mask that does not fit its box is a ValueError."""
    x0, y0, x1, y1 = (int(v) for v in bbox_xyxy)
    local = np.asarray(local_mask, dtype=bool)
    if local.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"mask of shape {local.shape} does not fit box {tuple(bbox_xyxy)}")
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return local[:0, :0], (0, 0, 0, 0)
    return local[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], (cx0, cy0, cx1, cy1)


def page_counts(bbox_xyxy: Sequence[int], local_mask: np.ndarray, height: int, width: int) -> list[int]:
    """Uncompressed COCO RLE counts (column-major, starting with a run of zeros) of the page mask that
    is ``local_mask`` placed at ``bbox_xyxy`` (pixel edges, end exclusive) on an ``height × width`` page.

    Parts of the box outside the page are cut off.
    """
    local, (cx0, cy0, cx1, cy1) = _on_page(bbox_xyxy, local_mask, height, width)
    if cx1 <= cx0:
        return [height * width]
    box_h = cy1 - cy0
    # A zero row above and below each column: no run of ones then crosses from one column to the
    # next, and every run's start and end fall inside one column.
    padded = np.zeros((box_h + 2, cx1 - cx0), dtype=np.int8)
    padded[1:-1] = local
    flat = padded.ravel(order="F")
    edges = np.flatnonzero(np.diff(flat))  # index before each change
    starts, ends = edges[0::2] + 1, edges[1::2] + 1
    if starts.size == 0:
        return [height * width]
    column_len = box_h + 2

    def to_page(index: np.ndarray) -> np.ndarray:
        column, row = np.divmod(index, column_len)
        return (cx0 + column).astype(np.int64) * height + cy0 + row - 1

    page_starts, page_ends = to_page(starts), to_page(ends)
    # A box as tall as the page puts one column's last run right against the next column's first;
    # COCO codes that as one run, so the seam between them goes.
    seam = page_ends[:-1] == page_starts[1:]
    page_starts = page_starts[np.concatenate(([True], ~seam))]
    page_ends = page_ends[np.concatenate((~seam, [True]))]
    bounds = np.empty(2 * page_starts.size, dtype=np.int64)
    bounds[0::2], bounds[1::2] = page_starts, page_ends
    counts = np.diff(np.concatenate(([0], bounds, [height * width]))).tolist()
    # COCO ends the counts with the last run of ones when the mask reaches the page's last pixel.
    return counts[:-1] if counts[-1] == 0 else counts


def encode_instance(bbox_xyxy: Sequence[int], local_mask: np.ndarray, height: int, width: int) -> str:
    """The compressed COCO RLE string of one instance's page mask (see `page_counts`)."""
    rle = mask_util.frPyObjects({"size": [height, width], "counts": page_counts(bbox_xyxy, local_mask, height, width)},
                                height, width)
    return rle["counts"].decode("ascii")


def encode_instances(masks: Sequence[InstanceMask], height: int, width: int) -> list[str]:
    """`encode_instance` of every ``(bbox_xyxy, local mask)`` pair of a page, at once.

    One instance at a time costs two dozen small numpy calls; a v2 page has two thousand instances.
    Here every clipped mask goes column by column, with a zero row above and below each column (as
    in `page_counts`), into one flat array: one `diff` finds every run of every instance, one set of
    array operations moves them to page coordinates, and pycocotools compresses the whole list in C.
    The strings are the ones `encode_instance` gives (tests/test_obb_anns.py).
    """
    n = len(masks)
    if n == 0:
        return []
    columns, offsets, layout = [], [0], []
    for box, mask in masks:
        local, (cx0, cy0, cx1, cy1) = _on_page(box, mask, height, width)
        padded = np.zeros((cx1 - cx0, cy1 - cy0 + 2), np.int8)  # column-major: a row per page column
        padded[:, 1:-1] = local.T
        columns.append(padded.ravel())
        offsets.append(offsets[-1] + padded.size)
        layout.append((cx0, cy0, cy1 - cy0 + 2))
    flat = np.concatenate(columns)
    edges = np.flatnonzero(np.diff(flat)) + 1  # first index after each change
    starts, ends = edges[0::2], edges[1::2]    # runs never cross a column's zero padding
    owner = np.searchsorted(np.asarray(offsets[1:]), starts, side="right")
    cx0, cy0, column_len = (np.array(v, np.int64)[owner] for v in zip(*layout))
    base = np.asarray(offsets[:-1], np.int64)[owner]

    def to_page(index: np.ndarray) -> np.ndarray:
        column, row = np.divmod(index - base, column_len)
        return (cx0 + column) * height + cy0 + row - 1

    page_starts, page_ends = to_page(starts), to_page(ends)
    # A box as tall as the page puts one column's last run right against the next column's first;
    # COCO codes that as one run, so the seam between them goes (within one instance only).
    seam = (page_ends[:-1] == page_starts[1:]) & (owner[:-1] == owner[1:])
    keep_start = np.concatenate(([True], ~seam))
    keep_end = np.concatenate((~seam, [True]))
    page_starts, start_owner = page_starts[keep_start], owner[keep_start]
    page_ends = page_ends[keep_end]
    # Per instance: [0, s1, e1, s2, e2, …, H·W] differenced = zeros, ones, zeros, … ; a mask that
    # reaches the page's last pixel ends on its run of ones (the final zero count is dropped).
    runs = np.bincount(start_owner, minlength=n)
    size = 2 * runs + 2
    head = np.cumsum(size) - size
    bounds = np.empty(int(size.sum()), np.int64)
    bounds[head] = 0
    bounds[head + size - 1] = height * width
    inner = np.ones(bounds.size, bool)
    inner[head] = inner[head + size - 1] = False
    runs_at = np.empty(2 * page_starts.size, np.int64)
    runs_at[0::2], runs_at[1::2] = page_starts, page_ends
    bounds[inner] = runs_at
    steps = np.diff(bounds)  # across a boundary between instances: junk, never read
    # A mask that reaches the page's last pixel ends on its run of ones: its last zero count goes.
    last = head + size - 2
    length = size - 1 - ((steps[last] == 0) & (size > 2))
    objects = [{"size": [height, width], "counts": steps[h:h + k]} for h, k in zip(head.tolist(), length.tolist())]
    return [rle["counts"].decode("ascii") for rle in mask_util.frPyObjects(objects, height, width)]


def rle_json(masks: Sequence[InstanceMask] | None, height: int, width: int) -> str:
    """The sidecar text of a page whose symbols have these ``(bbox_xyxy, local mask)`` pairs, or None."""
    counts = None if masks is None else encode_instances(masks, height, width)
    return json.dumps({"size": [height, width], "counts": counts}, separators=(",", ":")) + "\n"


def write_rle(path: str | Path, masks: Sequence[InstanceMask] | None, height: int, width: int) -> None:
    """Write ``rle_json(masks, height, width)``, gzipped, to ``path`` atomically."""
    atomic_write_bytes(path, gzip.compress(rle_json(masks, height, width).encode("utf-8"), compresslevel=6, mtime=0))


def read_rle(path: str | Path) -> list[dict[str, Any]] | None:
    """The COCO ``segmentation`` dicts of a page's instances, in symbol order; None when the file is
    missing (older datasets) or was written without masks. A damaged file raises ``FormatError``."""
    try:
        data = json.loads(gzip.decompress(Path(path).read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(path, f"cannot read instance RLE: {exc}") from None
    try:
        height, width = (int(v) for v in data["size"])
        counts = data["counts"]
        if counts is None:
            return None
        if not all(isinstance(c, str) for c in counts):
            raise TypeError("counts must be strings")
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(path, f"not an instance RLE file ({type(exc).__name__}: {exc})") from None
    return [{"size": [height, width], "counts": c} for c in counts]


def rle_area(segmentation: dict[str, Any]) -> int:
    """Pixel count of one COCO RLE ``segmentation``."""
    return int(mask_util.area({"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}))
