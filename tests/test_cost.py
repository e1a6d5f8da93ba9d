import pytest
import torch

import joint
from joint import cost
from joint.cost import LayerShape, layer_cost
from joint.search import random_architecture

F64 = torch.float64


def one_layer(model, shape, cin, n, w, a=8):
    t = lambda v: torch.tensor([float(v)], dtype=F64)  # noqa: E731
    return float(layer_cost(cost.get(model), shape, t(cin)[0], t(n), t(w), t(1.0), t(a)))


CONV = LayerShape("conv", "conv", 16, 32, (3, 3), (1, 1), 1, (16, 16))
DW = LayerShape("dw", "dw", 64, 64, (3, 3), (1, 1), 64, (16, 16), bias=True)
FC = LayerShape("fc", "linear", 64, 10, bias=True)


@pytest.mark.parametrize("model,expected", [("size", 36_864), ("bitops", 75_497_472), ("mpic", 561_737.142857),
                                            ("ne16", 12_780)])
def test_conv_worked_example(model, expected):
    assert one_layer(model, CONV, 16, 32, 8) == pytest.approx(expected)


def test_conv_ne16_and_mpic_at_lower_precision():
    assert one_layer("ne16", CONV, 16, 32, 4) == 8_172
    assert one_layer("ne16", CONV, 16, 32, 2) == 5_868
    assert one_layer("mpic", CONV, 16, 32, 4) == pytest.approx(32 * 144 * 256 / 2.3)
    assert one_layer("mpic", CONV, 16, 32, 2) == pytest.approx(471_859.2)


def test_depthwise_worked_example():
    assert one_layer("size", DW, 48, 48, 4) == 1_728
    assert one_layer("ne16", DW, 48, 48, 4) == 17_604
    assert one_layer("bitops", DW, 48, 48, 4) == 3_538_944
    assert one_layer("mpic", DW, 48, 48, 4) == pytest.approx(48 * 9 * 256 / 2.3)  # MACs without the bias term


def test_linear_worked_example():
    assert one_layer("size", FC, 64, 10, 8) == 5_120
    assert one_layer("ne16", FC, 64, 10, 8) == 204
    assert one_layer("bitops", FC, 64, 10, 8) == 40_960


def test_ne16_normquant_rounds_a_fractional_channel_count_up_with_a_straight_through_gradient():
    # 1x1 layer, one input tile, one spatial tile, n = 2.25 soft channels: the remainder iteration is
    # 1 * (19 + 6 + (6 + k) + 2) + (9 + ceil(k)) + 13 with k = 2.25, so 35.25 + 12 + 13 = 60.25 (9 + k would give 59.5)
    point = LayerShape("pw", "conv", 16, 32, (1, 1), (1, 1), 1, (3, 3))
    n = torch.tensor([2.25], dtype=F64, requires_grad=True)
    value = layer_cost(cost.get("ne16"), point, torch.tensor(16.0, dtype=F64), n, torch.tensor([8.0], dtype=F64),
                       torch.ones(1, dtype=F64), torch.tensor([8.0], dtype=F64))
    assert float(value.detach()) == pytest.approx(60.25)
    value.backward()
    # straight-through slopes of 1: floor(n/32) brings one full iteration (119 cycles), the remainder's
    # (6 + k) and ceil(k) one cycle each
    assert float(n.grad) == pytest.approx(119 + 2)
    assert one_layer("ne16", point, 16, 3, 8) == 61  # integer counts are unchanged: 9 + k


def test_zero_bit_channels_cost_nothing_in_every_model():
    for model in cost.MODELS:
        assert one_layer(model, CONV, 16, 32, 0) == 0


def uniform(name, wbits, abits=8):
    model, shape = joint.models.build(name)
    space = joint.SearchSpace((wbits,), (abits,))
    return joint.searchable(model, space, torch.rand(1, *shape)).arch()


@pytest.mark.parametrize("wbits,kb", [(8, 77.36), (4, 38.68), (2, 19.34)])
def test_resnet8_size(wbits, kb):
    assert uniform("resnet8", wbits).size_kb() == pytest.approx(kb, abs=1e-9)


def test_dscnn_and_resnet18_tiny_size():
    assert uniform("dscnn", 8).size_kb() == pytest.approx(22.016, abs=1e-9)
    assert uniform("resnet18_tiny", 8).size_kb() == pytest.approx(11_261.632, abs=1e-6)


def test_resnet8_mpic_matches_the_paper():
    assert uniform("resnet8", 8).cost("mpic") == pytest.approx(12_501_632 / 2.1)  # 5.95e6 in the paper
    assert uniform("resnet8", 2).cost("mpic") == pytest.approx(12_501_632 / 2.5)  # 5.00e6


@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
@pytest.mark.parametrize("model", ["size", "bitops", "mpic", "ne16"])
def test_soft_cost_at_one_hot_equals_the_arch_cost(name, model):
    float_model, shape = joint.models.build(name)
    act_bits = (8,) if model == "ne16" else (2, 4, 8)
    net = joint.searchable(float_model, joint.SearchSpace((0, 2, 4, 8), act_bits), torch.rand(1, *shape))
    random_architecture(net, seed=3)
    net.train()
    soft = net.cost(model)
    arch = net.arch()
    assert 0 < arch.pruned_fraction() < 1
    assert soft.item() == pytest.approx(arch.cost(model), rel=1e-12)
    net.eval()
    assert net.cost(model).item() == pytest.approx(arch.cost(model), rel=1e-12)


@pytest.mark.parametrize("model", ["size", "mpic"])
def test_a_cost_model_called_layer_by_layer_equals_its_batched_call(model, monkeypatch):
    # a registered model that is not batched takes each layer alone: same value and gradients at a soft architecture
    monkeypatch.setitem(cost.MODELS, "one_by_one", cost.MODELS[model])
    torch.manual_seed(0)
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace((0, 2, 4, 8), (2, 4, 8)), torch.rand(1, 3, 32, 32))
    with torch.no_grad():
        for alpha in [*net.logits.values(), *net.act_logits.values()]:
            alpha.normal_()
    net.train()
    grads = []
    for name in (model, "one_by_one"):
        net.zero_grad()
        value = net.cost(name)
        value.backward(retain_graph=True)  # both calls share the thetas of one sampling
        grads.append((value.item(), [p.grad.clone() for p in net.arch_parameters()]))
    assert "one_by_one" not in cost.BATCHED
    assert grads[1][0] == pytest.approx(grads[0][0], rel=1e-12)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=0) for a, b in zip(grads[0][1], grads[1][1]))


def test_gradient_of_a_layer_cost_reaches_the_group_that_feeds_it(monkeypatch):
    monkeypatch.setitem(cost.MODELS, "s1c2_size", lambda layer, cin, n, a, w: (
        cost.size(layer, cin, n, a, w) if layer.name == "s1.c2" else torch.zeros_like(n * a)))
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace(), torch.rand(1, 3, 32, 32)).train()
    net.cost("s1c2_size").backward()
    assert net.logits["s1_c1"].grad.abs().sum() > 0  # through cin_eff of s1.c2
    assert net.logits["stem"].grad.abs().sum() > 0  # its own group
    assert net.logits["s2_c1"].grad is None or net.logits["s2_c1"].grad.abs().sum() == 0


def test_flatten_multiplier_counts_every_spatial_position():
    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4 * 5 * 5, 3)

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))

    net = joint.searchable(Flat(), joint.SearchSpace(), torch.rand(1, 1, 5, 5))
    with torch.no_grad():
        net.logits["conv"].copy_(1000.0 * torch.tensor([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1.0]]).T)
        net.logits["fc"].copy_(1000.0 * torch.tensor([[0, 0, 1.0]] * 3).T)
    arch = net.arch()
    assert arch.input_channels("fc") == 3 * 25
    assert arch.layer_cost("fc", "size") == 3 * 25 * 3 * 8
    assert net.train().cost("size").item() == arch.cost("size")


def test_bad_names_and_lambda():
    with pytest.raises(ValueError, match="unknown cost model 'latency'; allowed: bitops, mpic, ne16, size"):
        cost.get("latency")
    with pytest.raises(ValueError, match="lam must be a finite number >= 0; got -0.1"):
        cost.regularizer(torch.tensor(1.0), -0.1)
    assert float(cost.regularizer(torch.tensor(2.0), 0.5)) == 1.0


def test_mpic_rejects_precisions_outside_its_table():
    with pytest.raises(ValueError, match=r"mpic has no entry for \(activation bits, weight bits\) \[\(8, 3\)\]"):
        uniform("resnet8", 3).cost("mpic")


def test_cost_is_differentiable_and_cheap_to_call_twice():
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace(), torch.rand(1, 3, 32, 32)).train()
    first = net.cost("ne16")
    first.backward()
    assert all(p.grad is not None for p in net.logits.values())
    assert torch.equal(net.cost("ne16").detach(), first.detach())


@pytest.mark.parametrize("wbits,mpic,ne16", [(2, 5.00e6, 0.79e5), (4, 5.44e6, 1.04e5), (8, 5.95e6, 1.55e5)])
def test_resnet8_fixed_precision_points_of_the_paper_latency_figure(wbits, mpic, ne16):
    arch = uniform("resnet8", wbits)
    assert arch.cost("mpic") == pytest.approx(mpic, rel=0.005)
    assert arch.cost("ne16") == pytest.approx(ne16, rel=0.01)


def test_lut_reads_pairs_broadcast_zero_bits_cost_nothing_and_a_missing_pair_is_one_line():
    read = cost.lut("my_mcu", {(8, 8): 0.5, (8, 4): 0.25, (4, 4): 0.2})
    a, w = torch.tensor([[8.0], [4.0]], dtype=torch.float64), torch.tensor([[0.0, 4.0]], dtype=torch.float64)
    assert read(a, w).tolist() == [[0.0, 0.25], [0.0, 0.2]]
    with pytest.raises(ValueError, match=r"my_mcu has no entry for \(activation bits, weight bits\) \[\(4, 8\), "
                                         r"\(32, 8\)\]; allowed: \[\(4, 4\), \(8, 4\), \(8, 8\)\]"), cost.checking():
        read(torch.tensor([[4.0], [32.0], [8.0]]), torch.tensor([[8.0]]))
    # in a training step nothing is read back to check: a missing pair is NaN (nets check once, before the steps)
    assert torch.isnan(read(torch.tensor([[4.0]]), torch.tensor([[8.0]]))).all()


def test_every_model_knows_the_activation_precisions_its_target_runs():
    assert cost.TARGET_ACT_BITS == {"size": None, "bitops": None, "mpic": (2, 4, 8), "ne16": (8,)}
    assert [cost.search_act_bits(m) for m in ("size", "bitops", "mpic", "ne16")] == [(8,), (8,), (2, 4, 8), (8,)]
    with pytest.raises(ValueError, match="unknown cost model 'energy'"):
        cost.search_act_bits("energy")


def test_mpic_charges_lower_activation_precisions_less():
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace((8,), (2, 4, 8)), torch.rand(1, 3, 32, 32))
    macs = 12_501_632
    for index, bits in enumerate((2, 4, 8)):
        with torch.no_grad():
            for alpha in net.act_logits.values():
                alpha.copy_(1000.0 * torch.nn.functional.one_hot(torch.tensor(index), 3))
        net.eval()
        assert float(net.cost("mpic").detach()) == pytest.approx(macs / cost.MPIC_MACS_PER_CYCLE[(bits, 8)])
        assert net.arch().cost("mpic") == pytest.approx(macs / cost.MPIC_MACS_PER_CYCLE[(bits, 8)])
