"""Export: a plain nn.Module of the argmax architecture with pruned channels physically removed."""
from __future__ import annotations

import torch
from torch import fx, nn

from .quant import ActivationQuantizer
from .search import SearchableNet


def _keep(bits: list[int]) -> torch.Tensor:
    return torch.tensor([c for c, b in enumerate(bits) if b > 0], dtype=torch.long)


def _input_keep(net: SearchableNet, name: str, alive: dict[str, torch.Tensor]) -> torch.Tensor | None:
    wire = net.wiring[name]
    if wire.input_group is None or not net.groups[wire.input_group].prunable:
        return None
    keep = alive[wire.input_group]
    mult = wire.input_multiplier
    return (keep[:, None] * mult + torch.arange(mult)[None, :]).flatten()


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
            in_keep = _input_keep(net, name, alive)
            if out_keep is not None:
                weight, bits, scale = weight[out_keep], bits[out_keep], scale[out_keep]
                bias = None if bias is None else bias[out_keep]
            if in_keep is not None and wire.shape.kind != "dw":
                weight = weight[:, in_keep]
            modules[name] = _plain_layer(layer, weight, bias, wire.shape.kind)
            modules[name].register_buffer("weight_bits", bits)
            modules[name].register_buffer("weight_scale", scale.clone())
        for key, signed in net.act_signed.items():
            bits = arch.activations[key]
            clip = float(net.act(key).clip[net.space.act_bits.index(bits)])
            modules[f"acts.{key}"] = ActivationQuantizer((bits,), signed, clip)
    net.train(was_training)
    for node in net.body.graph.nodes:
        if node.op == "call_module" and node.target not in modules:
            modules[node.target] = net.body.get_submodule(node.target)
    graph = fx.Graph()
    out = graph.graph_copy(net.body.graph, {})
    graph.output(out)
    small = fx.GraphModule(modules, graph, class_name="Exported")
    return small.eval()


def _plain_layer(layer, weight: torch.Tensor, bias: torch.Tensor | None, kind: str) -> nn.Module:
    if layer.conv is None:
        plain = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    else:
        c = layer.conv
        groups = weight.shape[0] if kind == "dw" else 1
        plain = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), c["stride"],
                          c["padding"], c["dilation"], groups, bias=bias is not None)
    plain.weight = nn.Parameter(weight.clone())
    if bias is not None:
        plain.bias = nn.Parameter(bias.clone())
    return plain
