"""Onsets (Symbol.onset, from Verovio's timemap) and notehead staff positions against music21."""

from __future__ import annotations

from collections import Counter

import music21
import pytest

from deepscores.annotate import score_pages
from deepscores.classes import load_catalogue
from deepscores.corpus import load_score
from deepscores.meaning import onset_of
from tests.musicxml import note, rest, score, write

CHORALE = "bach/bwv66.6"
#: The pitch on each clef's middle line (rel_position 0).
MIDDLE_LINE = {"TrebleClef": "B4", "BassClef": "D3", "AltoClef": "C4", "TenorClef": "A3"}


@pytest.fixture(scope="module")
def chorale():
    path = music21.corpus.getWork(CHORALE)
    pages = score_pages(load_score(path), catalogue=load_catalogue("deepscoresv2"))
    return music21.converter.parse(path), pages


def expected_heads(m21: music21.stream.Score) -> Counter:
    """(onset, staff position) of every notehead music21 sees, as a multiset."""
    heads: Counter = Counter()
    for n in m21.recurse().notes:
        clef = n.getContextByClass(music21.clef.Clef)
        middle = music21.pitch.Pitch(MIDDLE_LINE[type(clef).__name__])
        for p in n.pitches:
            heads[(float(n.getOffsetInHierarchy(m21)), p.diatonicNoteNum - middle.diatonicNoteNum)] += 1
    return heads


def test_notehead_onsets_and_positions_equal_music21(chorale):
    m21, pages = chorale
    ours = Counter((s.onset, s.rel_position) for page in pages for s in page.symbols
                   if s.class_name.startswith("notehead"))
    expected = expected_heads(m21)
    assert sum(expected.values()) > 150
    assert ours == expected


def test_the_pickup_counts_from_its_own_first_note(chorale):
    """bwv66.6 opens with a one-beat anacrusis. music21 stores it as measure 0 at offset 0 with
    paddingLeft = 3 (the missing beats), so its notes start at 0 and measure 1's downbeat is at
    1.0; Verovio's qstamp counts the same way (the pickup lasts what it holds). Neither counts the
    missing three beats, so onsets need no shift."""
    m21, pages = chorale
    soprano = m21.parts[0].getElementsByClass(music21.stream.Measure)
    assert soprano[0].number == 0 and soprano[0].paddingLeft == 3.0 and soprano[1].offset == 1.0
    heads = sorted({s.onset for page in pages for s in page.symbols if s.class_name.startswith("notehead")})
    assert heads[0] == 0.0 and 1.0 in heads
    first_downbeat = soprano[1].notes[0]
    assert first_downbeat.getOffsetInHierarchy(m21) == 1.0


def test_every_symbol_of_the_music_has_an_onset(chorale):
    _, pages = chorale
    symbols = [s for page in pages for s in page.symbols]
    # Only ink outside every measure (the system's opening barline) has none.
    assert {s.class_name for s in symbols if s.onset is None} <= {"barline"}
    stems = [s.onset for s in symbols if s.class_name == "stem"]
    assert stems and all(o is not None for o in stems)
    # Clefs, key and time signatures of the first system sit in the first measure.
    assert {s.onset for s in symbols if s.class_name in ("clefG", "clefF", "timeSigCommon")} >= {0.0}


def test_rests_chords_and_beams(tmp_path):
    chord = note("C", 5, "quarter", 2) + note("E", 5, "quarter", 2, chord=True)
    beamed = (note("G", 4, "eighth", 1, extra="<beam number='1'>begin</beam>")
              + note("B", 4, "eighth", 1, extra="<beam number='1'>end</beam>"))
    path = write(tmp_path, score(chord + beamed + rest("quarter", 2) + rest("quarter", 2),
                                 "<note><rest measure='yes'/><duration>8</duration></note>", divisions=2))
    (page,) = score_pages(path, catalogue=load_catalogue("deepscoresv2"))
    by_class: dict[str, list[float | None]] = {}
    for s in page.symbols:
        by_class.setdefault(s.class_name, []).append(s.onset)
    heads = sorted(o for name, onsets in by_class.items() if name.startswith("notehead") for o in onsets)
    assert heads == [0.0, 0.0, 1.0, 1.5]
    assert sorted(by_class["stem"]) == [0.0, 1.0, 1.5]  # the chord's one stem starts with the chord
    assert by_class["beam"] == [1.0]  # a beam starts with its first note
    assert sorted(by_class["restQuarter"]) == [2.0, 3.0]
    assert by_class["restWhole"] == [4.0]  # a whole-measure rest starts its measure


def test_onset_of_walks_to_the_nearest_timed_ancestor():
    onsets = {"n1": 2.0, "n2": 2.5, "m1": 0.0}
    members = {"chord": ["n2", "n1"], "m1": ["n1", "n2"]}
    assert onset_of(("stem", "chord", "m1"), onsets, members) == 2.0
    assert onset_of(("n2", "chord", "m1"), onsets, members) == 2.5
    assert onset_of(("slur", "m1"), onsets, members) == 0.0
    assert onset_of((), onsets, members) is None


def test_onsets_after_a_repeat_are_written_positions():
    """bwv358 repeats its first section (`:|` after measure 6). Onsets count the written score, as
    music21's offsets do; a timemap that plays the repeat puts every later note 24 quarters late."""
    path = music21.corpus.getWork("bach/bwv358")
    m21 = music21.converter.parse(path)
    assert list(m21.recurse().getElementsByClass(music21.bar.Repeat))  # the repeat is really there
    pages = score_pages(load_score(path), catalogue=load_catalogue("deepscoresv2"))
    ours = Counter((s.onset, s.rel_position) for page in pages for s in page.symbols
                   if s.class_name.startswith("notehead"))
    expected = expected_heads(m21)
    assert sum(expected.values()) > 150 and max(onset for onset, _ in expected) >= 44
    assert ours == expected
