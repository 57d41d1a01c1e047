"""The DeepScoresV2 (obb_anns) export, instance RLE sidecars, COCO segmentation and the new XML fields."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from deepscores.classes import load_catalogue
from deepscores.classes_v2 import muscima_id_of
from deepscores.formats.coco import write_coco
from deepscores.formats.deepscores_xml import page_xml, read_page_xml, write_page_xml
from deepscores.formats.obb_anns import BARLINE_COLOR, aligned_corners, categories, obb_anns_dict, write_obb_anns
from deepscores.formats.pngio import read_png, write_png
from deepscores.formats.rle import encode_instance, encode_instances, read_rle, write_rle
from deepscores.page import Page, Symbol
from deepscores.show import draw_oriented_box
from deepscores.stats_sources import _fast_page

from tests.reference import REFERENCE
V2 = load_catalogue("deepscoresv2")


def _with(cls, **kw):
    """A record with the given fields, also those the core does not declare yet (set as attributes)."""
    known = {f.name for f in dataclasses.fields(cls)}
    obj = cls(**{k: v for k, v in kw.items() if k in known})
    for key, value in kw.items():
        if key not in known:
            object.__setattr__(obj, key, value)
    return obj


def _symbol(name: str, box, instance_id: int, **kw) -> Symbol:
    return _with(Symbol, class_id=V2.id_of(name), class_name=name, bbox_xyxy=box, instance_id=instance_id,
                 font="Bravura", **kw)


def _page(score_id: str = "00000000000000aa") -> Page:
    """A 40×30 page: a notehead, a slanted beam (oriented box), a barline and a clef15 (no muscima++
    counterpart), with full-extent masks; the barline covers a column of the beam."""
    height, width = 30, 40
    specs = [
        ("noteheadBlackOnLine", (2, 3, 8, 8), dict(o_bbox=(8.0, 8.0, 8.0, 3.0, 2.0, 3.0, 2.0, 8.0), area_px=24,
                                                    onset=1.5, rel_position=-6)),
        ("beam", (10, 10, 30, 16), dict(o_bbox=(30.0, 12.0, 29.0, 9.0, 10.0, 14.0, 11.0, 17.0), area_px=None,
                                        onset=None, rel_position=None)),
        ("barline", (20, 2, 22, 28), dict(o_bbox=None, area_px=None, onset=0.0, rel_position=None)),
        ("clef15", (32, 20, 36, 25), dict(o_bbox=None, area_px=None, onset=None, rel_position=None)),
    ]
    symbols, masks = [], []
    class_mask = np.full((height, width), 255, np.uint8)
    instance_map = np.zeros((height, width), np.uint16)
    for i, (name, box, extra) in enumerate(specs, start=1):
        x0, y0, x1, y1 = box
        local = np.ones((y1 - y0, x1 - x0), bool)
        if name == "beam":
            local[0, :] = False  # a shape that is not its box: 5 of 6 rows
        symbols.append(_symbol(name, box, i, **extra))
        masks.append((box, local))
        class_mask[y0:y1, x0:x1][local] = V2.id_of(name)
        instance_map[y0:y1, x0:x1][local] = i
    image = np.where(class_mask == 255, 255, 0).astype(np.uint8)
    return _with(Page, image=image, class_mask=class_mask, instance_map=instance_map, symbols=symbols, font="Bravura",
                 score_id=score_id, page_number=1, instance_masks=masks)


def _write_page(root: Path, page: Page, name: str) -> None:
    write_png(root / "images_png" / f"{name}.png", page.image)
    write_png(root / "pix_annotations_png" / f"{name}.png", page.class_mask)
    write_png(root / "instance_png" / f"{name}.png", page.instance_map)
    write_rle(root / "instance_rle" / f"{name}.json.gz", page.instance_masks, page.height, page.width)
    write_page_xml(root / "xml_annotations" / f"{name}.xml", page, name)


def _dataset(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "ds"
    by_split = {}
    for split, score_id in (("train", "00000000000000aa"), ("val", "00000000000000bb"), ("test", "00000000000000cc")):
        name = f"{score_id}-p001-bravura"
        _write_page(root, _page(score_id), name)
        by_split[split] = [(name, read_page_xml(root / "xml_annotations" / f"{name}.xml"))]
    return root, by_split


def _masks_of(root: Path):
    return lambda name: read_rle(root / "instance_rle" / f"{name}.json.gz")


# -- categories -------------------------------------------------------------------------------------
def test_categories_are_the_published_table_in_its_order():
    rows = list(csv.DictReader((REFERENCE / "categories.csv").open(encoding="utf-8")))
    published = {r["id"]: {"name": r["name"], "annotation_set": r["annotation_set"], "color": int(r["color"])}
                 for r in rows}
    strict = categories(load_catalogue("deepscoresv2_strict"))
    assert strict == published
    sample = json.loads((REFERENCE / "deepscores_v2_sample.json").read_text(encoding="utf-8"))
    assert strict == sample["categories"]


def test_barline_is_ours_with_a_colour_no_published_category_uses():
    table = categories(V2)
    assert table["209"] == {"name": "barline", "annotation_set": "deepscores", "color": BARLINE_COLOR}
    published = {v["color"] for k, v in table.items() if k != "209"}
    assert BARLINE_COLOR not in published and 0 not in published
    assert len(table) == 209


# -- the annotation file ------------------------------------------------------------------------------
def _types(entry: dict) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in entry.items()}


def test_file_has_the_reference_keys_and_types_at_every_level(tmp_path):
    root, by_split = _dataset(tmp_path)
    write_obb_anns(root, by_split, V2, _masks_of(root))
    ours = json.loads((root / "obb_anns" / "deepscores_train.json").read_text(encoding="utf-8"))
    ref = json.loads((REFERENCE / "deepscores_v2_sample.json").read_text(encoding="utf-8"))
    assert list(ours) == list(ref)
    assert _types(ours["info"]) == _types(ref["info"])
    assert ours["annotation_sets"] == ref["annotation_sets"]
    ref_category = _types(next(iter(ref["categories"].values())))
    assert all(isinstance(k, str) and _types(v) == ref_category for k, v in ours["categories"].items())
    ref_image = ref["images"][0]
    for image in ours["images"]:
        assert _types(image) == _types(ref_image)
        assert all(isinstance(a, str) for a in image["ann_ids"])
    ref_ann = next(iter(ref["annotations"].values()))
    assert len(ours["annotations"]) == 4
    for key, ann in ours["annotations"].items():
        assert isinstance(key, str) and list(ann) == list(ref_ann)
        for field in ("a_bbox", "o_bbox"):
            assert len(ann[field]) == len(ref_ann[field]) and all(type(v) is float for v in ann[field])
        assert type(ann["area"]) is int and type(ann["img_id"]) is str and type(ann["comments"]) is str
        assert len(ann["cat_id"]) == 2 and type(ann["cat_id"][0]) is str
        assert ann["cat_id"][1] is None or type(ann["cat_id"][1]) is str
    # every image lists exactly its annotations
    for image in ours["images"]:
        assert {a["img_id"] for k, a in ours["annotations"].items() if k in image["ann_ids"]} == {str(image["id"])}


def test_values_cat_ids_comments_areas_and_boxes(tmp_path):
    root, by_split = _dataset(tmp_path)
    data = obb_anns_dict(by_split["train"], V2, segmentations=_masks_of(root))
    notehead, beam, barline, clef15 = (data["annotations"][str(i)] for i in range(1, 5))
    assert notehead["cat_id"] == ["25", str(muscima_id_of(25))] == ["25", "157"]
    assert barline["cat_id"] == ["209", None] and clef15["cat_id"] == [str(V2.id_of("clef15")), None]
    assert notehead["comments"] == "onset:1.5;rel_position:-6;"
    assert barline["comments"] == "onset:0.0;" and beam["comments"] == "" and clef15["comments"] == ""
    assert notehead["area"] == 24           # the symbol's own ink count
    assert beam["area"] == 5 * 20           # no count given: the full-extent mask's pixels
    assert barline["area"] == 2 * 26
    assert notehead["a_bbox"] == [2.0, 3.0, 8.0, 8.0]
    assert beam["o_bbox"] == [30.0, 12.0, 29.0, 9.0, 10.0, 14.0, 11.0, 17.0]
    # no oriented box: the aligned box's corners in the published order (x1,y1),(x1,y0),(x0,y0),(x0,y1)
    assert clef15["o_bbox"] == [36.0, 25.0, 36.0, 20.0, 32.0, 20.0, 32.0, 25.0]
    assert data["images"] == [{"id": 1, "filename": "00000000000000aa-p001-bravura.png", "width": 40, "height": 30,
                               "ann_ids": ["1", "2", "3", "4"]}]
    # without masks and ink counts the area falls back to the box area
    assert obb_anns_dict(by_split["train"], V2)["annotations"]["2"]["area"] == 6 * 20


def test_fallback_corner_order_is_the_published_cyclic_order():
    # The published axis-aligned boxes go bottom-right → top-right → top-left → bottom-left, starting
    # at bottom-right or top-right; the fallback starts at bottom-right.
    ref = json.loads((REFERENCE / "deepscores_v2_sample.json").read_text(encoding="utf-8"))
    cycle = ["RB", "RT", "LT", "LB"]
    seen = 0
    for ann in ref["annotations"].values():
        xs, ys = ann["o_bbox"][0::2], ann["o_bbox"][1::2]
        if len(set(xs)) == 2 and len(set(ys)) == 2:
            order = [("R" if x == max(xs) else "L") + ("B" if y == max(ys) else "T") for x, y in zip(xs, ys)]
            start = cycle.index(order[0])
            assert order == cycle[start:] + cycle[:start]
            seen += 1
    assert seen == 288
    ours = aligned_corners((32, 20, 36, 25))
    assert ours == [36.0, 25.0, 36.0, 20.0, 32.0, 20.0, 32.0, 25.0]


def test_folder_splits_pngs_and_links(tmp_path):
    root, by_split = _dataset(tmp_path)
    write_obb_anns(root, by_split, V2, _masks_of(root))
    out = root / "obb_anns"
    ids = []
    for split in ("train", "val", "test"):
        data = json.loads((out / f"deepscores_{split}.json").read_text(encoding="utf-8"))
        assert [i["filename"] for i in data["images"]] == [f"{n}.png" for n, _ in by_split[split]]
        ids += [i["id"] for i in data["images"]] + [int(a) for a in data["annotations"]]
    assert len(set(ids[0::5])) == 3  # image ids run across the files: 1, 2, 3
    name = by_split["train"][0][0]
    seg = read_png(out / "segmentation" / f"{name}_seg.png")
    assert seg.dtype == np.uint8
    assert seg[5, 5] == 35 and seg[20, 21] == BARLINE_COLOR and seg[0, 0] == 0  # noteheadBlackOnLine's colour is 35
    assert set(np.unique(seg)) == {0, 35, categories(V2)[str(V2.id_of("beam"))]["color"], BARLINE_COLOR,
                                   categories(V2)[str(V2.id_of("clef15"))]["color"]}
    inst = read_png(out / "instance" / f"{name}_inst.png")
    assert inst.dtype == np.uint16 and np.array_equal(inst, read_png(root / "instance_png" / f"{name}.png"))
    assert os.readlink(out / "images" / f"{name}.png") == f"../../images_png/{name}.png"
    assert (out / "images" / f"{name}.png").is_file()
    # a page no split names any more leaves no file behind
    write_obb_anns(root, {"train": by_split["train"], "val": [], "test": []}, V2, _masks_of(root))
    assert len(list((out / "segmentation").iterdir())) == 1 and len(list((out / "images").iterdir())) == 1


def test_v1_vocabulary_is_refused(tmp_path):
    with pytest.raises(Exception, match="DeepScoresV2 vocabulary"):
        write_obb_anns(tmp_path, {}, load_catalogue("deepscores"))


# -- RLE sidecar and COCO segmentation ---------------------------------------------------------------
def test_instance_rle_equals_pycocotools_on_random_masks():
    rng = np.random.default_rng(3)
    for _ in range(400):
        height, width = (int(v) for v in rng.integers(1, 25, 2))
        x0, y0 = int(rng.integers(-3, width)), int(rng.integers(-3, height))
        x1, y1 = x0 + int(rng.integers(0, 30)), y0 + int(rng.integers(0, 30))  # may cover the whole page
        local = rng.random((y1 - y0, x1 - x0)) < rng.random()
        page = np.zeros((height + 60, width + 60), np.uint8)
        page[y0 + 30:y1 + 30, x0 + 30:x1 + 30] = local
        expected = mask_util.encode(np.asfortranarray(page[30:30 + height, 30:30 + width]))["counts"].decode()
        assert encode_instance((x0, y0, x1, y1), local, height, width) == expected


def test_a_page_of_instances_at_once_equals_one_at_a_time():
    """The batched encoder (one diff over every instance) gives each instance's own string, whatever
    its neighbours: boxes off the page, empty masks, boxes as tall as the page, a mask on the last pixel."""
    rng = np.random.default_rng(5)
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(1, 25, 2))
        masks = []
        for _ in range(int(rng.integers(1, 12))):
            x0, y0 = int(rng.integers(-3, width + 2)), int(rng.integers(-3, height + 2))
            x1, y1 = x0 + int(rng.integers(0, 30)), y0 + int(rng.integers(0, 30))
            masks.append(((x0, y0, x1, y1), rng.random((y1 - y0, x1 - x0)) < rng.random()))
        masks.append(((0, 0, width, height), np.ones((height, width), bool)))
        assert encode_instances(masks, height, width) == [encode_instance(b, m, height, width) for b, m in masks]
    assert encode_instances([], 5, 5) == []


def test_sidecar_round_trip_and_pages_without_masks(tmp_path):
    page = _page()
    write_rle(tmp_path / "a.json", page.instance_masks, page.height, page.width)
    rles = read_rle(tmp_path / "a.json")
    assert [int(mask_util.area({"size": r["size"], "counts": r["counts"].encode()})) for r in rles] == [30, 100, 52, 20]
    beam = mask_util.decode({"size": [30, 40], "counts": rles[1]["counts"].encode()})
    assert beam.sum() == 100 and beam[10, 10:30].sum() == 0 and beam[11:16, 10:30].all()
    write_rle(tmp_path / "b.json", None, 30, 40)
    assert read_rle(tmp_path / "b.json") is None and read_rle(tmp_path / "missing.json") is None


def test_coco_segmentation_loads_and_perfect_results_score_ap_1(tmp_path):
    root, by_split = _dataset(tmp_path)
    path = tmp_path / "coco.json"
    write_coco(path, by_split["train"] + by_split["test"], V2, _masks_of(root))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert all(set(a["segmentation"]) == {"size", "counts"} for a in data["annotations"])
    assert data["annotations"][1]["o_bbox"] == [30.0, 12.0, 29.0, 9.0, 10.0, 14.0, 11.0, 17.0]
    assert "o_bbox" not in data["annotations"][3] and data["annotations"][1]["area"] == 6 * 20  # box area kept
    gt = COCO(str(path))
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
                "score": 1.0} for a in data["annotations"]]
    evaluation = COCOeval(gt, gt.loadRes(perfect), "segm")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)
    assert evaluation.stats[1] == pytest.approx(1.0)  # AP at IoU 0.5


def test_coco_without_masks_has_no_segmentation(tmp_path):
    root, by_split = _dataset(tmp_path)
    write_coco(tmp_path / "c.json", by_split["train"], V2)
    assert all("segmentation" not in a for a in json.loads((tmp_path / "c.json").read_text())["annotations"])


# -- XML fields, show, stats ---------------------------------------------------------------------------
def test_xml_carries_the_new_fields_and_old_files_still_read(tmp_path):
    page = _page()
    write_page_xml(tmp_path / "p.xml", page, "p")
    objects = read_page_xml(tmp_path / "p.xml").objects
    assert objects[0].o_bbox == (8.0, 8.0, 8.0, 3.0, 2.0, 3.0, 2.0, 8.0)
    assert (objects[0].area_px, objects[0].onset, objects[0].rel_position) == (24, 1.5, -6)
    assert (objects[1].o_bbox, objects[1].area_px, objects[1].onset) == ((30.0, 12.0, 29.0, 9.0, 10.0, 14.0, 11.0, 17.0),
                                                                          None, None)
    assert objects[2].onset == 0.0 and objects[3].o_bbox is None
    # the fast statistics reader still takes the file
    fast = _fast_page("p", page_xml(page, "p"))
    assert fast is not None and fast.class_names == ["noteheadBlackOnLine", "beam", "barline", "clef15"]
    old = (tmp_path / "p.xml").read_text()
    for tag in ("o_bbox", "area", "onset", "rel_position"):
        old = "\n".join(line for line in old.splitlines() if f"<{tag}>" not in line)
    (tmp_path / "old.xml").write_text(old)
    first = read_page_xml(tmp_path / "old.xml").objects[0]
    assert (first.o_bbox, first.area_px, first.onset, first.rel_position) == (None, None, None, None)
    assert first.bbox_xyxy == (2, 3, 8, 8)


def test_bad_o_bbox_is_a_format_error(tmp_path):
    text = page_xml(_page(), "p").decode().replace("<o_bbox>8.0 8.0", "<o_bbox>8.0", 1)
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(Exception, match=r"bad\.xml: object 1: <o_bbox> is not 8"):
        read_page_xml(tmp_path / "bad.xml")


def test_show_draws_an_oriented_box_along_its_slant():
    rgb = np.zeros((30, 40, 3), np.uint8)
    draw_oriented_box(rgb, (30.0, 12.0, 29.0, 9.0, 10.0, 14.0, 11.0, 17.0), (255, 0, 0))
    red = rgb[..., 0] == 255
    assert red[15, 20] == False  # noqa: E712 - the inside stays clear
    assert red[:, 20].sum() >= 2 and red[10:13, 28].any() and red[14:18, 11].any()
