"""Tests for deepscores.beams: unterminated, lone and stray MusicXML beams made well-formed before Verovio reads them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lxml import etree

from deepscores.annotate import score_pages
from deepscores.beams import repair_beams
from deepscores.corpus import Score, default_corpus, load_score
from tests.musicxml import rest, score, write


def n(step: str, beams: str = "", kind: str = "eighth", duration: int = 1, *, octave: int = 5, voice: int | None = None,
      chord: bool = False, grace: bool = False) -> str:
    """One note; `beams` lists the values of beams 1, 2, … separated by '/', e.g. 'begin/begin'."""
    beam_xml = "".join(f'<beam number="{i}">{v}</beam>' for i, v in enumerate(beams.split("/"), 1) if v)
    return (
        "<note>" + ("<grace/>" if grace else "") + ("<chord/>" if chord else "")
        + f"<pitch><step>{step}</step><octave>{octave}</octave></pitch>"
        + ("" if grace else f"<duration>{duration}</duration>")
        + (f"<voice>{voice}</voice>" if voice else "") + f"<type>{kind}</type>{beam_xml}</note>"
    )


def beams_of(text: str, number: int = 1) -> list[str | None]:
    """The value of beam `number` on every note, in document order (None: no such beam)."""
    root = etree.fromstring(text.encode())
    return [note.findtext(f"beam[@number='{number}']") for note in root.iter("note")]


def flags_and_noteheads(score_: Score) -> tuple[int, int]:
    symbols = [symbol for page in score_pages(score_) for symbol in page.symbols]
    return (sum(s.class_name.startswith("flag") for s in symbols),
            sum(s.class_name.startswith("notehead") for s in symbols))


# Four eighths as Dolet for Sibelius writes them: the group never ends.
UNTERMINATED = score(n("C", "begin") + n("D", "continue") + n("E", "continue") + n("F", "continue") + rest("half", 4),
                     divisions=2)


def test_unterminated_group_is_closed_and_engraves_without_flags(tmp_path: Path) -> None:
    path = write(tmp_path, UNTERMINATED)
    raw, repaired = load_score(path, repair=False), load_score(path)
    assert raw.data == UNTERMINATED and raw.repairs == ()
    assert beams_of(repaired.data) == ["begin", "continue", "continue", "end", None]
    assert repaired.repairs == ("closed 1 unterminated beam group",)
    assert repaired.content_hash == raw.content_hash  # the id stays the hash of the file's bytes
    # Verovio drops the open group and flags every note; closed, it is one beam.
    assert flags_and_noteheads(raw) == (4, 4)
    assert flags_and_noteheads(repaired) == (0, 4)


def test_repair_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, UNTERMINATED)
    with caplog.at_level(logging.INFO, logger="deepscores.corpus"):
        load_score(path)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, f"{path}: closed 1 unterminated beam group")]


def test_edits_only_the_beam_values() -> None:
    repaired = repair_beams(UNTERMINATED).text
    assert repaired == UNTERMINATED.replace('<beam number="1">continue</beam></note><note><rest/>',
                                            '<beam number="1">end</beam></note><note><rest/>')


def test_well_formed_text_is_returned_as_is(tmp_path: Path) -> None:
    # A rest inside a group carries no <beam> (as most writers leave it): it does not break the group.
    # A hook is a secondary stub, no group.
    text = score(n("C", "begin", duration=2) + rest("eighth", 2) + n("E", "continue", duration=2) + n("F", "end", duration=2)
                 + n("G", "begin", "eighth", 3).replace("</type>", "</type><dot/>")
                 + n("A", "end/backward hook", "16th") + rest("quarter", 4), divisions=4)
    assert repair_beams(text).text is text
    loaded = load_score(write(tmp_path, text))
    assert loaded.data == text and loaded.repairs == ()
    plain = score(n("C", "", "whole", 4))
    assert repair_beams(plain).text is plain  # no <beam> at all


def chords(values: tuple[str, ...], chord_values: tuple[str, ...]) -> str:
    return score("".join(n(low, value) + n(high, chord_value, chord=True)
                         for low, high, value, chord_value in zip("CDEF", "EFGA", values, chord_values))
                 + rest("half", 4), divisions=2)


def test_chord_notes_follow_their_first_note(tmp_path: Path) -> None:
    # As in music21's corpus (12,500 <chord/> notes, none with a <beam>): the first note carries the beam.
    path = write(tmp_path, chords(("begin", "continue", "continue", "continue"), ("", "", "", "")))
    repaired = load_score(path)
    assert repaired.data == chords(("begin", "continue", "continue", "end"), ("", "", "", ""))
    assert flags_and_noteheads(load_score(path, repair=False)) == (4, 8)
    assert flags_and_noteheads(repaired) == (0, 8)


def test_beams_repeated_on_chord_notes_get_the_same_edits(tmp_path: Path) -> None:
    # A group begun on a `continue` gets its `begin` on the first note only: Verovio 6.4.1 drops the
    # chord when a <chord/> note repeats a `begin` (it draws one notehead of the eight).
    path = write(tmp_path, chords(("continue",) * 4, ("continue",) * 4))
    repaired = load_score(path)
    assert repaired.data == chords(("begin", "continue", "continue", "end"), ("", "continue", "continue", "end"))
    assert flags_and_noteheads(repaired) == (0, 8)
    mirrored = chords(("begin", "continue", "continue", "end"), ("begin", "continue", "continue", "end"))
    assert flags_and_noteheads(Score(path, mirrored, "musicxml", "0" * 64)) == (0, 1)


def test_voices_are_separate_groups(tmp_path: Path) -> None:
    # Voice 1's open group ends on its own last eighth; voice 2's `continue`s after the <backup> begin a group of their own.
    def two_voices(v1: tuple[str, ...], v2: tuple[str, ...]) -> str:
        def voiced(note_: str, voice: int) -> str:
            return note_.replace("</duration>", f"</duration><voice>{voice}</voice>")
        return score("".join(n(step, value, voice=1) for step, value in zip("CDEF", v1)) + voiced(rest("half", 4), 1)
                     + "<backup><duration>8</duration></backup>" + voiced(rest("half", 4), 2)
                     + "".join(n(step, value, octave=4, voice=2) for step, value in zip("GABC", v2)), divisions=2)

    path = write(tmp_path, two_voices(("begin", "continue", "continue", "continue"), ("continue",) * 4))
    repaired = load_score(path)
    assert repaired.data == two_voices(("begin", "continue", "continue", "end"), ("begin", "continue", "continue", "end"))
    # Voice 2's group lacked both ends: it counts as closed and as begun.
    assert repaired.repairs == ("closed 2 unterminated beam groups", "began 1 beam group that had no begin")
    assert flags_and_noteheads(load_score(path, repair=False)) == (8, 8)
    assert flags_and_noteheads(repaired) == (0, 8)


def test_voices_written_in_turns_keep_their_groups() -> None:
    # Voice 2 written in the middle of voice 1's group (via <backup>) neither ends it nor is ended by it.
    backup = "<backup><duration>2</duration></backup>"
    text = score(n("C", "begin", voice=1) + n("D", "continue", voice=1) + backup + n("E", "begin", octave=4, voice=2)
                 + n("F", "end", octave=4, voice=2) + n("E", "continue", voice=1) + n("F", "end", voice=1), divisions=2)
    assert repair_beams(text).text is text


def test_sixteenths_close_both_beams(tmp_path: Path) -> None:
    sixteenths = n("C", "begin/begin", "16th") + "".join(n(step, "continue/continue", "16th") for step in "DEF")
    path = write(tmp_path, score(sixteenths + rest("quarter", 4) + rest("half", 8), divisions=4))
    repaired = load_score(path)
    assert beams_of(repaired.data, 1) == beams_of(repaired.data, 2) == ["begin", "continue", "continue", "end", None, None]
    assert repaired.repairs == ("closed 1 unterminated beam group", "made 1 secondary beam group well-formed")
    assert flags_and_noteheads(load_score(path, repair=False)) == (4, 4)
    assert flags_and_noteheads(repaired) == (0, 4)


def test_secondary_beam_ends_where_the_note_has_none() -> None:
    # 16th, 16th, eighth, eighth: beam 2 ends on the second 16th, beam 1 on the last eighth.
    text = score(n("C", "begin/begin", "16th") + n("D", "continue/continue", "16th") + n("E", "continue", "eighth", 2)
                 + n("F", "continue", "eighth", 2) + rest("eighth", 2) + rest("half", 8), divisions=4)
    repaired = repair_beams(text)
    assert beams_of(repaired.text, 1) == ["begin", "continue", "continue", "end", None, None]
    assert beams_of(repaired.text, 2) == ["begin", "end", None, None, None, None]
    assert (repaired.closed, repaired.secondary) == (1, 1)


def test_lone_begin_is_removed_and_the_note_keeps_its_flag(tmp_path: Path) -> None:
    path = write(tmp_path, score(n("C", "begin") + n("D", "", "quarter", 2)
                                 + n("E", "", "quarter", 2) + n("F", "", "quarter", 2) + rest("eighth", 1), divisions=2))
    repaired = load_score(path)
    assert beams_of(repaired.data) == [None] * 5
    assert "<beam" not in repaired.data
    assert repaired.repairs == ("removed 1 lone beam begin",)
    assert flags_and_noteheads(repaired) == flags_and_noteheads(load_score(path, repair=False)) == (1, 4)


def test_continues_without_begin_get_one_and_a_stray_end_is_removed(tmp_path: Path) -> None:
    # Dolet also writes `continue` where a group begins; an `end` after a quarter belongs to no group.
    path = write(tmp_path, score(n("C", "", "quarter", 2) + n("D", "continue") + n("E", "continue")
                                 + n("F", "", "quarter", 2) + n("G", "end") + rest("eighth", 1), divisions=2))
    repaired = load_score(path)
    assert beams_of(repaired.data) == [None, "begin", "end", None, None, None]
    assert repaired.repairs == ("closed 1 unterminated beam group", "began 1 beam group that had no begin",
                                "removed 1 stray beam continue/end mark")
    assert flags_and_noteheads(load_score(path, repair=False)) == (3, 5)
    assert flags_and_noteheads(repaired) == (1, 5)


def test_groups_end_at_the_barline() -> None:
    # The corpus's open groups never go on into the next measure: a continue there starts a new group.
    text = score(rest("half", 4) + n("C", "begin") + n("D", "continue") + n("E", "continue") + n("F", "continue"),
                 n("G", "continue") + n("A", "continue") + n("B", "end") + rest("eighth", 1) + rest("half", 4), divisions=2)
    repaired = repair_beams(text)
    assert beams_of(repaired.text) == [None, "begin", "continue", "continue", "end", "begin", "continue", "end", None, None]
    assert (repaired.closed, repaired.begun) == (1, 1)


def test_grace_notes_beam_among_themselves() -> None:
    # An open grace group ends before the main note; the main group around it is untouched.
    text = score(n("C", "begin", "16th", grace=True) + n("D", "continue", "16th", grace=True)
                 + n("E", "begin") + n("F", "begin", "16th", grace=True) + n("G", "end") + rest("quarter", 2)
                 + rest("half", 4), divisions=2)
    repaired = repair_beams(text)
    assert beams_of(repaired.text) == ["begin", "end", "begin", None, "end", None, None]
    assert (repaired.closed, repaired.lone_begins) == (1, 1)


def test_a_grace_note_without_type_ends_the_group(tmp_path: Path) -> None:
    # Dolet writes grace notes without <type>; inside a beam, one sends Verovio 6.4.1's layout of the
    # whole system off the page (y ≈ 1.5e9 in 1/10 mm), so no symbol on it is labelled.
    def typeless_grace(step: str) -> str:
        return f"<note><grace/><pitch><step>{step}</step><octave>3</octave></pitch><voice>1</voice></note>"

    def bar(values: tuple[str, str, str]) -> str:
        return score(n("F", values[0], voice=1) + n("B", values[1], octave=3, voice=1) + typeless_grace("A")
                     + typeless_grace("B") + n("B", values[2], octave=3, voice=1) + rest("eighth", 1) + rest("half", 4),
                     divisions=2)

    path = write(tmp_path, bar(("begin", "continue", "continue")))
    repaired = load_score(path)
    assert repaired.data == bar(("begin", "end", ""))
    assert repaired.repairs == ("closed 1 unterminated beam group", "removed 1 stray beam continue/end mark")
    assert flags_and_noteheads(repaired) == (1, 5)
    assert flags_and_noteheads(Score(path, bar(("begin", "continue", "end")), "musicxml", "0" * 64)) == (0, 0)


def test_a_corpus_madrigal_gets_its_beams_back() -> None:
    # Its exporter writes no `end` where a quarter note or the barline ends a group. Verovio 6.4.1 makes
    # each open group a beamSpan: most draw nothing, some a beam across several measures, and the
    # notes in between lose their flags. Repaired, its 77 groups are beams and 26 lone eighths keep
    # their flags (7 pages; measured with the default Leipzig pages).
    path = next(p for p in default_corpus("monteverdi") if p.name == "madrigal.3.18.mxl")
    raw, repaired = load_score(path, repair=False), load_score(path)
    assert repaired.repairs == ("closed 76 unterminated beam groups", "removed 26 stray beam continue/end marks")
    assert flags_and_noteheads(raw) == (169, 889)
    assert flags_and_noteheads(repaired) == (26, 889)
