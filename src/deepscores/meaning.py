"""Musical meaning attached to symbols: onsets (in quarter notes) from Verovio's timemap.

Verovio knows when every note, rest and measure starts only while the score is loaded, so
`engrave` reads the table once per score, right after layout (`timing_table`), and every page
carries it (`EngravedPage.onsets`). `annotate` then gives each symbol the onset of its nearest
timed ancestor in the SVG (`onset_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The timemap lists sounding notes under 'on', rests (mRest included) under 'restsOn' and the
# first event of each measure under 'measureOn'.
_ON_KEYS = ("on", "restsOn", "measureOn")


def timing_table(toolkit: Any) -> dict[str, float]:
    """Element id → onset in quarter notes from the start of the score, for a loaded toolkit.

    One ``renderToTimemap`` call: its ``qstamp`` is exactly "quarter notes since the start".
    EngraveOptions sets ``expandNever``, so repeats are not played: each element appears once, at
    its written position, as music21's offsets count it (with repeats played, every measure after a
    ``:|`` came a whole section late). Should an id still recur, its first (earliest) onset is kept.
    An incomplete first measure (anacrusis) lasts what it holds, so the first downbeat has the onset
    of the pickup's length, as in music21.
    """
    table: dict[str, float] = {}
    for entry in toolkit.renderToTimemap({"includeRests": True, "includeMeasures": True}):
        qstamp = float(entry.get("qstamp", 0.0))
        for key in _ON_KEYS:
            ids = entry.get(key, ())
            for element_id in (ids,) if isinstance(ids, str) else ids:
                table.setdefault(element_id, qstamp)
    return table


def onset_of(timing_ids: Sequence[str], onsets: Mapping[str, float],
             members: Mapping[str, Sequence[str]]) -> float | None:
    """The onset of the nearest timed ancestor: an event's own, a container's earliest member's.

    ``timing_ids`` is nearest first (a stem: its note, its chord, its beam, its measure). A
    container (chord, beam, tuplet) has no timemap entry; the earliest note or rest inside it
    starts it. Symbols outside any measure (titles, page text) have no onset.
    """
    for element_id in timing_ids:
        onset = onsets.get(element_id)
        if onset is not None:
            return onset
        inside = [onsets[m] for m in members.get(element_id, ()) if m in onsets]
        if inside:
            return min(inside)
    return None
