"""One layer of one bar on paper: the per-note devices (articulations, bowings, grace notes, tremolos,
ornaments, fingerings, arpeggios, cue size) and its MEI text, with beams, tuplets and accidentals."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from deepscores.compose.rhythm import Ev
from deepscores.compose.theory import CLEF_LINES, DUR_TICKS, Q, Key, pitch_attrs

#: Articulation devices -> MEI @artic value, and whether it only suits short notes.
ARTICULATIONS = {"staccato": ("stacc", True), "accent": ("acc", False), "tenuto": ("ten", False),
                 "staccatissimo": ("stacciss", True), "marcato": ("marc", False)}
_FINGERS = {"keys": "12345", "strings": "01234", "guitar": "01234"}


@dataclass
class Context:
    """Where a layer is: its staff, its voice, and the clef (and octave shift) in force."""

    staff: int
    layer: int  # 1-based
    layers: int  # voices on the staff
    family: str
    clef: tuple[str, int]
    shift: int  # written-to-MEI diatonic shift of the clef's octave mark

    def place(self, d: int) -> str:
        """Where a mark at the notehead goes: the side away from the stem."""
        if self.layers > 1:
            return "above" if self.layer == 1 else "below"
        bottom, top = CLEF_LINES[self.clef]
        return "above" if d - self.shift >= (bottom + top) // 2 else "below"


class Ids:
    """xml:ids for one score, in the order elements are made: deterministic by construction."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"e{self.count}"


def decorate(rng: random.Random, events: list[Ev], ctx: Context, key: Key, rates: Mapping[str, float],
             ids: Ids, cue: bool) -> list[str]:
    """Attach the per-note devices to ``events`` (ids too); returns the control events they need."""
    controls: list[str] = []
    previous: Ev | None = None
    for ev in events:
        ev.id = ids()
        if cue:
            ev.attrs.append(' cue="true"')
        if ev.rest:
            previous = ev
            continue
        top = ev.pitches[0][0]
        place = ctx.place(top)
        if not ev.tie_in:
            artic = _articulation(rng, ev, rates)
            if artic:
                ev.children.append(f'<artic artic="{artic}" place="{place}"/>')
        if ctx.family == "strings" and rng.random() < rates.get("bowing", 0.0):
            # Bows go above the staff: Verovio turns one placed below into a glyph DeepScores has no class for.
            ev.children.append(f'<artic artic="{rng.choice(("dnbow", "upbow"))}" place="above"/>')
        fingers = _FINGERS.get(ctx.family)
        if fingers and rng.random() < rates.get("fingering", 0.0):
            side = "above" if ctx.staff == 1 or ctx.family != "keys" else "below"
            controls.append(f'<fing staff="{ctx.staff}" startid="#{ev.id}" place="{side}">{rng.choice(fingers)}</fing>')
        if len(ev.pitches) > 1 and rng.random() < rates.get("arpeggio", 0.0):
            controls.append(f'<arpeg staff="{ctx.staff}" plist="#{ev.id}" startid="#{ev.id}"/>')
        ornamentable = ev.written >= DUR_TICKS["8"] and ev.tuplet is None and not ev.tie_in and ctx.family != "perc"
        if ornamentable:
            controls.extend(_ornaments(rng, ev, ctx, rates))
        fresh = ev.starts_wrappers(previous) and not ev.tie_in
        if fresh and ctx.family != "perc" and rng.random() < rates.get("grace_notes", 0.0):
            ev.pre.append(_grace(rng, ev, key, ctx))
        if (ev.beam == 0 and ev.tuplet is None and ev.written >= Q and ev.dur not in ("breve", "long")
                and not ev.tie_in and rng.random() < rates.get("tremolo", 0.0)):
            if ev.dur == "1" or rng.random() < 0.3:
                ev.trem = f' unitdur="{rng.choice(("16", "32"))}"'  # a whole note has no stem to slash
            else:
                ev.attrs.append(f' stem.mod="{rng.randint(1, 3)}slash"')
                ev.trem = ""
        previous = ev
    return controls


def _articulation(rng: random.Random, ev: Ev, rates: Mapping[str, float]) -> str | None:
    """At most one articulation a note, each device at its rate (scaled down together if they add past 1);
    staccato and staccatissimo only on quarters and shorter."""
    total = sum(rates.get(device, 0.0) for device in ARTICULATIONS)
    r = rng.random() * max(1.0, total)
    for device, (artic, short_only) in ARTICULATIONS.items():
        r -= rates.get(device, 0.0)
        if r < 0:
            return None if short_only and ev.written > Q else artic
    return None


def _ornaments(rng: random.Random, ev: Ev, ctx: Context, rates: Mapping[str, float]) -> list[str]:
    out = []
    where = f'staff="{ctx.staff}" startid="#{ev.id}"'
    if rng.random() < rates.get("trill", 0.0):
        out.append(f'<trill {where} place="above"/>')
    elif rng.random() < rates.get("turn", 0.0):
        out.append(f'<turn {where} form="{rng.choice(("upper", "lower"))}" place="above"/>')
    elif rng.random() < rates.get("mordent", 0.0):
        # The lower form is DeepScores' ornamentMordent; the upper one (a short trill) has no v1 class.
        out.append(f'<mordent {where} form="{"lower" if rng.random() < 0.7 else "upper"}" place="above"/>')
    return out


def _grace(rng: random.Random, ev: Ev, key: Key, ctx: Context) -> tuple:
    """A grace note (eighth, unbeamed: acciaccatura or appoggiatura) or a beamed run of 16ths leading
    to ``ev`` by step."""
    d = ev.pitches[0][0]
    stem = "down" if ctx.layer > 1 or (ctx.layers == 1 and rng.random() < 0.3) else "up"
    if rng.random() < 0.8:
        g = d + (1 if rng.random() < 0.7 else -1)
        return ("grace", [(g, key.alter_of(g % 7))], rng.choice(("unacc", "acc")), stem, False)
    n = rng.randint(2, 4)
    direction = 1 if rng.random() < 0.5 else -1
    notes = [d - direction * (n - i) for i in range(n)]
    return ("grace", [(g, key.alter_of(g % 7)) for g in notes], "acc", stem, True)


def layer_xml(events: list[Ev], key_alters: tuple[int, ...], tail: str = "") -> str:
    """MEI text of one layer's bar; accidentals follow the key and the bar's earlier accidentals."""
    shown: dict[int, int] = {}
    out: list[str] = []
    beam = tuplet = 0
    for ev in events:
        if beam and ev.beam != beam:
            out.append("</beam>")
            beam = 0
        if tuplet and (ev.tuplet is None or ev.tuplet[0] != tuplet):
            out.append("</tuplet>")
            tuplet = 0
        for item in ev.pre:
            out.append(item[1] if item[0] == "clef" else _grace_xml(item, key_alters, shown))
        if ev.tuplet and not tuplet:
            tuplet = ev.tuplet[0]
            out.append(f'<tuplet num="{ev.tuplet[1]}" numbase="{ev.tuplet[2]}">')
        if ev.beam and not beam:
            beam = ev.beam
            out.append("<beam>")
        out.append(_event_xml(ev, key_alters, shown))
    if beam:
        out.append("</beam>")
    if tuplet:
        out.append("</tuplet>")
    out.append(tail)
    return "".join(out)


def _event_xml(ev: Ev, key_alters: tuple[int, ...], shown: dict[int, int]) -> str:
    dots = f' dots="{ev.dots}"' if ev.dots else ""
    attrs = "".join(ev.attrs)
    if ev.rest:
        return f'<rest xml:id="{ev.id}" dur="{ev.dur}"{dots}{attrs}/>'
    children = "".join(ev.children)
    # A note tied from the one before shows no accidental, and the bar's accidentals stay as they were.
    tied = ev.tie_in
    shown = dict(shown) if tied else shown
    if len(ev.pitches) == 1:
        d, alter = ev.pitches[0]
        text = f'<note xml:id="{ev.id}" {pitch_attrs(d, alter, key_alters, shown, tied)} dur="{ev.dur}"{dots}{attrs}'
        text += f">{children}</note>" if children else "/>"
    else:
        notes = "".join(f"<note {pitch_attrs(d, alter, key_alters, shown, tied)}/>" for d, alter in ev.pitches)
        text = f'<chord xml:id="{ev.id}" dur="{ev.dur}"{dots}{attrs}>{notes}{children}</chord>'
    if ev.trem is not None:
        return f"<bTrem{ev.trem}>{text}</bTrem>"
    return text


def _grace_xml(item: tuple, key_alters: tuple[int, ...], shown: dict[int, int]) -> str:
    _, notes, kind, stem, beamed = item
    dur = "16" if beamed else "8"
    text = "".join(f'<note {pitch_attrs(d, alter, key_alters, shown)} dur="{dur}" grace="{kind}" stem.dir="{stem}"/>'
                   for d, alter in notes)
    return f"<beam>{text}</beam>" if beamed else text

