"""`show_page`: panels at page scale, box outlines and mask pixels in their class colours, predictions, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepscores.classes import load_catalogue
from deepscores.errors import DeepScoresError
from deepscores.formats.deepscores_xml import read_page_xml
from deepscores.formats.pngio import read_png
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate
from deepscores.show import class_colour, default_crop, render_show, show_page
from tests.musicxml import note, rest, score, write

CATALOGUE = load_catalogue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scores")
    write(folder, score(note("C", 5) + note("E", 5, alter=-1, accidental="flat") + note("G", 5) + rest(),
                        note("D", 5, "half", 2, dots=0) + rest("half", 2)), "two_bars.musicxml")
    out = tmp_path_factory.mktemp("ds") / "ds"
    run_generate(GenerateOptions(sources=(str(folder),), patches_per_class=3, split=(0.0, 0.0, 1.0)),
                 RunSettings(out=out, workers=1, progress=False))
    return out


def _page(dataset: Path) -> str:
    return sorted(p.stem for p in (dataset / "xml_annotations").glob("*.xml"))[0]


def test_palette_is_distinct_and_never_paper_or_ink():
    colours = [class_colour(i) for i in range(1, 255)]
    assert len(set(colours)) == 254
    assert all(not (r == g == b) for r, g, b in colours)  # no grey: the page is grey
    assert class_colour(255) == (255, 255, 255)


def test_boxes_and_mask_carry_class_colours(dataset, tmp_path):
    name = _page(dataset)
    record = read_page_xml(dataset / "xml_annotations" / f"{name}.xml")
    x0s = [o.bbox_xyxy[0] for o in record.objects]
    crop = (max(min(x0s) - 20, 0), 0, 900, 600)
    rgb, layout = render_show(dataset, name, crop=crop)
    assert layout.crop == crop and layout.page == name
    left, top, w, h = layout.panels["boxes"]
    assert (w, h) == (900, 600) and layout.panels["snippet"][2:] == (900, 600)
    # The last object drawn inside the crop owns its outline: the 2 px either side of its left edge.
    inside = [o for o in record.objects if o.bbox_xyxy[0] >= crop[0] + 2 and o.bbox_xyxy[3] <= crop[3] - 2]
    obj = inside[-1]
    x0, y0, x1, y1 = obj.bbox_xyxy
    colour = class_colour(CATALOGUE.id_of(obj.class_name))
    mid = (y0 + y1) // 2 - crop[1]
    for column in (x0 - 1, x0):
        assert tuple(rgb[top + mid, left + column - crop[0]]) == colour
    assert obj.class_name in layout.classes_shown
    # Mask panel: every pixel is its class's colour, background white.
    mask = read_png(dataset / "pix_annotations_png" / f"{name}.png")[crop[1]:crop[1] + 600, crop[0]:crop[0] + 900]
    left, top, w, h = layout.panels["mask"]
    panel = rgb[top:top + h, left:left + w]
    expected = np.array([class_colour(int(v)) for v in range(256)], np.uint8)[mask]
    assert np.array_equal(panel, expected) and (mask != 255).any()
    # Snippet panel: the page's own pixels, unscaled.
    image = read_png(dataset / "images_png" / f"{name}.png")[crop[1]:crop[1] + 600, crop[0]:crop[0] + 900]
    left, top, w, h = layout.panels["snippet"]
    assert np.array_equal(rgb[top:top + h, left:left + w, 0], image)
    # The PNG on disk is the same picture.
    out = show_page(dataset, name, tmp_path / "show.png", crop=crop)
    with Image.open(out) as png:
        assert png.size == (rgb.shape[1], rgb.shape[0]) and np.array_equal(np.asarray(png.convert("RGB")), rgb)


def test_defaults_index_and_patches(dataset, tmp_path):
    name = _page(dataset)
    rgb, layout = render_show(dataset, 0)
    record = read_page_xml(dataset / "xml_annotations" / f"{name}.xml")
    assert layout.page == name and layout.crop == default_crop(record)
    counts = {}
    for o in record.objects:
        counts[o.class_name] = counts.get(o.class_name, 0) + 1
    assert layout.class_name == min(counts, key=lambda n: (-counts[n], n))
    left, top, w, h = layout.panels["patches"]
    assert h == 220 + 2  # one row of 220-px patches plus the frame margin
    _, layout = render_show(dataset, name, class_name="gClef")
    assert layout.class_name == "gClef" and "patches" in layout.panels


def test_predictions_panel(dataset, tmp_path):
    name = _page(dataset)
    coco = json.loads((dataset / "coco" / "test.json").read_text())
    image_id = next(im["id"] for im in coco["images"] if im["file_name"] == f"{name}.png")
    ann = next(a for a in coco["annotations"] if a["image_id"] == image_id)
    preds = [{"image_id": image_id, "category_id": ann["category_id"], "bbox": ann["bbox"], "score": 0.9},
             {"image_id": image_id, "category_id": ann["category_id"], "bbox": [0, 0, 50, 50], "score": 0.1}]
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(preds))
    x, y, w, h = (int(v) for v in ann["bbox"])
    crop = (max(x - 50, 0), max(y - 50, 0), 400, 300)
    rgb, layout = render_show(dataset, name, crop=crop, predictions=path, score_threshold=0.5)
    assert layout.predictions_drawn == 1
    left, top, _, _ = layout.panels["predictions"]
    assert tuple(rgb[top + y + h // 2 - crop[1], left + x - crop[0]]) == class_colour(ann["category_id"])


def test_bad_input(dataset, tmp_path):
    with pytest.raises(DeepScoresError) as info:
        render_show(dataset, "no-such-page")
    assert _page(dataset) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DeepScoresError, match="no page '7'"):
        render_show(dataset, 7)
    with pytest.raises(DeepScoresError, match="crop"):
        render_show(dataset, 0, crop=(5000, 5000, 10, 10))
    with pytest.raises(DeepScoresError, match="no class named"):
        render_show(dataset, 0, class_name="notAClass")
    with pytest.raises(DeepScoresError, match="preds.json: no such file"):
        render_show(dataset, 0, predictions=tmp_path / "preds.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DeepScoresError, match="not a COCO results file"):
        render_show(dataset, 0, predictions=tmp_path / "bad.json")
    with pytest.raises(DeepScoresError, match="not a deepscores dataset"):
        render_show(tmp_path, 0)
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "images_png" / f"{_page(dataset)}.png").unlink()
    with pytest.raises(DeepScoresError) as info:
        render_show(broken, 0)
    assert f"images_png/{_page(dataset)}.png: no such file" in str(info.value)
