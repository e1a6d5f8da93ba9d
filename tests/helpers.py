"""Shared helper: a float model with trained-looking BatchNorm statistics."""
import torch
from torch import nn


def trained_like(model):
    """Give BatchNorm non-trivial statistics and affine parameters, as after training."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()
