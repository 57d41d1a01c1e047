"""A U-Net family for whole-page semantic segmentation: ``(N, 1, H, W)`` greyscale (ink = 1) →
``(N, classes, H, W)`` logits at full resolution, so that 2-px stems and ledger lines survive.

Design (Ronneberger et al. 2015, with batch norm): an encoder of ``levels`` stages, each two 3×3
conv-BN-ReLU, halving the resolution with a 2×2 max-pool between stages; a decoder that doubles the
resolution with a 2×2 stride-2 transposed convolution, concatenates the encoder's features of that
resolution and applies two more 3×3 convolutions; a 1×1 classifier on the full-resolution features.
H and W must be multiples of ``2 ** (levels - 1)`` (``model.stride``); tiled inference pads pages to it.

Every operation is aligned to the pooling grid and the receptive field is finite (``receptive_radius_px``),
so a prediction computed on a tile whose origin lies on that grid equals the one computed on the whole
page wherever the tile reaches ``receptive_radius_px`` beyond the pixel: tiled inference relies on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepscores.ml.models import register_model


@dataclass(frozen=True)
class UNetConfig:
    """The shape of one member of the family; saved with every run through the model name."""

    widths: tuple[int, ...]   # channels per level, full resolution first
    in_channels: int = 1

    @property
    def levels(self) -> int:
        return len(self.widths)


PRESETS: dict[str, UNetConfig] = {
    # Thin at full resolution (where most of the cost is), wider where the context is: 0.83 M parameters,
    # ≈ 0.5 Mpx/s of training on 2 idle CPU cores. Receptive radius ≤ 122 px ≈ 6 staff spaces (a G clef).
    "small": UNetConfig(widths=(12, 24, 48, 96, 128)),
    # The same shape 2.7–3× wider (6.3 M parameters), for one GPU.
    "gpu": UNetConfig(widths=(32, 64, 128, 256, 384)),
}


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections; see the module docstring."""

    def __init__(self, config: UNetConfig, num_classes: int) -> None:
        super().__init__()
        if config.levels < 1:
            raise ValueError(f"a U-Net needs at least one level, got widths {config.widths}")
        self.config = config
        widths = config.widths
        self.down = nn.ModuleList()
        channels = config.in_channels
        for width in widths:
            self.down.append(_double_conv(channels, width))
            channels = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(channels, width, 2, stride=2))
            self.merge.append(_double_conv(2 * width, width))
            channels = width
        self.head = nn.Conv2d(channels, num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @property
    def stride(self) -> int:
        """Input sizes (and tile origins) must be multiples of this."""
        return 2 ** (self.config.levels - 1)

    @property
    def receptive_radius_px(self) -> int:
        """How far (px, each way) an output pixel can see: two 3×3 convolutions per level on the way down
        and up, plus the pooling/upsampling windows; an upper bound, exact enough for tile overlaps."""
        radius, scale = 0, 1
        for level in range(self.config.levels):
            convs = 2 if level == self.config.levels - 1 else 4
            radius += convs * scale + (scale if level else 0)  # + the 2×2 pool and 2×2 up-conv windows
            scale *= 2
        return radius

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution features ``head`` (a 1×1 convolution) turns into logits. Kept apart so that
        training can classify only the pixels it samples and inference can take the argmax in strips:
        with 125 classes the logits of a page are 10× larger than everything else the model holds."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _preset(name: str, num_classes: int, **overrides: object) -> UNet:
    config = PRESETS[name]
    if overrides:
        config = UNetConfig(**{**config.__dict__, **overrides})
    return UNet(config, num_classes)


@register_model("unet_small", task="segment")
def unet_small(num_classes: int, **overrides: object) -> UNet:
    """Five levels, widths 12…128, 0.83 M parameters: the CPU preset."""
    return _preset("small", num_classes, **overrides)


@register_model("unet_gpu", task="segment")
def unet_gpu(num_classes: int, **overrides: object) -> UNet:
    """Five levels, widths 32…384, 6.3 M parameters: the GPU preset."""
    return _preset("gpu", num_classes, **overrides)
