"""Tests for deepscores.compose: determinism, bars that add up (our count and music21's), engraving
without complaints, every device reachable from its rate, its classes on the labelled page, options."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from fractions import Fraction
from pathlib import Path

import music21
import pytest
import typer
import verovio
from typer.testing import CliRunner

from deepscores.annotate import score_pages
from deepscores.classes import load_catalogue
from deepscores.cli_compose import compose
from deepscores.compose import DEFAULT_RATES, DEVICES, LAYOUTS, ComposeOptions, compose_mei, rates_for_classes, write_scores
from deepscores.compose.devices import FREQUENT_RATES
from deepscores.corpus import load_score
from deepscores.engrave import EngraveOptions, _route_log_to_buffer, engrave
from deepscores.errors import OptionsError

NS = "{http://www.music-encoding.org/ns/mei}"
FREQUENT = tuple(FREQUENT_RATES.items())
_QUARTERS = {"maxima": 32, "long": 16, "breve": 8, "1": 4, "2": 2, "4": 1, "8": Fraction(1, 2), "16": Fraction(1, 4),
             "32": Fraction(1, 8), "64": Fraction(1, 16), "128": Fraction(1, 32)}


def _length(element: ET.Element, scale: Fraction) -> Fraction:
    """Sounding length in quarters of a layer's child, tuplets scaled, grace notes free."""
    tag = element.tag[len(NS):]
    if tag in ("note", "rest", "chord"):
        if element.get("grace"):
            return Fraction(0)
        dots = int(element.get("dots", 0))
        return Fraction(_QUARTERS[element.get("dur")]) * (2 - Fraction(1, 2 ** dots)) * scale
    if tag == "tuplet":
        scale = scale * Fraction(int(element.get("numbase")), int(element.get("num")))
    if tag in ("tuplet", "beam", "bTrem"):
        return sum((_length(child, scale) for child in element), Fraction(0))
    return Fraction(0)


def bar_lengths(text: str) -> list[tuple[str, str, str, Fraction, Fraction]]:
    """(measure, staff, layer, notes' sum, bar length) for every layer of the score, in quarters; bars of
    <mRest>/<multiRest> count as full."""
    meter = None
    out = []
    for element in ET.fromstring(text).iter():
        tag = element.tag[len(NS):]
        if tag == "scoreDef" and element.get("meter.count"):
            meter = Fraction(4 * int(element.get("meter.count")), int(element.get("meter.unit")))
        elif tag == "measure":
            for staff in element.iter(NS + "staff"):
                for layer in staff.iter(NS + "layer"):
                    kids = list(layer)
                    full = kids and kids[0].tag in (NS + "mRest", NS + "multiRest")
                    total = meter if full else sum((_length(k, Fraction(1)) for k in kids), Fraction(0))
                    out.append((element.get("n"), staff.get("n"), layer.get("n"), total, meter))
    return out


def classes_of(tmp_path: Path, text: str, name: str = "score.mei") -> Counter:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return Counter(s.class_name for page in score_pages(path, EngraveOptions(font="Leipzig")) for s in page.symbols)


# -- determinism -----------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_seeds_differ() -> None:
    options = ComposeOptions(layout="mixed", measures=12, rates=(("dynamics", 0.3),))
    first = compose_mei(7, options)
    assert compose_mei(7, options) == first
    assert first.startswith('<?xml version="1.0" encoding="UTF-8"?>\n'
                            '<mei xmlns="http://www.music-encoding.org/ns/mei" meiversion="5.0"><meiHead>')
    assert len({compose_mei(seed, options) for seed in range(6)}) == 6


def test_write_scores_names_files_and_is_reproducible(tmp_path: Path) -> None:
    calls = []
    paths = write_scores(tmp_path / "a", 3, seed=5, options=ComposeOptions(measures=4),
                         on_progress=lambda done, count: calls.append((done, count)))
    assert [p.name for p in paths] == ["synthetic-5-00000.mei", "synthetic-5-00001.mei", "synthetic-5-00002.mei"]
    assert calls == [(1, 3), (2, 3), (3, 3)]
    again = write_scores(tmp_path / "b", 3, seed=5, options=ComposeOptions(measures=4))
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in paths]  # no temp files left
    assert paths[0].read_bytes() != paths[1].read_bytes()


# -- bars add up -------------------------------------------------------------------------------------
@pytest.mark.parametrize("rates", [(), FREQUENT], ids=["default", "frequent"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layer_fills_its_bar(layout: str, rates: tuple) -> None:
    for seed in range(3):
        lengths = bar_lengths(compose_mei(seed, ComposeOptions(layout=layout, measures=24, rates=rates)))
        assert len({m for m, *_ in lengths}) == 24
        assert [row for row in lengths if row[3] != row[4]] == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_music21_reads_every_layout_and_its_bars_add_up(layout: str) -> None:
    # music21 9 cannot read some of what the composer writes: maxima rests, <multiRest> (it reads an
    # empty bar and loses the meter of the bars after it) and <bTrem> (unwrapped here: it adds no time).
    options = ComposeOptions(layout=layout, measures=20, rates=(("long_values", 0.0), ("multirest", 0.0),
                                                                ("tremolo", 0.1), ("triplets", 0.2)))
    for seed in range(2):
        text = compose_mei(seed, options)
        assert "<bTrem" in text or layout != "quartet"
        score = music21.converter.parse(re.sub(r"</?bTrem[^>]*>", "", text), format="mei")
        staves = len(re.findall(r"<staffDef ", text))
        assert len(score.parts) == staves
        checked = 0
        for part in score.parts:
            for measure in part.getElementsByClass("Measure"):
                bar = Fraction(measure.barDuration.quarterLength)
                for voice in list(measure.voices) or [measure]:
                    notes = [n for n in voice.notesAndRests if not n.duration.isGrace]
                    assert sum(Fraction(n.duration.quarterLength) for n in notes) == bar, (seed, part.id, measure.number)
                    checked += 1
        assert checked >= staves * 20


# -- engraving -------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_verovio_engraves_every_layout_without_complaint(tmp_path: Path, layout: str, caplog) -> None:
    caplog.set_level(logging.INFO, logger="deepscores.verovio")
    for seed in range(2):
        text = compose_mei(seed, ComposeOptions(layout=layout, measures=32))
        path = tmp_path / f"{layout}-{seed}.mei"
        path.write_text(text, encoding="utf-8")
        pages = engrave(load_score(path), EngraveOptions())
        staves = len(re.findall(r"<staffDef ", text))
        assert pages and all(page.svg.count('class="staff"') >= staves for page in pages)
    assert [r.getMessage() for r in caplog.records if r.name == "deepscores.verovio"] == []


def test_verovio_reports_no_error_at_frequent_rates() -> None:
    _route_log_to_buffer()
    toolkit = verovio.toolkit()
    toolkit.setOptions(EngraveOptions().verovio_options())
    for layout in LAYOUTS[:-1]:
        toolkit.getLog()
        assert toolkit.loadData(compose_mei(11, ComposeOptions(layout=layout, measures=16, rates=FREQUENT)))
        for page in range(1, toolkit.getPageCount() + 1):
            assert 'class="staff"' in toolkit.renderToSVG(page)
        assert [line for line in toolkit.getLog().splitlines() if "[Error]" in line] == []


# -- every device reachable ------------------------------------------------------------------------
def _unbeamed_short(text: str) -> int:
    parents = {child: parent for parent in ET.fromstring(text).iter() for child in parent}
    return sum(1 for child, parent in parents.items() if child.tag == NS + "note" and child.get("dur") in ("8", "16")
               and not child.get("grace") and parent.tag != NS + "beam" and parents.get(parent, parent).tag != NS + "beam")


def _count(pattern: str):
    return lambda text: len(re.findall(pattern, text))


_RARE = {(1, 4), (5, 4), (7, 4), (5, 8), (7, 8), (10, 8), (16, 16)}
# device: (how to count what it writes, the layout it suits, whether rate 0 leaves none of it)
SIGNATURES = {
    "accidentals": (_count(r' accid="[sfn]"'), "solo", False),  # minor keys raise their leading tone anyway
    "double_accidentals": (_count(r' accid="(?:x|ff)"'), "solo", True),
    "chords": (_count(r"<chord "), "quartet", True),
    "rests": (_count(r'<rest [^>]*dur="(?:2|4|8|16)"'), "solo", False),
    "dotted": (_count(r' dots="'), "solo", False),
    "triplets": (_count(r'<tuplet num="(?:3|2)"'), "solo", True),
    "sextuplets": (_count(r'<tuplet num="6"'), "solo", True),
    "quintuplets": (_count(r'<tuplet num="[57]"'), "solo", True),
    "short_notes": (_count(r'<note [^>]*dur="(?:32|64|128)"'), "solo", False),  # dotted rhythms have 32nds too
    "short_rests": (_count(r'<rest [^>]*dur="(?:32|64|128)"'), "solo", True),
    "flags": (_unbeamed_short, "solo", False),
    "staccato": (_count(r'artic="stacc"'), "quartet", True),
    "accent": (_count(r'artic="acc"'), "quartet", True),
    "tenuto": (_count(r'artic="ten"'), "quartet", True),
    "staccatissimo": (_count(r'artic="stacciss"'), "quartet", True),
    "marcato": (_count(r'artic="marc"'), "quartet", True),
    "bowing": (_count(r'artic="(?:dnbow|upbow)"'), "quartet", True),
    "fingering": (_count(r"<fing "), "piano", True),
    "trill": (_count(r"<trill "), "solo", True),
    "turn": (_count(r"<turn "), "solo", True),
    "mordent": (_count(r"<mordent "), "solo", True),
    "grace_notes": (_count(r' grace="'), "solo", True),
    "tremolo": (_count(r"<bTrem"), "solo", True),
    "arpeggio": (_count(r"<arpeg "), "piano", True),
    "cue_notes": (_count(r' cue="true"'), "solo", True),
    "measure_rests": (_count(r"<mRest"), "quartet", True),
    "dynamics": (_count(r"<dynam "), "solo", True),
    "hairpins": (_count(r"<hairpin "), "solo", True),
    "slurs": (_count(r"<slur "), "solo", True),
    "ties": (_count(r"<tie "), "solo", True),
    "ottava": (_count(r"<octave "), "quartet", True),
    "clef_change": (lambda t: t.count("<clef ") - t.count("<staffDef "), "quartet", True),
    "octave_clef": (_count(r'<clef [^>]*dis="(?:8|15)"'), "quartet", True),
    "percussion_clef": (_count(r'<clef shape="perc"'), "leadsheet", True),
    "fermata": (_count(r"<fermata "), "solo", True),
    "caesura": (_count(r"<caesura "), "solo", True),
    "breath": (_count(r"<breath "), "quartet", True),
    "pedal": (_count(r"<pedal "), "piano", True),
    "meter_change": (lambda t: len(re.findall(r"<scoreDef meter", t)) - 1, "solo", False),  # long bars change it too
    "rare_meter": (lambda t: sum((int(c), int(u)) in _RARE for c, u in re.findall(r'meter.count="(\d+)" meter.unit="(\d+)"', t)),
                   "solo", True),
    "meter_symbol": (_count(r"meter.sym="), "solo", True),
    "key_change": (_count(r"<scoreDef[^>]*><keySig"), "piano", True),
    "long_values": (_count(r'dur="(?:breve|long|maxima)"'), "solo", False),  # a final bar of 4/2 is a breve
    "multirest": (_count(r"<multiRest"), "solo", True),
    "repeats": (_count(r'right="rptend"'), "solo", True),
    "segno_coda": (_count(r"<repeatMark "), "solo", True),
    "chord_symbols": (_count(r"<harm "), "leadsheet", True),
}


def test_every_device_has_a_signature() -> None:
    assert set(SIGNATURES) == set(DEVICES) == set(DEFAULT_RATES)


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_every_device_is_reachable_from_its_rate(device: str) -> None:
    count, layout, exact = SIGNATURES[device]
    seeds = range(4) if device in ("percussion_clef", "rare_meter", "meter_symbol") else range(1)
    pitched = () if device == "percussion_clef" else (("percussion_clef", 0.0),)  # a snare has no pitch devices
    raised = sum(count(compose_mei(s, ComposeOptions(layout, 16, ((device, FREQUENT_RATES[device]), *pitched))))
                 for s in seeds)
    off = sum(count(compose_mei(s, ComposeOptions(layout, 16, ((device, 0.0), *pitched)))) for s in seeds)
    assert raised > off
    if exact:
        assert off == 0


def test_default_rates_leave_most_notes_plain() -> None:
    text = compose_mei(3, ComposeOptions(layout="quartet", measures=32))
    notes = len(re.findall(r"<note |<chord ", text))
    marked = len(re.findall(r"<artic ", text)) + len(re.findall(r"<(?:fing|trill|turn|mordent|dynam) ", text))
    assert notes > 300 and marked < 0.2 * notes


# -- labelled classes ------------------------------------------------------------------------------
_DYNAMICS = {n for n in load_catalogue().names if n.startswith("dynamic")}
CLASS_CASES = [
    ("dynamics", "quartet", 40, (("dynamics", 1.0),), _DYNAMICS),
    ("articulations", "quartet", 8, tuple((d, 0.2) for d in ("staccato", "accent", "tenuto", "staccatissimo", "marcato")),
     {f"artic{a}{p}" for a in ("Staccato", "Accent", "Tenuto", "Staccatissimo", "Marcato") for p in ("Above", "Below")}),
    ("short_rests", "solo", 12, (("short_rests", 0.5),), {"rest32nd", "rest64th", "rest128th"}),
    ("multirest", "solo", 12, (("multirest", 0.3),), {"restHBar"}),
    ("pedal", "piano", 6, (("pedal", 1.0),), {"keyboardPedalPed", "keyboardPedalUp"}),
    ("fingering-piano", "piano", 12, (("fingering", 0.5),), {f"fingering{i}" for i in range(1, 6)}),
    ("fingering-strings", "quartet", 6, (("fingering", 0.5),), {f"fingering{i}" for i in range(5)}),
    ("segno_coda", "solo", 16, (("segno_coda", 0.3),), {"segno", "coda"}),
    ("caesura", "solo", 8, (("caesura", 0.3),), {"caesura"}),
    ("ornaments", "solo", 32, (("turn", 0.2), ("mordent", 0.2)), {"ornamentTurn", "ornamentTurnInverted", "ornamentMordent"}),
    ("double_accidentals", "solo", 16, (("double_accidentals", 0.12),), {"accidentalDoubleSharp", "accidentalDoubleFlat"}),
    ("bowing", "quartet", 4, (("bowing", 0.5),), {"stringsDownBow", "stringsUpBow"}),
]


@pytest.mark.parametrize("case", CLASS_CASES, ids=[c[0] for c in CLASS_CASES])
def test_raised_devices_put_their_classes_on_the_page(tmp_path: Path, case: tuple) -> None:
    _, layout, measures, rates, wanted = case
    pitched = (("percussion_clef", 0.0),)  # seed 0's solo would otherwise be a snare drum
    found = classes_of(tmp_path, compose_mei(0, ComposeOptions(layout, measures, rates + pitched)))
    assert wanted - set(found) == set()
    assert wanted <= DEVICES[rates[0][0]] | {c for device, _ in rates for c in DEVICES[device]}


def test_defaults_have_none_of_the_raised_classes(tmp_path: Path) -> None:
    off = tuple((d, 0.0) for d in ("multirest", "pedal", "segno_coda", "caesura", "double_accidentals"))
    found = classes_of(tmp_path, compose_mei(0, ComposeOptions("piano", 12, off)))
    assert found["noteheadBlack"] > 50
    assert {"restHBar", "keyboardPedalPed", "segno", "coda", "caesura", "accidentalDoubleSharp"} & set(found) == set()


# -- rates for classes -----------------------------------------------------------------------------
def test_rates_for_classes_raises_the_devices_that_draw_them() -> None:
    rates = dict(rates_for_classes({"restHBar": 10, "fingering0": 5, "noteheadBlack": 100, "segno": 0}))
    # restHBar has the largest weight among drawable classes (noteheadBlack has no device): multirest
    # goes to its frequent rate, fingering (half the weight) halfway there.
    halfway = DEFAULT_RATES["fingering"] + (FREQUENT_RATES["fingering"] - DEFAULT_RATES["fingering"]) / 2
    assert rates == {"multirest": FREQUENT_RATES["multirest"], "fingering": round(halfway, 4)}
    assert rates_for_classes({}) == ()
    ComposeOptions(rates=rates_for_classes({name: 1.0 for name in load_catalogue().names})).validate()
    assert rates_for_classes({"noteheadBlackOnLine": 9.0, "restHBar": 1.0}) == (("multirest", FREQUENT_RATES["multirest"]),)
    with pytest.raises(OptionsError, match="'restHBar'"):
        rates_for_classes({"restHBar": float("nan")})


def test_every_device_class_is_a_v1_class() -> None:
    names = set(load_catalogue().names)
    assert {c for classes in DEVICES.values() for c in classes} <= names
    assert all(0 <= DEFAULT_RATES[d] < FREQUENT_RATES[d] <= 1 for d in DEVICES)


# -- options and the command -----------------------------------------------------------------------
@pytest.mark.parametrize("options, named", [
    (ComposeOptions(layout="jazz"), "'jazz'"),
    (ComposeOptions(measures=0), "measures"),
    (ComposeOptions(rates=(("dynamics", -0.1),)), "'dynamics'"),
    (ComposeOptions(rates=(("dynamics", float("nan")),)), "'dynamics'"),
    (ComposeOptions(rates=(("kazoo", 0.1),)), "'kazoo'"),
    (ComposeOptions(rates=(("slurs", 0.1), ("slurs", 0.2))), "'slurs'"),
])
def test_bad_options_raise_one_line(options: ComposeOptions, named: str) -> None:
    with pytest.raises(OptionsError) as caught:
        compose_mei(0, options)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_command_writes_scores_and_fails_cleanly(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(compose)
    runner = CliRunner()
    result = runner.invoke(app, ["--out", str(tmp_path), "--count", "2", "--seed", "3", "--layout", "piano",
                                 "--measures", "4", "--rate", "pedal=1", "--rate", "dynamics=0.5"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic-3-00000.mei", "synthetic-3-00001.mei"]
    assert "composed 2 scores" in result.output
    assert (tmp_path / "synthetic-3-00000.mei").read_text(encoding="utf-8") == compose_mei(
        300_000, ComposeOptions("piano", 4, (("pedal", 1.0), ("dynamics", 0.5))))
    for args, message in ((["--rate", "pedal"], "device=value"), (["--rate", "pedal=2"], "'pedal'"),
                          (["--layout", "jazz"], "'jazz'"), (["--measures", "0"], "measures")):
        result = runner.invoke(app, ["--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 1 and "error:" in result.output and message in " ".join(result.output.split())
        assert "Traceback" not in result.output
