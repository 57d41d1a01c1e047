"""Full-extent instance masks and oriented boxes (Symbol.o_bbox, Symbol.area_px, Page.instance_masks)."""

from __future__ import annotations

import json
import math
import re

import music21
import numpy as np
import pytest
import shapely

from deepscores.annotate import annotate, score_pages
from deepscores.classes import load_catalogue
from deepscores.corpus import load_score
from deepscores.engrave import EngraveOptions, engrave
from deepscores import geometry
from deepscores.geometry import (contains_squares, hull_candidates, hull_candidates_many, min_area_rect, obb_angle_deg,
                                 order_corners, oriented_boxes)
from tests.musicxml import note, score, write

from tests.reference import REFERENCE
V2 = "deepscoresv2"


def _area(obox) -> float:
    return shapely.Polygon(np.asarray(obox, float).reshape(4, 2)).area


# -- geometry on its own ---------------------------------------------------------------------------
def test_upright_box_is_the_pixel_edges_in_published_order():
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    # Bottom-right, top-right, top-left, bottom-left: pixel edges of columns 2..4, rows 1..2.
    assert min_area_rect(mask, 10, 20) == (15.0, 23.0, 15.0, 21.0, 12.0, 21.0, 12.0, 23.0)
    assert min_area_rect(np.zeros((3, 3), bool), 0, 0) is None


def test_hull_candidates_keep_the_hull_of_every_square():
    rng = np.random.default_rng(7)
    for _ in range(200):
        mask = rng.random((rng.integers(1, 15), rng.integers(1, 15))) < rng.random()
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        squares = np.concatenate([np.column_stack([xs + dx, ys + dy]) for dx in (0, 1) for dy in (0, 1)])
        full = shapely.convex_hull(shapely.multipoints(squares.astype(float)))
        assert full.equals(shapely.convex_hull(shapely.multipoints(hull_candidates(mask))))
        box = min_area_rect(mask, 0, 0)
        assert contains_squares(box, mask, 0, 0, tol=1e-6)
        assert _area(box) <= mask.shape[0] * mask.shape[1] + 1e-6


def test_many_masks_at_once_give_each_masks_own_box():
    """The batched path (masks grouped by width, inner rows pruned, solid rectangles short-cut) gives
    exactly the box of each mask alone, and a hull no different from all its squares'."""
    rng = np.random.default_rng(3)
    masks, origins = [], []
    for k in range(400):
        h, w = int(rng.integers(0, 18)), int(rng.integers(0, 18))
        mask = rng.random((h, w)) < rng.random()
        if k % 4 == 0 and h > 2 and w > 2:  # a solid rectangle with an empty border, like a stem's grown box
            mask = np.zeros((h, w), bool)
            mask[1:-1, 1:-1] = True
        masks.append(mask)
        origins.append((int(rng.integers(0, 900)), int(rng.integers(0, 900))))
    geometry._BOX_CACHE.clear()
    boxes = oriented_boxes(masks, origins)
    # Again, from the cache, at other places: the same floats as a fresh search there.
    moved = [(x + 37, y + 5) for x, y in origins]
    assert len(geometry._BOX_CACHE) > 300
    again = oriented_boxes(masks, moved)
    points, owner = hull_candidates_many(masks, origins)
    assert np.all(np.diff(owner) >= 0)
    for i, (mask, (x0, y0)) in enumerate(zip(masks, origins)):
        assert boxes[i] == min_area_rect(mask, x0, y0)
        assert again[i] == min_area_rect(mask, x0 + 37, y0 + 5)
        if mask.any():
            alone = shapely.convex_hull(shapely.multipoints(hull_candidates(mask, x0, y0)))
            assert shapely.convex_hull(shapely.multipoints(points[owner == i])).equals(alone)
        else:
            assert boxes[i] is None and not np.any(owner == i)
    # Pruning: a notch's corners, and corners with rows reaching as far out above and below, go;
    # the square's four corners are what is left.
    notched = np.ones((5, 5), bool)
    notched[2, :2] = False
    pts, _ = hull_candidates_many([notched], [(0, 0)])
    assert len(hull_candidates(notched)) == 8
    assert sorted(map(tuple, pts.tolist())) == [(0.0, 0.0), (0.0, 5.0), (5.0, 0.0), (5.0, 5.0)]
    assert oriented_boxes([notched], [(0, 0)]) == [(5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 5.0)]


def test_a_thin_diagonal_gets_a_rotated_box_of_its_slope():
    mask = np.zeros((40, 120), bool)
    for x in range(120):
        y = round(x * 0.25)
        mask[y:y + 4, x] = True
    box = min_area_rect(mask, 0, 0)
    assert obb_angle_deg(box) == pytest.approx(math.degrees(math.atan(0.25)), abs=1.0)
    assert _area(box) < 0.5 * mask.size


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference sample not present")
def test_corner_order_matches_the_published_sample():
    """Every published rotated box starts at its largest x and winds counter-clockwise on the page.

    The published upright boxes start at bottom-right (198 of 288) or top-right (90): OpenCV's
    angle-0 / angle-90 ambiguity. We always give bottom-right, the majority and the rule's tie-break.
    """
    data = json.loads((REFERENCE / "deepscores_v2_sample.json").read_text())
    corners = np.array([a["o_bbox"] for a in data["annotations"].values()], float).reshape(-1, 4, 2)
    upright = np.array([len(set(np.round(c[:, 0], 3))) == 2 for c in corners])
    ours = order_corners(corners[:, ::-1].copy())  # any cyclic order in, published order out
    assert np.allclose(ours[~upright], corners[~upright])
    assert np.all(ours[upright][:, 0, 0] >= ours[upright][:, :, 0].max(axis=1) - 1e-9)
    assert np.all(ours[upright][:, 0, 1] >= ours[upright][:, :, 1].max(axis=1) - 1e-9)
    assert np.isclose(ours, corners).all(axis=(1, 2))[upright].sum() == 198


# -- on engraved pages -------------------------------------------------------------------------------
def test_sloped_beam_box_follows_verovio_slope(tmp_path):
    beam = lambda kind: f"<beam number='1'>{kind}</beam>"  # noqa: E731
    eighths = (note("C", 5, "eighth", 1, extra=beam("begin")) + note("G", 5, "eighth", 1, extra=beam("end"))
               + note("C", 5, "half", 6))
    path = write(tmp_path, score(eighths, divisions=2))
    (engraved,) = engrave(load_score(path), EngraveOptions())
    page = annotate(engraved, "beam", load_catalogue(V2), full_instances=True)
    (beam_symbol,) = [s for s in page.symbols if s.class_name == "beam"]
    # Verovio's beam polygon, in SVG units (the page scale is uniform, so angles carry over).
    group = re.search(rf'id="{beam_symbol.element_id}" class="beam">\s*<polygon points="([^"]+)"', engraved.svg)
    (xa, ya), (xb, yb) = [tuple(map(float, p.split(","))) for p in group.group(1).split()[:2]]
    slope = math.degrees(math.atan2(yb - ya, xb - xa))
    assert abs(slope) > 3  # the beam really is sloped
    assert obb_angle_deg(beam_symbol.o_bbox) == pytest.approx(slope, abs=1.0)


@pytest.fixture(scope="module")
def chorale_page():
    (page,) = score_pages(load_score(music21.corpus.getWork("bach/bwv66.6")), catalogue=load_catalogue(V2),
                          full_instances=True)
    return page


def test_every_symbol_has_a_tight_enclosing_oriented_box(chorale_page):
    page = chorale_page
    assert page.instance_masks is not None and len(page.instance_masks) == len(page.symbols)
    for symbol, (box, mask) in zip(page.symbols, page.instance_masks):
        x0, y0, x1, y1 = box
        assert box == symbol.bbox_xyxy and mask.dtype == bool and mask.shape == (y1 - y0, x1 - x0)
        assert symbol.area_px == int(mask.sum()) > 0
        # The full extent holds every pixel the shared instance map gives the symbol (within its box).
        kept = page.instance_map[y0:y1, x0:x1] == symbol.instance_id
        assert not np.any(kept & ~mask), symbol
        # The oriented box holds every instance pixel (the ±1 px hairline strays included) and all
        # of the full mask, and is no larger than the aligned box plus a 1-px border.
        ys, xs = np.nonzero(page.instance_map == symbol.instance_id)
        strays = np.zeros((page.height, page.width), bool)
        strays[ys, xs] = True
        assert contains_squares(symbol.o_bbox, strays, 0, 0, tol=1e-6), symbol
        assert contains_squares(symbol.o_bbox, mask, x0, y0, tol=1e-6), symbol
        w, h = x1 - x0, y1 - y0
        assert _area(symbol.o_bbox) <= w * h + 2 * (w + h) + 4 + 1e-6, symbol


def test_full_masks_keep_what_the_instance_map_gives_away(chorale_page):
    """A stem drawn over its notehead, a notehead on a staff line: both keep all their pixels."""
    page = chorale_page
    occluded = [(s, m) for s, (_, m) in zip(page.symbols, page.instance_masks) if s.occluded]
    staff = next(i for i, s in enumerate(page.symbols) if s.class_name == "staff")
    (x0, y0, x1, y1), mask = page.instance_masks[staff]
    in_map = page.instance_map[y0:y1, x0:x1] == page.symbols[staff].instance_id
    assert mask.sum() > in_map.sum()  # noteheads sit on its lines
    for symbol, mask in occluded:
        x0, y0, x1, y1 = symbol.bbox_xyxy
        assert mask.sum() > (page.instance_map[y0:y1, x0:x1] == symbol.instance_id).sum()


def test_without_full_instances_nothing_extra_is_computed(tmp_path):
    path = write(tmp_path, score(note("C", 5, "whole", 4)))
    (page,) = score_pages(path)
    assert page.instance_masks is None and all(s.o_bbox is None and s.area_px is None for s in page.symbols)
    (full,) = score_pages(path, full_instances=True)
    # The switch adds fields; it changes nothing that was there.
    assert np.array_equal(page.instance_map, full.instance_map) and np.array_equal(page.image, full.image)
    assert [s.bbox_xyxy for s in page.symbols] == [s.bbox_xyxy for s in full.symbols]
