import copy

import pytest
import torch

import joint
from joint.quant import quantize_weight_stack, weight_grid
from joint.search import SearchSpace, at_activation_bits, hard_choice, init_logits, random_architecture, sample


def net_for(space=None, seed=0):
    torch.manual_seed(seed)
    return joint.searchable(joint.models.resnet8(), space or SearchSpace(), torch.rand(2, 3, 32, 32))


def test_logits_init_and_softmax_at_t1():
    alpha = init_logits((0, 2, 4, 8), 3)
    assert alpha[:, 0].tolist() == [0.0, 0.25, 0.5, 1.0]
    theta = sample(alpha, 1.0, "softmax", 0)
    assert theta[:, 1].tolist() == pytest.approx([0.15035, 0.19306, 0.24789, 0.40870], abs=1e-5)
    assert float((theta[:, 0] * torch.tensor([0.0, 2, 4, 8])).sum()) == pytest.approx(4.6473, abs=1e-4)


def test_temperature_sharpens():
    alpha = init_logits((0, 2, 4, 8), 1)
    assert sample(alpha, 0.1, "softmax", 0)[3, 0] > 0.99


def test_hard_is_one_hot_with_straight_through_gradient():
    alpha = torch.tensor([[0.1, 2.0], [1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    theta = sample(alpha, 1.0, "hard", 0)
    assert theta.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    (theta * torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)).sum().backward()
    assert alpha.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["softmax", "hard"])
def test_a_single_precision_is_its_softmax_exactly_and_takes_no_gradient(mode):
    alpha = torch.tensor([[0.3, -2.0, 7.5]], dtype=torch.float64, requires_grad=True)
    theta = sample(alpha, 0.37, mode, None)
    assert torch.equal(theta, torch.softmax(alpha / 0.37, dim=0)) and torch.equal(theta, torch.ones_like(alpha))
    assert not theta.requires_grad


def test_all_pruned_group_keeps_its_least_pruned_channel_alive():
    theta = torch.tensor([[0.9, 0.6, 0.8], [0.1, 0.4, 0.2]])
    assert hard_choice(theta, 0).tolist() == [0, 1, 0]


def test_gumbel_draws_one_sample_per_group_shared_by_its_layers():
    net = net_for().train()
    net.set_sampling("gumbel")
    net(torch.rand(2, 3, 32, 32))
    stem, s1c2 = net.layer("stem"), net.layer("s1.c2")
    assert stem.theta is s1c2.theta
    first = stem.theta.clone()
    net(torch.rand(2, 3, 32, 32))
    assert not torch.equal(first, stem.theta)


def test_eval_uses_argmax_and_freeze_stops_logit_training():
    net = net_for()
    net.eval()
    net(torch.rand(1, 3, 32, 32))
    assert set(net.layer("s1.c1").theta.unique().tolist()) <= {0.0, 1.0}
    net.train()
    net.freeze()
    net(torch.rand(1, 3, 32, 32))
    assert set(net.layer("s1.c1").theta.unique().tolist()) <= {0.0, 1.0}
    assert all(not p.requires_grad for p in net.arch_parameters())


def test_soft_bias_is_gated_by_the_pruning_probability():
    net = net_for(SearchSpace((0, 8), (8,)))
    with torch.no_grad():
        net.logits["s1_c1"][0, :] = 5.0  # theta_0 = e^5 / (e^5 + e^1) = 0.982 everywhere
        net.layer("s1.c1").bias = torch.nn.Parameter(torch.full((16,), 2.0))
    net.train()
    net(torch.rand(1, 3, 32, 32))
    _, bias, _ = net.layer("s1.c1").effective_params()
    theta0 = net.layer("s1.c1").theta[0]
    assert torch.allclose(bias.abs(), 2.0 * (1 - theta0), rtol=1e-2)
    assert bias.abs().max() < 2.0 * 0.019


def test_compensation_starts_the_soft_mixture_at_the_float_layer():
    net = net_for(SearchSpace((0, 8), (8,)))  # theta = softmax(0, 1) = (0.269, 0.731) at T = 1
    layer = net.layer("s1.c1")
    float_weight, float_bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    net.train().compensate()
    net(torch.rand(1, 3, 32, 32))
    weight, bias, scale = layer.effective_params()
    assert torch.allclose(layer.weight * 0.7311, float_weight, rtol=1e-4)
    assert ((weight - float_weight).abs().flatten(1).amax(1) <= 0.5 * scale + 1e-6).all()  # 8-bit rounding only
    assert torch.allclose(bias, float_bias, atol=1e-3)


def test_compensated_mixture_is_the_mixture_of_the_unpruned_precisions():
    net = net_for()
    layer = net.layer("s2.c1")
    float_weight = layer.weight.detach().clone()
    net.train().compensate()
    net(torch.rand(1, 3, 32, 32))
    weight, _, _ = layer.effective_params()
    theta = torch.softmax(init_logits((0, 2, 4, 8), 1)[:, 0], dim=0).float()
    alive = theta[1:] / theta[1:].sum()
    stack, _ = quantize_weight_stack(float_weight, weight_grid(torch.tensor([2, 4, 8])))
    expected = (alive.view(3, 1, 1, 1, 1) * stack).sum(0)
    off = (weight - expected).abs() > 1e-6  # Q(W / a) * a = Q(W) but where float rounding moves a tie to its neighbour
    assert off.float().mean() < 0.01


def test_pruned_channel_outputs_exact_zero_in_eval():
    net = net_for()
    with torch.no_grad():
        net.logits["s1_c1"][0, :5] = 10.0
    net.eval()
    captured = {}
    net.layer("s1.c1").register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    net(torch.rand(2, 3, 32, 32))
    assert torch.equal(captured["out"][:, :5], torch.zeros_like(captured["out"][:, :5]))
    assert (captured["out"][:, 5:] != 0).any()


def test_layer_granularity_gives_one_decision_per_layer():
    net = net_for(SearchSpace((2, 4, 8), (8,), "layer"))
    assert all(p.shape[1] == 1 for p in net.logits.values())
    with torch.no_grad():
        net.logits["s2_c1"][0] = 3.0
    assert set(net.arch().layers["s2.c1"].weight_bits) == {2}


def test_activation_precision_search_has_logits_per_quantizer():
    net = net_for(SearchSpace((0, 2, 4, 8), (2, 4, 8)))
    assert set(net.act_logits) == set(net.act_signed)
    net.train()
    out = net(torch.rand(2, 3, 32, 32))
    (out.sum() + net.cost("mpic") * 1e-7).backward()
    assert all(p.grad is not None for p in net.act_logits.values())


@pytest.mark.parametrize("kwargs,message", [
    (dict(act_bits=(0, 8)), "act_bits must not contain 0"),
    (dict(weight_bits=(2, 2, 8)), "weight_bits must not repeat a precision"),
    (dict(weight_bits=(-2, 8)), r"weight_bits must contain distinct integers in 0\.\.16; got -2"),
    (dict(weight_bits=(2.5, 8)), "weight_bits must contain distinct integers in 0..16; got 2.5"),
    (dict(act_bits=()), "act_bits must be a non-empty set"),
    (dict(granularity="tensor"), "granularity must be one of channel, layer; got 'tensor'"),
    (dict(granularity="layer"), "must not contain 0 with granularity='layer'"),
])
def test_search_space_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_bad_sampling_and_temperature():
    net = net_for()
    with pytest.raises(ValueError, match="sampling must be one of softmax, gumbel, hard; got 'argmax'"):
        net.set_sampling("argmax")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        net.set_temperature(0)


def test_deepcopy_after_a_forward():
    import copy
    net = net_for().train()
    net.cost("size") + net(torch.rand(1, 3, 32, 32)).sum()
    twin = copy.deepcopy(net).eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(twin(x), net.eval()(x))


def test_temperature_travels_with_the_state_dict():
    net = net_for()
    net.set_temperature(0.3)
    twin = net_for(seed=1)
    twin.load_state_dict(net.state_dict())
    assert twin.temperature == pytest.approx(0.3)


def test_hard_theta_is_exactly_one_hot_in_the_forward():
    alpha = torch.tensor([[0.0, 0.3], [0.4087, 0.1], [1.0, 0.2]], dtype=torch.float64, requires_grad=True)
    theta = sample(alpha, 0.37, "hard", 0)
    assert theta.detach().tolist() == [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]  # exact 0 and 1, not 1 - ulp


def test_a_fresh_net_is_at_its_initial_choice_and_a_moved_one_is_not():
    net = net_for()
    assert net.at_initial_choice()
    random_architecture(net, 3)
    assert not net.at_initial_choice()


def test_at_activation_bits_runs_every_activation_at_8_bits_on_the_clip_it_chose():
    net = net_for(SearchSpace((0, 2, 4, 8), (2, 4, 8)))
    random_architecture(net, 1)
    with torch.no_grad():
        for key in net.act_logits:
            net.act(key).clip.copy_(torch.tensor([1.0, 2.0, 3.0]))  # one clip per precision
    chosen = {key: int(alpha.argmax()) for key, alpha in net.act_logits.items()}
    assert set(chosen.values()) != {2}  # some activation chose fewer than 8 bits
    eight = at_activation_bits(net, 8)
    assert set(eight.arch().activations.values()) == {8}
    assert eight.arch().layers == net.arch().layers  # the weights' choices are untouched
    for key, index in chosen.items():
        assert float(eight.act(key).clip[2].detach()) == [1.0, 2.0, 3.0][index]
        assert int(net.act_logits[key].argmax()) == index  # the original is left as it was
    x = torch.rand(4, 3, 32, 32)
    assert not torch.equal(eight.eval()(x), net.eval()(x))
    with pytest.raises(ValueError, match=r"bits must be one of the searched activation precisions \(2, 4, 8\); got 6"):
        at_activation_bits(net, 6)


def test_a_random_architecture_is_one_hot_keeps_every_group_alive_and_follows_its_seed():
    net = random_architecture(net_for(SearchSpace((0, 2, 4, 8), (2, 4, 8))), 5)
    thetas, act_thetas = net.thetas()
    for g, theta in thetas.items():
        assert set(theta.unique().tolist()) <= {0.0, 1.0}  # softmax exactly one-hot at temperature 1
        assert net.arch().layers[net.groups[g].layers[0]].alive >= 1
    assert all(set(t.unique().tolist()) == {0.0, 1.0} for t in act_thetas.values())
    again = random_architecture(net_for(SearchSpace((0, 2, 4, 8), (2, 4, 8))), 5).arch()
    other = random_architecture(net_for(SearchSpace((0, 2, 4, 8), (2, 4, 8))), 6).arch()
    assert again == net.arch() and other != net.arch()
    assert len({b for layer in net.arch().layers.values() for b in layer.weight_bits}) == 4  # every precision drawn


@pytest.mark.parametrize("model", ["size", "mpic", "ne16"])
def test_a_compiled_cost_gives_the_eager_values_and_gradients_and_compiles_once(model):
    eager = net_for(SearchSpace((0, 2, 4, 8), (8,) if model == "ne16" else (2, 4, 8))).train()
    with torch.no_grad():
        for alpha in eager.arch_parameters():
            alpha.normal_()
    compiled = copy.deepcopy(eager)
    compiled.compile_cost()
    torch._dynamo.utils.counters.clear()
    for _ in range(2):  # the logits move between calls: each samples afresh
        values = []
        for net in (eager, compiled):
            net.zero_grad()
            value = net.cost(model)
            value.backward()
            values.append((value.detach(), [p.grad for p in net.arch_parameters()]))
            with torch.no_grad():
                net.logits["stem"][0].add_(0.5)  # more pruning of the first group
        (a, grads_a), (b, grads_b) = values
        assert torch.allclose(a, b, rtol=1e-12, atol=0) and not torch.equal(a, eager.cost(model).detach())
        for ga, gb in zip(grads_a, grads_b):
            assert torch.allclose(ga, gb, rtol=1e-9, atol=1e-12 * float(ga.abs().max()))
    with torch.no_grad():  # a validation cost runs uncompiled: no compilation for it
        assert torch.equal(compiled.cost(model), eager.cost(model))
    compiled.to("cpu").cost(model).backward()  # a validation's move to the device the net is on keeps the compiled cost
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
