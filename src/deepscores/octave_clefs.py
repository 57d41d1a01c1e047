"""Octave clefs as two symbols: Verovio draws a G clef with an 8 below as one SMuFL glyph
(``gClef8vb``), DeepScores counts a clef and its octave digit (``gClef`` + ``clef8``).

The combined glyph is the clef glyph of the same font plus the digit (checked for the five fonts:
at most 1.3 % of the clef's outline differs, by a few font units along its edge). So the digit is
the combined outline less the clef's own outline grown by `GROW_UNITS`, and the clef is the rest;
both are cut with skia's path operations, exact to the outline. The image is still drawn from the
uncut glyph: only the labels and the boxes see two pieces.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace

import skia

from deepscores.glyphs import glyph_outline_d, glyph_table, path_from_d
from deepscores.svg import Ink

#: How far (font units, 1000 per em; a staff space is 250) the clef's outline is grown before the
#: digit is cut away: wide enough to swallow the slivers where the combined outline runs a few units
#: off the clef's, narrow enough (≈ 1.3 px at the default geometry) to leave the digit whole.
GROW_UNITS = 20.0
_COMBINED = re.compile(r"([gfc]Clef)(8vb|8va|15mb|15ma)")


def split_octave_clef(ink: Ink) -> list[Ink]:
    """``[clef, digit]`` for a combined octave-clef glyph (glyph names ``gClef`` …, ``clef8`` or
    ``clef15``); ``[ink]`` for any other ink, or where the font lacks the plain clef."""
    match = _COMBINED.fullmatch(ink.glyph) if ink.kind == "use" else None
    if match is None:
        return [ink]
    bounds = ink.local_bounds
    parts = _cut(ink.font, ink.glyph, match.group(1),
                 (round(bounds.left(), 3), round(bounds.top(), 3), round(bounds.right(), 3), round(bounds.bottom(), 3)))
    if parts is None:
        return [ink]
    (clef_path, clef_bounds), (digit_path, digit_bounds) = parts
    digit = "clef15" if match.group(2).startswith("15") else "clef8"
    return [replace(ink, path=clef_path, local_bounds=clef_bounds, glyph=match.group(1)),
            replace(ink, path=digit_path, local_bounds=digit_bounds, glyph=digit)]


@functools.lru_cache(maxsize=256)
def _cut(font: str, combined: str, clef: str, bounds: tuple[float, float, float, float]
         ) -> tuple[tuple[skia.Path, skia.Rect], tuple[skia.Path, skia.Rect]] | None:
    codepoints = {info.name: codepoint for codepoint, info in glyph_table(font).items()}
    combined_d = glyph_outline_d(font, codepoints.get(combined, ""))
    clef_d = glyph_outline_d(font, codepoints.get(clef, ""))
    if combined_d is None or clef_d is None:
        return None
    # Verovio's defs flip the font's y axis (scale(1,-1)); whichever way the drawn path has it, the
    # bounds tell, and the clef is read the same way.
    for flip_y in (True, False):
        whole, whole_bounds = path_from_d(combined_d, flip_y)
        got = (round(whole_bounds.left(), 3), round(whole_bounds.top(), 3),
               round(whole_bounds.right(), 3), round(whole_bounds.bottom(), 3))
        if all(abs(a - b) < 0.01 for a, b in zip(got, bounds)):
            break
    else:
        return None
    clef_path, _ = path_from_d(clef_d, flip_y)
    grow = skia.Paint(Style=skia.Paint.kStroke_Style, StrokeWidth=2 * GROW_UNITS)
    grow.setStrokeJoin(skia.Paint.kRound_Join)
    rim = skia.Path()
    grow.getFillPath(clef_path, rim)
    region = skia.Op(clef_path, rim, skia.PathOp.kUnion_PathOp)
    clef_part = skia.Op(whole, region, skia.PathOp.kIntersect_PathOp)
    digit_part = skia.Op(whole, region, skia.PathOp.kDifference_PathOp)
    if clef_part is None or digit_part is None or digit_part.isEmpty() or clef_part.isEmpty():
        return None
    return (clef_part, clef_part.computeTightBounds()), (digit_part, digit_part.computeTightBounds())
