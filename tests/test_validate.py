"""The dataset checker: a dataset written by our writers validates clean; each corruption is found in its file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.coco import write_coco
from deepscores.formats.deepscores_xml import read_page_xml
from deepscores.formats.patches import select_patches, write_patches
from deepscores.formats.pngio import read_png, write_png
from deepscores.formats.yolo import write_yolo
from deepscores.validate import Defect, validate_dataset
from tests.test_formats import CATALOGUE, tiny_pages, write_pages

SPLITS = ("train", "val", "test")


def build_dataset(root: Path) -> dict[str, list[str]]:
    """Three one-page scores, one per split, written as the pipeline writes them."""
    pages = tiny_pages()
    write_pages(root, pages)
    by_split = {split: [(name, read_page_xml(root / "xml_annotations" / f"{name}.xml"))] for split, (name, _) in zip(SPLITS, pages)}
    for split, pairs in by_split.items():
        atomic_write_text(root / "splits" / f"{split}.txt", "".join(f"{name}\n" for name, _ in pairs))
        write_coco(root / "coco" / f"{split}.json", pairs, CATALOGUE)
    write_yolo(root / "yolo", by_split, CATALOGUE)
    all_pairs = [pair for pairs in by_split.values() for pair in pairs]
    write_patches(root, select_patches(all_pairs, 2, 0), CATALOGUE, 0, 2)
    return {split: [name for name, _ in pairs] for split, pairs in by_split.items()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("clean")
    return root, build_dataset(root)


@pytest.fixture
def dataset(clean, tmp_path) -> tuple[Path, dict[str, list[str]]]:
    root, splits = clean
    copy = tmp_path / "ds"
    shutil.copytree(root, copy, symlinks=True)
    return copy, splits


def files(defects: list[Defect]) -> set[str]:
    return {d.file for d in defects}


def test_clean_dataset_has_no_defects(clean):
    root, _ = clean
    assert validate_dataset(root) == []


def test_missing_folder_is_a_defect(tmp_path):
    assert [d.message for d in validate_dataset(tmp_path / "nope")] == ["not a folder"]


def test_deleted_mask(dataset):
    root, splits = dataset
    name = splits["train"][0]
    (root / "pix_annotations_png" / f"{name}.png").unlink()
    defects = validate_dataset(root)
    assert Defect(f"pix_annotations_png/{name}.png", "missing") in defects


def test_shifted_box_in_xml(dataset):
    root, splits = dataset
    name = splits["val"][0]
    path = root / "xml_annotations" / f"{name}.xml"
    record = read_page_xml(path)
    obj = next(o for o in record.objects if not o.hidden)
    width = record.width
    old = f"<xmin>{obj.bbox_xyxy[0] / width!r}</xmin>"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, f"<xmin>{(obj.bbox_xyxy[0] + 5) / width!r}</xmin>", 1))
    defects = validate_dataset(root)
    # The instance's pixels now leave the box, and COCO and YOLO no longer agree with the XML.
    assert {f"instance_png/{name}.png", "coco/val.json", f"yolo/labels/{name}.txt"} <= files(defects)
    assert any("outside its box" in d.message for d in defects)


def test_changed_mask_pixel(dataset):
    root, splits = dataset
    name = splits["test"][0]
    path = root / "pix_annotations_png" / f"{name}.png"
    mask = read_png(path)
    rows, cols = np.nonzero(mask != 255)
    mask[rows[0], cols[0]] = 1 if mask[rows[0], cols[0]] != 1 else 2
    write_png(path, mask)
    (defect,) = validate_dataset(root)
    assert defect.file == f"pix_annotations_png/{name}.png"
    assert defect.message.startswith(f"1 pixels disagree with the instance map, first at x={cols[0]} y={rows[0]}")


def test_invalid_mask_value(dataset):
    root, splits = dataset
    name = splits["test"][0]
    path = root / "pix_annotations_png" / f"{name}.png"
    mask = read_png(path)
    mask[0, 0] = 200
    write_png(path, mask)
    (defect,) = validate_dataset(root)
    assert defect.file == f"pix_annotations_png/{name}.png" and "values [200]" in defect.message


def test_dropped_coco_annotation(dataset):
    root, splits = dataset
    path = root / "coco" / "train.json"
    data = json.loads(path.read_text())
    data["annotations"].pop(0)
    path.write_text(json.dumps(data))
    (defect,) = validate_dataset(root)
    assert defect.file == "coco/train.json" and "1 box(es) missing and 0 extra" in defect.message


def test_score_in_two_splits(dataset):
    root, splits = dataset
    name = splits["train"][0]
    with open(root / "splits" / "val.txt", "a") as handle:
        handle.write(f"{name}\n")
    defects = validate_dataset(root)
    assert any(d.file == "splits/val.txt" and "also in split 'train'" in d.message for d in defects)


def test_truncated_png(dataset):
    root, splits = dataset
    name = splits["val"][0]
    path = root / "instance_png" / f"{name}.png"
    path.write_bytes(path.read_bytes()[:200])
    defects = validate_dataset(root)
    assert [d.file for d in defects] == [f"instance_png/{name}.png"]
    assert "cannot read PNG" in defects[0].message


def test_corrupt_xml_is_one_defect_not_a_crash(dataset):
    root, splits = dataset
    name = splits["val"][0]
    (root / "xml_annotations" / f"{name}.xml").write_text("<annotation>")
    defects = validate_dataset(root)
    assert Defect(f"xml_annotations/{name}.xml", defects[0].message) == defects[0]
    assert "malformed XML" in defects[0].message


def test_unknown_class_and_wrong_image_size(dataset):
    root, splits = dataset
    name = splits["train"][0]
    xml = root / "xml_annotations" / f"{name}.xml"
    xml.write_text(xml.read_text().replace("<name>gClef</name>", "<name>trebleClef</name>", 1))
    write_png(root / "images_png" / f"{name}.png", np.zeros((10, 10), np.uint8))
    defects = validate_dataset(root)
    assert any(d.file == f"xml_annotations/{name}.xml" and "no class 'trebleClef'" in d.message for d in defects)
    assert any(d.file == f"images_png/{name}.png" and "expected uint8" in d.message for d in defects)


def test_yolo_label_and_link(dataset):
    root, splits = dataset
    name = splits["test"][0]
    label = root / "yolo" / "labels" / f"{name}.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(["0" + lines[0][lines[0].index(" "):], *lines[1:]]) + "\n")
    (root / "yolo" / "images" / f"{name}.png").unlink()
    assert files(validate_dataset(root)) == {f"yolo/labels/{name}.txt", f"yolo/images/{name}.png"}
