"""Box overlaps for the evaluator: candidate pairs, IoU of aligned boxes and of oriented polygons,
and the obb_anns toolkit's enclosing-box overlap. Every function works on paired rows, not loops."""

from __future__ import annotations

import numpy as np

# Pairs built per chunk: big enough to keep numpy busy, small enough for ~100 MB of temporaries.
_PAIR_CHUNK = 1 << 21


def box_area(bbox_xyxy: np.ndarray) -> np.ndarray:
    """Area in px² of (n, 4) aligned boxes; degenerate boxes have area 0, never negative."""
    return np.clip(bbox_xyxy[:, 2] - bbox_xyxy[:, 0], 0, None) * np.clip(bbox_xyxy[:, 3] - bbox_xyxy[:, 1], 0, None)


def _intersection_wh(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return iw, ih


def aligned_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of paired (n, 4) xyxy boxes; 0 where the union is empty."""
    iw, ih = _intersection_wh(a, b)
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = box_area(a) + box_area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def enclosing_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The obb_anns toolkit's aligned overlap: intersection ÷ area of the smallest box enclosing both.

    Always ≤ IoU (the enclosing box contains the union), so thresholds are harder to reach: two
    equal 10×10 boxes shifted by 2 px along x have IoU 80/120 = 0.667 but overlap 80/120 as well,
    while a 2 px shift along x *and* y gives IoU 64/136 = 0.47 and overlap 64/144 = 0.44.
    """
    iw, ih = _intersection_wh(a, b)
    ew = np.maximum(a[:, 2], b[:, 2]) - np.minimum(a[:, 0], b[:, 0])
    eh = np.maximum(a[:, 3], b[:, 3]) - np.minimum(a[:, 1], b[:, 1])
    inter = np.where((iw >= 0) & (ih >= 0), iw * ih, 0.0)
    enclosing = ew * eh
    return np.divide(inter, enclosing, out=np.zeros_like(inter), where=enclosing > 0)


def corner_polygons(corners: np.ndarray) -> np.ndarray:
    """Shapely polygons of (n, 4, 2) corners; a corner order that crosses itself becomes its hull.

    Oriented boxes are rectangles, so the convex hull of the four corners is the box whatever
    order the corners were written in (clockwise, anticlockwise or crossed).
    """
    import shapely  # optional dependency: only oriented boxes need it

    polygons = shapely.polygons(corners)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        polygons[invalid] = shapely.convex_hull(shapely.multipoints(corners[invalid]))
    return polygons


def polygon_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of paired shapely polygons (arrays of equal length)."""
    import shapely

    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def same_key_overlapping_pairs(det_key: np.ndarray, det_xyxy: np.ndarray, gt_key: np.ndarray,
                               gt_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, truth) index pair with the same key whose aligned boxes share area.

    Keys encode (image, class): only those pairs can ever match, and only boxes whose aligned
    boxes overlap can have a non-zero IoU, so later work is done on these pairs alone. Oriented
    boxes pass their enclosing aligned boxes here. Pairs come out ordered by detection index.
    """
    d_order = np.argsort(det_key, kind="stable")
    g_order = np.argsort(gt_key, kind="stable")
    dk, gk = det_key[d_order], gt_key[g_order]
    keys = np.intersect1d(dk, gk)
    d_start, d_end = np.searchsorted(dk, keys, "left"), np.searchsorted(dk, keys, "right")
    g_start, g_end = np.searchsorted(gk, keys, "left"), np.searchsorted(gk, keys, "right")
    n_gt = g_end - g_start
    n_pairs = (d_end - d_start) * n_gt
    cum = np.cumsum(n_pairs)
    out_d: list[np.ndarray] = []
    out_g: list[np.ndarray] = []
    start = 0
    while start < len(keys):
        base = cum[start - 1] if start else 0
        end = max(start + 1, int(np.searchsorted(cum, base + _PAIR_CHUNK, "right")))
        counts = n_pairs[start:end]
        group = np.repeat(np.arange(end - start), counts)
        local = np.arange(counts.sum()) - (np.cumsum(counts) - counts)[group]
        per_group_gt = n_gt[start:end][group]
        d = d_order[d_start[start:end][group] + local // per_group_gt]
        g = g_order[g_start[start:end][group] + local % per_group_gt]
        iw, ih = _intersection_wh(det_xyxy[d], gt_xyxy[g])
        keep = (iw > 0) & (ih > 0)
        out_d.append(d[keep])
        out_g.append(g[keep])
        start = end
    if not out_d:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d, g = np.concatenate(out_d), np.concatenate(out_g)
    order = np.lexsort((g, d))
    return d[order], g[order]


def enclosing_xyxy(corners: np.ndarray) -> np.ndarray:
    """The (n, 4) aligned boxes enclosing (n, 4, 2) corners."""
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
