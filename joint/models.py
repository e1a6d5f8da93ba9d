"""Reference float models of the paper's benchmarks (plain nn.Modules, BatchNorm included)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
import torchvision


def _kaiming(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class _Stack(nn.Module):
    """One MLPerf Tiny ResNet stack: two 3x3 convs and a shortcut (identity or strided 1x1 conv)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Conv2d(cin, cout, 1, stride, 0, bias=True) if stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.c1(x)))
        y = self.bn2(self.c2(y))
        shortcut = x if self.down is None else self.down(x)
        return torch.relu(y + shortcut)


class ResNet8(nn.Module):
    """ResNet-8 of MLPerf Tiny (CIFAR-10 image classification), widths 16/32/64."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, pool: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.s1 = _Stack(16, 16, 1)
        self.s2 = _Stack(16, 32, 2)
        self.s3 = _Stack(32, 64, 2)
        self.pool = nn.AvgPool2d(pool)
        self.fc = nn.Linear(64, num_classes)
        _kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = self.s3(self.s2(self.s1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class DSCNN(nn.Module):
    """DS-CNN of MLPerf Tiny (keyword spotting on 1x49x10 MFCCs, 12 classes).

    BatchNorm momentum is 0.99 in PyTorch's convention, as in the authors' port.
    """

    def __init__(self, num_classes: int = 12, width: int = 64, blocks: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, (10, 4), (2, 2), (5, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(width, momentum=0.99)
        self.drop1 = nn.Dropout(0.2)
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [
                nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=True),
                nn.BatchNorm2d(width, momentum=0.99),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, 1, 0, bias=True),
                nn.BatchNorm2d(width, momentum=0.99),
                nn.ReLU(),
            ]
        self.blocks = nn.Sequential(*layers)
        self.drop2 = nn.Dropout(0.4)
        self.pool = nn.AvgPool2d((25, 5))
        self.fc = nn.Linear(width, num_classes)
        _kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.drop2(self.blocks(x)))
        return self.fc(torch.flatten(x, 1))


def resnet8(num_classes: int = 10) -> nn.Module:
    """ResNet-8 for 3x32x32 inputs: 78,058 parameters, 12,501,632 MACs."""
    return ResNet8(3, num_classes)


def resnet8_digits(num_classes: int = 10) -> nn.Module:
    """ResNet-8 topology for the 1x8x8 digits: the stages of resnet8 with one input channel (8x8, 4x4, 2x2)."""
    return ResNet8(1, num_classes, pool=2)


def dscnn(num_classes: int = 12) -> nn.Module:
    """DS-CNN for 1x49x10 MFCC inputs: 23,756 parameters."""
    return DSCNN(num_classes)


def resnet18_tiny(num_classes: int = 200) -> nn.Module:
    """torchvision ResNet-18 with the Tiny ImageNet stem (3x3 stride-1 conv, no max-pool) for 64x64 inputs."""
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "resnet8": (resnet8, (3, 32, 32)),
    "dscnn": (dscnn, (1, 49, 10)),
    "resnet18_tiny": (resnet18_tiny, (3, 64, 64)),
    "resnet8_digits": (resnet8_digits, (1, 8, 8)),
}


def build(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    """The float model registered under `name` and its input shape (without the batch dimension)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODELS))}")
    factory, shape = MODELS[name]
    return factory(), shape
