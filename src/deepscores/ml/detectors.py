"""The two detectors behind one interface, so that training, prediction and evaluation are written once:
``loss`` on a batch of crops, ``detect`` on a batch of tiles, and whole-page prediction by tiles.

Presets give each (detector, machine) pair its model, crop and tile sizes, batch and learning rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepscores.errors import DeepScoresError
from deepscores.ml.detect_data import clip_targets, ink
from deepscores.ml.models import create_model
from deepscores.ml.models.fcn_detector import decode, encode_batch_item, fcn_loss
from deepscores.ml.tiling import BoxSet, cut_tile, merge_tile_detections, page_tiles

DETECTORS = ("fcn", "faster-rcnn")


@dataclass(frozen=True)
class DetectPreset:
    model: str
    crop_px: int          # training crops
    batch_size: int
    steps_per_epoch: int
    epochs: int
    lr: float
    tile_px: int          # inference tiles
    overlap_px: int       # ≥ the largest symbol that should come out whole without joining pieces
    tiles_per_batch: int


#: (detector, preset) → settings. "cpu": 2 cores, a budget of well under an hour; "gpu": one GPU.
PRESETS: dict[tuple[str, str], DetectPreset] = {
    # The FCN sees any size: big tiles (a 1894 × 2679 page is two) waste least on overlaps.
    ("fcn", "cpu"): DetectPreset("fcn_detector_small", 512, 8, 100, 40, 1e-3, 2048, 256, 1),
    ("fcn", "gpu"): DetectPreset("fcn_detector_wide", 768, 16, 500, 40, 1e-3, 2048, 256, 2),
    ("faster-rcnn", "cpu"): DetectPreset("faster_rcnn_r18", 512, 4, 100, 40, 1e-4, 768, 192, 1),
    ("faster-rcnn", "gpu"): DetectPreset("faster_rcnn_r50", 800, 8, 500, 40, 1e-4, 1024, 256, 4),
}


def preset_of(detector: str, preset: str) -> DetectPreset:
    if detector not in DETECTORS:
        raise DeepScoresError(f"unknown detector {detector!r}; available: {', '.join(DETECTORS)}")
    try:
        return PRESETS[(detector, preset)]
    except KeyError:
        raise DeepScoresError(f"unknown preset {preset!r} for {detector}; available: "
                              f"{', '.join(p for d, p in PRESETS if d == detector)}") from None


def build_detector(detector: str, model_name: str, num_classes: int) -> nn.Module:
    model = create_model(model_name, num_classes=num_classes)
    if detector == "faster-rcnn" and not hasattr(model, "rpn"):
        raise DeepScoresError(f"model {model_name!r} is not a Faster R-CNN")
    return model


def target_transform(detector: str, num_classes: int, crop_px: int):
    """What the crops' loader workers add to each target (the FCN's heatmap encoding), or None."""
    if detector != "fcn":
        return None
    return functools.partial(_with_fcn_encoding, num_classes=num_classes, size_px=crop_px)


def _with_fcn_encoding(target: dict[str, torch.Tensor], num_classes: int, size_px: int) -> dict[str, torch.Tensor]:
    return {**target, **encode_batch_item(target, num_classes, size_px)}


def detection_loss(detector: str, model: nn.Module, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch of crops (model in train mode), and its parts for the log."""
    if detector == "fcn":
        return fcn_loss(model(images), targets)
    size = images.shape[-1]
    from deepscores.ml.models.faster_rcnn import set_image_size

    set_image_size(model, *images.shape[-2:])
    device = images.device
    clipped = [{k: v.to(device) for k, v in clip_targets(t, size).items()} for t in targets]
    for t in clipped:
        t["labels"] = t["labels"] + 1  # torchvision reserves 0 for background
    losses = model(list(images), clipped)
    total = sum(losses.values())
    return total, {k.removeprefix("loss_"): v.item() for k, v in losses.items()}


@torch.no_grad()
def detect_tiles(detector: str, model: nn.Module, tiles: torch.Tensor, score_threshold: float
                 ) -> list[BoxSet]:
    """Detections (tile px, class indices) of a batch of tiles (model in eval mode)."""
    if detector == "fcn":
        return [BoxSet(*found) for found in decode(model(tiles), score_threshold)]
    from deepscores.ml.models.faster_rcnn import set_image_size

    set_image_size(model, *tiles.shape[-2:])
    model.roi_heads.score_thresh = score_threshold
    out = []
    for found in model(list(tiles)):
        out.append(BoxSet(found["boxes"].cpu().numpy().astype(np.float64),
                          found["scores"].cpu().numpy().astype(np.float64),
                          found["labels"].cpu().numpy().astype(np.int64) - 1))
    return out


@torch.no_grad()
def detect_page(detector: str, model: nn.Module, image_u8: np.ndarray, preset: DetectPreset, device: torch.device,
                score_threshold: float = 0.05, tile_px: int | None = None, overlap_px: int | None = None) -> BoxSet:
    """A whole page's detections (page px, class indices): overlapping tiles, merged across the seams."""
    tile_px = tile_px or preset.tile_px
    overlap_px = preset.overlap_px if overlap_px is None else overlap_px
    height, width = image_u8.shape
    tiles = page_tiles(width, height, tile_px, overlap_px)
    page = ink(image_u8)
    found: list[BoxSet] = []
    for start in range(0, len(tiles), preset.tiles_per_batch):
        batch = np.stack([cut_tile(page, t) for t in tiles[start:start + preset.tiles_per_batch]])
        x = torch.from_numpy(batch)[:, None].to(device)
        if device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        found.extend(detect_tiles(detector, model, x, score_threshold))
    return merge_tile_detections(tiles, found, width, height)
