"""Greedy one-to-one matching of detections to truths over candidate pairs, shared by both protocols."""

from __future__ import annotations

import numpy as np


def greedy_match(pair_det: np.ndarray, pair_gt: np.ndarray, n_det: int, n_gt: int) -> np.ndarray:
    """For each detection the truth it takes, or -1, processing pairs in the order given.

    The caller orders the pairs so that detections come in their processing order (a protocol's
    confidence order within each image and class) and each detection's pairs come in its order of
    preference; a detection takes its first pair whose truth is still free.

    Most pairs are uncontested (the detection has one candidate and the truth one claimant): those
    are matched with array operations, and only the contested rest walks the greedy loop, which
    gives the same answer because an uncontested pair shares no detection or truth with any other.
    """
    match = np.full(n_det, -1, dtype=np.int64)
    if len(pair_det) == 0:
        return match
    per_det = np.bincount(pair_det, minlength=n_det)
    per_gt = np.bincount(pair_gt, minlength=n_gt)
    simple = (per_det[pair_det] == 1) & (per_gt[pair_gt] == 1)
    match[pair_det[simple]] = pair_gt[simple]
    taken = np.zeros(n_gt, dtype=bool)
    contested = ~simple
    for d, g in zip(pair_det[contested].tolist(), pair_gt[contested].tolist()):
        if match[d] < 0 and not taken[g]:
            match[d] = g
            taken[g] = True
    return match


def group_keys(gt_image: np.ndarray, gt_class: np.ndarray, det_image: np.ndarray,
               det_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One int64 key per (image, class) for truths and detections, equal exactly where both are."""
    _, image_index = np.unique(np.concatenate([gt_image, det_image]), return_inverse=True)
    classes, class_index = np.unique(np.concatenate([gt_class, det_class]), return_inverse=True)
    key = image_index.astype(np.int64) * max(len(classes), 1) + class_index
    return key[:len(gt_image)], key[len(gt_image):]


def candidate_pairs(gt, dets, boxes: str, measure: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection, truth, overlap) for every same-image, same-class pair whose boxes share area.

    ``boxes`` is 'aligned' or 'oriented'; ``measure`` is 'iou' or 'enclosing' (the obb_anns
    toolkit's aligned overlap). Oriented pairs are found through their enclosing aligned boxes and
    scored as polygons (the toolkit scores oriented boxes by polygon IoU too).
    """
    from deepscores.evaluation.boxes import (aligned_iou, corner_polygons, enclosing_overlap, enclosing_xyxy,
                                             polygon_iou, same_key_overlapping_pairs)

    gt_key, det_key = group_keys(gt.image_ids, gt.class_ids, dets.image_ids, dets.class_ids)
    if boxes == "aligned":
        d, g = same_key_overlapping_pairs(det_key, dets.bbox_xyxy, gt_key, gt.bbox_xyxy)
        measure_fn = enclosing_overlap if measure == "enclosing" else aligned_iou
        return d, g, measure_fn(dets.bbox_xyxy[d], gt.bbox_xyxy[g])
    d, g = same_key_overlapping_pairs(det_key, enclosing_xyxy(dets.corners), gt_key, enclosing_xyxy(gt.corners))
    # Build each polygon once, then index: a truth may sit in several pairs.
    det_used, det_at = np.unique(d, return_inverse=True)
    gt_used, gt_at = np.unique(g, return_inverse=True)
    det_poly = corner_polygons(dets.corners[det_used])
    gt_poly = corner_polygons(gt.corners[gt_used])
    return d, g, polygon_iou(det_poly[det_at], gt_poly[gt_at])
