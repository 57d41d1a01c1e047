"""Rasterising backends: parsed SVG ink → an anti-aliased greyscale image and an exact instance map.

A backend is a class registered by name; ``get_backend(name)`` picks one. The default, ``skia``,
draws the ink itself on skia-python canvases (BSD): the image pass anti-aliased on an A8 surface
(grey = 255 − coverage), the label pass with anti-aliasing off on an R8G8 surface where each
symbol's colour *is* its instance id, so label values are exact by construction. The class mask is
not drawn: it is the instance map looked up through each instance's class (`class_mask_of`), so the
two maps cannot disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import skia

from deepscores.errors import OptionsError
from deepscores.svg import Ink, ParsedSvg, stroke_paint

#: Most instances a page can hold (the instance map is 16-bit).
MAX_INSTANCES = 65535


class RasterBackend(Protocol):
    name: str

    def render_image(self, parsed: ParsedSvg) -> np.ndarray:
        """uint8 (H, W) greyscale, 255 = white paper."""

    def render_instances(self, parsed: ParsedSvg, labelled: Sequence[tuple[Ink, int]]) -> np.ndarray:
        """uint16 (H, W) instance map: the id of the symbol drawn last at each pixel, 0 = background."""

    def render_symbol_masks(self, symbols: Sequence[tuple[Sequence[Ink], tuple[int, int, int, int]]]
                            ) -> list[np.ndarray]:
        """Per (inks, box): bool (y1-y0, x1-x0), every pixel the label pass gives the symbol when
        it is drawn alone: its full extent, whoever owns the pixel in the instance map."""


_BACKENDS: dict[str, Callable[[], RasterBackend]] = {}


def register_backend(name: str):
    def deco(cls):
        cls.name = name
        _BACKENDS[name] = cls
        return cls
    return deco


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def class_mask_of(instance_map: np.ndarray, class_ids: Sequence[int]) -> np.ndarray:
    """uint8 class mask of an instance map: ``class_ids[i]`` where instance ``i`` owns the pixel, 255
    on the background (``class_ids[0]`` is ignored). annotate.label_maps gives the same array faster
    by looking only inside the symbols' boxes."""
    lut = np.full(MAX_INSTANCES + 1, 255, np.uint8)
    lut[1:len(class_ids)] = class_ids[1:]
    return lut[instance_map]


def get_backend(name: str = "skia") -> RasterBackend:
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise OptionsError(f"unknown raster backend {name!r}; available: {', '.join(backend_names())}") from None


class _Pen:
    """One canvas and the paints it draws ink with.

    A page draws a thousand inks per pass; making a paint costs more than drawing a small path, and
    so does setting a matrix, so the paints are made once per pass and recoloured, and the matrix is
    set only when it changes (the shapes of one group share their matrix object). Each paint is in
    exactly the state a fresh one with the same settings would be in, so the pixels are the same.
    """

    def __init__(self, canvas: skia.Canvas, antialias: bool, hairline: bool) -> None:
        self.canvas = canvas
        self.antialias = antialias
        self.fill = skia.Paint(AntiAlias=antialias)
        # Labels cover every pixel the outline touches, not only pixels whose centre is inside:
        # the thin tip of a flat or a flag then still reaches its box, and the mask covers all the
        # ink the anti-aliased image shows for the symbol.
        self.hairline = (skia.Paint(AntiAlias=False, Style=skia.Paint.kStroke_Style, StrokeWidth=0)
                         if hairline else None)
        self.strokes: dict[tuple, skia.Paint] = {}
        self.color = skia.ColorBLACK
        self.matrix: skia.Matrix | None = None

    def set_color(self, color: int) -> None:
        if color != self.color:
            self.color = color
            self.fill.setColor(color)
            if self.hairline is not None:
                self.hairline.setColor(color)

    def forget_matrix(self) -> None:
        """The canvas's matrix changed behind the pen's back (canvas.restore)."""
        self.matrix = None

    def draw(self, ink: Ink) -> None:
        if ink.matrix is not self.matrix:
            self.canvas.setMatrix(ink.matrix)
            self.matrix = ink.matrix
        if ink.fill:
            self.canvas.drawPath(ink.path, self.fill)
            if self.hairline is not None:
                self.canvas.drawPath(ink.path, self.hairline)
        if ink.stroke_width > 0:
            key = (ink.stroke_width, ink.cap, ink.join, ink.dash)
            paint = self.strokes.get(key)
            if paint is None:
                paint = self.strokes[key] = stroke_paint(ink, self.antialias)
            paint.setColor(self.color)
            self.canvas.drawPath(ink.path, paint)


@register_backend("skia")
class SkiaBackend:
    name = "skia"

    def render_image(self, parsed: ParsedSvg) -> np.ndarray:
        coverage = np.zeros((parsed.height_px, parsed.width_px), np.uint8)
        surface = skia.Surface.MakeRasterDirect(skia.ImageInfo.MakeA8(parsed.width_px, parsed.height_px), coverage)
        canvas = surface.getCanvas()
        pen = _Pen(canvas, antialias=True, hairline=False)
        for ink in parsed.inks:
            pen.draw(ink)
        del pen, canvas, surface
        # In place: a second page-sized array would cost its allocation and page faults again.
        return np.subtract(255, coverage, out=coverage)

    def render_instances(self, parsed: ParsedSvg, labelled: Sequence[tuple[Ink, int]]) -> np.ndarray:
        # An R8G8 surface is a little-endian uint16 array: the instance map is drawn in place,
        # R = low byte and G = high byte of the id (exact for all 65,536 values; tested).
        instance_map = np.zeros((parsed.height_px, parsed.width_px), np.uint16)
        info = skia.ImageInfo.Make(parsed.width_px, parsed.height_px, skia.ColorType.kR8G8_unorm_ColorType,
                                   skia.AlphaType.kOpaque_AlphaType)
        surface = skia.Surface.MakeRasterDirect(info, instance_map)
        pen = _Pen(surface.getCanvas(), antialias=False, hairline=True)
        for ink, instance_id in labelled:
            if not 0 < instance_id <= MAX_INSTANCES:
                raise OptionsError(f"instance id {instance_id} outside 1..{MAX_INSTANCES}")
            pen.set_color(skia.Color(instance_id & 0xFF, instance_id >> 8, 0))
            pen.draw(ink)
        del pen, surface
        if sys.byteorder != "little":
            instance_map.byteswap(inplace=True)
        return instance_map

    def render_symbol_masks(self, symbols: Sequence[tuple[Sequence[Ink], tuple[int, int, int, int]]]
                            ) -> list[np.ndarray]:
        if not symbols:
            return []
        # One page-sized A8 scratch surface, reused: each symbol is drawn with exactly the
        # matrices of the label pass (a translated matrix rounds differently in skia's fixed-point
        # scan conversion and loses or gains edge pixels), clipped to its box; the box is read out
        # and cleared, so a page-wide staff does not cost a page-wide clear per note.
        width = max(x1 for _, (x0, y0, x1, y1) in symbols)
        height = max(y1 for _, (x0, y0, x1, y1) in symbols)
        scratch = np.zeros((height, width), np.uint8)
        surface = skia.Surface.MakeRasterDirect(skia.ImageInfo.MakeA8(width, height), scratch)
        canvas = surface.getCanvas()
        # A8 keeps only alpha: 255 wherever the label pass would paint (the pen draws black).
        pen = _Pen(canvas, antialias=False, hairline=True)
        masks = []
        for inks, (x0, y0, x1, y1) in symbols:
            canvas.save()
            canvas.clipRect(skia.Rect(x0, y0, x1, y1))
            for ink in inks:
                pen.draw(ink)
            canvas.restore()
            pen.forget_matrix()
            region = scratch[y0:y1, x0:x1]
            masks.append(region != 0)
            region[...] = 0
        del pen, canvas, surface
        return masks
