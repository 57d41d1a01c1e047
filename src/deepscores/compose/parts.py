"""Who plays: the instruments, the staves each layout engraves (clefs, voices, brace or bracket), and
the pitch window a staff's clef gives a voice."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from deepscores.compose.theory import CLEF_LINES

#: Every layout; 'mixed' picks one of the others per seed.
LAYOUTS: tuple[str, ...] = ("solo", "piano", "satb", "quartet", "leadsheet", "mixed")
_MIXED_WEIGHTS = {"solo": 3.0, "piano": 3.0, "satb": 1.5, "quartet": 1.5, "leadsheet": 1.0}


@dataclass(frozen=True)
class Instrument:
    name: str
    abbr: str
    family: str  # keys, strings, voice, wind, guitar, perc
    clefs: tuple[tuple[str, int], ...]  # its usual clef first, then those it changes to
    octave_clef: tuple[int, str] | None = None  # the octave clef it customarily reads: (dis, place)
    activity: tuple[float, float] = (0.3, 0.7)  # range of rhythmic activity of its lines


G, F, ALTO, TENOR, PERC = ("G", 2), ("F", 4), ("C", 3), ("C", 4), ("perc", 0)
SOLOISTS = (
    Instrument("Violin", "Vln.", "strings", (G,)),
    Instrument("Viola", "Vla.", "strings", (ALTO, G)),
    Instrument("Violoncello", "Vc.", "strings", (F, TENOR, G)),
    Instrument("Contrabass", "Cb.", "strings", (F, TENOR), octave_clef=(8, "below"), activity=(0.1, 0.5)),
    Instrument("Flute", "Fl.", "wind", (G,), activity=(0.4, 0.9)),
    Instrument("Piccolo", "Picc.", "wind", (G,), octave_clef=(8, "above"), activity=(0.4, 0.9)),
    Instrument("Oboe", "Ob.", "wind", (G,)),
    Instrument("Clarinet in B♭", "Cl.", "wind", (G,)),
    Instrument("Bassoon", "Bsn.", "wind", (F, TENOR)),
    Instrument("Horn in F", "Hn.", "wind", (G, F), activity=(0.1, 0.5)),
    Instrument("Trombone", "Tbn.", "wind", (F, TENOR, ALTO), activity=(0.1, 0.5)),  # alto trombone parts
    Instrument("Soprano", "S.", "voice", (G,), activity=(0.1, 0.5)),
    Instrument("Tenor", "T.", "voice", (G,), octave_clef=(8, "below"), activity=(0.1, 0.5)),
    Instrument("Guitar", "Gtr.", "guitar", (G,), octave_clef=(8, "below")),
)
PERCUSSION = Instrument("Snare Drum", "S.D.", "perc", (PERC,), activity=(0.4, 0.9))
# Octave clefs a staff may get when the device fires and its instrument has no customary one.
_OCTAVE_CLEFS = ((8, "below"), (8, "above"), (15, "below"), (15, "above"))


@dataclass
class Layer:
    """One voice of a staff: its role decides its rhythm and pitches; ``low``/``high`` bound its
    pitches (diatonic numbers, as MEI writes them: an octave clef moves them) in the opening clef."""

    role: str  # melody, bass, inner, chorale, accomp, perc
    low: int
    high: int
    activity: float
    style: str = ""  # accomp: block, alberti, octaves, bass


@dataclass
class Staff:
    n: int
    instrument: Instrument
    clef: tuple[str, int]
    dis: tuple[int, str] | None = None
    layers: list[Layer] = field(default_factory=list)

    @property
    def shift(self) -> int:
        """Diatonic steps between written and sounding pitch that the clef's octave mark implies."""
        return 0 if self.dis is None else (7 if self.dis[0] == 8 else 14) * (1 if self.dis[1] == "above" else -1)

    def clef_xml(self, clef: tuple[str, int] | None = None, change: bool = False) -> str:
        shape, line = clef or self.clef
        if shape == "perc":
            return '<clef shape="perc"/>'
        dis = f' dis="{self.dis[0]}" dis.place="{self.dis[1]}"' if self.dis and not change else ""
        return f'<clef shape="{shape}" line="{line}"{dis}/>'


def window(clef: tuple[str, int], shift: int, role: str) -> tuple[int, int]:
    """Sounding pitch window of a voice on a staff with ``clef``: the staff and a few ledger lines."""
    bottom, top = CLEF_LINES[clef]
    low, high = {"melody": (-2, 4), "bass": (-3, 1), "inner": (-1, 2), "chorale": (-2, 2), "accomp": (-3, 2),
                 "perc": (0, 0)}[role]
    return bottom + low + shift, top + high + shift


def choose_layout(rng: random.Random, layout: str, boosts: Mapping[str, float]) -> str:
    """The layout for one score; 'mixed' weighs each by its share plus the boosts of its own devices."""
    if layout != "mixed":
        return layout
    names = list(_MIXED_WEIGHTS)
    return rng.choices(names, [_MIXED_WEIGHTS[n] * (1 + boosts.get(n, 0.0)) for n in names])[0]


def build_staves(rng: random.Random, layout: str, rates: Mapping[str, float]) -> tuple[list[Staff], str]:
    """The staves of a score and the staffGrp symbol that joins them ('' | 'brace' | 'bracket')."""
    octave, percussion = rates.get("octave_clef", 0.0), rates.get("percussion_clef", 0.0)
    symbol = ""
    if layout == "solo":
        instrument = PERCUSSION if rng.random() < percussion else rng.choice(SOLOISTS)
        staves = [_staff(rng, 1, instrument, "perc" if instrument is PERCUSSION else "melody")]
        percussion = 0.0
    elif layout == "piano":
        piano = Instrument("Piano", "Pno.", "keys", (G, F))
        left = Instrument("Piano", "Pno.", "keys", (F, G))
        style = rng.choice(("block", "alberti", "octaves", "bass", "bass"))
        staves = [_staff(rng, 1, piano, "melody"), _staff(rng, 2, left, "accomp", style)]
        symbol = "brace"
    elif layout == "satb":
        if rng.random() < 0.5:
            # Written ranges: a tenor on a plain treble staff is read an octave lower, as in hymnals.
            voices = [("Soprano", "S.", G, None, (28, 39)), ("Alto", "A.", G, None, (25, 35)),
                      ("Tenor", "T.", G, (8, "below"), (28, 38)), ("Bass", "B.", F, None, (16, 27))]
            staves = []
            for n, (name, abbr, clef, dis, (low, high)) in enumerate(voices, 1):
                staff = Staff(n, Instrument(name, abbr, "voice", (clef,), octave_clef=dis), clef)
                staff.layers = [Layer("chorale", low, high, 0.2)]
                staves.append(staff)
            symbol = "bracket"
        else:
            upper = Staff(1, Instrument("Soprano Alto", "S. A.", "voice", (G,)), G,
                          layers=[Layer("chorale", 30, 39, 0.2), Layer("chorale", 25, 34, 0.2)])
            lower = Staff(2, Instrument("Tenor Bass", "T. B.", "voice", (F,)), F,
                          layers=[Layer("chorale", 21, 29, 0.2), Layer("chorale", 16, 25, 0.2)])
            staves, symbol = [upper, lower], "brace"
    elif layout == "quartet":
        staves = [_staff(rng, 1, Instrument("Violin I", "Vln. I", "strings", (G,)), "melody"),
                  _staff(rng, 2, Instrument("Violin II", "Vln. II", "strings", (G,)), "inner"),
                  _staff(rng, 3, Instrument("Viola", "Vla.", "strings", (ALTO, G)), "inner"),
                  _staff(rng, 4, Instrument("Violoncello", "Vc.", "strings", (F, TENOR, G)), "bass")]
        symbol = "bracket"
    elif layout == "leadsheet":
        staves = [_staff(rng, 1, Instrument("Melody", "", "voice", (G,), activity=(0.3, 0.7)), "melody")]
    else:
        raise ValueError(f"unknown layout {layout!r}")
    if layout != "solo" and rng.random() < percussion:
        staves.append(_staff(rng, len(staves) + 1, PERCUSSION, "perc"))
        symbol = symbol or "bracket"
    for staff in staves:
        _maybe_octave_clef(rng, staff, octave)
    return staves, symbol


def _staff(rng: random.Random, n: int, instrument: Instrument, role: str, style: str = "") -> Staff:
    staff = Staff(n, instrument, instrument.clefs[0])
    low, high = window(staff.clef, 0, role)
    staff.layers = [Layer(role, low, high, rng.uniform(*instrument.activity), style)]
    return staff


def _maybe_octave_clef(rng: random.Random, staff: Staff, rate: float) -> None:
    """Give the staff an octave clef: instruments that customarily read one get it ten times as often."""
    if staff.clef == PERC or staff.dis is not None:
        return
    customary = staff.instrument.octave_clef
    if customary is not None and rng.random() < min(1.0, 10 * rate):
        staff.dis = customary
    elif customary is None and rng.random() < rate:
        staff.dis = rng.choice(_OCTAVE_CLEFS)
    else:
        return
    for layer in staff.layers:  # the written pitches stay on the staff; they sound an octave away
        layer.low += staff.shift
        layer.high += staff.shift
