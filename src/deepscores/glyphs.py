"""Glyph outlines as skia paths: SMuFL glyphs from Verovio's own font data, text from a serif TTF.

Verovio's wheel ships, per music font, a metadata file (codepoint → SMuFL name, advance) and one
small SVG file per glyph; those are the exact outlines Verovio references from its SVG, so the
font a glyph was really drawn in (Verovio falls back to Leipzig for glyphs a font lacks) can be
told by comparing outlines.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import skia
import verovio
from fontTools.svgLib.path import parse_path
from lxml import etree

from deepscores.errors import DeepScoresError

MUSIC_FONTS: tuple[str, ...] = ("Leipzig", "Bravura", "Gootville", "Leland", "Petaluma")
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@functools.cache
def verovio_data_dir() -> Path:
    return Path(verovio.toolkit(False).getResourcePath())


@dataclass(frozen=True)
class GlyphInfo:
    name: str
    advance: float  # horizontal advance in font units (1000 per em)


@functools.cache
def glyph_table(font: str) -> dict[str, GlyphInfo]:
    """Codepoint (upper-case hex, e.g. ``"E0A4"``) → SMuFL name and advance, for one music font."""
    path = verovio_data_dir() / f"{font}.xml"
    if not path.is_file():
        raise DeepScoresError(f"{path}: no Verovio metadata for music font {font!r}")
    root = etree.parse(str(path), _SAFE_PARSER).getroot()
    return {
        g.get("c").upper(): GlyphInfo(g.get("n", ""), float(g.get("h-a-x") or g.get("w") or 0))
        for g in root.iter("g")
    }


@functools.cache
def glyph_outline_d(font: str, codepoint: str) -> str | None:
    """The SVG path data Verovio uses for ``codepoint`` in ``font`` (None if the font lacks it)."""
    path = verovio_data_dir() / font / f"{codepoint.upper()}.xml"
    if not path.is_file():
        return None
    root = etree.parse(str(path), _SAFE_PARSER).getroot()
    el = next(root.iter("{*}path", "path"), None)
    return None if el is None else el.get("d")


def smufl_name(codepoint: str, font: str) -> str:
    """SMuFL name of a codepoint, from the font that drew it (any font's table as a fallback)."""
    info = glyph_table(font).get(codepoint.upper())
    if info is None:
        for other in MUSIC_FONTS:
            info = glyph_table(other).get(codepoint.upper())
            if info is not None:
                break
    return info.name if info is not None else f"uni{codepoint.upper()}"


def drawing_font(codepoint: str, d: str, page_font: str) -> str:
    """Which music font an outline really came from: the page's font unless Verovio fell back."""
    if glyph_outline_d(page_font, codepoint) == d:
        return page_font
    for font in MUSIC_FONTS:
        if font != page_font and glyph_outline_d(font, codepoint) == d:
            return font
    return page_font


class _SkiaPen:
    """fontTools pen protocol → skia.Path, so fontTools' SVG path parser fills a skia path."""

    def __init__(self) -> None:
        self.path = skia.Path()

    def moveTo(self, pt):  # noqa: N802 - pen protocol names
        self.path.moveTo(*pt)

    def lineTo(self, pt):  # noqa: N802
        self.path.lineTo(*pt)

    def curveTo(self, p1, p2, p3):  # noqa: N802
        self.path.cubicTo(*p1, *p2, *p3)

    def qCurveTo(self, *points):  # noqa: N802
        # TrueType-style implied on-curve points between consecutive off-curve ones.
        *offs, end = points
        for i, off in enumerate(offs):
            nxt = end if i == len(offs) - 1 else ((off[0] + offs[i + 1][0]) / 2, (off[1] + offs[i + 1][1]) / 2)
            self.path.quadTo(*off, *nxt)

    def closePath(self):  # noqa: N802
        self.path.close()

    def endPath(self):  # noqa: N802
        pass


@functools.lru_cache(maxsize=8192)
def path_from_d(d: str, flip_y: bool = False) -> tuple[skia.Path, skia.Rect]:
    """A skia path from SVG path data and its tight bounds (cached: callers must not mutate)."""
    pen = _SkiaPen()
    parse_path(d, pen)
    if flip_y:
        pen.path.transform(skia.Matrix.Scale(1, -1))
    return pen.path, pen.path.computeTightBounds()


# --- text --------------------------------------------------------------------------------

@functools.cache
def _font_manager() -> skia.FontMgr:
    return skia.FontMgr.New_Custom_Empty()


@functools.cache
def _text_typeface(bold: bool, italic: bool) -> skia.Typeface:
    # matplotlib (a pinned dependency) ships DejaVu Serif in its package data; the package is found,
    # not imported: importing it costs a fifth of a second in every worker.
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise DeepScoresError("matplotlib is not installed; it provides the serif text font (DejaVu Serif)")
    fonts = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"
    name = "DejaVuSerif" + {(False, False): "", (True, False): "-Bold", (False, True): "-Italic",
                            (True, True): "-BoldItalic"}[(bold, italic)] + ".ttf"
    # An empty custom font manager reads the file directly; the default one would start
    # fontconfig, which scans system fonts and prints warnings about their configuration.
    typeface = _font_manager().makeFromFile(str(fonts / name))
    if typeface is None:
        raise DeepScoresError(f"{fonts / name}: cannot load the serif text font")
    return typeface


@functools.lru_cache(maxsize=4096)
def text_char_path(char: str, bold: bool, italic: bool) -> tuple[skia.Path, skia.Rect, float]:
    """Outline, tight bounds and advance of one text character at size 1000 (font units), y down."""
    font = skia.Font(_text_typeface(bold, italic), 1000)
    font.setLinearMetrics(True)
    glyph = font.textToGlyphs(char)
    path = (font.getPath(glyph[0]) if glyph else None) or skia.Path()
    advance = float(font.getWidths(glyph)[0]) if glyph else 0.0
    return path, path.computeTightBounds(), advance
