"""Detection evaluation's public entry point: load ground truth and predictions, score them under a
protocol ('coco' or the obb_anns toolkit's 'obb-anns') and box kind, and write metrics.json."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepscores.errors import DeepScoresError, OptionsError
from deepscores.evaluation.coco_protocol import evaluate_coco
from deepscores.evaluation.obb_anns_protocol import evaluate_obb_anns
from deepscores.evaluation.records import Detections, GroundTruth, corners_of_xyxy

BoxKind = Literal["aligned", "oriented"]
Protocol = Literal["coco", "obb-anns"]
BOX_KINDS = ("aligned", "oriented")
PROTOCOLS = ("coco", "obb-anns")


def default_iou_thresholds() -> np.ndarray:
    """COCO's thresholds 0.50:0.05:0.95, built as COCOeval builds them (linspace, not arange)."""
    return np.linspace(0.5, 0.95, 10)


class EvaluationInputError(DeepScoresError):
    """A ground-truth or prediction file that cannot be scored. The message names the file."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = " ".join(str(cause).split())
        super().__init__(f"{self.path}: {self.cause}")


# ---------------------------------------------------------------- loading


def _read_json(path: str | Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise EvaluationInputError(path, f"cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise EvaluationInputError(path, f"not JSON: {exc}") from exc


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def _corners(path: str | Path, what: str, rows: list[Any], bbox_xyxy: np.ndarray) -> np.ndarray:
    """(n, 4, 2) corners from optional 8-number ``o_bbox`` rows; the aligned box's where absent."""
    corners = corners_of_xyxy(bbox_xyxy)
    for i, row in enumerate(rows):
        if row is None:
            continue
        value = np.asarray(row, dtype=np.float64)
        if value.size != 8:
            raise EvaluationInputError(path, f"{what} {i}: o_bbox must hold 8 numbers, got {value.size}")
        corners[i] = value.reshape(4, 2)
    return corners


def _coco_ground_truth(path: str | Path, data: dict[str, Any]) -> GroundTruth:
    try:
        images = tuple(sorted(int(img["id"]) for img in data["images"]))
        names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        anns = data["annotations"]
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
        image_ids = np.array([a["image_id"] for a in anns], dtype=np.int64)
        class_ids = np.array([a["category_id"] for a in anns], dtype=np.int64)
        ignore = np.array([bool(a.get("iscrowd", 0)) or bool(a.get("ignore", 0)) for a in anns], dtype=bool)
        o_bbox = [a.get("o_bbox") for a in anns]
    except (KeyError, TypeError, ValueError) as exc:
        raise EvaluationInputError(path, f"not a COCO detection file ({type(exc).__name__}: {exc})") from exc
    bbox = _xywh_to_xyxy(xywh)
    return GroundTruth(image_ids, class_ids, bbox, _corners(path, "annotation", o_bbox, bbox), ignore,
                       images, names, str(path))


def _obb_anns_ground_truth(path: str | Path, data: dict[str, Any], annotation_set: str | None) -> GroundTruth:
    try:
        sets = list(data["annotation_sets"])
        chosen = sets[0] if annotation_set is None else annotation_set
        if chosen not in sets:
            raise EvaluationInputError(path, f"no annotation set {chosen!r}; the file has {sets}")
        set_index = sets.index(chosen)
        names = {int(k): str(v["name"]) for k, v in data["categories"].items() if v["annotation_set"] == chosen}
        images = tuple(sorted(int(img["id"]) for img in data["images"]))
        # Symbols with no class in the chosen set (null) are not part of its ground truth.
        anns = [a for a in data["annotations"].values() if a["cat_id"][set_index] is not None]
        bbox = np.array([a["a_bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
        image_ids = np.array([int(a["img_id"]) for a in anns], dtype=np.int64)
        class_ids = np.array([int(a["cat_id"][set_index]) for a in anns], dtype=np.int64)
        o_bbox = [a.get("o_bbox") for a in anns]
    except EvaluationInputError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise EvaluationInputError(path, f"not an obb_anns file ({type(exc).__name__}: {exc})") from exc
    return GroundTruth(image_ids, class_ids, bbox, _corners(path, "annotation", o_bbox, bbox),
                       np.zeros(len(anns), dtype=bool), images, names, str(path))


def load_coco_ground_truth(path: str | Path) -> GroundTruth:
    """Ground truth from a COCO file (our ``coco/<split>.json``); ``iscrowd``/``ignore`` mark ignored
    boxes and an optional ``o_bbox`` (8 numbers) per annotation gives its oriented box."""
    return _coco_ground_truth(path, _read_json(path))


def load_obb_anns_ground_truth(path: str | Path, annotation_set: str | None = None) -> GroundTruth:
    """Ground truth from a DeepScoresV2 obb_anns file, in one annotation set (default: the first)."""
    return _obb_anns_ground_truth(path, _read_json(path), annotation_set)


def load_ground_truth(path: str | Path, annotation_set: str | None = None) -> GroundTruth:
    """A COCO or obb_anns ground-truth file, told apart by obb_anns' ``annotation_sets`` key."""
    data = _read_json(path)
    if isinstance(data, dict) and "annotation_sets" in data:
        return _obb_anns_ground_truth(path, data, annotation_set)
    if not isinstance(data, dict):
        raise EvaluationInputError(path, "not a COCO or obb_anns ground-truth file (top level is not an object)")
    return _coco_ground_truth(path, data)


def load_predictions(path: str | Path, gt: GroundTruth | None = None) -> Detections:
    """Detections in the COCO results format: ``[{image_id, category_id, bbox [x, y, w, h], score,
    o_bbox (optional, 8 numbers)}]``. With ``gt``, an image or category id it lacks is an error
    naming the first such entry (pycocotools checks image ids the same way)."""
    data = _read_json(path)
    if not isinstance(data, list):
        raise EvaluationInputError(path, "predictions must be a JSON list of {image_id, category_id, bbox, score}")
    try:
        xywh = np.array([p["bbox"] for p in data], dtype=np.float64).reshape(len(data), 4)
        image_ids = np.array([p["image_id"] for p in data], dtype=np.int64)
        class_ids = np.array([p["category_id"] for p in data], dtype=np.int64)
        scores = np.array([p["score"] for p in data], dtype=np.float64)
        o_bbox = [p.get("o_bbox") for p in data]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        bad = _first_malformed(data)
        raise EvaluationInputError(path, f"prediction {bad} is malformed ({type(exc).__name__}: {exc}): "
                                         f"{_short(data[bad]) if bad is not None else ''}") from exc
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise EvaluationInputError(path, f"prediction {bad} has a score that is not a finite number: {_short(data[bad])}")
    bbox = _xywh_to_xyxy(xywh)
    dets = Detections(image_ids, class_ids, bbox, _corners(path, "prediction", o_bbox, bbox), scores, str(path))
    if gt is not None:
        check_ids(dets, gt, data)
    return dets


def _first_malformed(data: list[Any]) -> int | None:
    for i, p in enumerate(data):
        try:
            if len(p["bbox"]) != 4:
                return i
            int(p["image_id"]), int(p["category_id"]), float(p["score"])
        except (KeyError, TypeError, ValueError):
            return i
    return None


def _short(entry: Any) -> str:
    text = json.dumps(entry, separators=(",", ":"))
    return text if len(text) <= 160 else text[:157] + "..."


def check_ids(dets: Detections, gt: GroundTruth, raw: Sequence[Any] | None = None) -> None:
    """Raise naming the predictions file and its first entry whose image or class the truth lacks."""
    bad_image = ~np.isin(dets.image_ids, np.asarray(gt.images, dtype=np.int64))
    bad_class = ~np.isin(dets.class_ids, np.asarray(sorted(gt.class_names), dtype=np.int64))
    bad = bad_image | bad_class
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = (f"image_id {int(dets.image_ids[i])} is not an image of {gt.source}" if bad_image[i]
                else f"category_id {int(dets.class_ids[i])} is not a category of {gt.source}")
        entry = f": {_short(raw[i])}" if raw is not None else ""
        raise EvaluationInputError(dets.source, f"prediction {i}: {what} ({int(bad.sum())} such predictions){entry}")


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class EvalResult:
    """The scores of one evaluation; ``to_dict()`` is what metrics.json holds."""

    protocol: str
    boxes: str
    max_dets: int | None
    iou_thresholds: tuple[float, ...]
    mAP: float
    mAP50: float | None
    mAP75: float | None
    AR: float
    per_class: dict[str, dict[str, Any]]
    by_area: dict[str, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "boxes": self.boxes, "max_dets": self.max_dets,
            "iou_thresholds": list(self.iou_thresholds),
            "mAP": self.mAP, "mAP50": self.mAP50, "mAP75": self.mAP75, "AR": self.AR,
            "AP_by_area": self.by_area, "per_class": self.per_class, "notes": list(self.notes),
        }


def _at(thresholds: np.ndarray, value: float) -> int | None:
    hits = np.flatnonzero(np.isclose(thresholds, value))
    return int(hits[0]) if len(hits) else None


def _cap_per_image_and_class(dets: Detections, max_dets: int) -> Detections:
    """The ``max_dets`` most confident detections of each image and class (COCOeval's maxDets)."""
    order = np.lexsort((np.arange(len(dets)), -dets.scores, dets.class_ids, dets.image_ids))
    group = np.stack([dets.image_ids[order], dets.class_ids[order]], axis=1)
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = np.any(group[1:] != group[:-1], axis=1)
    first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    keep = np.sort(order[np.arange(len(order)) - first < max_dets])
    return dets.take(keep)


def _name(gt: GroundTruth, class_id: int) -> str:
    return gt.class_names.get(class_id, str(class_id))


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if values.size else None


def evaluate_detections(gt: GroundTruth, predictions: Detections, boxes: BoxKind = "aligned",
                        protocol: Protocol = "coco", iou_thresholds: Sequence[float] | np.ndarray | None = None,
                        max_dets: int | None = None, classes: Iterable[int] | None = None) -> EvalResult:
    """Score ``predictions`` against ``gt``. ``iou_thresholds`` default to COCO's 0.50:0.05:0.95;
    ``max_dets`` caps detections per image and class (None: no cap, unlike COCO's 100 per image,
    which silently drops symbols on a music page); ``classes`` restricts to those class ids."""
    if boxes not in BOX_KINDS:
        raise OptionsError(f"boxes must be one of {BOX_KINDS}, not {boxes!r}")
    if protocol not in PROTOCOLS:
        raise OptionsError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    if max_dets is not None and max_dets < 1:
        raise OptionsError(f"max_dets must be at least 1 or None, not {max_dets}")
    thresholds = default_iou_thresholds() if iou_thresholds is None else np.asarray(iou_thresholds, dtype=np.float64)
    if thresholds.size == 0 or np.any((thresholds <= 0) | (thresholds > 1)):
        raise OptionsError("iou_thresholds must be a non-empty list of numbers in (0, 1]")
    dets = predictions
    if classes is not None:
        wanted = np.array(sorted(set(int(c) for c in classes)), dtype=np.int64)
        gt = _restrict(gt, np.isin(gt.class_ids, wanted))
        dets = dets.take(np.isin(dets.class_ids, wanted))
    if max_dets is not None:
        dets = _cap_per_image_and_class(dets, max_dets)
    if protocol == "coco":
        return _coco_result(gt, dets, boxes, thresholds, max_dets)
    return _obb_anns_result(gt, dets, boxes, thresholds, max_dets)


def _restrict(gt: GroundTruth, mask: np.ndarray) -> GroundTruth:
    return GroundTruth(gt.image_ids[mask], gt.class_ids[mask], gt.bbox_xyxy[mask], gt.corners[mask], gt.ignore[mask],
                       gt.images, gt.class_names, gt.source)


def _coco_result(gt: GroundTruth, dets: Detections, boxes: str, thresholds: np.ndarray,
                 max_dets: int | None) -> EvalResult:
    # Classes scored: every class that has a truth or a detection (COCOeval scores the whole table,
    # but a class with neither contributes nothing to any number).
    class_ids = np.unique(np.concatenate([gt.class_ids, dets.class_ids]))
    ev = evaluate_coco(gt, dets, boxes, thresholds, class_ids)
    t50, t75 = _at(thresholds, 0.5), _at(thresholds, 0.75)
    prec_all = ev.precision[..., 0]  # (T, R, K) at area "all"
    has_gt = prec_all[0, 0, :] > -1
    per_class: dict[str, dict[str, Any]] = {}
    for k, class_id in enumerate(ev.class_ids.tolist()):
        counted = bool(has_gt[k])
        per_class[_name(gt, class_id)] = {
            "class_id": class_id,
            "AP": float(prec_all[:, :, k].mean()) if counted else None,
            "AP50": float(prec_all[t50, :, k].mean()) if counted and t50 is not None else None,
            "AP75": float(prec_all[t75, :, k].mean()) if counted and t75 is not None else None,
            "AR": float(ev.recall[:, k, 0].mean()) if counted else None,
            "gt": int(ev.gt_counts[k]), "dets": int(ev.det_counts[k]),
        }
    by_area: dict[str, float | None] = {}
    for a, name in enumerate(ev.area_ranges):
        p = ev.precision[..., a]
        by_area[name] = _mean_or_none(p[p > -1])
    mean_ap = _mean_or_none(prec_all[:, :, has_gt])
    return EvalResult(
        "coco", boxes, max_dets, tuple(thresholds.tolist()),
        mAP=mean_ap if mean_ap is not None else 0.0,
        mAP50=_mean_or_none(prec_all[t50][:, has_gt]) if t50 is not None else None,
        mAP75=_mean_or_none(prec_all[t75][:, has_gt]) if t75 is not None else None,
        AR=_mean_or_none(ev.recall[:, has_gt, 0]) or 0.0, per_class=per_class, by_area=by_area,
        notes=("AP: COCO 101-point interpolated AP averaged over iou_thresholds; mAP: its mean over the "
               "classes present in the ground truth; AR: final recall averaged over thresholds and classes.",
               "AP_by_area: box area in px², inclusive ranges: small ≤ 32², medium 32²–96², large ≥ 96² "
               "(COCO's), lt100, 100-400, 400-1600, gt1600 (for music symbols)."))


def _obb_anns_result(gt: GroundTruth, dets: Detections, boxes: str, thresholds: np.ndarray,
                     max_dets: int | None) -> EvalResult:
    ev = evaluate_obb_anns(gt, dets, boxes, thresholds)
    t50, t75 = _at(thresholds, 0.5), _at(thresholds, 0.75)
    per_class: dict[str, dict[str, Any]] = {}
    for k, class_id in enumerate(ev.class_ids.tolist()):
        per_class[_name(gt, class_id)] = {
            "class_id": class_id,
            "AP_per_threshold": {f"{t:.2f}": float(v) for t, v in zip(thresholds.tolist(), ev.ap[k])},
            "AP": float(ev.ap[k].mean()),
            "AP50": float(ev.ap[k, t50]) if t50 is not None else None,
            "AP75": float(ev.ap[k, t75]) if t75 is not None else None,
            "AR": float(ev.recall[k].mean()),
            "gt": int(ev.gt_counts[k]), "dets": int(ev.det_counts[k]),
        }
    # Derived means (the toolkit reports none): over the classes present in the ground truth; a
    # class with truths but no detections is absent from the toolkit's table and counts as 0 here.
    gt_classes = np.unique(gt.class_ids)
    ap = np.zeros((len(gt_classes), len(thresholds)))
    rec = np.zeros_like(ap)
    rows = {c: k for k, c in enumerate(ev.class_ids.tolist())}
    for i, c in enumerate(gt_classes.tolist()):
        if c in rows:
            ap[i], rec[i] = ev.ap[rows[c]], ev.recall[rows[c]]
    for class_id in gt_classes.tolist():
        if class_id not in rows:
            per_class[_name(gt, class_id)] = {"class_id": class_id, "AP_per_threshold": None, "AP": None,
                                              "AP50": None, "AP75": None, "AR": None,
                                              "gt": int(np.sum(gt.class_ids == class_id)), "dets": 0}
    return EvalResult(
        "obb-anns", boxes, max_dets, tuple(thresholds.tolist()),
        mAP=float(ap.mean()) if ap.size else 0.0,
        mAP50=float(ap[:, t50].mean()) if ap.size and t50 is not None else None,
        mAP75=float(ap[:, t75].mean()) if ap.size and t75 is not None else None,
        AR=float(rec.mean()) if rec.size else 0.0, per_class=per_class,
        notes=("The obb_anns toolkit reports only per_class[*].AP_per_threshold (classes with detections). "
               "mAP, mAP50, mAP75 and AR are means WE DERIVE over the classes present in the ground truth, "
               "a class without detections counting 0; they are not toolkit outputs.",))


# ---------------------------------------------------------------- files


def evaluate_detect_files(gt_path: str | Path, predictions_path: str | Path, boxes: BoxKind = "aligned",
                          protocol: Protocol = "coco", out: str | Path | None = None,
                          max_dets: int | None = None, annotation_set: str | None = None) -> dict[str, Any]:
    """Score a predictions file against a ground-truth file (COCO or obb_anns); write ``out`` if given."""
    gt = load_ground_truth(gt_path, annotation_set)
    dets = load_predictions(predictions_path, gt)
    metrics = evaluate_detections(gt, dets, boxes=boxes, protocol=protocol, max_dets=max_dets).to_dict()
    metrics = {"ground_truth": str(gt_path), "predictions": str(predictions_path), **metrics}
    if out is not None:
        from deepscores.formats.atomic import atomic_write_text

        atomic_write_text(out, json.dumps(metrics, indent=1, ensure_ascii=False) + "\n")
    return metrics


def ground_truth_file(data: str | Path, split: str) -> Path:
    """The ground truth of ``split`` in a dataset folder (``coco/<split>.json``), or ``data`` itself if a file."""
    data = Path(data)
    if data.is_file():
        return data
    path = data / "coco" / f"{split}.json"
    if not path.is_file():
        raise EvaluationInputError(path, f"no ground truth for split {split!r} (is {data} a dataset folder?)")
    return path


def evaluate_detect(data: str | Path, predictions: str | Path, split: str = "test", boxes: BoxKind = "aligned",
                    protocol: Protocol = "coco", out: str | Path | None = None,
                    max_dets: int | None = None) -> dict[str, Any]:
    """``deepscores evaluate detect``: score predictions against a dataset folder's split."""
    return evaluate_detect_files(ground_truth_file(data, split), predictions, boxes, protocol, out, max_dets)
