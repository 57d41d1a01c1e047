"""The class catalogue (ids and names, one data file per vocabulary) and the rules that give each
glyph Verovio draws its DeepScores class from its SMuFL name and its place in the SVG tree.

The rules follow the paper: the same glyph is a different symbol in a different context (a flat in
a key signature is ``keyFlat``, before a note ``accidentalFlat``; a digit is ``timeSig4``,
``tuplet3`` or ``fingering4``; a dot is ``augmentationDot``, ``articStaccato*`` or ``repeatDot``).
Every context assumed here was checked against Verovio 6.4.1's SVG (see tests/test_classes.py).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from deepscores.errors import DeepScoresError

#: The class mask is uint8 and 255 marks background, so a vocabulary may use ids 1..254 only.
MAX_CLASS_ID = 254
_VOCABULARY_NAME = re.compile(r"[a-z0-9_]+")


# -- catalogue ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalogue:
    """One vocabulary: ``names[i]`` has class id ``ids[i]`` (``i + 1`` when no ids are given).

    Ids are explicit so that a vocabulary can keep published ids with gaps (DeepScoresV2 numbers
    its two annotation sets in one id space); they increase with the position in ``names``.
    """

    name: str
    names: tuple[str, ...]
    ids: tuple[int, ...] = ()
    _ids: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    _names: dict[int, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise DeepScoresError(f"vocabulary {self.name!r}: duplicate class names {dup}")
        if len(self.names) > MAX_CLASS_ID:
            raise DeepScoresError(
                f"vocabulary {self.name!r}: {len(self.names)} classes; at most {MAX_CLASS_ID} fit a uint8 mask"
            )
        ids = tuple(self.ids) or tuple(range(1, len(self.names) + 1))
        if len(ids) != len(self.names):
            raise DeepScoresError(f"vocabulary {self.name!r}: {len(ids)} ids for {len(self.names)} names")
        if (any(isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= MAX_CLASS_ID for i in ids)
                or any(a >= b for a, b in zip(ids, ids[1:]))):
            raise DeepScoresError(
                f"vocabulary {self.name!r}: ids must be integers increasing within 1..{MAX_CLASS_ID}, got {ids}")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "_ids", dict(zip(self.names, ids)))
        object.__setattr__(self, "_names", dict(zip(ids, self.names)))

    def id_of(self, name: str) -> int:
        try:
            return self._ids[name]
        except (KeyError, TypeError):
            raise DeepScoresError(f"vocabulary {self.name!r}: no class named {name!r}") from None

    def name_of(self, class_id: int) -> str:
        # bool is an int; True must not quietly mean class 1.
        if isinstance(class_id, bool) or not isinstance(class_id, int) or class_id not in self._names:
            raise DeepScoresError(
                f"vocabulary {self.name!r}: no class with id {class_id!r} (ids {self.ids[0]}..{self.ids[-1]})")
        return self._names[class_id]

    def index_of(self, name: str) -> int:
        """0-based position of a class: the contiguous index YOLO labels and model outputs use."""
        return self.names.index(self.name_of(self.id_of(name)))

    def items(self) -> tuple[tuple[int, str], ...]:
        """``(id, name)`` pairs in id order."""
        return tuple(zip(self.ids, self.names))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._ids


def _data_dir():
    return resources.files("deepscores") / "data"


def available_catalogues() -> tuple[str, ...]:
    """Vocabulary names with a ``data/classes_<name>.csv`` file, sorted."""
    files = (entry.name for entry in _data_dir().iterdir())
    return tuple(sorted(f[len("classes_"):-len(".csv")] for f in files if f.startswith("classes_") and f.endswith(".csv")))


def load_catalogue(name: str = "deepscores") -> Catalogue:
    """The vocabulary stored in ``data/classes_<name>.csv`` (header ``id,name``, ids increasing)."""
    if not isinstance(name, str):
        raise DeepScoresError(f"class vocabulary name must be a string, got {name!r}")
    return _load_catalogue(name)


def dataset_catalogue(dataset_dir: str | Path) -> Catalogue:
    """The vocabulary a dataset was made with (its ``dataset.json``), the DeepScores one if unsaid."""
    try:
        options = json.loads((Path(dataset_dir) / "dataset.json").read_text(encoding="utf-8")).get("options", {})
        classes = options.get("classes")
    except (OSError, ValueError, AttributeError):
        classes = None
    return load_catalogue(classes or "deepscores")


# Cached behind load_catalogue so that load_catalogue() and load_catalogue('deepscores') share one entry.
@functools.cache
def _load_catalogue(name: str) -> Catalogue:
    resource = _data_dir() / f"classes_{name}.csv"
    if not _VOCABULARY_NAME.fullmatch(name) or not resource.is_file():
        raise DeepScoresError(
            f"unknown class vocabulary {name!r}; available: {', '.join(available_catalogues()) or 'none'}"
        )
    where = f"classes_{name}.csv"
    reader = csv.reader(io.StringIO(resource.read_text(encoding="utf-8")))
    header = next(reader, None)
    if header != ["id", "name"]:
        raise DeepScoresError(f"{where}: header must be 'id,name', found {header!r}")
    names: list[str] = []
    ids: list[int] = []
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != 2 or not row[1].strip():
            raise DeepScoresError(f"{where}:{line_no}: expected 'id,name', found {row!r}")
        # Ids must increase: the file then reads in mask-value order and a swapped line is caught
        # instead of silently relabelling masks. Gaps are allowed for published id spaces.
        previous = ids[-1] if ids else 0
        if not row[0].strip().isdigit() or not previous < int(row[0]) <= MAX_CLASS_ID:
            raise DeepScoresError(
                f"{where}:{line_no}: id {row[0]!r} out of sequence, expected an integer in {previous + 1}..{MAX_CLASS_ID}")
        ids.append(int(row[0]))
        names.append(row[1].strip())
    if not names:
        raise DeepScoresError(f"{where}: no classes")
    return Catalogue(name, tuple(names), tuple(ids))


# -- glyph -> class ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GlyphContext:
    """What the SVG says about one drawn glyph."""

    glyph: str               # SMuFL name of a <use>; 'ellipse', 'rect', 'path', ...; 'text:<c>'
    groups: tuple[str, ...]  # class attributes of the enclosing <g>s, outermost first, as written
    small: bool = False      # drawn markedly smaller than the page's normal noteheads (cue / grace)
    # Staff line (1 = bottom) a clef sits on, when the caller knows it: Verovio draws alto and tenor
    # C clefs with the same glyph, and only the position tells them apart. Verovio writes it into the
    # SVG as data-line on the clef's <g> with the option svgAdditionalAttribute=['clef@line'].
    clef_line: int | None = None
    # Staff position of a notehead (0 = middle line, +1 the space above, ...; see docs/v2.md): the
    # v2 vocabulary splits noteheads into on-line and in-space classes by it. The v1 rules ignore it.
    rel_position: int | None = None
    # 'right' when a hairpin's two lines diverge towards the right (crescendo), 'left' when they
    # diverge towards the left (diminuendo); '' for everything else. Only the v2 rules read it.
    opening: str = ""


_SHAPES = frozenset({"ellipse", "rect", "path", "polygon", "polyline", "circle", "line"})

# Glyphs whose meaning comes only from where they are drawn: the name maps to itself only inside the
# named group (a timeSig4 glyph also numbers multi-measure rests; tuplet digits also build '5', '12').
_ONLY_INSIDE = {"timeSig": "meterSig", "tuplet": "tupletNum", "fingering": "fing",
                "repeatDot": "barLine", "augmentationDot": "dots"}

# Glyphs Verovio draws in place of the SMuFL glyph the class is named after; same symbol to a reader.
_ALIASES = {
    "noteheadDoubleWholeSquare": "noteheadDoubleWhole",  # Verovio's breve in MusicXML imports
    "articStaccatissimoWedgeAbove": "articStaccatissimoAbove",
    "articStaccatissimoWedgeBelow": "articStaccatissimoBelow",
    "articStaccatissimoStrokeAbove": "articStaccatissimoAbove",
    "articStaccatissimoStrokeBelow": "articStaccatissimoBelow",
    "restWholeLegerLine": "restWhole",  # drawn with its own ledger line when outside the staff
    "restHalfLegerLine": "restHalf",
    "restDoubleWholeLegerLine": "restDoubleWhole",
    "ornamentTurnSlash": "ornamentTurnInverted",  # SMuFL's alternative form of the inverted turn
    # Verovio draws a CMN maxima rest (MEI rest dur="maxima") with the mensural glyph: same shape.
    "mensuralRestMaxima": "restMaxima",
    # An arpeggio is a column of wiggle segments ended by an optional arrowhead: one symbol.
    "wiggleArpeggiatoUp": "arpeggiato",
    "wiggleArpeggiatoDown": "arpeggiato",
    "wiggleArpeggiatoUpArrow": "arpeggiato",
    "wiggleArpeggiatoDownArrow": "arpeggiato",
}

_KEY_ACCIDENTALS = {"accidentalFlat": "keyFlat", "accidentalSharp": "keySharp", "accidentalNatural": "keyNatural"}

# Octave marks are part of one combined glyph in Verovio (gClef8vb, fClef8vb, gClef15ma, ...), which
# annotate cuts into the clef and its digit (octave_clefs.py: gClef + clef8). A combined glyph that
# reaches these rules uncut (a form without a stand-alone clef) keeps the clef's class.
_CLEF_RE = re.compile(r"([gfc])Clef(?:8vb|8va|15mb|15ma|8vbOld|8vbCClef|8vbParens)?(Change)?")

#: Classes whose glyphs under one Verovio element are pieces of one symbol instance.
_MERGED = frozenset({"arpeggiato", "brace", "restHBar"})


def _kinds(groups: tuple[str, ...]) -> tuple[str, ...]:
    # Verovio's class attribute is the MEI element name followed by modifiers ('artic technical',
    # 'ledgerLines above cue'); the element name is what gives context.
    return tuple(g.split()[0] for g in groups if g.strip())


def _clef_class(match: re.Match, kinds: tuple[str, ...], clef_line: int | None) -> str:
    shape, change_glyph = match.group(1), match.group(2)
    if shape == "c":
        # Without the line, alto is the likelier reading (viola parts outnumber tenor passages).
        base = "cClefTenor" if clef_line == 4 else "cClefAlto"
    else:
        base = f"{shape}Clef"
    # Verovio draws a clef at the head of a staff directly under 'staff' and a mid-staff change inside
    # 'layer', sometimes with the full-size glyph (gClef15mb has no Change form): context decides.
    return base + "Change" if change_glyph or "layer" in kinds else base


def _shape_class(shape: str, innermost: str) -> str | None:
    if shape == "ellipse" and innermost == "dots":
        return "augmentationDot"
    if shape in ("rect", "polygon") and innermost == "multiRest":
        return "restHBar"  # the H-bar and its two end serifs are three rects
    if shape == "path" and innermost == "grpSym":
        return "brace"  # drawn as two Bézier halves; a bracket is rects + bracketTop/Bottom glyphs
    return None


#: The SMuFL grace notes (notehead, stem, flag and, for an acciaccatura, the slash in one glyph).
GRACE_NOTES = frozenset(f"graceNote{kind}Stem{direction}" for kind in ("Acciaccatura", "Appoggiatura")
                        for direction in ("Up", "Down"))
# The parts of a grace note Verovio draws under its note group: they make up the grace-note symbol.
# Its accidental, dots and articulations stay symbols of their own.
_GRACE_PARTS = frozenset({"notehead", "stem", "flag"})


def grace_note_symbol(ctx: GlyphContext) -> str | None:
    """The grace-note class an ink is a part of, or None. svg.py marks the note group of an unbeamed
    eighth grace note with the symbol's name (Verovio draws it as a small notehead, stem, flag and
    slash, which the SMuFL glyph the class is named after shows as one)."""
    groups = ctx.groups
    if not groups or groups[-1].split(" ", 1)[0] not in _GRACE_PARTS:
        return None
    for group in reversed(groups):
        words = group.split()
        if words and words[0] == "note":
            return next((w for w in words[1:] if w in GRACE_NOTES), None)
    return None


def _small(class_name: str | None, small: bool, known: Container[str]) -> str | None:
    if class_name is not None and small and f"{class_name}Small" in known:
        return f"{class_name}Small"
    return class_name


def glyph_rules(ctx: GlyphContext, known: Container[str]) -> str | None:
    """The v1 context rules for one glyph; ``known`` holds the glyph names that are classes as drawn.

    The v1 vocabulary passes its own catalogue; other vocabularies pass the glyph names they need
    and translate the result into their own names.
    """
    kinds = _kinds(ctx.groups)
    innermost = kinds[-1] if kinds else ""
    glyph = ctx.glyph

    grace = grace_note_symbol(ctx)
    if grace is not None:
        return grace if grace in known else None
    if glyph.startswith("text:"):
        char = glyph[5:]
        # Verovio sets fingering as text; other text (lyrics, titles, tempo, 'cresc.') is no symbol.
        return f"fingering{char}" if "fing" in kinds and f"fingering{char}" in known else None
    if glyph in _SHAPES:
        return _shape_class(glyph, innermost)

    if glyph in _KEY_ACCIDENTALS and "keySig" in kinds:
        return _KEY_ACCIDENTALS[glyph]
    clef = _CLEF_RE.fullmatch(glyph)
    if clef:
        return _clef_class(clef, kinds, ctx.clef_line)
    if any(glyph.startswith(prefix) and group not in kinds for prefix, group in _ONLY_INSIDE.items()):
        return None
    class_name = _ALIASES.get(glyph, glyph if glyph in known else None)
    return _small(class_name, ctx.small, known)


def _classify_v1(ctx: GlyphContext, catalogue: Catalogue) -> str | None:
    return glyph_rules(ctx, catalogue)


@functools.cache
def _rule_sets() -> dict[str, Callable[[GlyphContext, Catalogue], str | None]]:
    # Imported here: the v2 rules build on glyph_rules above, so the modules import each other.
    from deepscores.classes_v2 import classify_v2

    return {"deepscores": _classify_v1, "deepscoresv2": classify_v2, "deepscoresv2_strict": classify_v2}


def classify(ctx: GlyphContext, vocabulary: str = "deepscores") -> str | None:
    """The class of one drawn glyph in ``vocabulary``, or None when it is no symbol of that vocabulary."""
    rules = _rule_sets().get(vocabulary)
    if rules is None:
        raise DeepScoresError(f"no classification rules for vocabulary {vocabulary!r}; "
                              f"rules exist for: {', '.join(sorted(_rule_sets()))}")
    return rules(ctx, load_catalogue(vocabulary))


def merges_into_group(class_name: str) -> bool:
    """True when all glyphs of this class under one Verovio element form one symbol instance."""
    return class_name in _MERGED
