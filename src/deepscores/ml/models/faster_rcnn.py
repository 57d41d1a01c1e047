"""torchvision's Faster R-CNN as the paper's classic comparison, set up for music symbols.

- Backbone: ResNet with a feature pyramid P2–P6 (P2 = stride 4, where an 8 px dot is two cells).
  ``faster_rcnn_r50`` is the standard ResNet-50-FPN; ``faster_rcnn_r18`` the same design on ResNet-18
  for the CPU budget. (MobileNet-v3-FPN, torchvision's light option, starts its pyramid at stride 16,
  where a dot is half a cell, so it is not offered.)
- Anchors sized for the symbols: 8, 16, 32, 64, 128 px (one size per pyramid level) with height/width
  ratios 0.5, 1, 2, 4 (whole rests are wide; flats, flags and clefs are tall).
- Greyscale in, ink = 1: the first convolution takes one channel, and normalisation is the identity.
- Nothing is resized: the image transform's sizes are set to the input's, so boxes stay in page pixels.
- No pretrained weights can be downloaded here: training starts from scratch (BatchNorm trained, not
  frozen), or from a local checkpoint the user names (``load_local_weights``).
- Up to 3,000 detections per image (torchvision's default is 100; a page has hundreds of symbols).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

from deepscores.errors import DeepScoresError
from deepscores.ml.models import register_model

ANCHOR_SIZES_PX = ((8,), (16,), (32,), (64,), (128,))
ANCHOR_RATIOS = (0.5, 1.0, 2.0, 4.0)


def music_faster_rcnn(num_classes: int, backbone_name: str, image_px: int = 512) -> FasterRCNN:
    """A Faster R-CNN for ``num_classes`` symbol classes (+ background) on greyscale ``image_px`` squares."""
    backbone = resnet_fpn_backbone(backbone_name=backbone_name, weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5)
    backbone.body.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    anchors = AnchorGenerator(sizes=ANCHOR_SIZES_PX, aspect_ratios=(ANCHOR_RATIOS,) * len(ANCHOR_SIZES_PX))
    return FasterRCNN(
        backbone, num_classes=num_classes + 1, min_size=image_px, max_size=image_px,
        image_mean=[0.0], image_std=[1.0], rpn_anchor_generator=anchors,
        # More proposals than torchvision's defaults (a crop holds up to ~150 symbols), but the box head
        # samples 256 of them per image: its two 1024-wide layers dominate the CPU time.
        rpn_pre_nms_top_n_train=4000, rpn_post_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=6000, rpn_post_nms_top_n_test=3000,
        rpn_batch_size_per_image=256, box_batch_size_per_image=256,
        box_detections_per_img=3000, box_score_thresh=0.05)


def set_image_size(model: FasterRCNN, height_px: int, width_px: int) -> None:
    """Make the model's transform leave images of this size at their size (its resize scale is
    min(min_size / short side, max_size / long side); training crops and inference tiles differ)."""
    model.transform.min_size = (min(height_px, width_px),)
    model.transform.max_size = max(height_px, width_px)


@register_model("faster_rcnn_r18", task="detect")
def faster_rcnn_r18(num_classes: int) -> FasterRCNN:
    return music_faster_rcnn(num_classes, "resnet18")


@register_model("faster_rcnn_r50", task="detect")
def faster_rcnn_r50(num_classes: int) -> FasterRCNN:
    return music_faster_rcnn(num_classes, "resnet50")


def load_local_weights(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Start from a local checkpoint (a torchvision ResNet or Faster R-CNN state dict, or one of our runs):
    every tensor whose name and shape fit is loaded; a three-channel first convolution is summed over
    its colour channels to read greyscale. Returns (loaded names, skipped names)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DeepScoresError(f"{path}: cannot load weights ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise DeepScoresError(f"{path}: not a state dict")
    own = model.state_dict()
    # A bare torchvision ResNet's names lack the detector's prefix.
    prefix = "backbone.body." if not any(k.startswith("backbone.") for k in state) else ""
    loaded, skipped, update = [], [], {}
    for name, tensor in state.items():
        target = prefix + name
        if target not in own:
            skipped.append(name)
            continue
        if tensor.dim() == 4 and tensor.shape[1] == 3 and own[target].shape[1] == 1:
            tensor = tensor.sum(dim=1, keepdim=True)
        if tensor.shape != own[target].shape:
            skipped.append(name)
            continue
        update[target] = tensor
        loaded.append(name)
    if not loaded:
        raise DeepScoresError(f"{path}: no tensor of it fits the model (names or shapes differ)")
    model.load_state_dict(update, strict=False)
    return loaded, skipped
