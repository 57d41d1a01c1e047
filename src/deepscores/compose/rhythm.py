"""Rhythms that fill a bar exactly and beam by the beat: a bar is a run of beat groups (quarters, or
dotted quarters in compound meters), each filled by a pattern, some patterns spanning several groups."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

from deepscores.compose.theory import DQ, DUR_TICKS, Q, SPELLING, Meter, dotted_ticks


class Ev:
    """One note, chord or rest of a layer: where it sits, how it is written, and what it carries."""

    __slots__ = ("onset", "ticks", "dur", "dots", "rest", "beam", "tuplet", "pitches", "id", "attrs",
                 "children", "pre", "trem", "tie_in")

    def __init__(self, onset: int, ticks: int, dur: str, dots: int, rest: bool,
                 tuplet: tuple[int, int, int] | None = None) -> None:
        self.onset, self.ticks, self.dur, self.dots, self.rest = onset, ticks, dur, dots, rest
        self.tuplet = tuplet  # (tuplet number within the bar, num, numbase)
        self.beam = 0  # beam number within the bar; 0: not beamed
        self.pitches: list[tuple[int, int]] = []  # (diatonic pitch, alteration); more than one: a chord
        self.id = ""
        self.attrs: list[str] = []  # extra attributes: cue, stem.mod, ...
        self.children: list[str] = []  # <artic> elements
        self.pre: list[str] = []  # elements written before it: grace notes, clef changes
        self.trem: str | None = None  # attributes of the <bTrem> around it, when it has one
        self.tie_in = False  # tied from the previous note: same pitch

    @property
    def written(self) -> int:
        return dotted_ticks(self.dur, self.dots)

    def starts_wrappers(self, previous: "Ev | None") -> bool:
        """True when nothing before it shares its beam or tuplet, so elements can go in front of it."""
        if previous is None:
            return True
        same_beam = self.beam and previous.beam == self.beam
        same_tuplet = self.tuplet and previous.tuplet and previous.tuplet[0] == self.tuplet[0]
        return not same_beam and not same_tuplet


_TOKEN = re.compile(r"(\d+):(\d+)\[|\]|(r?)(maxima|long|breve|\d+)(\.*)")


def _compile(text: str) -> tuple[tuple, ...]:
    """'8. 16', 'r8 8', '3:2[8 8 8]' -> ((written ticks, actual ticks, dur, dots, rest, (num, numbase) | None), ...)."""
    items, tuplet = [], None
    for match in _TOKEN.finditer(text):
        if match.group(1):
            tuplet = (int(match.group(1)), int(match.group(2)))
        elif match.group(0) == "]":
            tuplet = None
        else:
            dur, dots = match.group(4), len(match.group(5))
            written = dotted_ticks(dur, dots)
            actual = written * tuplet[1] // tuplet[0] if tuplet else written
            items.append((written, actual, dur, dots, match.group(3) == "r", tuplet))
    return tuple(items)


def _table(entries: Mapping[str, tuple[float, float]]) -> list[tuple[tuple, float, float]]:
    return [(_compile(text), slow, busy) for text, (slow, busy) in entries.items()]


# Plain patterns of one group: (weight in a slow voice, weight in a busy one).
_PLAIN = {
    Q: _table({"4": (6, 1.5), "8 8": (3, 5), "8. 16": (0.4, 1.2), "16 16 16 16": (0.05, 3), "8 16 16": (0.1, 2),
               "16 16 8": (0.1, 2), "16 8 16": (0.02, 0.4)}),
    DQ: _table({"4.": (6, 1.5), "4 8": (4, 3), "8 8 8": (2, 5), "8. 16 8": (0.3, 1.2), "16 16 16 16 16 16": (0.03, 2),
                "16 16 8 8": (0.05, 1.5), "8 16 16 8": (0.03, 1), "8 4": (0.3, 0.3)}),
}
# Plain patterns over n groups of one kind: (n, weight slow, weight busy).
_SPANS = {
    Q: [(_compile("1"), 4, 2.5, 0.05), (_compile("2."), 3, 1.2, 0.1), (_compile("2"), 2, 3, 0.3),
        (_compile("4. 8"), 2, 1, 0.5), (_compile("8 4 8"), 2, 0.1, 0.3)],
    DQ: [(_compile("1."), 4, 1.5, 0.05), (_compile("2."), 2, 3, 0.3)],
}
#: Patterns a device brings, per group kind: (pattern, groups it spans, weight).
DEVICE_PATTERNS: dict[str, dict[int, list[tuple[tuple, int, float]]]] = {
    "rests": {Q: [(_compile("r4"), 1, 3), (_compile("r8 8"), 1, 2), (_compile("8 r8"), 1, 1.5),
                  (_compile("r16 16 8"), 1, 0.4), (_compile("8 r16 16"), 1, 0.4), (_compile("r2"), 2, 1)],
              DQ: [(_compile("r4."), 1, 2), (_compile("r8 8 8"), 1, 1), (_compile("4 r8"), 1, 1.5),
                   (_compile("8 r8 8"), 1, 0.5), (_compile("r2."), 2, 0.7)]},
    "dotted": {Q: [(_compile("8. 16"), 1, 3), (_compile("8.. 32"), 1, 1), (_compile("16. 32 8"), 1, 0.5),
                   (_compile("4. 8"), 2, 3), (_compile("4.. 16"), 2, 0.7), (_compile("2."), 3, 1)],
               DQ: [(_compile("8. 16 8"), 1, 3), (_compile("16. 32 8 8"), 1, 0.7), (_compile("2."), 2, 1)]},
    "triplets": {Q: [(_compile("3:2[8 8 8]"), 1, 4), (_compile("3:2[4 8]"), 1, 1), (_compile("3:2[4 4 4]"), 2, 1.5)],
                 DQ: [(_compile("2:3[8 8]"), 1, 1)]},
    "sextuplets": {Q: [(_compile("6:4[16 16 16 16 16 16]"), 1, 1)]},
    "quintuplets": {Q: [(_compile("5:4[16 16 16 16 16]"), 1, 2), (_compile("7:4[16 16 16 16 16 16 16]"), 1, 1)]},
    "short_notes": {Q: [(_compile("32 32 32 32 32 32 32 32"), 1, 2), (_compile("8 32 32 32 32"), 1, 2),
                        (_compile("16 16 32 32 32 32"), 1, 1.5), (_compile("8 16 64 64 64 64"), 1, 1.5),
                        (_compile("8 16 32 128 128 128 128"), 1, 1), (_compile("8. 64 64 64 64"), 1, 1)],
                    DQ: [(_compile("32 32 32 32 8 8"), 1, 2), (_compile("64 64 64 64 64 64 64 64 8 8"), 1, 1),
                         (_compile("8 8 16 32 128 128 128 128"), 1, 1)]},
    "short_rests": {Q: [(_compile("r64 64 32 16 8"), 1, 2), (_compile("r128 128 64 32 16 8"), 1, 2),
                        (_compile("r32 32 16 8"), 1, 1), (_compile("8 r64 64 32 16"), 1, 1)],
                    DQ: [(_compile("r64 64 32 16 8 8"), 1, 2), (_compile("r128 128 64 32 16 8 8"), 1, 1)]},
}
#: The order devices are tried in at each group; the first that fires fills it.
GROUP_DEVICES = ("short_rests", "short_notes", "sextuplets", "quintuplets", "triplets", "dotted", "rests")


def _check_tables() -> None:
    # A pattern that does not fill its groups would break every bar it lands in: fail at import.
    for kind, table in _PLAIN.items():
        for pattern, _, _ in table:
            assert sum(item[1] for item in pattern) == kind, pattern
    for kind, spans in _SPANS.items():
        for pattern, n, _, _ in spans:
            assert sum(item[1] for item in pattern) == kind * n, pattern
    for device, tables in DEVICE_PATTERNS.items():
        for kind, table in tables.items():
            for pattern, n, _ in table:
                assert sum(item[1] for item in pattern) == kind * n, (device, pattern)


_check_tables()


def _weighted(rng: random.Random, options: list, weights: list[float]):
    return rng.choices(options, weights)[0]


def _span_allowed(groups: tuple[int, ...], position: int, n: int) -> bool:
    if position + n > len(groups) or any(g != groups[position] for g in groups[position:position + n]):
        return False
    if n <= 2:
        return n == 1 or position % 2 == 0  # a half note starts on a strong beat: no syncopation
    return position % 4 == 0  # dotted halves and wholes start the bar (or its second half in 8/4-like bars)


def measure_rhythm(rng: random.Random, meter: Meter, rates: Mapping[str, float], activity: float,
                   beam_base: int = 0) -> list[Ev]:
    """Notes and rests filling one bar of ``meter``; ``activity`` 0 (long values) .. 1 (busy)."""
    groups = meter.groups
    events: list[Ev] = []
    placed: list[tuple[int, int, str]] = []  # (first event index, groups spanned, how to beam)
    position, onset, tuplets = 0, 0, 0
    while position < len(groups):
        kind = groups[position]
        pattern, n, beaming = None, 1, "beat"
        for device in GROUP_DEVICES:
            rate = rates.get(device, 0.0)
            if rate and rng.random() < rate:
                table = [(p, k, w) for p, k, w in DEVICE_PATTERNS[device].get(kind, ())
                         if _span_allowed(groups, position, k)]
                if table:
                    pattern, n, _ = _weighted(rng, table, [w for _, _, w in table])
                    if device == "short_notes" and rng.random() < 0.3:
                        beaming = "none"  # old-style or vocal engraving: every short note keeps its flags
                    break
        if pattern is None:
            spans = [(p, k, s * (1 - activity) + b * activity) for p, k, s, b in _SPANS.get(kind, ())
                     if _span_allowed(groups, position, k)]
            if spans and rng.random() < 0.45 * (1 - activity) + 0.08:
                pattern, n, _ = _weighted(rng, spans, [w for _, _, w in spans])
            else:
                table = _PLAIN[kind]
                pattern = _weighted(rng, [p for p, _, _ in table], [s * (1 - activity) + b * activity for _, s, b in table])
        if beaming == "beat" and rates.get("flags", 0.0) and rng.random() < rates["flags"]:
            beaming = "none"
        placed.append((len(events), n, beaming if n == 1 else "tuplet"))
        last_tuplet = None
        for written, actual, dur, dots, rest, tuplet in pattern:
            if tuplet is not None and tuplet is not last_tuplet:
                tuplets += 1
            last_tuplet = tuplet
            events.append(Ev(onset, actual, dur, dots, rest, (tuplets, *tuplet) if tuplet else None))
            onset += actual
        position += n
    assert onset == meter.bar_ticks
    _beam(events, placed, beam_base)
    _merge_eighth_beams(rng, events, meter)
    return events


def _beam(events: list[Ev], placed: list[tuple[int, int, str]], beam_base: int) -> None:
    """Beam runs of two or more flagged notes inside one group (inside one tuplet)."""
    beam = beam_base
    bounds = [start for start, _, _ in placed] + [len(events)]
    for (start, _, how), end in zip(placed, bounds[1:]):
        if how == "none":
            continue
        run: list[Ev] = []
        for ev in events[start:end] + [None]:
            joins = (ev is not None and not ev.rest and ev.written < Q
                     and (not run or (run[-1].tuplet or (0,))[0] == (ev.tuplet or (0,))[0]))
            if how == "tuplet" and ev is not None and ev.tuplet is None:
                joins = False  # notes of a multi-beat pattern beam only inside their tuplet
            if joins:
                run.append(ev)
                continue
            if len(run) >= 2:
                beam += 1
                for member in run:
                    member.beam = beam
            run = [ev] if ev is not None and not ev.rest and ev.written < Q else []


def _merge_eighth_beams(rng: random.Random, events: list[Ev], meter: Meter) -> None:
    # Engravers join two beats of plain eighths into one beam of four in 4/4 and 2/2, often not always.
    if not (meter.unit == 2 or (meter.unit == 4 and meter.count == 4)):
        return
    pairs: dict[int, list[Ev]] = {}
    for ev in events:
        pairs.setdefault(ev.onset // (2 * Q), []).append(ev)
    for members in pairs.values():
        if (len(members) == 4 and all(e.dur == "8" and not e.rest and not e.dots and e.tuplet is None and e.beam
                                      for e in members) and rng.random() < 0.5):
            for e in members:
                e.beam = members[0].beam


def whole_bar(meter: Meter, rest: bool) -> list[Ev] | None:
    """One note or rest filling the bar, when a single value can (whole, dotted half, breve, ...)."""
    spelled = SPELLING.get(meter.bar_ticks)
    if spelled is None or (not rest and spelled[0] == "maxima"):
        return None
    return [Ev(0, meter.bar_ticks, spelled[0], spelled[1], rest)]


def filled_with(meter: Meter, dur: str, rest: bool) -> list[Ev]:
    """The bar filled with repeated ``dur`` values (a 4/1 bar of two breves); ``dur`` must divide it."""
    ticks = DUR_TICKS[dur]
    return [Ev(i * ticks, ticks, dur, 0, rest) for i in range(meter.bar_ticks // ticks)]


def alberti_rhythm(meter: Meter, beam_base: int = 0) -> list[Ev]:
    """Running eighths, one beam per beat group: the rhythm of an Alberti bass."""
    events, onset = [], 0
    for beam, length in enumerate(meter.groups, beam_base + 1):
        for _ in range(length // (Q // 2)):
            ev = Ev(onset, Q // 2, "8", 0, False)
            ev.beam = beam
            events.append(ev)
            onset += Q // 2
    return events
