"""The fully convolutional detector for tiny, dense symbols: a centre heatmap per class at output stride 4,
with each centre's box size and sub-cell offset regressed beside it (the CenterNet design, "Objects as
Points", Zhou et al. 2019), on a small residual encoder with a top-down feature pyramid.

Why this design for music pages (docs/detection.md has the figures):
- A page holds hundreds of symbols, many 6–25 px wide and touching each other (chords, dots beside
  noteheads). Anchors and proposals (Faster R-CNN) must be sized and matched to such objects and are
  capped in number; a heatmap has one cell per 4×4 px and finds any number of centres with one max-pool.
- Class and position come from the same dense map, so context the classifier needs (a dot beside a
  notehead is an augmentation dot, above it a staccato) is in the receptive field (≈ 400 px at stride 32).
- It is fully convolutional: any page or tile size, no resizing, exact pixel geometry.

Encoding: a box with centre (cx, cy) px puts a peak in cell (⌊cx/4⌋, ⌊cy/4⌋) of its class's channel with a
Gaussian of CenterNet's radius around it; the regression head learns log(w/4), log(h/4) and the centre's
offset inside its cell. Decoding takes 3×3 local maxima above a score threshold.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepscores.ml.models import register_model

STRIDE = 4
HEATMAP_PRIOR = 0.01  # initial score of every cell: the focal loss starts from "nothing here"


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut (a strided 1×1 projection where the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(c_in, c_out, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, padding=dilation, dilation=dilation, bias=False),
                                   nn.BatchNorm2d(c_out))
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x), inplace=True)


class FCNDetector(nn.Module):
    """Input ``(N, 1, H, W)`` ink = 1; output ``(heatmap logits (N, K, H/4, W/4), box (N, 4, H/4, W/4))``
    where box = (log(w/4), log(h/4), offset x, offset y). H and W: any multiple of 32."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128, 160), pyramid: int = 48) -> None:
        super().__init__()
        c0, c4, c8, c16, c32 = widths
        self.num_classes = num_classes
        self.stem = nn.Sequential(ConvBNReLU(1, c0, 2), ConvBNReLU(c0, c0))                       # stride 2
        self.stage4 = nn.Sequential(ResidualBlock(c0, c4, 2), ResidualBlock(c4, c4))              # stride 4
        self.stage8 = nn.Sequential(ResidualBlock(c4, c8, 2), ResidualBlock(c8, c8))              # stride 8
        self.stage16 = nn.Sequential(ResidualBlock(c8, c16, 2), ResidualBlock(c16, c16, dilation=2))
        self.stage32 = nn.Sequential(ResidualBlock(c16, c32, 2), ResidualBlock(c32, c32, dilation=2))
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid, 1) for c in (c4, c8, c16, c32))
        self.smooth = ConvBNReLU(pyramid, pyramid)
        self.heatmap = nn.Sequential(ConvBNReLU(pyramid, pyramid), nn.Conv2d(pyramid, num_classes, 1))
        self.box = nn.Sequential(ConvBNReLU(pyramid, pyramid), nn.Conv2d(pyramid, 4, 1))
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
        nn.init.zeros_(self.box[-1].weight)
        nn.init.constant_(self.box[-1].bias, 0.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f4 = self.stage4(self.stem(x))
        f8 = self.stage8(f4)
        f16 = self.stage16(f8)
        f32 = self.stage32(f16)
        top = self.lateral[3](f32)
        for lateral, feature in ((self.lateral[2], f16), (self.lateral[1], f8), (self.lateral[0], f4)):
            top = lateral(feature) + F.interpolate(top, size=feature.shape[-2:], mode="nearest")
        features = self.smooth(top)
        return self.heatmap(features), self.box(features)


@register_model("fcn_detector_small", task="detect")
def fcn_detector_small(num_classes: int) -> FCNDetector:
    """CPU size: ≈ 1.3 M parameters, ≈ 2.7 GMAC per 512² crop."""
    return FCNDetector(num_classes)


@register_model("fcn_detector_wide", task="detect")
def fcn_detector_wide(num_classes: int) -> FCNDetector:
    """GPU size: twice the widths."""
    return FCNDetector(num_classes, widths=(32, 64, 128, 256, 320), pyramid=96)


# -- targets -----------------------------------------------------------------------------------------
def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius (in cells) within which a shifted box of this size keeps IoU ≥ ``min_overlap``
    with the true one: the smallest root of the three corner cases of that condition."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def encode_targets(boxes: np.ndarray, labels: np.ndarray, num_classes: int, size_px: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One crop's targets: heatmap (K, S/4, S/4) float32, and for each box whose centre is inside the crop,
    its cell (row · cells + column) and box target (log w/4, log h/4, dx, dy)."""
    cells = size_px // STRIDE
    heatmap = np.zeros((num_classes, cells, cells), np.float32)
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0) / STRIDE
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0) / STRIDE
    cx = (boxes[:, 0] + boxes[:, 2]) / (2 * STRIDE)
    cy = (boxes[:, 1] + boxes[:, 3]) / (2 * STRIDE)
    inside = (cx >= 0) & (cy >= 0) & (cx < cells) & (cy < cells)
    ix, iy = np.floor(cx).astype(np.int64), np.floor(cy).astype(np.int64)
    for k in np.flatnonzero(inside):
        radius = max(0, int(gaussian_radius(h[k], w[k])))
        sigma = (2 * radius + 1) / 6
        ys = np.arange(max(0, iy[k] - radius), min(cells, iy[k] + radius + 1))
        xs = np.arange(max(0, ix[k] - radius), min(cells, ix[k] + radius + 1))
        g = np.exp(-((ys[:, None] - iy[k]) ** 2 + (xs[None, :] - ix[k]) ** 2) / (2 * sigma * sigma))
        patch = heatmap[labels[k], ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
        np.maximum(patch, g.astype(np.float32), out=patch)
    sel = np.flatnonzero(inside)
    box = np.stack([np.log(w[sel]), np.log(h[sel]), cx[sel] - ix[sel], cy[sel] - iy[sel]], axis=1).astype(np.float32)
    cell = iy[sel] * cells + ix[sel]
    return heatmap, cell, box


def focal_loss(logits: torch.Tensor, target: torch.Tensor, peaks: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of peaks.

    ``peaks``: flat indices of the cells where ``target`` is 1. The negative term's weight (1 − t)⁴ is
    0 there, so it needs no mask, and the positive term is read at the peaks only: five page-sized
    operations instead of a dozen, which matters on CPU (the heatmap has K × (S/4)² cells).
    """
    logits = logits.float()
    p = torch.sigmoid(logits)
    negative = (F.logsigmoid(-logits) * p * p * (1 - target).pow(4)).sum()
    at_peaks = logits.flatten()[peaks]
    positive = (F.logsigmoid(at_peaks) * (1 - torch.sigmoid(at_peaks)) ** 2).sum()
    return -(positive + negative) / max(1, len(peaks))


def fcn_loss(outputs: tuple[torch.Tensor, torch.Tensor], targets: list[dict[str, torch.Tensor]],
             size_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Heatmap focal loss + L1 on the box targets at the true centres. ``targets`` hold ``boxes`` and
    ``labels``, or already their encoding (``encode_batch_item``), made in the loader's workers."""
    heat_logits, box_pred = outputs
    n, k, cells, _ = heat_logits.shape
    encoded = [t if "heatmap" in t else encode_batch_item(t, k, cells * STRIDE) for t in targets]
    device = heat_logits.device
    heat = torch.stack([t["heatmap"] for t in encoded]).to(device)
    peaks = torch.cat([t["peaks"] + i * k * cells * cells for i, t in enumerate(encoded)]).to(device)
    heat_loss = focal_loss(heat_logits, heat, peaks)
    cells_flat = torch.cat([t["cells"] for t in encoded]).to(device)
    samples = torch.cat([torch.full((len(t["cells"]),), i, dtype=torch.int64) for i, t in enumerate(encoded)]).to(device)
    if len(cells_flat):
        flat = box_pred.float().flatten(2)  # (N, 4, cells²)
        pred = flat[samples, :, cells_flat]
        l1 = F.l1_loss(pred, torch.cat([t["box"] for t in encoded]).to(device), reduction="none")
        size_loss, offset_loss = l1[:, :2].mean(), l1[:, 2:].mean()
    else:
        size_loss = offset_loss = box_pred.sum() * 0.0
    total = heat_loss + size_weight * size_loss + offset_loss
    return total, {"heatmap": heat_loss.item(), "size": size_loss.item(), "offset": offset_loss.item()}


def encode_batch_item(target: dict[str, torch.Tensor], num_classes: int, size_px: int) -> dict[str, torch.Tensor]:
    """A crop's boxes and labels → tensors for ``fcn_loss``: heatmap, peak indices (flat in the heatmap),
    centre cells and box targets."""
    hm, cell, box = encode_targets(target["boxes"].numpy(), target["labels"].numpy(), num_classes, size_px)
    return {"heatmap": torch.from_numpy(hm), "peaks": torch.from_numpy(np.flatnonzero(hm.ravel() == 1.0)),
            "cells": torch.from_numpy(cell), "box": torch.from_numpy(box)}


@torch.no_grad()
def decode(outputs: tuple[torch.Tensor, torch.Tensor], score_threshold: float = 0.05, max_detections: int = 3000
           ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: boxes (n, 4) xyxy px, scores (n,), class indices (n,) of the 3×3 heatmap maxima."""
    heat_logits, box = outputs
    heat = torch.sigmoid(heat_logits.float())
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
    n, k, h, w = heat.shape
    results = []
    for i in range(n):
        flat = peaks[i].flatten()
        count = min(max_detections, int((flat > score_threshold).sum()))
        scores, index = flat.topk(count)
        cls = index // (h * w)
        cell = index % (h * w)
        iy, ix = cell // w, cell % w
        b = box[i].float().flatten(1)[:, cell]
        bw, bh = torch.exp(b[0].clamp(max=8)) * STRIDE, torch.exp(b[1].clamp(max=8)) * STRIDE
        cx, cy = (ix + b[2]) * STRIDE, (iy + b[3]) * STRIDE
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        results.append((boxes.cpu().numpy().astype(np.float64), scores.cpu().numpy().astype(np.float64),
                        cls.cpu().numpy().astype(np.int64)))
    return results
