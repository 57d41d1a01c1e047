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


def min_area_rects(point_sets: Sequence[np.ndarray]) -> list[OBox | None]:
    """Minimum-area rectangles of many point sets at once (one vectorised shapely call).

    Each set must span an area (ink squares always do); an empty set gives None.
    """
    result: list[OBox | None] = [None] * len(point_sets)
    present = [i for i, pts in enumerate(point_sets) if len(pts)]
    if not present:
        return result
    points = np.concatenate([point_sets[i] for i in present])
    owner = np.repeat(np.arange(len(present)), [len(point_sets[i]) for i in present])
    rects = shapely.minimum_rotated_rectangle(shapely.multipoints(points, indices=owner))
    coords, which = shapely.get_coordinates(rects, return_index=True)
    # A rectangle comes back as a closed ring of 5 coordinates; drop the repeated first one.
    counts = np.bincount(which, minlength=len(present))
    if not np.all(counts == 5):
        raise ValueError("degenerate oriented box: a point set spans no area")
    corners = order_corners(coords.reshape(-1, 5, 2)[:, :4])
    for i, box in zip(present, corners.reshape(-1, 8)):
        result[i] = tuple(float(v) for v in box)  # type: ignore[assignment]
    return result


def min_area_rect(mask_crop: np.ndarray, x0: int, y0: int) -> OBox | None:
    """The minimum-area rectangle enclosing every ink pixel (as a square) of a mask whose
    top-left pixel is page pixel ``(x0, y0)``; 8 floats in the published corner order, or None
    for an empty mask."""
    return min_area_rects([hull_candidates(mask_crop, x0, y0)])[0]


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
