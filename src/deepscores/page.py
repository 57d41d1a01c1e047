"""The records every stage speaks: a `Symbol` (one instance of one class) and a `Page` (image + labels + symbols)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Value of background pixels in a class mask.
BACKGROUND_CLASS = 255
#: Value of background pixels in an instance map.
BACKGROUND_INSTANCE = 0


@dataclass(frozen=True)
class Symbol:
    """One symbol instance on a page.

    The box is in page pixels, pixel-edge coordinates, end exclusive: the symbol's ink lies in
    columns ``x0 .. x1-1`` and rows ``y0 .. y1-1``. It is the smallest integer box enclosing the
    glyph's outline (outline bounds × composed SVG transforms), so it also encloses every
    anti-aliased pixel the image shows for the symbol. COCO's ``[x, y, w, h]`` is
    ``[x0, y0, x1 - x0, y1 - y0]``.
    """

    class_id: int
    class_name: str
    bbox_xyxy: tuple[int, int, int, int]
    instance_id: int
    font: str
    #: SMuFL glyph name (or ``"ellipse"`` / ``"text:<char>"``) the symbol was drawn from.
    glyph: str = ""
    #: Verovio element id of the symbol's nearest identified ancestor (for cross-referencing).
    element_id: str = ""
    #: True when no pixel of the instance survives in the instance map (fully covered by others).
    hidden: bool = False
    #: True when symbols drawn later cover part of this one, so that the pixels it keeps in the
    #: instance map span less than its box (by more than 1 px on some side). Its box stays the
    #: symbol's true extent; only the instance map loses the covered pixels.
    occluded: bool = False
    #: Noteheads only: the staff position of the notehead's vertical centre, counted in lines and
    #: spaces from the staff's middle line (0 = middle line, +1 = the space above it, +2 = the next
    #: line up, negative below; ledger-line positions continue the count). Even = on a line. None
    #: for other symbols and for noteheads whose staff has fewer than two lines. See docs/v2.md.
    rel_position: int | None = None
    #: The minimum-area rotated rectangle of the symbol's ink (every label pixel it has when drawn
    #: alone, as a unit square), 4 corners ``(x0, y0, …, x3, y3)`` in page pixels (pixel edges, like
    #: the box), in the published DeepScoresV2 order: the corner of largest x first (largest y of
    #: two), then counter-clockwise as seen on the page. None when not computed. See geometry.py.
    o_bbox: tuple[float, float, float, float, float, float, float, float] | None = None
    #: Ink pixel count of the symbol's full extent (its `Page.instance_masks` entry), including
    #: pixels the instance map gives to a symbol drawn over it. None when not computed.
    area_px: int | None = None
    #: Onset in quarter notes from the start of the score (Verovio's timemap ``qstamp``) of the
    #: note, rest, chord or measure the symbol belongs to; None for symbols outside the music
    #: (titles, page text). See meaning.py and docs/v2.md.
    onset: float | None = None

    @property
    def width(self) -> int:
        return self.bbox_xyxy[2] - self.bbox_xyxy[0]

    @property
    def height(self) -> int:
        return self.bbox_xyxy[3] - self.bbox_xyxy[1]

    def bbox_xywh(self) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = self.bbox_xyxy
        return (x0, y0, x1 - x0, y1 - y0)


@dataclass
class Page:
    """One engraved page with its ground truth.

    ``image``: uint8 (H, W) greyscale, 255 = white paper. ``class_mask``: uint8 (H, W) class id
    per pixel, 255 = background. ``instance_map``: uint16 (H, W) instance id per pixel, 0 =
    background; instance ``i`` is ``symbols[i - 1]``.
    """

    image: np.ndarray
    class_mask: np.ndarray
    instance_map: np.ndarray
    symbols: list[Symbol]
    font: str
    score_id: str
    page_number: int
    #: Unmapped glyphs seen on the page: name → count (never dropped silently).
    unmapped: dict[str, int] = field(default_factory=dict)
    #: Symbols removed as duplicates of another (same class, same box).
    duplicates_removed: int = 0
    #: Per symbol (same order as ``symbols``): its box and its full-extent bool mask cropped to
    #: that box, shape (y1-y0, x1-x0). Overlapping symbols each keep all their pixels here, unlike
    #: in ``instance_map``. None when annotate ran with ``full_instances=False``.
    instance_masks: list[tuple[tuple[int, int, int, int], np.ndarray]] | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
