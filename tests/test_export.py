import re

import onnx
import onnxruntime
import pytest
import torch
import torchvision

import joint
from helpers import trained_like
from joint.config import RunConfig
from joint.experiments import run
from joint.export import _OnnxGraph as OnnxGraph
from joint.export import compare_onnx, onnx_accuracy, onnx_sizes, required_opset
from joint.search import random_architecture
from joint.store import Store, load_model, project_path


def searched(name, seed, act_bits=(8,)):
    torch.manual_seed(seed)
    model, shape = joint.models.build(name)
    x = torch.rand(8, *shape) if name == "resnet8" else torch.randn(8, *shape)
    net = joint.searchable(trained_like(model), joint.SearchSpace((0, 2, 4, 8), act_bits), x)
    random_architecture(net, seed)
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


def onnx_case(name, act_bits, seed=3, size=None):
    """A frozen searchable net with a random architecture: pruned channels, 2/4/8-bit weights (and activations)."""
    if name in ("resnet18", "mobilenet_v2"):
        model, shape = getattr(torchvision.models, name)(num_classes=10), (3, size, size)
    else:
        model, shape = joint.models.build(name)
    torch.manual_seed(seed)
    x = torch.rand(4, *shape) if name != "dscnn" else torch.randn(4, *shape)
    net = joint.searchable(trained_like(model), joint.SearchSpace((0, 2, 4, 8), act_bits), x)
    random_architecture(net, seed)
    net.freeze()
    return net.eval(), x


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


@pytest.mark.parametrize("name,act_bits,size", [("resnet8", (2, 4, 8), None), ("resnet8", (8,), None),
                                                ("dscnn", (8,), None), ("resnet18", (8,), 32),
                                                ("mobilenet_v2", (8,), 32)])
def test_onnx_runtime_computes_what_the_searchable_model_computes(tmp_path, name, act_bits, size):
    net, x = onnx_case(name, act_bits, size=size)
    model = joint.export_onnx(net, tmp_path / "m.onnx")
    with torch.no_grad():
        expected = net(x)
    assert torch.equal(run_onnx(tmp_path / "m.onnx", x).argmax(1), expected.argmax(1))
    # node by node: quantizers bit for bit, layers and the rest up to float summation order
    check = compare_onnx(net, x)
    assert check["quantizers"] == 0.0 and check["layers"] <= 1e-4 and check["other"] <= 1e-5
    arch = net.arch()
    stored = {t.name: t for t in model.graph.initializer}
    sizes = onnx_sizes(model)
    assert sizes["weights"] == pytest.approx(arch.cost("size") / 8, rel=0.01)  # int8/int4/int2, packed
    assert sizes["weight_scales"] == 4 * sum(layer.alive for layer in arch.layers.values())
    kinds = {onnx.TensorProto.DataType.Name(t.data_type) for n, t in stored.items() if re.fullmatch(r".*\.w\d+", n)}
    assert kinds == {"INT2", "INT4", "INT8"}
    acts = {onnx.TensorProto.DataType.Name(t.data_type) for n, t in stored.items() if n.endswith("zero_point")}
    assert acts >= ({"UINT2", "UINT4", "UINT8"} if act_bits == (2, 4, 8) else {"UINT8"})
    assert model.opset_import[0].version == 25


def test_pruned_channels_are_not_in_the_onnx_file(tmp_path):
    net, _ = onnx_case("resnet8", (8,))
    model = joint.export_onnx(net, tmp_path / "m.onnx")
    stored = {t.name: t for t in model.graph.initializer}
    for name, layer in net.arch().layers.items():
        node = name.replace(".", "_")
        rows = sum(stored[f"{node}.w{p}"].dims[0] for p in (2, 4, 8) if f"{node}.w{p}" in stored)
        assert rows == layer.alive


def test_an_older_opset_is_allowed_only_when_no_precision_needs_a_newer_one(tmp_path):
    net, x = onnx_case("resnet8", (8,))
    with torch.no_grad():
        for g, alpha in net.logits.items():  # no 2-bit weights left: int4 needs opset 21
            alpha[net.groups[g].bits.index(2)] = -1e3
    assert required_opset(net) == 21
    model = joint.export_onnx(net, tmp_path / "m.onnx", opset=21)
    assert model.opset_import[0].version == 21
    assert compare_onnx(net, x, opset=21)["quantizers"] == 0.0
    with pytest.raises(ValueError, match=r"opset 13 cannot hold this model's precisions; allowed: 21 to \d+ "
                                         r"\(int4/uint4 need 21, int2/uint2 need 25\)"):
        joint.export_onnx(net, tmp_path / "old.onnx", opset=13)
    assert not (tmp_path / "old.onnx").exists()


def test_bad_exports_are_one_line(tmp_path):
    net, _ = onnx_case("resnet8", (8,))
    searching = joint.searchable(joint.models.resnet8(), joint.SearchSpace(), torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="the net is still searching \\(sampling 'softmax'\\); call net.freeze\\(\\)"):
        joint.export_onnx(searching, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"export_onnx takes a SearchableNet \(a recorded run.s: "
                                         r"joint.store.load_model\(record\)\); got Sequential"):
        joint.export_onnx(torch.nn.Sequential(), tmp_path / "m.onnx")

    class Swish(torch.nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    graph = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Flatten(), Swish()))
    with pytest.raises(ValueError, match="the ONNX exporter does not know call_function sigmoid \\(node sigmoid\\); "
                                         "it handles: Conv2d, Linear"):
        OnnxGraph(graph, (3, 4, 4), 25).build()


def test_a_recorded_run_exported_and_run_in_onnxruntime_has_its_recorded_accuracy(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False)
    record = run(RunConfig("digits", "joint", 5.0, "mpic", profile="smoke"), store)
    joint.export_onnx(load_model(record, store), tmp_path / "m.onnx")
    assert onnx_accuracy(tmp_path / "m.onnx", store.benchmark("digits").test) == record["metrics"]["test_accuracy"]


@pytest.mark.parametrize("act_bits", [2, 4, 8])
@pytest.mark.parametrize("weight_bits", [2, 4, 8])
def test_every_uniform_precision_loads_in_onnxruntime_with_its_default_optimisations(tmp_path, act_bits, weight_bits):
    # its QDQ fusion into integer kernels holds 8-bit activations with 8-bit weights only; other pairs must not fuse,
    # or loading the file fails
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    net = joint.searchable(trained_like(joint.models.resnet8()), joint.SearchSpace((weight_bits,), (act_bits,)), x)
    net.freeze()
    joint.export_onnx(net.eval(), tmp_path / "m.onnx")
    with torch.no_grad():
        assert torch.equal(run_onnx(tmp_path / "m.onnx", x).argmax(1), net(x).argmax(1))
    check = compare_onnx(net, x)
    assert check["quantizers"] == 0.0 and check["layers"] <= 1e-4


def test_a_committed_quick_profile_point_runs_in_onnxruntime_at_its_recorded_accuracy(tmp_path):
    store = Store(results=project_path("results"), cache=tmp_path / "c", progress=False)
    record = store.read_record(RunConfig("digits", "joint", 1.0, "size", profile="quick"))
    assert record is not None, "the quick profile's reference records are committed with their models"
    net = load_model(record, store)
    test = store.benchmark("digits").test
    model = joint.export_onnx(net, tmp_path / "m.onnx")
    check = compare_onnx(net, test.inputs[:64])
    # node by node exact up to float summation order; end to end a last-bit difference can move an activation one
    # grid step, so the logits are compared through the accuracy on the whole test split
    assert check["quantizers"] == 0.0 and check["layers"] <= 1e-4
    assert onnx_accuracy(tmp_path / "m.onnx", test) == record["metrics"]["test_accuracy"]
    arch_bytes = joint.Arch.from_dict(record["arch"]).size_kb() * 1000
    assert abs(onnx_sizes(model)["weights"] - arch_bytes) <= 0.01 * arch_bytes
