"""Command line: python -m joint {info,cost} (run, sweep and reproduce arrive with the training pipeline)."""
from __future__ import annotations

import argparse
import json
import sys

import torch

from . import cost as cost_models
from . import models
from .arch import Arch
from .graph import describe, searchable
from .search import SearchSpace

UNITS = {"size": "bits", "bitops": "bit-ops", "mpic": "cycles", "ne16": "cycles"}


def info(name: str, as_json: bool) -> str:
    model, shape = models.build(name)
    layers = describe(model, torch.zeros(1, *shape))
    totals = {"parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
              "weights": sum(layer.weights for layer in layers), "macs": sum(layer.macs for layer in layers)}
    if as_json:
        rows = [{"name": l.name, "kind": l.kind, "cin": l.cin, "cout": l.cout, "kernel": list(l.kernel),
                 "stride": list(l.stride), "groups": l.groups, "out_hw": list(l.out_hw), "weights": l.weights,
                 "macs": l.macs} for l in layers]
        return json.dumps({"model": name, "input": list(shape), "layers": rows, **totals}, indent=1)
    header = f"{'layer':<18}{'kind':<8}{'cin':>6}{'cout':>6}{'kernel':>8}{'stride':>8}{'groups':>8}" \
             f"{'out HxW':>9}{'weights':>12}{'MACs':>15}"
    lines = [f"{name}: input {'x'.join(map(str, shape))}", header]
    for l in layers:
        lines.append(f"{l.name:<18}{l.kind:<8}{l.cin:>6}{l.cout:>6}{'x'.join(map(str, l.kernel)):>8}"
                     f"{'x'.join(map(str, l.stride)):>8}{l.groups:>8}{'x'.join(map(str, l.out_hw)):>9}"
                     f"{l.weights:>12,}{l.macs:>15,}")
    lines.append(f"total: {totals['parameters']:,} trainable parameters, {totals['weights']:,} conv/linear weights, "
                 f"{totals['macs']:,} MACs")
    return "\n".join(lines)


def cost(args: argparse.Namespace) -> str:
    if args.arch:
        arch, label = Arch.load(args.arch), args.arch
    elif args.model:
        model, shape = models.build(args.model)
        space = SearchSpace((args.wbits,), (args.abits,))
        arch, label = searchable(model, space, torch.zeros(1, *shape)).arch(), f"{args.model} w{args.wbits}a{args.abits}"
    else:
        raise ValueError("give a MODEL (with --wbits/--abits) or --arch FILE.json")
    names = [args.cost] if args.cost else sorted(cost_models.MODELS)
    lines = []
    for name in names:
        value = arch.cost(name)
        extra = f" ({value / 8000:,.3f} kB)" if name == "size" else ""
        lines.append(f"{label} {name}: {value:,.2f} {UNITS.get(name, '')}{extra}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m joint", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="per-layer table of a reference model")
    p_info.add_argument("model", choices=sorted(models.MODELS))
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    p_cost = sub.add_parser("cost", help="cost of a uniform-precision model or of an Arch JSON file")
    p_cost.add_argument("model", nargs="?", choices=sorted(models.MODELS))
    p_cost.add_argument("--wbits", type=int, default=8, help="weight bits of every channel (default 8)")
    p_cost.add_argument("--abits", type=int, default=8, help="activation bits (default 8)")
    p_cost.add_argument("--arch", help="an Arch saved as JSON (instead of MODEL)")
    p_cost.add_argument("--cost", help=f"cost model (default: all); registered: {', '.join(sorted(cost_models.MODELS))}")
    args = parser.parse_args(argv)
    try:
        print(info(args.model, args.json) if args.command == "info" else cost(args))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
