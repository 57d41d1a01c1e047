"""Where `deepscores stats` reads a dataset from: page XMLs (a fast exact path and the checked
fallback), COCO files when there are no XMLs, and the manifest and splits for the breakdowns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from deepscores.formats.deepscores_xml import read_page_xml

SPLITS = ("train", "val", "test")

@dataclass
class _PageData:
    """The fields of one page that the statistics need."""

    name: str
    width: int
    height: int
    font: str
    score_id: str
    class_names: list[str]
    boxes: np.ndarray  # (n, 4) int64 xyxy, pixel edges
    hidden: int = 0
    occluded: int = 0


# -- fast reading of the files page_xml writes ------------------------------------------------------
# A regex over the bytes reads a page 3-4x faster than read_page_xml (benchmarks/stats.py).
# It only accepts files laid out exactly as page_xml writes them; anything else (other whitespace,
# entities, a DOCTYPE, a truncated file) goes through read_page_xml, which either reads it or says
# precisely what is wrong. No entity is ever expanded on either path.
_OBJECT_RE = re.compile(
    rb"<object>\s*<name>([^<&]*)</name>\s*<bndbox>\s*<xmin>([^<]*)</xmin>\s*<ymin>([^<]*)</ymin>"
    rb"\s*<xmax>([^<]*)</xmax>\s*<ymax>([^<]*)</ymax>\s*</bndbox>")
_SIZE_RE = re.compile(rb"<size>\s*<width>(\d+)</width>\s*<height>(\d+)</height>")
_FONT_RE = re.compile(rb"<font>([^<&]*)</font>")
_SCORE_RE = re.compile(rb"<score_id>([^<&]*)</score_id>")


def _fast_page(name: str, data: bytes) -> _PageData | None:
    if b"<!" in data or not data.rstrip().endswith(b"</annotation>"):
        return None
    first = data.find(b"<object>")
    head = data if first < 0 else data[:first]
    size = _SIZE_RE.search(head)
    if size is None:
        return None
    width, height = int(size.group(1)), int(size.group(2))
    matches = _OBJECT_RE.findall(data)
    if width <= 0 or height <= 0 or len(matches) != data.count(b"<object>"):
        return None
    # numpy parses the bytes itself (measured faster than float() per number or np.fromstring).
    try:
        fractions = np.array([m[1:] for m in matches], dtype=np.float64).reshape(-1, 4)
    except ValueError:
        return None
    if not np.isfinite(fractions).all():
        return None
    # Same rounding as read_page_xml: round(float * extent), half to even.
    boxes = np.rint(fractions * np.array([width, height, width, height], dtype=np.float64)).astype(np.int64)
    font, score = _FONT_RE.search(head), _SCORE_RE.search(head)
    return _PageData(name, width, height, font.group(1).decode().strip() if font else "",
                     score.group(1).decode().strip() if score else "", [m[0].decode().strip() for m in matches], boxes,
                     data.count(b"<hidden>1</hidden>"), data.count(b"<occluded>1</occluded>"))


def _read_page(path: Path, name: str) -> _PageData:
    """One page's data; raises DeepScoresError naming the file when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        data = b""  # read_page_xml below words the error
    page = _fast_page(name, data) if data else None
    if page is not None:
        return page
    record = read_page_xml(path)
    boxes = np.array([o.bbox_xyxy for o in record.objects], dtype=np.int64).reshape(-1, 4)
    return _PageData(name, record.width, record.height, record.font, record.score_id,
                     [o.class_name for o in record.objects], boxes,
                     sum(o.hidden for o in record.objects), sum(o.occluded for o in record.objects))


def _coco_pages(root: Path) -> Iterator[tuple[str, _PageData | None, str]]:
    """Pages of a dataset that has COCO files but no page XMLs: one split file in memory at a time."""
    for split in SPLITS:
        path = root / "coco" / f"{split}.json"
        if not path.is_file():
            continue
        try:
            coco = json.loads(path.read_text(encoding="utf-8"))
            categories = {c["id"]: c["name"] for c in coco["categories"]}
            per_image: dict[int, list[dict]] = {}
            for ann in coco["annotations"]:
                per_image.setdefault(ann["image_id"], []).append(ann)
            for image in coco["images"]:
                anns = per_image.get(image["id"], [])
                xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
                boxes = np.rint(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)).astype(np.int64)
                name = PurePath(image["file_name"]).stem
                yield name, _PageData(name, int(image["width"]), int(image["height"]), "", "",
                                      [categories[a["category_id"]] for a in anns], boxes,
                                      sum(bool(a.get("hidden")) for a in anns),
                                      sum(bool(a.get("occluded")) for a in anns)), ""
        except (OSError, ValueError, KeyError, TypeError) as exc:
            yield f"coco/{split}.json", None, f"{path}: cannot read COCO file: {type(exc).__name__}: {exc}"


# -- what the dataset says about each page ----------------------------------------------------------
def _source_group(source: str) -> str:
    """The corpus folder of a score: 'bach' for music21's bach/bwv66.6.mxl, else the file's folder name."""
    if source.startswith("music21:"):
        parts = PurePath(source[len("music21:"):]).parts
        return parts[0] if len(parts) > 1 else "music21"
    parts = PurePath(source).parts
    for i in range(len(parts) - 2, 0, -1):
        # Absolute paths into music21's corpus (what the manifest stores), on any machine.
        if parts[i] == "corpus" and parts[i - 1] == "music21":
            return parts[i + 1] if len(parts) > i + 2 else "music21"
    return PurePath(source).parent.name or "unknown"


def _page_groups(root: Path) -> tuple[dict[str, str], dict[str, str], list[dict[str, str]]]:
    """page → split, page → source group, and the defects found reading splits and manifest."""
    split_of: dict[str, str] = {}
    source_of: dict[str, str] = {}
    defects: list[dict[str, str]] = []
    for split in SPLITS:
        path = root / "splits" / f"{split}.txt"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").split():
                split_of[line] = split
    manifest = root / "manifest.jsonl"
    if manifest.is_file():
        for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
                group = _source_group(str(entry["source"]))
                for page in entry.get("pages") or ():
                    source_of[page["name"]] = group
            except (ValueError, KeyError, TypeError) as exc:
                defects.append({"page": "", "file": "manifest.jsonl",
                                "error": f"{manifest}:{number}: unreadable line ({type(exc).__name__})"})
    return split_of, source_of, defects


