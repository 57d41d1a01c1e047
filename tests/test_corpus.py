"""Tests for deepscores.corpus: loading, decoding and rejecting score files; finding them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from deepscores.corpus import (
    SCORE_SUFFIXES,
    Score,
    corpus_relative_name,
    default_corpus,
    find_scores,
    load_score,
)
from deepscores.errors import OptionsError, ScoreError, UnsupportedFormatError

ONE_NOTE = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
  <part id="P1"><measure number="1">
    <attributes><divisions>1</divisions><clef><sign>G</sign><line>2</line></clef></attributes>
    <note><pitch><step>C</step><octave>5</octave></pitch><duration>4</duration><type>whole</type></note>
  </measure></part>
</score-partwise>
"""

CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container><rootfiles><rootfile full-path="score/inner.xml"/></rootfiles></container>
"""


def write_mxl(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_load_musicxml(tmp_path: Path) -> None:
    path = tmp_path / "one.xml"
    path.write_text(ONE_NOTE, encoding="utf-8")
    score = load_score(path)
    assert isinstance(score, Score)
    assert score.input_from == "musicxml"
    assert score.data == ONE_NOTE
    assert len(score.content_hash) == 64
    assert score.score_id == score.content_hash[:16]
    # Renaming the file keeps its id: the id comes from the bytes.
    other = tmp_path / "renamed.musicxml"
    other.write_bytes(path.read_bytes())
    assert load_score(other).score_id == score.score_id


def test_utf16_mxl_with_container_is_decoded_to_utf8_declaration(tmp_path: Path) -> None:
    utf16 = ONE_NOTE.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert utf16[:2] in (b"\xff\xfe", b"\xfe\xff")
    path = write_mxl(tmp_path / "u16.mxl", {"META-INF/container.xml": CONTAINER.encode(), "score/inner.xml": utf16})
    score = load_score(path)
    assert score.input_from == "musicxml"
    assert score.data.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "<step>C</step>" in score.data


def test_mxl_without_container_uses_first_xml_member(tmp_path: Path) -> None:
    path = write_mxl(tmp_path / "plain.mxl", {"readme.txt": b"hi", "a.musicxml": ("\ufeff" + ONE_NOTE).encode()})
    assert load_score(path).data == ONE_NOTE  # the UTF-8 BOM is gone


def test_abc_with_leading_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "tune.abc"
    path.write_bytes(b"\xef\xbb\xbf\n\n\nX:1\nT:Tune\nK:C\nCDEF|]\n")
    score = load_score(path)
    assert score.input_from == "abc"
    assert score.data.startswith("\n\n\nX:1")


def test_latin1_humdrum(tmp_path: Path) -> None:
    path = tmp_path / "old.krn"
    path.write_bytes("!!!OTL: Caf\u00e9\n**kern\n4c\n*-\n".encode("latin-1"))
    assert "Caf\u00e9" in load_score(path).data


BAD_INPUTS = {
    "empty.xml": b"",
    "truncated.xml": ONE_NOTE[: len(ONE_NOTE) // 2].encode(),
    "random.xml": bytes(range(256)) * 4,
    "notazip.mxl": b"PK but not really a zip archive at all",
    "bomb.xml": b"""<?xml version="1.0"?>
<!DOCTYPE score-partwise [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<score-partwise>&b;</score-partwise>""",
    "notmusic.xml": b'<?xml version="1.0"?><html/>',
    "binary.krn": b"**kern\x00\x01\x02",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_raises_one_line_score_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_INPUTS[name])
    with pytest.raises(ScoreError) as info:
        load_score(path)
    message = str(info.value)
    assert name in message and "\n" not in message


def test_bad_input_causes(tmp_path: Path) -> None:
    def cause(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ScoreError) as info:
            load_score(tmp_path / name)
        return info.value.cause

    assert cause("e.xml", b"  \n") == "empty file"
    assert "entity" in cause("b.xml", BAD_INPUTS["bomb.xml"])
    assert "not a zip archive" in cause("z.mxl", b"nope")
    assert cause("t.xml", BAD_INPUTS["truncated.xml"]).startswith("malformed XML:")
    empty_zip = write_mxl(tmp_path / "nothing.mxl", {"META-INF/container.xml": b"<container/>", "x.txt": b"x"})
    with pytest.raises(ScoreError, match="contains no MusicXML score"):
        load_score(empty_zip)


def test_unsupported_missing_and_directory(tmp_path: Path) -> None:
    pdf = tmp_path / "score.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(UnsupportedFormatError, match="score.pdf"):
        load_score(pdf)
    with pytest.raises(ScoreError, match="missing.xml: file not found"):
        load_score(tmp_path / "missing.xml")
    folder = tmp_path / "folder.xml"
    folder.mkdir()
    with pytest.raises(ScoreError, match="is a directory"):
        load_score(folder)


def test_find_scores_folder_glob_and_dedup(tmp_path: Path) -> None:
    for relative in ["a/one.xml", "a/b/two.mxl", "a/b/c/three.KRN", "a/notes.txt", "a/.hidden/four.xml", "top.abc"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    found = find_scores([tmp_path / "a"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/b/c/three.KRN", "a/b/two.mxl", "a/one.xml"]
    by_glob = find_scores([str(tmp_path / "**" / "*.xml"), tmp_path / "a" / "one.xml", tmp_path / "top.abc"])
    assert [p.name for p in by_glob] == ["one.xml", "top.abc"]
    with pytest.raises(ScoreError, match="no score files found"):
        find_scores([str(tmp_path / "*.mei")])
    with pytest.raises(ScoreError, match="no score files found"):
        find_scores([tmp_path / "does-not-exist"])


def test_default_corpus_and_subsets() -> None:
    everything = default_corpus()
    assert len(everything) > 2000
    assert all(p.suffix.lower() in SCORE_SUFFIXES for p in everything)
    names = [corpus_relative_name(p) for p in everything]
    assert names == sorted(names)
    assert "music21:bach/bwv66.6.mxl" in names
    bach = default_corpus("bach")
    assert bach and all(corpus_relative_name(p).startswith("music21:bach/") for p in bach)
    with pytest.raises(OptionsError, match="valid subsets: .*bach"):
        default_corpus("no-such-composer")


def test_default_corpus_lists_what_music21_lists() -> None:
    # The listing walks music21's corpus folder itself (no music21 import); it must name exactly the
    # files music21's own index gives, in the formats we read.
    from music21 import corpus as music21_corpus

    ours = [str(p) for p in default_corpus()]
    theirs = sorted(str(p) for p in music21_corpus.getPaths() if Path(p).suffix.lower() in SCORE_SUFFIXES)
    assert sorted(ours) == theirs
    assert len(ours) == 3126


def test_corpus_relative_name_outside_corpus(tmp_path: Path) -> None:
    assert corpus_relative_name(tmp_path / "x.xml") == str(tmp_path / "x.xml")


def test_corpus_relative_name_is_that_of_the_resolved_file(tmp_path: Path) -> None:
    listed = next(p for p in default_corpus("bach") if p.name == "bwv66.6.mxl")
    roundabout = listed.parent / ".." / "bach" / listed.name
    link = tmp_path / "linked.mxl"
    link.symlink_to(listed)
    assert {corpus_relative_name(p) for p in (listed, roundabout, listed.resolve(), link)} == {"music21:bach/bwv66.6.mxl"}
