"""One unit of work: one score file → its pages written into the dataset folder.

Engines (the local process pool, Ray) only schedule :func:`process_score`; everything a score's
files depend on is in its :class:`ScoreTask`, so the same task gives the same bytes anywhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import resource
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepscores.annotate import annotate, wants_onsets
from deepscores.classes import load_catalogue
from deepscores.classes_v2 import dynamics_by_letter
from deepscores.engrave import EngraveOptions, engrave
from deepscores.errors import DeepScoresError
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.deepscores_xml import write_page_xml
from deepscores.formats.pngio import write_png
from deepscores.formats.rle import write_rle
from deepscores.page import Page
from deepscores.synthetic import COMPOSED_FOLDER, is_synthetic, load_source

log = logging.getLogger("deepscores.pipeline")

#: The folders a page's files live in, and the suffix of each.
PAGE_FILES = {
    "images_png": ".png",
    "pix_annotations_png": ".png",
    "instance_png": ".png",
    "xml_annotations": ".xml",
}
#: Full-extent instance masks as COCO RLE (formats/rle.py): written only when the COCO export needs
#: them (`GenerateOptions.instance_rle`); encoding them is a fifth of a v2 page's cost.
FULL_INSTANCE_FILES = {"instance_rle": ".json.gz"}
#: With --degrade: each page's preset, seed and drawn effect parameters (degrade/apply.py).
DEGRADE_FILES = {"degrade": ".json"}


def page_name(score_id: str, page_number: int, font: str) -> str:
    """Stable page name: from the score's content, the page number and the font, never run order."""
    return f"{score_id}-p{page_number:03d}-{font.lower()}"


def page_paths(out: Path, name: str, instance_rle: bool = False, degrade: bool = False) -> dict[str, Path]:
    files = {**PAGE_FILES, **FULL_INSTANCE_FILES} if instance_rle else dict(PAGE_FILES)
    if degrade:
        files.update(DEGRADE_FILES)
    return {folder: out / folder / f"{name}{suffix}" for folder, suffix in files.items()}


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of the parts that is the same in every process and Python version."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


#: How scores get fonts (`GenerateOptions.font_mode`): one per score, or every score in every font.
FONT_MODES = ("score", "every")


def choose_font(seed: int, score_id: str, fonts: tuple[str, ...]) -> str:
    """The font of a whole score: drawn from (seed, score content), so it never depends on order."""
    return fonts[stable_hash("font", seed, score_id) % len(fonts)]


def score_fonts(seed: int, score_id: str, fonts: tuple[str, ...], mode: str = "score") -> tuple[str, ...]:
    """The fonts a score is engraved in: the drawn one (``score``) or all of ``fonts`` (``every``)."""
    return tuple(fonts) if mode == "every" else (choose_font(seed, score_id, fonts),)


@dataclass(frozen=True)
class ScoreTask:
    source: str                  # path of the score file
    out: str                     # dataset folder
    fonts: tuple[str, ...]
    seed: int
    dpi: float | None = None
    unit: float = 9.0
    #: Pages of each font to make, at most. With ``--pages N`` no score needs more than N less the pages
    #: of the earlier scores already known when the task is handed out (run.py); pages past it would be
    #: cut from the dataset, so they are neither drawn nor written.
    max_pages: int | None = None
    classes: str = "deepscores"
    memory_limit_mb: int | None = None
    full_instances: bool = False  # full-extent masks, oriented boxes, ink areas (GenerateOptions.full_instances)
    degrade: Any = None           # a degrade.presets.Preset, or None for clean pages
    font_mode: str = "score"      # see FONT_MODES
    instance_rle: bool = False    # also write the full masks as instance_rle/ (needs full_instances)


@dataclass
class PageSummary:
    name: str
    page_number: int
    symbols: int
    class_counts: dict[str, int]
    #: Glyphs of the page that no class takes, and symbols dropped as duplicates. Per page, so that the
    #: dataset's counts cover exactly its pages when a score's last pages are cut (None: a manifest
    #: written before these were kept per page).
    unmapped: dict[str, int] | None = None
    duplicates_removed: int | None = None


@dataclass
class ScoreResult:
    source: str
    status: str                  # ok | error | timeout | crash
    score_id: str | None = None
    content_hash: str | None = None
    font: str | None = None
    pages: list[PageSummary] = field(default_factory=list)
    unmapped: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    error: str | None = None
    #: What loading changed so that the engraver draws what the file means (corpus.Score.repairs).
    repairs: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ScoreResult":
        pages = [PageSummary(**p) for p in data.get("pages", [])]
        return cls(**{**data, "pages": pages})


#: How often a score whose worker died is tried again before it is recorded as a crash. Errors are
#: not retried: process_score returns them as results, and the same input fails the same way.
MAX_CRASH_RETRIES = 2


def page_totals(pages: list[PageSummary]) -> tuple[dict[str, int], int]:
    """Unmapped glyphs (sorted by name) and removed duplicates of these pages together."""
    unmapped: Counter = Counter()
    for page in pages:
        unmapped.update(page.unmapped or {})
    return dict(sorted(unmapped.items())), sum(page.duplicates_removed or 0 for page in pages)


def crash_result(source: str, attempts: int) -> ScoreResult:
    """The manifest's record of a score whose worker died on every attempt; the same words from every
    engine, so that a dataset's bytes do not depend on the engine (the cause goes to the log)."""
    return ScoreResult(source, "crash", error=f"{source}: the engraver process died (tried {attempts} times)")


def limit_memory(megabytes: int | None) -> None:
    """Cap this worker's address space, so one huge score fails alone instead of the machine."""
    if megabytes:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


#: glibc's ``mallopt`` parameters, and what a worker sets them to. By default a freed block of a few
#: MB (a page's image, class mask and instance map are 5, 5 and 10 MB) goes back to the kernel, so
#: the next page's arrays are fresh memory that the kernel maps page by page on first touch: about
#: 1,400 faults a page. A worker makes the same arrays page after page; served from the heap and
#: kept there, they are reused without a fault (about 200 a page), and the kernel's share of a
#: page's time halves. 32 MB is glibc's ceiling for the threshold (a 400 dpi instance map is 31 MB).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
_page_memory_kept = False


def keep_page_memory() -> bool:
    """In a worker process: let malloc keep and reuse page-sized blocks (see above). Returns whether
    the C library took it (only glibc-like ones have ``mallopt``; elsewhere nothing changes)."""
    global _page_memory_kept
    if not _page_memory_kept:
        try:
            mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
        except (OSError, AttributeError, TypeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _page_memory_kept = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
                                 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
    return _page_memory_kept


def process_score(task: ScoreTask) -> ScoreResult:
    """Engrave one score, derive the ground truth of each page and write the page files atomically.

    Errors that deepscores understands come back as a result with status ``error`` and a one-line
    reason; a crash of the native engraver kills the calling process, and the engine records it.
    """
    try:
        return _process(task)
    except DeepScoresError as exc:
        return ScoreResult(task.source, "error", error=str(exc))
    except MemoryError:
        return ScoreResult(task.source, "error", error=f"{task.source}: out of memory (limit {task.memory_limit_mb} MB)")
    except Exception as exc:  # a bug or an unforeseen input must cost one score, not the run
        log.exception("unexpected failure on %s", task.source)
        return ScoreResult(task.source, "error", error=f"{task.source}: {type(exc).__name__}: {exc}".splitlines()[0])


def _process(task: ScoreTask) -> ScoreResult:
    score = load_source(task.source)
    if is_synthetic(task.source):
        # The dataset keeps the music its composed pages show, named like them by content.
        (Path(task.out) / COMPOSED_FOLDER).mkdir(exist_ok=True)
        atomic_write_text(Path(task.out) / COMPOSED_FOLDER / f"{score.score_id}.mei", score.data)
    fonts = score_fonts(task.seed, score.score_id, task.fonts, task.font_mode)
    catalogue = load_catalogue(task.classes)
    out = Path(task.out)
    result = ScoreResult(task.source, "ok", score.score_id, score.content_hash, ",".join(fonts),
                         repairs=list(score.repairs))
    if task.max_pages == 0:
        return result  # the earlier scores already hold the run's N pages: none of this one is needed
    for font in fonts:
        # Onsets end up only in the v2 outputs (XML, obb_anns comments); v1 skips Verovio's timemap.
        options = EngraveOptions(font=font, dpi=task.dpi, unit=task.unit,
                                 timing=wants_onsets(task.classes, task.full_instances),
                                 dynamics_by_letter=dynamics_by_letter(task.classes))
        for svg_page in engrave(score, options, task.max_pages):
            page = annotate(svg_page, score.score_id, catalogue, full_instances=task.full_instances)
            name = page_name(score.score_id, page.page_number, font)
            page = _write_page(task, out, page, name)
            result.pages.append(PageSummary(
                name, page.page_number, len(page.symbols), dict(sorted(Counter(s.class_name for s in page.symbols).items())),
                dict(page.unmapped), page.duplicates_removed,
            ))
    result.unmapped, result.duplicates_removed = page_totals(result.pages)
    return result


def _write_page(task: ScoreTask, out: Path, page: Page, name: str) -> Page:
    """Degrade the page if asked, write its files (the XML last), and return the page as written."""
    paths = page_paths(out, name, task.instance_rle, task.degrade is not None)
    if task.degrade is not None:
        from deepscores.degrade.apply import degrade_page, page_seed

        page, record = degrade_page(page, task.degrade, page_seed(task.seed, page.score_id, page.page_number))
        atomic_write_text(paths["degrade"], json.dumps(record.to_json(), sort_keys=True) + "\n")
    write_png(paths["images_png"], page.image)
    write_png(paths["pix_annotations_png"], page.class_mask)
    write_png(paths["instance_png"], page.instance_map)
    if task.instance_rle:
        write_rle(paths["instance_rle"], page.instance_masks, page.height, page.width)
    # The XML is written last: its presence marks the page complete (see is_page_complete).
    write_page_xml(paths["xml_annotations"], page, name)
    return page


def is_page_complete(out: Path, name: str, instance_rle: bool = False, degrade: bool = False) -> bool:
    return all(p.is_file() for p in page_paths(out, name, instance_rle, degrade).values())


def remove_page_files(out: Path, name: str) -> None:
    for path in page_paths(out, name, instance_rle=True, degrade=True).values():
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
