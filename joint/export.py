"""Export: a plain nn.Module of the argmax architecture with pruned channels physically removed."""
from __future__ import annotations

import copy

import torch
from torch import fx, nn

from .quant import ActivationQuantizer
from .search import SearchableNet


def _keep(bits: list[int]) -> torch.Tensor:
    return torch.tensor([c for c, b in enumerate(bits) if b > 0], dtype=torch.long)


def flattened_keep(keep: torch.Tensor, multiplier: int) -> torch.Tensor:
    """Input features kept by a consumer when `keep` channels survive and a flatten gives each `multiplier` features."""
    return (keep[:, None] * multiplier + torch.arange(multiplier)[None, :]).flatten()


def plain_layer(weight: torch.Tensor, bias: torch.Tensor | None, conv: dict | None, kind: str) -> nn.Module:
    """A plain nn.Linear (conv None) or nn.Conv2d (conv: stride, padding, dilation) holding copies of the tensors."""
    if conv is None:
        plain = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    else:
        groups = weight.shape[0] if kind == "dw" else 1
        plain = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), conv["stride"],
                          conv["padding"], conv["dilation"], groups, bias=bias is not None)
    plain.weight = nn.Parameter(weight.clone())
    if bias is not None:
        plain.bias = nn.Parameter(bias.clone())
    return plain


def rebuild(body: fx.GraphModule, modules: dict[str, nn.Module], class_name: str,
            drop: str | None = None) -> fx.GraphModule:
    """A new GraphModule over a copy of `body`'s graph: `modules` replace submodules, the others are copied, and
    call_module nodes whose target starts with `drop` are removed (their input passed through)."""
    graph = fx.Graph()
    graph.output(graph.graph_copy(body.graph, {}))
    for node in list(graph.nodes):
        if drop is not None and node.op == "call_module" and node.target.startswith(drop):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    modules = dict(modules)
    for node in graph.nodes:
        if node.op == "call_module" and node.target not in modules:
            modules[node.target] = copy.deepcopy(body.get_submodule(node.target))
    return fx.GraphModule(modules, graph, class_name=class_name)


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
        alive = {g: _keep(arch.layers[grp.layers[0]].weight_bits) if grp.prunable else None
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

