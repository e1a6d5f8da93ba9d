"""Datasets held in memory as one tensor, read a batch at a time, with per-sample random augmentation applied to
the whole batch in one op (decoding and augmenting image by image costs a third of a CIFAR-10 step on a CPU)."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset


class TensorData(Dataset):
    """Samples stored as one tensor (uint8 images are scaled to [0, 1] on read) with integer labels; `augment`
    maps a float batch (N, C, H, W) to an augmented batch, drawing each sample's randomness from torch's RNG."""

    def __init__(self, inputs: Tensor, labels: Tensor, augment: Callable[[Tensor], Tensor] | None = None):
        if len(inputs) != len(labels):
            raise ValueError(f"inputs and labels must have the same length; got {len(inputs)} and {len(labels)}")
        self.inputs, self.labels, self.augment = inputs, labels.long(), augment

    def __len__(self) -> int:
        return len(self.labels)

    def _prepare(self, x: Tensor) -> Tensor:
        x = x.float().div_(255) if x.dtype == torch.uint8 else x
        return self.augment(x) if self.augment is not None else x

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self._prepare(self.inputs[i:i + 1])[0], int(self.labels[i])

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                shuffle: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
        """(inputs, labels) batches in order, or in the order torch.randperm draws from `generator` (the order a
        DataLoader with shuffle=True and that generator uses)."""
        order = torch.randperm(len(self), generator=generator) if shuffle else None
        for start in range(0, len(self), batch_size):
            if order is None:
                index = slice(start, start + batch_size)
            else:
                index = order[start:start + batch_size]
            yield self._prepare(self.inputs[index]), self.labels[index]


def random_affine(x: Tensor, degrees: float = 15.0, translate: float = 0.1, flip: float = 0.5) -> Tensor:
    """Per-sample RandomRotation(degrees), RandomAffine(translate) and RandomHorizontalFlip(flip), as torchvision
    draws them (angle uniform, whole-pixel shifts, nearest neighbour, zero fill), in one resampling of the batch."""
    n, _, h, w = x.shape
    angle = torch.empty(n).uniform_(-degrees, degrees) * (math.pi / 180)
    shift_x = torch.empty(n).uniform_(-translate * w, translate * w).round()
    shift_y = torch.empty(n).uniform_(-translate * h, translate * h).round()
    flipped = torch.rand(n) < flip
    return affine_batch(x, angle, shift_x, shift_y, flipped)


def affine_batch(x: Tensor, angle: Tensor, shift_x: Tensor, shift_y: Tensor, flipped: Tensor) -> Tensor:
    """Rotate each image by `angle` (radians, counter-clockwise) about its centre, shift it by whole pixels, then
    mirror the `flipped` ones; nearest neighbour, zero outside the image."""
    n, _, h, w = x.shape
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output pixel -> input pixel, in the [-1, 1] coordinates of grid_sample: undo the shift, then the rotation
    sx, sy = 2 * shift_x / w, 2 * shift_y / h
    theta = torch.stack([torch.stack([cos, -sin * h / w, -(cos * sx - sin * sy * h / w)], 1),
                         torch.stack([sin * w / h, cos, -(sin * sx * w / h + cos * sy)], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return torch.where(flipped.view(n, 1, 1, 1), out.flip(-1), out)
