"""The relaxation: precision logits, softmax/Gumbel/hard sampling, temperature, freezing, searchable layers."""
from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from . import cost as cost_models
from .arch import Arch, LayerArch
from .quant import ActivationQuantizer, compile_region, mix_weights, quantize_bias, weight_grid

MAX_BITS = 16
GRANULARITIES = ("channel", "layer")
SAMPLINGS = ("softmax", "gumbel", "hard")


def _check_bits(field_name: str, bits, allow_zero: bool) -> tuple[int, ...]:
    lowest = 0 if allow_zero else 1
    allowed = f"distinct integers in {lowest}..{MAX_BITS}"
    try:
        values = tuple(bits)
    except TypeError:
        raise ValueError(f"{field_name} must be a set of {allowed}; got {bits!r}") from None
    if not values:
        raise ValueError(f"{field_name} must be a non-empty set of {allowed}; got {bits!r}")
    for b in values:
        if isinstance(b, bool) or not isinstance(b, int):
            raise ValueError(f"{field_name} must contain {allowed}; got {b!r} in {bits!r}")
        if b == 0 and not allow_zero:
            raise ValueError(f"{field_name} must not contain 0 (an activation cannot be pruned); "
                             f"allowed: {allowed}; got {bits!r}")
        if not lowest <= b <= MAX_BITS:
            raise ValueError(f"{field_name} must contain {allowed}; got {b!r} in {bits!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{field_name} must not repeat a precision; got {bits!r}")
    return tuple(sorted(values))


@dataclass(frozen=True)
class SearchSpace:
    """What the search may choose: weight precisions per output channel (0 = pruned) and activation precisions."""

    weight_bits: tuple[int, ...] = (0, 2, 4, 8)
    act_bits: tuple[int, ...] = (8,)
    granularity: str = "channel"

    def __post_init__(self):
        object.__setattr__(self, "weight_bits", _check_bits("weight_bits", self.weight_bits, True))
        object.__setattr__(self, "act_bits", _check_bits("act_bits", self.act_bits, False))
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; got {self.granularity!r}")
        if self.granularity == "layer" and 0 in self.weight_bits:
            raise ValueError("weight_bits must not contain 0 with granularity='layer' (it would remove whole "
                             "layers); use granularity='channel' to prune channels")


def init_logits(bits: tuple[int, ...], channels: int) -> Tensor:
    """Logits p/max(P) for every precision p and channel (float64: the cost is computed in float64)."""
    top = max(max(bits), 1)
    return torch.tensor([b / top for b in bits], dtype=torch.float64)[:, None].repeat(1, channels)


def hard_choice(theta: Tensor, zero_index: int | None) -> Tensor:
    """Argmax precision index per channel; if every channel picks 0 bits, the least-pruned one stays alive (tensor
    ops only: nothing is read back to the host)."""
    index = theta.argmax(dim=0)
    if zero_index is None or theta.shape[0] == 1:
        return index
    keep = theta[zero_index].argmin()
    alive = theta.index_select(1, keep.view(1))[:, 0].index_fill(0, torch.tensor(zero_index, device=theta.device),
                                                                  -float("inf"))
    rescued = index.index_put((keep.view(1),), alive.argmax().view(1))
    return torch.where((index == zero_index).all(), rescued, index)


def sample(alpha: Tensor, temperature: float | Tensor, mode: str, zero_index: int | None) -> Tensor:
    """theta over precisions (dim 0): softmax(alpha/T), a Gumbel-softmax draw, or the argmax one-hot (STE). A single
    precision is exactly 1, so outside a Gumbel draw (whose noise the random stream keeps) it is 1 without a gradient
    (which would be 0): a fixed-precision network does no backward into its logits."""
    if mode == "gumbel":  # F.gumbel_softmax, with a temperature that may be a tensor
        gumbels = -torch.empty_like(alpha).exponential_().log()
        return torch.softmax((alpha + gumbels) / temperature, dim=0)
    if alpha.shape[0] == 1:
        return torch.ones_like(alpha)
    soft = torch.softmax(alpha / temperature, dim=0)
    if mode == "softmax":
        return soft
    one_hot = F.one_hot(hard_choice(soft.detach(), zero_index), alpha.shape[0]).T.to(soft.dtype)
    return one_hot + (soft - soft.detach())


class SearchableLayer(nn.Module):
    """A conv/linear whose output channels each take a weight precision (0 = pruned) from its group's theta."""

    def __init__(self, module: nn.Conv2d | nn.Linear, bits: tuple[int, ...]):
        super().__init__()
        self.weight = nn.Parameter(module.weight.detach().clone())
        self.bias = None if module.bias is None else nn.Parameter(module.bias.detach().clone())
        self.register_buffer("bits", torch.tensor(bits), persistent=False)
        self.register_buffer("grid", weight_grid(self.bits, self.weight.dtype), persistent=False)
        self.zero_index = bits.index(0) if 0 in bits else None
        self.conv = None
        if isinstance(module, nn.Conv2d):
            self.conv = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
                             groups=module.groups)
        self.theta: Tensor | None = None
        self.in_scale: Tensor | None = None

    def effective_params(self) -> tuple[Tensor, Tensor | None, Tensor]:
        """Fake-quantized weight, bias and per-channel weight scale under the current theta (0 bits: exact zeros)."""
        weight, w_scale = mix_weights(self.weight, self.theta, self.grid)
        bias = self.bias
        if bias is not None:
            if self.in_scale is not None:
                bias = quantize_bias(bias, self.in_scale * w_scale)
            if self.zero_index is not None:
                bias = bias * (1 - self.theta[self.zero_index])
        return weight, bias, w_scale

    def forward(self, x: Tensor) -> Tensor:
        weight, bias, _ = self.effective_params()
        if self.conv is None:
            return F.linear(x, weight, bias)
        return F.conv2d(x, weight, bias, **self.conv)

    def __getstate__(self):
        return {**super().__getstate__(), "theta": None, "in_scale": None}

    def extra_repr(self) -> str:
        return f"weight={tuple(self.weight.shape)}, bits={tuple(self.bits.tolist())}"


@dataclass
class Group:
    """Output channels that share one decision per channel: every layer producing them uses one theta."""

    bits: tuple[int, ...]
    channels: int
    layers: list[str] = field(default_factory=list)
    prunable: bool = True

    @property
    def zero_index(self) -> int | None:
        return self.bits.index(0) if 0 in self.bits else None


@dataclass
class LayerWiring:
    """Where a layer's input comes from: the channel group feeding it and the activation quantizer before it."""

    shape: cost_models.LayerShape
    group: str
    input_group: str | None  # None: the network input, fixed channels
    input_multiplier: int
    input_act: str | None


@dataclass
class CostPlan:
    """The device tensors a searchable net's cost reads, built once: its wiring as indices, so every layer's expected
    cost is one call of a batched cost model (group and activation order: the net's own dicts)."""

    layers: cost_models.LayerBatch  # the L layers' shapes
    place: list[Tensor | None]  # per group: the columns of W its precisions are; None: all W, in order
    columns: list[Tensor]  # per layer: the columns of W its group has (a cost model that is not batched)
    channels: Tensor  # (G,) channels of each group
    group_index: Tensor  # (L,) the group of each layer's output channels
    input_index: Tensor  # (L,) the group feeding each layer; -1: the network input (fixed channels)
    multiplier: Tensor  # (L,) features per input channel (a flatten's)
    static_cin: Tensor  # (L,) input features of each layer before pruning
    w_bits: Tensor  # (W,) the space's weight precisions
    act_index: Tensor  # (L,) row of each layer's input probabilities among the searched quantizers' (last: fixed)
    a_bits: Tensor  # (L, A) input precisions of each layer, a fixed one padded (with probability 0)
    fixed_probs: Tensor  # (A,) the probabilities of a fixed input precision: one-hot on the first
    group_channels: tuple[int, ...]  # channels of each group (a layer-granularity theta stands for all of them)
    zero: int | None  # index of 0 bits among the space's weight precisions
    shapes: tuple[cost_models.LayerShape, ...]  # each layer's shape (a cost model that is not batched)
    act_counts: tuple[int, ...]  # each layer's real number of input precisions (the rest of a_bits is padding)

    @classmethod
    def of(cls, net: SearchableNet) -> CostPlan:
        f64, long = torch.float64, torch.long
        w_bits, groups = net.space.weight_bits, list(net.groups)
        act_keys, a_count = list(net.act_logits), len(net.space.act_bits)
        wires = list(net.wiring.values())
        a_bits = [list(bits) + [bits[0]] * (a_count - len(bits)) for bits in map(net._input_bits, wires)]
        return cls(
            cost_models.LayerBatch.of([wire.shape for wire in wires]),
            [None if net.groups[g].bits == w_bits else torch.tensor([w_bits.index(b) for b in net.groups[g].bits])
             for g in groups],
            [torch.tensor([w_bits.index(b) for b in net.groups[wire.group].bits]) for wire in wires],
            torch.tensor([float(net.groups[g].channels) for g in groups], dtype=f64),
            torch.tensor([groups.index(w.group) for w in wires], dtype=long),
            torch.tensor([groups.index(w.input_group) if w.input_group else -1 for w in wires], dtype=long),
            torch.tensor([float(w.input_multiplier) for w in wires], dtype=f64),
            torch.tensor([float(w.shape.cin) for w in wires], dtype=f64),
            torch.tensor(w_bits, dtype=f64),
            torch.tensor([act_keys.index(w.input_act) if w.input_act in act_keys else len(act_keys) for w in wires],
                         dtype=long),
            torch.tensor(a_bits, dtype=f64), torch.eye(a_count, dtype=f64)[0],
            tuple(net.groups[g].channels for g in groups), w_bits.index(0) if 0 in w_bits else None,
            tuple(wire.shape for wire in wires), tuple(len(net._input_bits(wire)) for wire in wires))

    def to(self, device: torch.device) -> CostPlan:
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in vars(self).items()}
        moved.update(layers=self.layers.to(device), place=[p if p is None else p.to(device) for p in self.place],
                     columns=[c.to(device) for c in self.columns])
        return CostPlan(**moved)


def expected_cost(fn: cost_models.CostFn, batched: bool, plan: CostPlan, thetas: list[Tensor],
                  act_thetas: list[Tensor]) -> Tensor:
    """Expected cost under cost model `fn` of a network with `plan`, given each group's theta and each searched
    activation's (the plan's order): the function the search differentiates, pure so that it compiles."""
    counts = []
    for theta, channels, place in zip(thetas, plan.group_channels, plan.place):
        count = theta.sum(1) if theta.shape[1] > 1 else theta[:, 0] * channels
        counts.append(count if place is None else count.new_zeros(len(plan.w_bits)).index_copy(0, place, count))
    counts = torch.stack(counts)  # (groups, weight precisions)
    alive = plan.channels if plan.zero is None else plan.channels - counts[:, plan.zero]
    cin = torch.where(plan.input_index >= 0, alive[plan.input_index] * plan.multiplier, plan.static_cin)
    n = counts[plan.group_index]
    probs = torch.stack([*act_thetas, plan.fixed_probs])[plan.act_index]
    if batched:
        return cost_models.layer_cost(fn, plan.layers, cin, n, plan.w_bits, probs, plan.a_bits)
    layers = zip(plan.shapes, plan.columns, plan.act_counts)
    return sum(cost_models.layer_cost(fn, shape, cin[i], n[i, cols], plan.w_bits[cols], probs[i, :k],
                                      plan.a_bits[i, :k]) for i, (shape, cols, k) in enumerate(layers))


class SearchableNet(nn.Module):
    """A float model made searchable: BatchNorm folded, channel groups tied, one decision per group and channel."""

    def __init__(self, body: fx.GraphModule, space: SearchSpace, groups: dict[str, Group],
                 wiring: dict[str, LayerWiring], act_signed: dict[str, bool]):
        super().__init__()
        self.body = body
        self.space = space
        self.groups = groups
        self.wiring = wiring
        self.act_signed = act_signed
        self.logits = nn.ParameterDict()
        for name, group in groups.items():
            width = group.channels if space.granularity == "channel" else 1
            self.logits[name] = nn.Parameter(init_logits(group.bits, width))
        self.act_logits = nn.ParameterDict()
        if len(space.act_bits) > 1:
            for key in act_signed:
                self.act_logits[key] = nn.Parameter(init_logits(space.act_bits, 1)[:, 0])
        self.register_buffer("_temperature", torch.tensor(1.0, dtype=torch.float64))
        self.sampling = "softmax"
        self._cache: tuple | None = None
        self._plan = CostPlan.of(self)
        self._checked: set[str] = set()  # cost models whose inputs this net has checked (once, not in every step)
        self.cost_compiled = False
        self._compiled_costs: dict[str, Callable] = {}

    def __getstate__(self):
        return {**super().__getstate__(), "_cache": None, "_compiled_costs": {}}

    def _apply(self, fn, recurse=True):
        """Moving the net (to a device, a dtype) drops the cached thetas, which live where the logits were, and
        moves the cost constants along (once, not at every step); the compiled costs, which hold those constants,
        go only when the constants changed device (not at every validation's move to the device it is on)."""
        self._cache = None
        result = super()._apply(fn, recurse)
        if self._plan.w_bits.device != self._temperature.device:
            self._plan = self._plan.to(self._temperature.device)
            self._compiled_costs = {}
        return result

    # -- parameters -----------------------------------------------------------------------------------
    def layer(self, name: str) -> SearchableLayer:
        return self.body.get_submodule(name)

    def act(self, key: str) -> ActivationQuantizer:
        return self.body.get_submodule(f"acts.{key}")

    def arch_parameters(self) -> list[nn.Parameter]:
        """The precision logits (optimised by SGD with momentum in the paper)."""
        return list(self.logits.values()) + list(self.act_logits.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """Everything else: weights, biases and PACT clips."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # -- sampling -------------------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Softmax temperature; a buffer, so checkpoints and best-state snapshots keep it."""
        return float(self._temperature)

    def set_temperature(self, temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature!r}")
        self._temperature.fill_(float(temperature))

    def set_sampling(self, mode: str) -> None:
        if mode not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}; got {mode!r}")
        self.sampling = mode

    def freeze(self) -> None:
        """Fine-tune mode: the argmax architecture in training too, logits no longer trained."""
        self.sampling = "hard"
        for p in self.arch_parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def compensate(self) -> None:
        """Divide every channel's weight and bias by its alive probability 1 - theta_0 at the current temperature (the
        reference's conversion), so that the soft mixture of the search starts near the float layer."""
        for g, grp in self.groups.items():
            if grp.zero_index is None:
                continue
            alive = 1 - torch.softmax(self.logits[g] / self._temperature, dim=0)[grp.zero_index]
            for name in grp.layers:
                layer = self.layer(name)
                scale = alive.to(layer.weight.dtype)
                layer.weight.div_(scale.view(-1, *[1] * (layer.weight.dim() - 1)))
                if layer.bias is not None:
                    layer.bias.div_(scale)
        self._cache = None

    def _mode(self) -> str:
        return self.sampling if self.training else "hard"

    def _state_key(self) -> tuple:
        return (self._mode(), self._temperature._version, tuple(p._version for p in self.arch_parameters()))

    def _sample_thetas(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        mode, t = self._mode(), self._temperature
        thetas = {g: sample(self.logits[g], t, mode, grp.zero_index) for g, grp in self.groups.items()}
        act_thetas = {k: sample(a[:, None], t, mode, None)[:, 0] for k, a in self.act_logits.items()}
        self._cache = (self._state_key(), thetas, act_thetas)
        return thetas, act_thetas

    def _sample(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Sample the thetas and hand them to the layers and quantizers the forward runs."""
        thetas, act_thetas = self._sample_thetas()
        for key, theta in act_thetas.items():
            self.act(key).theta = theta
        for g, grp in self.groups.items():
            theta = thetas[g].to(torch.float32)
            for name in grp.layers:
                self.layer(name).theta = theta
        for name, wire in self.wiring.items():
            self.layer(name).in_scale = None if wire.input_act is None else self.act(wire.input_act).scale()
        return thetas, act_thetas

    def thetas(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """theta of every group and activation quantizer: the last forward's, unless the logits moved since (then a
        fresh sample, which the layers do not see before the next forward)."""
        if self._cache is not None and self._cache[0] == self._state_key():
            return self._cache[1], self._cache[2]
        return self._sample_thetas()

    def forward(self, x: Tensor) -> Tensor:
        self._sample()
        return self.body(x)

    # -- cost and result ------------------------------------------------------------------------------
    def cost(self, name: str = "size") -> Tensor:
        """Differentiable expected cost of the network under the cost model `name` (float64 scalar).

        It uses the theta of the last forward (the same Gumbel sample), so backpropagate task loss and
        cost together, in one backward per step.
        """
        fn = cost_models.get(name)
        if name not in self._checked:
            self._check_cost_model(fn)
            self._checked.add(name)
        thetas, act_thetas = self.thetas()  # in the plan's order: the net's dicts
        return self._cost_function(name, fn)(list(thetas.values()), list(act_thetas.values()))

    def compile_cost(self) -> None:
        """Differentiate the cost through one compiled region per cost model (and sampling mode) from now on
        (JOINT_COMPILE=net): a fraction of a millisecond per step instead of a hundred small operations, other last
        bits."""
        self.cost_compiled = True

    def _cost_function(self, name: str, fn: cost_models.CostFn) -> Callable[[list[Tensor], list[Tensor]], Tensor]:
        plan, batched = self._plan, name in cost_models.BATCHED

        def cost(thetas: list[Tensor], act_thetas: list[Tensor]) -> Tensor:
            return expected_cost(fn, batched, plan, thetas, act_thetas)

        if not (self.cost_compiled and torch.is_grad_enabled()):  # a validation cost is not worth a compilation
            return cost
        if name not in self._compiled_costs:
            self._compiled_costs[name] = compile_region(cost, f"cost_{name}")
        return self._compiled_costs[name]

    def _input_bits(self, wire: LayerWiring) -> tuple[int, ...]:
        """The precisions a layer's input can take: the space's where searched, else its one fixed precision (32 for
        the network input)."""
        if wire.input_act in self.act_logits:
            return self.space.act_bits
        return (self.space.act_bits[0] if wire.input_act else 32,)

    def _check_cost_model(self, fn: cost_models.CostFn) -> None:
        """Evaluate `fn` once per layer on the CPU with checks on (table entries, supported kernels): the one-line
        errors come here, before training, and no step needs to read a value back."""
        one = torch.ones((), dtype=torch.float64)
        with cost_models.checking():
            for wire in self.wiring.values():
                w = torch.tensor(self.groups[wire.group].bits, dtype=torch.float64)
                a = torch.tensor(self._input_bits(wire), dtype=torch.float64)
                fn(wire.shape, one, torch.ones_like(w), a[:, None], w[None, :])

    def at_initial_choice(self) -> bool:
        """Whether every channel and searched activation still argmaxes to the precision it started at (the
        highest): a search that ends here never moved."""
        with torch.no_grad():
            weights = all(bool((alpha.argmax(0) == len(self.groups[g].bits) - 1).all())
                          for g, alpha in self.logits.items())
            return weights and all(int(a.argmax()) == len(a) - 1 for a in self.act_logits.values())

    def arch(self) -> Arch:
        """The discrete architecture: argmax precision per channel (0 = pruned) and per activation."""
        with torch.no_grad():
            bits = {}
            for g, grp in self.groups.items():
                index = hard_choice(torch.softmax(self.logits[g] / self.temperature, 0), grp.zero_index)
                bits[g] = [grp.bits[i] for i in index.expand(grp.channels).tolist()]
            acts = {}
            for key in self.act_signed:
                if key in self.act_logits:
                    acts[key] = self.space.act_bits[int(self.act_logits[key].argmax())]
                else:
                    acts[key] = self.space.act_bits[0]
        layers = {}
        for name, wire in self.wiring.items():
            source = None
            if wire.input_group is not None and self.groups[wire.input_group].prunable:
                source = self.groups[wire.input_group].layers[0]
            layers[name] = LayerArch(wire.shape, bits[wire.group], wire.input_act, source, wire.input_multiplier)
        return Arch(layers, acts)


def at_activation_bits(net: SearchableNet, bits: int) -> SearchableNet:
    """A copy of `net` whose searched activations all run at `bits`, each on the clip learned for the precision it
    chose (a finer or coarser grid over the same range): the model as an engine with only `bits`-bit activations
    runs it."""
    if bits not in net.space.act_bits:
        raise ValueError(f"bits must be one of the searched activation precisions {net.space.act_bits}; got {bits!r}")
    copy = deepcopy(net)
    target = net.space.act_bits.index(bits)
    with torch.no_grad():
        for key, alpha in copy.act_logits.items():
            clip = copy.act(key).clip
            clip[target] = clip[int(alpha.argmax())].clone()
            alpha.copy_(F.one_hot(torch.tensor(target), len(alpha)).to(alpha.dtype))
    return copy


def random_architecture(net: SearchableNet, seed: int | torch.Generator) -> SearchableNet:
    """Set `net`'s logits to a one-hot random architecture (no group fully pruned), drawn from `seed` or a generator:
    what tests and benchmarks of everything downstream of a search use instead of training one."""
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for g, alpha in net.logits.items():
            choice = torch.randint(0, alpha.shape[0], (alpha.shape[1],), generator=gen)
            if net.groups[g].zero_index is not None:
                choice[0] = alpha.shape[0] - 1
            alpha.copy_(1000.0 * F.one_hot(choice, alpha.shape[0]).T)
        for alpha in net.act_logits.values():
            alpha.copy_(1000.0 * F.one_hot(torch.randint(0, len(alpha), (), generator=gen), len(alpha)))
    return net
