"""Cost models (size, bitops, mpic, ne16) behind one interface, for soft theta and discrete Arch alike.

A cost model is one function f(layer, cin, n, a, w) giving the cost of `n` output channels at weight
precision `w` fed by `cin` input channels at activation precision `a`; `n` and `w` broadcast along the
weight precisions (last axis), `a` along the input activation precisions (second-to-last axis). The library
takes the exact expectation sum_i theta_in_i sum_j f(cin_eff, n_j, a_i, p_j) with n_j = sum_c theta_j,c.
A model registered with batched=True also takes a LayerBatch for `layer` (every layer at once, leading axis):
one call per network instead of one per layer, which is what keeps a cost term cheap.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LayerShape:
    """Static shape of one conv/linear call: what every cost model reads besides the channel counts."""

    name: str
    kind: str  # "conv", "dw" (depthwise) or "linear"
    cin: int
    cout: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    groups: int = 1
    out_hw: tuple[int, int] = (1, 1)
    bias: bool = False

    @property
    def weights(self) -> int:
        kh, kw = self.kernel
        return self.cout * kh * kw * (1 if self.kind == "dw" else self.cin)

    @property
    def macs(self) -> int:
        return self.weights * self.out_hw[0] * self.out_hw[1]

    @property
    def depthwise(self) -> bool:
        return self.kind == "dw"


@dataclass(frozen=True)
class LayerBatch:
    """The static shapes of several layers as float64 tensors of shape (layers, 1, 1), to broadcast against
    (layers, activation precisions, weight precisions): a batched cost model reads these fields."""

    names: tuple[str, ...]
    depthwise: Tensor  # bool
    kernel: tuple[Tensor, Tensor]
    out_hw: tuple[Tensor, Tensor]
    kinds: frozenset[bool]  # which of depthwise (True) and not (False) occur: a model skips a formula none needs

    @classmethod
    def of(cls, shapes: list[LayerShape]) -> LayerBatch:
        column = lambda values: torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)  # noqa: E731
        return cls(tuple(s.name for s in shapes), column([s.depthwise for s in shapes]).bool(),
                   (column([s.kernel[0] for s in shapes]), column([s.kernel[1] for s in shapes])),
                   (column([s.out_hw[0] for s in shapes]), column([s.out_hw[1] for s in shapes])),
                   frozenset(s.depthwise for s in shapes))

    def to(self, device: torch.device) -> LayerBatch:
        return LayerBatch(self.names, self.depthwise.to(device), tuple(t.to(device) for t in self.kernel),
                          tuple(t.to(device) for t in self.out_hw), self.kinds)


CostFn = Callable[[LayerShape, Tensor, Tensor, Tensor, Tensor], Tensor]
MODELS: dict[str, CostFn] = {}
TARGET_ACT_BITS: dict[str, tuple[int, ...] | None] = {}  # activation precisions the target runs; None: any
BATCHED: set[str] = set()  # models whose function also takes a LayerBatch
_checking = False


def register(name: str, act_bits: tuple[int, ...] | None = None,
             batched: bool = False) -> Callable[[CostFn], CostFn]:
    """Decorator adding a cost model to MODELS under `name`; `act_bits` are the activation precisions its
    hardware supports (a search with this model explores them), None if the model does not restrict them;
    `batched`: the function broadcasts over a LayerBatch too (no Python branch on one layer's fields)."""

    def add(fn: CostFn) -> CostFn:
        MODELS[name] = fn
        TARGET_ACT_BITS[name] = None if act_bits is None else tuple(sorted(act_bits))
        (BATCHED.add if batched else BATCHED.discard)(name)
        return fn

    return add


@contextmanager
def checking() -> Iterator[None]:
    """Inside, cost models check their inputs (table lookups, supported kernels) and raise one-line errors; a
    searchable net checks once per cost model, so that a training step reads no value back to the host."""
    global _checking
    previous, _checking = _checking, True
    try:
        yield
    finally:
        _checking = previous


def get(name: str) -> CostFn:
    """The registered cost model `name`, or a one-line error listing the registered ones."""
    if name not in MODELS:
        raise ValueError(f"unknown cost model {name!r}; allowed: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def search_act_bits(name: str) -> tuple[int, ...]:
    """Activation precisions a search with cost model `name` explores by default: its target's, else 8 bits."""
    get(name)
    return TARGET_ACT_BITS[name] or (8,)


def layer_cost(fn: CostFn, layer: LayerShape | LayerBatch, cin: Tensor, n: Tensor, w_bits: Tensor,
               in_probs: Tensor, a_bits: Tensor) -> Tensor:
    """Expected cost of one layer, sum_i in_probs_i sum_j fn(cin, n_j, a_i, w_j), where 0-bit channels cost 0; or
    of every layer of a LayerBatch at once (cin (L,), n (L, W), in_probs and a_bits (L, A), w_bits (W,))."""
    m = torch.where(w_bits != 0, fn(layer, cin[..., None, None], n[..., None, :], a_bits[..., :, None],
                                    w_bits[..., None, :]), 0.0)
    return (in_probs[..., :, None] * m).sum()


def regularizer(cost: Tensor, lam: float) -> Tensor:
    """The term lambda * cost that the search adds to the task loss."""
    if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not lam >= 0 or math.isinf(lam):
        raise ValueError(f"lam must be a finite number >= 0; got {lam!r}")
    return lam * cost


def channel_weights(layer: LayerShape | LayerBatch, cin: Tensor) -> Tensor:
    """Weights of one output channel fed by `cin` input channels (a depthwise channel sees one)."""
    kh, kw = layer.kernel
    return kh * kw * torch.where(torch.as_tensor(layer.depthwise, device=cin.device), torch.ones_like(cin), cin)


def channel_macs(layer: LayerShape | LayerBatch, cin: Tensor) -> Tensor:
    """MACs of one output channel fed by `cin` input channels (no bias term)."""
    return channel_weights(layer, cin) * layer.out_hw[0] * layer.out_hw[1]


def lut(name: str, table: dict[tuple[int, int], float]) -> Callable[[Tensor, Tensor], Tensor]:
    """A differentiable-friendly lookup f(a, w) -> table[(activation bits, weight bits)], broadcast over a and w;
    pruned channels (w = 0) read 0, a pair missing from the table is a one-line error naming `name`."""
    top = 1 + max(max(a, w) for a, w in table)
    dense = torch.full((top, top), float("nan"), dtype=torch.float64)
    dense[:, 0] = 0.0
    for (a_bits, w_bits), value in table.items():
        dense[a_bits, w_bits] = float(value)

    on_device = {}

    def read(a: Tensor, w: Tensor) -> Tensor:
        a_idx, w_idx = torch.broadcast_tensors(a.long(), w.long())
        if a_idx.device not in on_device:
            on_device[a_idx.device] = dense.to(a_idx.device)
        values = on_device[a_idx.device][a_idx.clamp(0, top - 1), w_idx.clamp(0, top - 1)]
        if _checking:
            bad = (a_idx < 0) | (a_idx >= top) | (w_idx < 0) | (w_idx >= top) | values.isnan()
            if bool(bad.any()):
                pairs = sorted({(int(x), int(y)) for x, y in zip(a_idx[bad].tolist(), w_idx[bad].tolist())})
                raise ValueError(f"{name} has no entry for (activation bits, weight bits) {pairs}; "
                                 f"allowed: {sorted(table)} (and weight bits 0)")
        return values.to(a.dtype)

    return read


@register("size", batched=True)
def size(layer: LayerShape, cin: Tensor, n: Tensor, a: Tensor, w: Tensor) -> Tensor:
    """Bits of the weights (no bias, BatchNorm folded)."""
    return channel_weights(layer, cin) * n * w


@register("bitops", batched=True)
def bitops(layer: LayerShape, cin: Tensor, n: Tensor, a: Tensor, w: Tensor) -> Tensor:
    """MACs times weight bits times input activation bits."""
    return channel_macs(layer, cin) * n * w * a


MPIC_MACS_PER_CYCLE = {  # Ottavi et al., MPIC: throughput by (activation bits, weight bits)
    (2, 2): 6.5, (2, 4): 4.0, (2, 8): 2.2,
    (4, 2): 3.9, (4, 4): 3.5, (4, 8): 2.1,
    (8, 2): 2.5, (8, 4): 2.3, (8, 8): 2.1,
}
_mpic_cycles_per_mac = lut("mpic", {pair: 1.0 / thr for pair, thr in MPIC_MACS_PER_CYCLE.items()})


@register("mpic", act_bits=(2, 4, 8), batched=True)
def mpic(layer: LayerShape, cin: Tensor, n: Tensor, a: Tensor, w: Tensor) -> Tensor:
    """Cycles on the MPIC RISC-V core: MACs (no bias term) over the MAC/cycle of the (a, w) pair."""
    return channel_macs(layer, cin) * n * _mpic_cycles_per_mac(a, w)


def _ste(x: Tensor, value: Tensor) -> Tensor:
    return x + (value - x).detach()


def _floor_div(a: Tensor, b: int) -> Tensor:
    return _ste(a, torch.floor(a.detach() / b))


def _ceil_div(a: Tensor, b: int) -> Tensor:
    return _ste(a, torch.floor((a.detach() - 1) / b) + 1)


def _ceil(a: Tensor) -> Tensor:
    return _ste(a, torch.ceil(a.detach()))


def _mod(a: Tensor, b: int) -> Tensor:
    return _ste(a, a.detach() - b * torch.floor(a.detach() / b))


def _spatial_tiles(size: int | Tensor) -> int | Tensor:
    return math.ceil(size / 3) if isinstance(size, int) else torch.ceil(size / 3)


def _ne16_sublayer(ko: Tensor, ki: Tensor, out_hw: tuple, w: Tensor, mode: str) -> Tensor:
    """NE16 cycles of one sub-layer (method notes 3.5): ko output channels, ki inputs, mode 1x1/3x3/dw."""
    k_body = 16 if mode == "dw" else 32
    load = 19 if mode == "1x1" else 31
    n_sp = _spatial_tiles(out_hw[0]) * _spatial_tiles(out_hw[1])
    n_in = _ceil_div(ki, 16)

    def iteration(k: Tensor | int) -> Tensor:
        normquant = 9 + (_ceil(k) if isinstance(k, Tensor) else k)  # 9 + ceil(4k/4): a fractional (soft) k rounds up
        if mode == "dw":
            return load + (6 + k) + (6 + k * w) + 2 + normquant + 13
        matvec = 6 + k if mode == "1x1" else 6 + k * w
        return n_in * (load + 6 + matvec + 2) + normquant + 13

    n_body, rem = _floor_div(ko, k_body), _mod(ko, k_body)
    has_rem = (rem.detach() != 0).to(ko.dtype)
    return n_sp * (n_body * iteration(k_body) + has_rem * iteration(rem))


@register("ne16", act_bits=(8,), batched=True)
def ne16(layer: LayerShape | LayerBatch, cin: Tensor, n: Tensor, a: Tensor, w: Tensor) -> Tensor:
    """Cycles on GAP9's NE16 engine (8-bit activations): analytical tile model, kernels split in 3x3 and 1x1."""
    kh, kw = layer.kernel
    if _checking and isinstance(layer, LayerShape) and layer.depthwise and layer.kernel != (3, 3):
        raise ValueError(f"ne16 supports depthwise kernels (3, 3) only; layer {layer.name} has {layer.kernel}")
    cycles = {}  # by depthwise or not, only the formulas some layer needs
    for depthwise in layer.kinds if isinstance(layer, LayerBatch) else {layer.depthwise}:
        if depthwise:
            cycles[True] = _ne16_sublayer(n, cin, layer.out_hw, w, "dw")
        else:
            n3 = (kh // 3) * (kw // 3)
            n1 = (kh % 3) * kw + (kw % 3) * kh - (kh % 3) * (kw % 3)
            cycles[False] = (n3 * _ne16_sublayer(n, cin, layer.out_hw, w, "3x3")
                             + n1 * _ne16_sublayer(n, cin, layer.out_hw, w, "1x1"))
    if len(cycles) == 1:
        (total,) = cycles.values()
    else:
        total = torch.where(torch.as_tensor(layer.depthwise, device=n.device), cycles[True], cycles[False])
    return total + torch.zeros_like(a)  # NE16 runs every layer at 8-bit activations: the cost does not depend on a
