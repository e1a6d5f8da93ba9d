import pytest
import torch

import joint
from joint.graph import describe


def counts(name):
    model, shape = joint.models.build(name)
    layers = describe(model, torch.zeros(1, *shape))
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return params, sum(s.weights for s in layers), sum(s.macs for s in layers), model(torch.zeros(2, *shape)).shape


def test_resnet8_counts():
    assert counts("resnet8") == (78_058, 77_360, 12_501_632, (2, 10))


def test_dscnn_counts():
    params, weights, macs, out = counts("dscnn")
    assert (params, weights, out) == (23_756, 22_016, (2, 12))
    assert macs == pytest.approx(2.66e6, rel=0.01)


def test_resnet18_tiny_counts():
    params, weights, macs, out = counts("resnet18_tiny")
    assert (params, weights, out) == (11_271_432, 11_261_632, (2, 200))
    assert macs == pytest.approx(2.22e9, rel=0.01)


def test_unknown_model_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet9'; allowed: dscnn, resnet18_tiny, resnet8"):
        joint.models.build("resnet9")
