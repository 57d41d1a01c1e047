"""Engrave a `Score` into SVG pages with Verovio: music font, page geometry, deterministic ids, quiet logs.

MusicXML colours pass through untouched into the SVG; the rasteriser ignores colour, so we don't strip them.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import verovio

from deepscores.corpus import Score
from deepscores.errors import FontError, OptionsError, ScoreError
from deepscores.meaning import timing_table

FONTS: tuple[str, ...] = ("Leipzig", "Bravura", "Gootville", "Leland", "Petaluma")
DEEPSCORES_PAGE_WIDTH_PX = 1894  # the published DeepScores page width: A4 -> 1894 x 2679 px

# Verovio's own option ranges (tk.getAvailableOptions()); outside them it clamps silently.
_UNIT_RANGE = (4.5, 12.0)
_PAGE_WIDTH_MM_RANGE = (10.0, 10000.0)  # pageWidth 100..100000 tenths of a mm
_PAGE_HEIGHT_MM_RANGE = (10.0, 6000.0)  # pageHeight 100..60000 tenths of a mm
# Any fixed non-zero seed works; 0 would mean "seed from the clock".
_XML_ID_SEED = 1

log = logging.getLogger("deepscores.verovio")
_LEVELS = {"error": logging.WARNING, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}


@dataclass(frozen=True)
class EngraveOptions:
    """How a score is laid out: music font, page size and staff size."""

    font: str = "Leipzig"
    dpi: float | None = None  # None: DeepScores geometry (1894 px wide); else true dots per inch
    page_width_mm: float = 210.0
    page_height_mm: float = 297.0
    unit: float = 9.0  # Verovio's staff-size unit (half a staff space, in tenths of a mm)
    #: Read each element's onset from Verovio's timemap (≈ 2–3 ms a page, repeats not played). Off by
    #: default: only the v2 outputs carry onsets, and Verovio 6.4.1's timemap segfaults on some scores
    #: that otherwise engrave (music21's ryansMammoth/MyLoveIsOnTheOceanReel.abc), which only a worker
    #: process survives.
    timing: bool = False
    #: Draw every dynamic letter by letter (Verovio's dynamSingleGlyphs): the DeepScoresV2 vocabulary
    #: labels letters (mf = dynamicM + dynamicF), the DeepScores one the combined SMuFL glyphs.
    dynamics_by_letter: bool = False

    def pixel_size(self) -> tuple[int, int]:
        """(width_px, height_px) of a rendered page."""
        if self.dpi is None:
            width_px = DEEPSCORES_PAGE_WIDTH_PX
            return width_px, round(width_px * self.page_height_mm / self.page_width_mm)
        return round(self.page_width_mm / 25.4 * self.dpi), round(self.page_height_mm / 25.4 * self.dpi)

    def verovio_options(self) -> dict[str, Any]:
        """The full Verovio option set; 'inputFrom' is set per score."""
        return {
            "font": self.font,
            "pageWidth": round(self.page_width_mm * 10),
            "pageHeight": round(self.page_height_mm * 10),
            "unit": self.unit,
            "scale": 100,
            "breaks": "auto",
            "adjustPageHeight": False,
            "header": "auto",  # titles are part of a real page
            "footer": "none",  # the default footer draws the Verovio logo on every page
            "xmlIdSeed": _XML_ID_SEED,
            # Alto and tenor C clefs share one glyph; the clef's staff line tells them apart. A grace
            # note is drawn like a small note: only its MEI @grace tells it from a cue note.
            "svgAdditionalAttribute": ["clef@line", "note@grace"],
            # No indentation: 40 % less SVG to write and parse. Whitespace between elements is never
            # drawn; 200 default and 60 v2 pages came out byte-identical with and without it.
            "svgFormatRaw": True,
            # Onsets are written positions, as music21 counts them: without this Verovio's timemap
            # plays the repeats (a chorale's measure after `:|` starts a whole section later), and
            # realising them was nine tenths of the timemap's cost. Pages are drawn the same.
            "expandNever": True,
            "dynamSingleGlyphs": self.dynamics_by_letter,
        }

    def validate(self) -> None:
        """Raise FontError/OptionsError; Verovio itself would silently fall back or clamp."""
        if self.font not in FONTS:
            raise FontError(f"unknown music font {self.font!r}; valid fonts: {', '.join(FONTS)}")
        _check_range("page_width_mm", self.page_width_mm, _PAGE_WIDTH_MM_RANGE)
        _check_range("page_height_mm", self.page_height_mm, _PAGE_HEIGHT_MM_RANGE)
        _check_range("unit", self.unit, _UNIT_RANGE)
        if self.dpi is not None and not (isinstance(self.dpi, (int, float)) and math.isfinite(self.dpi) and self.dpi > 0):
            raise OptionsError(f"dpi must be a positive number or None, got {self.dpi!r}")
        width_px, height_px = self.pixel_size()
        if width_px < 1 or height_px < 1:
            raise OptionsError(f"page of {width_px} x {height_px} px is empty; raise dpi or the page size")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_range(name: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise OptionsError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


@dataclass(frozen=True)
class EngravedPage:
    """One SVG page as Verovio drew it, with the pixel size it is meant to be rendered at."""

    svg: str
    page_number: int  # 1-based
    width_px: int
    height_px: int
    font: str
    #: Verovio element id → onset in quarter notes from the start of the score, for the notes,
    #: rests and measures of the whole score (shared by its pages; see meaning.timing_table).
    onsets: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


class _Engraver:
    """One Verovio toolkit per process: creating one loads fonts and takes far longer than a page."""

    def __init__(self) -> None:
        _route_log_to_buffer()
        self.toolkit = verovio.toolkit()
        self.applied: dict[str, Any] | None = None
        # Verovio's toolkit and its log buffer are process-global state, not thread-safe.
        self.lock = threading.Lock()

    def engrave(self, score: Score, options: EngraveOptions, max_pages: int | None = None) -> list[EngravedPage]:
        wanted = {**options.verovio_options(), "inputFrom": score.input_from}
        with self.lock:
            tk = self.toolkit
            tk.getLog()  # drop anything a previous, failed call left behind
            if wanted != self.applied:
                tk.setOptions(wanted)
                self.applied = wanted
            # Ids come from a generator that advances with every element; reseed so a score's
            # output does not depend on what this toolkit loaded before.
            tk.resetXmlIdSeed(_XML_ID_SEED)
            loaded = tk.loadData(score.data)
            lines = _log_lines(tk.getLog())
            page_count = tk.getPageCount() if loaded else 0
            last_page = page_count if max_pages is None else min(page_count, max(0, max_pages))
            svgs: list[str] = []
            for page_number in range(1, last_page + 1):
                svgs.append(tk.renderToSVG(page_number))
                lines += _log_lines(tk.getLog())
            # Timing lives in the loaded toolkit only: read it now, before the next score replaces it.
            onsets = timing_table(tk) if svgs and options.timing else {}
        _forward_log(score, lines)
        if not page_count:
            raise ScoreError(score.path, f"Verovio could not read it: {_first_relevant(lines, loaded)}")
        # Verovio turns well-formed but meaningless input into blank pages without a word.
        if svgs and not any('class="staff"' in svg for svg in svgs):
            raise ScoreError(score.path, "Verovio produced pages without any staff: no music in the file")
        width_px, height_px = options.pixel_size()
        return [EngravedPage(svg, number, width_px, height_px, options.font, onsets)
                for number, svg in enumerate(svgs, 1)]


_engraver: _Engraver | None = None
_engraver_lock = threading.Lock()


def engrave(score: Score, options: EngraveOptions, max_pages: int | None = None) -> list[EngravedPage]:
    """Lay out ``score`` with ``options`` and return its SVG pages (the first ``max_pages`` of them,
    when given; the layout is of the whole score, so they are the same pages); same input -> identical SVG."""
    global _engraver
    options.validate()
    with _engraver_lock:
        if _engraver is None:
            _engraver = _Engraver()
    return _engraver.engrave(score, options, max_pages)


_log_routed = False


def _route_log_to_buffer() -> None:
    """Send Verovio's log to its in-memory buffer (read with tk.getLog()) instead of stderr.

    The C++ switch vrv::EnableLogToBuffer is exported by the wheel's library but not wrapped in
    Python, so we call it through ctypes (the library is already loaded; dlopen returns it).
    """
    global _log_routed
    if _log_routed:
        return
    try:
        library = ctypes.CDLL(verovio._verovio.__file__)
        enable = library["_ZN3vrv17EnableLogToBufferEb"]
    except (OSError, AttributeError):
        # Without the buffer we cannot capture lines; silence is better than stderr noise.
        verovio.enableLog(verovio.LOG_OFF)
        logging.getLogger(__name__).warning("Verovio log buffer unavailable; Verovio messages are dropped")
    else:
        enable.argtypes = [ctypes.c_bool]
        enable.restype = None
        enable(True)
    _log_routed = True


def _log_lines(text: str) -> list[tuple[int, str]]:
    """Split Verovio's log into (level, message); lines without a '[Level]' tag continue the previous one."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        level, message = logging.WARNING, raw.strip()
        if message.startswith("[") and "]" in message:
            tag, rest = message[1:].split("]", 1)
            if tag.lower() in _LEVELS:
                level, message = _LEVELS[tag.lower()], rest.strip()
                if message.lower().startswith(tag.lower() + ":"):
                    message = message[len(tag) + 1 :].strip()  # "[Warning] Warning: ..." repeats itself
            elif lines:
                lines[-1] = (lines[-1][0], f"{lines[-1][1]} {message}")
                continue
        elif lines:
            lines[-1] = (lines[-1][0], f"{lines[-1][1]} {message}")
            continue
        lines.append((level, message))
    return lines


def _forward_log(score: Score, lines: list[tuple[int, str]]) -> None:
    for level, message in lines:
        log.log(level, "%s: %s", score.path, message)


def _first_relevant(lines: list[tuple[int, str]], loaded: bool) -> str:
    if lines:
        return max(lines, key=lambda item: item[0])[1]  # the first of the most severe lines
    return "no pages produced" if loaded else "no details in Verovio's log"
