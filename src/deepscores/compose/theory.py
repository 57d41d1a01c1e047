"""The music theory the composer needs, in integers: durations in ticks, meters and their beat groups,
keys, diatonic pitch numbers and the accidental a note needs on paper."""

from __future__ import annotations

from dataclasses import dataclass

#: Ticks per quarter note: divisible by 128th notes (32), triplets (3), quintuplets (5) and septuplets (7).
TPQ = 3360
Q, DQ, H = TPQ, TPQ * 3 // 2, TPQ * 2

#: Undotted length in ticks of every MEI @dur value the composer writes.
DUR_TICKS = {"maxima": 32 * TPQ, "long": 16 * TPQ, "breve": 8 * TPQ, "1": 4 * TPQ, "2": 2 * TPQ, "4": TPQ,
             "8": TPQ // 2, "16": TPQ // 4, "32": TPQ // 8, "64": TPQ // 16, "128": TPQ // 32}


def dotted_ticks(dur: str, dots: int) -> int:
    """Written length of ``dur`` with ``dots`` augmentation dots (each adds half of the previous value)."""
    base = DUR_TICKS[dur]
    return base * ((1 << (dots + 1)) - 1) // (1 << dots)


#: Written length in ticks -> (@dur, @dots), for every value a single note or rest can show.
SPELLING = {dotted_ticks(d, k): (d, k) for d in DUR_TICKS for k in (2, 1, 0) if DUR_TICKS[d] % (1 << k) == 0}

PITCH_NAMES = "cdefgab"
#: Staff line (as a diatonic pitch number, octave * 7 + step) of the bottom and top line of each clef.
CLEF_LINES = {("G", 2): (30, 38), ("F", 4): (18, 26), ("C", 3): (24, 32), ("C", 4): (22, 30), ("C", 1): (28, 36),
              ("perc", 0): (30, 38)}


@dataclass(frozen=True)
class Meter:
    """A time signature: its numbers, its symbol ('' | 'common' | 'cut'), its bar length and beaming groups."""

    count: int
    unit: int
    sym: str = ""

    @property
    def bar_ticks(self) -> int:
        return self.count * 4 * TPQ // self.unit

    @property
    def compound(self) -> bool:
        return self.unit == 8 and self.count % 3 == 0 and self.count > 3

    @property
    def groups(self) -> tuple[int, ...]:
        """Length of each beam group: quarters in simple meters, dotted quarters in compound ones, and
        2 + 2 + 3-style splits (eighths) in 5/8, 7/8, 10/8."""
        if self.unit == 8:
            if self.count % 3 == 0:
                return (DQ,) * (self.count // 3)
            threes, rest = divmod(self.count, 3)
            while rest % 2:  # 5 = 3 + 2, 7 = 3 + 2 + 2, 10 = 3 + 3 + 2 + 2
                threes, rest = threes - 1, rest + 3
            return (DQ,) * threes + (Q,) * (rest // 2)
        return (Q,) * (self.bar_ticks // Q)

    def attrs(self) -> str:
        sym = f' meter.sym="{self.sym}"' if self.sym else ""
        return f'meter.count="{self.count}" meter.unit="{self.unit}"{sym}'

    def tstamp(self, onset: int) -> str:
        """MEI @tstamp (1-based beats of the meter's unit) of an onset in ticks from the bar line."""
        beats = 1 + onset * self.unit / (4 * TPQ)
        return f"{beats:.4f}".rstrip("0").rstrip(".")


# -- keys ------------------------------------------------------------------------------------------
_SHARP_ORDER = (3, 0, 4, 1, 5, 2, 6)  # F C G D A E B, as steps (c = 0)
ACCID = {-2: "ff", -1: "f", 0: "n", 1: "s", 2: "x"}  # written (data.ACCIDENTAL.WRITTEN)
ACCID_GES = {-2: "ff", -1: "f", 0: "n", 1: "s", 2: "ss"}  # sounding (data.ACCIDENTAL.GESTURAL)


@dataclass(frozen=True)
class Key:
    """A key signature (``fifths`` > 0 sharps, < 0 flats) and its mode."""

    fifths: int
    minor: bool = False

    @property
    def alters(self) -> tuple[int, ...]:
        """Alteration the signature gives each step c..b."""
        alters = [0] * 7
        order = _SHARP_ORDER if self.fifths >= 0 else _SHARP_ORDER[::-1]
        for step in order[: abs(self.fifths)]:
            alters[step] = 1 if self.fifths > 0 else -1
        return tuple(alters)

    @property
    def tonic(self) -> int:
        """Step (c = 0) of the tonic."""
        major = (self.fifths * 4) % 7
        return (major - 2) % 7 if self.minor else major

    @property
    def sig(self) -> str:
        return "0" if self.fifths == 0 else f"{abs(self.fifths)}{'s' if self.fifths > 0 else 'f'}"

    def chord(self, degree: int) -> tuple[int, int, int]:
        """Steps (c = 0) of the diatonic triad on scale degree ``degree`` (0 = tonic)."""
        root = self.tonic + degree
        return (root % 7, (root + 2) % 7, (root + 4) % 7)

    def alter_of(self, step: int) -> int:
        """Alteration a scale tone gets: the signature's, with the minor mode's raised leading tone."""
        alter = self.alters[step]
        if self.minor and (step - self.tonic) % 7 == 6:
            alter += 1
        return alter


def chord_name(key: Key, degree: int) -> str:
    """A lead-sheet chord symbol for a diatonic triad ('F#m', 'Bb', 'C#dim')."""
    steps = key.chord(degree)
    root_alter = key.alter_of(steps[0])
    third = (_semitone(steps[1], key.alter_of(steps[1])) - _semitone(steps[0], root_alter)) % 12
    fifth = (_semitone(steps[2], key.alter_of(steps[2])) - _semitone(steps[0], root_alter)) % 12
    quality = "dim" if fifth == 6 else ("m" if third == 3 else "")
    return PITCH_NAMES[steps[0]].upper() + {-1: "b", 1: "#"}.get(root_alter, "") + quality


_SEMITONES = (0, 2, 4, 5, 7, 9, 11)


def _semitone(step: int, alter: int) -> int:
    return _SEMITONES[step] + alter


def pitch_attrs(d: int, alter: int, key_alters: tuple[int, ...], shown: dict[int, int],
                tied: bool = False) -> str:
    """@pname/@oct and the accidental a note on diatonic pitch ``d`` needs, given what the key
    signature and the bar's earlier accidentals (``shown``, updated) already say; a ``tied`` note
    only sounds its alteration."""
    step = d % 7
    current = shown.get(d, key_alters[step])
    text = f'pname="{PITCH_NAMES[step]}" oct="{d // 7}"'
    if alter != current and not tied:
        shown[d] = alter
        return f'{text} accid="{ACCID[alter]}"'
    # Sounding alteration for readers (music21, MIDI) when the key does not already say it.
    return f'{text} accid.ges="{ACCID_GES[alter]}"' if alter or key_alters[step] else text
