"""Write the class gallery (src/deepscores/data/gallery/): one minimal MEI score per class of each
vocabulary, and index.csv (vocabulary, class, file, count, target) that tests/test_gallery.py reads.

    python scripts/make_gallery.py

Each score is one or two measures in 4/4 (unless the class needs another meter), mostly plain
quarter notes, so the page's usual notehead size is the normal one, plus the one device that draws
the class. ``count`` is how many instances of the class the page holds in every font; ``target`` is
the xml:id of the MEI element that draws it (its SVG group holds the symbol), or empty where
Verovio gives the drawn group an id of its own (brace, key signatures, barlines, staves).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "deepscores" / "data" / "gallery"

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<mei xmlns="http://www.music-encoding.org/ns/mei" meiversion="5.0">'
        '<meiHead><fileDesc><titleStmt><title/></titleStmt><pubStmt/></fileDesc></meiHead>'
        '<music><body><mdiv><score>')
TAIL = "</score></mdiv></body></music></mei>\n"
Q = '<note pname="g" oct="4" dur="4"/>'  # a filler quarter (stem up, in space: G4 is on a line)


def mei(layer: str, controls: str = "", *, meter: str = 'meter.count="4" meter.unit="4"',
        clef: str = '<clef shape="G" line="2"/>', key: str = "", second: str = "", measure_attrs: str = "",
        more: str = "", staff_grp: str = "", staff2: str | None = None) -> str:
    staffs = f'<staffDef n="1" lines="5" {meter}>{clef}{key}</staffDef>'
    if staff2 is not None:
        staffs += f'<staffDef n="2" lines="5" {meter}><clef shape="F" line="4"/></staffDef>'
    body = f'<staff n="1"><layer n="1">{layer}</layer></staff>'
    if staff2 is not None:
        body += f'<staff n="2"><layer n="1">{staff2}</layer></staff>'
    measures = f'<measure n="1" {measure_attrs}>{body}{controls}</measure>'
    if second:
        measures += f'<measure n="2">{second}</measure>'
    return (HEAD + f'<scoreDef><staffGrp {staff_grp}>{staffs}</staffGrp></scoreDef>'
            + f"<section>{measures}{more}</section>" + TAIL)


def note(pname="g", oct=4, dur="4", extra="", body="", target=True) -> str:
    ident = ' xml:id="target"' if target else ""
    return f'<note{ident} pname="{pname}" oct="{oct}" dur="{dur}" {extra}>{body}</note>'


def with_quarters(first: str, beats_left: int = 3) -> str:
    return first + Q * beats_left


# -- the entries: class -> (mei text, count, target id or '') -------------------------------------
def v1_entries() -> dict[str, tuple[str, int, str]]:
    e: dict[str, tuple[str, int, str]] = {}
    e["brace"] = (mei(Q * 4, staff_grp='symbol="brace" bar.thru="true"', staff2='<mRest/>'), 1, "")
    e["repeatDot"] = (mei(Q * 4, measure_attrs='right="rptend"'), 2, "")
    e["segno"] = (mei(Q * 4, '<repeatMark xml:id="target" staff="1" tstamp="1" func="segno"/>'), 1, "target")
    e["coda"] = (mei(Q * 4, '<repeatMark xml:id="target" staff="1" tstamp="1" func="coda"/>'), 1, "target")
    e["gClef"] = (mei(Q * 4, clef='<clef shape="G" line="2"/>'), 1, "")
    e["cClefAlto"] = (mei(Q * 4, clef='<clef shape="C" line="3"/>'), 1, "")
    e["cClefTenor"] = (mei(Q * 4, clef='<clef shape="C" line="4"/>'), 1, "")
    e["fClef"] = (mei(Q * 4, clef='<clef shape="F" line="4"/>'), 1, "")
    e["unpitchedPercussionClef1"] = (mei(Q * 4, clef='<clef shape="perc"/>'), 1, "")
    e["gClefChange"] = (mei(Q * 2 + '<clef xml:id="target" shape="G" line="2"/>' + Q * 2,
                            clef='<clef shape="F" line="4"/>'), 1, "target")
    e["cClefAltoChange"] = (mei(Q * 2 + '<clef xml:id="target" shape="C" line="3"/>' + Q * 2), 1, "target")
    e["cClefTenorChange"] = (mei(Q * 2 + '<clef xml:id="target" shape="C" line="4"/>' + Q * 2), 1, "target")
    e["fClefChange"] = (mei(Q * 2 + '<clef xml:id="target" shape="F" line="4"/>' + Q * 2), 1, "target")
    e["clef8"] = (mei(Q * 4, clef='<clef shape="G" line="2" dis="8" dis.place="below"/>'), 1, "")
    e["clef15"] = (mei(Q * 4, clef='<clef shape="G" line="2" dis="15" dis.place="below"/>'), 1, "")
    meters = {"timeSig0": ("10", "8", 1), "timeSig1": ("1", "4", 1), "timeSig2": ("2", "4", 1),
              "timeSig3": ("3", "4", 1), "timeSig4": ("4", "4", 2), "timeSig5": ("5", "4", 1),
              "timeSig6": ("6", "8", 1), "timeSig7": ("7", "8", 1), "timeSig8": ("3", "8", 1),
              "timeSig9": ("9", "8", 1), "timeSig12": ("12", "8", 1), "timeSig16": ("16", "16", 2)}
    for name, (count, unit, n) in meters.items():
        e[name] = (mei(Q * 4, meter=f'meter.count="{count}" meter.unit="{unit}"'), n, "")
    e["timeSigCommon"] = (mei(Q * 4, meter='meter.count="4" meter.unit="4" meter.sym="common"'), 1, "")
    e["timeSigCutCommon"] = (mei(Q * 4, meter='meter.count="2" meter.unit="2" meter.sym="cut"'), 1, "")
    e["noteheadBlack"] = (mei(Q * 3 + note()), 4, "")
    e["noteheadBlackSmall"] = (mei(with_quarters(note(extra='cue="true"'))), 1, "target")
    e["noteheadHalf"] = (mei(Q * 2 + note(dur="2")), 1, "target")
    e["noteheadHalfSmall"] = (mei(Q * 2 + note(dur="2", extra='cue="true"')), 1, "target")
    e["noteheadWhole"] = (mei(note(dur="1"), second=f'<staff n="1"><layer n="1">{Q * 4}</layer></staff>'), 1, "target")
    e["noteheadWholeSmall"] = (mei(note(dur="1", extra='cue="true"'),
                                   second=f'<staff n="1"><layer n="1">{Q * 4}</layer></staff>'), 1, "target")
    e["noteheadDoubleWhole"] = (mei(note(dur="breve"), meter='meter.count="4" meter.unit="2"',
                                    second=f'<staff n="1"><layer n="1">{Q * 8}</layer></staff>'), 1, "target")
    e["noteheadDoubleWholeSmall"] = (mei(note(dur="breve", extra='cue="true"'), meter='meter.count="4" meter.unit="2"',
                                         second=f'<staff n="1"><layer n="1">{Q * 8}</layer></staff>'), 1, "target")
    e["augmentationDot"] = (mei(Q + note(dur="2", extra='dots="1"')), 1, "target")
    flags = {"8th": ("8", 2), "16th": ("16", 4), "32nd": ("32", 8), "64th": ("64", 16), "128th": ("128", 32)}
    rests = {"8th": "8", "16th": "16", "32nd": "32", "64th": "64", "128th": "128"}
    for value, (dur, per_beat) in flags.items():
        fill = '<rest dur="%s"/>' % dur * (per_beat - 1)
        e[f"flag{value}Up"] = (mei(Q * 3 + note(dur=dur) + fill), 1, "target")
        e[f"flag{value}Down"] = (mei(Q * 3 + note(pname="c", oct=5 + 1, dur=dur) + fill), 1, "target")
    e["flag8thUpSmall"] = (mei(Q * 3 + note(dur="8", extra='cue="true"') + '<rest dur="8"/>'), 1, "target")
    e["flag8thDownSmall"] = (mei(Q * 3 + note(pname="c", oct=6, dur="8", extra='cue="true"') + '<rest dur="8"/>'), 1, "target")
    for name, accid in {"Flat": "f", "Natural": "n", "Sharp": "s"}.items():
        e[f"accidental{name}"] = (mei(with_quarters(note(extra=f'accid="{accid}"'))), 1, "target")
        e[f"accidental{name}Small"] = (mei(with_quarters(note(extra=f'accid="{accid}" cue="true"'))), 1, "target")
    e["accidentalDoubleSharp"] = (mei(with_quarters(note(extra='accid="x"'))), 1, "target")
    e["accidentalDoubleFlat"] = (mei(with_quarters(note(extra='accid="ff"'))), 1, "target")
    e["keyFlat"] = (mei(Q * 4, key='<keySig sig="1f"/>'), 1, "")
    e["keySharp"] = (mei(Q * 4, key='<keySig sig="1s"/>'), 1, "")
    e["keyNatural"] = (mei(Q * 4, key='<keySig sig="1s"/>',
                           more=f'<scoreDef keysig="0"/><measure n="3"><staff n="1"><layer n="1">{Q * 4}</layer></staff></measure>'), 1, "")
    artics = {"Accent": "acc", "Staccato": "stacc", "Tenuto": "ten", "Staccatissimo": "stacciss", "Marcato": "marc"}
    for name, artic in artics.items():
        for place in ("above", "below"):
            e[f"artic{name}{place.title()}"] = (mei(with_quarters(note(pname="b", body=f'<artic artic="{artic}" place="{place}"/>'))), 1, "target")
    for place in ("above", "below"):
        e[f"fermata{place.title()}"] = (mei(Q * 3 + note(target=False, extra='xml:id="n4"'),
                                            f'<fermata xml:id="target" staff="1" startid="#n4" place="{place}"/>'), 1, "target")
    e["caesura"] = (mei(Q * 4, '<caesura xml:id="target" staff="1" tstamp="4.5"/>'), 1, "target")
    free = 'meter.count="4" meter.unit="4" meter.form="invis"'
    e["restMaxima"] = (mei('<rest xml:id="target" dur="maxima"/>', meter=free), 1, "target")
    e["restLonga"] = (mei('<rest xml:id="target" dur="long"/>', meter=free), 1, "target")
    e["restDoubleWhole"] = (mei('<rest xml:id="target" dur="breve"/>', meter='meter.count="4" meter.unit="2"'), 1, "target")
    e["restWhole"] = (mei('<rest xml:id="target" dur="1"/>'), 1, "target")
    e["restHalf"] = (mei(Q * 2 + '<rest xml:id="target" dur="2"/>'), 1, "target")
    e["restQuarter"] = (mei(Q * 3 + '<rest xml:id="target" dur="4"/>'), 1, "target")
    for value, dur in rests.items():
        per_beat = int(dur) // 4
        e[f"rest{value}"] = (mei(Q * 3 + f'<rest xml:id="target" dur="{dur}"/>' + Q.replace('dur="4"', f'dur="{dur}"') * (per_beat - 1)), 1, "target")
    # Verovio draws short multi-measure rests (up to 4 bars) as church rests: 12 bars give the H-bar.
    e["restHBar"] = (mei('<multiRest xml:id="target" num="12"/>'), 1, "target")
    dynamics = {"dynamicPiano": "p", "dynamicMezzo": "m", "dynamicForte": "f", "dynamicPPPPP": "ppppp",
                "dynamicPPPP": "pppp", "dynamicPPP": "ppp", "dynamicPP": "pp", "dynamicMP": "mp", "dynamicMF": "mf",
                "dynamicFF": "ff", "dynamicFFF": "fff", "dynamicFFFF": "ffff", "dynamicFFFFF": "fffff",
                "dynamicFortePiano": "fp", "dynamicSforzando1": "sf", "dynamicSforzato": "sfz", "dynamicRinforzando2": "rfz"}
    for name, text in dynamics.items():
        e[name] = (mei(Q * 4, f'<dynam xml:id="target" staff="1" tstamp="1">{text}</dynam>'), 1, "target")
    graces = {"graceNoteAcciaccaturaStemUp": ("unacc", "up"), "graceNoteAppoggiaturaStemUp": ("acc", "up"),
              "graceNoteAcciaccaturaStemDown": ("unacc", "down"), "graceNoteAppoggiaturaStemDown": ("acc", "down")}
    for name, (grace, stem) in graces.items():
        e[name] = (mei(note(pname="d", oct=5, dur="8", extra=f'grace="{grace}" stem.dir="{stem}"') + Q * 4), 1, "target")
    ornaments = {"ornamentTrill": '<trill xml:id="target" staff="1" startid="#n1"/>',
                 "ornamentTurn": '<turn xml:id="target" staff="1" startid="#n1" form="upper"/>',
                 "ornamentTurnInverted": '<turn xml:id="target" staff="1" startid="#n1" form="lower"/>',
                 "ornamentMordent": '<mordent xml:id="target" staff="1" startid="#n1" form="lower"/>'}
    for name, control in ornaments.items():
        e[name] = (mei(note(target=False, extra='xml:id="n1"') + Q * 3, control), 1, "target")
    e["stringsDownBow"] = (mei(with_quarters(note(pname="b", body='<artic artic="dnbow"/>'))), 1, "target")
    e["stringsUpBow"] = (mei(with_quarters(note(pname="b", body='<artic artic="upbow"/>'))), 1, "target")
    chord = '<chord xml:id="c1" dur="4"><note pname="e" oct="4"/><note pname="g" oct="4"/><note pname="c" oct="5"/></chord>'
    e["arpeggiato"] = (mei(chord + Q * 3, '<arpeg xml:id="target" staff="1" plist="#c1"/>'), 1, "target")
    e["keyboardPedalPed"] = (mei(Q * 4, '<pedal xml:id="target" staff="1" tstamp="1" dir="down"/>'), 1, "target")
    e["keyboardPedalUp"] = (mei(Q * 4, '<pedal staff="1" tstamp="1" dir="down"/><pedal xml:id="target" staff="1" tstamp="4" dir="up"/>'), 1, "target")
    eighths = '<note pname="g" oct="4" dur="8"/>' * 3
    e["tuplet3"] = (mei(f'<tuplet xml:id="target" num="3" numbase="2"><beam>{eighths}</beam></tuplet>' + Q * 3), 1, "target")
    sixteenths = '<note pname="g" oct="4" dur="16"/>' * 6
    e["tuplet6"] = (mei(f'<tuplet xml:id="target" num="6" numbase="4"><beam>{sixteenths}</beam></tuplet>' + Q * 3), 1, "target")
    for digit in range(6):
        e[f"fingering{digit}"] = (mei(note(target=False, extra='xml:id="n1"') + Q * 3,
                                      f'<fing xml:id="target" staff="1" startid="#n1">{digit}</fing>'), 1, "target")
    return e


def v2_only_entries() -> dict[str, tuple[str, int, str]]:
    """Files for the classes of the DeepScoresV2 vocabulary that no v1 file shows (file name v2-<class>)."""
    e: dict[str, tuple[str, int, str]] = {}
    a4 = dict(pname="a", oct=4)
    e["legerLine"] = (mei(with_quarters(note(pname="c", oct=4))), 1, "")
    e["noteheadBlackInSpace"] = (mei(with_quarters(note(**a4))), 1, "target")
    e["noteheadBlackInSpaceSmall"] = (mei(with_quarters(note(**a4, extra='cue="true"'))), 1, "target")
    e["noteheadHalfInSpace"] = (mei(Q * 2 + note(**a4, dur="2")), 1, "target")
    e["noteheadHalfInSpaceSmall"] = (mei(Q * 2 + note(**a4, dur="2", extra='cue="true"')), 1, "target")
    rest_bar = f'<staff n="1"><layer n="1">{Q * 4}</layer></staff>'
    e["noteheadWholeInSpace"] = (mei(note(**a4, dur="1"), second=rest_bar), 1, "target")
    e["noteheadWholeInSpaceSmall"] = (mei(note(**a4, dur="1", extra='cue="true"'), second=rest_bar), 1, "target")
    breve_bar = f'<staff n="1"><layer n="1">{Q * 8}</layer></staff>'
    e["noteheadDoubleWholeInSpace"] = (mei(note(**a4, dur="breve"), meter='meter.count="4" meter.unit="2"',
                                           second=breve_bar), 1, "target")
    e["noteheadDoubleWholeInSpaceSmall"] = (mei(note(**a4, dur="breve", extra='cue="true"'),
                                                meter='meter.count="4" meter.unit="2"', second=breve_bar), 1, "target")
    for slashes, unit in enumerate(("8", "16", "32", "64", "128"), start=1):
        e[f"tremolo{slashes}"] = (mei(f'<bTrem xml:id="target" unitdur="{unit}">{note(target=False)}</bTrem>' + Q * 3), 1, "target")
    first, last = note(target=False, extra='xml:id="n1"'), note(target=False, pname="c", oct=5, extra='xml:id="n2"')
    e["slur"] = (mei(first + last + Q * 2, '<slur xml:id="target" staff="1" startid="#n1" endid="#n2"/>'), 1, "target")
    e["tie"] = (mei(first + note(target=False, extra='xml:id="n2"') + Q * 2,
                    '<tie xml:id="target" staff="1" startid="#n1" endid="#n2"/>'), 1, "target")
    e["beam"] = (mei('<beam xml:id="target"><note pname="g" oct="4" dur="8"/><note pname="b" oct="4" dur="8"/></beam>' + Q * 3), 1, "target")
    e["dynamicCrescendoHairpin"] = (mei(Q * 4, '<hairpin xml:id="target" staff="1" tstamp="1" tstamp2="0m+4" form="cres"/>'), 1, "target")
    e["dynamicDiminuendoHairpin"] = (mei(Q * 4, '<hairpin xml:id="target" staff="1" tstamp="1" tstamp2="0m+4" form="dim"/>'), 1, "target")
    tuplets = {"tuplet1": ("10", "8", "32"), "tuplet2": ("2", "3", "8"), "tuplet4": ("4", "3", "8"),
               "tuplet5": ("5", "4", "16"), "tuplet7": ("7", "4", "16"), "tuplet8": ("8", "6", "16"),
               "tuplet9": ("9", "8", "32")}
    for name, (num, numbase, dur) in tuplets.items():
        notes = f'<note pname="g" oct="4" dur="{dur}"/>' * int(num)
        e[name] = (mei(f'<tuplet xml:id="target" num="{num}" numbase="{numbase}"><beam>{notes}</beam></tuplet>' + Q * 3,
                       meter='meter.count="4" meter.unit="4" meter.form="invis"'), 1, "target")
    quarters = Q * 3
    e["tupletBracket"] = (mei(f'<tuplet xml:id="target" num="3" numbase="2" bracket.visible="true">{quarters}</tuplet>' + Q * 2), 1, "target")
    e["ottavaBracket"] = (mei(first + Q * 2 + last, '<octave xml:id="target" staff="1" startid="#n1" endid="#n2" dis="8" dis.place="above"/>'), 1, "target")
    e["staff"] = (mei(Q * 4), 1, "")
    e["barline"] = (mei(Q * 4, second=f'<staff n="1"><layer n="1">{Q * 4}</layer></staff>'), 2, "")
    return e


#: v2 classes shown by a v1 file: v2 name -> (v1 file's class, count, whether the v1 target holds it).
def v2_from_v1() -> dict[str, tuple[str, int, bool]]:
    same = ["brace", "repeatDot", "segno", "coda", "clef8", "clef15", "augmentationDot", "caesura",
            "restDoubleWhole", "restWhole", "restHalf", "restQuarter", "rest8th", "rest16th", "rest32nd",
            "rest64th", "rest128th", "restHBar", "keyFlat", "keyNatural", "keySharp", "ornamentTrill",
            "ornamentTurn", "ornamentTurnInverted", "ornamentMordent", "stringsDownBow", "stringsUpBow",
            "arpeggiato", "keyboardPedalPed", "keyboardPedalUp", "tuplet3", "tuplet6", "timeSigCommon",
            "timeSigCutCommon", "fermataAbove", "fermataBelow"]
    same += [f"timeSig{d}" for d in range(10)] + [f"fingering{d}" for d in range(6)]
    same += [n for n in v1_names() if n.startswith(("flag", "accidental", "artic", "graceNote"))]
    table: dict[str, tuple[str, int, bool]] = {name: (name, None, True) for name in same}
    table.update({
        "clefG": ("gClef", 1, True), "clefCAlto": ("cClefAlto", 1, True), "clefCTenor": ("cClefTenor", 1, True),
        "clefF": ("fClef", 1, True), "clefUnpitchedPercussion": ("unpitchedPercussionClef1", 1, True),
        "noteheadBlackOnLine": ("noteheadBlack", 4, False), "noteheadBlackOnLineSmall": ("noteheadBlackSmall", 1, True),
        "noteheadHalfOnLine": ("noteheadHalf", 1, True), "noteheadHalfOnLineSmall": ("noteheadHalfSmall", 1, True),
        "noteheadWholeOnLine": ("noteheadWhole", 1, True), "noteheadWholeOnLineSmall": ("noteheadWholeSmall", 1, True),
        "noteheadDoubleWholeOnLine": ("noteheadDoubleWhole", 1, True),
        "noteheadDoubleWholeOnLineSmall": ("noteheadDoubleWholeSmall", 1, True),
        "stem": ("noteheadBlack", 4, False), "restHNr": ("restHBar", 1, False),
        "dynamicP": ("dynamicPiano", 1, True), "dynamicM": ("dynamicMezzo", 1, True), "dynamicF": ("dynamicForte", 1, True),
        "dynamicS": ("dynamicSforzando1", 1, True), "dynamicZ": ("dynamicSforzato", 1, True),
        "dynamicR": ("dynamicRinforzando2", 1, True),
    })
    return table


def v1_names() -> list[str]:
    return list(v1_entries())


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    v1 = v1_entries()
    for name, (text, count, target) in v1.items():
        (OUT / f"{name}.mei").write_text(text, encoding="utf-8")
        rows.append(("deepscores", name, f"{name}.mei", count, target))
    for name, (source, count, in_target) in v2_from_v1().items():
        count = v1[source][1] if count is None else count
        rows.append(("deepscoresv2", name, f"{source}.mei", count, v1[source][2] if in_target else ""))
    for name, (text, count, target) in v2_only_entries().items():
        (OUT / f"v2-{name}.mei").write_text(text, encoding="utf-8")
        rows.append(("deepscoresv2", name, f"v2-{name}.mei", count, target))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["vocabulary", "class", "file", "count", "target"])
    writer.writerows(sorted(rows))
    (OUT / "index.csv").write_text(buffer.getvalue(), encoding="utf-8")
    print(f"{len(rows)} rows, {len(v1) + len(v2_only_entries())} scores in {OUT}")


if __name__ == "__main__":
    main()
