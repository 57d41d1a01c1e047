"""Segmentation: metrics on hand-made masks, tiling, crops, loading errors, a tiny training run on real page
crops, resume, evaluation and prediction files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deepscores.annotate import score_pages  # noqa: E402
from deepscores.classes import load_catalogue  # noqa: E402
from deepscores.engrave import EngraveOptions  # noqa: E402
from deepscores.errors import DeepScoresError  # noqa: E402
from deepscores.evaluation.segment import (confusion_matrix, evaluate_segment, predict_segment,  # noqa: E402
                                           segmentation_metrics, top_classes)
from deepscores.formats.pngio import read_png, write_png  # noqa: E402
from deepscores.ml.models import create_model, list_models  # noqa: E402
from deepscores.ml.segment_data import IGNORE_INDEX, LabelMap, SegmentCrops, load_page, read_label_map  # noqa: E402
from deepscores.ml.segment_infer import predict_page, tile_spans  # noqa: E402
from deepscores.ml.train_segment import sampled_loss, train_segment  # noqa: E402
from tests.musicxml import note, rest, score, write  # noqa: E402

PAGE_PX = (416, 640)  # (height, width) kept of each engraved page: its first systems


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # On a shared 2-core machine two OpenMP threads wait on each other far more than they gain.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- metrics ----------------------------------------------------------------------------------------
def test_known_confusion_gives_the_hand_computed_ious():
    label_map = LabelMap((5, 7, 9), ("a", "b", "c"))
    truth = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 0, 0, 1, 3, 1, 1, 1, 0, 2, 2, 1])
    m = segmentation_metrics(confusion_matrix(truth, pred, 4), label_map)
    # b: 3 right of 4 true, 5 predicted → 3 / (4 + 5 − 3); c: 2 / (3 + 2 − 2); "c"'s id 9 never in truth.
    assert m["per_class"] == {"a": {"class_id": 5, "IoU": 0.5, "truth_px": 4, "pred_px": 5},
                              "b": {"class_id": 7, "IoU": 0.66667, "truth_px": 3, "pred_px": 2},
                              "c": {"class_id": 9, "IoU": None, "truth_px": 0, "pred_px": 1}}
    assert m["mIoU"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-5)   # the absent class is not averaged
    assert m["classes_in_truth"] == 2 and m["top10_classes"] == ["a", "b"]
    assert m["background_IoU"] == pytest.approx(4 / 7, abs=1e-5)
    assert m["pixel_accuracy"] == pytest.approx(9 / 13, abs=1e-5)
    assert m["foreground_pixel_accuracy"] == pytest.approx(5 / 7, abs=1e-5)


def test_perfect_prediction_scores_one():
    truth = np.random.default_rng(0).integers(0, 6, (40, 30))
    m = segmentation_metrics(confusion_matrix(truth, truth, 6))
    assert m["mIoU"] == m["mIoU_top10"] == m["pixel_accuracy"] == m["foreground_pixel_accuracy"] == 1.0


def test_top10_takes_the_classes_with_most_truth_pixels():
    # Index i (1..12) has 100 + i truth pixels, except 3 and 8 which have 5 each; all right but 3 and 8.
    counts = {i: (5 if i in (3, 8) else 100 + i) for i in range(1, 13)}
    truth = np.concatenate([np.full(c, i) for i, c in counts.items()])
    pred = np.where(np.isin(truth, (3, 8)), 0, truth)
    cm = confusion_matrix(truth, pred, 13)
    assert top_classes(cm) == [12, 11, 10, 9, 7, 6, 5, 4, 2, 1]
    m = segmentation_metrics(cm)
    assert m["mIoU_top10"] == 1.0 and m["mIoU"] == pytest.approx(10 / 12, abs=1e-5)
    # A tie goes to the lower index.
    assert top_classes(confusion_matrix(np.array([2, 1, 3, 3]), np.array([2, 1, 3, 3]), 4), k=2) == [3, 1]


# -- models and tiling ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models("segment"))
def test_every_unet_maps_a_page_crop_to_full_resolution_logits(name):
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 64, 96)).shape == (2, 7, 64, 96)


@pytest.mark.parametrize("length", [16, 96, 100 * 4, 2688, 1904, 4688])
def test_tiles_partition_the_canvas_and_keep_half_the_overlap_from_inner_edges(length):
    spans = tile_spans(length, 256, 64, 16) if length % 16 == 0 else tile_spans(length, 256, 64, 4)
    assert spans[0][2] == 0 and spans[-1][3] == length and spans[-1][1] == length
    for (s, e, a, b), (s2, _, a2, _) in zip(spans, spans[1:]):
        assert b == a2 and s % 4 == 0 and e - s == spans[0][1] - spans[0][0]
        assert e - b >= 32 and a2 - s2 >= 32  # owned pixels lie ≥ overlap / 2 inside both neighbours


def test_tiled_prediction_equals_the_whole_page_prediction():
    torch.manual_seed(0)
    model = create_model("unet_small", num_classes=5, widths=(4, 8, 8)).eval()
    assert model.receptive_radius_px == 26 and model.stride == 4
    rng = np.random.default_rng(0)
    image = np.full((203, 301), 255, np.uint8)
    image[rng.random(image.shape) < 0.2] = 0
    tiled = predict_page(model, image, torch.device("cpu"), tile_px=96, overlap_px=56, return_logits=True)
    canvas = torch.zeros(1, 1, 204, 304)
    canvas[0, 0, :203, :301] = torch.from_numpy(255 - image).float() / 255
    with torch.no_grad():
        whole = model(canvas)[0, :, :203, :301].numpy()
    assert len(tile_spans(304, 96, 56, 4)) > 3
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    labels = predict_page(model, image, torch.device("cpu"), tile_px=96, overlap_px=56)
    assert labels.dtype == np.uint8 and (labels == whole.argmax(0)).all()


# -- data -------------------------------------------------------------------------------------------
def _engrave_dataset(root: Path, tmp_path: Path) -> None:
    """Three tiny scores (one per split), each page cut to its first systems to keep the tests fast."""
    catalogue = load_catalogue()
    bars = {"train": [note("C", 5), note("E", 5, "half", 2), rest()],
            "val": [rest(), note("G", 4), note("B", 4, "half", 2)],
            "test": [note("D", 5, "half", 2), rest(), note("F", 4)]}
    for split, bar in bars.items():
        source = write(tmp_path, score(*["".join(bar)] * 24), f"{split}.musicxml")
        names = []
        for page in score_pages(source, EngraveOptions(font="Bravura")):
            name = f"{page.score_id}-p{page.page_number:03d}-bravura"
            names.append(name)
            h, w = PAGE_PX
            write_png(root / "images_png" / f"{name}.png", np.ascontiguousarray(page.image[120:120 + h, 100:100 + w]))
            write_png(root / "pix_annotations_png" / f"{name}.png",
                      np.ascontiguousarray(page.class_mask[120:120 + h, 100:100 + w]))
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names[:1]))
    classes = [{"id": i, "name": n} for i, n in catalogue.items()]
    (root / "dataset.json").write_text(json.dumps({"classes": classes}))


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segdata")
    _engrave_dataset(root, tmp_path_factory.mktemp("scores"))
    return root


def test_crops_are_exact_seeded_and_independent_of_order(seg_data):
    label_map = read_label_map(seg_data)
    assert label_map.num_outputs == 125 and label_map.class_ids[:2] == (1, 2)
    crops = SegmentCrops(seg_data, "train", label_map, 8, crop_px=128, seed=3, jitter=False)
    x, y = crops[(1, 5)]
    again = SegmentCrops(seg_data, "train", label_map, 8, crop_px=128, seed=3, jitter=False)
    again[(0, 0)]
    x2, y2 = again[(1, 5)]
    assert torch.equal(x, x2) and torch.equal(y, y2) and not torch.equal(crops[(2, 5)][1], y)
    # Labels are the page's own (no flip, no resampling): the crop is the page's window at its origin.
    name, top, left, _ = crops.crop_origin(1, 5)
    image, labels = load_page(seg_data, name, label_map.index_lut())
    window = (slice(top, top + 128), slice(left, left + 128))
    kept = y != IGNORE_INDEX
    assert 0.05 < kept.float().mean() < 0.6 and (y[kept] > 0).any()
    assert torch.equal(torch.from_numpy(labels[window].astype(np.int64))[kept], y[kept])
    assert torch.equal((x[0] * 255).round().to(torch.uint8), torch.from_numpy(255 - image[window]))


@pytest.mark.parametrize("damage", ["missing", "corrupt", "unknown class"])
def test_bad_mask_is_a_one_line_error_naming_it(seg_data, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(seg_data, copy)
    page = (copy / "splits" / "train.txt").read_text().split()[0]
    mask = copy / "pix_annotations_png" / f"{page}.png"
    if damage == "missing":
        mask.unlink()
    elif damage == "corrupt":
        mask.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    else:
        write_png(mask, np.full(PAGE_PX, 200, np.uint8))
    with pytest.raises(DeepScoresError) as info:
        SegmentCrops(copy, "train", read_label_map(copy), 4, crop_px=64)[(0, 0)]
    assert str(mask) in str(info.value) and "\n" not in str(info.value)


# -- training ---------------------------------------------------------------------------------------
def test_a_few_steps_lower_the_loss(seg_data):
    torch.manual_seed(0)
    label_map = read_label_map(seg_data)
    crops = SegmentCrops(seg_data, "train", label_map, 4, crop_px=128, jitter=False)
    x, y = (torch.stack(t) for t in zip(*(crops[(0, i)] for i in range(4))))
    model = create_model("unet_small", num_classes=label_map.num_outputs, widths=(8, 16, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    weights = torch.ones(label_map.num_outputs)
    losses = []
    for _ in range(15):
        loss, _, _ = sampled_loss(model, x, y, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.fixture(scope="module")
def trained_run(seg_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("segrun")
    train_segment(seg_data, run, epochs=2, steps_per_epoch=2, batch_size=2, device="cpu", progress=False)
    return run


def test_run_folder_holds_config_history_and_checkpoints(trained_run):
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"] == "unet_small" and config["class_ids"][:3] == [1, 2, 3] and config["crop_px"] == 320
    history = json.loads((trained_run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(0 <= row["val_mIoU"] <= 1 and row["crops"] == 4 for row in history)
    assert (trained_run / "best.pt").is_file() and (trained_run / "class_weights.json").is_file()


def test_resume_continues_from_the_checkpoint(trained_run, seg_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with pytest.raises(DeepScoresError, match="a run exists here"):
        train_segment(seg_data, run, epochs=3, steps_per_epoch=2, batch_size=2, device="cpu", progress=False)
    with pytest.raises(DeepScoresError, match="cannot resume with different batch_size"):
        train_segment(seg_data, run, epochs=3, steps_per_epoch=2, batch_size=1, device="cpu", progress=False,
                      resume=True)
    before = json.loads((run / "history.json").read_text())
    train_segment(seg_data, run, epochs=3, steps_per_epoch=2, batch_size=2, device="cpu", progress=False,
                  resume=True, workers=0)
    after = json.loads((run / "history.json").read_text())
    assert after[:2] == before and after[2]["epoch"] == 3
    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == 3


def test_evaluate_and_predict_write_their_files(trained_run, seg_data, tmp_path):
    metrics = evaluate_segment(trained_run, seg_data, split="test", device="cpu", overlays=1)
    folder = trained_run / "eval-test"
    assert json.loads((folder / "metrics.json").read_text())["mIoU"] == metrics["mIoU"]
    assert metrics["pages"] == 1 and metrics["pages_per_s"] > 0 and 0 <= metrics["pixel_accuracy"] <= 1
    assert (folder / "metrics.md").read_text().startswith("# unet_small on test (1 pages)")
    overlay = next(folder.glob("overlay-*.png"))
    assert overlay.stat().st_size > 0
    page = (seg_data / "splits" / "test.txt").read_text().split()[0]
    written = predict_segment(trained_run, [seg_data / "images_png" / f"{page}.png"], tmp_path / "pred", device="cpu")
    mask = read_png(written[0])
    assert written[0].name == f"{page}.png" and mask.shape == PAGE_PX and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {255, *read_label_map(seg_data).class_ids}


def test_cli_predict_tells_a_segmentation_run_from_a_detection_run(trained_run, seg_data, tmp_path):
    from typer.testing import CliRunner

    from deepscores.cli import app

    page = (seg_data / "splits" / "test.txt").read_text().split()[0]
    out = tmp_path / "masks"
    result = CliRunner().invoke(app, ["predict", str(trained_run), str(seg_data / "images_png" / f"{page}.png"),
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "1 masks in" in result.output and read_png(out / f"{page}.png").shape == PAGE_PX
