"""A faithful reproduction of the obb_anns toolkit's detection metric (``OBBAnns.calculate_metrics``),
the one published DeepScoresV2 numbers were computed with. Its quirks are kept on purpose:

- overlap of aligned boxes = intersection ÷ area of the box enclosing both (not ÷ union);
  oriented boxes are scored by polygon IoU (the toolkit calls DOTA's ``polyiou``);
- matching is done once, per image, least confident detection first: each takes the free truth
  of its class with the largest overlap, if that overlap is > 0.2 (the "reservation"), and keeps
  that overlap; at a threshold t it is a hit when the kept overlap ≥ t, so a weak detection that
  reserved a truth can turn a better, more confident one into a false positive;
- the ranking for precision/recall sorts scores *as strings* (``str(score)``), descending, so
  '0.9' outranks '0.85' but also '10.0' and '1e-05' outrank '0.9';
- AP is the area under the all-point-interpolated precision envelope (VOC's "area" mode), recall
  is over every truth of the class in the file, and the result is per class and threshold only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepscores.evaluation.matching import candidate_pairs, greedy_match
from deepscores.evaluation.records import Detections, GroundTruth

RESERVATION_OVERLAP = 0.2  # the toolkit's "minimum overlap to reserve a gt" (strictly greater)


@dataclass(frozen=True)
class ObbAnnsEvaluation:
    """Per class (only classes with detections, as the toolkit) and threshold: AP, final recall."""

    iou_thresholds: np.ndarray
    class_ids: np.ndarray  # K: the classes that have detections
    ap: np.ndarray  # (K, T)
    recall: np.ndarray  # (K, T)
    gt_counts: np.ndarray  # (K,)
    det_counts: np.ndarray  # (K,)


def match_least_confident_first(gt: GroundTruth, dets: Detections, boxes: str) -> tuple[np.ndarray, np.ndarray]:
    """The toolkit's single matching: for each detection, the truth it reserved (-1) and the overlap kept."""
    n_det = len(dets)
    pair_det, pair_gt, overlap = candidate_pairs(gt, dets, boxes, "enclosing")
    keep = overlap > RESERVATION_OVERLAP
    pair_det, pair_gt, overlap = pair_det[keep], pair_gt[keep], overlap[keep]
    # Least confident first; ties in input order (pandas' sort gives no promise there; we choose one).
    rank = np.empty(n_det, dtype=np.int64)
    rank[np.lexsort((np.arange(n_det), dets.scores))] = np.arange(n_det)
    # Largest overlap first; equal overlaps go to the truth first in the file (pandas' idxmax).
    pref = np.lexsort((pair_gt, -overlap, rank[pair_det]))
    match = greedy_match(pair_det[pref], pair_gt[pref], n_det, len(gt))
    kept = np.zeros(n_det)
    won = match[pair_det] == pair_gt  # the one pair each matched detection took
    kept[pair_det[won]] = overlap[won]
    return match, kept


def string_score_order(scores: np.ndarray) -> np.ndarray:
    """Detections ranked as the toolkit ranks them: ``str(score)`` sorted descending as text.

    The toolkit sorts its stringified rows ascending and reverses the result; we sort stably and
    reverse too, so equal strings come out in reverse input order as well.
    """
    text = np.array([str(float(s)) for s in scores.tolist()], dtype=str)
    return np.argsort(text, kind="stable")[::-1]


def voc_area_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, with recall padded by 0 and 1 and precision by 0 and 0."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def evaluate_obb_anns(gt: GroundTruth, dets: Detections, boxes: str, iou_thresholds: np.ndarray,
                      class_ids: Sequence[int] | None = None) -> ObbAnnsEvaluation:
    """Per-class AP per threshold as the toolkit computes it, for the classes that have detections."""
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    _, kept = match_least_confident_first(gt, dets, boxes)
    classes = np.unique(dets.class_ids)
    if class_ids is not None:
        classes = classes[np.isin(classes, np.asarray(class_ids))]
    ap = np.zeros((len(classes), len(thresholds)))
    recall = np.zeros_like(ap)
    gt_counts = np.array([int(np.sum(gt.class_ids == c)) for c in classes.tolist()], dtype=np.int64)
    det_counts = np.zeros(len(classes), dtype=np.int64)
    for k, class_id in enumerate(classes.tolist()):
        in_class = np.flatnonzero(dets.class_ids == class_id)
        det_counts[k] = len(in_class)
        ranked = kept[in_class[string_score_order(dets.scores[in_class])]]
        for t, thr in enumerate(thresholds.tolist()):
            tp_sum = np.cumsum(ranked >= thr, dtype=np.float64)
            fp_sum = np.cumsum(ranked < thr, dtype=np.float64)
            rc = tp_sum / gt_counts[k] if gt_counts[k] > 0 else tp_sum * 0
            pr = tp_sum / (tp_sum + fp_sum + np.spacing(1))
            ap[k, t] = voc_area_ap(rc, pr)
            recall[k, t] = rc[-1]
    return ObbAnnsEvaluation(thresholds, classes, ap, recall, gt_counts, det_counts)
