"""The DeepScoresV2 parts of a dataset check (`deepscores validate`): ``instance_rle/`` and ``obb_anns/``.

Kept apart from `validate.py`, which calls these two functions after its own checks. Each problem is
one defect naming the file; nothing here raises for a damaged dataset.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pycocotools import mask as mask_util

from deepscores.classes import Catalogue
from deepscores.errors import DeepScoresError
from deepscores.formats.deepscores_xml import PageRecord
from deepscores.formats.rle import RLE_FOLDER, read_rle

if TYPE_CHECKING:
    from deepscores.validate import _Report

#: A symbol's full-extent mask may reach this far past its box (the hairline of an outline that ends
#: on a pixel edge; see annotate.full_extents).
MASK_MARGIN_PX = 1


def check_instance_rle(root: Path, records: dict[str, PageRecord], report: "_Report") -> None:
    """Per page with a sidecar: one mask per object, the page's size, each mask inside its box (± 1 px),
    and its pixel count equal to the object's ``<area>``."""
    folder = root / RLE_FOLDER
    if not folder.is_dir():
        return
    for name, record in sorted(records.items()):
        path = folder / f"{name}.json.gz"
        if not path.is_file():
            report.add(path, "missing")
            continue
        try:
            masks = read_rle(path)
        except DeepScoresError as exc:
            report.add(path, str(getattr(exc, "cause", exc)))
            continue
        if masks is None:
            continue
        if len(masks) != len(record.objects):
            report.add(path, f"{len(masks)} masks for {len(record.objects)} objects in the XML")
            continue
        if masks and masks[0]["size"] != [record.height, record.width]:
            report.add(path, f"size {masks[0]['size']} differs from the page's {[record.height, record.width]}")
            continue
        encoded = [{"size": m["size"], "counts": m["counts"].encode("ascii")} for m in masks]
        try:
            # One mask per call: pycocotools 2.0.11's area() of a list fails from 256 masks on (a uint8 count).
            areas = [int(mask_util.area(m)) for m in encoded]
            boxes = mask_util.toBbox(encoded)
        except (ValueError, TypeError) as exc:
            report.add(path, f"not COCO RLE: {exc}")
            continue
        for index, (obj, area, (x, y, w, h)) in enumerate(zip(record.objects, areas, boxes)):
            if obj.area_px is not None and int(area) != obj.area_px:
                report.add(path, f"mask {index + 1} ({obj.class_name}) has {int(area)} pixels, the XML's area is {obj.area_px}")
                break
            x0, y0, x1, y1 = obj.bbox_xyxy
            if area and (x < x0 - MASK_MARGIN_PX or y < y0 - MASK_MARGIN_PX or x + w > x1 + MASK_MARGIN_PX
                         or y + h > y1 + MASK_MARGIN_PX):
                report.add(path, f"mask {index + 1} ({obj.class_name}) spans {[int(x), int(y), int(x + w), int(y + h)]}, "
                                 f"outside its box {list(obj.bbox_xyxy)}")
                break


def check_obb_anns(root: Path, records: dict[str, PageRecord], splits: dict[str, list[str]] | None,
                   catalogue: Catalogue, report: "_Report") -> None:
    """``obb_anns/``: each split file's pages are the split's, each page's annotations are its XML
    objects (same boxes, classes, oriented boxes and areas, in order), ids are unique across files,
    and every page has its image, instance map and segmentation PNG."""
    out = root / "obb_anns"
    if not out.is_dir():
        return
    from deepscores.validate import SPLITS, _compare_pages, read_json_file

    image_ids: set[int] = set()
    ann_ids: set[str] = set()
    for split in SPLITS:
        path = out / f"deepscores_{split}.json"
        if not path.is_file():
            report.add(path, "missing")
            continue
        parsed = read_json_file(path, report, "an obb_anns file", lambda data: (
            data["images"], data["annotations"], [image["filename"].removesuffix(".png") for image in data["images"]]))
        if parsed is None:
            continue
        images, annotations, pages = parsed
        _compare_pages(path, pages, splits, split, report)
        for image, page in zip(images, pages):
            if image.get("id") in image_ids:
                report.add(path, f"image id {image.get('id')} ({page}) is used twice")
            image_ids.add(image.get("id"))
            if page not in records:
                continue
            try:
                problem = _page_problem(image, annotations, records[page], catalogue, ann_ids)
            except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
                problem = f"not an obb_anns annotation: {type(exc).__name__}: {exc}"
            if problem:
                report.add(path, f"page {page}: {problem}")
            for link in (out / "images" / f"{page}.png", out / "instance" / f"{page}_inst.png",
                         out / "segmentation" / f"{page}_seg.png"):
                if not link.exists():
                    report.add(link, "missing" if not link.is_symlink() else "broken link")


def _page_problem(image: dict, annotations: dict, record: PageRecord, catalogue: Catalogue,
                  seen: set[str]) -> str | None:
    """The first disagreement between one page's annotations and its XML record, or None."""
    ids = image.get("ann_ids", [])
    if len(ids) != len(record.objects):
        return f"{len(ids)} annotations for {len(record.objects)} objects in the XML"
    if (image.get("width"), image.get("height")) != (record.width, record.height):
        return f"size {image.get('width')}x{image.get('height')} differs from the XML's {record.width}x{record.height}"
    for ann_id, obj in zip(ids, record.objects):
        if ann_id in seen:
            return f"annotation id {ann_id} is used twice"
        seen.add(ann_id)
        ann = annotations.get(ann_id)
        if ann is None:
            return f"annotation {ann_id} is listed but absent"
        if [round(v) for v in ann["a_bbox"]] != list(obj.bbox_xyxy):
            return f"annotation {ann_id}: a_bbox {ann['a_bbox']} differs from the XML's {list(obj.bbox_xyxy)}"
        if ann["cat_id"][0] != str(catalogue.id_of(obj.class_name)):
            return f"annotation {ann_id}: cat_id {ann['cat_id'][0]} is not {obj.class_name}'s {catalogue.id_of(obj.class_name)}"
        o_bbox = ann["o_bbox"]
        if len(o_bbox) != 8 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in o_bbox):
            return f"annotation {ann_id}: o_bbox is not 8 finite numbers"
        if obj.o_bbox is not None and not np.allclose(o_bbox, obj.o_bbox, atol=1e-6):
            return f"annotation {ann_id}: o_bbox differs from the XML's"
        if obj.area_px is not None and ann["area"] != obj.area_px:
            return f"annotation {ann_id}: area {ann['area']} differs from the XML's {obj.area_px}"
    return None

