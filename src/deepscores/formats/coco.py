"""COCO detection files (``coco/<split>.json``) from the pages' annotation records.

Conventions:

- ``images[].file_name`` is ``<page>.png``, relative to the dataset's ``images_png/`` folder: pass
  that folder as the image root (e.g. torchvision's ``CocoDetection(root=DIR/"images_png", ...)``).
  Image ids are 1-based in the order the records are given; annotation ids are 1-based over the file.
- ``bbox`` is ``[x0, y0, x1 - x0, y1 - y0]`` in pixel edges (floats of the integer box).
- ``segmentation``: when the pages have full-extent instance masks (``instance_rle/<page>.json.gz``,
  see `deepscores.formats.rle`), each annotation carries its mask as a compressed COCO RLE
  (``{"size": [H, W], "counts": "…"}``, overlaps kept), so pycocotools' ``iouType="segm"``
  evaluation works; otherwise there is no ``segmentation`` key (a bounding-box dataset; the
  visible-pixel masks live in ``instance_png/``).
- ``area`` is the box area ``w * h`` in both cases, not the mask area: the area ranges of
  ``bbox`` evaluation (small/medium/large) then stay what they were, and files with and without
  masks agree. The mask area is ``pycocotools.mask.area(segmentation)``.
- ``category_id`` is the catalogue's class id; ``categories`` lists every class of the catalogue,
  also those no page uses, so every split shares one category table.
- Extra keys per annotation, which COCO tools ignore: ``instance_id`` (the value of the symbol's
  pixels in ``instance_png/<page>.png``), ``occluded`` and ``hidden``; ``o_bbox`` (the oriented
  box, 8 floats ``x0, y0, …, x3, y3`` in page pixels) where the record has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from deepscores.classes import Catalogue
from deepscores.formats import FormatError
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.deepscores_xml import PageRecord

SUPERCATEGORY = "music"


#: Page name → the COCO segmentation of each of its symbols (in record order), or None for none.
SegmentationSource = Callable[[str], "list[dict[str, Any]] | None"]


def coco_dict(records: Iterable[tuple[str, PageRecord]], catalogue: Catalogue,
              segmentations: SegmentationSource | None = None) -> dict[str, Any]:
    """The COCO dictionary of the given ``(page name, record)`` pairs, in that order.

    ``segmentations`` gives each page's instance masks (see `deepscores.formats.rle.read_rle`); a
    page for which it returns None gets no ``segmentation`` keys.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (name, record) in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": f"{name}.png", "width": record.width, "height": record.height})
        masks = segmentations(name) if segmentations is not None else None
        if masks is not None and len(masks) != len(record.objects):
            raise FormatError(name, f"{len(masks)} instance masks for {len(record.objects)} symbols")
        for index, obj in enumerate(record.objects):
            x0, y0, x1, y1 = obj.bbox_xyxy
            w, h = x1 - x0, y1 - y0
            annotation: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": catalogue.id_of(obj.class_name),
                "bbox": [float(x0), float(y0), float(w), float(h)],
                "area": float(w * h),
                "iscrowd": 0,
                "instance_id": obj.instance_id,
                "occluded": obj.occluded,
                "hidden": obj.hidden,
            }
            if masks is not None:
                annotation["segmentation"] = masks[index]
            if obj.o_bbox is not None:
                annotation["o_bbox"] = list(obj.o_bbox)
            annotations.append(annotation)
    categories = [{"id": catalogue.id_of(n), "name": n, "supercategory": SUPERCATEGORY} for n in catalogue.names]
    return {
        "info": {"description": f"DeepScores-style music symbol detection ({catalogue.name} classes)",
                 "bbox": "xywh in pixel edges; area is the box area"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(path: str | Path, records: Iterable[tuple[str, PageRecord]], catalogue: Catalogue,
               segmentations: SegmentationSource | None = None) -> None:
    """Write ``coco_dict(records, catalogue, segmentations)`` as compact JSON to ``path`` atomically."""
    # Compact: a split of thousands of pages holds millions of annotations.
    text = json.dumps(coco_dict(records, catalogue, segmentations), separators=(",", ":"), ensure_ascii=False)
    atomic_write_text(path, text + "\n")
