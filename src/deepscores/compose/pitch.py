"""Pitches for a layer's rhythm: tonal lines that move by step, land on chord tones on the beat, stay
in their staff's window, and take chromatic and double accidentals at their devices' rates."""

from __future__ import annotations

import random
from collections.abc import Mapping

from deepscores.compose.parts import Layer
from deepscores.compose.rhythm import Ev
from deepscores.compose.theory import DUR_TICKS, Key, Meter

_PERC_POSITIONS = (31, 35, 35, 35, 39)  # bass drum in the first space, snare in the third, hi-hat above


class Line:
    """The running pitch of one layer across the score (diatonic number, octave * 7 + step)."""

    def __init__(self, rng: random.Random, layer: Layer) -> None:
        self.layer = layer
        self.low, self.high = layer.low, layer.high
        self.d = rng.randint(self.low + (self.high - self.low) // 4, self.high - (self.high - self.low) // 4)
        self.direction = 1

    def set_window(self, low: int, high: int) -> None:
        """A clef change: the line continues, an octave away if it no longer fits."""
        self.low, self.high = low, high
        while self.d < low:
            self.d += 7
        while self.d > high:
            self.d -= 7
        self.d = max(low, min(high, self.d))

    def _fit(self, d: int) -> int:
        if d < self.low:
            d, self.direction = 2 * self.low - d, 1
        elif d > self.high:
            d, self.direction = 2 * self.high - d, -1
        return max(self.low, min(self.high, d))

    def nearest(self, steps: tuple[int, ...], reach: int = 4, skip_same: bool = False, headroom: int = 0) -> int:
        """The pitch of a chord tone (step in ``steps``) closest to the current one, inside the window
        (less ``headroom`` steps at its top, for the notes a chord stacks above it)."""
        high = max(self.low, self.high - headroom)
        candidates = [x for x in range(self.d - reach, self.d + reach + 1)
                      if x % 7 in steps and self.low <= x <= high and not (skip_same and x == self.d)]
        if not candidates:
            return self._fit(self.d)
        return min(candidates, key=lambda x: (abs(x - self.d), x))

    def step(self, rng: random.Random, role: str, chord: tuple[int, int, int], strong: bool) -> int:
        """The next pitch of a line of ``role`` over the triad ``chord`` (steps, root first)."""
        if role == "perc":
            return rng.choice(_PERC_POSITIONS)
        if role == "bass" and strong:
            self.d = self.nearest((chord[0],) if rng.random() < 0.75 else chord, reach=6)
            return self.d
        if role in ("chorale", "inner") and (strong or rng.random() < 0.6):
            self.d = self.nearest(chord, reach=3, skip_same=rng.random() < 0.3)
            return self.d
        if role == "melody" and strong and rng.random() < 0.7:
            self.d = self.nearest(chord, reach=4, skip_same=rng.random() < 0.5)
            return self.d
        r = rng.random()
        if rng.random() < 0.25:
            self.direction = -self.direction
        if r < 0.65:
            move = 1
        elif r < 0.8:
            move = 2
        elif r < 0.9:
            move = 0
        else:
            move = rng.randint(3, 5)
        self.d = self._fit(self.d + self.direction * move)
        return self.d


def alter_for(rng: random.Random, d: int, key: Key, rates: Mapping[str, float]) -> int:
    """Alteration of a melodic pitch: the key's, now and then a chromatic or double accidental."""
    alter = key.alter_of(d % 7)
    if rng.random() < rates.get("double_accidentals", 0.0):
        sharp = (key.fifths >= 0) == (rng.random() < 0.75)  # mostly the key's own direction
        return 2 if sharp else -2
    if rng.random() < rates.get("accidentals", 0.0):
        change = 1 if rng.random() < 0.55 else -1
        return alter + change if -1 <= alter + change <= 1 else alter - change
    return alter


def assign(rng: random.Random, events: list[Ev], line: Line, key: Key, harmony: list[int], meter: Meter,
           rates: Mapping[str, float], chords: tuple[int, float] = (0, 0.0),
           carry: list[tuple[int, int]] | None = None) -> None:
    """Give every note of ``events`` its pitches; ``chords``: how many notes a chord may add below the
    line's note, and how often; ``carry``: the pitches of the note before the first (a tie copies them)."""
    chord_notes, chord_rate = chords
    role = line.layer.role
    starts = _group_starts(meter)
    previous = carry or []
    for ev in events:
        if ev.rest:
            continue
        if ev.tie_in and previous:
            ev.pitches = list(previous)
            continue
        group = _group_of(starts, ev.onset)
        chord = key.chord(harmony[group])
        strong = ev.onset == starts[group]
        d = line.step(rng, role, chord, strong)
        if role == "perc":
            ev.pitches = [(d, 0)]
        else:
            ev.pitches = [(d, alter_for(rng, d, key, rates))]
            if chord_notes and ev.written >= DUR_TICKS["16"] and rng.random() < chord_rate:
                below = [x for x in range(d - 7, d - 1) if x % 7 in chord and x >= line.low - 3]
                for x in sorted(rng.sample(below, min(len(below), rng.randint(1, chord_notes))), reverse=True):
                    ev.pitches.append((x, key.alter_of(x % 7)))
        previous = ev.pitches


def accompany(rng: random.Random, events: list[Ev], line: Line, key: Key, harmony: list[int], meter: Meter,
              rates: Mapping[str, float]) -> None:
    """Pitches of a piano left hand in the layer's style: block chords, Alberti figures, octaves or a bass line."""
    style = line.layer.style if len(events) > 1 else "block"  # a bar-long value is a chord in any style
    if style == "bass":
        assign(rng, events, line, key, harmony, meter, rates, (1, rates.get("chords", 0.0) / 2))
        return
    starts = _group_starts(meter)
    for i, ev in enumerate(events):
        if ev.rest:
            continue
        chord = key.chord(harmony[_group_of(starts, ev.onset)])
        line.d = line.nearest((chord[0],), reach=6, headroom=4 if style == "alberti" else 7)
        root = line.d
        if style == "alberti":
            d = root + (0, 4, 2, 4)[i % 4]  # root, fifth, third, fifth
            ev.pitches = [(d, key.alter_of(d % 7))]
        elif style == "octaves":
            ev.pitches = [(root + 7, key.alter_of(root % 7)), (root, key.alter_of(root % 7))]
        else:  # block chords in close position above the bass
            notes = {root, root + 2 + 7 * (rng.random() < 0.5), root + 4}
            if rng.random() < 0.3:
                notes.add(root + 7)
            ev.pitches = [(d, key.alter_of(d % 7)) for d in sorted(notes, reverse=True)]


def _group_starts(meter: Meter) -> list[int]:
    starts, onset = [], 0
    for length in meter.groups:
        starts.append(onset)
        onset += length
    return starts


def _group_of(starts: list[int], onset: int) -> int:
    group = 0
    while group + 1 < len(starts) and starts[group + 1] <= onset:
        group += 1
    return group
