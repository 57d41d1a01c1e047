"""The class gallery: for every class of every vocabulary a minimal score (MEI, in data/gallery/)
that makes Verovio draw that symbol, and the check that the ground truth holds it, in any font.

``data/gallery/index.csv`` lists, per vocabulary and class, the score, how many instances of the
class its page holds, and the xml:id of the MEI element that draws it (empty where Verovio names the
drawn group itself). ``data/not_producible.csv`` lists the classes no score can make, with the
reason; `deepscores stats` marks them "not producible" instead of "absent".
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from lxml import etree

from deepscores.classes import load_catalogue

#: The gallery's pages: the default page width (so symbols have their dataset size), a short page.
GALLERY_PAGE_HEIGHT_MM = 100.0
_SVG_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass(frozen=True)
class GalleryEntry:
    vocabulary: str
    class_name: str
    file: str     # file name in data/gallery/
    count: int    # instances of the class on the page
    target: str   # xml:id of the element whose drawing holds the symbol ('' if none is named)

    @property
    def path(self) -> Path:
        return gallery_dir() / self.file


def gallery_dir() -> Path:
    return Path(str(resources.files("deepscores") / "data" / "gallery"))


@functools.cache
def gallery(vocabulary: str | None = None) -> tuple[GalleryEntry, ...]:
    """The gallery's entries, of one vocabulary or of all of them."""
    text = (gallery_dir() / "index.csv").read_text(encoding="utf-8")
    entries = tuple(GalleryEntry(r["vocabulary"], r["class"], r["file"], int(r["count"]), r["target"])
                    for r in csv.DictReader(io.StringIO(text)))
    return entries if vocabulary is None else tuple(e for e in entries if e.vocabulary == vocabulary)


@functools.cache
def not_producible(vocabulary: str) -> dict[str, str]:
    """Classes of ``vocabulary`` that no score can make (engraver or font limits) → the reason.
    The DeepScoresV2 strict vocabulary shares the DeepScoresV2 table."""
    resource = resources.files("deepscores") / "data" / "not_producible.csv"
    rows = csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8")))
    base = "deepscoresv2" if vocabulary == "deepscoresv2_strict" else vocabulary
    return {r["class"]: r["reason"] for r in rows if r["vocabulary"] == base}


def check_entry(entry: GalleryEntry, font: str) -> list[str]:
    """Engrave the entry's score in ``font`` and say what is wrong with its ground truth (nothing:
    ``[]``): the class occurs ``count`` times, each with labelled pixels inside its box and ink
    under them, and one of them is drawn by the target element."""
    # Imported here: the gallery's table is read by `stats`, which needs no engraver.
    from deepscores.annotate import annotate
    from deepscores.classes_v2 import dynamics_by_letter
    from deepscores.corpus import load_score
    from deepscores.engrave import EngraveOptions, engrave

    catalogue = load_catalogue(entry.vocabulary)
    score = load_score(entry.path)
    # Engraved once: the pages' ground truth and the SVG the target element is looked up in.
    engraved = engrave(score, EngraveOptions(font=font, page_height_mm=GALLERY_PAGE_HEIGHT_MM,
                                             dynamics_by_letter=dynamics_by_letter(entry.vocabulary)))
    pages = [annotate(page, score.score_id, catalogue) for page in engraved]
    where = f"{entry.file} in {font}"
    if len(pages) != 1:
        return [f"{where}: {len(pages)} pages, expected 1"]
    page = pages[0]
    found = [s for s in page.symbols if s.class_name == entry.class_name]
    problems = []
    if len(found) != entry.count:
        problems.append(f"{where}: {len(found)} {entry.class_name}, expected {entry.count}")
    class_id = catalogue.id_of(entry.class_name)
    for symbol in found:
        x0, y0, x1, y1 = symbol.bbox_xyxy
        labelled = np.count_nonzero(page.class_mask[y0:y1, x0:x1] == class_id)
        inked = np.count_nonzero(page.image[y0:y1, x0:x1] < 128)
        if labelled == 0 or inked == 0:
            problems.append(f"{where}: {entry.class_name} at {symbol.bbox_xyxy} has {labelled} labelled "
                            f"and {inked} inked pixels")
    if entry.target and found:
        owned = _ids_under(engraved[0].svg, entry.target)
        if not owned:
            problems.append(f"{where}: no element {entry.target!r} in the SVG")
        elif not any(s.element_id in owned for s in found):
            problems.append(f"{where}: no {entry.class_name} is drawn by element {entry.target!r}")
    return problems


def _ids_under(svg: str, element_id: str) -> set[str]:
    root = etree.fromstring(svg.encode("utf-8"), _SVG_PARSER)
    element = next((el for el in root.iter() if el.get("id") == element_id), None)
    if element is None:
        return set()
    return {el.get("id") for el in element.iter() if el.get("id")}


def uncovered(vocabulary: str) -> list[str]:
    """Classes of ``vocabulary`` with neither a gallery score nor a not-producible reason (should be none)."""
    shown = {e.class_name for e in gallery("deepscoresv2" if vocabulary == "deepscoresv2_strict" else vocabulary)}
    return [n for n in load_catalogue(vocabulary).names if n not in shown and n not in not_producible(vocabulary)]
