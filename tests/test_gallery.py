"""The class gallery: every class of every vocabulary made by a minimal score, in every font, with the
right class at the right place; and the mapping decisions it needed (octave clefs, 12 and 16 time
signatures, grace notes, the maxima rest, letter-by-letter dynamics in v2)."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pytest

from deepscores.annotate import score_pages
from deepscores.classes import load_catalogue
from deepscores.engrave import FONTS, EngraveOptions, engrave
from deepscores.corpus import load_score
from deepscores.gallery import GALLERY_PAGE_HEIGHT_MM, check_entry, gallery, not_producible, uncovered
from deepscores.stats import compute_stats
from deepscores.svg import parse_svg
from tests.test_stats import hand  # noqa: F401  (fixture)

ENTRIES = gallery()


@pytest.mark.parametrize("font", FONTS)
@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.vocabulary}-{e.class_name}" for e in ENTRIES])
def test_every_class_in_every_font(entry, font):
    assert check_entry(entry, font) == []


@pytest.mark.parametrize("vocabulary", ["deepscores", "deepscoresv2", "deepscoresv2_strict"])
def test_every_class_has_a_score_or_a_reason(vocabulary):
    assert uncovered(vocabulary) == []
    # The goal is an empty table: today no class lacks a score.
    assert not_producible(vocabulary) == {}


def test_every_muscima_class_is_reached_from_a_gallery_class():
    table = resources.files("deepscores").joinpath("data/muscima_deepscoresv2.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(table.splitlines()))
    shown = {e.class_name for e in gallery("deepscoresv2")}
    muscima = {r["muscima_id"] for r in rows if r["muscima_id"]}
    assert len(muscima) == 72
    assert {r["muscima_id"] for r in rows if r["muscima_id"] and r["v2_name"] in shown} == muscima


def _page(name: str, vocabulary: str = "deepscores", font: str = "Leipzig"):
    entry = next(e for e in gallery() if e.file == name)
    options = EngraveOptions(font=font, page_height_mm=GALLERY_PAGE_HEIGHT_MM)
    return score_pages(entry.path, options, load_catalogue(vocabulary))[0], entry


def _boxes(page, name):
    return [s.bbox_xyxy for s in page.symbols if s.class_name == name]


@pytest.mark.parametrize("font", FONTS)
def test_octave_clef_is_a_clef_and_its_digit(font):
    page, entry = _page("clef8.mei", font=font)
    (clef,), (digit,) = _boxes(page, "gClef"), _boxes(page, "clef8")
    # The digit sits under the clef, and the two boxes together are exactly the combined glyph's box.
    assert digit[1] >= clef[1] + (clef[3] - clef[1]) // 2 and digit[3] > clef[3]
    options = EngraveOptions(font=font, page_height_mm=GALLERY_PAGE_HEIGHT_MM)
    svg = engrave(load_score(entry.path), options)[0]
    combined = next(i for i in parse_svg(svg.svg, svg.width_px, svg.height_px, font).inks if i.glyph == "gClef8vb")
    r = combined.page_bounds()
    whole = (int(np.floor(r.left() + 1e-4)), int(np.floor(r.top() + 1e-4)),
             int(np.ceil(r.right() - 1e-4)), int(np.ceil(r.bottom() - 1e-4)))
    union = (min(clef[0], digit[0]), min(clef[1], digit[1]), max(clef[2], digit[2]), max(clef[3], digit[3]))
    assert union == whole
    # Each part owns its pixels in the mask; the image is the uncut glyph.
    catalogue = load_catalogue()
    x0, y0, x1, y1 = digit
    window = page.class_mask[y0:y1, x0:x1]
    # The clef's tail may cross the top rows of the digit's box; the box is the digit's.
    assert np.count_nonzero(window == catalogue.id_of("clef8")) > 4 * np.count_nonzero(window == catalogue.id_of("gClef"))


def test_time_signature_twelve_is_one_symbol_in_v1_and_two_digits_in_v2():
    page, _ = _page("timeSig12.mei")
    (twelve,) = _boxes(page, "timeSig12")
    assert _boxes(page, "timeSig1") == [] and _boxes(page, "timeSig2") == []
    (eight,) = _boxes(page, "timeSig8")
    assert twelve[3] <= eight[1] + 1 and twelve[2] - twelve[0] > 1.6 * (eight[2] - eight[0])
    v2, _ = _page("timeSig12.mei", "deepscoresv2")
    (one,), (two,) = _boxes(v2, "timeSig1"), _boxes(v2, "timeSig2")
    assert (min(one[0], two[0]), min(one[1], two[1]), max(one[2], two[2]), max(one[3], two[3])) == twelve
    sixteen, _ = _page("timeSig16.mei")
    assert len(_boxes(sixteen, "timeSig16")) == 2 and _boxes(sixteen, "timeSig6") == []


@pytest.mark.parametrize("name,up,slashed", [
    ("graceNoteAcciaccaturaStemUp", True, True), ("graceNoteAppoggiaturaStemUp", True, False),
    ("graceNoteAcciaccaturaStemDown", False, True), ("graceNoteAppoggiaturaStemDown", False, False)])
def test_grace_note_is_notehead_stem_flag_and_slash(name, up, slashed):
    page, _ = _page(f"{name}.mei")
    (grace,) = _boxes(page, name)
    heads = _boxes(page, "noteheadBlack")
    assert len(heads) == 4 and not _boxes(page, "noteheadBlackSmall")
    assert not [s for s in page.symbols if s.class_name.startswith("flag")]
    head_height = heads[0][3] - heads[0][1]
    # Notehead, stem and flag: about three staff spaces tall at grace size, far taller than a head.
    assert grace[3] - grace[1] > 2.2 * head_height
    catalogue = load_catalogue()
    x0, y0, x1, y1 = grace
    labelled = page.class_mask[y0:y1, x0:x1] == catalogue.id_of(name)
    assert labelled[:3].any() and labelled[-3:].any()  # both ends: flag end and notehead end
    # v2: the grace note takes its stem; the four quarters keep theirs.
    v2, _ = _page(f"{name}.mei", "deepscoresv2")
    assert len(_boxes(v2, name)) == 1 and len(_boxes(v2, "stem")) == 4


def test_maxima_rest_and_letter_dynamics():
    page, _ = _page("restMaxima.mei")
    assert len(_boxes(page, "restMaxima")) == 1 and page.unmapped == {}
    v1, _ = _page("dynamicSforzato.mei")
    assert [s.class_name for s in v1.symbols if s.class_name.startswith("dynamic")] == ["dynamicSforzato"]
    v2, _ = _page("dynamicSforzato.mei", "deepscoresv2")
    letters = sorted((s.bbox_xyxy[0], s.class_name) for s in v2.symbols if s.class_name.startswith("dynamic"))
    assert [name for _, name in letters] == ["dynamicS", "dynamicF", "dynamicZ"] and v2.unmapped == {}


def test_stats_mark_unproducible_classes_apart_from_absent(hand, monkeypatch):  # noqa: F811
    monkeypatch.setattr("deepscores.stats.not_producible", lambda vocabulary: {"restMaxima": "a reason"})
    s = compute_stats(hand)
    assert s.classes_not_producible == {"restMaxima": "a reason"}
    assert "restMaxima" not in s.classes_absent and len(s.classes_absent) == 124 - 4 - 1
