"""Tiny MusicXML scores written inline for the tests."""

from __future__ import annotations

from pathlib import Path

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name></part-name></score-part></part-list>
<part id="P1">"""


def note(step: str, octave: int, kind: str = "quarter", duration: int = 1, *, alter: int | None = None,
         accidental: str | None = None, dots: int = 0, extra: str = "", chord: bool = False,
         notations: str = "", cue: bool = False) -> str:
    pitch = f"<step>{step}</step>" + (f"<alter>{alter}</alter>" if alter is not None else "") + f"<octave>{octave}</octave>"
    return (
        "<note>" + ("<cue/>" if cue else "") + ("<chord/>" if chord else "") + f"<pitch>{pitch}</pitch>"
        + f"<duration>{duration}</duration><type>{kind}</type>" + "<dot/>" * dots
        + (f"<accidental>{accidental}</accidental>" if accidental else "") + extra
        + (f"<notations>{notations}</notations>" if notations else "") + "</note>"
    )


def rest(kind: str = "quarter", duration: int = 1) -> str:
    return f"<note><rest/><duration>{duration}</duration><type>{kind}</type></note>"


def score(*measures: str, fifths: int = 0, beats: int = 4, beat_type: int = 4, clef: tuple[str, int] = ("G", 2),
          divisions: int = 1) -> str:
    """A one-part score; the first measure carries key, time and clef."""
    attrs = (f"<attributes><divisions>{divisions}</divisions><key><fifths>{fifths}</fifths></key>"
             f"<time><beats>{beats}</beats><beat-type>{beat_type}</beat-type></time>"
             f"<clef><sign>{clef[0]}</sign><line>{clef[1]}</line></clef></attributes>")
    body = "".join(
        f'<measure number="{i + 1}">' + (attrs if i == 0 else "") + m + "</measure>" for i, m in enumerate(measures)
    )
    return _HEAD + body + "</part></score-partwise>"


def write_tiny_corpus(folder: Path) -> Path:
    """Three one-measure-ish scores (a triad, flats, dots) that engrave to one page each."""
    write(folder, score(note("C", 5) + note("E", 5) + note("G", 5) + rest()), "triad.musicxml")
    write(folder, score(note("B", 4, alter=-1) + note("E", 5, alter=-1, accidental="flat") + rest("half", 2), fifths=-1),
          "flats.musicxml")
    write(folder, score(note("G", 4, "half", 3, dots=1) + note("A", 4), note("C", 5, "whole", 4)), "dots.musicxml")
    return folder


def write(tmp_path: Path, text: str, name: str = "score.musicxml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
