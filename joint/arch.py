"""The discrete result of a search: per-layer, per-channel weight bits (0 = pruned) and activation bits."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import cost as cost_models
from .cost import LayerShape


@dataclass
class LayerArch:
    """One layer of an Arch: its static shape, its bits per output channel, and what feeds it."""

    shape: LayerShape
    weight_bits: list[int]
    input_act: str | None  # activation quantizer on the layer's input (a key of Arch.activations)
    input_source: str | None  # layer whose alive channels feed this one; None: a fixed channel count
    input_multiplier: int = 1  # spatial positions per channel when a flatten feeds a linear layer

    @property
    def alive(self) -> int:
        return sum(1 for b in self.weight_bits if b > 0)


@dataclass
class Arch:
    """A discrete architecture; its cost under any registered model and its JSON form."""

    layers: dict[str, LayerArch]
    activations: dict[str, int]

    def input_channels(self, name: str) -> int:
        """Effective input features of a layer: alive channels of its source times the flatten multiplier."""
        layer = self.layers[name]
        if layer.shape.kind == "dw":
            return layer.alive
        if layer.input_source is None:
            return layer.shape.cin
        return self.layers[layer.input_source].alive * layer.input_multiplier

    def layer_cost(self, name: str, model: str = "size") -> float:
        """Cost of one layer under the cost model `model`."""
        fn = cost_models.get(model)
        layer = self.layers[name]
        precisions = sorted(set(layer.weight_bits))
        n = torch.tensor([layer.weight_bits.count(p) for p in precisions], dtype=torch.float64)
        w_bits = torch.tensor(precisions, dtype=torch.float64)
        a = 32 if layer.input_act is None else self.activations[layer.input_act]
        cin = torch.tensor(float(self.input_channels(name)), dtype=torch.float64)
        one = torch.ones(1, dtype=torch.float64)
        a_bits = torch.tensor([float(a)], dtype=torch.float64)
        with cost_models.checking():  # off the training path: table entries and kernels are checked here
            return float(cost_models.layer_cost(fn, layer.shape, cin, n, w_bits, one, a_bits))

    def cost(self, model: str = "size") -> float:
        """Total cost under the cost model `model` (size in bits, bitops, MPIC or NE16 cycles)."""
        cost_models.get(model)
        return sum(self.layer_cost(name, model) for name in self.layers)

    def summary(self) -> list[dict]:
        """One row per layer: inputs and channels kept, channels per weight precision, input activation bits, weight
        kB, MACs and the MPIC and NE16 cycles of the layer."""
        rows = []
        for name, layer in self.layers.items():
            counts = {b: layer.weight_bits.count(b) for b in sorted(set(layer.weight_bits), reverse=True)}
            cin = self.input_channels(name)
            macs = int(cost_models.channel_macs(layer.shape, torch.tensor(float(cin)))) * layer.alive
            rows.append({"layer": name, "kind": layer.shape.kind, "inputs": cin, "kept": layer.alive,
                         "channels": len(layer.weight_bits),
                         "bits": " ".join(f"{b}:{n}" for b, n in counts.items()),
                         "act_bits": None if layer.input_act is None else self.activations[layer.input_act],
                         "kB": self.layer_cost(name, "size") / 8000, "macs": macs,
                         **{target: self._cycles(name, target) for target in ("mpic", "ne16")}})
        return rows

    def _cycles(self, name: str, target: str) -> float | None:
        """Cycles of a layer on a target, None where the target has no such precision (float weights of PIT)."""
        try:
            return None if max(self.layers[name].weight_bits) > 8 else self.layer_cost(name, target)
        except ValueError:
            return None

    def precision_groups(self) -> int:
        """Distinct non-zero weight precisions summed over layers: NE16 runs each as a sub-layer with its own tiles."""
        return sum(len(set(layer.weight_bits) - {0}) for layer in self.layers.values())

    def one_precision_per_layer(self) -> Arch:
        """A copy whose layers keep the same channels, all at the layer's highest precision: one sub-layer per layer on
        NE16, so the NE16 cycles it saves are what splitting layers into precisions costs."""
        layers = {name: replace(layer, weight_bits=[max(layer.weight_bits) if b else 0 for b in layer.weight_bits])
                  for name, layer in self.layers.items()}
        return Arch(layers, dict(self.activations))

    def size_kb(self) -> float:
        """Weight memory in kB (bits / 8 / 1000), as the paper reports it."""
        return self.cost("size") / 8 / 1000

    def pruned_fraction(self) -> float:
        """Fraction of output channels pruned, over all layers."""
        total = sum(len(layer.weight_bits) for layer in self.layers.values())
        return sum(layer.weight_bits.count(0) for layer in self.layers.values()) / total

    def to_dict(self) -> dict:
        return {
            "layers": {name: {**asdict(layer.shape), "weight_bits": layer.weight_bits, "input_act": layer.input_act,
                              "input_source": layer.input_source, "input_multiplier": layer.input_multiplier}
                       for name, layer in self.layers.items()},
            "activations": dict(self.activations),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Arch:
        try:
            layers = {}
            for name, d in data["layers"].items():
                shape = LayerShape(name=d["name"], kind=d["kind"], cin=int(d["cin"]), cout=int(d["cout"]),
                                   kernel=tuple(d["kernel"]), stride=tuple(d["stride"]), groups=int(d["groups"]),
                                   out_hw=tuple(d["out_hw"]), bias=bool(d["bias"]))
                bits = [int(b) for b in d["weight_bits"]]
                if len(bits) != shape.cout or any(b < 0 for b in bits):
                    raise ValueError(f"layer {name}: weight_bits must hold {shape.cout} integers >= 0")
                layers[name] = LayerArch(shape, bits, d["input_act"], d["input_source"], int(d["input_multiplier"]))
            activations = {str(k): int(v) for k, v in data["activations"].items()}
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not an Arch dictionary: missing or malformed field {err}") from None
        for name, layer in layers.items():
            if layer.input_source is not None and layer.input_source not in layers:
                raise ValueError(f"layer {name}: input_source {layer.input_source!r} is not a layer of the Arch")
            if layer.input_act is not None and layer.input_act not in activations:
                raise ValueError(f"layer {name}: input_act {layer.input_act!r} is not in activations")
        return cls(layers, activations)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Arch:
        return cls.from_dict(json.loads(Path(path).read_text()))
