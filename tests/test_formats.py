"""Dataset file formats: PNG round trips, DeepScores XML, COCO (scored by pycocotools), YOLO, patches."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepscores.annotate import score_pages
from deepscores.classes import load_catalogue
from deepscores.errors import DeepScoresError
from deepscores.formats.atomic import atomic_write_bytes, atomic_write_text
from deepscores.formats.coco import coco_dict, write_coco
from deepscores.formats.deepscores_xml import page_xml, read_page_xml, write_page_xml
from deepscores.formats.patches import cut_patch, select_patches, write_patches
from deepscores.formats import pngio
from deepscores.formats.pngio import encode_png, read_png, write_png
from deepscores.formats.yolo import write_yolo
from deepscores.page import Page, Symbol
from tests.musicxml import note, rest, score

CATALOGUE = load_catalogue()

TINY_SCORES = (
    score(note("C", 5) + note("E", 5) + note("G", 5) + rest()),
    score(note("F", 4, "half", 2, alter=1, accidental="sharp") + note("A", 4, "half", 2), fifths=-2, beats=2, beat_type=2),
    score(note("D", 4, "whole", 4, dots=0), clef=("F", 4)),
)


@functools.cache
def tiny_pages() -> tuple[tuple[str, Page], ...]:
    """One page from each tiny score, named as the pipeline names pages."""
    import tempfile

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(TINY_SCORES):
            path = Path(tmp) / f"s{i}.musicxml"
            path.write_text(text, encoding="utf-8")
            page = score_pages(path)[0]
            out.append((f"{page.score_id}-p{page.page_number:03d}-{page.font.lower()}", page))
    return tuple(out)


def write_pages(root: Path, pages) -> None:
    for name, page in pages:
        write_png(root / "images_png" / f"{name}.png", page.image)
        write_png(root / "pix_annotations_png" / f"{name}.png", page.class_mask)
        write_png(root / "instance_png" / f"{name}.png", page.instance_map)
        write_page_xml(root / "xml_annotations" / f"{name}.xml", page, name)


def synthetic_page(width: int = 200, height: int = 100) -> Page:
    image = np.full((height, width), 255, np.uint8)
    mask = np.full((height, width), 255, np.uint8)
    inst = np.zeros((height, width), np.uint16)
    symbols = [Symbol(CATALOGUE.id_of("noteheadBlack"), "noteheadBlack", (10, 20, 25, 32), 1, "Bravura", "noteheadBlack"),
               Symbol(CATALOGUE.id_of("gClef"), "gClef", (0, 0, width, height), 2, "Bravura", "gClef", occluded=True),
               Symbol(CATALOGUE.id_of("accidentalSharp"), "accidentalSharp", (199, 99, 200, 100), 3, "Bravura", "text:<&>", hidden=True)]
    return Page(image, mask, inst, symbols, "Bravura", "abc123", 2)


# -- atomic ----------------------------------------------------------------------------------------
def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one\n")
    atomic_write_bytes(target, b"two", fsync=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# -- PNG -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_exact_in_pillow_and_ours(tmp_path, dtype):
    rng = np.random.default_rng(0)
    array = rng.integers(0, np.iinfo(dtype).max + 1, size=(37, 53), dtype=dtype)
    array[5:9] = 255  # runs, as in label maps
    write_png(tmp_path / "a.png", array)
    back = read_png(tmp_path / "a.png")
    assert back.dtype == dtype and np.array_equal(back, array)
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == ("L" if dtype == np.uint8 else "I;16")
        assert np.array_equal(np.asarray(image), array)
    assert encode_png(array) == encode_png(array.copy())


@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_png_from_other_writers_reads_through_pillow(tmp_path, mode):
    """Files not laid out as ours (Pillow's filters, an extra chunk) take Pillow's path, same values;
    ours with a damaged checksum is refused with the file's name, not decoded."""
    rng = np.random.default_rng(2)
    dtype = np.uint8 if mode == "L" else np.uint16
    array = rng.integers(0, np.iinfo(dtype).max + 1, size=(41, 29), dtype=dtype)
    Image.fromarray(array).save(tmp_path / "pil.png", pnginfo=_text_chunk())
    assert pngio._decode_own((tmp_path / "pil.png").read_bytes()) is None
    back = read_png(tmp_path / "pil.png")
    assert back.dtype == dtype and np.array_equal(back, array)
    ours = bytearray(encode_png(array))
    assert np.array_equal(pngio._decode_own(bytes(ours)), array)
    ours[60] ^= 0xFF  # inside the IDAT: its CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(ours))
    assert pngio._decode_own(bytes(ours)) is None
    with pytest.raises(DeepScoresError, match="bad.png: cannot read PNG"):
        read_png(tmp_path / "bad.png")


def _text_chunk():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "not deepscores")
    return info


def test_png_of_real_page_round_trips_and_is_deterministic(tmp_path):
    _, page = tiny_pages()[0]
    for array in (page.image, page.class_mask, page.instance_map):
        data = encode_png(array)
        assert data == encode_png(array)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), array)


def _png_in_one_piece(array: np.ndarray) -> bytes:
    """The encoder as it was before it went block by block: the whole filtered page in one call."""
    import struct
    import zlib

    from zlib_ng import zlib_ng

    rows = np.ascontiguousarray(array, dtype=">u2" if array.dtype == np.uint16 else np.uint8).view(np.uint8)
    rows = rows.reshape(array.shape[0], -1)
    body = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    body[:, 0] = 2
    body[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=body[1:, 1:])
    compressor = zlib_ng.compressobj(1, zlib_ng.DEFLATED, 15, 8, pngio.strategy(body.size))
    idat = compressor.compress(body) + compressor.flush()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))

    header = struct.pack(">IIBBBBB", array.shape[1], array.shape[0], 8 * array.itemsize, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("shape", [(1, 1), (1, 70000), (3000, 1), (220, 120), (701, 333), (140, 1894)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_blocks_give_the_bytes_of_one_piece(shape, dtype):
    # Random values defeat run-length coding, so any dependence of zlib-ng's output on where the
    # blocks are cut would show; runs and strided input are the other two shapes pages take.
    rng = np.random.default_rng(1)
    array = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    array[: shape[0] // 2, : shape[1] // 3] = 7
    assert encode_png(array) == _png_in_one_piece(array)
    strided = np.repeat(np.repeat(array, 2, axis=0), 2, axis=1)[::2, ::2]
    assert encode_png(strided) == _png_in_one_piece(array)


def test_png_blocks_of_real_pages_give_the_bytes_of_one_piece():
    for _, page in tiny_pages():
        for array in (page.image, page.class_mask, page.instance_map):
            assert encode_png(array) == _png_in_one_piece(array)


def test_png_rejects_bad_arrays_and_reports_bad_files(tmp_path):
    with pytest.raises(ValueError):
        encode_png(np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(ValueError):
        encode_png(np.zeros((3, 3), np.int32))
    with pytest.raises(DeepScoresError, match="missing.png: no such file"):
        read_png(tmp_path / "missing.png")
    good = encode_png(np.arange(10000, dtype=np.uint16).reshape(100, 100))
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DeepScoresError, match="cut.png: cannot read PNG") as info:
        read_png(tmp_path / "cut.png")
    assert "\n" not in str(info.value)
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(DeepScoresError, match="mode 'RGB'"):
        read_png(tmp_path / "rgb.png")


# -- DeepScores XML --------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [1894, 3307])
def test_fractions_give_back_every_pixel_edge(width):
    for x in range(width + 1):
        text = repr(x / width)
        assert round(float(text) * width) == x and float(text) == x / width


def test_xml_round_trip_synthetic(tmp_path):
    page = synthetic_page()
    write_page_xml(tmp_path / "p.xml", page, "abc123-p002-bravura")
    record = read_page_xml(tmp_path / "p.xml")
    assert (record.filename, record.width, record.height, record.depth) == ("abc123-p002-bravura.png", 200, 100, 1)
    assert (record.font, record.score_id, record.page_number) == ("Bravura", "abc123", 2)
    assert [(o.class_name, o.bbox_xyxy, o.instance_id, o.glyph, o.hidden, o.occluded) for o in record.objects] == [
        ("noteheadBlack", (10, 20, 25, 32), 1, "noteheadBlack", False, False),
        ("gClef", (0, 0, 200, 100), 2, "gClef", False, True),
        ("accidentalSharp", (199, 99, 200, 100), 3, "text:<&>", True, False),
    ]
    text = page_xml(page, "abc123-p002-bravura").decode()
    assert "<xmin>0.05</xmin>" in text and "<ymax>0.32</ymax>" in text and "<segmented>0</segmented>" in text


def test_xml_text_is_what_lxml_pretty_prints():
    # page_xml writes text directly for speed; lxml re-serialising the parsed file must give the same
    # bytes (well-formed, escaped, laid out exactly as the fast reader in stats_sources expects).
    from dataclasses import replace

    from lxml import etree

    page = synthetic_page()
    page.symbols[0] = replace(page.symbols[0], o_bbox=(1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), area_px=42,
                              onset=1.5, rel_position=-3)
    for name, p in [("abc123-p002-bravura", page), *tiny_pages()]:
        data = page_xml(p, name)
        again = etree.tostring(etree.fromstring(data), xml_declaration=True, encoding="UTF-8", pretty_print=True)
        assert data == again
    assert b"<o_bbox>1.5 2.0 3.0 4.0 5.0 6.0 7.0 8.0</o_bbox>" in page_xml(page, "x")


def test_xml_round_trip_real_pages(tmp_path):
    for name, page in tiny_pages():
        write_page_xml(tmp_path / f"{name}.xml", page, name)
        record = read_page_xml(tmp_path / f"{name}.xml")
        assert [(o.class_name, o.bbox_xyxy, o.instance_id, o.hidden, o.occluded) for o in record.objects] == [
            (s.class_name, s.bbox_xyxy, s.instance_id, s.hidden, s.occluded) for s in page.symbols]


def test_xml_reads_published_style_file_without_our_extras(tmp_path):
    (tmp_path / "p.xml").write_text(
        "<annotation><folder>x</folder><filename>p.png</filename><size><width>100</width><height>50</height>"
        "<depth>1</depth></size><segmented>0</segmented><object><name>clefG</name><bndbox><xmin>0.1</xmin>"
        "<ymin>0.2</ymin><xmax>0.25</xmax><ymax>0.9</ymax></bndbox></object></annotation>")
    (obj,) = read_page_xml(tmp_path / "p.xml").objects
    assert (obj.class_name, obj.bbox_xyxy, obj.instance_id) == ("clefG", (10, 10, 25, 45), 1)


@pytest.mark.parametrize("content, cause", [
    (None, "no such file"),
    ("<annotation><size>", "malformed XML"),
    ("<annotation><filename>a.png</filename><size><width>9</width><height>9</height></size>"
     "<object><name>x</name></object></annotation>", "object 1: missing <bndbox>"),
    ('<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><annotation><filename>&e;</filename>'
     "<size><width>9</width><height>9</height></size></annotation>", ""),
])
def test_xml_errors_name_file_and_cause(tmp_path, content, cause):
    path = tmp_path / "bad.xml"
    if content is not None:
        path.write_text(content)
    if cause:
        with pytest.raises(DeepScoresError, match=f"bad.xml: {cause}") as info:
            read_page_xml(path)
        assert "\n" not in str(info.value)
    else:  # an external entity is never expanded
        with contextlib.suppress(DeepScoresError):
            assert "root:" not in read_page_xml(path).filename


# -- COCO ------------------------------------------------------------------------------------------
def test_coco_loads_and_scores_perfect_detections_at_ap_1(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    pages = tiny_pages()
    records = []
    for name, page in pages:
        write_page_xml(tmp_path / f"{name}.xml", page, name)
        records.append((name, read_page_xml(tmp_path / f"{name}.xml")))
    write_coco(tmp_path / "coco" / "val.json", records, CATALOGUE)
    data = json.loads((tmp_path / "coco" / "val.json").read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, len(CATALOGUE) + 1))
    assert [i["file_name"] for i in data["images"]] == [f"{name}.png" for name, _ in pages]
    first_symbol = pages[0][1].symbols[0]
    x0, y0, x1, y1 = first_symbol.bbox_xyxy
    first = data["annotations"][0]
    assert first["bbox"] == [x0, y0, x1 - x0, y1 - y0] and first["area"] == (x1 - x0) * (y1 - y0)
    assert first["category_id"] == first_symbol.class_id and first["instance_id"] == 1 and first["id"] == 1
    assert len(data["annotations"]) == sum(len(p.symbols) for _, p in pages)

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "coco" / "val.json"))
        results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                   for a in data["annotations"]]
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.params.maxDets = [1, 100, 1000]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def test_coco_dict_ids_are_global_and_one_based():
    record = read_page_xml_from_page(synthetic_page())
    data = coco_dict([("a", record), ("b", record)], CATALOGUE)
    assert [i["id"] for i in data["images"]] == [1, 2]
    assert [a["id"] for a in data["annotations"]] == [1, 2, 3, 4, 5, 6]
    assert [a["image_id"] for a in data["annotations"]] == [1, 1, 1, 2, 2, 2]


def read_page_xml_from_page(page: Page):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_page_xml(Path(tmp) / "p.xml", page, "p")
        return read_page_xml(Path(tmp) / "p.xml")


# -- YOLO ------------------------------------------------------------------------------------------
def test_yolo_tree(tmp_path):
    record = read_page_xml_from_page(synthetic_page())
    write_pages(tmp_path, [("s1-p001-bravura", synthetic_page())])
    write_yolo(tmp_path / "yolo", {"train": [("s1-p001-bravura", record)]}, CATALOGUE)
    yolo = tmp_path / "yolo"
    lines = (yolo / "labels" / "s1-p001-bravura.txt").read_text().splitlines()
    assert lines[0] == f"{CATALOGUE.id_of('noteheadBlack') - 1} 0.087500 0.260000 0.075000 0.120000"
    assert lines[1] == f"{CATALOGUE.id_of('gClef') - 1} 0.500000 0.500000 1.000000 1.000000"
    link = yolo / "images" / "s1-p001-bravura.png"
    assert os.readlink(link) == "../../images_png/s1-p001-bravura.png"
    assert link.resolve() == (tmp_path / "images_png" / "s1-p001-bravura.png").resolve()
    assert (yolo / "train.txt").read_text() == "./images/s1-p001-bravura.png\n"
    assert (yolo / "val.txt").read_text() == "" and (yolo / "test.txt").read_text() == ""
    yaml = (yolo / "data.yaml").read_text()
    assert "\npath:" not in yaml and "train: train.txt\n" in yaml
    assert '  0: "brace"\n' in yaml and f'  {len(CATALOGUE) - 1}: "{CATALOGUE.names[-1]}"\n' in yaml
    # Rewriting without the page removes its label and link.
    write_yolo(yolo, {"train": []}, CATALOGUE)
    assert not list((yolo / "labels").iterdir()) and not list((yolo / "images").iterdir())


# -- patches ---------------------------------------------------------------------------------------
def test_cut_patch_centres_and_pads_white():
    image = np.arange(300 * 400, dtype=np.uint32).reshape(300, 400).astype(np.uint8)
    patch = cut_patch(image, (100, 100, 110, 120))
    assert patch.shape == (220, 120)
    assert np.array_equal(patch, image[0:220, 45:165])  # centre (105, 110)
    corner = cut_patch(image, (0, 0, 4, 4))
    assert corner.shape == (220, 120) and (corner[:108] == 255).all() and (corner[:, :58] == 255).all()
    assert np.array_equal(corner[108:, 58:], image[:112, :62])


def test_select_patches_is_order_independent_and_bounded():
    pages = [(name, read_page_xml_from_page(page)) for name, page in tiny_pages()]
    chosen = select_patches(pages, 2, seed=7)
    assert chosen == select_patches(list(reversed(pages)), 2, seed=7)
    per_class: dict[str, int] = {}
    for items in chosen.values():
        for _, cls in items:
            per_class[cls] = per_class.get(cls, 0) + 1
    assert max(per_class.values()) <= 2
    available = {o.class_name for _, r in pages for o in r.objects if not o.hidden}
    assert set(per_class) == available
    record = read_page_xml_from_page(synthetic_page())
    assert all(iid != 3 for iid, _ in select_patches([("x", record)], 5, 0)["x"])  # hidden one skipped


def test_write_patches(tmp_path):
    pages = tiny_pages()
    write_pages(tmp_path, pages)
    records = [(name, read_page_xml(tmp_path / "xml_annotations" / f"{name}.xml")) for name, _ in pages]
    selection = select_patches(records, 1, seed=3)
    write_patches(tmp_path, selection, CATALOGUE, 3, 1)
    data = tmp_path / "classification_data"
    files = sorted(p.relative_to(data).as_posix() for p in data.glob("*/*.png"))
    assert files == sorted(f"{cls}/{page}_{iid}.png" for page, items in selection.items() for iid, cls in items)
    page_name, items = next(iter(selection.items()))
    iid, cls = items[0]
    symbol = dict(pages)[page_name].symbols[iid - 1]
    patch = read_png(data / cls / f"{page_name}_{iid}.png")
    assert np.array_equal(patch, cut_patch(dict(pages)[page_name].image, symbol.bbox_xyxy))
    assert (data / "class_names.csv").read_text().startswith("id,name\n1,brace\n2,repeatDot\n")
    config = (data / "config.txt").read_text()
    assert "patch_height=220\npatch_width=120\nper_class=1\nseed=3\n" in config
    assert f"count.{cls}=1\n" in config
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    write_patches(tmp_path, selection, CATALOGUE, 3, 1)
    assert before == {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
