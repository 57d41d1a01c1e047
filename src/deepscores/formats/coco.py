"""COCO detection files (``coco/<split>.json``) from the pages' annotation records.

Conventions:

- ``images[].file_name`` is ``<page>.png``, relative to the dataset's ``images_png/`` folder: pass
  that folder as the image root (e.g. torchvision's ``CocoDetection(root=DIR/"images_png", ...)``).
  Image ids are 1-based in the order the records are given; annotation ids are 1-based over the file.
- ``bbox`` is ``[x0, y0, x1 - x0, y1 - y0]`` in pixel edges (floats of the integer box).
- This is a bounding-box dataset: ``area`` is the box area ``w * h``, not a mask area, and there
  are no ``segmentation`` polygons (the pixel masks live in ``instance_png/``).
- ``category_id`` is the catalogue's class id; ``categories`` lists every class of the catalogue,
  also those no page uses, so every split shares one category table.
- Extra keys per annotation, which COCO tools ignore: ``instance_id`` (the value of the symbol's
  pixels in ``instance_png/<page>.png``), ``occluded`` and ``hidden``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepscores.classes import Catalogue
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.deepscores_xml import PageRecord

SUPERCATEGORY = "music"


def coco_dict(records: Iterable[tuple[str, PageRecord]], catalogue: Catalogue) -> dict[str, Any]:
    """The COCO dictionary of the given ``(page name, record)`` pairs, in that order."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (name, record) in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": f"{name}.png", "width": record.width, "height": record.height})
        for obj in record.objects:
            x0, y0, x1, y1 = obj.bbox_xyxy
            w, h = x1 - x0, y1 - y0
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": catalogue.id_of(obj.class_name),
                "bbox": [float(x0), float(y0), float(w), float(h)],
                "area": float(w * h),
                "iscrowd": 0,
                "instance_id": obj.instance_id,
                "occluded": obj.occluded,
                "hidden": obj.hidden,
            })
    categories = [{"id": catalogue.id_of(n), "name": n, "supercategory": SUPERCATEGORY} for n in catalogue.names]
    return {
        "info": {"description": f"DeepScores-style music symbol detection ({catalogue.name} classes)",
                 "bbox": "xywh in pixel edges; area is the box area"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(path: str | Path, records: Iterable[tuple[str, PageRecord]], catalogue: Catalogue) -> None:
    """Write ``coco_dict(records, catalogue)`` as compact JSON to ``path`` atomically."""
    # Compact: a split of thousands of pages holds millions of annotations.
    text = json.dumps(coco_dict(records, catalogue), separators=(",", ":"), ensure_ascii=False)
    atomic_write_text(path, text + "\n")
