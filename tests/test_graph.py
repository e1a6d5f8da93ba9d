import pytest
import torch
import torchvision
from torch import nn

import joint
from helpers import trained_like
from joint.graph import ConversionError, fold_batchnorm, trace


@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
def test_batchnorm_folding_keeps_the_eval_output(name):
    model, shape = joint.models.build(name)
    model = trained_like(model)
    x = torch.rand(4, *shape)
    gm = trace(model, x)
    fold_batchnorm(gm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gm.modules())
    with torch.no_grad():
        assert torch.allclose(gm(x), model(x), atol=1e-5)


def resnet8_net(space=None):
    return joint.searchable(joint.models.resnet8(), space or joint.SearchSpace(), torch.rand(2, 3, 32, 32))


def test_resnet8_channel_groups():
    net = resnet8_net()
    groups = {tuple(g.layers): g.prunable for g in net.groups.values()}
    assert groups == {("stem", "s1.c2"): True, ("s1.c1",): True, ("s2.c1",): True, ("s2.c2", "s2.down"): True,
                      ("s3.c1",): True, ("s3.c2", "s3.down"): True, ("fc",): False}
    assert net.groups["fc"].bits == (2, 4, 8)
    assert net.wiring["s2.down"].input_group == "stem"  # the identity shortcut feeds stage 2
    assert net.wiring["fc"].input_group == "s3_c2"


def test_residual_branches_are_signed_and_output_not_quantized():
    net = resnet8_net()
    signed = net.act_signed
    assert signed["s1_c2"] and signed["s2_c2"] and signed["s2_down"]
    assert not signed["stem"] and not signed["add"] and not signed["s1_c1"]
    assert "fc" not in signed
    assert not signed["x"]  # inputs in [0, 1]


def test_depthwise_shares_its_producer_group():
    net = joint.searchable(joint.models.dscnn(), joint.SearchSpace(), torch.randn(2, 1, 49, 10))
    assert net.wiring["blocks.0"].group == net.wiring["conv1"].group
    assert net.wiring["blocks.3"].group != net.wiring["conv1"].group
    assert net.act_signed["x"]  # MFCC inputs can be negative


@pytest.mark.parametrize("make,shape", [(joint.models.resnet18_tiny, (3, 64, 64)),
                                        (torchvision.models.resnet18, (3, 64, 64)),
                                        (torchvision.models.mobilenet_v2, (3, 64, 64))])
def test_converts_bigger_models_without_edits(make, shape):
    model = make().eval()
    net = joint.searchable(model, joint.SearchSpace(), torch.rand(2, *shape)).eval()
    out = net(torch.rand(2, *shape))
    assert out.shape == model(torch.rand(2, *shape)).shape
    assert sum(not g.prunable for g in net.groups.values()) == 1


def test_conversion_leaves_the_model_untouched():
    model = trained_like(joint.models.resnet8())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    joint.searchable(model, joint.SearchSpace(), torch.rand(2, 3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.sigmoid(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("model,node", [(Concat(), "cat"), (Sigmoid(), "sigmoid")])
def test_unsupported_node_is_named(model, node):
    with pytest.raises(ConversionError, match=f"node '{node}'"):
        joint.searchable(model, joint.SearchSpace(), torch.rand(1, 3, 8, 8))


def test_rejected_input_shape_is_one_clear_error():
    with pytest.raises(ValueError, match=r"example_input of shape \(1, 1, 32, 32\) is rejected by the model"):
        joint.searchable(joint.models.resnet8(), joint.SearchSpace(), torch.rand(1, 1, 32, 32))


class InputResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return x + self.c2(torch.relu(self.c1(x)))


def test_input_is_quantized_even_when_it_reaches_the_output_through_an_add():
    net = joint.searchable(InputResidual(), joint.SearchSpace(), torch.rand(1, 3, 8, 8))
    assert net.wiring["c1"].input_act == "x"
    assert not any(g.prunable for g in net.groups.values() if "c2" in g.layers)
    assert net.arch().cost("mpic") > 0


class Odd(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect" if kind == "reflect" else "zeros")
        self.act = nn.Hardtanh(0.1, 6.0) if kind == "hardtanh" else nn.ReLU()
        self.fc = nn.Linear(8 if kind == "linear4d" else 4, 2)

    def forward(self, x):
        y = self.act(self.conv(x))
        return self.fc(y) if self.kind == "linear4d" else self.fc(torch.flatten(y.mean((2, 3), keepdim=True), 1))


@pytest.mark.parametrize("kind,message", [("reflect", "node 'conv'.*padding_mode 'reflect'"),
                                          ("hardtanh", "node 'act'"),
                                          ("linear4d", "node 'fc'.*Linear layers must take")])
def test_constructs_that_would_break_exact_pruning_are_rejected(kind, message):
    with pytest.raises(ConversionError, match=message):
        joint.searchable(Odd(kind), joint.SearchSpace(), torch.rand(1, 3, 8, 8))
