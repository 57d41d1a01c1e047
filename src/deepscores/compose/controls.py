"""Control events of one bar (MEI elements after the staves, tied to notes by @startid/@endid or to
beats by @tstamp): dynamics, hairpins, slurs, ties, ottavas, fermatas, caesuras, breaths, pedals,
chord symbols and repeat marks. A spanner that ends in the next bar is a template with '{end}'."""

from __future__ import annotations

import random

from deepscores.compose.rhythm import Ev
from deepscores.compose.theory import Key, Meter, chord_name

# Weights keep the printed spread of real scores but leave the extremes common enough to learn.
DYNAMICS = {"p": 6, "mp": 5, "mf": 6, "f": 6, "pp": 4, "ff": 4, "sf": 2, "sfz": 2, "fp": 2, "ppp": 1.5,
            "fff": 1.5, "pppp": 1, "ffff": 1, "ppppp": 0.8, "fffff": 0.8, "rfz": 1, "m": 0.6, "rf": 0.4,
            "fz": 0.6, "sffz": 0.4, "sfp": 0.5, "n": 0.3}
_DYNAMIC_TEXTS, _DYNAMIC_WEIGHTS = list(DYNAMICS), list(DYNAMICS.values())
TEMPI = ("Allegro", "Andante", "Moderato", "Adagio", "Allegretto", "Presto", "Largo", "Vivace", "Andantino")


def notes_of(events: list[Ev]) -> list[Ev]:
    return [ev for ev in events if not ev.rest]


def dynamics(rng: random.Random, events: list[Ev], meter: Meter, staff: int, rate: float, opening: bool) -> list[str]:
    """At most one dynamic per beat group, on the note or rest that starts it."""
    out, starts, onset = [], set(), 0
    for length in meter.groups:
        starts.add(onset)
        onset += length
    for i, ev in enumerate(events):
        if ev.onset in starts and (rng.random() < (min(1.0, 10 * rate) if opening and i == 0 else rate)):
            text = rng.choices(_DYNAMIC_TEXTS, _DYNAMIC_WEIGHTS)[0]
            where = f'tstamp="{meter.tstamp(ev.onset)}"' if ev.rest else f'startid="#{ev.id}"'
            out.append(f'<dynam staff="{staff}" {where}>{text}</dynam>')
    return out


def hairpin(rng: random.Random, events: list[Ev], staff: int) -> str | None:
    """A crescendo or diminuendo between two notes of the bar, or to the next bar's first note."""
    notes = notes_of(events)
    if not notes:
        return None
    start = rng.randrange(len(notes))
    form = "cres" if rng.random() < 0.55 else "dim"
    head = f'<hairpin staff="{staff}" form="{form}" place="below" startid="#{notes[start].id}"'
    if start == len(notes) - 1 or rng.random() < 0.3:
        return head + ' endid="#{end}"/>'
    return head + f' endid="#{notes[rng.randrange(start + 1, len(notes))].id}"/>'


def slur(rng: random.Random, events: list[Ev], staff: int) -> str | None:
    """A slur over a run of 2-6 notes without rests, sometimes ending on the next bar's first note."""
    runs, run = [], []
    for ev in events + [None]:
        if ev is not None and not ev.rest:
            run.append(ev)
        else:
            if run:
                runs.append(run)
            run = []
    if not runs:
        return None
    run = rng.choice(runs)
    start = rng.randrange(len(run))
    if run is runs[-1] and run[-1] is events[-1] and rng.random() < 0.3:
        return f'<slur staff="{staff}" startid="#{run[start].id}" endid="#{{end}}"/>'
    if len(run) - start < 2:
        start = max(0, len(run) - 2)
    if len(run) < 2:
        return None
    end = min(len(run) - 1, start + rng.randint(1, 5))
    return f'<slur staff="{staff}" startid="#{run[start].id}" endid="#{run[end].id}"/>'


def tie_inside(rng: random.Random, events: list[Ev]) -> int | None:
    """Index of a note to tie from the note before it (same pitch), or None when the bar has no pair."""
    pairs = [i for i in range(1, len(events)) if not events[i].rest and not events[i - 1].rest
             and not events[i].pre and events[i].tuplet is None and events[i - 1].tuplet is None]
    return rng.choice(pairs) if pairs else None


def tie(staff: int, start: Ev, end_id: str) -> str:
    return f'<tie staff="{staff}" startid="#{start.id}" endid="#{end_id}"/>'


def fermata(events: list[Ev], staff: int, place: str) -> str | None:
    if not events:
        return None
    return f'<fermata staff="{staff}" startid="#{events[-1].id}" place="{place}"/>'


def caesura(events: list[Ev], meter: Meter, staff: int) -> str:
    last = events[-1] if events else None
    onset = last.onset + last.ticks // 2 if last else meter.bar_ticks // 2
    return f'<caesura staff="{staff}" tstamp="{meter.tstamp(onset)}"/>'


def breath(rng: random.Random, events: list[Ev], meter: Meter, staff: int) -> str | None:
    inner = [ev for ev in events[:-1] if not ev.rest and ev.tuplet is None]
    if not inner:
        return None
    ev = rng.choice(inner)
    return f'<breath staff="{staff}" tstamp="{meter.tstamp(ev.onset + ev.ticks)}"/>'


def pedal(events: list[Ev], meter: Meter, staff: int) -> list[str]:
    down = (f'startid="#{events[0].id}"' if events and not events[0].rest
            else f'tstamp="{meter.tstamp(0)}"')
    return [f'<pedal staff="{staff}" {down} dir="down"/>',
            f'<pedal staff="{staff}" tstamp="{meter.tstamp(meter.bar_ticks - meter.bar_ticks // 8)}" dir="up"/>']


def ottava(rng: random.Random, events: list[Ev], staff: int, clef_shape: str) -> str | None:
    """An 8va (or 15ma) over a treble staff's bar, an 8vb under a bass staff's; may run into the next bar."""
    notes = notes_of(events)
    if not notes or clef_shape not in ("G", "F"):
        return None
    dis = "15" if rng.random() < 0.2 else "8"
    place = "above" if clef_shape == "G" else "below"
    end = "#{end}" if rng.random() < 0.3 else f"#{notes[-1].id}"
    return f'<octave staff="{staff}" dis="{dis}" dis.place="{place}" startid="#{notes[0].id}" endid="{end}"/>'


def chord_symbols(key: Key, harmony: list[int], meter: Meter, staff: int, previous: int | None) -> list[str]:
    out, onset = [], 0
    for length, degree in zip(meter.groups, harmony):
        if degree != previous:
            name = chord_name(key, degree)
            out.append(f'<harm staff="{staff}" tstamp="{meter.tstamp(onset)}" place="above">{name}</harm>')
        previous = degree
        onset += length
    return out


def repeat_mark(func: str, meter: Meter) -> str:
    """A segno at the start of the bar, a coda sign over its first beat."""
    return f'<repeatMark staff="1" tstamp="{meter.tstamp(0)}" func="{func}" place="above"/>'


def tempo(rng: random.Random) -> str:
    return f'<tempo staff="1" tstamp="1" place="above">{rng.choice(TEMPI)}</tempo>'
