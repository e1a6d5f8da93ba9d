"""Median training-step time of float (eager and compiled), fixed w8a8 QAT and joint search (size; MPIC with 2/4/8-bit
activations) on ResNet-8, each with the compiled quantizer kernels and compiled whole (JOINT_COMPILE=net), and of the
cost terms alone (eager and compiled), measured side by side; compile times printed apart."""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

import joint
import record
from joint.cost import regularizer
from joint.quant import compile_whole


def float_step(batch, compiled: bool = False):
    model = joint.models.resnet8().train()
    if compiled:
        model = torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), 1e-3, foreach=True)  # as train_phase builds its optimisers

    def step():
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def searched_step(batch, space, lam, cost="size", whole=False):
    net = joint.searchable(joint.models.resnet8(), space, batch[0]).train()
    forward = net
    if whole:  # as train_phase runs a search with JOINT_COMPILE=net
        forward = compile_whole(net)
        net.compile_cost()
    opt_w = torch.optim.Adam(net.weight_parameters(), 1e-3, foreach=True)
    opt_a = torch.optim.SGD(net.arch_parameters(), 1e-2, momentum=0.9, foreach=True) if net.arch_parameters() else None

    def step():
        x, y = batch
        loss = F.cross_entropy(forward(x), y)
        if lam:
            loss = loss + regularizer(net.cost(cost), lam)
        opt_w.zero_grad(set_to_none=True)
        if opt_a:
            opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_w.step()
        if opt_a:
            opt_a.step()
    return step, net


def cost_step(net, cost, compiled=False, resample=False):
    """The cost term's forward and backward as a search step adds it: on the thetas the step's forward sampled (held
    fixed here, as leaves); or, with `resample`, sampling them afresh each time and backpropagating into the logits
    (how earlier figures measured it: a step pays that sampling and its backward for the task loss anyway)."""
    net = copy.deepcopy(net)
    if compiled:
        net.compile_cost()
    thetas = [{k: t.detach().requires_grad_() for k, t in part.items()} for part in net.thetas()]

    def step():
        if resample:
            net.zero_grad(set_to_none=True)
            net._cache = None
        else:
            for theta in [*thetas[0].values(), *thetas[1].values()]:
                theta.grad = None
            net._cache = (net._state_key(), *thetas)
        net.cost(cost).backward()
    return step


def round_ratio_quartiles(config_ms: list[float], float_ms: list[float]) -> tuple[float, float]:
    """First and third quartiles of a config's time over the float step's in the same round: how far the ratio moves
    from round to round on this machine (the median ratio is only as good as this spread is narrow)."""
    q1, _, q3 = statistics.quantiles([c / f for c, f in zip(config_ms, float_ms)], n=4)
    return q1, q3


def mean_ms(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench/step_time.json")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error(f"--rounds must be an integer >= 2 (the spread of per-round ratios needs two); "
                     f"got {args.rounds}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = (torch.rand(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,)))
    qat, size, mpic = (joint.SearchSpace((8,), (8,)), joint.SearchSpace((0, 2, 4, 8), (8,)),
                       joint.SearchSpace((0, 2, 4, 8), (2, 4, 8)))
    search, search_net = searched_step(batch, size, 1e-6)
    search_mpic, mpic_net = searched_step(batch, mpic, 1e-6, "mpic")
    configs = {
        "float": float_step(batch),
        "float_compiled": float_step(batch, compiled=True),
        "qat_w8a8": searched_step(batch, qat, 0.0)[0],
        "joint_search_size": search,
        "joint_search_mpic_a248": search_mpic,
        "qat_w8a8_whole": searched_step(batch, qat, 0.0, whole=True)[0],
        "joint_search_size_whole": searched_step(batch, size, 1e-6, whole=True)[0],
        "joint_search_mpic_a248_whole": searched_step(batch, mpic, 1e-6, "mpic", whole=True)[0],
    }
    for variant, options in (("", {}), ("_compiled", {"compiled": True}), ("_resampled", {"resample": True})):
        configs[f"cost_term_size{variant}"] = cost_step(search_net, "size", **options)
        configs[f"cost_term_mpic_a248{variant}"] = cost_step(mpic_net, "mpic", **options)
        configs[f"cost_term_ne16{variant}"] = cost_step(search_net, "ne16", **options)
    first_call_s = {}
    for name, step in configs.items():  # the first call compiles what the step runs compiled (kernels are shared)
        start = time.perf_counter()
        step()
        first_call_s[name] = time.perf_counter() - start
        mean_ms(step, 2)
    times = {name: [] for name in configs}
    for r in range(args.rounds):
        for name, step in configs.items():
            times[name].append(mean_ms(step, args.steps))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in times.items()), flush=True)
    medians = {name: statistics.median(v) for name, v in times.items()}
    steps = [name for name in configs if not name.startswith("cost_term")]
    ratios = {name: medians[name] / medians["float"] for name in steps}
    compiled_ratios = {name: medians[name] / medians["float_compiled"] for name in steps}
    spread = {name: round_ratio_quartiles(times[name], times["float"]) for name in steps}
    print(f"\nResNet-8, batch {args.batch}, 3x32x32, {args.threads} threads, {args.rounds} interleaved rounds "
          f"of {args.steps} steps (median of per-round means); first call: the step once, compiling what it runs "
          f"compiled that an earlier config did not")
    print(f"{'config':<30}{'median ms/step':>16}{'x float':>10}{'x compiled float':>18}{'first call s':>14}"
          f"{'x float, rounds q1-q3':>23}")
    for name in configs:
        ratio = f"{ratios[name]:.2f}" if name in ratios else "-"
        compiled_ratio = f"{compiled_ratios[name]:.2f}" if name in compiled_ratios else "-"
        quartiles = f"{spread[name][0]:.2f}-{spread[name][1]:.2f}" if name in spread else "-"
        print(f"{name:<30}{medians[name]:>16.2f}{ratio:>10}{compiled_ratio:>18}{first_call_s[name]:>14.1f}"
              f"{quartiles:>23}")
    targets = {"qat_w8a8": 1.15, "joint_search_size": 1.2, "joint_search_mpic_a248": 1.5}
    for name, target in targets.items():
        for config in (name, f"{name}_whole"):
            print(f"{config} / float = {ratios[config]:.2f} ({'meets' if ratios[config] <= target else 'MISSES'} "
                  f"the <= {target} target against the eager float step)")
    for name in [name for name in configs if name.startswith("cost_term") and not name.endswith("_resampled")]:
        resampled = medians.get(f"{name}_resampled")
        print(f"{name} {medians[name]:.3f} ms ({'meets' if medians[name] <= 1.0 else 'MISSES'} the <= 1 ms target"
              + ("" if resampled is None else f"; resampling the thetas too: {resampled:.3f} ms") + ")")
    record.write(args.out, {"medians_ms": medians, "ratios_to_float": ratios,
                            "ratios_to_compiled_float": compiled_ratios, "round_ratio_quartiles": spread,
                            "first_call_s": first_call_s, "per_round_ms": times}, args)

if __name__ == "__main__":
    main()
