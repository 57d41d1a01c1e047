"""Rasterising backends: parsed SVG ink → an anti-aliased greyscale image and an exact instance map.

A backend is a class registered by name; ``get_backend(name)`` picks one. The default, ``skia``,
draws the ink itself on skia-python canvases (BSD): the image pass anti-aliased on an A8 surface
(grey = 255 − coverage), the label pass with anti-aliasing off on an R8G8 surface where each
symbol's colour *is* its instance id, so label values are exact by construction.
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

    def render_labels(self, parsed: ParsedSvg, labelled: Sequence[tuple[Ink, int]],
                      class_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """uint16 (H, W) instance map (the id of the symbol drawn last at each pixel, 0 = background)
        and uint8 class mask (255 = background), in one pass; ``class_ids[i]`` is the class of
        instance ``i`` (index 0 unused)."""

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


def get_backend(name: str = "skia") -> RasterBackend:
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise OptionsError(f"unknown raster backend {name!r}; available: {', '.join(backend_names())}") from None


def _draw(canvas: skia.Canvas, ink: Ink, fill_paint: skia.Paint, antialias: bool, color: int | None,
          blend: skia.BlendMode = skia.BlendMode.kSrcOver) -> None:
    canvas.setMatrix(ink.matrix)
    if ink.fill:
        canvas.drawPath(ink.path, fill_paint)
        if color is not None:
            # Labels cover every pixel the outline touches, not only pixels whose centre is inside:
            # the thin tip of a flat or a flag then still reaches its box, and the mask covers
            # all the ink the anti-aliased image shows for the symbol.
            canvas.drawPath(ink.path, skia.Paint(AntiAlias=False, Color=color, Style=skia.Paint.kStroke_Style,
                                                 StrokeWidth=0, BlendMode=blend))
    if ink.stroke_width > 0:
        paint = stroke_paint(ink, antialias)
        if color is not None:
            paint.setColor(color)
            paint.setBlendMode(blend)
        canvas.drawPath(ink.path, paint)


@register_backend("skia")
class SkiaBackend:
    name = "skia"

    def render_image(self, parsed: ParsedSvg) -> np.ndarray:
        coverage = np.zeros((parsed.height_px, parsed.width_px), np.uint8)
        surface = skia.Surface.MakeRasterDirect(skia.ImageInfo.MakeA8(parsed.width_px, parsed.height_px), coverage)
        canvas = surface.getCanvas()
        fill = skia.Paint(AntiAlias=True)
        for ink in parsed.inks:
            _draw(canvas, ink, fill, True, None)
        del canvas, surface
        return np.subtract(255, coverage, dtype=np.uint8)

    def render_labels(self, parsed: ParsedSvg, labelled: Sequence[tuple[Ink, int]],
                      class_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        # An R8G8 surface is a little-endian uint16 array: the instance map is drawn in place,
        # R = low byte and G = high byte of the id (exact for all 65,536 values; tested).
        instance_map = np.zeros((parsed.height_px, parsed.width_px), np.uint16)
        info = skia.ImageInfo.Make(parsed.width_px, parsed.height_px, skia.ColorType.kR8G8_unorm_ColorType,
                                   skia.AlphaType.kOpaque_AlphaType)
        surface = skia.Surface.MakeRasterDirect(info, instance_map)
        canvas = surface.getCanvas()
        # The class mask is drawn beside it, with the same geometry: an A8 surface whose alpha *is*
        # the class id (source blending writes it unchanged, exact for 0..255), instead of a lookup
        # through the instance map, which costs twice as much on a whole page.
        class_mask = np.full((parsed.height_px, parsed.width_px), 255, np.uint8)
        mask_surface = skia.Surface.MakeRasterDirect(skia.ImageInfo.MakeA8(parsed.width_px, parsed.height_px),
                                                     class_mask)
        mask_canvas = mask_surface.getCanvas()
        for ink, instance_id in labelled:
            if not 0 < instance_id <= MAX_INSTANCES:
                raise OptionsError(f"instance id {instance_id} outside 1..{MAX_INSTANCES}")
            color = skia.Color(instance_id & 0xFF, instance_id >> 8, 0)
            _draw(canvas, ink, skia.Paint(AntiAlias=False, Color=color), False, color)
            alpha = skia.ColorSetARGB(class_ids[instance_id], 0, 0, 0)
            paint = skia.Paint(AntiAlias=False, Color=alpha, BlendMode=skia.BlendMode.kSrc)
            _draw(mask_canvas, ink, paint, False, alpha, skia.BlendMode.kSrc)
        del canvas, surface, mask_canvas, mask_surface
        if sys.byteorder != "little":
            instance_map.byteswap(inplace=True)
        return instance_map, class_mask

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
        color = skia.ColorBLACK  # A8 keeps only alpha: 255 wherever the label pass would paint
        fill = skia.Paint(AntiAlias=False, Color=color)
        masks = []
        for inks, (x0, y0, x1, y1) in symbols:
            canvas.save()
            canvas.clipRect(skia.Rect(x0, y0, x1, y1))
            for ink in inks:
                _draw(canvas, ink, fill, False, color)
            canvas.restore()
            region = scratch[y0:y1, x0:x1]
            masks.append(region != 0)
            region[...] = 0
        del canvas, surface
        return masks
