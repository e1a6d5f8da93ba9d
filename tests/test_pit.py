import pytest
import torch
from torch import nn

import joint
from helpers import trained_like
from joint.pit import channel_mask, prunable


def masked(name, seed, low=0.0, high=1.0):
    model, shape = joint.models.build(name)
    model = trained_like(model)
    x = torch.rand(8, *shape) if name == "resnet8" else torch.randn(8, *shape)
    net = prunable(model, x).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.copy_(low + (high - low) * torch.rand(alpha.shape, generator=gen))
    return model, net, x


def test_mask_threshold_keep_alive_and_straight_through():
    alpha = torch.tensor([0.2, 0.7, -0.9, 0.4], requires_grad=True)
    mask = channel_mask(alpha)
    assert mask.tolist() == [0.0, 1.0, 1.0, 0.0]
    mask.sum().backward()
    assert alpha.grad.tolist() == [1.0, 1.0, -1.0, 1.0]
    assert channel_mask(torch.tensor([0.1, 0.3, 0.2])).tolist() == [0.0, 1.0, 0.0]


def test_groups_are_the_joint_search_groups():
    _, net, _ = masked("resnet8", 0)
    pruned = {g for g, fixed in net.fixed.items() if not fixed}
    assert pruned == {"stem", "s1_c1", "s2_c1", "s2_c2", "s3_c1", "s3_c2"}
    assert net.wiring["s1.c2"].group == "stem" and net.wiring["s1.c2"].batchnorm == "s1.bn2"


def test_export_without_pruning_is_the_float_model():
    model, net, x = masked("resnet8", 0, low=1.0, high=1.0)
    with torch.no_grad():
        assert (net.export().eval()(x) - model(x)).abs().max().item() <= 1e-5  # BatchNorm kept intact


@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
def test_export_removes_channels_and_equals_the_masked_model(name):
    _, net, x = masked(name, 1)
    small = net.export().eval()
    with torch.no_grad():
        expected = net(x)
        assert (small(x) - expected).abs().max().item() <= 1e-5 and expected.abs().max() > 0.1
    kept = net.kept()
    for layer, wire in net.wiring.items():
        assert small.get_submodule(layer).weight.shape[0] == len(kept[wire.group])
        if wire.batchnorm:
            assert small.get_submodule(wire.batchnorm).running_mean.shape[0] == len(kept[wire.group])
    assert net.discrete_cost() == sum(p.numel() for n, p in small.named_parameters()
                                      if isinstance(small.get_submodule(n.rsplit(".", 1)[0]), (nn.Conv2d, nn.Linear)))
    assert any(len(k) < net.channels[g] for g, k in kept.items())


def test_soft_cost_at_binary_alphas_equals_the_discrete_cost_and_reaches_the_producer():
    _, net, _ = masked("resnet8", 2)
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.copy_((alpha > 0.5).float())
            alpha[0] = 1.0
    assert net.cost().item() == net.discrete_cost()
    assert net.discrete_cost() < 78_058 - 480  # fewer than the unpruned weights + biases
    net.cost().backward()
    assert net.mask("s1_c1").alpha.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="cost must be 'params', got 'size'"):
        net.cost("size")


def test_all_masks_low_keeps_one_channel_per_group():
    _, net, x = masked("resnet8", 3, low=0.0, high=0.4)
    assert all(len(k) == 1 for g, k in net.kept().items() if not net.fixed[g])
    assert net.export().eval()(x).shape == (8, 10)
