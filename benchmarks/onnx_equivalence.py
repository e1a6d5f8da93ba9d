"""ONNX export against the searchable model, in onnxruntime: ResNet-8, DS-CNN, torchvision's resnet18 and mobilenet_v2
with random mixed architectures (pruned channels, 2/4/8-bit weights; 2/4/8-bit activations for ResNet-8), node by node
and end to end, and the bytes of the integer weights against the architecture's size."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torchvision

import joint
from joint.export import compare_onnx, onnx_sizes
from joint.search import random_architecture


def random_clips(net: joint.SearchableNet, gen: torch.Generator) -> None:
    """Activation clips drawn from [1, 4), so the exported quantizers are not all alike."""
    with torch.no_grad():
        for key in net.act_signed:
            net.act(key).clip.uniform_(1.0, 4.0, generator=gen)


CASES = {
    "resnet8, act 2/4/8": (lambda: joint.models.resnet8(), (3, 32, 32), (2, 4, 8)),
    "resnet8, act 8": (lambda: joint.models.resnet8(), (3, 32, 32), (8,)),
    "dscnn, act 8": (lambda: joint.models.dscnn(), (1, 49, 10), (8,)),
    "resnet18 (torchvision), act 8": (lambda: torchvision.models.resnet18(num_classes=10), (3, 64, 64), (8,)),
    "mobilenet_v2 (torchvision), act 8": (lambda: torchvision.models.mobilenet_v2(num_classes=10), (3, 64, 64), (8,)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16, help="random inputs per model")
    parser.add_argument("--seeds", type=int, default=2, help="random architectures per model")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"{'model':<36}{'seed':>5}{'end to end':>12}{'top-1 same':>11}{'quantizers':>11}{'layers':>10}"
          f"{'weights B':>11}{'arch B':>10}{'scales B':>10}{'biases B':>10}{'file B':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (build, shape, act_bits) in CASES.items():
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                x = torch.rand(args.batch, *shape)
                net = joint.searchable(build().eval(), joint.SearchSpace((0, 2, 4, 8), act_bits), x)
                gen = torch.Generator().manual_seed(seed)  # the architecture's draws, then the clips'
                random_clips(random_architecture(net, gen), gen)
                net.freeze()
                path = Path(tmp) / "m.onnx"
                sizes = onnx_sizes(joint.export_onnx(net.eval(), path))
                check = compare_onnx(net, x)
                print(f"{name:<36}{seed:>5}{check['end_to_end']:>12.1e}{check['top1_agreement']:>11.0%}"
                      f"{check['quantizers']:>11.1e}{check['layers']:>10.1e}{sizes['weights']:>11,}"
                      f"{net.arch().cost('size') / 8:>10,.0f}{sizes['weight_scales']:>10,}{sizes['biases']:>10,}"
                      f"{path.stat().st_size:>10,}", flush=True)


if __name__ == "__main__":
    main()
