"""The COCO protocol (pycocotools' COCOeval, bbox, without its detection cap) on columnar records.

True IoU; per image and class, detections most confident first (ties in input order) each take the
free truth of highest IoU ≥ t (ties: the later truth, as COCOeval), separately at every threshold;
101-point interpolated precision. Ignored truths (crowd, or outside an area range) are matched
last, and whatever matches them, or misses but lies outside the area range, is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from deepscores.evaluation.boxes import box_area
from deepscores.evaluation.matching import candidate_pairs, greedy_match
from deepscores.evaluation.records import Detections, GroundTruth

RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's recThrs

# Box-area ranges in px², inclusive at both ends as COCOeval's are. COCO's own buckets (32², 96²)
# were drawn for photographs; on a 2,700 px music page almost every symbol is "small" or "medium",
# so the music buckets split the sizes symbols really have: dots and stems' thin boxes (< 100),
# noteheads and accidentals (100–400), rests and clefs' smaller parts (400–1,600), and the rest.
COCO_AREA_RANGES: Mapping[str, tuple[float, float]] = {
    "all": (0.0, 1e10), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e10),
}
MUSIC_AREA_RANGES: Mapping[str, tuple[float, float]] = {
    "lt100": (0.0, 100.0), "100-400": (100.0, 400.0), "400-1600": (400.0, 1600.0), "gt1600": (1600.0, 1e10),
}


@dataclass(frozen=True)
class CocoEvaluation:
    """COCOeval's accumulated arrays: precision (T, R, K, A) and recall (T, K, A); -1 = no truth."""

    iou_thresholds: np.ndarray
    class_ids: np.ndarray  # K
    area_ranges: tuple[str, ...]  # A; index 0 is "all"
    precision: np.ndarray
    recall: np.ndarray
    gt_counts: np.ndarray  # (K,) non-ignored truths over all areas
    det_counts: np.ndarray  # (K,) detections scored (after any cap)


def _dets_by_class_and_confidence(dets: Detections) -> np.ndarray:
    """Positions of the detections by class, then most confident first, ties by image then input order."""
    # COCOeval concatenates images in id order, each most-confident-first, then merge-sorts by score.
    return np.lexsort((np.arange(len(dets)), dets.image_ids, -dets.scores, dets.class_ids))


def evaluate_coco(gt: GroundTruth, dets: Detections, boxes: str, iou_thresholds: np.ndarray,
                  class_ids: Sequence[int],
                  area_ranges: Mapping[str, tuple[float, float]] | None = None) -> CocoEvaluation:
    """Match and accumulate as COCOeval does, for every class in ``class_ids`` and area range."""
    ranges = dict(COCO_AREA_RANGES | dict(MUSIC_AREA_RANGES) if area_ranges is None else area_ranges)
    if "all" not in ranges:
        ranges = {"all": COCO_AREA_RANGES["all"], **ranges}
    ranges = {"all": ranges.pop("all"), **ranges}
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    n_det, n_gt = len(dets), len(gt)

    pair_det, pair_gt, pair_iou = candidate_pairs(gt, dets, boxes, "iou")
    # COCOeval accepts an IoU equal to the threshold and never demands more than 1 - 1e-10.
    effective = np.minimum(thresholds, 1 - 1e-10)
    keep = pair_iou >= effective.min() if len(effective) else np.zeros(len(pair_iou), bool)
    pair_det, pair_gt, pair_iou = pair_det[keep], pair_gt[keep], pair_iou[keep]

    # Processing order inside each image and class: most confident first, ties in input order.
    rank = np.empty(n_det, dtype=np.int64)
    rank[np.lexsort((np.arange(n_det), -dets.scores))] = np.arange(n_det)
    gt_area, det_area = box_area(gt.bbox_xyxy), box_area(dets.bbox_xyxy)
    order = _dets_by_class_and_confidence(dets)
    det_class_sorted = dets.class_ids[order]

    class_ids = np.unique(np.asarray(class_ids, dtype=np.int64))
    gt_k, det_k = _class_index(class_ids, gt.class_ids), _class_index(class_ids, dets.class_ids)
    T, R, K, A = len(thresholds), len(RECALL_POINTS), len(class_ids), len(ranges)
    precision = -np.ones((T, R, K, A))
    recall = -np.ones((T, K, A))
    for a, (lo, hi) in enumerate(ranges.values()):
        gt_ignored = gt.ignore | (gt_area < lo) | (gt_area > hi)
        det_outside = (det_area < lo) | (det_area > hi)
        # Preference among a detection's candidates: counted truths before ignored ones, then the
        # highest IoU, then the later truth (COCOeval's scan keeps the last of equal IoUs).
        pref = np.lexsort((-pair_gt, -pair_iou, gt_ignored[pair_gt], rank[pair_det]))
        p_det, p_gt, p_iou = pair_det[pref], pair_gt[pref], pair_iou[pref]
        tp = np.zeros((T, n_det), dtype=bool)
        fp = np.zeros((T, n_det), dtype=bool)
        for t, thr in enumerate(effective):
            valid = p_iou >= thr
            match = greedy_match(p_det[valid], p_gt[valid], n_det, n_gt)
            matched = match >= 0
            det_ignored = np.where(matched, gt_ignored[np.maximum(match, 0)], det_outside)
            tp[t] = matched & ~det_ignored
            fp[t] = ~matched & ~det_ignored
        tp, fp = tp[:, order], fp[:, order]
        counted_gt = np.bincount(gt_k[~gt_ignored], minlength=K + 1)[:K]
        for k, class_id in enumerate(class_ids.tolist()):
            if counted_gt[k] == 0:
                continue
            sel = slice(*np.searchsorted(det_class_sorted, [class_id, class_id + 1]).tolist())
            precision[:, :, k, a], recall[:, k, a] = _accumulate(tp[:, sel], fp[:, sel], counted_gt[k])
    gt_counts = np.bincount(gt_k[~gt.ignore], minlength=K + 1)[:K]
    det_counts = np.bincount(det_k, minlength=K + 1)[:K]
    return CocoEvaluation(thresholds, class_ids, tuple(ranges), precision, recall, gt_counts, det_counts)


def _class_index(class_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in the sorted ``class_ids``; ``len(class_ids)`` for values not in it."""
    index = np.searchsorted(class_ids, values)
    found = index < len(class_ids)
    found[found] = class_ids[index[found]] == values[found]
    return np.where(found, index, len(class_ids))


def _accumulate(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate for one class and area: (T, R) interpolated precision, (T,) recall."""
    tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_sum = np.cumsum(fp, axis=1, dtype=np.float64)
    T = tp.shape[0]
    precision = np.zeros((T, len(RECALL_POINTS)))
    recall = np.zeros(T)
    # Detections ignored at this area range are neither hits nor misses: drop their columns.
    for t in range(T):
        counted = tp[t] | fp[t]
        rc = tp_sum[t][counted] / n_gt
        pr = tp_sum[t][counted] / (tp_sum[t][counted] + fp_sum[t][counted] + np.spacing(1))
        if len(rc) == 0:
            continue
        recall[t] = rc[-1]
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope: best at this recall or more
        idx = np.searchsorted(rc, RECALL_POINTS, side="left")
        ok = idx < len(pr)
        precision[t, ok] = pr[idx[ok]]
    return precision, recall
