"""Detection baselines: tiling and seam merging, the centre-heatmap encoding, a few training steps of
both detectors on real generated pages, prediction in the COCO results format (read by pycocotools),
evaluation of a run, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pycocotools.coco import COCO  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from deepscores.cli import app  # noqa: E402
from deepscores.ml.detect_data import ClassIndex, DetectionCrops, collate_crops, load_split  # noqa: E402
from deepscores.ml.detectors import detection_loss  # noqa: E402
from deepscores.ml.models import create_model, list_models  # noqa: E402
from deepscores.ml.models.fcn_detector import STRIDE, decode, encode_targets  # noqa: E402
from deepscores.ml.predict_detect import evaluate_detect_run, predict_detect  # noqa: E402
from deepscores.ml.tiling import BoxSet, Tile, merge_tile_detections, page_tiles, tile_origins  # noqa: E402
from deepscores.ml.train_detect import train_detect  # noqa: E402
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate  # noqa: E402
from tests.musicxml import write_tiny_corpus  # noqa: E402


# -- tiling -----------------------------------------------------------------------------------------
def test_tile_origins_cover_the_page_with_at_least_the_overlap():
    origins = tile_origins(2679, 1024, 192)
    assert origins == [0, 828, 1655]
    assert origins[-1] + 1024 == 2679
    assert all(b - a <= 1024 - 192 for a, b in zip(origins, origins[1:]))
    assert tile_origins(500, 1024, 192) == [0]
    tiles = page_tiles(1894, 2679, 1024, 192)
    assert len(tiles) == 3 * 3 and tiles[-1] == Tile(870, 1655, 1894, 2679)


def _detect_visible(truth: np.ndarray, labels: np.ndarray, tiles: list[Tile]) -> list[BoxSet]:
    """A perfect detector that sees only its tile: every true box's visible part, in tile coordinates."""
    found = []
    for t in tiles:
        clipped = np.clip(truth, [t.x0, t.y0, t.x0, t.y0], [t.x1, t.y1, t.x1, t.y1])
        seen = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        boxes = clipped[seen] - np.array([t.x0, t.y0, t.x0, t.y0], float)
        found.append(BoxSet(boxes, np.full(int(seen.sum()), 0.9), labels[seen]))
    return found


def test_a_box_crossing_a_seam_comes_out_once_and_whole():
    tiles = page_tiles(1000, 1000, 600, 200)  # tiles start at 0 and 400 on both axes
    assert tile_origins(1000, 600, 200) == [0, 400]
    truth = np.array([
        [570.0, 100.0, 610.0, 140.0],   # small, crosses the seam at x = 600: whole in the right tile
        [100.0, 350.0, 130.0, 650.0],   # 300 px tall, larger than the 200 px overlap: whole in no tile
        [700.0, 700.0, 720.0, 715.0],   # in the overlap of nothing: one tile only
        [722.0, 700.0, 742.0, 715.0],   # its neighbour of the same class: not merged with it
    ])
    labels = np.array([3, 5, 3, 3])
    merged = merge_tile_detections(tiles, _detect_visible(truth, labels, tiles), 1000, 1000)
    got = sorted(zip(merged.boxes.tolist(), merged.labels.tolist()))
    assert got == sorted(zip(truth.tolist(), labels.tolist()))


def test_merging_keeps_the_more_confident_of_two_whole_views():
    tiles = [Tile(0, 0, 600, 600), Tile(400, 0, 1000, 600)]
    box = np.array([[450.0, 50.0, 470.0, 70.0]])
    views = [BoxSet(box.copy(), np.array([0.6]), np.array([1])),
             BoxSet(box - [400, 0, 400, 0], np.array([0.8]), np.array([1]))]
    merged = merge_tile_detections(tiles, views, 1000, 600)
    assert merged.boxes.tolist() == box.tolist() and merged.scores.tolist() == [0.8]
    # A box touching the page's own edge is not a cut piece: it stays.
    edge = [BoxSet(np.array([[0.0, 10.0, 12.0, 30.0]]), np.array([0.5]), np.array([2])), BoxSet.empty()]
    assert merge_tile_detections(tiles, edge, 1000, 600).boxes.tolist() == [[0.0, 10.0, 12.0, 30.0]]


# -- the centre-heatmap encoding --------------------------------------------------------------------
def test_encoded_targets_decode_to_the_same_boxes():
    boxes = np.array([[10.0, 20.0, 32.0, 39.0],      # a notehead
                      [40.0, 21.0, 48.0, 28.0],      # a dot beside it
                      [100.0, 4.0, 144.0, 119.0]],   # a clef
                     np.float32)
    labels = np.array([0, 2, 1])
    heatmap, cell, box = encode_targets(boxes, labels, num_classes=3, size_px=128)
    cells = 128 // STRIDE
    assert heatmap.shape == (3, cells, cells) and (heatmap == 1).sum() == 3
    # Peaks sit in the cells holding the centres: notehead (21, 29.5) → cell (5, 7).
    assert heatmap[0, 7, 5] == 1 and cell.tolist()[0] == 7 * cells + 5
    logits = torch.from_numpy(np.where(heatmap == 1, 10.0, -10.0).astype(np.float32))[None]
    regress = torch.zeros(1, 4, cells, cells)
    for c, b in zip(cell, box):
        regress[0, :, c // cells, c % cells] = torch.from_numpy(b)
    found_boxes, scores, classes = decode((logits, regress), score_threshold=0.5)[0]
    order = np.argsort(classes)
    assert classes[order].tolist() == [0, 1, 2]
    np.testing.assert_allclose(found_boxes[order], boxes[[0, 2, 1]], atol=1e-3)


@pytest.mark.parametrize("name", list_models("detect"))
def test_every_registered_detector_finds_boxes_in_a_blank_tile(name):
    from deepscores.ml.detectors import detect_tiles

    model = create_model(name, num_classes=5).eval()
    found = detect_tiles("fcn" if name.startswith("fcn") else "faster-rcnn", model, torch.zeros(1, 1, 128, 96), 0.0)
    assert len(found) == 1 and found[0].boxes.shape[1] == 4
    assert np.all(found[0].labels >= 0) and np.all(found[0].labels < 5)


# -- training, prediction, evaluation on real pages ---------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    sources = write_tiny_corpus(tmp_path_factory.mktemp("scores"))
    out = tmp_path_factory.mktemp("ds") / "ds"
    summary = run_generate(GenerateOptions(sources=(str(sources),), seed=1, patches_per_class=2, split=(0.4, 0.3, 0.3)),
                           RunSettings(out=out, workers=1, progress=False))
    assert summary.pages == 3
    assert all(load_split(out, s).pages for s in ("train", "val", "test"))
    return out


def test_fcn_trains_predicts_coco_results_and_evaluates(dataset, tmp_path):
    run = tmp_path / "run"
    train_detect(dataset, run, detector="fcn", epochs=2, steps_per_epoch=4, batch_size=2, val_pages=0, progress=False)
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "detect" and config["model"] == "fcn_detector_small"
    # Resume continues the same run to a third epoch.
    train_detect(dataset, run, detector="fcn", epochs=3, steps_per_epoch=4, batch_size=2, val_pages=0,
                 progress=False, resume=True)
    assert [row["epoch"] for row in json.loads((run / "history.json").read_text())] == [1, 2, 3]

    test_page = load_split(dataset, "test").pages[0]
    preds = predict_detect(run, [test_page.image_path], tmp_path / "preds.json", score_threshold=0.01, progress=False)
    rows = json.loads(preds.read_text())
    assert rows and {r["image_id"] for r in rows} == {test_page.image_id}
    assert all(len(r["bbox"]) == 4 and r["bbox"][2] > 0 and r["bbox"][3] > 0 and 0 < r["score"] <= 1 for r in rows)
    # The real client reads it against the split's ground truth.
    gt = COCO(str(dataset / "coco" / "test.json"))
    assert len(gt.loadRes(str(preds)).getAnnIds()) == len(rows)

    metrics = evaluate_detect_run(run, dataset, "test", max_pages=1, overlays=1, progress=False)
    assert set(metrics) >= {"mAP", "mAP50", "per_class", "mAP50_top10", "top10_classes", "inference"}
    assert 0.0 <= metrics["mAP50"] <= 1.0 and metrics["max_dets"] is None
    assert "noteheadBlack" in metrics["per_class"]
    assert (run / "eval-test" / "metrics.md").is_file()
    assert len(list((run / "eval-test").glob("overlay-*.png"))) == 1


def test_faster_rcnn_steps_lower_the_loss(dataset):
    train = load_split(dataset, "train")
    classes = ClassIndex(tuple(sorted(train.class_names)))
    images, targets = collate_crops([DetectionCrops(train.pages, classes, 256, seed=3)[0]])
    assert sum(len(t["boxes"]) for t in targets) > 0
    torch.manual_seed(0)
    model = create_model("faster_rcnn_r18", num_classes=len(classes)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(3):
        loss, parts = detection_loss("faster-rcnn", model, images, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(parts) == {"classifier", "box_reg", "objectness", "rpn_box_reg"}
    assert losses[-1] < losses[0]


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tmp_path), str(tmp_path / "page.png")])
    assert result.exit_code == 1 and "config.json" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["evaluate", "detect", str(tmp_path)])
    assert result.exit_code == 1 and "RUN_DIR DATA" in result.output
