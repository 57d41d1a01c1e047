"""The class catalogue and the glyph → class rules, on hand-made contexts and on real Verovio SVG."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import verovio
from lxml import etree

from deepscores.classes import (
    _ALIASES,
    _KEY_ACCIDENTALS,
    _MERGED,
    MAX_CLASS_ID,
    Catalogue,
    GlyphContext,
    available_catalogues,
    classify,
    load_catalogue,
    merges_into_group,
)
from deepscores.errors import DeepScoresError


# -- catalogue ---------------------------------------------------------------------------------
def test_deepscores_ids_follow_the_public_class_list():
    cat = load_catalogue()
    assert len(cat) == 124
    assert (cat.id_of("brace"), cat.id_of("repeatDot"), cat.id_of("gClef")) == (1, 2, 5)
    assert (cat.id_of("noteheadBlack"), cat.id_of("fingering5")) == (30, 124)
    assert cat.name_of(30) == "noteheadBlack" and cat.name_of(124) == "fingering5"
    assert "keyFlat" in cat and "stem" not in cat and 3 not in cat
    assert load_catalogue("deepscores") is cat  # cached


def test_every_available_catalogue_fits_a_uint8_mask():
    for name in available_catalogues():
        cat = load_catalogue(name)
        assert 1 <= len(cat) <= MAX_CLASS_ID
        assert all(1 <= cat.id_of(n) <= MAX_CLASS_ID for n in cat.names)
        assert [cat.index_of(n) for n in cat.names] == list(range(len(cat)))


@pytest.mark.parametrize("bad", ["noteheadBlak", "", None])
def test_unknown_class_name_raises(bad):
    with pytest.raises(DeepScoresError, match="no class named"):
        load_catalogue().id_of(bad)


@pytest.mark.parametrize("bad", [0, 125, -1, True, "5"])
def test_unknown_class_id_raises(bad):
    with pytest.raises(DeepScoresError, match="no class with id"):
        load_catalogue().name_of(bad)


@pytest.mark.parametrize("bad", ["muscima", "../deepscores", "DeepScores"])
def test_unknown_vocabulary_lists_the_available_ones(bad):
    with pytest.raises(DeepScoresError, match=r"available: .*deepscores"):
        load_catalogue(bad)


def test_catalogue_rejects_duplicates_and_too_many_classes():
    with pytest.raises(DeepScoresError, match="duplicate"):
        Catalogue("x", ("a", "b", "a"))
    with pytest.raises(DeepScoresError, match="uint8"):
        Catalogue("x", tuple(f"c{i}" for i in range(MAX_CLASS_ID + 1)))


def test_rule_tables_only_name_catalogue_classes():
    cat = load_catalogue()
    targets = set(_ALIASES.values()) | set(_KEY_ACCIDENTALS.values()) | _MERGED
    assert targets <= set(cat.names)


# -- rules on hand-made contexts ---------------------------------------------------------------------
NOTE = ("system", "measure", "staff", "layer", "note")
CASES = [
    # same glyph, different symbol: key signature vs accidental, normal vs cue
    ("accidentalFlat", ("system", "measure", "staff", "keySig", "keyAccid"), False, "keyFlat"),
    ("accidentalNatural", ("system", "measure", "staff", "keySig", "keyAccid"), False, "keyNatural"),
    ("accidentalFlat", NOTE + ("accid",), False, "accidentalFlat"),
    ("accidentalFlat", NOTE + ("accid",), True, "accidentalFlatSmall"),
    ("accidentalDoubleFlat", NOTE + ("accid",), True, "accidentalDoubleFlat"),  # no small class
    ("accidentalParensLeft", NOTE + ("accid",), False, None),
    # dots
    ("ellipse", NOTE + ("dots",), False, "augmentationDot"),
    ("ellipse", ("system", "section placeholder systemMilestone"), False, None),
    ("articStaccatoAbove", NOTE + ("artic",), False, "articStaccatoAbove"),
    ("repeatDot", ("system", "measure", "barLine"), False, "repeatDot"),
    # noteheads and flags
    ("noteheadBlack", NOTE + ("notehead",), False, "noteheadBlack"),
    ("noteheadHalf", NOTE + ("notehead",), True, "noteheadHalfSmall"),
    ("noteheadDoubleWholeSquare", NOTE + ("notehead",), False, "noteheadDoubleWhole"),
    ("flag8thDown", NOTE + ("stem", "flag"), True, "flag8thDownSmall"),
    ("flag16thUp", NOTE + ("stem", "flag"), True, "flag16thUp"),
    # clefs: head of staff vs change inside the layer
    ("gClef", ("system", "measure", "staff", "clef"), False, "gClef"),
    ("gClef8vb", ("system", "measure", "staff", "clef"), False, "gClef"),
    ("fClefChange", ("system", "measure", "staff", "layer", "clef"), False, "fClefChange"),
    ("gClef15mb", ("system", "measure", "staff", "layer", "beam", "clef"), False, "gClefChange"),
    ("cClef", ("system", "measure", "staff", "clef"), False, "cClefAlto"),
    ("unpitchedPercussionClef1", ("system", "measure", "staff", "clef"), False, "unpitchedPercussionClef1"),
    # digits: time signature vs tuplet vs multi-measure-rest count vs fingering
    ("timeSig4", ("system", "measure", "staff", "meterSig"), False, "timeSig4"),
    ("timeSig4", NOTE[:4] + ("multiRest", "multiRestNum"), False, None),
    ("timeSigCutCommon", ("system", "measure", "staff", "meterSig"), False, "timeSigCutCommon"),
    ("tuplet3", NOTE[:4] + ("tuplet", "tupletNum"), False, "tuplet3"),
    ("tuplet5", NOTE[:4] + ("tuplet", "tupletNum"), False, None),
    ("text:3", ("system", "measure", "fing"), False, "fingering3"),
    ("text:7", ("system", "measure", "fing"), False, None),
    ("text:3", ("system", "measure", "mNum autogenerated"), False, None),
    # rests
    ("restWhole", NOTE[:4] + ("mRest",), False, "restWhole"),
    ("rect", NOTE[:4] + ("multiRest",), False, "restHBar"),
    ("restWholeLegerLine", NOTE[:4] + ("rest",), False, "restWhole"),
    # articulations, ornaments, dynamics, the rest
    ("articStaccatissimoWedgeBelow", NOTE + ("artic",), False, "articStaccatissimoBelow"),
    ("stringsUpBow", NOTE + ("artic technical",), False, "stringsUpBow"),
    ("dynamicFF", ("system", "measure", "dynam"), False, "dynamicFF"),
    ("dynamicForzando", ("system", "measure", "dynam"), False, None),
    ("text:c", ("system", "measure", "dynam"), False, None),
    ("ornamentShortTrill", ("system", "measure", "mordent"), False, None),
    ("wiggleArpeggiatoUpArrow", ("system", "measure", "arpeg"), False, "arpeggiato"),
    ("path", ("system", "grpSym"), False, "brace"),
    ("bracketTop", ("system", "grpSym"), False, None),
    ("path", ("system", "measure", "staff"), False, None),
    ("noteheadXBlack", NOTE + ("notehead",), False, None),
]


@pytest.mark.parametrize("glyph, groups, small, expected", CASES)
def test_classify(glyph, groups, small, expected):
    assert classify(GlyphContext(glyph, groups, small)) == expected


def test_c_clef_line_tells_tenor_from_alto():
    staff, layer = ("system", "measure", "staff", "clef"), ("system", "measure", "staff", "layer", "clef")
    assert classify(GlyphContext("cClef", staff, False, clef_line=4)) == "cClefTenor"
    assert classify(GlyphContext("cClef", staff, False, clef_line=3)) == "cClefAlto"
    assert classify(GlyphContext("cClefChange", layer, False, clef_line=4)) == "cClefTenorChange"


def test_multi_piece_symbols_merge():
    assert merges_into_group("arpeggiato") and merges_into_group("brace") and merges_into_group("restHBar")
    assert not merges_into_group("noteheadBlack") and not merges_into_group("repeatDot")


# -- the contexts really appear in Verovio's SVG -----------------------------------------------------
def _note(step, octave, kind, dur, extra="", staff=1, alter=None, inner=""):
    pitch = f"<step>{step}</step>{'' if alter is None else f'<alter>{alter}</alter>'}<octave>{octave}</octave>"
    return f"<note>{extra}<pitch>{pitch}</pitch><duration>{dur}</duration><type>{kind}</type>{inner}<staff>{staff}</staff></note>"


TRIPLET = "<time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification>"
SCORE = f"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name/></score-part></part-list>
<part id="P1"><measure number="1"><attributes><divisions>6</divisions><key><fifths>-2</fifths></key>
<time><beats>3</beats><beat-type>4</beat-type></time><staves>2</staves>
<clef number="1"><sign>G</sign><line>2</line></clef><clef number="2"><sign>F</sign><line>4</line></clef></attributes>
<direction placement="below"><direction-type><dynamics><ff/></dynamics></direction-type><staff>1</staff></direction>
{_note("B", 4, "quarter", 9, alter=-1, inner="<dot/><accidental>flat</accidental><notations><articulations><staccato placement='above'/></articulations><technical><fingering>3</fingering></technical></notations>")}
<note><grace/><pitch><step>E</step><alter>-1</alter><octave>5</octave></pitch><type>eighth</type><stem>up</stem><accidental>flat</accidental><staff>1</staff></note>
{_note("D", 5, "eighth", 3)}
{_note("C", 5, "eighth", 2, inner=TRIPLET + "<notations><tuplet type='start'/></notations>")}
{_note("D", 5, "eighth", 2, inner=TRIPLET)}
{_note("E", 5, "eighth", 2, alter=-1, inner=TRIPLET + "<notations><tuplet type='stop'/></notations>")}
<backup><duration>18</duration></backup>
{_note("C", 3, "half", 12, staff=2)}
<note><rest/><duration>6</duration><type>quarter</type><staff>2</staff></note>
<barline location="right"><bar-style>light-heavy</bar-style><repeat direction="backward"/></barline></measure>
<measure number="2"><attributes><clef number="2"><sign>G</sign><line>2</line></clef></attributes>
<note><rest measure="yes"/><duration>18</duration><staff>1</staff></note><backup><duration>18</duration></backup>
<note><rest measure="yes"/><duration>18</duration><staff>2</staff></note></measure>
</part></score-partwise>"""


def _engrave(xml: str, **options) -> str:
    tk = verovio.toolkit()
    tk.setOptions({"font": "Leipzig", "footer": "none", "header": "none", "xmlIdSeed": 1, **options})
    assert tk.loadData(xml)
    return tk.renderToSVG(1)


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _walk(svg: str) -> list[tuple[GlyphContext, float]]:
    """(context, <use> scale) for every ink element, built the way the annotator is specified to."""
    meta = etree.parse(str(Path(verovio.toolkit(False).getResourcePath()) / "Leipzig.xml"))
    names = {g.get("c").upper(): g.get("n") for g in meta.iter("g")}
    out = []
    for el in etree.fromstring(svg.encode()).iter():
        tag = _local(el)
        groups = tuple(a.get("class") for a in reversed(list(el.iterancestors()))
                       if _local(a) == "g" and a.get("class"))
        if tag == "use":
            href = el.get("{http://www.w3.org/1999/xlink}href").lstrip("#").split("-")[0].upper()
            scale = re.search(r"scale\(([\d.]+)", el.get("transform", "scale(1)"))
            out.append((GlyphContext(names[href], groups, False), float(scale.group(1)) if scale else 1.0))
        elif tag in ("ellipse", "rect", "path", "polygon", "polyline"):
            out.append((GlyphContext(tag, groups, False), 1.0))
        elif tag == "text":
            out += [(GlyphContext(f"text:{c}", groups, False), 1.0) for c in "".join(el.itertext()) if not c.isspace()]
    return out


@pytest.fixture(scope="module")
def engraved() -> list[tuple[GlyphContext, float]]:
    return _walk(_engrave(SCORE))


def _classes(engraved, glyph: str) -> Counter:
    return Counter(classify(ctx) for ctx, _ in engraved if ctx.glyph == glyph)


def test_svg_key_flat_and_accidental_flat(engraved):
    # two staves × B♭, E♭ in the key; one ♭ before the B, one before the grace E♭ (the triplet's E♭ is in the key)
    assert _classes(engraved, "accidentalFlat") == Counter({"keyFlat": 4, "accidentalFlat": 2})


def test_svg_dot_staccato_and_repeat_dots(engraved):
    assert _classes(engraved, "ellipse")["augmentationDot"] == 1
    assert _classes(engraved, "articStaccatoAbove") == Counter({"articStaccatoAbove": 1})
    assert _classes(engraved, "repeatDot") == Counter({"repeatDot": 4})  # two per staff, one symbol each


def test_svg_grace_note_is_drawn_smaller(engraved):
    scales = sorted({round(s, 3) for ctx, s in engraved if ctx.glyph == "noteheadBlack"})
    assert len(scales) == 2 and scales[0] < 0.85 * scales[1]  # what the caller's `small` flag detects
    grace_flat = min(s for ctx, s in engraved if ctx.glyph == "accidentalFlat")
    assert grace_flat == scales[0]


def test_svg_clef_change_sits_in_the_layer(engraved):
    clefs = Counter(classify(ctx) for ctx, _ in engraved if ctx.groups[-1:] == ("clef",))
    assert clefs == Counter({"gClef": 1, "fClef": 1, "gClefChange": 1})


def test_svg_time_signature_vs_tuplet_digit(engraved):
    assert _classes(engraved, "timeSig3") == Counter({"timeSig3": 2})
    assert _classes(engraved, "tuplet3") == Counter({"tuplet3": 1})


def test_svg_dynamic_fingering_brace_and_whole_measure_rest(engraved):
    assert _classes(engraved, "dynamicFF") == Counter({"dynamicFF": 1})
    assert Counter(classify(ctx) for ctx, _ in engraved if "fing" in ctx.groups) == Counter({"fingering3": 1})
    assert _classes(engraved, "restWhole") == Counter({"restWhole": 2})
    brace = [ctx for ctx, _ in engraved if classify(ctx) == "brace"]
    assert len(brace) == 2 and all(ctx.groups[-1] == "grpSym" for ctx in brace)  # two halves, one symbol


def test_svg_can_carry_the_clef_line_for_c_clefs():
    xml = SCORE.replace("<sign>F</sign><line>4</line>", "<sign>C</sign><line>4</line>")
    svg = _engrave(xml, svgAdditionalAttribute=["clef@line"])
    lines = re.findall(r'class="clef" data-line="(\d)"', svg)
    assert lines[:2] == ["2", "4"]
    c_clef = next(ctx for ctx, _ in _walk(svg) if ctx.glyph == "cClef")
    assert classify(GlyphContext(c_clef.glyph, c_clef.groups, False, clef_line=int(lines[1]))) == "cClefTenor"
