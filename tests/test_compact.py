import io

import pytest
import torch

import joint
from helpers import trained_like
from joint import compact
from joint.search import random_architecture


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 7, 8, 16])
def test_codes_pack_into_their_bits_and_back(bits):
    codes = torch.randint(-(2 ** (bits - 1)), 2 ** (bits - 1), (1001,), generator=torch.Generator().manual_seed(bits))
    packed = compact.pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and len(packed) == -(-1001 * bits // 8)
    assert torch.equal(compact.unpack_bits(packed, bits, 1001), codes)


def trained_net(name, space, seed=3):
    """A searchable net with a random mixed architecture (pruned channels, 2/4/8 bits), clips and biases."""
    model, shape = joint.models.build(name)
    torch.manual_seed(0)
    x = torch.rand(8, *shape)
    net = joint.searchable(trained_like(model), space, x)
    random_architecture(net, seed)
    with torch.no_grad():
        for key in net.act_signed:
            net.act(key).clip.uniform_(0.5, 3.0)
        for name in net.wiring:
            if net.layer(name).bias is not None:
                net.layer(name).bias.normal_()
    return net, x


@pytest.mark.parametrize("name,space", [("resnet8", joint.SearchSpace((0, 2, 4, 8), (2, 4, 8))),
                                        ("dscnn", joint.SearchSpace((0, 2, 4, 8), (8,))),
                                        ("resnet8", joint.SearchSpace((2, 4, 8), (8,), "layer"))])
def test_a_packed_net_reloads_bit_for_bit_without_data(name, space):
    net, x = trained_net(name, space)
    expected = net.eval()(x)
    data = compact.pack(net)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    model, shape = joint.models.build(name)  # fresh weights: only the structure is used
    again = compact.load(model, shape, torch.load(buffer))
    assert torch.equal(again.eval()(x), expected)
    assert again.arch().to_dict() == net.arch().to_dict() and again.sampling == "hard"
    assert len(data["codes"]) == pytest.approx(net.arch().cost("size") / 8, rel=0.01)  # the integer weights only


def test_a_range_set_by_an_input_pruned_upstream_is_kept():
    net, x = trained_net("resnet8", joint.SearchSpace((0, 2, 4, 8), (8,)))
    arch = net.arch()
    source = arch.layers[arch.layers["s1.c1"].input_source].weight_bits
    pruned = source.index(0)
    with torch.no_grad():  # the largest weight of every channel of s1.c1 reads a channel that no longer exists
        net.layer("s1.c1").weight[:, pruned, 0, 0] = 10.0
    expected = net.eval()(x)
    model, shape = joint.models.build("resnet8")
    assert torch.equal(compact.load(model, shape, compact.pack(net)).eval()(x), expected)


def test_something_else_is_not_a_compact_model():
    model, shape = joint.models.build("resnet8")
    with pytest.raises(ValueError, match="not a compact model of format 'joint-compact-1'"):
        compact.load(model, shape, {"weights": []})
