"""Whole pages through a detector that sees tiles: where the tiles lie, and how their detections become
one set of page boxes.

A page (≈ 1894×2679 px, 3307×4677 at 400 dpi) is covered by square tiles that overlap by at least
``overlap_px``; tiles at the right and bottom are shifted inwards rather than padded, so every tile but
those of a page smaller than a tile is all page. Merging (``merge_tile_detections``):

1. A box that touches a tile edge which is not a page edge (within ``edge_px``) is **cut**: the tile saw
   only part of the symbol. Every other box is **whole**.
2. Whole boxes of one class from different tiles with IoU ≥ ``iou`` are one symbol seen twice (it lay in
   the overlap): the more confident is kept.
3. A cut box mostly inside (≥ 50 % of its area) a kept whole box of its class is that symbol's piece and
   is dropped. Any symbol no larger than the overlap lies whole in some tile, so this is the usual case.
4. Cut boxes left over (a symbol larger than the overlap, or one the neighbouring tile missed) are
   joined with the overlapping cut boxes of their class from other tiles — pieces sharing at least 30 %
   of the smaller piece's area — into their union, with the best score of the pieces.

So a symbol crossing a seam comes out once and whole; the tests check both cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepscores.errors import OptionsError

MIN_SIDE_PX = 0.5


@dataclass(frozen=True)
class Tile:
    """A tile's window on the page: columns ``x0:x1``, rows ``y0:y1`` (end exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int


def tile_origins(length_px: int, tile_px: int, overlap_px: int) -> list[int]:
    """Start of each tile along one axis: as few tiles as keep neighbours ``overlap_px`` apart or more,
    spread evenly from 0 to ``length_px - tile_px``."""
    if tile_px <= overlap_px:
        raise OptionsError(f"tile size {tile_px} px must exceed the overlap {overlap_px} px")
    if length_px <= tile_px:
        return [0]
    count = math.ceil((length_px - overlap_px) / (tile_px - overlap_px))
    count = max(count, 2)
    span = length_px - tile_px
    return [round(i * span / (count - 1)) for i in range(count)]


def page_tiles(width_px: int, height_px: int, tile_px: int, overlap_px: int) -> list[Tile]:
    """Tiles covering the page, row by row; all of one size: ``tile_px`` square, or the page's own
    width or height where that is smaller."""
    return [Tile(x, y, min(x + tile_px, width_px), min(y + tile_px, height_px))
            for y in tile_origins(height_px, tile_px, overlap_px)
            for x in tile_origins(width_px, tile_px, overlap_px)]


def cut_tile(page: np.ndarray, tile: Tile, multiple_px: int = 32, fill: float = 0.0) -> np.ndarray:
    """The tile's pixels, padded with ``fill`` at the right and bottom to a multiple of ``multiple_px``
    (what a network with stride-32 features needs); boxes found in it keep the tile's coordinates."""
    window = page[..., tile.y0:tile.y1, tile.x0:tile.x1]
    height, width = (-(-n // multiple_px) * multiple_px for n in window.shape[-2:])
    if window.shape[-2:] == (height, width):
        return window
    out = np.full(window.shape[:-2] + (height, width), fill, dtype=page.dtype)
    out[..., :window.shape[-2], :window.shape[-1]] = window
    return out


@dataclass(frozen=True)
class BoxSet:
    """Detections as columns: ``boxes`` (n, 4) xyxy float px, ``scores`` (n,), ``labels`` (n,) class ids."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @staticmethod
    def empty() -> "BoxSet":
        return BoxSet(np.zeros((0, 4), np.float64), np.zeros(0, np.float64), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> "BoxSet":
        return BoxSet(self.boxes[index], self.scores[index], self.labels[index])


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection areas."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _is_cut(boxes: np.ndarray, tile: Tile, width_px: int, height_px: int, edge_px: float) -> np.ndarray:
    """Boxes touching an edge of ``tile`` that lies inside the page."""
    cut = np.zeros(len(boxes), dtype=bool)
    if tile.x0 > 0:
        cut |= boxes[:, 0] <= tile.x0 + edge_px
    if tile.y0 > 0:
        cut |= boxes[:, 1] <= tile.y0 + edge_px
    if tile.x1 < width_px:
        cut |= boxes[:, 2] >= tile.x1 - edge_px
    if tile.y1 < height_px:
        cut |= boxes[:, 3] >= tile.y1 - edge_px
    return cut


def merge_tile_detections(tiles: Sequence[Tile], detections: Sequence[BoxSet], width_px: int, height_px: int,
                          iou: float = 0.5, edge_px: float = 2.0) -> BoxSet:
    """One page's detections from its tiles' (each in tile coordinates); see the module doc for the rules."""
    if len(tiles) != len(detections):
        raise ValueError(f"{len(tiles)} tiles but {len(detections)} detection sets")
    parts, tile_of, cut_of = [], [], []
    for t, (tile, found) in enumerate(zip(tiles, detections)):
        boxes = found.boxes.astype(np.float64) + np.array([tile.x0, tile.y0, tile.x0, tile.y0], np.float64)
        boxes = np.clip(boxes, 0, [width_px, height_px, width_px, height_px])
        # Boxes under half a pixel wide or high (after clipping to the page) are no symbol.
        real = (boxes[:, 2] - boxes[:, 0] >= MIN_SIDE_PX) & (boxes[:, 3] - boxes[:, 1] >= MIN_SIDE_PX)
        boxes = boxes[real]
        parts.append(BoxSet(boxes, found.scores[real].astype(np.float64), found.labels[real].astype(np.int64)))
        tile_of.append(np.full(len(boxes), t))
        cut_of.append(_is_cut(boxes, tile, width_px, height_px, edge_px))
    every = BoxSet(np.concatenate([p.boxes for p in parts]).reshape(-1, 4),
                   np.concatenate([p.scores for p in parts]), np.concatenate([p.labels for p in parts]))
    tile_index = np.concatenate(tile_of).astype(np.int64)
    cut = np.concatenate(cut_of).astype(bool)
    kept: list[BoxSet] = []
    for label in np.unique(every.labels):
        mine = np.flatnonzero(every.labels == label)
        kept.append(_merge_class(every.take(mine), tile_index[mine], cut[mine], iou))
    if not kept:
        return BoxSet.empty()
    merged = BoxSet(np.concatenate([k.boxes for k in kept]), np.concatenate([k.scores for k in kept]),
                    np.concatenate([k.labels for k in kept]))
    # Page order: most confident first, ties by position, so the output does not depend on tile order.
    order = np.lexsort((merged.boxes[:, 0], merged.boxes[:, 1], -merged.scores))
    return merged.take(order)


def _merge_class(found: BoxSet, tile_index: np.ndarray, cut: np.ndarray, iou: float) -> BoxSet:
    # 2. whole boxes: greedy, most confident first; a box falls to a better one of another tile.
    whole = np.flatnonzero(~cut)
    whole = whole[np.lexsort((whole, -found.scores[whole]))]
    overlaps = _iou(found.boxes[whole], found.boxes[whole])
    alive = np.ones(len(whole), dtype=bool)
    for i in range(len(whole)):
        if alive[i]:
            twin = (overlaps[i] >= iou) & (tile_index[whole] != tile_index[whole[i]])
            twin[: i + 1] = False
            alive &= ~twin
    keep_whole = whole[alive]
    # 3. cut boxes that are pieces of a kept whole box.
    pieces = np.flatnonzero(cut)
    if len(pieces) and len(keep_whole):
        inside = _intersection(found.boxes[pieces], found.boxes[keep_whole]).max(axis=1)
        pieces = pieces[inside < 0.5 * np.maximum(_area(found.boxes[pieces]), 1e-12)]
    # 4. the remaining pieces: join pieces of one symbol seen by different tiles (connected components).
    boxes = [found.boxes[keep_whole]]
    scores = [found.scores[keep_whole]]
    if len(pieces):
        b = found.boxes[pieces]
        share = _intersection(b, b) >= 0.3 * np.maximum(np.minimum(_area(b)[:, None], _area(b)[None, :]), 1e-12)
        share &= tile_index[pieces][:, None] != tile_index[pieces][None, :]
        group = np.arange(len(pieces))
        changed = True
        while changed:  # label propagation: each piece takes the smallest label among its partners
            spread = np.where(share, group[None, :], len(pieces)).min(axis=1)
            new = np.minimum(group, spread)
            changed = bool(np.any(new != group))
            group = new
        for g in np.unique(group):
            members = group == g
            boxes.append(np.array([[b[members, 0].min(), b[members, 1].min(),
                                    b[members, 2].max(), b[members, 3].max()]]))
            scores.append(np.array([found.scores[pieces][members].max()]))
    all_boxes = np.concatenate(boxes).reshape(-1, 4)
    all_scores = np.concatenate(scores)
    return BoxSet(all_boxes, all_scores, np.full(len(all_scores), found.labels[0] if len(found) else 0, np.int64))
