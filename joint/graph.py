"""torch.fx conversion: BatchNorm folding, channel groups, effective channel counts, quantizer placement."""
from __future__ import annotations

import copy
import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .cost import LayerShape
from .quant import ActivationQuantizer
from .search import Group, LayerWiring, SearchableLayer, SearchableNet, SearchSpace

ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d,
                       nn.AdaptiveAvgPool2d, nn.Identity, nn.Flatten)
ELEMENTWISE_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.dropout, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
                         torch.flatten}
ELEMENTWISE_METHODS = {"relu", "flatten", "view", "reshape", "contiguous"}
ADDS = {operator.add, torch.add}
RECTIFIER_MODULES = (nn.ReLU, nn.ReLU6)
RECTIFIER_FUNCTIONS = {F.relu, torch.relu, F.relu6}
INPUT_CLIP_DEFAULT = 1.0
ACT_CLIP_DEFAULT = 6.0


class ConversionError(ValueError):
    """The model contains something the search cannot handle; the message names the fx node."""


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _is_layer(gm: fx.GraphModule, node: fx.Node) -> bool:
    return isinstance(_module(gm, node), (nn.Conv2d, nn.Linear))


def _is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in ADDS) or (node.op == "call_method" and node.target == "add")


def _is_elementwise(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Ops that keep the channel identity of their input and map 0 to 0 (so a pruned channel stays silent)."""
    if node.op == "call_module":
        m = _module(gm, node)
        if isinstance(m, nn.Hardtanh) and not m.min_val <= 0 <= m.max_val:
            return False
        return isinstance(m, ELEMENTWISE_MODULES)
    if node.op == "call_function":
        return node.target in ELEMENTWISE_FUNCTIONS
    return node.op == "call_method" and node.target in ELEMENTWISE_METHODS


def _is_rectifier(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(_module(gm, node), RECTIFIER_MODULES)
    if node.op == "call_function":
        return node.target in RECTIFIER_FUNCTIONS
    return node.op == "call_method" and node.target == "relu"


def _is_plain_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return type(_module(gm, node)) is nn.ReLU
    return (node.op == "call_function" and node.target in (F.relu, torch.relu)) or (
        node.op == "call_method" and node.target == "relu")


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    return [a for a in node.all_input_nodes if _shape(a) is not None]


def _describe(node: fx.Node) -> str:
    target = getattr(node.target, "__name__", node.target)
    return f"node {node.name!r} ({node.op} {target})"


def trace(model: nn.Module, example_input: Tensor) -> fx.GraphModule:
    """Symbolically trace a copy of `model` (eval mode) and record every node's output shape."""
    model = copy.deepcopy(model).eval()
    try:
        gm = fx.symbolic_trace(model)
    except Exception as err:  # torch.fx raises many kinds of errors on untraceable code
        raise ConversionError(f"torch.fx cannot trace {type(model).__name__}: {err}") from None
    if sum(1 for n in gm.graph.nodes if n.op == "placeholder") != 1:
        raise ConversionError("the model must take exactly one input tensor")
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input)
    except Exception as err:
        raise ValueError(f"example_input of shape {tuple(example_input.shape)} is rejected by the model: "
                         f"{type(err).__name__}: {err}") from None
    return gm


def layer_shape(gm: fx.GraphModule, node: fx.Node) -> LayerShape:
    """Static shape of the conv/linear call at `node`."""
    m = _module(gm, node)
    out = _shape(node)
    if isinstance(m, nn.Linear):
        if len(out) != 2:
            raise ConversionError(f"{_describe(node)}: Linear layers must take (batch, features) inputs")
        return LayerShape(node.target, "linear", m.in_features, m.out_features, bias=m.bias is not None)
    if m.padding_mode != "zeros":
        raise ConversionError(f"{_describe(node)}: padding_mode {m.padding_mode!r} is not supported (only 'zeros')")
    if m.groups == 1:
        kind = "conv"
    elif m.groups == m.in_channels == m.out_channels:
        kind = "dw"
    else:
        raise ConversionError(f"{_describe(node)}: grouped convolutions other than depthwise are not supported")
    return LayerShape(node.target, kind, m.in_channels, m.out_channels, tuple(m.kernel_size), tuple(m.stride),
                      m.groups, (out[2], out[3]), m.bias is not None)


def describe(model: nn.Module, example_input: Tensor) -> list[LayerShape]:
    """Every conv/linear call of a float model with its shape, in execution order."""
    gm = trace(model, example_input)
    return [layer_shape(gm, n) for n in gm.graph.nodes if _is_layer(gm, n)]


def fold_batchnorm(gm: fx.GraphModule) -> None:
    """Fold every BatchNorm into the conv/linear before it, using its running statistics (eval semantics)."""
    for node in list(gm.graph.nodes):
        bn = _module(gm, node)
        if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and _is_layer(gm, prev) and len(prev.users) == 1):
            raise ConversionError(f"{_describe(node)}: BatchNorm must directly follow a conv/linear layer "
                                  "used only by it, to be folded")
        layer = _module(gm, prev)
        with torch.no_grad():
            factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
            layer.weight.mul_(factor.view(-1, *(1,) * (layer.weight.dim() - 1)))
            layer.bias = nn.Parameter((bias - bn.running_mean) * factor + bn.bias)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.delete_all_unused_submodules()
    gm.recompile()


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def add(self, x: str) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


INPUT = "<input>"


def _channel_sources(gm: fx.GraphModule) -> tuple[dict, _UnionFind, dict]:
    """For every tensor node: which channel decision its channels come from, and its flatten multiplier."""
    uf = _UnionFind()
    uf.add(INPUT)
    source: dict[fx.Node, tuple[str, int]] = {}
    layer_input: dict[str, tuple[str, int]] = {}
    seen_modules: set[str] = set()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            source[node] = (INPUT, 1)
        elif node.op == "output" or _shape(node) is None:
            continue
        elif _is_layer(gm, node):
            if node.target in seen_modules:
                raise ConversionError(f"{_describe(node)}: module {node.target!r} is called more than once; "
                                      "weight sharing is not supported")
            seen_modules.add(node.target)
            shape = layer_shape(gm, node)
            src, mult = source[node.args[0]]
            if shape.kind != "linear" and mult != 1:
                raise ConversionError(f"{_describe(node)}: a convolution after a flatten is not supported")
            layer_input[node.target] = (src, mult)
            if shape.kind == "dw":
                source[node] = (src, 1)
            else:
                uf.add(node.target)
                source[node] = (node.target, 1)
        elif _is_add(node):
            args = _tensor_args(node)
            if any(_shape(a) != _shape(node) for a in args):
                raise ConversionError(f"{_describe(node)}: an add with broadcasting between tensors is not supported")
            for a in args[1:]:
                if source[a][1] != source[args[0]][1]:
                    raise ConversionError(f"{_describe(node)}: adds of tensors flattened differently")
                uf.union(source[args[0]][0], source[a][0])
            source[node] = source[args[0]]
        elif _is_elementwise(gm, node) or isinstance(_module(gm, node), (nn.BatchNorm1d, nn.BatchNorm2d)):
            arg = _tensor_args(node)[0]
            src, mult = source[arg]
            before, after = _shape(arg), _shape(node)
            if after[:2] == before[:2] and len(after) == len(before):
                source[node] = (src, mult)
            elif len(after) == 2 and len(before) > 2 and after[1] == math.prod(before[1:]):
                source[node] = (src, mult * math.prod(before[2:]))
            else:
                raise ConversionError(f"{_describe(node)}: reshapes that mix channels are not supported")
        else:
            raise ConversionError(f"{_describe(node)} is not supported by the conversion (supported: Conv2d, "
                                  "Linear, BatchNorm after them, add, ReLU/ReLU6/Hardtanh, pooling, dropout, flatten)")
    return source, uf, layer_input


def _output_side(gm: fx.GraphModule) -> set[fx.Node]:
    """Nodes from which the network output is reached through elementwise ops and adds only (not quantized)."""
    output = next(n for n in gm.graph.nodes if n.op == "output")
    side, todo = set(), list(output.all_input_nodes)
    while todo:
        node = todo.pop()
        if node in side:
            continue
        side.add(node)
        if _is_add(node) or _is_elementwise(gm, node):
            todo.extend(_tensor_args(node))
    return side


@dataclass
class ChannelGroups:
    """The channel decisions of a traced model: which layers share one, and what feeds every layer."""

    nodes: dict[str, fx.Node]  # layer name -> its fx node, in execution order
    shapes: dict[str, LayerShape]
    members: dict[str, list[str]]  # group name -> layers whose output channels it decides
    fixed: dict[str, bool]  # group name -> True if it may not be pruned (network input or output side)
    group_of: dict[str, str]  # layer name -> group name
    input_group: dict[str, str | None]  # layer name -> group feeding it (None: the network input)
    input_multiplier: dict[str, int]  # layer name -> flatten multiplier of its input


def channel_groups(gm: fx.GraphModule) -> ChannelGroups:
    """Union-find of the channels that must be pruned together; groups are named after their first layer's node."""
    source, uf, layer_input = _channel_sources(gm)
    side = _output_side(gm)
    nodes = {n.target: n for n in gm.graph.nodes if _is_layer(gm, n)}
    shapes = {name: layer_shape(gm, n) for name, n in nodes.items()}
    root_of = {name: uf.find(layer_input[name][0] if shapes[name].kind == "dw" else name) for name in nodes}
    by_root: dict[str, list[str]] = {}
    for name in nodes:
        by_root.setdefault(root_of[name], []).append(name)
    name_of = {root: nodes[names[0]].name for root, names in by_root.items()}
    return ChannelGroups(
        nodes, shapes, {name_of[r]: names for r, names in by_root.items()},
        {name_of[r]: r == uf.find(INPUT) or any(nodes[n] in side for n in names) for r, names in by_root.items()},
        {name: name_of[root_of[name]] for name in nodes},
        {name: name_of.get(uf.find(layer_input[name][0])) for name in nodes},
        {name: layer_input[name][1] for name in nodes})


def searchable(model: nn.Module, space: SearchSpace, example_input: Tensor) -> SearchableNet:
    """Convert a trained float model into a SearchableNet for `space`; `model` itself is left untouched.

    `example_input` should be real data: the input quantizer is signed if it holds negative values, and its
    clip starts at its largest magnitude.
    """
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a joint.SearchSpace; got {type(space).__name__}")
    gm = trace(model, example_input)
    fold_batchnorm(gm)
    cg = channel_groups(gm)
    groups = {}
    for key, names in cg.members.items():
        bits = tuple(b for b in space.weight_bits if b != 0) if cg.fixed[key] else space.weight_bits
        if not bits:
            raise ValueError(f"weight_bits {space.weight_bits} leave no precision for the output layer "
                             f"{names[0]!r}, which cannot be pruned; add a non-zero precision")
        groups[key] = Group(bits, cg.shapes[names[0]].cout, names, prunable=not cg.fixed[key])
    act_signed = _insert_quantizers(gm, space, example_input, _output_side(gm))
    act_of = _act_sources(gm, set(act_signed))
    wiring = {}
    for name, node in cg.nodes.items():
        group = cg.group_of[name]
        wiring[name] = LayerWiring(cg.shapes[name], group, cg.input_group[name], cg.input_multiplier[name],
                                   act_of.get(node.args[0]))
        _set_module(gm, name, SearchableLayer(_module(gm, node), groups[group].bits))
    gm.delete_all_unused_submodules()
    gm.recompile()
    return SearchableNet(gm, space, groups, wiring, act_signed)


def _set_module(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent, _, leaf = target.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, leaf, module)


def _insert_quantizers(gm: fx.GraphModule, space: SearchSpace, example_input: Tensor,
                       side: set[fx.Node]) -> dict[str, bool]:
    """Quantize the network input and every layer/add output not on the output side; drop ReLUs made redundant."""
    acts = nn.ModuleDict()
    gm.add_submodule("acts", acts)
    signed_of: dict[str, bool] = {}
    for node in list(gm.graph.nodes):
        is_input = node.op == "placeholder"
        if not (is_input or _is_layer(gm, node) or _is_add(node)) or (node in side and not is_input):
            continue
        if is_input:
            signed = bool((example_input < 0).any())
            clip = float(example_input.abs().max()) or INPUT_CLIP_DEFAULT
        else:
            signed = not all(_is_rectifier(gm, u) for u in node.users)
            clip = ACT_CLIP_DEFAULT
        key = node.name
        acts[key] = ActivationQuantizer(space.act_bits, signed, clip)
        signed_of[key] = signed
        with gm.graph.inserting_after(node):
            quant = gm.graph.call_module(f"acts.{key}", (node,))
        quant.meta = dict(node.meta)
        node.replace_all_uses_with(quant, delete_user_cb=lambda user, q=quant: user is not q)
        if not signed:
            for user in list(quant.users):
                if _is_plain_relu(gm, user):
                    user.replace_all_uses_with(quant)
                    gm.graph.erase_node(user)
    gm.graph.lint()
    return signed_of


def _act_sources(gm: fx.GraphModule, keys: set[str]) -> dict[fx.Node, str]:
    """For every tensor node: the activation quantizer its values last went through."""
    act_of: dict[fx.Node, str] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target.startswith("acts."):
            act_of[node] = node.target[len("acts."):]
        elif _is_elementwise(gm, node):
            args = _tensor_args(node)
            if args and args[0] in act_of:
                act_of[node] = act_of[args[0]]
    return act_of
