"""Reading page XMLs: the fast path for files in page_xml's exact layout gives the records lxml gives,
and hands every other file, or any doubtful field, to lxml."""

from __future__ import annotations

from dataclasses import replace

import music21
import pytest

from deepscores.annotate import score_pages
from deepscores.classes import load_catalogue
from deepscores.errors import DeepScoresError
from deepscores.formats import deepscores_xml
from deepscores.formats.deepscores_xml import _parse_own, page_xml, read_page_xml
from tests.test_formats import synthetic_page, tiny_pages


def lxml_record(data: bytes, monkeypatch) -> deepscores_xml.PageRecord:
    with monkeypatch.context() as patch:
        patch.setattr(deepscores_xml, "_parse_own", lambda data: None)
        return deepscores_xml._parse(data)


@pytest.fixture(scope="module")
def real_files() -> list[bytes]:
    v2 = score_pages(music21.corpus.getWork("bach/bwv66.6"), catalogue=load_catalogue("deepscoresv2"),
                     full_instances=True)[0]
    pages = [(name, page) for name, page in tiny_pages()] + [("bwv66-p001-leipzig", v2)]
    return [page_xml(page, name) for name, page in pages]


def test_fast_path_reads_real_pages_as_lxml_does(real_files, monkeypatch):
    for data in real_files:
        record = _parse_own(data)
        assert record is not None and record == lxml_record(data, monkeypatch)
    v2 = _parse_own(real_files[-1])
    # Every optional field of a DeepScoresV2 page comes through.
    assert all(o.o_bbox is not None and o.area_px is not None for o in v2.objects)
    assert any(o.onset is not None for o in v2.objects) and any(o.rel_position is not None for o in v2.objects)
    assert len(v2.objects) > 100


def test_other_layouts_go_through_lxml_and_read_the_same(real_files, monkeypatch, tmp_path):
    data = real_files[0]
    expected = _parse_own(data)
    first = data.index(b"  <object>")
    variants = {
        "crlf": data.replace(b"\n", b"\r\n"),
        "comment": data[:first] + b"  <!-- a note -->\n" + data[first:],
        "indent": data.replace(b"    <name>", b"      <name>"),
        "reference": data.replace(b"<name>noteheadBlack</name>", b"<name>notehead&#66;lack</name>", 1),
        "padded flag": data.replace(b"<hidden>0</hidden>", b"<hidden> 0 </hidden>", 1),
    }
    for label, variant in variants.items():
        assert variant != data, label
        assert _parse_own(variant) is None, label
        path = tmp_path / f"{label}.xml"
        path.write_bytes(variant)
        assert read_page_xml(path) == expected, label
    # Escaped text (the synthetic page has a glyph named "text:<&>") is lxml's to read.
    synthetic = page_xml(synthetic_page(), "abc123-p002-bravura")
    assert _parse_own(synthetic) is None
    assert lxml_record(synthetic, monkeypatch).objects[2].glyph == "text:<&>"


@pytest.mark.parametrize("old, new, cause", [
    (b"<hidden>0</hidden>", b"<hidden>2</hidden>", "object 1: <hidden> must be 0 or 1"),
    (b"<xmin>", b"<xmin>x", "object 1: <xmin> is not a number"),
    (b"<instance>1</instance>", b"<instance></instance>", None),  # empty: the 1-based position, as in lxml
])
def test_doubtful_fields_get_lxml_s_verdict(real_files, tmp_path, old, new, cause):
    data = real_files[0].replace(old, new, 1)
    assert _parse_own(data) is None
    path = tmp_path / "bad.xml"
    path.write_bytes(data)
    if cause is None:
        assert read_page_xml(path).objects[0].instance_id == 1
    else:
        with pytest.raises(DeepScoresError, match=f"bad.xml: {cause}"):
            read_page_xml(path)


def test_oriented_box_of_the_wrong_length_is_refused(real_files, tmp_path):
    v2 = real_files[-1]
    start = v2.index(b"<o_bbox>") + len(b"<o_bbox>")
    data = v2[:start] + b"1 2 3" + v2[v2.index(b"</o_bbox>", start):]
    assert _parse_own(data) is None
    (tmp_path / "bad.xml").write_bytes(data)
    with pytest.raises(DeepScoresError, match="bad.xml: object 1: <o_bbox> is not 8 finite numbers"):
        read_page_xml(tmp_path / "bad.xml")


def test_a_record_with_an_empty_page_size_is_refused_on_both_paths(real_files, tmp_path):
    data = real_files[0].replace(b"<width>1894</width>", b"<width>0</width>", 1)
    assert data != real_files[0]
    (tmp_path / "bad.xml").write_bytes(data)
    with pytest.raises(DeepScoresError, match="bad.xml: page size 0x2679 is empty"):
        read_page_xml(tmp_path / "bad.xml")
    assert replace(_parse_own(real_files[0]), objects=[]).width == 1894
