import json

import pytest
import torch

import joint
from joint.arch import LayerArch
from joint.cost import LayerShape
from joint.search import random_architecture


def mixed_arch():
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace((0, 2, 4, 8), (2, 4, 8)), torch.rand(1, 3, 32, 32))
    random_architecture(net, seed=5)
    return net.arch()


def test_arch_names_layers_after_the_float_model():
    arch = mixed_arch()
    assert list(arch.layers) == [n for n, m in joint.models.resnet8().named_modules()
                                 if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert arch.layers["s1.c2"].weight_bits == arch.layers["stem"].weight_bits  # one group
    assert 0 not in arch.layers["fc"].weight_bits


def test_json_round_trip_keeps_every_cost(tmp_path):
    arch = mixed_arch()
    path = tmp_path / "arch.json"
    arch.save(path)
    again = joint.Arch.load(path)
    assert again.to_dict() == arch.to_dict()
    for model in ("size", "bitops", "mpic", "ne16"):
        assert again.cost(model) == arch.cost(model)
    assert again.size_kb() == arch.cost("size") / 8000


def test_malformed_arch_is_one_clear_error():
    data = mixed_arch().to_dict()
    del data["layers"]["s1.c1"]["weight_bits"]
    with pytest.raises(ValueError, match="missing or malformed field 'weight_bits'"):
        joint.Arch.from_dict(data)
    data = json.loads(json.dumps(mixed_arch().to_dict()))
    data["layers"]["s1.c1"]["weight_bits"] = [8] * 3
    with pytest.raises(ValueError, match="layer s1.c1: weight_bits must hold 16 integers >= 0"):
        joint.Arch.from_dict(data)


def one_layer(bits):
    shape = LayerShape(name="c", kind="conv", cin=16, cout=32, kernel=(3, 3), stride=(1, 1), groups=1,
                       out_hw=(16, 16), bias=False)
    return joint.Arch({"c": LayerArch(shape, bits, "x", None)}, {"x": 8})


def test_one_precision_per_layer_keeps_the_channels_at_the_layers_highest_precision():
    # method notes 3.6 example 1 (conv 3x3, 16 -> 32 channels, 16x16 output): 32 channels at 8 bits are 36 x 355
    # NE16 cycles; 16 of them at 4 bits run as a second sub-layer: 36 x (211 + 147), more cycles for fewer bits
    split = one_layer([8] * 16 + [4] * 16)
    single = split.one_precision_per_layer()
    assert single.layers["c"].weight_bits == [8] * 32 and split.layers["c"].weight_bits[-1] == 4
    assert (split.cost("ne16"), single.cost("ne16")) == (12_888, 12_780)
    assert (split.precision_groups(), single.precision_groups()) == (2, 1)
    pruned = one_layer([8] * 16 + [0] * 8 + [2] * 8).one_precision_per_layer()
    assert pruned.layers["c"].weight_bits == [8] * 16 + [0] * 8 + [8] * 8
