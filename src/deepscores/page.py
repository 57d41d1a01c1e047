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

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
