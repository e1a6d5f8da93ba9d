"""Where a quantized step's time goes beyond float's: QAT w8a8 and the joint search (size cost) on ResNet-8, as they
run and with their activation quantizers replaced by a clamp (one eager op), their weights left unquantized, or both,
side by side with the eager float step in interleaved rounds (median of per-round ratios)."""
from __future__ import annotations

import argparse
import statistics
from contextlib import contextmanager

import torch

import joint
import record
from joint.quant import ActivationQuantizer
from joint.search import SearchableLayer
from step_time import float_step, mean_ms, searched_step


def clamped(quantizer: ActivationQuantizer, x: torch.Tensor) -> torch.Tensor:
    """The cheapest stand-in for a quantizer: one clamp, no learnable clip, no theta."""
    return torch.clamp(x, -6.0 if quantizer.signed else 0.0, 6.0)


def unquantized(layer: SearchableLayer):
    """The layer's float weight and bias: no precision stack, mixing or bias grid (nothing reaches theta or clips)."""
    return layer.weight, layer.bias, None


VARIANTS = {"as run": {}, "activations clamped": {"act": clamped}, "weights unquantized": {"weights": unquantized},
            "both": {"act": clamped, "weights": unquantized}}


@contextmanager
def variant(name: str):
    """Swap the stand-ins of variant `name` into the quantizer and layer classes for the duration."""
    swaps = VARIANTS[name]
    saved = ActivationQuantizer.forward, SearchableLayer.effective_params
    ActivationQuantizer.forward = swaps.get("act", saved[0])
    SearchableLayer.effective_params = swaps.get("weights", saved[1])
    try:
        yield
    finally:
        ActivationQuantizer.forward, SearchableLayer.effective_params = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench/step_breakdown.json")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be an integer >= 1; got {args.rounds}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = (torch.rand(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,)))
    nets = {"qat_w8a8": searched_step(batch, joint.SearchSpace((8,), (8,)), 0.0)[0],
            "joint_search_size": searched_step(batch, joint.SearchSpace((0, 2, 4, 8), (8,)), 1e-6)[0]}
    configs = {("float", "as run"): float_step(batch)}
    configs.update({(net, name): step for net, step in nets.items() for name in VARIANTS})
    for (_, name), step in configs.items():
        with variant(name):
            mean_ms(step, 3)
    times = {key: [] for key in configs}
    for r in range(args.rounds):
        for (net, name), step in configs.items():
            with variant(name):
                times[(net, name)].append(mean_ms(step, args.steps))
        print(f"round {r + 1}/{args.rounds}", flush=True)
    float_ms = times[("float", "as run")]
    ratios = {key: statistics.median(t / f for t, f in zip(v, float_ms)) for key, v in times.items()}
    print(f"\nResNet-8, batch {args.batch}, 3x32x32, {args.threads} threads, {args.rounds} interleaved rounds of "
          f"{args.steps} steps; x float: median of the per-round ratios to the eager float step")
    print(f"{'step':<20}{'variant':<22}{'median ms/step':>16}{'x float':>10}")
    for (net, name), v in times.items():
        print(f"{net:<20}{name:<22}{statistics.median(v):>16.2f}{ratios[(net, name)]:>10.2f}")
    record.write(args.out, {"median_ms": {f"{n}/{v}": statistics.median(t) for (n, v), t in times.items()},
                            "ratios_to_float": {f"{n}/{v}": r for (n, v), r in ratios.items()},
                            "per_round_ms": {f"{n}/{v}": t for (n, v), t in times.items()}}, args)


if __name__ == "__main__":
    main()
