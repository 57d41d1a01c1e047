"""SVG ``transform`` attributes and number lists, as Verovio writes them, for the SVG walk (`svg.py`)."""

from __future__ import annotations

import math
import re

import skia

#: One SVG number, as a regular expression group.
NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_TRANSFORM_RE = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# Verovio places every glyph with this one shape of transform; matching it directly skips the
# general parser for the thousands of glyphs of a dense page.
_USE_TRANSFORM_RE = re.compile(rf"^translate\({NUMBER},\s*{NUMBER}\)\s*scale\({NUMBER},\s*{NUMBER}\)$")


def numbers(text: str | None) -> list[float]:
    """Every number in ``text`` (a ``points`` list or a transform's arguments), in order."""
    return [float(n) for n in _NUMBER_RE.findall(text or "")]


def parse_transform(text: str | None) -> skia.Matrix:
    """An SVG ``transform`` attribute as a skia matrix (functions applied left to right)."""
    fast = _USE_TRANSFORM_RE.match(text or "")
    if fast:
        tx, ty, sx, sy = map(float, fast.groups())
        return skia.Matrix.MakeAll(sx, 0, tx, 0, sy, ty, 0, 0, 1)
    m = skia.Matrix()
    for name, args in _TRANSFORM_RE.findall(text or ""):
        v = numbers(args)
        if name == "translate":
            step = skia.Matrix.Translate(v[0], v[1] if len(v) > 1 else 0.0)
        elif name == "scale":
            step = skia.Matrix.Scale(v[0], v[1] if len(v) > 1 else v[0])
        elif name == "rotate":
            step = skia.Matrix.RotateDeg(v[0], skia.Point(v[1], v[2])) if len(v) == 3 else skia.Matrix.RotateDeg(v[0])
        elif name == "matrix":
            step = skia.Matrix.MakeAll(v[0], v[2], v[4], v[1], v[3], v[5], 0, 0, 1)
        elif name == "skewX":
            step = skia.Matrix.Skew(math.tan(math.radians(v[0])), 0)
        else:
            step = skia.Matrix.Skew(0, math.tan(math.radians(v[0])))
        m = skia.Matrix.Concat(m, step)
    return m
