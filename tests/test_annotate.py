"""Ground truth of whole pages: boxes against pixels, mask against instances, context classes, oracles."""

from __future__ import annotations

from collections import Counter

import music21
import numpy as np
import pytest
from scipy import ndimage

from deepscores.annotate import label_maps, mark_occlusion, score_pages
from deepscores.engrave import FONTS, EngraveOptions
from deepscores.page import BACKGROUND_CLASS, Symbol
from deepscores.raster import class_mask_of
from tests.musicxml import note, rest, score, write


def classes_of(page) -> Counter:
    return Counter(s.class_name for s in page.symbols)


def assert_consistent(page) -> None:
    """Boxes match instance pixels (±1 px) and the class mask matches the instance map everywhere."""
    h, w = page.image.shape
    assert page.class_mask.shape == page.instance_map.shape == (h, w)
    assert page.image.dtype == page.class_mask.dtype == np.uint8 and page.instance_map.dtype == np.uint16
    lut = np.full(len(page.symbols) + 1, BACKGROUND_CLASS, np.uint8)
    lut[1:] = [s.class_id for s in page.symbols]
    assert np.array_equal(lut[page.instance_map], page.class_mask)
    extents = ndimage.find_objects(page.instance_map, max_label=len(page.symbols))
    for symbol, ext in zip(page.symbols, extents):
        x0, y0, x1, y1 = symbol.bbox_xyxy
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        if ext is None:
            assert symbol.hidden
            continue
        ys, xs = ext
        # Every pixel of the instance lies inside its box (±1 px: an outline ending exactly on a
        # pixel edge is traced into the next row by the label pass's hairline), occluded or not.
        assert x0 - 1 <= xs.start and xs.stop <= x1 + 1 and y0 - 1 <= ys.start and ys.stop <= y1 + 1, symbol
        if not symbol.occluded:
            assert max(abs(xs.start - x0), abs(ys.start - y0), abs(xs.stop - x1), abs(ys.stop - y1)) <= 1, symbol
    # Occlusion is the exception, not a loophole.
    assert sum(s.occluded for s in page.symbols) <= max(2, 0.03 * len(page.symbols))


def test_one_note_score_exact(tmp_path):
    path = write(tmp_path, score(note("C", 5, "whole", 4)))
    (page,) = score_pages(path)
    assert (page.width, page.height) == (1894, 2679)
    assert classes_of(page) == Counter({"gClef": 1, "timeSig4": 2, "noteheadWhole": 1})
    assert_consistent(page)
    head = next(s for s in page.symbols if s.class_name == "noteheadWhole")
    # A Leipzig whole notehead is 405 x 266 font units, drawn at 0.72 scale in 1/10 mm, at 1894/21000 px per unit.
    # The integer box encloses the outline, so it is at most 2 px (a fraction on each side) wider.
    px = 0.72 * 1894 / 21000
    assert 0 <= head.width - 405 * px < 2 and 0 <= head.height - 266 * px < 2
    ys, xs = np.nonzero(page.instance_map == head.instance_id)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == pytest.approx(head.bbox_xyxy, abs=1)
    # The image has ink under the notehead and white paper far from it.
    x0, y0, x1, y1 = head.bbox_xyxy
    assert page.image[y0:y1, x0:x1].min() < 64 and page.image[5, 5] == 255


def test_key_flat_versus_accidental_flat(tmp_path):
    path = write(tmp_path, score(note("B", 4, alter=-1) + note("E", 5, alter=-1, accidental="flat")
                                 + note("A", 4, alter=-1, accidental="flat") + rest(), fifths=-1))
    (page,) = score_pages(path)
    got = classes_of(page)
    assert got["keyFlat"] == 1 and got["accidentalFlat"] == 2
    assert_consistent(page)


def test_augmentation_dot_versus_staccato(tmp_path):
    staccato = "<articulations><staccato placement='above'/></articulations>"
    path = write(tmp_path, score(note("G", 4, "half", 3, dots=1) + note("A", 4, notations=staccato), divisions=1))
    (page,) = score_pages(path)
    got = classes_of(page)
    assert got["augmentationDot"] == 1
    assert got["articStaccatoAbove"] + got["articStaccatoBelow"] == 1
    assert_consistent(page)


def test_cue_notehead_is_small(tmp_path):
    path = write(tmp_path, score(note("C", 5) + note("D", 5, cue=True) + note("E", 5, "half", 2)))
    (page,) = score_pages(path)
    got = classes_of(page)
    assert got["noteheadBlackSmall"] == 1 and got["noteheadBlack"] == 1 and got["noteheadHalf"] == 1


def test_clef_change(tmp_path):
    change = "<attributes><clef><sign>F</sign><line>4</line></clef></attributes>"
    path = write(tmp_path, score(note("C", 5, "whole", 4), change + note("C", 3, "whole", 4)))
    (page,) = score_pages(path)
    got = classes_of(page)
    assert got["gClef"] == 1 and got["fClefChange"] == 1 and got["fClef"] == 0


def test_time_signature_digits_versus_tuplet_digits(tmp_path):
    tm = "<time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification>"
    start, stop = "<tuplet type='start' bracket='yes'/>", "<tuplet type='stop'/>"
    triplet = (note("C", 5, "eighth", 2, extra=tm, notations=start) + note("D", 5, "eighth", 2, extra=tm)
               + note("E", 5, "eighth", 2, extra=tm, notations=stop))
    path = write(tmp_path, score(triplet + note("C", 5, "half", 6), beats=3, beat_type=4, divisions=3))
    (page,) = score_pages(path)
    got = classes_of(page)
    assert got["timeSig3"] == 1 and got["timeSig4"] == 1 and got["tuplet3"] == 1


def test_every_font_renders_and_differs(tmp_path):
    path = write(tmp_path, score(note("C", 5, "half", 2, accidental="sharp", alter=1) + rest("half", 2)))
    images = {}
    for font in FONTS:
        (page,) = score_pages(path, EngraveOptions(font=font))
        assert_consistent(page)
        assert classes_of(page)["noteheadHalf"] == 1 and classes_of(page)["accidentalSharp"] == 1
        assert {s.font for s in page.symbols if s.class_name == "noteheadHalf"} == {font}
        images[font] = page.image
    for a in FONTS:
        for b in FONTS:
            if a < b:
                assert not np.array_equal(images[a], images[b]), (a, b)


def test_deterministic_bytes(tmp_path):
    path = write(tmp_path, score(note("C", 5) + note("E", 5) + note("G", 5) + rest()))
    a, b = score_pages(path)[0], score_pages(path)[0]
    for name in ("image", "class_mask", "instance_map"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.symbols == b.symbols


def test_400_dpi_geometry(tmp_path):
    path = write(tmp_path, score(note("C", 5, "whole", 4)))
    (page,) = score_pages(path, EngraveOptions(dpi=400))
    assert (page.width, page.height) == (3307, 4677)
    head = next(s for s in page.symbols if s.class_name == "noteheadWhole")
    px = 0.72 * 3307 / 21000
    assert 0 <= head.width - 405 * px < 2
    assert_consistent(page)


@pytest.mark.parametrize("work", ["joplin/maple_leaf_rag.mxl", "beethoven/opus18no1/movement1.mxl"])
def test_real_corpus_pages_consistent(work):
    path = music21.corpus.getWork(work)
    for font in ("Leipzig", "Bravura"):
        pages = score_pages(path, EngraveOptions(font=font))
        assert pages
        for page in pages[:2]:
            assert len(page.symbols) > 200
            assert_consistent(page)


BACH = ["bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1"]


@pytest.mark.parametrize("work", BACH)
def test_bach_notehead_count_equals_music21_notes(work):
    """Independent oracle: every note music21 parses is one notehead symbol, chord members included."""
    path = music21.corpus.getWork(work)
    parsed = music21.converter.parse(path)
    expected = sum(len(n.pitches) for n in parsed.recurse().notes)
    pages = score_pages(path)
    noteheads = sum(1 for p in pages for s in p.symbols if s.class_name.startswith("notehead"))
    assert noteheads == expected


def test_alto_and_tenor_c_clefs(tmp_path):
    alto = write(tmp_path, score(note("C", 4, "whole", 4), clef=("C", 3)), "alto.musicxml")
    tenor = write(tmp_path, score(note("C", 4, "whole", 4), clef=("C", 4)), "tenor.musicxml")
    assert classes_of(score_pages(alto)[0])["cClefAlto"] == 1
    assert classes_of(score_pages(tenor)[0])["cClefTenor"] == 1


def test_unmapped_glyphs_are_counted_not_dropped(tmp_path):
    # A quintuplet's digit 5 has no DeepScores class: it must show up in the page's unmapped tally.
    tm = "<time-modification><actual-notes>5</actual-notes><normal-notes>4</normal-notes></time-modification>"
    notes = "".join(note("C", 5, "16th", 1, extra=tm, notations="<tuplet type='start'/>" if i == 0 else
                         "<tuplet type='stop'/>" if i == 4 else "") for i in range(5))
    path = write(tmp_path, score(notes + rest("half", 10) + rest("quarter", 5) + note("C", 5, "eighth", 2, extra="")
                                 + note("C", 5, "eighth", 3), divisions=5, beats=4))
    (page,) = score_pages(path)
    assert page.unmapped.get("tuplet5") == 1


def test_gootville_fallback_glyphs_record_the_font_that_drew_them(tmp_path):
    # Gootville has no tuplet digits and no clef-change clefs: Verovio draws those from Leipzig.
    tm = "<time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification>"
    triplet = (note("C", 5, "eighth", 2, extra=tm, notations="<tuplet type='start' bracket='yes'/>")
               + note("D", 5, "eighth", 2, extra=tm) + note("E", 5, "eighth", 2, extra=tm, notations="<tuplet type='stop'/>"))
    change = "<attributes><clef><sign>F</sign><line>4</line></clef></attributes>"
    path = write(tmp_path, score(triplet + note("C", 5, "half", 6), change + note("C", 3, "whole", 12), beats=3, divisions=3))
    (page,) = score_pages(path, EngraveOptions(font="Gootville"))
    fonts = {s.class_name: s.font for s in page.symbols}
    assert fonts["tuplet3"] == "Leipzig" and fonts["fClefChange"] == "Leipzig"
    assert fonts["gClef"] == fonts["noteheadBlack"] == fonts["timeSig3"] == "Gootville"


def test_score_colours_do_not_leak_into_labels(tmp_path):
    plain = score(note("C", 5) + note("E", 5) + note("G", 5, "half", 2))
    coloured = plain.replace("<note>", '<note color="#FF0000">', 2).replace("<accidental>", '<accidental color="#00FF00">')
    a = score_pages(write(tmp_path, plain, "plain.musicxml"))[0]
    b = score_pages(write(tmp_path, coloured, "coloured.musicxml"))[0]
    from deepscores.corpus import load_score
    from deepscores.engrave import engrave
    svg = engrave(load_score(tmp_path / "coloured.musicxml"), EngraveOptions())[0].svg
    assert 'fill="#FF0000"' in svg  # Verovio really passes the colour on
    assert a.class_mask.tobytes() == b.class_mask.tobytes()
    assert a.instance_map.tobytes() == b.instance_map.tobytes()
    assert a.image.tobytes() == b.image.tobytes()
    assert [(s.class_name, s.bbox_xyxy) for s in a.symbols] == [(s.class_name, s.bbox_xyxy) for s in b.symbols]


def test_mark_occlusion_on_a_hand_made_map(caplog):
    """Each outcome once, with the extents scipy's find_objects gives the same map."""
    boxes = [(10, 10, 20, 20),   # 1: spans its box exactly
             (30, 10, 40, 20),   # 2: its right half is painted over by 3
             (35, 8, 45, 22),    # 3: the symbol drawn over 2
             (60, 10, 70, 20),   # 4: no pixel left anywhere: hidden
             (80, 10, 90, 20),   # 5: one stray pixel 3 px left of its box, nothing near: logged
             (100, 10, 110, 20)]  # 6: spans its box ±1 px (the label pass's hairline)
    instance_map = np.zeros((40, 130), np.uint16)
    for instance_id, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        if instance_id != 4:
            instance_map[y0:y1, x0:x1] = instance_id
    instance_map[15, 77] = 5
    instance_map[9:21, 99:111] = 6
    symbols = [Symbol(1, "x", box, i, "Leipzig") for i, box in enumerate(boxes, start=1)]
    marked = mark_occlusion(symbols, instance_map)
    assert [(s.hidden, s.occluded) for s in marked] == [
        (False, False), (False, True), (False, False), (True, True), (False, False), (False, False)]
    assert "nothing covers it" in caplog.text and "(77, 10, 90, 20)" in caplog.text
    extents = ndimage.find_objects(instance_map, max_label=len(boxes))
    assert extents[3] is None and (extents[4][1].start, extents[4][1].stop) == (77, 90)


def test_label_maps_match_a_whole_page_look_up():
    """The class mask from the boxes' windows equals the look-up over the whole map, both when every
    pixel lies near its box (the windows suffice) and when one strays (the whole map is used)."""
    boxes = np.array([(10, 10, 20, 20), (15, 12, 30, 18), (40, 5, 42, 35)], np.int64)
    instance_map = np.zeros((40, 60), np.uint16)
    for instance_id, (x0, y0, x1, y1) in enumerate(boxes.tolist(), start=1):
        instance_map[y0:y1, x0:x1] = instance_id
    class_ids = [0, 7, 0, 254]  # class 0 exists too: it must not read as background
    for stray in (False, True):
        if stray:
            instance_map[38, 2] = 2  # far outside box 2
        class_mask, extents = label_maps(instance_map, boxes, class_ids)
        assert np.array_equal(class_mask, class_mask_of(instance_map, class_ids))
        assert np.count_nonzero(class_mask == 7) == 10 * 10 - 5 * 6  # box 1 minus what 2 covers
        assert np.count_nonzero(class_mask == 0) == 15 * 6 + stray
        assert extents == [(10, 10, 20, 20), (2, 12, 30, 39) if stray else (15, 12, 30, 18), (40, 5, 42, 35)]
