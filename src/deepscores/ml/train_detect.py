"""Train a detector (the FCN centre-heatmap detector or Faster R-CNN). Reads top to bottom: config, seed,
data, model, optimiser, loop (train ``steps_per_epoch`` batches of crops, score a few val pages with
mAP@.5, checkpoint), history.

A run folder holds ``config.json``, ``checkpoint.pt`` (last epoch: model, optimiser, RNG, config, epoch,
history; what ``resume=True`` continues from), ``best.pt`` (best val mAP@.5; what prediction loads) and
``history.csv`` / ``history.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from deepscores.errors import DeepScoresError
from deepscores.evaluation import Detections, GroundTruth, evaluate_detections
from deepscores.evaluation.records import corners_of_xyxy
from deepscores.ml.detect_data import (ClassIndex, DetectionCrops, PageBoxes, collate_crops, load_split,
                                       read_page_image)
from deepscores.ml.detectors import build_detector, detect_page, detection_loss, preset_of, target_transform
from deepscores.ml.runs import (read_checkpoint, resolve_device, restore, save_epoch, seeded, start_run,
                                training_progress)


@dataclass(frozen=True)
class DetectConfig:
    task: str
    data_dir: str
    detector: str
    preset: str
    model: str
    class_ids: tuple[int, ...]   # the model's output k is class id class_ids[k]
    class_names: tuple[str, ...]
    epochs: int
    steps_per_epoch: int
    batch_size: int
    crop_px: int
    lr: float
    device: str
    seed: int = 0
    val_pages: int = 4
    max_minutes: float | None = None
    weights: str | None = None  # a local checkpoint the run started from

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DetectConfig":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["class_ids"], data["class_names"] = tuple(data["class_ids"]), tuple(data["class_names"])
        return cls(**data)


def score_pages(detector: str, model: torch.nn.Module, pages: list[PageBoxes], classes: ClassIndex,
                device: torch.device, preset, iou_thresholds: tuple[float, ...] = (0.5,)) -> float:
    """mAP (COCO protocol, no cap) of ``model`` on whole ``pages`` at ``iou_thresholds``."""
    model.eval()
    gt_rows, det_rows = [], []
    for page in pages:
        found = detect_page(detector, model, read_page_image(page), preset, device)
        gt_rows.append((page.image_id, page.boxes, page.class_ids))
        det_rows.append((page.image_id, found))
    gt = ground_truth_of(gt_rows, {c: str(c) for c in classes.class_ids})
    dets = detections_of([(i, f.boxes, classes.to_class_id(f.labels), f.scores) for i, f in det_rows])
    return evaluate_detections(gt, dets, iou_thresholds=iou_thresholds).mAP


def ground_truth_of(rows: list[tuple[int, np.ndarray, np.ndarray]], names: dict[int, str]) -> GroundTruth:
    image_ids = np.concatenate([np.full(len(b), i, np.int64) for i, b, _ in rows]) if rows else np.zeros(0, np.int64)
    boxes = np.concatenate([b for _, b, _ in rows]).astype(np.float64).reshape(-1, 4) if rows else np.zeros((0, 4))
    labels = np.concatenate([c for _, _, c in rows]).astype(np.int64) if rows else np.zeros(0, np.int64)
    return GroundTruth(image_ids, labels, boxes, corners_of_xyxy(boxes), np.zeros(len(labels), bool),
                       tuple(sorted(i for i, _, _ in rows)), names, "val pages")


def detections_of(rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> Detections:
    image_ids = np.concatenate([np.full(len(s), i, np.int64) for i, _, _, s in rows]) if rows else np.zeros(0, np.int64)
    boxes = np.concatenate([b for _, b, _, _ in rows]).reshape(-1, 4) if rows else np.zeros((0, 4))
    labels = np.concatenate([c for _, _, c, _ in rows]).astype(np.int64) if rows else np.zeros(0, np.int64)
    scores = np.concatenate([s for _, _, _, s in rows]) if rows else np.zeros(0)
    return Detections(image_ids, labels, boxes, corners_of_xyxy(boxes), scores, "predictions")


def train_detect(data_dir: str | Path, out_dir: str | Path, detector: str = "fcn", preset: str = "cpu",
                 epochs: int | None = None, steps_per_epoch: int | None = None, batch_size: int | None = None,
                 device: str = "auto", seed: int = 0, resume: bool = False, progress: bool = True,
                 max_minutes: float | None = None, val_pages: int = 4, weights: str | Path | None = None,
                 workers: int | None = None) -> Path:
    """Train ``detector`` ('fcn' or 'faster-rcnn') with ``preset`` ('cpu' or 'gpu') on ``data_dir``'s train
    split; returns ``out_dir``. ``max_minutes`` bounds this call's training time (the epoch running when it
    expires is cut short, validated and checkpointed). ``weights``: a local checkpoint to start from."""
    # -- config ------------------------------------------------------------------------------------
    spec = preset_of(detector, preset)
    out = Path(out_dir)
    dev = resolve_device(device)
    train_data = load_split(data_dir, "train")
    # Outputs for the classes that occur in training only: a class never seen cannot be learnt, and each
    # output is a heatmap channel of (S/4)² cells that costs CPU time in every step.
    class_ids = tuple(sorted({int(c) for p in train_data.pages for c in p.class_ids}))
    if not class_ids:
        raise DeepScoresError(f"{train_data.source}: the train split has no boxes")
    config = DetectConfig(
        task="detect", data_dir=str(Path(data_dir).resolve()), detector=detector, preset=preset, model=spec.model,
        class_ids=class_ids, class_names=tuple(train_data.class_names[c] for c in class_ids),
        epochs=epochs if epochs is not None else spec.epochs,
        steps_per_epoch=steps_per_epoch if steps_per_epoch is not None else spec.steps_per_epoch,
        batch_size=batch_size if batch_size is not None else spec.batch_size, crop_px=spec.crop_px, lr=spec.lr,
        device=dev.type, seed=seed, val_pages=val_pages, max_minutes=max_minutes,
        weights=str(weights) if weights is not None else None)
    if min(config.epochs, config.steps_per_epoch, config.batch_size) < 1:
        raise DeepScoresError("epochs, steps_per_epoch and batch_size must be >= 1")
    checkpoint = start_run(out, config, resume)

    # -- seed --------------------------------------------------------------------------------------
    with seeded(config.seed, dev):
        # -- data ----------------------------------------------------------------------------------
        classes = ClassIndex(class_ids)
        crops = DetectionCrops(train_data.pages, classes, config.crop_px, crops_per_page=max(1, config.batch_size // 2),
                               seed=config.seed, target_transform=target_transform(detector, len(classes), config.crop_px))
        n_workers = workers if workers is not None else (1 if dev.type == "cpu" else 4)
        val = load_split(data_dir, "val").pages
        val = [val[i] for i in np.linspace(0, len(val) - 1, min(config.val_pages, len(val))).astype(int)] if val else []

        # -- model and optimiser -------------------------------------------------------------------
        model = build_detector(detector, config.model, len(classes)).to(dev)
        if weights is not None and checkpoint is None:
            from deepscores.ml.models.faster_rcnn import load_local_weights

            load_local_weights(model, weights)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if checkpoint is not None:
            history, start_epoch = restore(checkpoint, model, optimizer)
        best = max((row["val_mAP50"] for row in history), default=-1.0)

        # -- loop ----------------------------------------------------------------------------------
        started = time.perf_counter()
        budget_s = math.inf if config.max_minutes is None else 60.0 * config.max_minutes
        # Every call trains at least one batch, so it always leaves a checkpoint to evaluate, however
        # small the budget (the loader's start alone can outlast a few seconds).
        trained = False
        with training_progress(progress, unit="crops") as bar:
            for epoch in range(start_epoch, config.epochs):
                crops.set_epoch(epoch)
                # One epoch = steps_per_epoch batches: the first crops of this epoch's page order.
                subset = torch.utils.data.Subset(crops, range(min(len(crops), config.steps_per_epoch * config.batch_size)))
                loader = DataLoader(subset, config.batch_size, shuffle=False, collate_fn=collate_crops,
                                    num_workers=n_workers, pin_memory=dev.type == "cuda")
                model.train()
                task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=len(loader), loss=0.0, acc=0.0, rate=0.0)
                seen, steps, loss_sum, parts_sum = 0, 0, 0.0, {}
                epoch_start, cut_short = time.perf_counter(), False
                for images, targets in loader:
                    if trained and time.perf_counter() - started > budget_s:
                        cut_short = True
                        break
                    trained = True
                    images = images.to(dev, non_blocking=True)
                    if dev.type == "cpu":
                        images = images.contiguous(memory_format=torch.channels_last)
                    loss, parts = detection_loss(detector, model, images, targets)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                    optimizer.step()
                    seen += len(images)
                    steps += 1
                    loss_sum += loss.item()
                    for k, v in parts.items():
                        parts_sum[k] = parts_sum.get(k, 0.0) + v
                    bar.update(task, advance=1, loss=loss_sum / steps, acc=0.0,
                               rate=seen / (time.perf_counter() - epoch_start))
                train_seconds = time.perf_counter() - epoch_start
                if steps == 0:
                    break

                # -- evaluate ------------------------------------------------------------------------
                val_start = time.perf_counter()
                val_map50 = score_pages(detector, model, val, classes, dev, spec) if val else 0.0
                row = {"epoch": epoch + 1, "train_loss": round(loss_sum / steps, 5),
                       **{f"train_{k}": round(v / steps, 5) for k, v in sorted(parts_sum.items())},
                       "val_mAP50": round(val_map50, 5), "crops": seen,
                       "crops_per_s": round(seen / train_seconds, 2), "seconds": round(train_seconds, 1),
                       "val_seconds": round(time.perf_counter() - val_start, 1), "complete": not cut_short}
                history.append(row)
                bar.update(task, description=f"epoch {epoch + 1}/{config.epochs} val mAP50 {val_map50:.4f}")

                # -- checkpoint ----------------------------------------------------------------------
                best = save_epoch(out, model, optimizer, config, history, val_map50, best)
                if cut_short:
                    break
    return out


def load_detector(run_dir: str | Path, device: torch.device, checkpoint: str = "best"
                  ) -> tuple[DetectConfig, torch.nn.Module]:
    """A trained run's config and model (``best.pt``, else ``checkpoint.pt``) in eval mode on ``device``."""
    path, state = read_checkpoint(run_dir, checkpoint)
    if state["config"].get("task") != "detect":
        raise DeepScoresError(f"{path}: not a detection run")
    config = DetectConfig.from_json(state["config"])
    model = build_detector(config.detector, config.model, len(config.class_ids))
    model.load_state_dict(state["model"])
    model = model.to(device).eval()
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return config, model
