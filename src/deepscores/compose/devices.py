"""The notational devices the composer can use, the DeepScores v1 classes each one draws, its default
rate and what that rate counts; `ComposeOptions` (the one options record) and `rates_for_classes`.

Every rate is a probability in [0, 1], counted per the device's unit:

- ``note``: per note or chord (of the parts the device suits: bowings on strings, fingerings on
  keyboard, string and guitar parts, arpeggios on chords, pedal on the piano's left hand);
- ``group``: per beat group (a quarter, or a dotted quarter in compound meters) of each voice;
- ``staff-bar``: per bar of each voice; ``bar``: per bar of the score (every staff at once);
- ``score``: per score (``octave_clef``: per staff).

The defaults give a page of mostly plain notes with devices sprinkled in; a rate near its ``frequent``
value makes a device common on every page without breaking the music.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from deepscores.compose.parts import LAYOUTS
from deepscores.errors import OptionsError

_DYNAMICS = ("dynamicPiano", "dynamicMezzo", "dynamicForte", "dynamicPPPPP", "dynamicPPPP", "dynamicPPP",
             "dynamicPP", "dynamicMP", "dynamicMF", "dynamicFF", "dynamicFFF", "dynamicFFFF", "dynamicFFFFF",
             "dynamicFortePiano", "dynamicSforzando1", "dynamicSforzato", "dynamicRinforzando2")


def _updown(*stems: str) -> frozenset[str]:
    return frozenset(f"{s}{side}" for s in stems for side in ("Up", "Down"))


def _abovebelow(*stems: str) -> frozenset[str]:
    return frozenset(f"{s}{side}" for s in stems for side in ("Above", "Below"))


# name: (v1 classes, default rate, frequent rate, unit, what it writes)
_SPECS: dict[str, tuple[frozenset[str], float, float, str, str]] = {
    "accidentals": (frozenset({"accidentalSharp", "accidentalFlat", "accidentalNatural"}), 0.04, 0.3, "note",
                    "chromatic notes (@accid), naturals where the bar or key says so"),
    "double_accidentals": (frozenset({"accidentalDoubleSharp", "accidentalDoubleFlat"}), 0.002, 0.12, "note",
                           "double sharps (accid='x'), mostly in sharp keys, and double flats ('ff')"),
    "chords": (frozenset(), 0.15, 0.6, "note",
               "chords in keyboard and guitar parts (double stops on strings at a third of the rate)"),
    "rests": (frozenset({"restQuarter", "rest8th", "rest16th", "restHalf"}), 0.08, 0.45, "group",
              "rests inside the rhythm"),
    "dotted": (frozenset({"augmentationDot"}), 0.08, 0.5, "group", "dotted and double-dotted rhythms"),
    "triplets": (frozenset({"tuplet3"}), 0.03, 0.4, "group", "<tuplet num=3 numbase=2> (duplets in compound meters)"),
    "sextuplets": (frozenset({"tuplet6"}), 0.006, 0.3, "group", "<tuplet num=6 numbase=4> of 16ths"),
    "quintuplets": (frozenset(), 0.002, 0.2, "group", "<tuplet> 5:4 and 7:4 of 16ths"),
    "short_notes": (_updown("flag32nd", "flag64th", "flag128th"), 0.01, 0.35, "group",
                    "runs of 32nds, 64ths and 128ths; three in ten unbeamed, with flags"),
    "short_rests": (frozenset({"rest32nd", "rest64th", "rest128th"}), 0.003, 0.3, "group",
                    "32nd, 64th and 128th rests"),
    "flags": (_updown("flag8th", "flag16th"), 0.04, 0.5, "group", "a group's eighths and 16ths left unbeamed"),
    "staccato": (_abovebelow("articStaccato"), 0.04, 0.4, "note", "<artic artic=stacc> on the notehead side"),
    "accent": (_abovebelow("articAccent"), 0.015, 0.4, "note", "<artic artic=acc>"),
    "tenuto": (_abovebelow("articTenuto"), 0.015, 0.4, "note", "<artic artic=ten>"),
    "staccatissimo": (_abovebelow("articStaccatissimo"), 0.005, 0.4, "note", "<artic artic=stacciss>"),
    "marcato": (_abovebelow("articMarcato"), 0.005, 0.4, "note", "<artic artic=marc>"),
    "bowing": (frozenset({"stringsDownBow", "stringsUpBow"}), 0.04, 0.5, "note", "up- and down-bows (strings)"),
    "fingering": (frozenset(f"fingering{i}" for i in range(6)), 0.04, 0.5, "note",
                  "<fing> 1-5 on keyboards, 0-4 on strings and guitar"),
    "trill": (frozenset({"ornamentTrill"}), 0.004, 0.2, "note", "<trill>"),
    "turn": (frozenset({"ornamentTurn", "ornamentTurnInverted"}), 0.004, 0.2, "note", "<turn form=upper|lower>"),
    "mordent": (frozenset({"ornamentMordent"}), 0.005, 0.2, "note", "<mordent>, lower (7 in 10) or upper"),
    "grace_notes": (frozenset({"graceNoteAcciaccaturaStemUp", "graceNoteAppoggiaturaStemUp",
                               "graceNoteAcciaccaturaStemDown", "graceNoteAppoggiaturaStemDown",
                               "noteheadBlackSmall"}), 0.01, 0.25, "note",
                    "an unbeamed eighth grace note (unacc/acc, stem up or down) or a beamed run of 16ths"),
    "tremolo": (frozenset(), 0.005, 0.2, "note", "<bTrem> with stem.mod 1-3 slashes or @unitdur"),
    "arpeggio": (frozenset({"arpeggiato"}), 0.03, 0.8, "note", "<arpeg> on a chord"),
    "cue_notes": (frozenset({"noteheadBlackSmall", "noteheadHalfSmall", "noteheadWholeSmall", "flag8thUpSmall",
                             "flag8thDownSmall", "accidentalSharpSmall", "accidentalFlatSmall",
                             "accidentalNaturalSmall"}), 0.005, 0.3, "staff-bar", "a bar of cue-sized notes"),
    "measure_rests": (frozenset({"restWhole"}), 0.03, 0.4, "staff-bar", "<mRest/>"),
    "dynamics": (frozenset(_DYNAMICS), 0.04, 0.5, "group", "<dynam> p..ppppp, f..fffff, mp, mf, fp, sf, sfz, rfz, m, ..."),
    "hairpins": (frozenset(), 0.06, 0.5, "staff-bar", "<hairpin form=cres|dim>"),
    "slurs": (frozenset(), 0.15, 0.7, "staff-bar", "<slur> over 2-6 notes, sometimes over the bar line"),
    "ties": (frozenset(), 0.08, 0.5, "staff-bar", "<tie> inside the bar or over the bar line"),
    "ottava": (frozenset(), 0.01, 0.3, "staff-bar", "<octave dis=8|15> above treble, below bass staves"),
    "clef_change": (frozenset({"gClefChange", "cClefAltoChange", "cClefTenorChange", "fClefChange", "cClefTenor"}),
                    0.03, 0.4, "staff-bar", "mid-staff <clef> (G/F, C alto/tenor) where the instrument reads several"),
    "octave_clef": (frozenset({"clef8", "clef15"}), 0.05, 0.8, "score",
                    "per staff: G/F clef with dis=8|15 above or below (10x for tenors, guitars, piccolo, contrabass)"),
    "percussion_clef": (frozenset({"unpitchedPercussionClef1"}), 0.03, 0.7, "score", "a percussion staff"),
    "fermata": (frozenset({"fermataAbove", "fermataBelow"}), 0.02, 0.3, "bar",
                "fermatas on every staff's last note (below for lower voices); the final bar 20x as often"),
    "caesura": (frozenset({"caesura"}), 0.005, 0.3, "bar", "<caesura> before the bar line"),
    "breath": (frozenset(), 0.01, 0.3, "staff-bar", "<breath> after a note (winds, voices, strings)"),
    "pedal": (frozenset({"keyboardPedalPed", "keyboardPedalUp"}), 0.25, 1.0, "bar", "<pedal dir=down> .. dir=up (piano)"),
    "meter_change": (frozenset({"timeSig2", "timeSig3", "timeSig4", "timeSig6", "timeSig8"}), 0.01, 0.3, "bar",
                     "a new time signature"),
    "rare_meter": (frozenset({"timeSig0", "timeSig1", "timeSig5", "timeSig7", "timeSig9", "timeSig12", "timeSig16"}),
                   0.08, 0.8, "score", "per score and per change: 1/4, 5/4, 7/4, 5/8, 7/8, 10/8, 10/4, 9/8, 12/8, 16/16"),
    "meter_symbol": (frozenset({"timeSigCommon", "timeSigCutCommon"}), 0.25, 0.8, "score",
                     "per score and per change, unless the meter is rare: common time (C) or cut time"),
    "key_change": (frozenset({"keyNatural", "keySharp", "keyFlat"}), 0.005, 0.2, "bar", "a new key signature"),
    "long_values": (frozenset({"noteheadDoubleWhole", "restDoubleWhole", "restLonga", "restMaxima"}), 0.002, 0.25,
                    "bar", "a bar of 4/2, 4/1 or 8/1 with breves, long or maxima rests"),
    "multirest": (frozenset({"restHBar"}), 0.01, 0.3, "bar", "<multiRest num=2..12> in every staff"),
    "repeats": (frozenset({"repeatDot"}), 0.03, 0.4, "bar", "a repeated section ends (@right=rptend, @left=rptstart)"),
    "segno_coda": (frozenset({"segno", "coda"}), 0.005, 0.3, "bar", "<repeatMark func=segno|coda>"),
    "chord_symbols": (frozenset(), 0.8, 1.0, "bar", "<harm> chord symbols (lead sheets only)"),
}

#: Device name -> the DeepScores v1 classes it draws (empty: it draws lines, text or nothing v1 names).
DEVICES: dict[str, frozenset[str]] = {name: spec[0] for name, spec in _SPECS.items()}
#: Device name -> the DeepScoresV2 classes it draws that the v1 vocabulary names otherwise (or not at
#: all); v2 names equal to v1 ones are in DEVICES already. Balancing a v2 dataset reads both.
V2_CLASSES: dict[str, frozenset[str]] = {
    "dynamics": frozenset({"dynamicP", "dynamicM", "dynamicF", "dynamicS", "dynamicZ", "dynamicR"}),
    "tremolo": frozenset({"tremolo1", "tremolo2", "tremolo3"}),
    "slurs": frozenset({"slur"}), "ties": frozenset({"tie"}), "ottava": frozenset({"ottavaBracket"}),
    "hairpins": frozenset({"dynamicCrescendoHairpin", "dynamicDiminuendoHairpin"}),
    "quintuplets": frozenset({"tuplet5", "tuplet7"}), "triplets": frozenset({"tuplet2", "tupletBracket"}),
    "multirest": frozenset({"restHNr"}),
    "cue_notes": frozenset(f"notehead{v}{p}Small" for v in ("Black", "Half", "Whole") for p in ("OnLine", "InSpace")),
    "grace_notes": frozenset({"noteheadBlackOnLineSmall", "noteheadBlackInSpaceSmall"}),
    "long_values": frozenset({"noteheadDoubleWholeOnLine", "noteheadDoubleWholeInSpace"}),
    "clef_change": frozenset({"clefCTenor", "clefCAlto"}),
    "percussion_clef": frozenset({"clefUnpitchedPercussion"}),
}
#: Device name -> default rate (see the module docstring for units).
DEFAULT_RATES: dict[str, float] = {name: spec[1] for name, spec in _SPECS.items()}
#: Device name -> a rate that makes the device frequent; `rates_for_classes` raises rates towards it.
FREQUENT_RATES: dict[str, float] = {name: spec[2] for name, spec in _SPECS.items()}
#: Device name -> (unit the rate counts, what the device writes).
DESCRIPTIONS: dict[str, tuple[str, str]] = {name: (spec[3], spec[4]) for name, spec in _SPECS.items()}
#: Devices only one layout uses; in the 'mixed' layout raising them makes that layout likelier.
LAYOUT_DEVICES = {"piano": ("pedal", "arpeggio", "fingering"), "quartet": ("bowing", "fingering"),
                  "leadsheet": ("chord_symbols",), "solo": ("percussion_clef",)}


@dataclass(frozen=True)
class ComposeOptions:
    """What to compose: the layout, the number of <measure> elements (a multi-measure rest is one),
    and overrides of the default device rates as (device, rate) pairs."""

    layout: str = "mixed"
    measures: int = 32
    rates: tuple[tuple[str, float], ...] = ()

    def validate(self) -> None:
        if self.layout not in LAYOUTS:
            raise OptionsError(f"unknown layout {self.layout!r}; choose from {', '.join(LAYOUTS)}")
        if isinstance(self.measures, bool) or not isinstance(self.measures, int) or not 1 <= self.measures <= 10_000:
            raise OptionsError(f"measures must be an integer from 1 to 10000, got {self.measures!r}")
        seen = set()
        for pair in self.rates:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise OptionsError(f"rates must be (device, rate) pairs, got {pair!r}")
            device, rate = pair
            if device not in DEVICES:
                raise OptionsError(f"unknown device {device!r} in rates; devices: {', '.join(sorted(DEVICES))}")
            if device in seen:
                raise OptionsError(f"rate for device {device!r} given twice")
            seen.add(device)
            number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
            if not number or not math.isfinite(rate) or not 0 <= rate <= 1:
                raise OptionsError(f"rate for device {device!r} must be a number from 0 to 1, got {rate!r}")

    def resolved_rates(self) -> dict[str, float]:
        """Every device's rate: the default, or the override."""
        return {**DEFAULT_RATES, **{device: float(rate) for device, rate in self.rates}}


def parse_rate(text: str) -> tuple[str, float]:
    """'device=value' (as the command line writes a rate) -> (device, value); the value is checked by
    `ComposeOptions.validate`."""
    device, sep, value = text.partition("=")
    device = device.strip()
    try:
        rate = float(value)
    except ValueError:
        rate = None
    if not sep or not device or rate is None:
        raise OptionsError(f"a rate is written device=value (like dynamics=0.3), got {text!r}")
    return device, rate


def layout_boosts(rates: Mapping[str, float]) -> dict[str, float]:
    """How much each layout's own devices are raised above their defaults (0: not at all)."""
    boosts = {}
    for layout, devices in LAYOUT_DEVICES.items():
        raised = sum(max(0.0, rates[d] - DEFAULT_RATES[d]) / (FREQUENT_RATES[d] - DEFAULT_RATES[d]) for d in devices)
        boosts[layout] = 3.0 * raised
    return boosts


def rates_for_classes(wanted: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """Device rates that make the wanted v1 (or v2, through V2_CLASSES) classes frequent: each device that draws a wanted class is
    raised from its default towards its frequent rate in proportion to the largest weight among the
    classes it draws (weights are relative; zero or negative weights ask for nothing). Names no device
    draws (plain noteheads, clefs at the head of a staff, and names of other vocabularies, which share
    many v1 names) are ignored, so a balancing loop can pass any vocabulary's deficits."""
    for name, weight in wanted.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise OptionsError(f"weight of class {name!r} must be a finite number, got {weight!r}")
    drawing = {device: classes | V2_CLASSES.get(device, frozenset()) for device, classes in DEVICES.items()}
    drawn = set().union(*drawing.values())
    positive = {name: float(weight) for name, weight in wanted.items() if weight > 0 and name in drawn}
    if not positive:
        return ()
    top = max(positive.values())
    out = []
    for device, classes in drawing.items():
        share = max((positive[c] / top for c in classes if c in positive), default=0.0)
        if share > 0:
            low, high = DEFAULT_RATES[device], FREQUENT_RATES[device]
            out.append((device, round(low + (high - low) * share, 4)))
    return tuple(out)
