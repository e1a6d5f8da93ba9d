"""PIT channel pruning, the first stage of the sequential baseline: binary output-channel masks on the float model."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, fx, nn

from .arch import Arch, LayerArch
from .cost import LayerShape
from .graph import _module, channel_groups, trace
from .plain import flattened_keep, plain_layer, rebuild

KEEP_THRESHOLD = 0.5


def channel_mask(alpha: Tensor) -> Tensor:
    """Keep mask |alpha| > 0.5 with a straight-through gradient; the channel of largest |alpha| is always kept."""
    theta = alpha.abs()
    keep = (theta > KEEP_THRESHOLD).to(theta.dtype)
    keep = keep.index_fill(0, theta.detach().argmax().view(1), 1.0)
    return keep + (theta - theta.detach())


class ChannelMask(nn.Module):
    """The mask of one channel group, shared by every layer producing those channels (applied after their BN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * channel_mask(self.alpha).view(1, -1, *(1,) * (x.dim() - 2))


@dataclass
class PitWiring:
    """A layer of a PrunableNet: its shape, the group of its output channels, what feeds it, its BatchNorm."""

    shape: LayerShape
    group: str
    input_group: str | None
    input_multiplier: int
    batchnorm: str | None


def _parameters(shape: LayerShape, cin: Tensor, cout: Tensor) -> Tensor:
    """Float parameters of a layer (weights and bias) with cin input and cout output channels."""
    kh, kw = shape.kernel
    per_channel = kh * kw * (1 if shape.kind == "dw" else cin) + int(shape.bias)
    return cout * per_channel


class PrunableNet(nn.Module):
    """A float model with a PIT mask on every prunable channel group; BatchNorm stays (it is not folded)."""

    def __init__(self, body: fx.GraphModule, fixed: dict[str, bool], channels: dict[str, int],
                 wiring: dict[str, PitWiring]):
        super().__init__()
        self.body = body
        self.fixed = fixed
        self.channels = channels
        self.wiring = wiring

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)

    def mask(self, group: str) -> nn.Module | None:
        return None if self.fixed[group] else self.body.get_submodule(f"masks.{group}")

    def arch_parameters(self) -> list[nn.Parameter]:
        """The mask parameters alpha (Adam in the paper's scripts)."""
        return [self.mask(g).alpha for g in self.channels if not self.fixed[g]]

    def _counts(self, soft: bool) -> dict[str, Tensor]:
        counts = {}
        for g, width in self.channels.items():
            if self.fixed[g]:
                counts[g] = torch.tensor(float(width))
            elif soft:
                counts[g] = self.mask(g).alpha.abs().sum()
            else:
                counts[g] = channel_mask(self.mask(g).alpha).detach().sum()
        return counts

    def cost(self, name: str = "params") -> Tensor:
        """Float parameter count, soft (sum of |alpha|, differentiable, input channels not detached)."""
        if name != "params":
            raise ValueError(f"PIT regularises the float parameter count; cost must be 'params', got {name!r}")
        return self._total(self._counts(soft=True))

    def discrete_cost(self) -> float:
        """Float parameter count of the binarised architecture."""
        return float(self._total(self._counts(soft=False)))

    def _total(self, counts: dict[str, Tensor]) -> Tensor:
        total = torch.zeros(())
        for wire in self.wiring.values():
            cin = torch.tensor(float(wire.shape.cin)) if wire.input_group is None else \
                counts[wire.input_group] * wire.input_multiplier
            total = total + _parameters(wire.shape, cin, counts[wire.group])
        return total

    def kept(self) -> dict[str, Tensor]:
        """Indices of the channels each group keeps (all of them for fixed groups)."""
        return {g: torch.arange(width) if self.fixed[g] else
                torch.nonzero(channel_mask(self.mask(g).alpha).detach() > 0).flatten()
                for g, width in self.channels.items()}

    def arch(self) -> Arch:
        """The pruned architecture as an Arch with 32-bit float weights (0 = pruned)."""
        kept = self.kept()
        layers = {}
        for name, wire in self.wiring.items():
            bits = [0] * self.channels[wire.group]
            for c in kept[wire.group].tolist():
                bits[c] = 32
            source = None
            if wire.input_group is not None and not self.fixed[wire.input_group]:
                source = next(n for n, w in self.wiring.items() if w.group == wire.input_group)
            layers[name] = LayerArch(wire.shape, bits, None, source, wire.input_multiplier)
        return Arch(layers, {})

    def keep(self, arch: Arch) -> None:
        """Set the masks so that exactly the channels `arch` keeps (weight bits > 0) are kept: a recorded result."""
        with torch.no_grad():
            for name, wire in self.wiring.items():
                if not self.fixed[wire.group]:
                    kept = torch.tensor(arch.layers[name].weight_bits) > 0
                    self.mask(wire.group).alpha.copy_(kept.to(self.mask(wire.group).alpha.dtype))

    def export(self) -> fx.GraphModule:
        """Plain float model with the pruned channels removed and BatchNorm sliced (affine and running statistics)."""
        kept = self.kept()
        modules = {}
        with torch.no_grad():
            for name, wire in self.wiring.items():
                layer, out_keep = self.body.get_submodule(name), kept[wire.group]
                weight = layer.weight[out_keep]
                if wire.input_group is not None and wire.shape.kind != "dw":
                    weight = weight[:, flattened_keep(kept[wire.input_group], wire.input_multiplier)]
                bias = None if layer.bias is None else layer.bias[out_keep]
                conv = None if isinstance(layer, nn.Linear) else \
                    dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
                modules[name] = plain_layer(weight, bias, conv, wire.shape.kind)
                if wire.batchnorm is not None:
                    modules[wire.batchnorm] = _slice_batchnorm(self.body.get_submodule(wire.batchnorm), out_keep)
        return rebuild(self.body, modules, "Pruned", drop="masks.").train(self.training)


def _slice_batchnorm(bn: nn.BatchNorm2d, keep: Tensor) -> nn.BatchNorm2d:
    new = type(bn)(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight = nn.Parameter(bn.weight[keep].clone())
        new.bias = nn.Parameter(bn.bias[keep].clone())
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[keep])
        new.running_var.copy_(bn.running_var[keep])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


def prunable(model: nn.Module, example_input: Tensor) -> PrunableNet:
    """Put a PIT mask after every prunable layer (after its BatchNorm when it has one); `model` is left untouched."""
    gm = trace(model, example_input)
    cg = channel_groups(gm)
    masks = nn.ModuleDict({g: ChannelMask(cg.shapes[names[0]].cout) for g, names in cg.members.items()
                           if not cg.fixed[g]})
    gm.add_submodule("masks", masks)
    wiring = {}
    for name, node in cg.nodes.items():
        users = list(node.users)
        bn = users[0] if len(users) == 1 and isinstance(_module(gm, users[0]), (nn.BatchNorm1d, nn.BatchNorm2d)) \
            else None
        group = cg.group_of[name]
        wiring[name] = PitWiring(cg.shapes[name], group, cg.input_group[name], cg.input_multiplier[name],
                                 None if bn is None else bn.target)
        if cg.fixed[group]:
            continue
        after = bn or node
        with gm.graph.inserting_after(after):
            masked = gm.graph.call_module(f"masks.{group}", (after,))
        masked.meta = dict(after.meta)
        after.replace_all_uses_with(masked, delete_user_cb=lambda user, m=masked: user is not m)
    gm.recompile()
    channels = {g: cg.shapes[names[0]].cout for g, names in cg.members.items()}
    return PrunableNet(gm, cg.fixed, channels, wiring).train(model.training)

