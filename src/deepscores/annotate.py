"""SVG page → `Page`: classify every glyph in its context, group glyphs into instances, derive tight
boxes from geometry, de-duplicate, and rasterise the image and the label maps."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from deepscores.classes import GRACE_NOTES, Catalogue, GlyphContext, classify, load_catalogue, merges_into_group
from deepscores.classes_v2 import (
    MERGED_V2,
    V2_VOCABULARIES,
    draw_layer,
    dynamics_by_letter,
    hairpin_opening,
    staff_position,
)
from deepscores.corpus import Score, load_score
from deepscores.engrave import EngravedPage, EngraveOptions, engrave
from deepscores.geometry import OBox, oriented_boxes
from deepscores.meaning import onset_of
from deepscores.octave_clefs import split_octave_clef
from deepscores.page import Page, Symbol
from deepscores.raster import MAX_INSTANCES, RasterBackend, class_mask_of, get_backend
from deepscores.svg import Ink, ParsedSvg, parse_svg

#: A glyph drawn below this fraction of the page's usual notehead size is a cue/grace ("small") one.
SMALL_GLYPH_RATIO = 0.85
_EPS = 1e-4

log = logging.getLogger("deepscores.annotate")


@dataclass
class _Instance:
    class_name: str
    inks: list[Ink]
    left: float
    top: float
    right: float
    bottom: float
    rel_position: int | None = None  # noteheads: staff position (see Symbol.rel_position)

    def add(self, ink: Ink, rect) -> None:
        self.inks.append(ink)
        self.left, self.top = min(self.left, rect.left()), min(self.top, rect.top())
        self.right, self.bottom = max(self.right, rect.right()), max(self.bottom, rect.bottom())

    def absorb(self, other: "_Instance") -> None:
        """Take ``other``'s inks and extent: two pieces of one symbol."""
        self.inks.extend(other.inks)
        self.left, self.top = min(self.left, other.left), min(self.top, other.top)
        self.right, self.bottom = max(self.right, other.right), max(self.bottom, other.bottom)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        # Integer pixel edges enclosing the outline; the epsilon keeps float noise from adding a pixel.
        x0 = max(0, math.floor(self.left + _EPS))
        y0 = max(0, math.floor(self.top + _EPS))
        x1 = min(width, math.ceil(self.right - _EPS))
        y1 = min(height, math.ceil(self.bottom - _EPS))
        return x0, y0, x1, y1


def normal_glyph_scale(parsed: ParsedSvg) -> float | None:
    """The most common notehead scale on the page: the size regular (not cue/grace) glyphs have."""
    scales = Counter(round(ink.scale, 5) for ink in parsed.inks if ink.kind == "use" and ink.glyph.startswith("notehead"))
    return scales.most_common(1)[0][0] if scales else None


def _rel_position(ink: Ink, rect, parsed: ParsedSvg) -> int | None:
    lines = parsed.staff_lines.get(ink.staff_id)
    return staff_position((rect.top() + rect.bottom()) / 2, lines) if lines else None


def _opening(ink: Ink) -> str:
    points = ink.path.getPoints(ink.path.countPoints())
    return hairpin_opening([(p.x(), p.y()) for p in points])


def _group_key(ink: Ink, class_name: str, parsed: ParsedSvg, v2: bool) -> tuple | None:
    """The key under which an ink joins an earlier instance, or None when it starts its own."""
    if class_name in GRACE_NOTES:
        # Notehead, stem, flag and slash of one grace note: the note is the nearest timed element.
        return ("grace", ink.timing_ids[:1], class_name)
    if not v2:
        return (ink.element_id, class_name) if merges_into_group(class_name) else None
    if class_name == "staff":
        # Verovio draws a staff's lines measure by measure; one staff of one system is one symbol.
        lines = parsed.staff_lines.get(ink.staff_id, ())
        return ("staff", ink.system_id, tuple(round(y, 2) for y in lines))
    # The system keeps the two halves of a slur-like symbol broken across systems apart.
    return (ink.system_id, ink.element_id, class_name) if class_name in MERGED_V2 else None


@functools.lru_cache(maxsize=1 << 16)
def _class_of(fields: tuple, vocabulary: str) -> str | None:
    """``classify`` of the GlyphContext with these fields. The same glyph recurs in the same context
    hundreds of times a page and on every page of a run; the cache is keyed by a plain tuple (the
    dataclass's own hash is Python code, per ink)."""
    return classify(GlyphContext(*fields), vocabulary)


def label_inks(parsed: ParsedSvg) -> list[Ink]:
    """The page's inks as the labels see them: as drawn, except that a combined octave-clef glyph
    is two pieces, the clef and its digit (octave_clefs.py). The image is drawn from ``parsed.inks``."""
    if not any(ink.kind == "use" and ink.glyph[1:5] == "Clef" for ink in parsed.inks):
        return parsed.inks
    return [piece for ink in parsed.inks for piece in split_octave_clef(ink)]


def collect_instances(parsed: ParsedSvg, vocabulary: str = "deepscores",
                      inks: list[Ink] | None = None) -> tuple[list[_Instance], Counter]:
    """Classify inks (``label_inks`` of the page unless given) in ``vocabulary`` and group them into
    symbol instances, in document order."""
    normal = normal_glyph_scale(parsed)
    v2 = vocabulary in V2_VOCABULARIES
    unmapped: Counter = Counter()
    small_below = SMALL_GLYPH_RATIO * normal if normal is not None else None
    instances: list[_Instance] = []
    grouped: dict[tuple, _Instance] = {}
    for ink in label_inks(parsed) if inks is None else inks:
        is_use = ink.kind == "use"
        small = small_below is not None and is_use and ink.scale < small_below
        rect = None
        rel_position = None
        if is_use and ink.glyph.startswith("notehead"):
            rect = ink.page_bounds()
            rel_position = _rel_position(ink, rect, parsed)
        opening = _opening(ink) if v2 and ink.kind in ("polyline", "path") and ink.groups[-1:] == ("hairpin",) else ""
        # The v1 rules get exactly the context they always had, so v1 output cannot change.
        fields = ((ink.glyph, ink.groups, small, ink.clef_line, rel_position, opening) if v2
                  else (ink.glyph, ink.groups, small, ink.clef_line))
        class_name = _class_of(fields, vocabulary)
        if class_name is None:
            if ink.kind == "use" or (ink.kind == "text" and not ink.glyph.startswith("text:")):
                unmapped[ink.glyph] += 1
            continue
        rect = rect or ink.page_bounds()
        key = _group_key(ink, class_name, parsed, v2)
        if key is not None and key in grouped:
            grouped[key].add(ink, rect)
            continue
        inst = _Instance(class_name, [ink], rect.left(), rect.top(), rect.right(), rect.bottom(), rel_position)
        instances.append(inst)
        if key is not None:
            grouped[key] = inst
    return merge_time_signature_numbers(instances, vocabulary), unmapped


def merge_time_signature_numbers(instances: list[_Instance], vocabulary: str) -> list[_Instance]:
    """Digits of one number in a time signature become one instance where the vocabulary has a class
    for the number (DeepScores' timeSig12 and timeSig16; Verovio draws a '1' and a '2'); other
    numbers stay digit by digit."""
    catalogue = load_catalogue(vocabulary)
    numbers: dict[tuple, list[_Instance]] = {}
    for inst in instances:
        first = inst.inks[0]
        if (inst.class_name.startswith("timeSig") and inst.class_name[7:].isdigit()
                and any(g.split(" ", 1)[0] == "meterSig" for g in first.groups)):
            # The digits of one number stand on one baseline: the glyphs' common origin.
            numbers.setdefault((first.element_id, round(first.matrix.getTranslateY(), 1)), []).append(inst)
    merged: set[int] = set()
    for digits in numbers.values():
        digits.sort(key=lambda inst: inst.left)
        name = "timeSig" + "".join(inst.class_name[7:] for inst in digits)
        if len(digits) < 2 or name not in catalogue:
            continue
        first = min(digits, key=instances.index)  # the earliest in document order stands for the number
        first.class_name = name
        for other in digits:
            if other is not first:
                first.absorb(other)
                merged.add(id(other))
    return [inst for inst in instances if id(inst) not in merged] if merged else instances


def mark_occlusion(symbols: list[Symbol], instance_map: np.ndarray,
                   extents: list[tuple[int, int, int, int] | None] | None = None) -> list[Symbol]:
    """Flag symbols whose pixels in the instance map no longer span their box (covered by later ones).

    Only a symbol that another symbol's box touches can be covered; a mismatch with no such
    neighbour would be a rendering fault, so it is logged and left unflagged, where tests see it.
    ``extents`` are `instance_extents` of the map, when the caller has them already.
    """
    boxes = np.array([s.bbox_xyxy for s in symbols], np.int64).reshape(-1, 4)
    if extents is None:
        extents = instance_extents(instance_map, boxes)
    marked = []
    for index, (s, ext) in enumerate(zip(symbols, extents)):
        if ext is None:
            s = replace(s, hidden=True, occluded=True)
        else:
            x0, y0, x1, y1 = s.bbox_xyxy
            if max(abs(ext[0] - x0), abs(ext[1] - y0), abs(ext[2] - x1), abs(ext[3] - y1)) > 1:
                touching = ((boxes[:, 0] <= x1) & (boxes[:, 2] >= x0) & (boxes[:, 1] <= y1) & (boxes[:, 3] >= y0))
                touching[index] = False
                if touching.any():
                    s = replace(s, occluded=True)
                else:
                    log.warning("%s at %s: its pixels span %s but nothing covers it", s.class_name, s.bbox_xyxy, ext)
        marked.append(s)
    return marked


#: How far past its box the pixels of an instance are looked for: the label pass paints at most
#: 1 px past a box (a hairline on an outline that ends exactly on a pixel edge).
_EXTENT_MARGIN = 2
_min, _max = np.minimum.reduce, np.maximum.reduce


def instance_extents(instance_map: np.ndarray, boxes: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """Per instance ``i`` (1-based, box ``boxes[i - 1]``): the extent ``(x0, y0, x1, y1)``, end
    exclusive, of its pixels in the map, or None where it has none (scipy's find_objects, as boxes)."""
    return label_maps(instance_map, boxes, None)[1]


def label_maps(instance_map: np.ndarray, boxes: np.ndarray, class_ids: list[int] | None
               ) -> tuple[np.ndarray | None, list[tuple[int, int, int, int] | None]]:
    """The class mask (`raster.class_mask_of`; skipped when ``class_ids`` is None) and the
    `instance_extents` of an instance map, from one look at each symbol's pixels.

    Each instance is looked for only around its box: a symbol's pixels are a few hundred of five
    million, and a pass over the whole page (a class look-up, scipy's find_objects) costs more than
    all the windows together. The windows are exact when together they hold every labelled pixel of
    the map, which one count checks; otherwise (a pixel strayed from its box: a rendering fault)
    the whole map is used.
    """
    height, width = instance_map.shape
    class_mask = None if class_ids is None else np.full((height, width), 255, np.uint8)
    extents: list[tuple[int, int, int, int] | None] = []
    found = 0
    for instance_id, (x0, y0, x1, y1) in enumerate(boxes.tolist(), start=1):
        wx0, wy0 = max(0, x0 - _EXTENT_MARGIN), max(0, y0 - _EXTENT_MARGIN)
        wx1, wy1 = min(width, x1 + _EXTENT_MARGIN), min(height, y1 + _EXTENT_MARGIN)
        # ufuncs and methods called directly: a dense page has a thousand symbols, and numpy's
        # Python-level wrappers (flatnonzero, min) would cost as much as the work itself.
        owned = instance_map[wy0:wy1, wx0:wx1] == instance_id
        hits = owned.ravel().nonzero()[0]
        if not hits.size:
            extents.append(None)
            continue
        found += hits.size
        if class_mask is not None:
            np.copyto(class_mask[wy0:wy1, wx0:wx1], class_ids[instance_id], where=owned)
        w = wx1 - wx0
        # nonzero counts in row-major order: the first and the last hit are on the top and bottom rows.
        cols = hits % w
        extents.append((wx0 + int(_min(cols)), wy0 + int(hits[0]) // w,
                        wx0 + int(_max(cols)) + 1, wy0 + int(hits[-1]) // w + 1))
    if found == np.count_nonzero(instance_map):
        return class_mask, extents
    # Imported here: scipy's import is a fifth of a second, paid by every worker for a fault path.
    from scipy import ndimage

    slices = ndimage.find_objects(instance_map, max_label=len(boxes))
    extents = [None if ext is None else (ext[1].start, ext[0].start, ext[1].stop, ext[0].stop) for ext in slices]
    return (None if class_ids is None else class_mask_of(instance_map, class_ids)), extents


def annotate(
    page: EngravedPage,
    score_id: str,
    catalogue: Catalogue | None = None,
    backend: RasterBackend | None = None,
    full_instances: bool = False,
) -> Page:
    """Rasterise one engraved page and derive its exact ground truth.

    ``full_instances`` adds each symbol's full-extent mask (`Page.instance_masks`), its oriented
    box and ink pixel count (`Symbol.o_bbox`, `Symbol.area_px`); off, those stay None and the
    page costs what it did before them. Onsets are always filled (they are a table look-up).
    """
    catalogue = catalogue or load_catalogue()
    backend = backend or get_backend()
    parsed = parse_svg(page.svg, page.width_px, page.height_px, page.font)
    inks = label_inks(parsed)
    instances, unmapped = collect_instances(parsed, catalogue.name, inks)

    kept: list[tuple[_Instance, tuple[int, int, int, int]]] = []
    labelled: list[tuple[Ink, int]] = []
    seen: set[tuple[str, tuple[int, int, int, int]]] = set()
    duplicates = 0
    for inst in instances:
        box = inst.box(page.width_px, page.height_px)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue  # entirely off the page
        if (inst.class_name, box) in seen:
            duplicates += 1  # two voices sharing a notehead, a clef emitted twice: one symbol
            continue
        seen.add((inst.class_name, box))
        instance_id = len(kept) + 1
        if instance_id > MAX_INSTANCES:
            break
        kept.append((inst, box))
        labelled.extend((ink, instance_id) for ink in inst.inks)
    # Document order decides who owns a pixel two symbols share: the one drawn later, as on paper.
    # The v2 vocabularies label lines too: those go first, layer by layer, so the glyphs drawn on
    # them keep their pixels (docs/v2.md).
    order = {id(ink): i for i, ink in enumerate(inks)}
    if catalogue.name in V2_VOCABULARIES:
        layer = {instance_id: draw_layer(inst.class_name) for instance_id, (inst, _) in enumerate(kept, start=1)}
        labelled.sort(key=lambda pair: (layer[pair[1]], order[id(pair[0])]))
    else:
        labelled.sort(key=lambda pair: order[id(pair[0])])

    image = backend.render_image(parsed)
    class_ids = [0] + [catalogue.id_of(inst.class_name) for inst, _ in kept]
    instance_map = backend.render_instances(parsed, labelled)
    boxes = np.array([box for _, box in kept], np.int64).reshape(-1, 4)
    class_mask, label_extents = label_maps(instance_map, boxes, class_ids)
    extents = full_extents(kept, backend, page.width_px, page.height_px) if full_instances else None
    symbols = []
    for index, (inst, box) in enumerate(kept):
        first = inst.inks[0]
        symbols.append(Symbol(
            class_id=catalogue.id_of(inst.class_name), class_name=inst.class_name, bbox_xyxy=box,
            instance_id=index + 1, font=first.font, glyph=first.glyph, element_id=first.element_id,
            rel_position=inst.rel_position,
            o_bbox=extents.o_bboxes[index] if extents else None,
            area_px=np.count_nonzero(extents.masks[index]) if extents else None,
            onset=onset_of(first.timing_ids, page.onsets, parsed.members) if page.onsets else None,
        ))
    symbols = mark_occlusion(symbols, instance_map, label_extents)
    return Page(
        image=image, class_mask=class_mask, instance_map=instance_map, symbols=symbols,
        font=page.font, score_id=score_id, page_number=page.page_number,
        unmapped=dict(sorted(unmapped.items())), duplicates_removed=duplicates,
        instance_masks=[(box, mask) for (_, box), mask in zip(kept, extents.masks)] if extents else None,
    )


@dataclass
class _Extents:
    masks: list[np.ndarray]             # per symbol: bool, cropped to its box
    o_bboxes: list[OBox | None]         # per symbol: minimum-area rectangle of its ink


def full_extents(kept: list[tuple[_Instance, tuple[int, int, int, int]]], backend: RasterBackend,
                 width: int, height: int) -> _Extents:
    """Each symbol drawn alone (as the label pass draws it): its full mask and its oriented box.

    The label pass's hairline can touch one pixel row or column past the box when an outline ends
    exactly on a pixel edge (the ±1 px of tests/test_annotate.py), so each symbol is drawn into its
    box grown by 1 px: the oriented box then encloses every pixel the instance map can give the
    symbol, while the stored mask keeps the documented shape (its box).
    """
    grown = [(max(0, x0 - 1), max(0, y0 - 1), min(width, x1 + 1), min(height, y1 + 1)) for _, (x0, y0, x1, y1) in kept]
    drawn = backend.render_symbol_masks([(inst.inks, g) for (inst, _), g in zip(kept, grown)])
    masks = [mask[y0 - gy:y1 - gy, x0 - gx:x1 - gx] for (_, (x0, y0, x1, y1)), (gx, gy, _, _), mask in zip(kept, grown, drawn)]
    o_bboxes = oriented_boxes(drawn, [(gx, gy) for gx, gy, _, _ in grown])
    # A symbol without a single label pixel (ink thinner than the raster) still gets a box: its
    # aligned one, in the same corner order, so exporters never meet a gap.
    o_bboxes = [o if o is not None else _aligned_corners(box) for o, (_, box) in zip(o_bboxes, kept)]
    return _Extents(masks, o_bboxes)


def _aligned_corners(box: tuple[int, int, int, int]) -> OBox:
    x0, y0, x1, y1 = map(float, box)
    return (x1, y1, x1, y0, x0, y0, x0, y1)


def wants_onsets(vocabulary: str, full_instances: bool) -> bool:
    """Whether a page's outputs carry onsets (the v2 vocabularies, or full-instance exports)."""
    return full_instances or vocabulary in V2_VOCABULARIES


def score_pages(
    source: str | Path | Score,
    options: EngraveOptions | None = None,
    catalogue: Catalogue | None = None,
    backend: RasterBackend | None = None,
    full_instances: bool = False,
) -> list[Page]:
    """One score file in → every page with its image, label maps and symbols."""
    score = source if isinstance(source, Score) else load_score(source)
    vocabulary = catalogue.name if catalogue else "deepscores"
    options = options or EngraveOptions(timing=wants_onsets(vocabulary, full_instances))
    options = replace(options, dynamics_by_letter=dynamics_by_letter(vocabulary))
    return [annotate(page, score.score_id, catalogue, backend, full_instances) for page in engrave(score, options)]
