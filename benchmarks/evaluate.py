"""Detection evaluator: speed on 1,000 synthetic pages and how far the two protocols differ.

    python benchmarks/evaluate.py            # both tables (speed: 1,000 pages × ~1,000 symbols)
    python benchmarks/evaluate.py --pages 50 # a quicker speed run

Synthetic pages: symbols of 40 classes with a skewed frequency (a few classes, like noteheads,
dominate, as on real pages), sizes 4–60 px, one in five slightly rotated (oriented box ≠ aligned).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from deepscores.evaluation import Detections, GroundTruth, evaluate_detections

N_CLASSES = 40
PAGE_W, PAGE_H = 2000.0, 2800.0


def _rotate(centres: np.ndarray, wh: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    a = np.radians(degrees)[:, None]
    u = np.concatenate([np.cos(a), np.sin(a)], 1) * wh[:, :1] / 2
    v = np.concatenate([-np.sin(a), np.cos(a)], 1) * wh[:, 1:] / 2
    return np.stack([centres - u - v, centres + u - v, centres + u + v, centres - u + v], axis=1)


def _boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(xyxy, corners) of n symbols anywhere on a page."""
    centres = rng.uniform([40, 40], [PAGE_W - 40, PAGE_H - 40], (n, 2))
    wh = rng.uniform(4, 60, (n, 2))
    degrees = np.where(rng.random(n) < 0.2, rng.uniform(-15, 15, n), 0.0)
    corners = _rotate(centres, wh, degrees)
    return np.concatenate([corners.min(1), corners.max(1)], 1), corners


def synthetic_truth(rng: np.random.Generator, pages: int, per_page: int) -> GroundTruth:
    n = pages * per_page
    weights = 1.0 / np.arange(1, N_CLASSES + 1)  # Zipf-like: class 1 is the notehead of this world
    xyxy, corners = _boxes(rng, n)
    return GroundTruth(np.repeat(np.arange(1, pages + 1), per_page),
                       rng.choice(np.arange(1, N_CLASSES + 1), n, p=weights / weights.sum()),
                       xyxy, corners, np.zeros(n, bool), tuple(range(1, pages + 1)),
                       {c: f"class{c}" for c in range(1, N_CLASSES + 1)})


def _jitter(rng: np.random.Generator, gt: GroundTruth, index: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of ``gt[index]`` with each corner moved by sigma × the box size (the same shift applied
    to the oriented corners through their enclosing box's stretch)."""
    xyxy = gt.bbox_xyxy[index]
    size = np.repeat(xyxy[:, 2:] - xyxy[:, :2], 2, axis=0).reshape(-1, 4)
    new = xyxy + rng.normal(0, sigma, xyxy.shape) * size
    new = np.concatenate([np.minimum(new[:, :2], new[:, 2:] - 1), np.maximum(new[:, 2:], new[:, :2] + 1)], 1)
    # Map the oriented corners by the affine map that takes the old aligned box to the new one.
    scale = (new[:, 2:] - new[:, :2]) / (xyxy[:, 2:] - xyxy[:, :2])
    corners = (gt.corners[index] - xyxy[:, None, :2]) * scale[:, None, :] + new[:, None, :2]
    return new, corners


def predictions(rng: np.random.Generator, gt: GroundTruth, scenario: str) -> Detections:
    """Predictions of one scenario: perfect, jittered, duplicates, low-confidence false positives, mixed."""
    n = len(gt)
    index = np.arange(n)
    if scenario == "perfect":
        xyxy, corners, scores = gt.bbox_xyxy, gt.corners, rng.uniform(0.5, 1, n)
    elif scenario == "jittered":
        (xyxy, corners), scores = _jitter(rng, gt, index, 0.05), rng.uniform(0.5, 1, n)
    elif scenario == "duplicates":
        # Every symbol found twice: the copy slightly shifted and a little less confident.
        scores = rng.uniform(0.5, 1, n)
        dup_xyxy, dup_corners = _jitter(rng, gt, index, 0.03)
        xyxy = np.concatenate([gt.bbox_xyxy, dup_xyxy])
        corners = np.concatenate([gt.corners, dup_corners])
        scores = np.concatenate([scores, scores * rng.uniform(0.8, 1, n)])
        index = np.concatenate([index, index])
    elif scenario == "low-conf FPs":
        # Perfect boxes plus 50 % more random boxes of random classes, all less confident.
        m = n // 2
        fp_xyxy, fp_corners = _boxes(rng, m)
        xyxy = np.concatenate([gt.bbox_xyxy, fp_xyxy])
        corners = np.concatenate([gt.corners, fp_corners])
        scores = np.concatenate([rng.uniform(0.5, 1, n), rng.uniform(0.01, 0.3, m)])
        fake = rng.integers(0, n, m)
        image_ids = np.concatenate([gt.image_ids, gt.image_ids[fake]])
        class_ids = np.concatenate([gt.class_ids, rng.integers(1, N_CLASSES + 1, m)])
        return Detections(image_ids, class_ids, xyxy, corners, scores)
    elif scenario == "mixed":
        # What a decent detector gives: 90 % found with jitter, 5 % duplicated, 10 % extra junk.
        found = np.flatnonzero(rng.random(n) < 0.9)
        dup = found[rng.random(len(found)) < 0.05]
        junk = rng.integers(0, n, n // 10)
        a_xyxy, a_corners = _jitter(rng, gt, found, 0.05)
        d_xyxy, d_corners = _jitter(rng, gt, dup, 0.08)
        j_xyxy, j_corners = _boxes(rng, len(junk))
        xyxy = np.concatenate([a_xyxy, d_xyxy, j_xyxy])
        corners = np.concatenate([a_corners, d_corners, j_corners])
        scores = np.concatenate([rng.uniform(0.3, 1, len(found)), rng.uniform(0.2, 0.8, len(dup)),
                                 rng.uniform(0.0, 0.6, len(junk))])
        index = np.concatenate([found, dup, junk])
        class_ids = np.concatenate([gt.class_ids[found], gt.class_ids[dup], rng.integers(1, N_CLASSES + 1, len(junk))])
        return Detections(gt.image_ids[index], class_ids, xyxy, corners, scores)
    else:
        raise ValueError(scenario)
    return Detections(gt.image_ids[index], gt.class_ids[index], xyxy, corners, scores)


def speed_table(pages: int, per_page: int) -> None:
    rng = np.random.default_rng(0)
    gt = synthetic_truth(rng, pages, per_page)
    dets = predictions(rng, gt, "mixed")
    print(f"\nSpeed: {pages:,} pages, {len(gt):,} truths, {len(dets):,} predictions (mixed scenario)\n")
    print("| protocol | boxes    | seconds | mAP    |")
    print("|----------|----------|--------:|-------:|")
    for protocol in ("coco", "obb-anns"):
        for boxes in ("aligned", "oriented"):
            start = time.perf_counter()
            result = evaluate_detections(gt, dets, boxes, protocol)
            print(f"| {protocol:8} | {boxes:8} | {time.perf_counter() - start:7.1f} | {result.mAP:.4f} |", flush=True)


def difference_table(pages: int, per_page: int) -> None:
    print(f"\nProtocols compared: {pages} pages × {per_page} symbols; AP@[.5:.95] (mAP), AP50, AP75; "
          "obb-anns means are our derived means\n")
    print("| scenario | boxes | coco mAP | obb-anns mAP | coco AP50 | obb-anns AP50 | coco AP75 | obb-anns AP75 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for scenario in ("perfect", "jittered", "duplicates", "low-conf FPs", "mixed"):
        for boxes in ("aligned", "oriented"):
            rng = np.random.default_rng(1)
            gt = synthetic_truth(rng, pages, per_page)
            dets = predictions(rng, gt, scenario)
            c = evaluate_detections(gt, dets, boxes, "coco")
            o = evaluate_detections(gt, dets, boxes, "obb-anns")
            print(f"| {scenario} | {boxes} | {c.mAP:.4f} | {o.mAP:.4f} | {c.mAP50:.4f} | {o.mAP50:.4f} "
                  f"| {c.mAP75:.4f} | {o.mAP75:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--per-page", type=int, default=1000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-diff", action="store_true")
    args = parser.parse_args()
    if not args.skip_diff:
        difference_table(50, 300)
    if not args.skip_speed:
        speed_table(args.pages, args.per_page)


if __name__ == "__main__":
    main()
