"""Train a page segmenter (pixel → class). Reads top to bottom: config, seed, data, class weights, model,
optimiser, loop (train one epoch of random crops, score a few val pages whole, checkpoint), history.

A run folder holds ``config.json`` (the frozen config, with the label map: model index → class id),
``checkpoint.pt`` (the last epoch: model, optimiser, RNG, config, class weights, epoch, history; what
``resume=True`` continues from), ``best.pt`` (the epoch with the best val mIoU; what evaluation loads),
``class_weights.json`` and ``history.csv`` / ``history.json``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepscores.errors import DeepScoresError
from deepscores.evaluation.segment import confusion_matrix, segmentation_metrics
from deepscores.formats.atomic import atomic_write_text
from deepscores.ml.models import create_model
from deepscores.ml.runs import (read_checkpoint, resolve_device, restore, save_epoch, seeded, start_run,
                                training_progress)
from deepscores.ml.segment_data import (IGNORE_INDEX, LabelMap, SegmentCrops, crop_class_frequencies, load_page,
                                        make_crop_loader, pick_pages, read_label_map)
from deepscores.ml.segment_infer import OVERLAP_PX, TILE_PX, predict_page

#: Training presets: model, crops and schedule that suit a machine.
PRESETS: dict[str, dict[str, Any]] = {
    # 2 idle CPU cores: ≈ 5 crops/s → an epoch ≈ 4 min + ≈ 20 s of validation; 10 epochs ≈ 45 min.
    "cpu": {"model": "unet_small", "crop_px": 320, "batch_size": 8, "epochs": 10, "steps_per_epoch": 150,
            "val_pages": 4},
    "gpu": {"model": "unet_gpu", "crop_px": 512, "batch_size": 16, "epochs": 40, "steps_per_epoch": 500,
            "val_pages": 32},
}


@dataclass(frozen=True)
class SegmentTrainConfig:
    data_dir: str
    preset: str
    model: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    crop_px: int
    device: str
    class_ids: tuple[int, ...]                   # model index i + 1 predicts class id class_ids[i]; 0 = background
    class_names: tuple[str, ...]
    seed: int = 0
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    class_weight_power: float = 0.5             # w_c = (median f / f_c) ** power, clipped; 0 = plain cross-entropy
    max_class_weight: float = 10.0
    paper_keep: float = 1 / 16                  # share of blank paper (> 2 px from ink) kept in the loss
    centre_on_symbol: float = 0.9               # share of crops centred on a symbol (class drawn uniformly)
    val_pages: int = 4
    tile_px: int = TILE_PX
    overlap_px: int = OVERLAP_PX
    max_minutes: float | None = None
    task: str = "segment"                       # what `deepscores predict` reads to tell run kinds apart

    @property
    def label_map(self) -> LabelMap:
        return LabelMap(self.class_ids, self.class_names)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SegmentTrainConfig":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for key in ("betas", "class_ids", "class_names"):
            data[key] = tuple(data[key])
        return cls(**data)


def class_weights(frequencies: np.ndarray, power: float, max_weight: float) -> torch.Tensor:
    """``(median f / f_c) ** power`` over the indices that occur (median over those), clipped to
    ``[1 / max_weight, max_weight]``; 1 for indices never seen (they are never a target)."""
    seen = frequencies > 0
    weights = np.ones_like(frequencies)
    if power > 0 and seen.any():
        weights[seen] = np.clip((np.median(frequencies[seen]) / frequencies[seen]) ** power, 1 / max_weight, max_weight)
    return torch.tensor(weights, dtype=torch.float32)


def sampled_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted cross-entropy over the pixels ``y`` keeps (not ``IGNORE_INDEX``): the 1×1 head runs on
    those pixels only. Returns (loss, predicted indices, true indices) of the kept pixels."""
    features = model.features(x)
    keep = y != IGNORE_INDEX
    chosen = features.permute(0, 2, 3, 1)[keep]          # (pixels, channels)
    head = model.head
    logits = F.linear(chosen.float(), head.weight.flatten(1), head.bias)
    target = y[keep]
    return F.cross_entropy(logits, target, weight=weights), logits.argmax(1), target


def validate(model: torch.nn.Module, data_dir: str, pages: list[str], label_map: LabelMap, device: torch.device,
             tile_px: int, overlap_px: int) -> dict[str, Any]:
    """Metrics of whole-page predictions on ``pages`` (see ``deepscores.evaluation.segment``)."""
    model.eval()
    lut, n = label_map.index_lut(), label_map.num_outputs
    cm = np.zeros((n, n), np.int64)
    for name in pages:
        image, labels = load_page(data_dir, name, lut)
        cm += confusion_matrix(labels, predict_page(model, image, device, tile_px, overlap_px), n)
    return segmentation_metrics(cm, label_map)


def train_segment(data_dir: str | Path, out_dir: str | Path, preset: str = "cpu", epochs: int | None = None,
                  steps_per_epoch: int | None = None, batch_size: int | None = None, device: str = "auto",
                  seed: int = 0, resume: bool = False, progress: bool = True, max_minutes: float | None = None,
                  workers: int | None = None) -> Path:
    """Train ``preset``'s segmenter on ``data_dir``'s train split, scoring val pages each epoch; returns ``out_dir``.

    ``epochs`` / ``steps_per_epoch`` / ``batch_size`` default to the preset's. ``resume=True`` continues from
    ``out_dir/checkpoint.pt`` up to ``epochs`` in total (same data, model, crops and seed required).
    ``max_minutes`` bounds this call's training time: the running epoch is cut short, validated and
    checkpointed, and training stops. ``workers``: crop-loading processes (default: 1 on CPU, up to 8 on CUDA).
    """
    # -- config ------------------------------------------------------------------------------------
    if preset not in PRESETS:
        raise DeepScoresError(f"unknown training preset {preset!r}; available: {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    out = Path(out_dir)
    dev = resolve_device(device)
    label_map = read_label_map(data_dir)
    config = SegmentTrainConfig(
        data_dir=str(Path(data_dir).resolve()), preset=preset, model=spec["model"],
        epochs=epochs if epochs is not None else spec["epochs"],
        steps_per_epoch=steps_per_epoch if steps_per_epoch is not None else spec["steps_per_epoch"],
        batch_size=batch_size if batch_size is not None else spec["batch_size"], crop_px=spec["crop_px"],
        device=dev.type, class_ids=label_map.class_ids, class_names=label_map.class_names, seed=seed,
        val_pages=spec["val_pages"], max_minutes=max_minutes)
    if min(config.epochs, config.steps_per_epoch, config.batch_size) < 1:
        raise DeepScoresError(f"epochs, steps_per_epoch and batch_size must be >= 1, got "
                              f"{config.epochs}, {config.steps_per_epoch} and {config.batch_size}")
    checkpoint = start_run(out, config, resume)
    amp = dev.type == "cuda"

    # -- seed --------------------------------------------------------------------------------------
    with seeded(config.seed, dev):
        # -- data ----------------------------------------------------------------------------------
        crops = SegmentCrops(config.data_dir, "train", label_map, config.steps_per_epoch * config.batch_size,
                             config.crop_px, config.seed, config.centre_on_symbol, config.paper_keep)
        val_pages = pick_pages(config.data_dir, "val", config.val_pages)
        if checkpoint is not None:
            weights = checkpoint["class_weights"]
        else:
            # From crops cut as training cuts them, so the weights fit the pixels the loss sees.
            frequencies = crop_class_frequencies(crops, label_map.num_outputs)
            weights = class_weights(frequencies, config.class_weight_power, config.max_class_weight)
            atomic_write_text(out / "class_weights.json", json.dumps(
                {"background" if i == 0 else label_map.class_names[i - 1]:
                 {"loss_pixel_share": round(float(f), 7), "weight": round(float(w), 4)}
                 for i, (f, w) in enumerate(zip(frequencies, weights.tolist())) if f > 0}, indent=1) + "\n")
        loader = make_crop_loader(crops, config.batch_size, dev, workers)

        # -- model and optimiser -------------------------------------------------------------------
        model = create_model(config.model, num_classes=label_map.num_outputs).to(dev)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if checkpoint is None:
            # Start the classifier at the weighted class prior instead of uniform over 125 classes: at
            # lr 1e-3 Adam needs ~1000 steps to move a bias by 1, a good part of a CPU run's budget.
            prior = frequencies * weights.numpy()
            with torch.no_grad():
                model.head.bias.copy_(torch.from_numpy(np.log(np.maximum(prior / prior.sum(), 1e-6))))
        else:
            history, start_epoch = restore(checkpoint, model, optimizer)
        best = max((row["val_mIoU"] for row in history), default=-1.0)
        weights_dev = weights.to(dev)

        # -- loop ----------------------------------------------------------------------------------
        started = time.perf_counter()
        budget_s = math.inf if config.max_minutes is None else 60.0 * config.max_minutes
        # Every call trains at least one batch, so it always leaves a checkpoint to evaluate, however
        # small the budget (the loader's start alone can outlast a few seconds).
        trained = False
        with training_progress(progress, unit="crops") as bar:
            for epoch in range(start_epoch, config.epochs):
                loader.sampler.set_epoch(epoch)
                model.train()
                task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=len(loader), loss=0.0, acc=0.0,
                                    rate=0.0)
                seen, steps, loss_sum, fg_right, fg_total = 0, 0, 0.0, 0, 0
                epoch_start, cut_short = time.perf_counter(), False
                for x, y in loader:
                    if trained and time.perf_counter() - started > budget_s:
                        cut_short = True
                        break
                    trained = True
                    x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                    if dev.type == "cpu":
                        x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        loss, predicted, target = sampled_loss(model, x, y, weights_dev)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    seen, steps, loss_sum = seen + len(x), steps + 1, loss_sum + loss.item()
                    foreground = target > 0
                    fg_right += (predicted[foreground] == target[foreground]).sum().item()
                    fg_total += foreground.sum().item()
                    bar.update(task, advance=1, loss=loss_sum / steps, acc=fg_right / max(1, fg_total),
                               rate=seen / (time.perf_counter() - epoch_start))
                train_seconds = time.perf_counter() - epoch_start
                if seen == 0:
                    break  # budget spent before this epoch began: nothing new to evaluate or save

                # -- evaluate ------------------------------------------------------------------------
                val_start = time.perf_counter()
                scores = validate(model, config.data_dir, val_pages, label_map, dev, config.tile_px, config.overlap_px)
                row = {"epoch": epoch + 1, "train_loss": round(loss_sum / steps, 5),
                       "train_foreground_accuracy": round(fg_right / max(1, fg_total), 5),
                       "val_mIoU": scores["mIoU"], "val_mIoU_top10": scores["mIoU_top10"],
                       "val_pixel_accuracy": scores["pixel_accuracy"],
                       "val_foreground_pixel_accuracy": scores["foreground_pixel_accuracy"],
                       "crops": seen, "crops_per_s": round(seen / train_seconds, 2), "seconds": round(train_seconds, 1),
                       "val_seconds": round(time.perf_counter() - val_start, 1), "complete": not cut_short}
                history.append(row)
                bar.update(task, description=f"epoch {epoch + 1}/{config.epochs} val mIoU {row['val_mIoU']:.4f}")

                # -- checkpoint ----------------------------------------------------------------------
                best = save_epoch(out, model, optimizer, config, history, row["val_mIoU"], best,
                                  class_weights=weights)
                if cut_short:
                    break
    return out


def load_segment_run(run_dir: str | Path, device: torch.device,
                     checkpoint: str = "best") -> tuple[torch.nn.Module, SegmentTrainConfig]:
    """The model of ``best.pt`` (else ``checkpoint.pt``; ``checkpoint='last'``: only ``checkpoint.pt``)
    in ``run_dir``, in eval mode on ``device``, with its config (``config.label_map`` maps indices to ids)."""
    path, state = read_checkpoint(run_dir, checkpoint)
    try:
        config = SegmentTrainConfig.from_json(state["config"])
        model = create_model(config.model, num_classes=config.label_map.num_outputs)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise DeepScoresError(f"{path}: not a segmentation checkpoint ({' '.join(str(exc).split())[:200]})") from None
    model = model.to(device).eval()
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model, config
