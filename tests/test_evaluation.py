"""Detection evaluation: hand-made cases with values worked out by hand, equality with pycocotools,
and the obb_anns toolkit's quirks."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from deepscores.errors import DeepScoresError
from deepscores.evaluation import (Detection, Detections, GroundTruth, GroundTruthBox, evaluate_detect_files,
                                   evaluate_detections, load_obb_anns_ground_truth, load_predictions)
from deepscores.evaluation.boxes import aligned_iou, enclosing_overlap
from deepscores.evaluation.obb_anns_protocol import string_score_order

from tests.reference import SAMPLE
BOTH = [("coco", "aligned"), ("coco", "oriented"), ("obb-anns", "aligned"), ("obb-anns", "oriented")]


def rotated_corners(cx: float, cy: float, w: float, h: float, degrees: float) -> list[float]:
    a = np.radians(degrees)
    u, v = np.array([np.cos(a), np.sin(a)]) * w / 2, np.array([-np.sin(a), np.cos(a)]) * h / 2
    c = np.array([cx, cy])
    return np.concatenate([c - u - v, c + u - v, c + u + v, c - u + v]).tolist()


def xyxy_of(corners: list[float]) -> list[float]:
    pts = np.asarray(corners).reshape(4, 2)
    return [*pts.min(0).tolist(), *pts.max(0).tolist()]


def one_class(gt_boxes, det_boxes, scores, class_id=1):
    gt = GroundTruth.from_boxes([GroundTruthBox(1, class_id, b) for b in gt_boxes], images=[1])
    dets = Detections.from_boxes([Detection(1, class_id, b, s) for b, s in zip(det_boxes, scores)])
    return gt, dets


# ---------------------------------------------------------------- both protocols


@pytest.mark.parametrize("protocol,boxes", BOTH)
def test_perfect_predictions_score_one(protocol, boxes):
    rng = np.random.default_rng(0)
    truths, preds = [], []
    for image in (1, 2, 3):
        for i in range(30):
            cls = int(rng.integers(1, 4))
            corners = rotated_corners(*rng.uniform(50, 900, 2), *rng.uniform(8, 60, 2), float(rng.uniform(0, 90)))
            truths.append(GroundTruthBox(image, cls, xyxy_of(corners), corners))
            preds.append(Detection(image, cls, xyxy_of(corners), float(rng.uniform(0.1, 1)), corners))
    result = evaluate_detections(GroundTruth.from_boxes(truths), Detections.from_boxes(preds), boxes, protocol)
    assert result.mAP == pytest.approx(1.0, abs=1e-12)
    assert result.mAP50 == pytest.approx(1.0, abs=1e-12) and result.AR == pytest.approx(1.0)
    assert all(c["AP"] == pytest.approx(1.0, abs=1e-12) for c in result.per_class.values())


@pytest.mark.parametrize("protocol,boxes", BOTH)
def test_box_shifted_below_every_threshold_scores_zero(protocol, boxes):
    # 10×10 box moved 6 px right: IoU 40/160 = 0.25, enclosing overlap 40/160 = 0.25.
    gt, dets = one_class([[0, 0, 10, 10]], [[6, 0, 16, 10]], [0.9])
    assert aligned_iou(dets.bbox_xyxy, gt.bbox_xyxy)[0] == pytest.approx(0.25)
    result = evaluate_detections(gt, dets, boxes, protocol)
    assert result.mAP == 0.0 and result.AR == 0.0


# ---------------------------------------------------------------- coco protocol


def test_coco_duplicate_counts_as_false_positive_after_the_hit():
    # Ranked: hit (P=1, R=1), then the duplicate (P=1/2, R=1): the envelope keeps P=1 up to R=1, AP = 1.0.
    gt, dets = one_class([[0, 0, 10, 10]], [[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8])
    assert evaluate_detections(gt, dets).mAP == pytest.approx(1.0)
    # With two truths and the duplicate ranked before the second hit: ranks hit, FP, hit →
    # P/R = (1, .5), (.5, .5), (2/3, 1); envelope: 1 for R ≤ .5 (51 points), 2/3 above (50 points).
    gt, dets = one_class([[0, 0, 10, 10], [50, 0, 60, 10]], [[0, 0, 10, 10], [0, 0, 10, 10], [50, 0, 60, 10]],
                         [0.9, 0.8, 0.7])
    assert evaluate_detections(gt, dets).mAP == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)


def test_coco_rotated_box_at_iou_0_6_counts_at_0_5_not_at_0_75():
    truth = rotated_corners(100, 100, 40, 10, 30)
    # Same centre and angle, longer box: IoU = 40/(40/0.6) = 0.6 exactly for polygons.
    pred = rotated_corners(100, 100, 40 / 0.6, 10, 30)
    gt = GroundTruth.from_boxes([GroundTruthBox(1, 1, xyxy_of(truth), truth)])
    dets = Detections.from_boxes([Detection(1, 1, xyxy_of(pred), 0.9, pred)])
    result = evaluate_detections(gt, dets, "oriented", "coco", iou_thresholds=[0.5, 0.75])
    assert result.mAP50 == pytest.approx(1.0) and result.mAP75 == 0.0
    assert result.mAP == pytest.approx(0.5)


def test_coco_no_detection_cap_unless_asked():
    gt = GroundTruth.from_boxes([GroundTruthBox(1, 1, [i * 20, 0, i * 20 + 10, 10]) for i in range(150)])
    dets = Detections.from_boxes([Detection(1, 1, [i * 20, 0, i * 20 + 10, 10], 1 - i / 1000) for i in range(150)])
    assert evaluate_detections(gt, dets).AR == pytest.approx(1.0)
    assert evaluate_detections(gt, dets, max_dets=100).AR == pytest.approx(100 / 150)


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    truths, preds = [], []
    for image in range(1, 7):
        for _ in range(int(rng.integers(5, 40))):
            cls = int(rng.integers(1, 5))
            x, y = rng.uniform(0, 300, 2)
            w, h = rng.uniform(3, 120, 2)
            truths.append(GroundTruthBox(image, cls, [x, y, x + w, y + h]))
            for _ in range(int(rng.integers(0, 3))):  # 0, 1 or 2 detections per truth: misses and duplicates
                j = rng.normal(0, 0.05, 4) * [w, h, w, h]
                # Scores on a coarse grid so that ties (within and across images) are common.
                preds.append(Detection(image, cls, [x + j[0], y + j[1], x + w + j[2], y + h + j[3]],
                                       float(np.round(rng.uniform(0, 1), 1))))
        for _ in range(int(rng.integers(0, 15))):  # false positives, some of class 5 which has no truth
            x, y = rng.uniform(0, 300, 2)
            w, h = rng.uniform(3, 50, 2)
            preds.append(Detection(image, int(rng.integers(1, 6)), [x, y, x + w, y + h], float(rng.uniform(0, 1))))
    return GroundTruth.from_boxes(truths, images=range(1, 8)), Detections.from_boxes(preds)


def _pycocotools(gt: GroundTruth, dets: Detections) -> tuple[dict[int, float], float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    wh = gt.bbox_xyxy[:, 2:] - gt.bbox_xyxy[:, :2]
    coco_gt = COCO()
    coco_gt.dataset = {
        "images": [{"id": i} for i in gt.images],
        "categories": [{"id": c} for c in range(1, 6)],
        "annotations": [{"id": n + 1, "image_id": int(gt.image_ids[n]), "category_id": int(gt.class_ids[n]),
                         "bbox": [*gt.bbox_xyxy[n, :2].tolist(), *wh[n].tolist()], "area": float(wh[n].prod()),
                         "iscrowd": 0} for n in range(len(gt))],
    }
    dwh = dets.bbox_xyxy[:, 2:] - dets.bbox_xyxy[:, :2]
    results = [{"image_id": int(dets.image_ids[n]), "category_id": int(dets.class_ids[n]),
                "bbox": [*dets.bbox_xyxy[n, :2].tolist(), *dwh[n].tolist()], "score": float(dets.scores[n])}
               for n in range(len(dets))]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.maxDets = [1, 100, 10000]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, 2]  # area "all", 10,000 detections
    recall = ev.eval["recall"][:, :, 0, 2]
    per_class = {c: float(precision[:, :, k].mean()) for k, c in enumerate(ev.params.catIds) if precision[0, 0, k] > -1}
    by_area = {}
    for a, name in enumerate(("all", "small", "medium", "large")):
        p = ev.eval["precision"][:, :, :, a, 2]
        by_area[name] = float(p[p > -1].mean())
    return per_class, float(precision[precision > -1].mean()), float(recall[recall > -1].mean()), by_area


@pytest.mark.parametrize("seed", [1, 2])
def test_coco_protocol_equals_pycocotools(seed):
    gt, dets = _random_case(seed)
    expected_per_class, expected_map, expected_ar, expected_by_area = _pycocotools(gt, dets)
    result = evaluate_detections(gt, dets, "aligned", "coco")
    got = {c["class_id"]: c["AP"] for c in result.per_class.values() if c["AP"] is not None}
    assert got.keys() == expected_per_class.keys()
    for class_id, ap in expected_per_class.items():
        assert got[class_id] == pytest.approx(ap, abs=1e-6)
    assert result.mAP == pytest.approx(expected_map, abs=1e-6)
    assert result.AR == pytest.approx(expected_ar, abs=1e-6)
    for name, ap in expected_by_area.items():
        assert result.by_area[name] == pytest.approx(ap, abs=1e-6), name
    assert 0.2 < result.mAP < 0.9  # a case with misses, duplicates and false positives, not a trivial one


# ---------------------------------------------------------------- obb-anns protocol


def test_enclosing_overlap_is_not_iou():
    a, b = np.array([[0.0, 0, 10, 10]]), np.array([[2.0, 2, 12, 12]])
    assert aligned_iou(a, b)[0] == pytest.approx(64 / 136)
    assert enclosing_overlap(a, b)[0] == pytest.approx(64 / 144)
    # A detection offset diagonally, 10×10 at (1, 1): IoU = 81/119 ≈ 0.681, overlap = 81/121 ≈ 0.669,
    # so at a threshold of 0.675 it is a hit for COCO and a miss for the toolkit.
    gt, dets = one_class([[0, 0, 10, 10]], [[1, 1, 11, 11]], [0.9])
    thresholds = [0.65, 0.675]
    coco = evaluate_detections(gt, dets, protocol="coco", iou_thresholds=thresholds)
    toolkit = evaluate_detections(gt, dets, protocol="obb-anns", iou_thresholds=thresholds)
    assert coco.mAP == pytest.approx(1.0)  # 0.681 passes both thresholds
    assert toolkit.per_class["1"]["AP_per_threshold"] == pytest.approx({"0.65": 1.0, "0.68": 0.0})


def test_obb_anns_least_confident_detection_reserves_the_truth():
    # One truth; a weak sloppy detection (overlap 0.5) and a strong exact one (overlap 1.0).
    gt, dets = one_class([[0, 0, 10, 10]], [[0, 0, 10, 20], [0, 0, 10, 10]], [0.3, 0.9])
    toolkit = evaluate_detections(gt, dets, protocol="obb-anns", iou_thresholds=[0.5, 0.75])
    # The weak one is matched first and keeps the truth with overlap 0.5; the exact one is a false
    # positive. Ranked by score: FP (P=0), then hit at 0.5 (P=1/2, R=1) → AP50 = 0.5; at 0.75 no hit.
    assert toolkit.per_class["1"]["AP_per_threshold"] == pytest.approx({"0.50": 0.5, "0.75": 0.0})
    coco = evaluate_detections(gt, dets, protocol="coco", iou_thresholds=[0.5, 0.75])
    assert coco.mAP == pytest.approx(1.0)  # the exact one matches first, at every threshold


def test_obb_anns_reservation_needs_overlap_above_0_2():
    # A detection covering the top fifth of its truth: overlap = IoU = 20/100 = 0.2, which does not
    # reserve (the toolkit wants > 0.2), so it is a false positive even at a threshold of 0.1.
    gt, dets = one_class([[0, 0, 10, 10]], [[0, 0, 10, 2]], [0.9])
    assert enclosing_overlap(dets.bbox_xyxy, gt.bbox_xyxy)[0] == pytest.approx(0.2)
    assert evaluate_detections(gt, dets, protocol="obb-anns", iou_thresholds=[0.1]).mAP == 0.0
    assert evaluate_detections(gt, dets, protocol="coco", iou_thresholds=[0.1]).mAP == pytest.approx(1.0)


def test_obb_anns_sorts_scores_as_strings():
    scores = np.array([0.9, 10.0, 0.85, 1e-05])
    # As text, descending: '1e-05' > '10.0' > '0.9' > '0.85' (numerically 10 > 0.9 > 0.85 > 1e-05).
    assert string_score_order(scores).tolist() == [3, 1, 0, 2]


def test_obb_anns_string_sort_changes_ap():
    # Two truths. Scores 10.0 (hit), 0.9 (false positive), 0.1 (hit) rank the same as numbers and
    # as text ('10.0' > '0.9' > '0.1'): hit, FP, hit → P/R (1, .5), (.5, .5), (2/3, 1) → AP = .5 + .5·2/3.
    gt, dets = one_class([[0, 0, 10, 10], [50, 0, 60, 10]], [[0, 0, 10, 10], [100, 0, 110, 10], [50, 0, 60, 10]],
                         [10.0, 0.9, 0.1])
    assert evaluate_detections(gt, dets, protocol="obb-anns", iou_thresholds=[0.5]).mAP == pytest.approx(5 / 6)
    # Scores 2.0 (FP), 10.0 (hit), 0.5 (hit): numerically hit, FP, hit (AP 5/6), but as text
    # '2.0' > '10.0' > '0.5' → FP, hit, hit → P/R (0, 0), (1/2, 1/2), (2/3, 1) → AP = .5·2/3 + .5·2/3.
    gt, dets = one_class([[0, 0, 10, 10], [50, 0, 60, 10]], [[100, 0, 110, 10], [0, 0, 10, 10], [50, 0, 60, 10]],
                         [2.0, 10.0, 0.5])
    assert evaluate_detections(gt, dets, protocol="obb-anns", iou_thresholds=[0.5]).mAP == pytest.approx(2 / 3)
    # COCO ranks numerically: hit, FP, hit → 101-point AP = (51·1 + 50·2/3) / 101.
    assert evaluate_detections(gt, dets, protocol="coco", iou_thresholds=[0.5]).mAP == pytest.approx((51 + 50 * 2 / 3) / 101)


def test_obb_anns_oriented_uses_polygon_iou():
    truth = rotated_corners(100, 100, 40, 10, 30)
    pred = rotated_corners(100, 100, 40 / 0.6, 10, 30)
    gt = GroundTruth.from_boxes([GroundTruthBox(1, 1, xyxy_of(truth), truth)])
    dets = Detections.from_boxes([Detection(1, 1, xyxy_of(pred), 0.9, pred)])
    result = evaluate_detections(gt, dets, "oriented", "obb-anns", iou_thresholds=[0.5, 0.75])
    assert result.per_class["1"]["AP_per_threshold"] == pytest.approx({"0.50": 1.0, "0.75": 0.0})


# ---------------------------------------------------------------- files


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _coco_file(tmp_path: Path) -> Path:
    return _write_json(tmp_path / "test.json", {
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
        "categories": [{"id": 3, "name": "noteheadBlack"}, {"id": 4, "name": "stem"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 12, 10], "area": 120, "iscrowd": 0},
                        {"id": 2, "image_id": 1, "category_id": 4, "bbox": [21, 0, 2, 20], "area": 40, "iscrowd": 0}],
    })


def test_files_round_trip_and_metrics_json(tmp_path):
    gt_path = _coco_file(tmp_path)
    preds = _write_json(tmp_path / "preds.json", [
        {"image_id": 1, "category_id": 3, "bbox": [10, 10, 12, 10], "score": 0.9},
        {"image_id": 1, "category_id": 4, "bbox": [40, 40, 2, 20], "score": 0.8}])
    for protocol in ("coco", "obb-anns"):
        out = tmp_path / f"{protocol}.json"
        metrics = evaluate_detect_files(gt_path, preds, "aligned", protocol, out=out)
        assert json.loads(out.read_text()) == json.loads(json.dumps(metrics))
        assert metrics["per_class"]["noteheadBlack"]["AP"] == pytest.approx(1.0)
        assert metrics["per_class"]["stem"]["AP"] == 0.0
        assert metrics["mAP"] == pytest.approx(0.5) and metrics["protocol"] == protocol
        assert metrics["per_class"]["stem"]["gt"] == 1 and metrics["per_class"]["stem"]["dets"] == 1


@pytest.mark.parametrize("entry,message", [
    ({"image_id": 7, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.5}, "prediction 1: image_id 7"),
    ({"image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1], "score": 0.5}, "prediction 1: category_id 99"),
    ({"image_id": 1, "category_id": 3, "bbox": [0, 0, 1], "score": 0.5}, "prediction 1 is malformed"),
])
def test_bad_predictions_give_one_line_error_naming_the_file(tmp_path, entry, message):
    gt_path = _coco_file(tmp_path)
    preds = _write_json(tmp_path / "preds.json", [
        {"image_id": 1, "category_id": 3, "bbox": [10, 10, 12, 10], "score": 0.9}, entry])
    with pytest.raises(DeepScoresError) as info:
        evaluate_detect_files(gt_path, preds)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(preds)) and message in text


def test_obb_anns_sample_scores_itself_perfectly(tmp_path):
    gt = load_obb_anns_ground_truth(SAMPLE)
    assert len(gt) == 547 and gt.images == (410,)
    assert gt.class_names[6] == "clefG"
    wh = gt.bbox_xyxy[:, 2:] - gt.bbox_xyxy[:, :2]
    preds = _write_json(tmp_path / "preds.json", [
        {"image_id": 410, "category_id": int(c), "bbox": [*b[:2].tolist(), *s.tolist()], "score": 1.0,
         "o_bbox": o.reshape(-1).tolist()} for c, b, s, o in zip(gt.class_ids, gt.bbox_xyxy, wh, gt.corners)])
    dets = load_predictions(preds, gt)
    for protocol in ("coco", "obb-anns"):
        for boxes in ("aligned", "oriented"):
            assert evaluate_detections(gt, dets, boxes, protocol).mAP == pytest.approx(1.0)


def test_ground_truth_subset_keeps_pages_without_boxes():
    gt = GroundTruth.from_boxes([GroundTruthBox(1, 0, [0, 0, 4, 4]), GroundTruthBox(2, 1, [1, 1, 5, 5]),
                                 GroundTruthBox(3, 0, [2, 2, 6, 6])], images=[1, 2, 3, 4], class_names={0: "a", 1: "b"})
    part = gt.subset([4, 3, 1])
    assert part.images == (1, 3, 4) and part.image_ids.tolist() == [1, 3]
    assert part.bbox_xyxy.tolist() == [[0, 0, 4, 4], [2, 2, 6, 6]] and part.class_names == {0: "a", 1: "b"}
    # Class a: two truths (pages 1, 3), one found. The more confident detection on box-less page 4 is
    # scored as a false positive, so recall 0.5 comes at precision 0.5: 51 of COCO's 101 points × 0.5.
    dets = Detections.from_boxes([Detection(1, 0, [0, 0, 4, 4], 0.9), Detection(4, 0, [0, 0, 4, 4], 0.95)])
    assert evaluate_detections(part, dets).per_class["a"]["AP50"] == pytest.approx(0.5 * 51 / 101)
