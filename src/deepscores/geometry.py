"""Oriented boxes: the minimum-area rectangle around a symbol's ink pixels.

Pixels are unit squares (pixel-edge coordinates, as `Symbol.bbox_xyxy`): pixel ``(x, y)`` covers
``[x, x+1] × [y, y+1]``. The rectangle encloses every square of the mask, so it contains all the
symbol's ink, and it is never larger than the axis-aligned box of the same pixels (that box is one
of the rectangles the search considers).

Corner order is the published DeepScoresV2 one (read from `reference/deepscoresv2`'s sample, all
547 boxes): four corners ``[x0, y0, …, x3, y3]`` starting at the corner with the largest x (of two
on a vertical side: the lower one, largest y), then counter-clockwise as seen on the page (y
down): an upright box is bottom-right, top-right, top-left, bottom-left.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

OBox = tuple[float, float, float, float, float, float, float, float]

# x values closer than this count as equal when picking the first corner (shapely's float noise).
_TIE = 1e-6


def hull_candidates(mask: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
    """(k, 2) float points whose convex hull is that of all ink squares of ``mask`` (page pixels).

    Only the two ends of each row's run matter: every other pixel of a row lies between them. So
    each ink row gives its leftmost square's left corners and its rightmost square's right ones.
    Where consecutive rows end at the same column those corners lie on one vertical edge, so only
    the top of the first row and the bottom of the last are kept: a stem gives 4 points, not 300,
    which is what makes the rectangle search cheap on a dense page.
    """
    present = mask.any(axis=1)
    rows = np.flatnonzero(present)
    if rows.size == 0:
        return np.empty((0, 2))
    ink = mask[rows]
    left = ink.argmax(axis=1)
    right = mask.shape[1] - ink[:, ::-1].argmax(axis=1)  # one past the last ink column
    # A row continues the previous one when it is the next row and ends at the same column.
    follows = np.zeros(rows.size, bool)
    follows[1:] = rows[1:] == rows[:-1] + 1
    points = []
    for ends in (left, right):
        same_as_previous = follows.copy()
        same_as_previous[1:] &= ends[1:] == ends[:-1]
        same_as_next = np.zeros(rows.size, bool)
        same_as_next[:-1] = same_as_previous[1:]
        tops = ~same_as_previous
        bottoms = ~same_as_next
        points.append(np.column_stack([ends[tops], rows[tops]]))
        points.append(np.column_stack([ends[bottoms], rows[bottoms] + 1]))
    return (np.concatenate(points) + (x0, y0)).astype(float)


def order_corners(corners: np.ndarray) -> np.ndarray:
    """(n, 4, 2) rectangle corners in any cyclic order → the published order (module docstring)."""
    x, y = corners[..., 0], corners[..., 1]
    # Shoelace in page coordinates: negative = counter-clockwise as seen with y pointing down.
    signed = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    corners = np.where((signed > 0)[:, None, None], corners[:, ::-1], corners)
    x, y = corners[..., 0], corners[..., 1]
    at_right = x >= x.max(axis=1, keepdims=True) - _TIE
    start = np.where(at_right, y, -np.inf).argmax(axis=1)
    index = (start[:, None] + np.arange(4)) % 4
    return np.take_along_axis(corners, index[:, :, None], axis=1)


def hull_candidates_many(masks: Sequence[np.ndarray], origins: Sequence[tuple[int, int]]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Hull points of many masks at once: ``(k, 2)`` points and the ``(k,)`` index of the mask each
    belongs to, grouped by mask. Each mask's points are those of `hull_candidates`, in its order, less
    the corners `_inner` proves to lie inside the hull; the hull itself is the same.

    A dense page has two thousand symbols and the single-mask version is two dozen small numpy calls
    each; here masks of equal width are stacked and the row scans run once per width.
    """
    n = len(masks)
    heights = np.array([m.shape[0] for m in masks], np.int64)
    widths = np.array([m.shape[1] for m in masks], np.int64)
    owners, rows, lefts, rights = [], [], [], []
    by_width = np.argsort(widths, kind="stable")
    for group in np.split(by_width, np.flatnonzero(np.diff(widths[by_width])) + 1):
        if not group.size or widths[group[0]] == 0:
            continue
        stack = np.concatenate([masks[i] for i in group]) if group.size > 1 else masks[group[0]]
        hs = heights[group]
        present = stack.any(axis=1)
        ink = stack[present]
        owners.append(np.repeat(group, hs)[present])
        rows.append((np.arange(len(present)) - np.repeat(np.cumsum(hs) - hs, hs))[present])
        lefts.append(ink.argmax(axis=1))
        rights.append(widths[group[0]] - ink[:, ::-1].argmax(axis=1))  # one past the last ink column
    if not owners:
        return np.empty((0, 2)), np.empty(0, np.int64)
    owner, row, left, right = (np.concatenate(parts) for parts in (owners, rows, lefts, rights))
    order = np.lexsort((row, owner))
    owner, row, left, right = owner[order], row[order], left[order], right[order]
    follows = np.zeros(row.size, bool)
    follows[1:] = (owner[1:] == owner[:-1]) & (row[1:] == row[:-1] + 1)
    xs, ys, who = [], [], []
    for ends, inside in ((left, _inner(left, owner)), (right, _inner(-right, owner))):
        same_as_previous = follows.copy()
        same_as_previous[1:] &= ends[1:] == ends[:-1]
        same_as_next = np.zeros(row.size, bool)
        same_as_next[:-1] = same_as_previous[1:]
        for keep, dy in ((~same_as_previous & ~inside, 0), (~same_as_next & ~inside, 1)):
            xs.append(ends[keep])
            ys.append(row[keep] + dy)
            who.append(owner[keep])
    owner = np.concatenate(who)
    regroup = np.argsort(owner, kind="stable")  # per mask: left tops, left bottoms, right tops, right bottoms
    origin = np.asarray(origins, np.int64).reshape(n, 2)
    owner = owner[regroup]
    points = np.column_stack([np.concatenate(xs)[regroup] + origin[owner, 0],
                              np.concatenate(ys)[regroup] + origin[owner, 1]]).astype(float)
    return points, owner


def _inner(ends: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Rows (sorted by owner, then row) whose end corners lie inside their mask's hull: some row above
    and some row below reach at least as far out (``ends`` smaller or equal), so the segment between
    those rows' corners passes outside both corners of this row, whose other end is in the set too.
    Dropping them leaves the hull as it is: about an eighth of a real page's points (most symbols are
    convex), more on ragged shapes."""
    if not ends.size:
        return np.zeros(0, bool)
    # Running minima that restart at each mask: lift each mask's values above all later masks'.
    lift = (owner[-1] - owner).astype(np.float64) * (float(np.ptp(ends)) + 1.0)
    lifted = ends + lift
    start = np.ones(ends.size, bool)
    start[1:] = owner[1:] != owner[:-1]
    end = np.ones(ends.size, bool)
    end[:-1] = start[1:]
    above = np.full(ends.size, np.inf)
    above[1:] = np.minimum.accumulate(lifted)[:-1]
    above[start] = np.inf
    below = np.full(ends.size, np.inf)
    below[:-1] = np.minimum.accumulate((ends - lift)[::-1])[::-1][1:] + lift[:-1]
    below[end] = np.inf
    return (above - lift <= ends) & (below <= ends)


def min_area_rects(point_sets: Sequence[np.ndarray]) -> list[OBox | None]:
    """Minimum-area rectangles of many point sets at once (one vectorised shapely call).

    Each set must span an area (ink squares always do); an empty set gives None.
    """
    counts = [len(pts) for pts in point_sets]
    points = np.concatenate([pts for pts in point_sets if len(pts)]) if any(counts) else np.empty((0, 2))
    return min_area_rects_of(points, np.repeat(np.arange(len(point_sets)), counts), len(point_sets))


#: Boxes of small masks relative to their top-left pixel, by mask content. A page draws the same
#: notehead, dot, accidental or flag to the same pixels again and again (in 17 Bravura pages of a run,
#: 9,854 masks held 2,796 different ones), so most symbols skip the search. A box is always computed
#: relative to its mask and then moved, so a cached box and a fresh one are the same floats and the
#: output never depends on what a worker saw before.
_BOX_CACHE: dict[tuple, OBox | None] = {}
#: Masks up to this many pixels are cached: glyphs, not staves, beams or slurs, which rarely repeat.
_CACHE_MAX_PIXELS = 4096
#: Entries kept before the cache starts again (a few MB at most).
_CACHE_MAX_ENTRIES = 1 << 14
_MISSING = object()


def oriented_boxes(masks: Sequence[np.ndarray], origins: Sequence[tuple[int, int]]) -> list[OBox | None]:
    """The minimum-area rectangle of every mask's ink squares (`min_area_rect` of each, all at once),
    mask ``i``'s top-left pixel being page pixel ``origins[i]``."""
    relative: list[OBox | None] = [None] * len(masks)
    keys: list[tuple | None] = [None] * len(masks)
    todo = []
    for i, mask in enumerate(masks):
        if mask.size <= _CACHE_MAX_PIXELS:
            keys[i] = key = (mask.shape, mask.dtype.str, mask.tobytes())
            box = _BOX_CACHE.get(key, _MISSING)
            if box is not _MISSING:
                relative[i] = box  # type: ignore[assignment]
                continue
        todo.append(i)
    if todo:
        points, owner = hull_candidates_many([masks[i] for i in todo], [(0, 0)] * len(todo))
        if len(_BOX_CACHE) > _CACHE_MAX_ENTRIES:
            _BOX_CACHE.clear()
        for i, box in zip(todo, min_area_rects_of(points, owner, len(todo))):
            relative[i] = box
            if keys[i] is not None:
                _BOX_CACHE[keys[i]] = box
    return [None if box is None else _moved(box, x0, y0) for box, (x0, y0) in zip(relative, origins)]


def _moved(box: OBox, x0: int, y0: int) -> OBox:
    return (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0, box[4] + x0, box[5] + y0, box[6] + x0, box[7] + y0)


def min_area_rects_of(points: np.ndarray, owner: np.ndarray, n: int) -> list[OBox | None]:
    """`min_area_rects` of ``n`` sets given as ``points`` grouped by their set index ``owner``.

    The sets `hull_candidates` makes of solid rectangles (stems, ledger lines, barlines: a third of
    a v2 page) are their four corners; they are their own rectangle and skip the search.
    """
    result: list[OBox | None] = [None] * n
    if not len(points):
        return result
    counts = np.bincount(owner, minlength=n)
    present = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[present]  # each set's points are contiguous
    lo = np.full((n, 2), np.inf)
    hi = np.full((n, 2), -np.inf)
    lo[present] = np.minimum.reduceat(points, starts)
    hi[present] = np.maximum.reduceat(points, starts)
    # Four points on the four distinct corners of their bounding box: an upright solid rectangle.
    corner = (points[:, 0] == hi[owner, 0]) * 2 + (points[:, 1] == hi[owner, 1])
    on_box = ((points == lo[owner]) | (points == hi[owner])).all(axis=1)
    seen = np.zeros(n, np.int64)
    seen[present] = np.bitwise_or.reduceat(np.where(on_box, 1 << corner, 16), starts)
    upright = (counts == 4) & (seen == 15)
    for i in np.flatnonzero(upright):
        (x0, y0), (x1, y1) = lo[i], hi[i]
        result[i] = (float(x1), float(y1), float(x1), float(y0), float(x0), float(y0), float(x0), float(y1))
    search = present[~upright[present]]
    if not search.size:
        return result
    take = ~upright[owner]
    local = np.searchsorted(search, owner[take])  # owners ascend, so each set stays contiguous
    # A line string through the points has their hull and is built straight from the coordinates
    # (a multipoint makes a geometry per point first, which cost as much as the search itself).
    rects = shapely.minimum_rotated_rectangle(shapely.linestrings(points[take], indices=local))
    coords, which = shapely.get_coordinates(rects, return_index=True)
    # A rectangle comes back as a closed ring of 5 coordinates; drop the repeated first one.
    if not np.all(np.bincount(which, minlength=search.size) == 5):
        raise ValueError("degenerate oriented box: a point set spans no area")
    corners = order_corners(coords.reshape(-1, 5, 2)[:, :4])
    for i, box in zip(search.tolist(), corners.reshape(-1, 8).tolist()):
        result[i] = tuple(box)  # type: ignore[assignment]
    return result


def min_area_rect(mask_crop: np.ndarray, x0: int, y0: int) -> OBox | None:
    """The minimum-area rectangle enclosing every ink pixel (as a square) of a mask whose
    top-left pixel is page pixel ``(x0, y0)``; 8 floats in the published corner order, or None
    for an empty mask."""
    box = min_area_rects([hull_candidates(mask_crop)])[0]
    return None if box is None else _moved(box, x0, y0)


def obb_angle_deg(obox: Sequence[float]) -> float:
    """Angle of the box's longer side against the page's x axis, in degrees, in (-90, 90]."""
    p = np.asarray(obox, float).reshape(4, 2)
    a, b = p[1] - p[0], p[2] - p[1]
    side = a if np.hypot(*a) >= np.hypot(*b) else b
    angle = float(np.degrees(np.arctan2(side[1], side[0])))
    return angle - 180.0 if angle > 90.0 else angle + 180.0 if angle <= -90.0 else angle


def contains_squares(obox: Sequence[float], mask: np.ndarray, x0: int, y0: int, tol: float = 1e-6) -> bool:
    """True when every ink square of ``mask`` (top-left pixel at page ``(x0, y0)``) lies in ``obox``."""
    corners = hull_candidates(mask, x0, y0)
    if not len(corners):
        return True
    p = np.asarray(obox, float).reshape(4, 2)
    # Inside a convex polygon = on the same side of every edge (edges taken in cyclic order).
    edges = np.roll(p, -1, axis=0) - p
    rel = corners[:, None, :] - p[None]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    return bool(np.all(cross >= -tol) or np.all(cross <= tol))
