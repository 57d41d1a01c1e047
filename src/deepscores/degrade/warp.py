"""Geometric steps → one transform, applied to the image and the label maps together; boxes,
oriented boxes and masks then recomputed from the warped instance map.

Boxes are never moved by transforming old corners (that inflates a rotated box): after the warp a
symbol's box is the pixel extent of its instance in the warped instance map, its oriented box the
minimum-area rectangle of those pixels. The class mask is the warped instance map looked up
through the kept symbols' class ids (the same as warping the class mask nearest-neighbour, and it
cannot disagree with the instance map).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import cv2
import numpy as np
from scipy import ndimage

from deepscores.degrade.effects import Step
from deepscores.geometry import oriented_boxes
from deepscores.page import BACKGROUND_CLASS, Page

#: A symbol with fewer pixels than this left in the warped instance map is dropped ("too_small").
MIN_SYMBOL_PX = 4
#: A symbol keeping less than this fraction of its pixels (cut by the page edge, or squeezed) is
#: dropped ("cut"): its recomputed box would show only a part of it.
MIN_KEPT_FRACTION = 0.5
#: The dense map of a non-linear warp is computed on a grid of this step (px) and interpolated.
_GRID_PX = 8


def compose_matrix(steps: list[Step]) -> np.ndarray | None:
    """The forward homography of a list of homography steps (first applied first), or None if
    any step is a displacement field."""
    if any(s.matrix is None for s in steps):
        return None
    total = np.eye(3)
    for s in steps:
        total = s.matrix @ total
    return total


def inverse_points(steps: list[Step], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Page points after all steps → the source points they come from."""
    for s in reversed(steps):
        if s.matrix is not None:
            inv = np.linalg.inv(s.matrix)
            w = inv[2, 0] * x + inv[2, 1] * y + inv[2, 2]
            x, y = (inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]) / w, (inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]) / w
        else:
            dx, dy = s.field(x, y)
            x, y = x + dx, y + dy
    return x, y


def forward_point(steps: list[Step], x_edge: float, y_edge: float) -> tuple[float, float]:
    """Where a point (pixel-edge coordinates, as boxes) goes under homography steps."""
    m = compose_matrix(steps)
    if m is None:
        raise ValueError("forward_point needs homography steps only")
    v = m @ np.array([x_edge - 0.5, y_edge - 0.5, 1.0])
    return float(v[0] / v[2] + 0.5), float(v[1] / v[2] + 0.5)


def _dense_maps(steps: list[Step], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of every page pixel, computed on a coarse grid and interpolated bilinearly
    (the warp is smooth: the grid's error is far below a pixel, and image and labels share the map)."""
    h, w = shape
    gh, gw = -(-h // _GRID_PX) + 1, -(-w // _GRID_PX) + 1
    # Grid points where cv2.resize's bilinear interpolation puts its samples, so the map is exact there.
    gy = (np.arange(gh, dtype=np.float64) + 0.5) * h / gh - 0.5
    gx = (np.arange(gw, dtype=np.float64) + 0.5) * w / gw - 0.5
    x, y = np.meshgrid(gx, gy)
    sx, sy = inverse_points(steps, x, y)
    map_x = cv2.resize(sx.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    map_y = cv2.resize(sy.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return map_x, map_y


def warp_arrays(steps: list[Step], image: np.ndarray, instance_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image (bilinear) and the instance map (nearest neighbour) under one transform."""
    h, w = image.shape
    background = next((s.background for s in steps if s.background is not None), None)
    border = dict(borderMode=cv2.BORDER_REPLICATE) if background is None else \
        dict(borderMode=cv2.BORDER_CONSTANT, borderValue=int(round(background)))
    label_border = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    matrix = compose_matrix(steps)
    if matrix is not None and np.allclose(matrix[2], (0, 0, 1), rtol=0, atol=1e-12):
        # Rotation and skew are affine: OpenCV's affine warp is about twice as fast as the projective one.
        warped = cv2.warpAffine(image, matrix[:2], (w, h), flags=cv2.INTER_LINEAR, **border)
        labels = cv2.warpAffine(instance_map, matrix[:2], (w, h), flags=cv2.INTER_NEAREST, **label_border)
    elif matrix is not None:
        warped = cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR, **border)
        labels = cv2.warpPerspective(instance_map, matrix, (w, h), flags=cv2.INTER_NEAREST, **label_border)
    else:
        map_x, map_y = _dense_maps(steps, (h, w))
        warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, **border)
        labels = cv2.remap(instance_map, map_x, map_y, cv2.INTER_NEAREST, **label_border)
    return warped, labels


def _counts(instance_map: np.ndarray, n: int) -> np.ndarray:
    """Pixels per instance id 0..n. OpenCV's histogram (one bin per id; float32 counts, exact below
    2^24 pixels per id) is four times faster than np.bincount on a page."""
    hist = cv2.calcHist([instance_map], [0], None, [n + 1], [0, n + 1])
    return hist.ravel().astype(np.int64)


def relabel(page: Page, image: np.ndarray, warped_instances: np.ndarray) -> tuple[Page, Counter]:
    """The page after a geometric warp: symbols re-derived from ``warped_instances``.

    Dropped (and counted by reason): ``hidden`` (no pixel even before the warp: nothing to place),
    ``off_page`` (every pixel left the page), ``too_small`` (fewer than MIN_SYMBOL_PX pixels),
    ``cut`` (fewer than MIN_KEPT_FRACTION of its pixels kept). Instance ids are renumbered 1..n in
    the old order. With oriented boxes on the page, each kept symbol's oriented box, ink area and
    mask come from its warped pixels (overlaps are not kept through a warp).
    """
    n = len(page.symbols)
    before, after = _counts(page.instance_map, n), _counts(warped_instances, n)
    extents = ndimage.find_objects(warped_instances, max_label=n) if n else []
    dropped: Counter = Counter()
    lut = np.zeros(max(n + 1, int(warped_instances.max()) + 1), np.uint16)
    kept: list[tuple[int, object, tuple[int, int, int, int]]] = []
    for index, (symbol, ext) in enumerate(zip(page.symbols, extents), start=1):
        if before[index] == 0:
            reason = "hidden"
        elif after[index] == 0:
            reason = "off_page"
        elif after[index] < MIN_SYMBOL_PX:
            reason = "too_small"
        elif after[index] < MIN_KEPT_FRACTION * before[index]:
            reason = "cut"
        else:
            reason = None
        if reason:
            dropped[reason] += 1
            continue
        lut[index] = len(kept) + 1
        ys, xs = ext
        kept.append((index, symbol, (xs.start, ys.start, xs.stop, ys.stop)))
    # Usually nothing is dropped and the ids stay as they are: one look-up pass saved.
    instance_map = warped_instances if len(kept) == n else lut[warped_instances]
    class_lut = np.full(len(kept) + 1, BACKGROUND_CLASS, np.uint8)
    class_lut[1:] = [s.class_id for _, s, _ in kept]
    class_mask = class_lut[instance_map]
    oriented = any(s.o_bbox is not None for s in page.symbols)
    masks = [instance_map[y0:y1, x0:x1] == new for new, (_, _, (x0, y0, x1, y1)) in enumerate(kept, start=1)] if oriented else []
    o_bboxes = oriented_boxes(masks, [b[:2] for _, _, b in kept]) if oriented else []
    symbols = []
    for new, (old, symbol, box) in enumerate(kept, start=1):
        changes = dict(bbox_xyxy=tuple(int(v) for v in box), instance_id=new, hidden=False)
        if oriented:
            changes.update(o_bbox=o_bboxes[new - 1], area_px=int(masks[new - 1].sum()))
        symbols.append(replace(symbol, **changes))
    warped = replace(page, image=image, class_mask=class_mask, instance_map=instance_map, symbols=symbols,
                     instance_masks=[(s.bbox_xyxy, m) for s, m in zip(symbols, masks)] if oriented else None)
    return warped, dropped
