"""Whole-page segmentation by overlapping tiles: pages of any size, no visible seams.

A page is padded with paper to a multiple of the model's stride and cut into equal tiles whose origins lie
on the stride grid and which overlap by at least ``overlap_px``. Each pixel takes its prediction from the
one tile it lies farthest inside (the overlap is split down the middle), so it is at least
``overlap_px / 2`` from any tile edge that is not the page's own. When that is at least the model's
receptive radius, the tiled prediction *equals* the whole-page prediction (up to float summation order):
no pixel's evidence was cut off. The defaults (overlap 256 px, radius 122 px for both U-Net presets) do;
2048-px tiles cut an A4 page at 1894 × 2679 px into two, so 10 % of its pixels are computed twice
(1024-px tiles: 65 %).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepscores.errors import DeepScoresError
from deepscores.ml.segment_data import to_float_page

TILE_PX = 2048
OVERLAP_PX = 256


def tile_spans(length: int, tile_px: int, overlap_px: int, stride: int) -> list[tuple[int, int, int, int]]:
    """``[(start, stop, own_start, own_stop)]`` of the tiles along one axis of a ``length``-px canvas
    (a multiple of ``stride``): equal tiles of about ``tile_px`` (multiples of ``stride``, starts on the
    stride grid) overlapping by ≥ ``overlap_px``; each tile owns ``[own_start, own_stop)``, which partition
    the canvas."""
    if length % stride:
        raise ValueError(f"canvas length {length} is not a multiple of the stride {stride}")
    if length <= tile_px:
        return [(0, length, 0, length)]
    if tile_px <= overlap_px + stride:
        raise DeepScoresError(f"tile of {tile_px} px leaves nothing beside its {overlap_px}-px overlap")
    count = math.ceil((length - overlap_px) / (tile_px - overlap_px))
    while True:
        # Equal spacing on the stride grid; the tile size follows so that the last tile ends at the edge.
        step = (length - overlap_px) // count // stride * stride
        size = length - (count - 1) * step
        if step > 0 and size <= tile_px + stride:
            break
        count += 1
    starts = [i * step for i in range(count)]
    cuts = [0] + [s + (step + size) // 2 for s in starts[:-1]] + [length]
    return [(s, s + size, cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


@torch.no_grad()
def predict_page(model: torch.nn.Module, image_u8: np.ndarray, device: torch.device, tile_px: int = TILE_PX,
                 overlap_px: int = OVERLAP_PX, return_logits: bool = False) -> np.ndarray:
    """Model indices, uint8 (H, W), of a page (uint8 (H, W), paper = 255); ``return_logits``: float32
    (classes, H, W) logits instead (small pages only: 125 classes × a page are 2.5 GB)."""
    if image_u8.ndim != 2 or image_u8.dtype != np.uint8:
        raise ValueError(f"a page is a uint8 (H, W) array, got {image_u8.dtype} {image_u8.shape}")
    height, width = image_u8.shape
    stride = model.stride
    canvas_h, canvas_w = math.ceil(height / stride) * stride, math.ceil(width / stride) * stride
    canvas = torch.zeros((1, 1, canvas_h, canvas_w))
    canvas[0, :, :height, :width] = to_float_page(image_u8)
    amp = device.type == "cuda"
    out = None
    for y0, y1, oy0, oy1 in tile_spans(canvas_h, tile_px, overlap_px, stride):
        oy1 = min(oy1, height)
        if oy0 >= oy1:
            continue  # a tile that owns only padding
        for x0, x1, ox0, ox1 in tile_spans(canvas_w, tile_px, overlap_px, stride):
            ox1 = min(ox1, width)
            if ox0 >= ox1:
                continue
            tile = canvas[:, :, y0:y1, x0:x1].to(device)
            if device.type == "cpu":
                tile = tile.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                features = model.features(tile)[:, :, oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0]
            if return_logits:
                logits = model.head(features.float())[0].float().cpu().numpy()
                if out is None:
                    out = np.empty((logits.shape[0], height, width), np.float32)
                out[:, oy0:oy1, ox0:ox1] = logits
                continue
            if out is None:
                out = np.empty((height, width), np.uint8)
            # The head in strips of rows: its output is 125 channels deep, the features 12.
            for r in range(0, oy1 - oy0, 256):
                logits = model.head(features[:, :, r:r + 256].float())
                out[oy0 + r:oy0 + r + logits.shape[2], ox0:ox1] = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
    assert out is not None  # every pixel lies in some tile's own region
    return out
