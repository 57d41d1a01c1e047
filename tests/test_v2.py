"""DeepScoresV2 vocabularies: published ids, the muscima++ table, non-fixed-shape symbols drawn by
Verovio, noteheads split by staff position, and a v2 dataset end to end."""

from __future__ import annotations

import csv
import json
from collections import Counter

import music21
import numpy as np
import pytest
from scipy import ndimage

from deepscores.annotate import score_pages
from deepscores.classes import Catalogue, GlyphContext, classify, load_catalogue
from deepscores.classes_v2 import (
    _HAIRPINS, _NOTEHEAD_RE, _RENAMES, _SHAPE_CLASSES, _known_glyphs, hairpin_opening, muscima_id_of,
    staff_position,
)
from deepscores.errors import DeepScoresError
from deepscores.page import BACKGROUND_CLASS
from tests.musicxml import note, rest, score, write
from tests.test_annotate import assert_consistent

from tests.reference import REFERENCE
V2 = "deepscoresv2"


def published() -> list[dict[str, str]]:
    with open(REFERENCE / "categories.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def classes_of(page) -> Counter:
    return Counter(s.class_name for s in page.symbols)


def v2_pages(path, **kw):
    return score_pages(path, catalogue=load_catalogue(V2), **kw)


# -- vocabularies ------------------------------------------------------------------------------
@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference sample not present")
def test_v2_ids_are_the_published_ones():
    expected = [(int(r["id"]), r["name"]) for r in published() if r["annotation_set"] == "deepscores"]
    assert len(expected) == 136
    strict = load_catalogue("deepscoresv2_strict")
    assert list(strict.items()) == expected
    full = load_catalogue(V2)
    assert list(full.items()) == expected + [(209, "barline")]
    assert full.name_of(25) == "noteheadBlackOnLine" and full.id_of("staff") == 135 and "barline" not in strict


def test_catalogue_with_explicit_sparse_ids():
    cat = Catalogue("x", ("a", "b", "c"), (2, 7, 254))
    assert cat.ids == (2, 7, 254) and cat.items() == ((2, "a"), (7, "b"), (254, "c"))
    assert cat.id_of("b") == 7 and cat.name_of(254) == "c" and len(cat) == 3 and "a" in cat
    with pytest.raises(DeepScoresError, match="no class with id"):
        cat.name_of(3)
    for bad in ((2, 2, 3), (3, 2, 4), (1, 2, 255), (0, 1, 2), (1, 2)):
        with pytest.raises(DeepScoresError, match="ids"):
            Catalogue("x", ("a", "b", "c"), bad)
    assert load_catalogue().ids == tuple(range(1, 125))  # v1 keeps its positional ids


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference sample not present")
def test_muscima_table_agrees_with_every_pair_in_the_published_sample():
    sample = json.loads((REFERENCE / "deepscores_v2_sample.json").read_text(encoding="utf-8"))
    pairs = {tuple(a["cat_id"]) for a in sample["annotations"].values()}
    assert len(pairs) == 35
    for v2_id, muscima in pairs:
        assert muscima_id_of(int(v2_id)) == (int(muscima) if muscima else None)
    muscima_ids = {int(r["id"]) for r in published() if r["annotation_set"] == "muscima++"}
    table = {i: muscima_id_of(i) for i in range(1, 137)}
    assert {m for m in table.values() if m} <= muscima_ids
    # a few known pairs: key flat -> accidentalFlat, both C clefs -> clefC, no counterpart for bowings
    assert (table[68], table[7], table[8], table[109], table[2], table[135]) == (171, 143, 143, None, 138, 208)
    with pytest.raises(DeepScoresError):
        muscima_id_of(209)


def test_every_v2_class_has_a_rule():
    """Each v2 name is produced by some rule: a rename, a shape, a notehead split or its own glyph."""
    made = set(_RENAMES.values()) | set(_SHAPE_CLASSES.values()) | set(_HAIRPINS.values()) | {"restHNr"}
    for name in load_catalogue(V2).names:
        split = _NOTEHEAD_RE.fullmatch(name.replace("OnLine", "").replace("InSpace", ""))
        assert name in made or split or name in _known_glyphs(), name
    assert classify(GlyphContext("gClef", ("system", "measure", "staff", "clef")), V2) == "clefG"
    assert classify(GlyphContext("path", ("system", "measure", "staff", "layer", "note", "stem")), V2) == "stem"
    assert classify(GlyphContext("path", ("system", "measure", "barLine")), "deepscoresv2_strict") is None
    assert classify(GlyphContext("noteheadBlack", ("note", "notehead"), True, rel_position=-3), V2) \
        == "noteheadBlackInSpaceSmall"
    with pytest.raises(DeepScoresError, match="no classification rules"):
        classify(GlyphContext("gClef", ()), "muscima")


def test_v1_rules_are_untouched_by_the_new_fields():
    ctx = GlyphContext("noteheadBlack", ("note", "notehead"), False)
    assert classify(ctx) == classify(ctx, "deepscores") == "noteheadBlack"
    assert classify(GlyphContext("path", ("note", "stem"))) is None


def test_staff_position_and_hairpin_arithmetic():
    lines = (100.0, 110.0, 120.0, 130.0, 140.0)  # staff space 10 px
    assert [staff_position(y, lines) for y in (120, 115, 110, 100, 90, 150, 155)] == [0, 1, 2, 4, 6, -6, -7]
    assert staff_position(5.0, (5.0,)) is None
    assert hairpin_opening([(50, 20), (0, 10), (50, 0)]) == "right"
    assert hairpin_opening([(0, 20), (50, 10), (0, 0)]) == "left"


# -- symbols on a tiny score ---------------------------------------------------------------------
TRIPLET = "<time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification>"


def _tiny_score() -> str:
    slur = lambda t: f"<slur type='{t}' number='1'/>"  # noqa: E731
    wedge = lambda t: f"<direction><direction-type><wedge type='{t}'/></direction-type></direction>"  # noqa: E731
    octave = lambda t: f"<direction><direction-type><octave-shift type='{t}' size='8'/></direction-type></direction>"  # noqa: E731
    m1 = (note("C", 5, "eighth", 1, notations=slur("start"), extra="<beam number='1'>begin</beam>")
          + note("D", 5, "eighth", 1, extra="<beam number='1'>end</beam>")
          + note("E", 5, "quarter", 2, notations=slur("stop"))
          + note("G", 5, "half", 4, extra="<tie type='start'/>", notations="<tied type='start'/>"))
    m2 = (wedge("crescendo") + note("G", 5, "half", 4, extra="<tie type='stop'/>", notations="<tied type='stop'/>")
          + wedge("stop") + octave("down")
          + note("C", 5, "eighth", 2, extra=TRIPLET, notations="<tuplet type='start' bracket='yes'/>")
          + note("D", 5, "eighth", 2, extra=TRIPLET)
          + note("E", 5, "eighth", 2, extra=TRIPLET, notations="<tuplet type='stop'/>")
          + note("C", 6, "quarter", 2) + octave("stop"))
    m3 = (wedge("diminuendo") + note("A", 3, "quarter", 2, notations="<arpeggiate/>")
          + note("C", 4, "quarter", 2, chord=True) + note("E", 4, "quarter", 2, chord=True)
          + note("B", 5, "quarter", 2) + note("C", 4, "half", 4) + wedge("stop"))
    m4 = "<attributes><measure-style><multiple-rest>3</multiple-rest></measure-style></attributes>" + rest("whole", 8)
    return score(m1, m2, m3, m4, rest("whole", 8), rest("whole", 8), divisions=2)


@pytest.fixture(scope="module")
def tiny_page(tmp_path_factory):
    (page,) = v2_pages(write(tmp_path_factory.mktemp("tiny"), _tiny_score()))
    return page


def test_non_fixed_shape_symbols_exact_counts(tiny_page):
    got = classes_of(tiny_page)
    # 12 notes with stems (the chord has one), one beam line, ledger lines: C4 x2, A3 (2 lines), C6 (8va).
    expected = {"stem": 12, "beam": 1, "legerLine": 5, "staff": 1, "slur": 1, "tie": 1,
                "dynamicCrescendoHairpin": 1, "dynamicDiminuendoHairpin": 1, "tupletBracket": 1,
                "ottavaBracket": 1, "arpeggiato": 1, "barline": 4, "restHNr": 1, "clefG": 1, "tuplet3": 1}
    assert {k: got[k] for k in expected} == expected
    assert_consistent(tiny_page)
    staff = next(s for s in tiny_page.symbols if s.class_name == "staff")
    bars = [s.bbox_xyxy for s in tiny_page.symbols if s.class_name == "barline"]
    # One symbol across every measure of the system: it spans from the clef to the last barline.
    assert staff.bbox_xyxy[0] < min(b[0] for b in bars) and staff.bbox_xyxy[2] >= max(b[2] for b in bars) - 1


def test_class_mask_carries_the_new_classes_and_noteheads_keep_staff_pixels(tiny_page):
    cat = load_catalogue(V2)
    values = set(np.unique(tiny_page.class_mask)) - {BACKGROUND_CLASS}
    assert {cat.id_of(n) for n in ("stem", "beam", "staff", "legerLine", "slur", "tie", "barline")} <= values
    staff = next(s for s in tiny_page.symbols if s.class_name == "staff")
    head = next(s for s in tiny_page.symbols if s.class_name == "noteheadBlackOnLine")
    x0, y0, x1, y1 = head.bbox_xyxy
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    # The notehead is drawn over the staff line through its middle, so it owns those pixels.
    assert tiny_page.instance_map[cy, cx] == head.instance_id
    assert (tiny_page.instance_map == staff.instance_id).sum() > 0


def test_c_major_scale_on_line_and_in_space(tmp_path):
    steps = [(s, 4) for s in "CDEFGAB"] + [(s, 5) for s in "CDEFGAB"] + [("C", 6)]
    measures = ["".join(note(s, o) for s, o in steps[i:i + 4]) for i in range(0, 16, 4)]
    measures[-1] += rest()
    (page,) = v2_pages(write(tmp_path, score(*measures)))
    heads = sorted((s for s in page.symbols if s.class_name.startswith("notehead")), key=lambda s: s.bbox_xyxy[0])
    assert [s.rel_position for s in heads] == list(range(-6, 9))
    assert [s.class_name for s in heads] == [
        "noteheadBlackOnLine" if p % 2 == 0 else "noteheadBlackInSpace" for p in range(-6, 9)]
    assert heads[0].class_name == "noteheadBlackOnLine" and heads[1].class_name == "noteheadBlackInSpace"
    assert classes_of(page)["legerLine"] == 5  # C4: 1 below; A5, B5: 1 above each; C6: 2 above
    assert_consistent(page)
    # v1 keeps its classes and gets the same staff positions (musical meaning, not a class).
    (v1,) = score_pages(tmp_path / "score.musicxml")
    v1_heads = sorted((s for s in v1.symbols if s.class_name == "noteheadBlack"), key=lambda s: s.bbox_xyxy[0])
    assert [s.rel_position for s in v1_heads] == list(range(-6, 9))
    assert not {"stem", "staff", "legerLine"} & set(classes_of(v1))


# -- real corpus pages -------------------------------------------------------------------------
def test_bach_chorale_v2_page_consistent():
    (page,) = v2_pages(music21.corpus.getWork("bach/bwv66.6"))
    assert_consistent(page)
    got = classes_of(page)
    assert got["staff"] == 8 and got["stem"] > 100 and got["barline"] > 20
    parsed = music21.converter.parse(music21.corpus.getWork("bach/bwv66.6"))
    heads = sum(n for name, n in got.items() if name.startswith("notehead"))
    assert heads == sum(len(n.pitches) for n in parsed.recurse().notes)
    assert all(s.rel_position is not None for s in page.symbols if s.class_name.startswith("notehead"))


def test_joplin_v2_page_consistent_except_stem_crossings():
    """Every check of assert_consistent holds; the occlusion quota is exceeded only where a stem
    crosses the heads of a chord or ends on a beam (docs/v2.md, pixel ownership)."""
    page = v2_pages(music21.corpus.getWork("joplin/maple_leaf_rag.mxl"))[0]
    lut = np.full(len(page.symbols) + 1, BACKGROUND_CLASS, np.uint8)
    lut[1:] = [s.class_id for s in page.symbols]
    assert np.array_equal(lut[page.instance_map], page.class_mask)
    for symbol, ext in zip(page.symbols, ndimage.find_objects(page.instance_map, max_label=len(page.symbols))):
        x0, y0, x1, y1 = symbol.bbox_xyxy
        assert ext is not None, symbol
        ys, xs = ext
        assert x0 - 1 <= xs.start and xs.stop <= x1 + 1 and y0 - 1 <= ys.start and ys.stop <= y1 + 1, symbol
        if not symbol.occluded:
            assert max(abs(xs.start - x0), abs(ys.start - y0), abs(xs.stop - x1), abs(ys.stop - y1)) <= 1
    occluded = Counter(s.class_name for s in page.symbols if s.occluded)
    assert set(occluded) <= {"noteheadBlackOnLine", "noteheadBlackInSpace", "beam", "staff", "flag8thDown",
                             "flag16thDown", "flag8thUp", "flag16thUp"}
    assert sum(occluded.values()) < 0.2 * len(page.symbols)


# -- end to end ----------------------------------------------------------------------------------
def test_generate_and_validate_a_v2_dataset(tmp_path):
    from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate
    from deepscores.validate import validate_dataset

    src = write(tmp_path, _tiny_score())
    out = tmp_path / "ds"
    run_generate(GenerateOptions(sources=(str(src),), classes=V2, fonts=("Leipzig",)),
                 RunSettings(out=out, workers=1, progress=False))
    assert validate_dataset(out) == []
    coco = json.loads(next((out / "coco").glob("*.json")).read_text(encoding="utf-8"))
    assert [c["id"] for c in coco["categories"]] == list(range(1, 137)) + [209]
    assert {c["name"] for c in coco["categories"]} >= {"stem", "staff", "barline", "noteheadBlackOnLine"}
