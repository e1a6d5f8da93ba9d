import pytest
import torch

import joint
from helpers import random_assignment, trained_like


def searched(name, seed, act_bits=(8,)):
    torch.manual_seed(seed)
    model, shape = joint.models.build(name)
    x = torch.rand(8, *shape) if name == "resnet8" else torch.randn(8, *shape)
    net = joint.searchable(trained_like(model), joint.SearchSpace((0, 2, 4, 8), act_bits), x)
    random_assignment(net, seed)
    return net.eval(), x


@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_export_equals_the_searchable_model_in_eval(name, seed):
    net, x = searched(name, seed, act_bits=(8,) if seed == 0 else (2, 4, 8))
    small = joint.export(net)
    with torch.no_grad():
        expected = net(x)
        got = small(x)
    assert (got - expected).abs().max().item() <= 1e-5
    assert expected.abs().max() > 0.1


@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
def test_pruned_channels_are_physically_removed(name):
    net, _ = searched(name, 2)
    arch = net.arch()
    small = joint.export(net)
    stored_bits = 0
    for layer_name, layer in arch.layers.items():
        module = small.get_submodule(layer_name)
        assert module.weight.shape[0] == layer.alive
        assert module.weight_bits.tolist() == [b for b in layer.weight_bits if b > 0]
        if layer.shape.kind == "dw":
            assert module.groups == layer.alive
        else:
            assert module.weight.shape[1] == arch.input_channels(layer_name)
        per_channel = module.weight[0].numel()
        stored_bits += per_channel * int(module.weight_bits.sum())
    assert stored_bits == arch.cost("size")
    assert arch.pruned_fraction() > 0.1


def test_exported_weights_lie_on_their_grid():
    net, _ = searched("resnet8", 4)
    small = joint.export(net)
    conv = small.get_submodule("s2.c2")
    codes = conv.weight / conv.weight_scale.view(-1, 1, 1, 1)
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    hi = (2 ** (conv.weight_bits - 1) - 1).view(-1, 1, 1, 1)
    assert (codes.round() <= hi).all() and (codes.round() >= -hi - 1).all()


def test_export_of_a_fresh_net_keeps_every_channel():
    model = trained_like(joint.models.resnet8())
    x = torch.rand(4, 3, 32, 32)
    net = joint.searchable(model, joint.SearchSpace((8,), (8,)), x).eval()
    small = joint.export(net)
    assert sum(p.numel() for n, p in small.named_parameters() if n.endswith("weight")) == 77_360
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-5)
        assert torch.allclose(small(x), model(x), atol=0.05 * model(x).abs().max().item())


def test_keep_alive_choice_is_the_same_in_eval_arch_and_export_at_low_temperature():
    net, x = searched("resnet8", 6)
    with torch.no_grad():
        alpha = net.logits["s1_c1"]
        alpha.copy_(torch.randn(alpha.shape, generator=torch.Generator().manual_seed(0), dtype=alpha.dtype))
        alpha[0] = alpha.max() + 1 + torch.rand(alpha.shape[1], dtype=alpha.dtype)  # every channel argmaxes to 0
    net.set_temperature(0.1)
    assert net.arch().layers["s1.c1"].alive == 1
    with torch.no_grad():
        assert (joint.export(net)(x) - net.eval()(x)).abs().max().item() <= 1e-5
