"""Plain networks from kept channels: the pieces export, compact and PIT share to rebuild an nn.Module whose pruned
channels are physically gone."""
from __future__ import annotations

import copy

import torch
from torch import fx, nn


def kept_channels(bits: list[int]) -> torch.Tensor:
    """Indices of the channels a per-channel precision list keeps (those above 0 bits)."""
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
