"""The DeepScoresV2 release layout (the ``obb_anns`` toolkit's format) under ``obb_anns/``.

::

    obb_anns/
      deepscores_{train,val,test}.json   annotation files, one per split (the release ships train/test)
      images/<page>.png                  relative symlinks to ../../images_png/<page>.png
      segmentation/<page>_seg.png        8-bit: the deepscores-set category ``color`` per pixel, 0 = background
      instance/<page>_inst.png           relative symlinks to ../../instance_png/<page>.png (16-bit ids)

Annotation files have exactly the published keys and value types (see docs/v2.md, "Export"):
``categories`` keyed by id string, both annotation sets (``deepscores`` 1–136 and, for the
``deepscoresv2`` vocabulary, our ``barline`` 209; ``muscima++`` 137–208); ``images`` with int ids
and ``ann_ids`` as strings; ``annotations`` keyed by id string with ``a_bbox``, ``o_bbox``,
``cat_id``, ``area``, ``img_id``, ``comments``. Image and annotation ids are 1-based and run
across the split files in train, val, test order, so an id names one thing in the whole dataset.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepscores.classes import Catalogue
from deepscores.classes_v2 import BARLINE, V2_VOCABULARIES, muscima_id_of
from deepscores.errors import DeepScoresError
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.deepscores_xml import ObjectRecord, PageRecord
from deepscores.formats.pngio import read_png, write_png
from deepscores.formats.rle import rle_area
from deepscores.page import BACKGROUND_CLASS

ANNOTATION_SETS = ("deepscores", "muscima++")
#: Mask value of our ``barline`` class in ``segmentation/``: published colours are 1..175, so any
#: value above that collides with none; 209 repeats its category id, which makes it easy to remember.
BARLINE_COLOR = 209
#: Background in ``segmentation/`` (as published).
BACKGROUND_COLOR = 0
#: What ``info`` says. Version and year name the obb_anns format followed (DeepScoresV2, 2020), and
#: ``date_created`` stays empty: a dataset's bytes must not depend on the day it was generated.
INFO = {
    "description": "deepscores synthetic pages in the DeepScoresV2 OBB format",
    "version": "2.0",
    "year": 2020,
    "contributor": "deepscores (Verovio-engraved, generated)",
    "date_created": "",
    "url": "https://tuggeluk.github.io/deepscores/",
}

#: Page name → the COCO segmentations of its symbols (record order), or None.
SegmentationSource = Callable[[str], "list[dict[str, Any]] | None"]


#: muscima++ id → published colour where the largest-counterpart rule does not give it: our table
#: pairs the breve heads (colours 47–50) with ``noteheadWhole`` by meaning, but the published colour
#: of ``noteheadWhole`` (46) is that of the whole heads alone.
_MUSCIMA_COLOR_EXCEPTIONS = {159: 46}


# -- categories -------------------------------------------------------------------------------------
@functools.cache
def _pairs() -> tuple[dict[str, str], ...]:
    resource = resources.files("deepscores") / "data" / "muscima_deepscoresv2.csv"
    return tuple(csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8"))))


def _require_v2(catalogue: Catalogue) -> None:
    if catalogue.name not in V2_VOCABULARIES:
        raise DeepScoresError(f"the obb-anns export needs a DeepScoresV2 vocabulary ({', '.join(sorted(V2_VOCABULARIES))}), "
                              f"not {catalogue.name!r}")


def category_colors(catalogue: Catalogue) -> dict[int, int]:
    """Class id (``deepscores`` set) → its published mask colour; ``barline`` → `BARLINE_COLOR`."""
    _require_v2(catalogue)
    published = {int(r["v2_id"]): int(r["published_color"]) for r in _pairs()}
    return {i: BARLINE_COLOR if name == BARLINE else published[i] for i, name in catalogue.items()}


def categories(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    """The ``categories`` table: each ``deepscores``-set class, each followed by its ``muscima++``
    counterpart the first time one is named (close to the published file's interleaved order;
    the order carries no meaning, the keys do).

    The muscima++ names come from the pairing table; a muscima++ category's colour is the largest
    colour among its deepscores-set counterparts, which is what the published table holds for 71 of
    the 72 (see `_MUSCIMA_COLOR_EXCEPTIONS`; tests/test_obb_anns.py checks all against categories.csv).
    """
    colors = category_colors(catalogue)
    muscima: dict[int, tuple[str, int]] = {}
    for row in _pairs():
        if row["muscima_id"]:
            m_id, color = int(row["muscima_id"]), int(row["published_color"])
            muscima[m_id] = (row["muscima_name"], max(color, muscima.get(m_id, ("", 0))[1]))
    muscima.update({m_id: (muscima[m_id][0], color) for m_id, color in _MUSCIMA_COLOR_EXCEPTIONS.items()})
    table: dict[str, dict[str, Any]] = {}
    for class_id, name in catalogue.items():
        table[str(class_id)] = {"name": name, "annotation_set": ANNOTATION_SETS[0], "color": colors[class_id]}
        m_id = None if name == BARLINE else muscima_id_of(class_id)
        if m_id is not None and str(m_id) not in table:
            m_name, m_color = muscima[m_id]
            table[str(m_id)] = {"name": m_name, "annotation_set": ANNOTATION_SETS[1], "color": m_color}
    return table


def color_lut(catalogue: Catalogue) -> np.ndarray:
    """uint8[256]: class-mask value → ``segmentation/`` value (background 255 → 0)."""
    lut = np.full(256, BACKGROUND_COLOR, dtype=np.uint8)
    for class_id, color in category_colors(catalogue).items():
        lut[class_id] = color
    lut[BACKGROUND_CLASS] = BACKGROUND_COLOR
    return lut


# -- annotations ------------------------------------------------------------------------------------
def aligned_corners(bbox_xyxy: tuple[int, int, int, int]) -> list[float]:
    """An axis-aligned box as an ``o_bbox``, corners in the published order: (x1, y1), (x1, y0),
    (x0, y0), (x0, y1), i.e. bottom-right first, then counter-clockwise on screen."""
    x0, y0, x1, y1 = (float(v) for v in bbox_xyxy)
    return [x1, y1, x1, y0, x0, y0, x0, y1]


def comments(obj: ObjectRecord) -> str:
    """``onset:<x>;rel_position:<y>;`` with each part left out when the symbol lacks it."""
    parts = []
    if obj.onset is not None:
        parts.append(f"onset:{float(obj.onset)!r};")
    if obj.rel_position is not None:
        parts.append(f"rel_position:{int(obj.rel_position)};")
    return "".join(parts)


def annotation(obj: ObjectRecord, image_id: int, catalogue: Catalogue,
               segmentation: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``annotations`` value. ``area`` is the ink pixel count: the record's ``area_px``, else
    the pixel count of its full-extent mask, else (no masks at all) the box area."""
    class_id = catalogue.id_of(obj.class_name)
    m_id = None if obj.class_name == BARLINE else muscima_id_of(class_id)
    x0, y0, x1, y1 = obj.bbox_xyxy
    if obj.area_px is not None:
        area = int(obj.area_px)
    elif segmentation is not None:
        area = rle_area(segmentation)
    else:
        area = (x1 - x0) * (y1 - y0)
    return {
        "a_bbox": [float(x0), float(y0), float(x1), float(y1)],
        "o_bbox": [float(v) for v in obj.o_bbox] if obj.o_bbox is not None else aligned_corners(obj.bbox_xyxy),
        "cat_id": [str(class_id), None if m_id is None else str(m_id)],
        "area": area,
        "img_id": str(image_id),
        "comments": comments(obj),
    }


def obb_anns_dict(records: Iterable[tuple[str, PageRecord]], catalogue: Catalogue, first_image_id: int = 1,
                  first_annotation_id: int = 1, segmentations: SegmentationSource | None = None) -> dict[str, Any]:
    """One annotation file of the given ``(page name, record)`` pairs, ids counted from the given ones."""
    table = categories(catalogue)
    images: list[dict[str, Any]] = []
    annotations: dict[str, dict[str, Any]] = {}
    next_id = first_annotation_id
    for image_id, (name, record) in enumerate(records, start=first_image_id):
        # The masks only give the area of symbols whose record lacks it (pages of older versions).
        needed = segmentations is not None and any(obj.area_px is None for obj in record.objects)
        masks = segmentations(name) if needed else None
        if masks is not None and len(masks) != len(record.objects):
            raise DeepScoresError(f"{name}: {len(masks)} instance masks for {len(record.objects)} symbols")
        ann_ids = []
        for index, obj in enumerate(record.objects):
            annotations[str(next_id)] = annotation(obj, image_id, catalogue, masks[index] if masks else None)
            ann_ids.append(str(next_id))
            next_id += 1
        images.append({"id": image_id, "filename": f"{name}.png", "width": record.width, "height": record.height,
                       "ann_ids": ann_ids})
    return {"info": dict(INFO), "annotation_sets": list(ANNOTATION_SETS), "categories": table,
            "images": images, "annotations": annotations}


# -- the folder -------------------------------------------------------------------------------------
def _symlink(link: Path, target: str) -> None:
    # Made under a temp name and renamed over the old one: a reader never sees the name missing.
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.parent / f".tmp-{link.name}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _translated(mask: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[mask]`` for a uint8 mask, through Pillow's table look-up: half the time of numpy's
    fancy indexing on a page (3.9 against 7.6 ms), which goes through a page of intp indices."""
    return np.asarray(Image.fromarray(mask).point(lut.tolist()))


def _remove_stale(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        if path.name not in keep and (path.is_symlink() or path.is_file()):
            path.unlink()


def write_obb_anns(dataset_dir: str | Path, records_by_split: Mapping[str, list[tuple[str, PageRecord]]],
                   catalogue: Catalogue, segmentations: SegmentationSource | None = None) -> None:
    """Write ``<dataset_dir>/obb_anns/`` from the pages' records and page files (see the module doc).

    Files of pages no split names any more are removed, so a rewritten tree holds exactly these pages.
    """
    _require_v2(catalogue)
    root = Path(dataset_dir)
    out = root / "obb_anns"
    folders = {sub: out / sub for sub in ("images", "segmentation", "instance")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    lut = color_lut(catalogue)
    image_id, annotation_id = 1, 1
    names: list[str] = []
    for split, records in records_by_split.items():
        data = obb_anns_dict(records, catalogue, image_id, annotation_id, segmentations)
        image_id += len(data["images"])
        annotation_id += len(data["annotations"])
        # Compact, as COCO: a split holds millions of annotations.
        atomic_write_text(out / f"deepscores_{split}.json",
                          json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")
        names.extend(name for name, _ in records)
    for name in names:
        _symlink(folders["images"] / f"{name}.png", f"../../images_png/{name}.png")
        _symlink(folders["instance"] / f"{name}_inst.png", f"../../instance_png/{name}.png")
        write_png(folders["segmentation"] / f"{name}_seg.png", _translated(read_png(root / "pix_annotations_png" / f"{name}.png"), lut))
    _remove_stale(folders["images"], {f"{n}.png" for n in names})
    _remove_stale(folders["instance"], {f"{n}_inst.png" for n in names})
    _remove_stale(folders["segmentation"], {f"{n}_seg.png" for n in names})
