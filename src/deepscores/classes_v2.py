"""The DeepScoresV2 rules: v1 glyph rules translated to v2 names, noteheads split by staff position,
the non-fixed-shape symbols Verovio draws as plain shapes, and the v2 → muscima++ category table.

Every group name below was read from Verovio 6.4.1's SVG of small scores (tests/test_v2.py
engraves them); docs/v2.md lists what each class is drawn from.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Sequence
from importlib import resources

from deepscores.classes import Catalogue, GlyphContext, glyph_rules, grace_note_symbol, load_catalogue
from deepscores.errors import DeepScoresError

#: Our one class outside the published v2 set (which has none for barlines); left out of the
#: ``deepscoresv2_strict`` vocabulary. Its id is in the data file, see docs/v2.md.
BARLINE = "barline"
#: The vocabularies these rules serve (each is a data/classes_<name>.csv file).
V2_VOCABULARIES = frozenset({"deepscoresv2", "deepscoresv2_strict"})

#: v1 names (as the v1 rules produce them) whose v2 class has another name. Clef changes have no
#: class of their own in v2: they are the clef.
_RENAMES = {
    "gClef": "clefG", "gClefChange": "clefG",
    "cClefAlto": "clefCAlto", "cClefAltoChange": "clefCAlto",
    "cClefTenor": "clefCTenor", "cClefTenorChange": "clefCTenor",
    "fClef": "clefF", "fClefChange": "clefF",
    "unpitchedPercussionClef1": "clefUnpitchedPercussion",
    # v2 labels dynamics letter by letter; v2 pages are engraved with Verovio's dynamSingleGlyphs, so
    # each letter is its own SMuFL glyph (dynamics_by_letter).
    "dynamicPiano": "dynamicP", "dynamicMezzo": "dynamicM", "dynamicForte": "dynamicF",
    "dynamicSforzando": "dynamicS", "dynamicRinforzando": "dynamicR",
}

#: SMuFL glyphs that are v2 classes but no v1 ones (fed to the v1 rules as known glyph names).
_V2_GLYPHS = frozenset({"dynamicSforzando", "dynamicRinforzando", "dynamicZ"})

_NOTEHEAD_RE = re.compile(r"(notehead(?:Black|Half|Whole|DoubleWhole))(Small)?")

#: (innermost Verovio group, drawn shape) → the non-fixed-shape class it is.
_SHAPE_CLASSES = {
    ("stem", "path"): "stem",
    ("beam", "polygon"): "beam",  # one polygon per beam line: each is one beam instance
    ("slur", "path"): "slur",
    ("tie", "path"): "tie",
    ("ledgerLines", "path"): "legerLine",
    ("staff", "path"): "staff",
    ("barLine", "path"): BARLINE,
    ("system", "path"): BARLINE,  # the line joining a system's staves at its left edge
    ("tupletBracket", "polyline"): "tupletBracket",
    ("octave", "path"): "ottavaBracket",  # the dashed extender line
    ("octave", "polyline"): "ottavaBracket",  # the closing hook
}
_HAIRPINS = {"right": "dynamicCrescendoHairpin", "left": "dynamicDiminuendoHairpin"}

#: Classes whose pieces under one Verovio element (within one system) are one instance.
MERGED_V2 = frozenset({"arpeggiato", "brace", "restHBar", "restHNr", "tupletBracket", "ottavaBracket"})

#: Who owns a pixel two symbols share: the higher layer, then the later in document order. Staff
#: and ledger lines go first, so a notehead keeps its pixels on them; other lines and curves next,
#: then glyphs; stems last. A stem starts inside its notehead, so under the notehead it would lose
#: its end (and its extent) on every note, while on top it takes two columns from the heads of a
#: chord it crosses and leaves a single head's extent intact. See docs/v2.md.
_LAYERS = {"staff": 0, "legerLine": 1, "stem": 4}
NON_FIXED_SHAPE = frozenset({
    "stem", "beam", "slur", "tie", BARLINE, "dynamicCrescendoHairpin", "dynamicDiminuendoHairpin",
    "tupletBracket", "ottavaBracket",
})


def dynamics_by_letter(vocabulary: str) -> bool:
    """Whether pages of ``vocabulary`` are engraved with dynamics drawn letter by letter: the v2
    vocabularies have a class per letter and none for Verovio's combined glyphs (ppp, sfz, fp, …)."""
    return vocabulary in V2_VOCABULARIES


def draw_layer(class_name: str) -> int:
    """Label draw order of a v2 class: staff 0, ledger lines 1, other lines and curves 2, glyphs 3, stems 4."""
    return _LAYERS.get(class_name, 2 if class_name in NON_FIXED_SHAPE else 3)


def staff_position(y_px: float, line_ys_px: Sequence[float]) -> int | None:
    """Steps (lines and spaces) from a staff's middle line to ``y_px``: 0 on it, +1 the space above,
    +2 the next line up, negative below. None for staves of fewer than two lines (no staff space)."""
    if len(line_ys_px) < 2:
        return None
    top, bottom = min(line_ys_px), max(line_ys_px)
    half_space = (bottom - top) / (len(line_ys_px) - 1) / 2
    return round(((top + bottom) / 2 - y_px) / half_space)


def hairpin_opening(points: Sequence[tuple[float, float]]) -> str:
    """'right' when the drawn lines are further apart at their right end (crescendo), else 'left'."""
    if not points:
        return ""
    xs = [x for x, _ in points]
    left, right = min(xs), max(xs)
    tolerance = (right - left) * 0.05

    def spread(at: float) -> float:
        ys = [y for x, y in points if abs(x - at) <= tolerance]
        return max(ys) - min(ys)

    return "right" if spread(right) > spread(left) else "left"


@functools.cache
def _known_glyphs() -> frozenset[str]:
    return frozenset(load_catalogue("deepscores").names) | frozenset(load_catalogue("deepscoresv2").names) | _V2_GLYPHS


def _notehead(name: str, rel_position: int | None) -> str | None:
    match = _NOTEHEAD_RE.fullmatch(name)
    if match is None:
        return name
    if rel_position is None:
        return None  # no staff to read the position from: counted as unmapped, never guessed
    where = "OnLine" if rel_position % 2 == 0 else "InSpace"
    return f"{match.group(1)}{where}{match.group(2) or ''}"


def classify_v2(ctx: GlyphContext, catalogue: Catalogue) -> str | None:
    """The class of one drawn glyph or shape in a DeepScoresV2 vocabulary (``catalogue``), or None."""
    kinds = tuple(g.split()[0] for g in ctx.groups if g.strip())
    innermost = kinds[-1] if kinds else ""
    grace = grace_note_symbol(ctx)
    if grace is not None:
        name: str | None = grace  # its stem and flag are part of the grace note, as in v1
    elif innermost == "hairpin" and ctx.glyph in ("polyline", "path"):
        name = _HAIRPINS.get(ctx.opening)
    elif (innermost, ctx.glyph) in _SHAPE_CLASSES:
        name = _SHAPE_CLASSES[(innermost, ctx.glyph)]
    elif "multiRestNum" in kinds and ctx.glyph.startswith("timeSig"):
        name = "restHNr"  # the count over a multi-measure rest, drawn with time-signature digits
    else:
        name = glyph_rules(ctx, _known_glyphs())
        if name is not None:
            name = _notehead(_RENAMES.get(name, name), ctx.rel_position)
    return name if name is not None and name in catalogue else None


# -- muscima++ ---------------------------------------------------------------------------------
@functools.cache
def _muscima_table() -> dict[int, int | None]:
    resource = resources.files("deepscores") / "data" / "muscima_deepscoresv2.csv"
    rows = list(csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8"))))
    return {int(r["v2_id"]): int(r["muscima_id"]) if r["muscima_id"] else None for r in rows}


def muscima_id_of(v2_id: int) -> int | None:
    """The published muscima++ category id paired with a v2 ``deepscores``-set id, or None where the
    muscima++ set has no counterpart (e.g. stringsUpBow). See data/muscima_deepscoresv2.csv."""
    table = _muscima_table()
    if isinstance(v2_id, bool) or v2_id not in table:
        raise DeepScoresError(f"no DeepScoresV2 deepscores-set category with id {v2_id!r} (ids 1..136)")
    return table[v2_id]
