"""The plan of a score, bar by bar, before any note: meters and keys (and their changes), harmony,
multi-measure rests, long-value bars, repeats, segno/coda, fermatas, caesuras and pedalling."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from deepscores.compose.theory import Key, Meter

_COMMON_METERS = ((4, 4, 6.0), (3, 4, 4.0), (2, 4, 2.5), (6, 8, 2.5), (2, 2, 1.2), (3, 8, 0.8), (9, 8, 0.5),
                  (12, 8, 0.6), (3, 2, 0.4), (6, 4, 0.3))
_CHORALE_METERS = ((4, 4, 6.0), (3, 4, 3.0), (3, 2, 1.0), (4, 2, 1.0), (2, 2, 1.0))
_RARE_METERS = ((1, 4), (5, 4), (7, 4), (5, 8), (7, 8), (10, 8), (10, 4), (9, 8), (12, 8), (16, 16))
#: The bar a long-value device writes, by the longest value it holds.
LONG_METERS = {"breve": Meter(4, 2), "long": Meter(4, 1), "maxima": Meter(8, 1)}
# Where a chord goes next (scale degrees, 0 = tonic): a plain tonal progression.
_NEXT = {0: (3, 4, 5, 1, 0, 3), 1: (4, 6, 4), 2: (5, 3), 3: (4, 0, 1, 4), 4: (0, 5, 0, 0), 5: (1, 3), 6: (0,)}
_KEYS = tuple(range(-7, 8))
_KEY_WEIGHTS = (0.1, 0.2, 0.5, 1.5, 3, 4, 5, 6, 5, 4, 3, 1.5, 0.5, 0.2, 0.1)


@dataclass
class Bar:
    """One <measure> of the score and everything decided for all its staves."""

    n: int
    meter: Meter
    key: Key
    new_meter: bool = False
    new_key: bool = False
    multirest: int = 0  # > 1: a multi-measure rest of that many bars
    long: str = ""  # '', 'breve', 'long', 'maxima': a bar of long values
    left: str = ""
    right: str = ""
    marks: list[str] = field(default_factory=list)  # 'segno', 'coda'
    harmony: list[int] = field(default_factory=list)  # scale degree per beat group
    final: bool = False
    fermata: bool = False
    caesura: bool = False
    pedal: bool = False


def choose_meter(rng: random.Random, rates: Mapping[str, float], chorale: bool) -> Meter:
    if rng.random() < rates["rare_meter"]:
        return Meter(*rng.choice(_RARE_METERS))
    if rng.random() < rates["meter_symbol"]:
        return Meter(4, 4, "common") if rng.random() < 0.7 else Meter(2, 2, "cut")
    table = _CHORALE_METERS if chorale else _COMMON_METERS
    count, unit, _ = rng.choices(table, [w for _, _, w in table])[0]
    return Meter(count, unit)


def _progression(rng: random.Random, groups: int, previous: int, cadence: bool, final: bool, slow: bool) -> list[int]:
    """Scale degrees per beat group: one chord a bar, two, or (not in ``slow`` harmony) one a beat."""
    if final:
        return [0] * groups
    per = rng.choices((groups, max(1, groups // 2), 1), (3, 2, 0 if slow else 1))[0]
    degrees, degree = [], previous
    for g in range(groups):
        if g % per == 0:
            degree = rng.choice(_NEXT[degree])
        degrees.append(degree)
    if cadence:
        degrees[-max(1, groups // 2):] = [4] * max(1, groups // 2)
    return degrees


def plan_bars(rng: random.Random, count: int, rates: Mapping[str, float], chorale: bool, percussion: bool,
              slow_harmony: bool = False) -> list[Bar]:
    """``count`` bars; the last one ends the piece (a long note where the meter allows, 'end' bar line).
    No key changes when a percussion staff is there: its empty signature would change with the others."""
    meter = choose_meter(rng, rates, chorale)
    key = Key(rng.choices(_KEYS, _KEY_WEIGHTS)[0], rng.random() < 0.35)
    bars: list[Bar] = []
    section_start, degree, home = 0, 0, meter
    marks = ["segno", "coda"]
    for i in range(count):
        final = i == count - 1
        bar = Bar(i + 1, meter, key, new_meter=False, final=final)
        if i:
            if rng.random() < rates["meter_change"]:
                home = choose_meter(rng, rates, chorale)
            if not percussion and rng.random() < rates["key_change"]:
                key = Key(0 if rng.random() < 0.3 else rng.choices(_KEYS, _KEY_WEIGHTS)[0], key.minor)
                bar.new_key = key != bars[-1].key
                bar.key = key
        if rng.random() < rates["long_values"] and not (i == 0 and count > 1):
            # A bar of breves keeps a 4/2 or 2/1 meter; any other meter changes for this one bar.
            in_breves = home.bar_ticks == LONG_METERS["breve"].bar_ticks
            bar.long = "breve" if in_breves else rng.choice(tuple(LONG_METERS))
            bar.meter = home if in_breves else LONG_METERS[bar.long]
        else:
            bar.meter = home
        bar.new_meter = i > 0 and bar.meter != bars[-1].meter
        if 0 < i < count - 1 and not bar.long and rng.random() < rates["multirest"]:
            bar.multirest = rng.choice((2, 2, 3, 4, 4, 5, 6, 8, 8, 10, 12))
        bar.harmony = _progression(rng, len(bar.meter.groups), degree, i % 4 == 3, final, slow_harmony)
        degree = bar.harmony[-1]
        if final:
            bar.right = "end"
        if i - section_start >= 2 and rng.random() < rates["repeats"]:
            bar.right = "rptend"
            if section_start > 0 or rng.random() < 0.5:  # a repeat from the very start may omit its sign
                bars[section_start].left = "rptstart"
            section_start = i + 1
        if rng.random() < rates["segno_coda"]:
            bar.marks.append(marks[0])
            marks.reverse()
        bar.fermata = not bar.multirest and rng.random() < (min(1.0, 20 * rates["fermata"]) if final else rates["fermata"])
        bar.caesura = not bar.multirest and not final and rng.random() < rates["caesura"]
        bar.pedal = not bar.multirest and rng.random() < rates["pedal"]
        bars.append(bar)
    return bars
