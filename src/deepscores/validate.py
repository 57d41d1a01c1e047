"""Dataset checker: every file of a written dataset agrees with the others and with the class catalogue.

`validate_dataset` returns one `Defect` (file, message) per problem found and never raises for a
damaged dataset: an unreadable file is one defect, and the checks that needed it are skipped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from scipy import ndimage

from deepscores.classes import Catalogue, load_catalogue
from deepscores.errors import DeepScoresError
from deepscores.formats.deepscores_xml import PageRecord, read_page_xml
from deepscores.formats.pngio import read_png
from deepscores.page import BACKGROUND_CLASS
from deepscores.validate_v2 import check_instance_rle, check_obb_anns

T = TypeVar("T")

#: The folders holding one file per page, and each file's suffix.
PAGE_FOLDERS = {"images_png": ".png", "pix_annotations_png": ".png", "instance_png": ".png", "xml_annotations": ".xml"}
SPLITS = ("train", "val", "test")
#: Instance pixels may reach this far outside their box: anti-aliasing of an outline on a pixel edge.
BOX_TOLERANCE_PX = 1
_Box = tuple[str, tuple[int, int, int, int]]


@dataclass(frozen=True)
class Defect:
    """One problem: the file (relative to the dataset folder) and what is wrong with it, in one line."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class _Report:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.defects: list[Defect] = []

    def add(self, path: Path | str, message: str) -> None:
        path = Path(path)
        rel = path.relative_to(self.root) if path.is_absolute() and path.is_relative_to(self.root) else path
        self.defects.append(Defect(rel.as_posix(), message))


def validate_dataset(dataset_dir: str | Path, catalogue: Catalogue | None = None) -> list[Defect]:
    """Check the dataset in ``dataset_dir``; an empty list means it is consistent.

    The catalogue defaults to the vocabulary named in ``dataset.json`` (else ``deepscores``).
    """
    root = Path(dataset_dir)
    report = _Report(root)
    if not root.is_dir():
        report.add(root, "not a folder")
        return report.defects
    catalogue = catalogue or _dataset_catalogue(root, report)
    names = _page_names(root, report)
    records = {}
    for name in sorted(names):
        record = _check_page(root, name, catalogue, report)
        if record is not None:
            records[name] = record
    splits = _check_splits(root, names, report)
    _check_coco(root, records, splits, catalogue, report)
    _check_yolo(root, records, splits, catalogue, report)
    check_instance_rle(root, records, report)
    check_obb_anns(root, records, splits, catalogue, report)
    return report.defects


def _dataset_catalogue(root: Path, report: _Report) -> Catalogue:
    path = root / "dataset.json"
    try:
        if path.is_file():
            classes = json.loads(path.read_text(encoding="utf-8")).get("options", {}).get("classes")
            if classes:
                return load_catalogue(classes)
    except (OSError, ValueError, AttributeError, DeepScoresError) as exc:
        report.add(path, f"cannot tell the class vocabulary: {exc}")
    return load_catalogue()


def _page_names(root: Path, report: _Report) -> set[str]:
    """Pages with every file present; each missing file is a defect."""
    found = {folder: {p.name[: -len(suffix)] for p in (root / folder).glob(f"*{suffix}") if not p.name.startswith(".")}
             for folder, suffix in PAGE_FOLDERS.items()}
    every = set().union(*found.values())
    for folder, suffix in PAGE_FOLDERS.items():
        for name in sorted(every - found[folder]):
            report.add(root / folder / f"{name}{suffix}", "missing")
    return set.intersection(*found.values())


# -- one page ------------------------------------------------------------------------------------
def _read(path: Path, report: _Report, dtype: type, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        array = read_png(path)
    except DeepScoresError as exc:
        report.add(path, str(getattr(exc, "cause", exc)))
        return None
    if array.dtype != dtype or array.shape != shape:
        report.add(path, f"expected {np.dtype(dtype).name} {shape[1]}x{shape[0]}, found {array.dtype} {array.shape[1]}x{array.shape[0]}")
        return None
    return array


def _check_page(root: Path, name: str, catalogue: Catalogue, report: _Report) -> PageRecord | None:
    xml_path = root / "xml_annotations" / f"{name}.xml"
    try:
        record = read_page_xml(xml_path)
    except DeepScoresError as exc:
        report.add(xml_path, str(getattr(exc, "cause", exc)))
        return None
    if record.filename != f"{name}.png":
        report.add(xml_path, f"<filename> is {record.filename!r}, expected {name + '.png'!r}")
    shape = (record.height, record.width)
    objects_ok = _check_objects(xml_path, record, catalogue, report)
    _read(root / "images_png" / f"{name}.png", report, np.uint8, shape)
    mask_path, inst_path = root / "pix_annotations_png" / f"{name}.png", root / "instance_png" / f"{name}.png"
    mask = _read(mask_path, report, np.uint8, shape)
    instances = _read(inst_path, report, np.uint16, shape)
    if mask is not None:
        counts = np.bincount(mask.ravel(), minlength=256)
        valid = set(catalogue.ids)
        bad = [int(v) for v in np.flatnonzero(counts) if v != BACKGROUND_CLASS and int(v) not in valid]
        if bad:
            report.add(mask_path, f"values {bad[:5]} are neither class ids of {catalogue.name!r} nor background")
            mask = None
    if instances is not None and objects_ok:
        _check_instances(inst_path, record, instances, report)
        if mask is not None:
            _check_mask_agrees(mask_path, record, mask, instances, catalogue, report)
    return record


def _check_objects(xml_path: Path, record: PageRecord, catalogue: Catalogue, report: _Report) -> bool:
    ok = True
    seen: set[int] = set()
    for index, obj in enumerate(record.objects, start=1):
        x0, y0, x1, y1 = obj.bbox_xyxy
        where = f"object {index} ({obj.class_name}, instance {obj.instance_id})"
        if obj.class_name not in catalogue:
            report.add(xml_path, f"{where}: no class {obj.class_name!r} in vocabulary {catalogue.name!r}")
            ok = False
        if not (0 <= x0 < x1 <= record.width and 0 <= y0 < y1 <= record.height):
            report.add(xml_path, f"{where}: box {obj.bbox_xyxy} is empty or outside the {record.width}x{record.height} page")
        if obj.instance_id < 1 or obj.instance_id in seen:
            report.add(xml_path, f"{where}: instance id {obj.instance_id} is not positive or not unique")
            ok = False
        seen.add(obj.instance_id)
    return ok


def _check_instances(path: Path, record: PageRecord, instances: np.ndarray, report: _Report) -> None:
    by_id = {obj.instance_id: obj for obj in record.objects}
    t = BOX_TOLERANCE_PX
    spans = ndimage.find_objects(instances)
    for instance_id, found in enumerate(spans, start=1):
        obj = by_id.get(instance_id)
        if obj is None:
            if found is not None:
                report.add(path, f"instance {instance_id} has pixels but no object in the XML")
            continue
        if found is None:
            if not obj.hidden:
                report.add(path, f"instance {instance_id} ({obj.class_name}) has no pixels but is not marked hidden")
            continue
        if obj.hidden:
            report.add(path, f"instance {instance_id} ({obj.class_name}) is marked hidden but has pixels")
        rows, cols = found
        x0, y0, x1, y1 = obj.bbox_xyxy
        if cols.start < x0 - t or rows.start < y0 - t or cols.stop > x1 + t or rows.stop > y1 + t:
            report.add(path, f"instance {instance_id} ({obj.class_name}): pixels span "
                             f"({cols.start}, {rows.start}, {cols.stop}, {rows.stop}), outside its box {obj.bbox_xyxy}")
    # find_objects stops at the largest id present; objects above it have no pixels at all.
    beyond = [obj.instance_id for obj in record.objects if obj.instance_id > len(spans) and not obj.hidden]
    if beyond:
        report.add(path, f"instances {beyond[:5]} have no pixels but are not marked hidden")


def _check_mask_agrees(path: Path, record: PageRecord, mask: np.ndarray, instances: np.ndarray,
                       catalogue: Catalogue, report: _Report) -> None:
    top = max([int(instances.max()), *(obj.instance_id for obj in record.objects)])
    class_of = np.full(top + 1, BACKGROUND_CLASS, dtype=np.uint8)
    for obj in record.objects:
        class_of[obj.instance_id] = catalogue.id_of(obj.class_name)
    wrong = class_of[instances] != mask
    count = int(np.count_nonzero(wrong))
    if count:
        row, col = divmod(int(np.flatnonzero(wrong)[0]), mask.shape[1])
        report.add(path, f"{count} pixels disagree with the instance map, first at x={col} y={row} "
                         f"(class {int(mask[row, col])}, instance {int(instances[row, col])} says {int(class_of[instances[row, col]])})")


# -- splits, COCO, YOLO --------------------------------------------------------------------------
def _score_of(page: str) -> str:
    return page.split("-p", 1)[0]


def _check_splits(root: Path, names: set[str], report: _Report) -> dict[str, list[str]] | None:
    """The pages of each split, or None when the dataset has no ``splits/`` folder."""
    folder = root / "splits"
    if not folder.is_dir():
        return None
    splits: dict[str, list[str]] = {}
    for split in SPLITS:
        path = folder / f"{split}.txt"
        try:
            splits[split] = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            report.add(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}")
            splits[split] = []
    split_of_score: dict[str, str] = {}
    listed: set[str] = set()
    for split, pages in splits.items():
        path = folder / f"{split}.txt"
        for page in pages:
            if page in listed:
                report.add(path, f"page {page} is listed twice")
            elif page not in names:
                report.add(path, f"page {page} is not in the dataset")
            listed.add(page)
            first = split_of_score.setdefault(_score_of(page), split)
            if first != split:
                report.add(path, f"score {_score_of(page)} (page {page}) is also in split {first!r}")
    for page in sorted(names - listed):
        report.add(root / "xml_annotations" / f"{page}.xml", "page is in no split")
    return splits


def _expected(record: PageRecord) -> Counter[_Box]:
    return Counter((obj.class_name, obj.bbox_xyxy) for obj in record.objects)


def _compare(path: Path, page: str, found: Counter[_Box], record: PageRecord, report: _Report) -> None:
    expected = _expected(record)
    if found != expected:
        missing, extra = expected - found, found - expected
        example = next(iter(missing or extra))
        report.add(path, f"page {page}: {sum(missing.values())} box(es) missing and {sum(extra.values())} extra "
                         f"against the XML, e.g. {'missing' if missing else 'extra'} {example[0]} {example[1]}")


def _compare_pages(path: Path, found: list[str], splits: dict[str, list[str]] | None, split: str, report: _Report) -> None:
    if splits is not None and set(found) != set(splits[split]):
        missing, extra = set(splits[split]) - set(found), set(found) - set(splits[split])
        report.add(path, f"pages differ from splits/{split}.txt: {len(missing)} missing, {len(extra)} extra, "
                         f"e.g. {sorted(missing or extra)[0]}")


def read_json_file(path: Path, report: _Report, kind: str, parse: Callable[[Any], T]) -> T | None:
    """``parse`` of the JSON in ``path``, or None after reporting why not: the file cannot be read,
    or it (or what ``parse`` looks for in it) is not ``kind``. One wording for every JSON checker."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        report.add(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        report.add(path, f"not {kind}: {type(exc).__name__}: {exc}")
    return None


def _check_coco(root: Path, records: dict[str, PageRecord], splits: dict[str, list[str]] | None,
                catalogue: Catalogue, report: _Report) -> None:
    if not (root / "coco").is_dir():
        return
    categories = [{"id": catalogue.id_of(n), "name": n} for n in catalogue.names]
    for split in SPLITS:
        path = root / "coco" / f"{split}.json"

        def boxes_by_page(data: Any) -> dict[str, Counter[_Box]]:
            pages = {image["id"]: image["file_name"].removesuffix(".png") for image in data["images"]}
            found: dict[str, Counter[_Box]] = {page: Counter() for page in pages.values()}
            for ann in data["annotations"]:
                x, y, w, h = (round(v) for v in ann["bbox"])
                name = dict(catalogue.items()).get(ann["category_id"], f"#{ann['category_id']}")
                found[pages[ann["image_id"]]][(name, (x, y, x + w, y + h))] += 1
            if [{"id": c["id"], "name": c["name"]} for c in data["categories"]] != categories:
                report.add(path, f"categories differ from vocabulary {catalogue.name!r}")
            return found

        found = read_json_file(path, report, "a COCO file this dataset writes", boxes_by_page)
        if found is None:
            continue
        _compare_pages(path, list(found), splits, split, report)
        for page, boxes in found.items():
            if page in records:
                _compare(path, page, boxes, records[page], report)


_NAME_LINE = re.compile(r"\s+(\d+):\s*(.+)")


def _check_yolo(root: Path, records: dict[str, PageRecord], splits: dict[str, list[str]] | None,
                catalogue: Catalogue, report: _Report) -> None:
    yolo = root / "yolo"
    if not yolo.is_dir():
        return
    try:
        text = (yolo / "data.yaml").read_text(encoding="utf-8")
        names = [json.loads(m.group(2)) for line in text.splitlines() if (m := _NAME_LINE.fullmatch(line))]
        if names != list(catalogue.names):
            report.add(yolo / "data.yaml", f"names differ from vocabulary {catalogue.name!r}")
    except (OSError, ValueError) as exc:
        report.add(yolo / "data.yaml", f"cannot read: {getattr(exc, 'strerror', None) or exc}")
    for split in SPLITS:
        path = yolo / f"{split}.txt"
        try:
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
        except (OSError, UnicodeDecodeError) as exc:
            report.add(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}")
            continue
        pages = [line.removeprefix("./images/").removesuffix(".png") for line in lines]
        _compare_pages(path, pages, splits, split, report)
        for page in pages:
            image = yolo / "images" / f"{page}.png"
            if not (image.exists() and image.resolve() == (root / "images_png" / f"{page}.png").resolve()):
                report.add(image, f"does not lead to images_png/{page}.png")
            if page in records:
                _check_label(yolo / "labels" / f"{page}.txt", page, records[page], catalogue, report)


def _check_label(path: Path, page: str, record: PageRecord, catalogue: Catalogue, report: _Report) -> None:
    found: Counter[_Box] = Counter()
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            index, cx, cy, w, h = line.split()
            cls, cx, cy, w, h = int(index), float(cx) * record.width, float(cy) * record.height, float(w) * record.width, float(h) * record.height
            name = catalogue.names[cls] if 0 <= cls < len(catalogue) else f"#{cls}"
            found[(name, (round(cx - w / 2), round(cy - h / 2), round(cx + w / 2), round(cy + h / 2)))] += 1
    except (OSError, UnicodeDecodeError) as exc:
        report.add(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}")
        return
    except ValueError as exc:
        report.add(path, f"line {number}: expected 'class cx cy w h': {exc}")
        return
    _compare(path, page, found, record, report)
