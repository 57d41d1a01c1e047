"""`compose_mei`: a seeded score as MEI 5 text. The plan fixes the bars; each voice then gets its
rhythm, pitches and per-note devices bar by bar; control events follow each bar's staves."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from deepscores.compose import controls as ctl
from deepscores.compose.devices import ComposeOptions, layout_boosts
from deepscores.compose.layer import Context, Ids, decorate, layer_xml
from deepscores.compose.parts import PERC, Layer, Staff, build_staves, choose_layout, window
from deepscores.compose.pitch import Line, accompany, assign
from deepscores.compose.plan import Bar, plan_bars
from deepscores.compose.rhythm import Ev, alberti_rhythm, filled_with, measure_rhythm, whole_bar
from deepscores.compose.theory import PITCH_NAMES, Key
from deepscores.errors import OptionsError

MEI_NS = "http://www.music-encoding.org/ns/mei"
_FORMS = ("Study", "Étude", "Sonatina", "Invention", "Prelude", "Chorale", "Air", "Menuet", "Romance", "Capriccio")
_NO_KEY = Key(0)


@dataclass
class _Voice:
    """A layer's state across bars: its pitch line and what waits for the next bar's first note."""

    line: Line
    pending: list[str] = field(default_factory=list)  # spanners (ties too) ending on '{end}'
    target: list[str] | None = None  # the control list of the bar they start in
    tie_from: Ev | None = None  # the note a pending tie starts on: the next bar's first note copies its pitches

    def flush(self, first: Ev | None) -> None:
        """End the waiting spanners on ``first``; without a first note (a rest, a bar's rest) drop them."""
        if first is not None and self.target is not None:
            self.target.extend(p.replace("{end}", first.id) for p in self.pending)
        self.pending, self.tie_from = [], None


@dataclass
class _Clef:
    clef: tuple[str, int]
    shift: int


def compose_mei(seed: int, options: ComposeOptions = ComposeOptions()) -> str:
    """A score as MEI 5 text; the same ``(seed, options)`` always give the same text."""
    options.validate()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise OptionsError(f"seed must be an integer, got {seed!r}")
    rates = options.resolved_rates()
    rng = random.Random(f"deepscores.compose/{seed}")  # a str seed hashes the same in every process
    layout = choose_layout(rng, options.layout, layout_boosts(rates))
    staves, symbol = build_staves(rng, layout, rates)
    percussion = any(s.clef == PERC for s in staves)
    bars = plan_bars(rng, options.measures, rates, layout == "satb", percussion, slow_harmony=layout == "leadsheet")
    voices = {(s.n, i): _Voice(Line(rng, layer)) for s in staves for i, layer in enumerate(s.layers)}
    clefs = {s.n: _Clef(s.clef, s.shift) for s in staves}
    ids = Ids()
    measures: list[tuple[str, list[str], list[str]]] = []
    previous_degree = None
    for bar in bars:
        # A choir sings one rhythm: drawn once per bar and copied into every voice.
        shared = (measure_rhythm(rng, bar.meter, rates, 0.1)
                  if layout == "satb" and not (bar.long or bar.final or bar.multirest) else None)
        head = _change(bar) + _measure_open(bar)
        if bar.multirest:
            for voice in voices.values():
                voice.flush(None)
            body = [f'<staff n="{s.n}"><layer n="1"><multiRest num="{bar.multirest}"/></layer></staff>' for s in staves]
            measures.append((head, body, []))
            continue
        controls: list[str] = []
        body = [_staff_bar(rng, bar, staff, staves, voices, clefs[staff.n], rates, ids, controls, shared)
                for staff in staves]
        if bar.n == 1:
            controls.append(ctl.tempo(rng))
        controls.extend(ctl.repeat_mark(mark, bar.meter) for mark in bar.marks)
        if layout == "leadsheet" and rng.random() < rates["chord_symbols"]:
            controls.extend(ctl.chord_symbols(bar.key, bar.harmony, bar.meter, 1, previous_degree))
        previous_degree = bar.harmony[-1]
        measures.append((head, body, controls))
    text = [_header(rng, seed, bars[0].key), _score_def(staves, symbol, bars[0]), "<section>"]
    for head, body, control_list in measures:
        text.append(head)
        text.extend(body)
        text.extend(control_list)
        text.append("</measure>\n")
    text.append("</section></score></mdiv></body></music></mei>\n")
    return "".join(text)


def _staff_bar(rng: random.Random, bar: Bar, staff: Staff, staves: list[Staff], voices: Mapping[tuple[int, int], _Voice],
               clef: _Clef, rates: Mapping[str, float], ids: Ids, controls: list[str], shared: list[Ev] | None) -> str:
    """One <staff> of a bar; its control events go into ``controls``."""
    target = None if bar.final or bar.long else _clef_target(rng, staff, clef, rates["clef_change"])
    layers = []
    for index, layer in enumerate(staff.layers):
        voice = voices[(staff.n, index)]
        ctx = Context(staff.n, index + 1, len(staff.layers), staff.instrument.family, clef.clef, clef.shift)
        events = _rhythm(rng, bar, layer, rates, shared)
        if events is None:  # the voice rests for the bar
            voice.flush(None)
            rest_id = ids()
            if bar.fermata:
                place = _fermata_place(rng, staff, staves, index)
                controls.append(f'<fermata staff="{staff.n}" startid="#{rest_id}" place="{place}"/>')
            layers.append(f'<layer n="{index + 1}"><mRest xml:id="{rest_id}"/></layer>')
            continue
        lands = not events[0].rest  # spanners from the bar before end on the first note, if it is one
        tail = _pitch(rng, bar, staff, layer, voice, clef, target, events, rates, voice.tie_from if lands else None)
        cue = not bar.final and rng.random() < rates["cue_notes"]
        key = _NO_KEY if staff.clef == PERC else bar.key
        controls.extend(decorate(rng, events, ctx, key, rates, ids, cue))
        voice.flush(events[0] if lands else None)
        _controls(rng, bar, staff, staves, index, voice, events, rates, controls)
        layers.append(f'<layer n="{index + 1}">{layer_xml(events, key.alters, tail)}</layer>')
    return f'<staff n="{staff.n}">{"".join(layers)}</staff>'


def _rhythm(rng: random.Random, bar: Bar, layer: Layer, rates: Mapping[str, float],
            shared: list[Ev] | None) -> list[Ev] | None:
    """The bar's notes and rests for one voice, or None when it rests the whole bar (<mRest/>)."""
    meter = bar.meter
    if bar.long:
        return _long_bar(rng, bar)
    if bar.final:
        return whole_bar(meter, rest=False) or measure_rhythm(rng, meter, rates, 0.1)
    if bar.n > 1 and rng.random() < rates["measure_rests"]:  # a piece does not open on a bar's rest
        return None
    if shared is not None:
        return [_copy(ev) for ev in shared]
    if layer.role == "accomp" and layer.style == "alberti":
        return alberti_rhythm(meter)
    activity = layer.activity * (0.4 if layer.role == "accomp" else 1.0)
    return measure_rhythm(rng, meter, rates, activity)


def _long_bar(rng: random.Random, bar: Bar) -> list[Ev]:
    meter, r = bar.meter, rng.random()
    if bar.long == "breve":
        return whole_bar(meter, rest=r < 0.5) or filled_with(meter, "1", False)
    if bar.long == "long":
        return whole_bar(meter, rest=True) if r < 0.6 else filled_with(meter, "breve", r < 0.75)
    if r < 0.5:
        return whole_bar(meter, rest=True)  # a maxima rest
    return filled_with(meter, "long", True) if r < 0.75 else filled_with(meter, "breve", False)


def _copy(ev: Ev) -> Ev:
    twin = Ev(ev.onset, ev.ticks, ev.dur, ev.dots, ev.rest, ev.tuplet)
    twin.beam = ev.beam
    return twin


def _clef_target(rng: random.Random, staff: Staff, clef: _Clef, rate: float) -> tuple[str, int] | None:
    if len(staff.layers) != 1 or len(staff.instrument.clefs) < 2:
        return None
    if clef.clef != staff.clef:
        return staff.clef if rng.random() < 0.35 else None  # back home after a few bars
    return rng.choice(staff.instrument.clefs[1:]) if rng.random() < rate else None


def _pitch(rng: random.Random, bar: Bar, staff: Staff, layer: Layer, voice: _Voice, clef: _Clef,
           target: tuple[str, int] | None, events: list[Ev], rates: Mapping[str, float], tie_from: Ev | None) -> str:
    """Pitches for the bar, with a tie from the bar before and a clef change when they come; returns the
    clef change to write at the bar's end ('' when none or when it comes mid-bar)."""
    if tie_from is not None:
        events[0].tie_in = True
    split, tail = len(events), ""
    if target is not None:
        starts, onset = set(), 0
        for length in bar.meter.groups:
            starts.add(onset)
            onset += length
        places = [k for k in range(1, len(events)) if events[k].onset in starts and not events[k].tie_in
                  and events[k].starts_wrappers(events[k - 1])]
        xml = staff.clef_xml(target, change=target != staff.clef)
        if places and rng.random() < 0.5:
            split = rng.choice(places)
            events[split].pre.append(("clef", xml))
        else:
            tail = xml
    if layer.role != "accomp" and rng.random() < rates["ties"] / 2:
        inside = ctl.tie_inside(rng, events[:split])
        if inside is not None:
            events[inside].tie_in = True
    key = _NO_KEY if staff.clef == PERC else bar.key
    family = staff.instrument.family
    # Keyboards and guitars add up to two notes below the line; strings a double stop, more rarely.
    chords = {"keys": (2, rates["chords"]), "guitar": (2, rates["chords"]),
              "strings": (1, rates["chords"] / 3)}.get(family, (0, 0.0))
    for k, part in enumerate((events[:split], events[split:])):
        if not part:
            continue
        if k == 1:
            voice.line.set_window(*_window_of(staff, layer, target))
        if layer.role == "accomp":
            accompany(rng, part, voice.line, key, bar.harmony, bar.meter, rates)
        else:
            carry = tie_from.pitches if tie_from is not None and k == 0 else None
            assign(rng, part, voice.line, key, bar.harmony, bar.meter, rates, chords, carry)
    if target is not None:
        clef.clef, clef.shift = target, staff.shift if target == staff.clef else 0
        if tail:
            voice.line.set_window(*_window_of(staff, layer, target))
    return tail


def _window_of(staff: Staff, layer: Layer, target: tuple[str, int]) -> tuple[int, int]:
    if target == staff.clef:
        return layer.low, layer.high
    return window(target, 0, layer.role)


def _controls(rng: random.Random, bar: Bar, staff: Staff, staves: list[Staff], index: int, voice: _Voice,
              events: list[Ev], rates: Mapping[str, float], controls: list[str]) -> None:
    """The control events of one voice's bar; spanners that end in the next bar wait in ``voice``."""
    n, meter, role = staff.n, bar.meter, staff.layers[index].role
    controls.extend(ctl.tie(n, events[i - 1], events[i].id) for i in range(1, len(events)) if events[i].tie_in)
    if index == 0:
        controls.extend(ctl.dynamics(rng, events, meter, n, rates["dynamics"], bar.n == 1))
    for device, make in (("hairpins", ctl.hairpin), ("slurs", ctl.slur)):
        if role != "perc" or device == "hairpins":
            if rng.random() < rates[device]:
                _add(make(rng, events, n), voice, controls, bar.final)
    # Ottavas keep the outer lines of instruments on the staff; choirs and inner voices never get one.
    ottava_ok = role in ("melody", "bass", "accomp") and staff.instrument.family != "voice"
    if index == 0 and ottava_ok and rng.random() < rates["ottava"]:
        _add(ctl.ottava(rng, events, n, staff.clef[0]), voice, controls, bar.final)
    if bar.fermata:
        controls.append(ctl.fermata(events, n, _fermata_place(rng, staff, staves, index)))
    if bar.caesura and index == 0:
        controls.append(ctl.caesura(events, meter, n))
    if staff.instrument.family in ("wind", "voice", "strings") and rng.random() < rates["breath"]:
        _add(ctl.breath(rng, events, meter, n), voice, controls, bar.final)
    if bar.pedal and staff.instrument.family == "keys" and staff.n == 2:
        controls.extend(ctl.pedal(events, meter, n))
    last = events[-1]
    if not bar.final and role != "accomp" and not last.rest and rng.random() < rates["ties"] / 2:
        voice.tie_from = last
        voice.pending.append(ctl.tie(n, last, "{end}"))
    voice.target = controls


def _add(element: str | None, voice: _Voice, controls: list[str], final: bool) -> None:
    if element is None or ("{end}" in element and final):
        return
    (voice.pending if "{end}" in element else controls).append(element)


def _fermata_place(rng: random.Random, staff: Staff, staves: list[Staff], index: int) -> str:
    lowest = len(staves) > 1 and staff is staves[-1]
    return "below" if index > 0 or (lowest and rng.random() < 0.5) else "above"


def _change(bar: Bar) -> str:
    if not (bar.new_meter or bar.new_key):
        return ""
    meter = f" {bar.meter.attrs()}" if bar.new_meter else ""
    key = f'<keySig sig="{bar.key.sig}"/>' if bar.new_key else ""
    return f"<scoreDef{meter}>{key}</scoreDef>" if key else f"<scoreDef{meter}/>"


def _measure_open(bar: Bar) -> str:
    left = f' left="{bar.left}"' if bar.left else ""
    right = f' right="{bar.right}"' if bar.right else ""
    return f'<measure n="{bar.n}"{left}{right}>'


def _header(rng: random.Random, seed: int, key: Key) -> str:
    tonic = key.tonic
    name = PITCH_NAMES[tonic].upper() + {-1: "♭", 1: "♯"}.get(key.alters[tonic], "")
    title = f"{rng.choice(_FORMS)} No. {rng.randint(1, 24)} in {name} {'minor' if key.minor else 'major'}"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<mei xmlns="{MEI_NS}" meiversion="5.0">'
            f"<meiHead><fileDesc><titleStmt><title>{title}</title></titleStmt><pubStmt><unpub>"
            f"Composed by deepscores.compose, seed {seed}</unpub></pubStmt></fileDesc></meiHead>\n"
            "<music><body><mdiv><score>")


def _score_def(staves: list[Staff], symbol: str, first: Bar) -> str:
    defs = []
    grand = symbol == "brace" and staves[0].instrument.family == "keys"
    for staff in staves:
        label = "" if grand or not staff.instrument.abbr else (
            f"<label>{staff.instrument.name}</label><labelAbbr>{staff.instrument.abbr}</labelAbbr>")
        key = "0" if staff.clef == PERC else first.key.sig
        defs.append(f'<staffDef n="{staff.n}" lines="5">{label}{staff.clef_xml()}'
                    f'<keySig sig="{key}"/></staffDef>')
    group = f' symbol="{symbol}" bar.thru="{"true" if symbol == "brace" else "false"}"' if symbol else ""
    label = f"<label>{staves[0].instrument.name}</label>" if grand else ""
    inner = "".join(defs)
    if symbol == "brace" and len(staves) > 2:  # a grand staff or choir pair, with a drum staff added below
        inner = f"<staffGrp{group}>{label}{''.join(defs[:2])}</staffGrp>{defs[2]}"
        group, label = ' symbol="bracket" bar.thru="false"', ""
    return f"<scoreDef {first.meter.attrs()}><staffGrp{group}>{label}{inner}</staffGrp></scoreDef>\n"
