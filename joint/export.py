"""Export: a plain nn.Module of the argmax architecture with pruned channels physically removed, and an ONNX file
with true per-channel mixed precision (integer weights at their bits, quantized activations)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import fx, nn

from .plain import flattened_keep, kept_channels, plain_layer, rebuild
from .quant import ActivationQuantizer
from .search import SearchableNet

if TYPE_CHECKING:
    import onnx


def export(net: SearchableNet) -> fx.GraphModule:
    """Plain model of `net.arch()`: real Conv2d/Linear of the alive channels, channel order kept.

    Each exported layer stores its fake-quantized weights with per-output-channel `weight_bits` and
    `weight_scale` buffers; activation quantizers keep their argmax precision and clip.
    """
    arch = net.arch()
    was_training = net.training
    net.eval()
    modules: dict[str, nn.Module] = {}
    with torch.no_grad():
        net._sample()
        alive = {g: kept_channels(arch.layers[grp.layers[0]].weight_bits) if grp.prunable else None
                 for g, grp in net.groups.items()}
        for name, wire in net.wiring.items():
            layer = net.layer(name)
            weight, bias, scale = layer.effective_params()
            bits = torch.tensor(arch.layers[name].weight_bits)
            scale = scale.expand(len(bits))
            out_keep = alive[wire.group]
            in_keep = None
            if wire.input_group is not None and net.groups[wire.input_group].prunable:
                in_keep = flattened_keep(alive[wire.input_group], wire.input_multiplier)
            if out_keep is not None:
                weight, bits, scale = weight[out_keep], bits[out_keep], scale[out_keep]
                bias = None if bias is None else bias[out_keep]
            if in_keep is not None and wire.shape.kind != "dw":
                weight = weight[:, in_keep]
            modules[name] = plain_layer(weight, bias, layer.conv, wire.shape.kind)
            modules[name].register_buffer("weight_bits", bits)
            modules[name].register_buffer("weight_scale", scale.clone())
        for key, signed in net.act_signed.items():
            bits = arch.activations[key]
            clip = float(net.act(key).clip[net.space.act_bits.index(bits)])
            modules[f"acts.{key}"] = ActivationQuantizer((bits,), signed, clip)
    net.train(was_training)
    return rebuild(net.body, modules, "Exported").eval()



ONNX_OPSET = 25  # int2/uint2 (opset 25), int4/uint4 (21), per-axis dequantization (13)
_OPSET_FOR_BITS = {2: 25, 4: 21}
_SUPPORTED = ("Conv2d, Linear, activation quantizers, ReLU/ReLU6/Hardtanh, add, flatten/view/reshape to 2-D, "
              "MaxPool2d/AvgPool2d, global average pooling, Dropout, Identity")


def _container(bits: int, signed: bool) -> tuple[int, object]:
    """The ONNX integer type holding `bits`-bit codes (the smallest of 2, 4, 8, 16 bits) and its numpy dtype."""
    import ml_dtypes
    import numpy as np

    width = next(w for w in (2, 4, 8, 16) if w >= bits)
    types = {2: (ml_dtypes.int2, ml_dtypes.uint2), 4: (ml_dtypes.int4, ml_dtypes.uint4), 8: (np.int8, np.uint8),
             16: (np.int16, np.uint16)}
    return width, types[width][0 if signed else 1]


def required_opset(net: SearchableNet) -> int:
    """The oldest ONNX opset whose QuantizeLinear/DequantizeLinear hold every precision of `net`'s architecture."""
    arch = net.arch()
    bits = {b for layer in arch.layers.values() for b in layer.weight_bits if b} | set(arch.activations.values())
    widths = {_container(b, True)[0] for b in bits}
    return max([13] + [_OPSET_FOR_BITS[w] for w in widths if w in _OPSET_FOR_BITS])


def export_onnx(net: SearchableNet, path: str | Path, opset: int = ONNX_OPSET) -> onnx.ModelProto:
    """Write `net`'s argmax architecture as an ONNX model with true per-channel mixed precision and return it.

    `net` is a frozen SearchableNet (a recorded run's: `joint.store.load_model(record)`). Each conv/linear layer's
    alive output channels are grouped by precision, each group an int8/int4/int2 initializer with per-channel scales
    (DequantizeLinear, axis 0), put back in the original channel order; pruned channels are not in the file;
    activations are quantized and dequantized at their searched precision (unsigned: uint8/uint4/uint2; signed: int,
    after a Clip); BatchNorm is folded. The file is checked with onnx.checker (full check).
    """
    import onnx

    if not isinstance(net, SearchableNet):
        raise ValueError(f"export_onnx takes a SearchableNet (a recorded run's: joint.store.load_model(record)); got "
                         f"{type(net).__name__}")
    if net.sampling != "hard":
        raise ValueError(f"the net is still searching (sampling {net.sampling!r}); call net.freeze() (and fine-tune) "
                         f"first: the file holds only the argmax architecture")
    needed = required_opset(net)
    if not isinstance(opset, int) or opset < needed or opset > onnx.defs.onnx_opset_version():
        raise ValueError(f"opset {opset!r} cannot hold this model's precisions; allowed: {needed} to "
                         f"{onnx.defs.onnx_opset_version()} (int4/uint4 need 21, int2/uint2 need 25)")
    model = _OnnxGraph(export(net), _input_shape(net), opset).build()
    onnx.checker.check_model(model, full_check=True)
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return model


def compare_onnx(net: SearchableNet, x: torch.Tensor, opset: int = ONNX_OPSET) -> dict[str, float]:
    """How onnxruntime runs `net`'s export against the net itself on inputs `x`: the largest logit difference and the
    share of equal top-1 classes end to end, and node by node (every node given onnxruntime's own inputs) the largest
    difference of the activation quantizers (bit-exact: 0), of the conv/linear layers (float summation order) and of
    the other nodes. End to end, a layer's last-bit difference can move an activation across a grid boundary, one
    step, and that step travels to the logits."""
    import onnx
    import onnxruntime
    from torch.fx import Interpreter

    small = export(net)
    builder = _OnnxGraph(small, _input_shape(net), opset)
    model = builder.build()
    watched = {node: name for node, name in builder.names.items() if node.op != "placeholder" and name != "input"}
    for name in dict.fromkeys(watched.values()):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x.numpy()})))
    values = {name: torch.from_numpy(v) for name, v in values.items()}
    values["input"] = x
    step = Interpreter(small)
    worst = {"quantizers": 0.0, "layers": 0.0, "other": 0.0}
    with torch.no_grad():
        for node, name in watched.items():
            step.env = {arg: values[builder.names[arg]] for arg in node.all_input_nodes}
            mine = step.run_node(node)
            module = small.get_submodule(node.target) if node.op == "call_module" else None
            kind = "quantizers" if isinstance(module, ActivationQuantizer) else \
                "layers" if isinstance(module, (nn.Conv2d, nn.Linear)) else "other"
            worst[kind] = max(worst[kind], float((mine - values[name]).abs().max()))
        expected = net.eval()(x)
    logits = values["logits"]
    return {"end_to_end": float((logits - expected).abs().max()),
            "top1_agreement": float((logits.argmax(1) == expected.argmax(1)).double().mean()), **worst}


def onnx_accuracy(path, data, batch_size: int = 256) -> float:
    """Top-1 accuracy of an exported file on a dataset of (input, label) pairs, run by onnxruntime on the CPU."""
    import onnxruntime

    from .train import batches

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    correct = count = 0
    for x, y in batches(data, batch_size, torch.device("cpu")):
        logits = session.run(None, {"input": x.numpy()})[0]
        correct += int((torch.from_numpy(logits).argmax(1) == y).sum())
        count += len(y)
    return correct / count


def onnx_sizes(model) -> dict[str, int]:
    """Bytes of an exported file's initializers by role: integer weights, their per-channel scales, biases, and the
    rest (activation quantizer constants, channel orders)."""
    sizes = {"weights": 0, "weight_scales": 0, "biases": 0, "other": 0}
    for tensor in model.graph.initializer:
        role = tensor.name.rsplit(".", 1)[-1]
        kind = "weights" if re.fullmatch(r"w\d+", role) else "weight_scales" if re.fullmatch(r"w\d+_scale", role) \
            else "biases" if role == "bias" else "other"
        sizes[kind] += len(tensor.raw_data)
    return sizes


def _input_shape(net: SearchableNet) -> tuple[int, ...]:
    placeholder = next(n for n in net.body.graph.nodes if n.op == "placeholder")
    return tuple(placeholder.meta["tensor_meta"].shape[1:])


class _OnnxGraph:
    """The exported fx graph translated node by node into ONNX nodes and initializers."""

    def __init__(self, gm: fx.GraphModule, input_shape: tuple[int, ...], opset: int):
        from torch.fx.passes.shape_prop import ShapeProp

        self.gm, self.input_shape, self.opset = gm, input_shape, opset
        self.nodes, self.initializers, self.names = [], [], {}
        self.act_bits: dict[str, int] = {}  # dequantized activations by name: their bits
        ShapeProp(gm).propagate(torch.zeros(1, *input_shape))

    def constant(self, name: str, array) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def build(self):
        from onnx import TensorProto, helper

        for node in self.gm.graph.nodes:
            self.translate(node)
        batch = ["batch"]
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, batch + list(self.input_shape))]
        out_shape = list(next(n for n in self.gm.graph.nodes if n.op == "output").args[0].meta["tensor_meta"].shape)
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, batch + out_shape[1:])]
        graph = helper.make_graph(self.nodes, "joint", inputs, outputs, self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="joint")

    def translate(self, node: fx.Node) -> None:
        import operator

        import torch.nn.functional as F

        if node.op == "placeholder":
            self.names[node] = "input"
            return
        if node.op == "output":
            self.add("Identity", [self.names[node.args[0]]], "logits")
            return
        x = self.names.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        out = node.name
        module = self.gm.get_submodule(node.target) if node.op == "call_module" else None
        target = node.target
        if isinstance(module, ActivationQuantizer):
            self.names[node] = self.quantize(x, module, out)
        elif isinstance(module, (nn.Conv2d, nn.Linear)) and hasattr(module, "weight_bits"):
            self.names[node] = self.layer(x, module, out)
        elif isinstance(module, (nn.Dropout, nn.Dropout2d, nn.Identity)) or target in (F.dropout, "contiguous"):
            self.names[node] = x
        elif isinstance(module, nn.ReLU) or target in (F.relu, torch.relu, "relu"):
            self.names[node] = self.add("Relu", [x], out)
        elif isinstance(module, (nn.ReLU6, nn.Hardtanh)) or target is F.relu6:
            low, high = (module.min_val, module.max_val) if isinstance(module, nn.Hardtanh) else (0.0, 6.0)
            self.names[node] = self.clip(x, low, high, out)
        elif target in (operator.add, torch.add, "add"):
            self.names[node] = self.add("Add", [self.names[a] for a in node.args[:2]], out)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) or target in (F.max_pool2d, F.avg_pool2d):
            self.names[node] = self.pool(node, x, module, out)
        elif isinstance(module, nn.AdaptiveAvgPool2d) or target is F.adaptive_avg_pool2d:
            size = module.output_size if module is not None else node.args[1]
            if size not in (1, (1, 1)):
                raise ValueError(f"the ONNX exporter supports adaptive average pooling to 1x1 only; {out} pools to "
                                 f"{size}")
            self.names[node] = self.add("GlobalAveragePool", [x], out)
        elif isinstance(module, nn.Flatten) or target in (torch.flatten, "flatten", "view", "reshape"):
            self.names[node] = self.flatten(node, x, out)
        else:
            kind = type(module).__name__ if module is not None else getattr(target, "__name__", target)
            raise ValueError(f"the ONNX exporter does not know {node.op} {kind} (node {out}); it handles: {_SUPPORTED}")

    def clip(self, x: str, low: float, high: float, out: str) -> str:
        import numpy as np

        bounds = [self.constant(f"{out}.{side}", np.array(v, np.float32)) for side, v in (("min", low), ("max", high))]
        return self.add("Clip", [x, *bounds], out)

    def quantize(self, x: str, act: ActivationQuantizer, out: str) -> str:
        """PACT at its searched precision: QuantizeLinear/DequantizeLinear with the step clip/levels and zero point 0,
        after clipping to [-clip, clip] (signed) or [0, clip] where the integer type is wider than the grid."""
        import numpy as np

        from .quant import pact_levels

        (bits,), clip = act.bits, float(act.clip[0].detach())
        width, dtype = _container(bits, act.signed)
        if act.signed or width != bits:  # Max and Min, not Clip: onnxruntime fuses a Clip into an int2 quantizer, fails
            low = self.constant(f"{out}.low", np.array(-clip if act.signed else 0.0, np.float32))
            x = self.add("Max", [x, low], f"{out}.above_low")
            x = self.add("Min", [x, self.constant(f"{out}.high", np.array(clip, np.float32))], f"{out}.clipped")
        scale = self.constant(f"{out}.scale", np.array(clip / pact_levels(bits, act.signed), np.float32))
        zero = self.constant(f"{out}.zero_point", np.zeros((), dtype))
        q = self.add("QuantizeLinear", [x, scale, zero], f"{out}.q")
        self.act_bits[out] = bits
        return self.add("DequantizeLinear", [q, scale, zero], out)

    def layer(self, x: str, layer: nn.Module, out: str) -> str:
        """A conv/linear layer whose weights are rebuilt from one integer initializer per precision."""
        import numpy as np

        bits, scale = layer.weight_bits, layer.weight_scale.detach()
        view = (-1,) + (1,) * (layer.weight.dim() - 1)
        codes = torch.round(layer.weight.detach() / scale.view(view)).to(torch.int64)
        parts, order = [], []
        for p in sorted(set(bits.tolist())):
            channels = torch.nonzero(bits == p)[:, 0]
            _, dtype = _container(p, True)
            q = self.constant(f"{out}.w{p}", codes[channels].numpy().astype(dtype))
            s = self.constant(f"{out}.w{p}_scale", scale[channels].numpy().astype(np.float32))
            parts.append(self.add("DequantizeLinear", [q, s], f"{out}.w{p}_float", axis=0))
            order.append(channels)
        weight = parts[0]
        # onnxruntime fuses DequantizeLinear -> Conv/Gemm -> QuantizeLinear into an integer kernel that holds 8-bit
        # activations with 8-bit weights only (other precisions make an invalid graph): keep those layers' weights
        # behind a Gather, as for several precision groups
        fusable = self.act_bits.get(x) is not None and not (self.act_bits[x] == 8 and bits.tolist() == [8] * len(bits))
        if len(parts) > 1 or fusable:
            weight = self.add("Concat", parts, f"{out}.w_grouped", axis=0) if len(parts) > 1 else weight
            position = torch.empty(len(bits), dtype=torch.int64)
            position[torch.cat(order)] = torch.arange(len(bits))
            weight = self.add("Gather", [weight, self.constant(f"{out}.order", position.numpy())], f"{out}.w", axis=0)
        inputs = [x, weight]
        if layer.bias is not None:
            inputs.append(self.constant(f"{out}.bias", layer.bias.detach().numpy().astype(np.float32)))
        if isinstance(layer, nn.Linear):
            return self.add("Gemm", inputs, out, transB=1)
        if isinstance(layer.padding, str):
            raise ValueError(f"the ONNX exporter needs numeric padding; layer {out} has padding={layer.padding!r}")
        return self.add("Conv", inputs, out, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                        pads=list(layer.padding) * 2, dilations=list(layer.dilation), group=layer.groups)

    def pool(self, node: fx.Node, x: str, module: nn.Module | None, out: str) -> str:
        import torch.nn.functional as F

        if module is None:
            names = ("kernel_size", "stride", "padding")
            values = dict(zip(names, node.args[1:]), **{k: v for k, v in node.kwargs.items() if k in names})
            kernel, stride, padding = values["kernel_size"], values.get("stride"), values.get("padding", 0)
            ceil, include = node.kwargs.get("ceil_mode", False), node.kwargs.get("count_include_pad", True)
            average = node.target is F.avg_pool2d
        else:
            kernel, stride, padding = module.kernel_size, module.stride, module.padding
            ceil, include = module.ceil_mode, getattr(module, "count_include_pad", True)
            average = isinstance(module, nn.AvgPool2d)
            if not average and module.dilation not in (1, (1, 1)):
                raise ValueError(f"the ONNX exporter supports max pooling without dilation only (node {out})")
        pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]  # noqa: E731
        attributes = dict(kernel_shape=pair(kernel), strides=pair(stride or kernel), pads=pair(padding) * 2,
                          ceil_mode=int(ceil))
        if average:
            return self.add("AveragePool", [x], out, count_include_pad=int(include), **attributes)
        return self.add("MaxPool", [x], out, **attributes)

    def flatten(self, node: fx.Node, x: str, out: str) -> str:
        before, after = node.args[0].meta["tensor_meta"].shape, node.meta["tensor_meta"].shape
        if len(after) == 2 and after[1] == math.prod(before[1:]):
            return self.add("Flatten", [x], out, axis=1)
        if tuple(before) == tuple(after):
            return x
        raise ValueError(f"the ONNX exporter supports reshapes to (batch, features) only; node {out} gives "
                         f"{tuple(after)}")
