"""A residual CNN family for symbol patches (1 × 220 × 120): the paper-sized preset and a CPU-sized one.

Design (He et al. 2016, basic blocks): a 7×7 stride-2 stem and a 3×3 max-pool, four stages of basic
blocks (two 3×3 convolutions each) that halve the resolution and widen the channels, and a head that
keeps the final 7 × 4 grid instead of averaging it away. Keeping the grid matters here: a patch holds
many symbols and its label is the one in the centre, so the classifier must know *where* a feature is.

Shortcuts are parameter-free (He et al.'s option A: a strided identity padded with zero channels), so
every ``nn.Conv2d`` lies on the main path and "number of convolutional layers" has one meaning:
``1 (stem) + 2 × blocks``. The ``paper`` preset has 12 blocks → exactly 25 convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepscores.ml.models import register_model


@dataclass(frozen=True)
class ResNetConfig:
    """The shape of one member of the family; saved with every run through the preset name."""

    widths: tuple[int, ...]      # channels per stage
    blocks: tuple[int, ...]      # basic blocks per stage
    stem_width: int
    head_grid: tuple[int, int] = (7, 4)  # (rows, columns) the last feature map is pooled to: 220×120 / 32
    in_channels: int = 1


PRESETS: dict[str, ResNetConfig] = {
    # 25 conv layers, ≈ 8.15 M parameters: the size DeepScores reports.
    "paper": ResNetConfig(widths=(64, 128, 192, 288), blocks=(3, 3, 3, 3), stem_width=64),
    # The same design at a quarter of the width and one block per stage: trains in minutes on 2 CPU cores.
    "small": ResNetConfig(widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), stem_width=16),
}


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus a parameter-free shortcut, then relu."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Zero init of the last BN makes each block start as the identity, which steadies early training.
        nn.init.zeros_(self.bn2.weight)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            # Same positions a 3×3 stride-s padding-1 convolution centres on: output size ceil(H / s).
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResNet(nn.Module):
    """Residual CNN: ``(N, 1, 220, 120)`` float images (ink = 1) → ``(N, num_classes)`` logits."""

    def __init__(self, config: ResNetConfig, num_classes: int) -> None:
        super().__init__()
        if len(config.widths) != len(config.blocks):
            raise ValueError(f"widths {config.widths} and blocks {config.blocks} differ in length")
        self.config = config
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, config.stem_width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(config.stem_width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        channels = config.stem_width
        for i, (width, count) in enumerate(zip(config.widths, config.blocks)):
            layers = []
            for j in range(count):
                # The first stage keeps the stem's resolution; every later stage halves it once.
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(channels, width, stride))
                channels = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(config.head_grid)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(channels * config.head_grid[0] * config.head_grid[1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


def _preset(name: str, num_classes: int, **overrides: object) -> ResNet:
    config = PRESETS[name]
    if overrides:
        config = ResNetConfig(**{**config.__dict__, **overrides})
    return ResNet(config, num_classes)


@register_model("resnet_paper")
def resnet_paper(num_classes: int, **overrides: object) -> ResNet:
    """25 convolutional layers, ≈ 8 M parameters (DeepScores' classification baseline size)."""
    return _preset("paper", num_classes, **overrides)


@register_model("resnet_small")
def resnet_small(num_classes: int, **overrides: object) -> ResNet:
    """The paper's design, CPU-sized: 9 convolutional layers, ≈ 0.7 M parameters."""
    return _preset("small", num_classes, **overrides)


def count_conv_layers(model: nn.Module) -> int:
    """Number of ``nn.Conv2d`` modules (all on the main path: the shortcuts have none)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
