"""Repair MusicXML beam groups that Verovio would drop: a `begin` never ended, a `continue` never begun.

Verovio 6.4.1 beams a group only when it opens with `begin` and closes with `end`. It turns an open
group into a beamSpan that draws nothing or a beam across several measures, and drops stray marks.
Dolet 1.1 for Sibelius (five of music21's Beethoven quartets) writes `continue` where `end` belongs,
now and then where `begin` does; other exports leave single `begin`s or `end`s behind.

Groups end at the barline. Verovio could draw a group going on in the next measure (a beamSpan), but
no well-formed group in music21's 654 MusicXML files does: all 653 carry-overs are in files with
open groups (the Dolet quartets, two madrigals), where the mark after the barline starts a new group.
The repair edits only `<beam>` elements, in place, and returns the very same string when nothing is
wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

BEGIN, CONTINUE, END = "begin", "continue", "end"

# One pass over the text finds the tags that matter; `(?=[\s/>])` keeps <part-list>, <measure-style>,
# <notehead> and <notations> out. A note's text runs to the next </note> (notes do not nest).
_TOKEN = re.compile(r"<(?:(?P<tag>part|measure)(?=[\s/>])(?P<attrs>[^>]*)>|note(?=[\s>])[^>]*>)")
_HIDDEN = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.S)
_ID = re.compile(r"""\bid\s*=\s*(["'])(.*?)\1""")
_NUMBER = re.compile(r"""\bnumber\s*=\s*(["'])\s*(.*?)\s*\1""")
_BEAM = re.compile(r"<beam(?=[\s>])(?P<attrs>[^>]*)>(?P<value>[^<]*)</beam>")
_VOICE = re.compile(r"<voice(?:\s[^>]*)?>\s*([^<]*?)\s*</voice>")
_CHORD = re.compile(r"<chord(?=[\s/>])")
_GRACE = re.compile(r"<grace(?=[\s/>])")
_REST = re.compile(r"<rest(?=[\s/>])")


@dataclass(frozen=True)
class BeamRepair:
    """The repaired text and what was done to it; `text` is the input object itself when nothing was.

    The counts are of primary beams (number 1: one per drawn group); repairs of secondary beams
    (16ths and shorter) are counted together in `secondary`.
    """

    text: str
    closed: int = 0  # groups of two or more notes given the `end` they lacked
    lone_begins: int = 0  # `begin`s with no further beamed note, removed (the note keeps its flag)
    begun: int = 0  # groups of `continue`s with no `begin`, given one on their first note
    stray: int = 0  # a lone `continue` or `end` outside any group, removed
    secondary: int = 0  # secondary beams closed, begun or removed

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per kind of repair made, e.g. 'closed 37 unterminated beam groups'."""
        kinds = (
            (self.closed, "closed {} unterminated beam group{}"),
            (self.lone_begins, "removed {} lone beam begin{}"),
            (self.begun, "began {} beam group{} that had no begin"),
            (self.stray, "removed {} stray beam continue/end mark{}"),
            (self.secondary, "made {} secondary beam group{} well-formed"),
        )
        return tuple(text.format(count, "" if count == 1 else "s") for count, text in kinds if count)


@dataclass
class _Note:
    body: tuple[int, int]  # where the text between <note> and </note> lies
    measure: int
    is_rest: bool
    beams: dict[str, str]  # beam number -> value
    # The <chord/> notes stacked on this one that repeat its beams: they get the same edits.
    chords: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Group:
    number: str
    members: list[_Note]
    begun: bool  # False when it opened on a stray `continue`


class _Repairer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.edits: dict[tuple[int, int], str] = {}
        # (part, voice, grace) -> beam number -> the group open there
        self.open: dict[tuple[str, str, bool], dict[str, _Group]] = {}  # no empty ones
        self.counts = {"closed": 0, "lone_begins": 0, "begun": 0, "stray": 0, "secondary": 0}

    def note(self, part: str, voice: str, grace: bool, note: _Note, typeless: bool) -> None:
        if not grace or typeless:
            # Grace notes beam among themselves: the next main note (or rest) ends their groups. A
            # grace note without a <type> (Dolet writes them) ends the main notes' groups too:
            # inside a beam it can send Verovio 6.4.1's layout of the whole system to y = 1e9.
            for group in self.open.pop((part, voice, not grace), {}).values():
                self._close(group)
        key = (part, voice, grace)
        stream = self.open.get(key, {})
        for number in sorted(stream.keys() | note.beams.keys()) if stream else note.beams:
            self._step(stream, number, note, note.beams.get(number))
        if stream:
            self.open[key] = stream
        else:
            self.open.pop(key, None)  # an empty `open` lets repair_beams skip unbeamed notes

    def _step(self, stream: dict[str, _Group], number: str, note: _Note, value: str | None) -> None:
        if value is None and note.is_rest:
            return  # rests inside a group often carry no <beam>; Verovio beams across them
        group = stream.get(number)
        if group is not None and note.measure != group.members[-1].measure:
            self._close(stream.pop(number))  # see the module docstring: groups end at the barline
            group = None
        if value == BEGIN:
            if group is not None:
                self._close(group)
            stream[number] = _Group(number, [note], begun=True)
        elif value in (CONTINUE, END):
            if group is None:
                if value == END:
                    self._set(note, number, None)
                    self._count("stray", number)
                    return
                group = stream[number] = _Group(number, [], begun=False)
            group.members.append(note)
            if value == END:
                del stream[number]
                if not group.begun:
                    self._set(group.members[0], number, BEGIN)
                    self._count("begun", number)
        elif group is not None:  # a note without this beam, or with only a hook: the group ended before it
            self._close(stream.pop(number))

    def finish(self) -> None:
        for stream in self.open.values():
            for group in stream.values():
                self._close(group)
        self.open.clear()

    def _close(self, group: _Group) -> None:
        """End an unterminated group on its last beamed note, or drop a group of one note."""
        if len(group.members) == 1:
            self._set(group.members[0], group.number, None)
            self._count("lone_begins" if group.begun else "stray", group.number)
            return
        self._set(group.members[-1], group.number, END)
        self._count("closed", group.number)
        if not group.begun:
            self._set(group.members[0], group.number, BEGIN)
            if group.number == "1":  # a secondary group is counted once, as closed
                self.counts["begun"] += 1

    def _count(self, kind: str, number: str) -> None:
        self.counts[kind if number == "1" else "secondary"] += 1

    def _set(self, note: _Note, number: str, value: str | None) -> None:
        """Rewrite (or with None remove) beam `number` of a note and of the chord notes stacked on it.

        A chord note that would get a `begin` loses its copy instead: Verovio 6.4.1 takes a chord's
        beam from its first note and drops the chord when a <chord/> note repeats the `begin`.
        """
        for start, end in (note.body, *note.chords):
            value_here = None if value == BEGIN and start != note.body[0] else value
            for found in _BEAM.finditer(self.text, start, end):
                if _number(found.group("attrs")) != number:
                    continue
                if value_here is None:
                    # The whitespace before the element goes with it, so no blank line is left.
                    begin = found.start()
                    while begin > start and self.text[begin - 1] in " \t\r\n":
                        begin -= 1
                    self.edits[begin, found.end()] = ""
                elif found.group("value").strip() != value_here:
                    self.edits[found.span("value")] = value_here
                break  # a note has one beam of each number; the first one is the one read


def repair_beams(text: str) -> BeamRepair:
    """Make every beam group of every part, voice, grace/main notes and beam number well-formed.

    A group runs from a `begin` to its `end`. One left open ends on its last beamed note: the note
    before the next `begin`, before a note of its voice without that beam (a rest without one is
    inside the group, as MusicXML writers leave them), or before the barline. A run of `continue`s
    with no `begin` gets one; a group of a single note loses its beam and keeps its flag.
    """
    if "<beam" not in text:
        return BeamRepair(text)
    # Tags inside comments and CDATA are blanked out, keeping every offset, so they are not read.
    hides = "<!--" in text or "<![CDATA[" in text
    scanned = _HIDDEN.sub(lambda hidden: " " * len(hidden.group()), text) if hides else text
    repairer = _Repairer(scanned)
    part, measure = "", 0
    last_note: dict[str, _Note | None] = {}  # by part: the beamed note a <chord/> note stacks on
    for token in _TOKEN.finditer(scanned):
        tag = token.group("tag")
        if tag == "part":
            found = _ID.search(token.group("attrs"))
            part = found.group(2) if found else ""
            continue
        if tag == "measure":
            measure += 1
            continue
        start = token.end()
        end = scanned.find("</note>", start)
        if end < 0:
            break
        body = scanned[start:end]
        beamed = "<beam" in body
        if "<chord" in body and _CHORD.search(body):
            stacked_on = last_note.get(part)
            if beamed and stacked_on is not None:
                stacked_on.chords.append((start, end))
            continue
        if not beamed and not repairer.open:
            last_note[part] = None  # well-formed so far and nothing to end: the common case, kept fast
            continue
        beams: dict[str, str] = {}
        if beamed:
            for attrs, value in _BEAM.findall(body):
                beams.setdefault(_number(attrs), value.strip())
        voice = _VOICE.search(body) if "<voice" in body else None
        grace = "<grace" in body and bool(_GRACE.search(body))
        note = _Note((start, end), measure, "<rest" in body and bool(_REST.search(body)), beams)
        last_note[part] = note if beams else None
        repairer.note(part, voice.group(1) if voice else "1", grace, note, grace and "<type" not in body)
    repairer.finish()
    if not repairer.edits:
        return BeamRepair(text)
    return BeamRepair(_apply(text, repairer.edits), **repairer.counts)


@lru_cache(maxsize=64)
def _number(attrs: str) -> str:
    found = _NUMBER.search(attrs)
    return found.group(2) if found else "1"


def _apply(text: str, edits: dict[tuple[int, int], str]) -> str:
    pieces, position = [], 0
    for (start, end), replacement in sorted(edits.items()):
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
