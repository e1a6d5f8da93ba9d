"""Float warm-up schedules side by side on a profile's benchmark: each variant is the profile's warm-up phase with
some fields changed (optimizer, learning rate, weight decay, epochs, ...), trained from the same seed and data; the
evidence a profile's warm-up is chosen from. Each finished variant is written at once; a rerun skips those done and
resumes one killed mid-way from its checkpoint.

    python benchmarks/warmup_variants.py --profile cpu --benchmark cifar10 --data ../shared/data \\
        --variant "optimizer=sgd,momentum=0.9,lr=0.05,weight_decay=5e-4,epochs=30" --variant "epochs=30"
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

import torch

import record
from joint import profiles, quant
from joint.store import Store, project_path
from joint.train import PhaseConfig, evaluate, train_phase


def parse_variant(text: str, base: PhaseConfig) -> PhaseConfig:
    """The phase `base` with the fields of "name=value,name=value" changed (values typed as the field's default)."""
    names = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(base)}
    changes = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in names or names[name] not in (int, float, str, bool):
            settable = ", ".join(n for n, kind in names.items() if kind in (int, float, str, bool))
            raise SystemExit(f"error: variant {text!r}: unknown field {name!r}; allowed: {settable}")
        changes[name] = value == "True" if names[name] is bool else names[name](value)
    return dataclasses.replace(base, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--benchmark", default="cifar10")
    parser.add_argument("--data", default="data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", required=True,
                        help="fields of the profile's warm-up phase to change, e.g. 'lr=0.05,epochs=30'")
    parser.add_argument("--out", default="results/bench/warmup_variants.json")
    parser.add_argument("--cache", default=".cache", help="where a variant's resumable checkpoint lives meanwhile")
    args = parser.parse_args()
    prof = profiles.get_profile(args.profile, args.benchmark)
    phases = [parse_variant(text, prof.warmup) for text in args.variant]
    store = Store(results=project_path("results"), cache=project_path(args.cache), data_root=project_path(args.data))
    bench = store.benchmark(args.benchmark)
    out = Path(args.out)
    done = json.loads(out.read_text())["variants"] if out.exists() else {}
    for text, phase in zip(args.variant, phases):
        if repr(phase) in done:
            print(f"{text}: recorded, skipped")
            continue
        torch.manual_seed(args.seed)
        model = bench.model()
        digest = hashlib.sha256(repr(phase).encode()).hexdigest()[:12]
        tag = store.environment_tag(args.profile, args.benchmark)
        checkpoint = store.cache / "warmup_variants" / f"{args.profile}-{args.benchmark}-s{args.seed}-{digest}-{tag}.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        with quant.profile_compile(prof.compile):  # as the profile's warm-up trains
            result = train_phase(model, phase, bench.train, bench.val, batch_size=prof.batch_size, seed=args.seed,
                                 class_weights=bench.class_weights, checkpoint=checkpoint, desc=text,
                                 progress=store.progress, device=store.torch_device(), workers=prof.workers,
                                 channels_last=prof.channels_last)
        test, _ = evaluate(model, bench.test, device=store.torch_device())
        curve = [e["val_accuracy"] for e in result.curve]
        done[repr(phase)] = {"variant": text, "epochs": result.epochs, "seconds": result.seconds,
                             "best_epoch": result.best_epoch, "best_val_accuracy": result.val_accuracy,
                             "test_accuracy": test, "last_two_epochs_change": curve[-1] - curve[-2] if len(curve) > 1
                             else None, "curve": curve}
        record.write(str(out), {"variants": done}, args)
        checkpoint.unlink(missing_ok=True)
        print(f"{text}: test {100 * test:.2f} %, best validation {100 * result.val_accuracy:.2f} % at epoch "
              f"{result.best_epoch} of {result.epochs}, {result.seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
