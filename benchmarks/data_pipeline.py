"""One CIFAR-10-shaped training epoch three ways, side by side: the data pipeline alone (the real loader's batches
with its augmentation), the float ResNet-8 steps alone (on batches made beforehand), and both together, so the share
of an epoch spent outside the model is a number. The images are random, written as a JPEG image folder (the layout
the CIFAR-10 loader reads) and read back through the loader."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.io import encode_jpeg

import joint
import record
from joint.data import cifar10
from joint.train import batches


def write_image_folder(root: Path, per_class: tuple[int, int]) -> Path:
    """A CIFAR-10 image-folder copy of random 32x32 JPEGs: per_class = (train, test) images in each class."""
    folder = root / cifar10.IMAGE_FOLDER
    generator = torch.Generator().manual_seed(0)
    for split, count in zip(("train", "test"), per_class):
        for name in cifar10.CLASSES:
            (folder / split / name).mkdir(parents=True)
            images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
            for i, data in enumerate(encode_jpeg(list(images), quality=90)):
                (folder / split / name / f"{i:05d}.jpg").write_bytes(data.numpy().tobytes())
    return folder


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="the cpu profile's batch size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench/data_pipeline.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        written = seconds(lambda: write_image_folder(Path(tmp), (5000, 1000)))
        start = time.perf_counter()
        bench = cifar10.load(tmp, download=False)
        load = time.perf_counter() - start
    train = bench.train
    model = joint.models.resnet8().train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step(x, y):
        loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    fixed = [next(iter(batches(train, args.batch, torch.device("cpu"))))] * -(-len(train) // args.batch)
    configs = {
        "pipeline_alone": lambda: [None for _ in batches(train, args.batch, torch.device("cpu"), shuffle=True)],
        "compute_alone": lambda: [step(x, y) for x, y in fixed],
        "pipeline_and_compute": lambda: [step(x, y) for x, y in batches(train, args.batch, torch.device("cpu"),
                                                                        shuffle=True)],
    }
    times = {name: [] for name in configs}
    for r in range(args.rounds):
        for name, epoch in configs.items():
            times[name].append(seconds(epoch))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    medians = {name: statistics.median(v) for name, v in times.items()}
    share = medians["pipeline_alone"] / medians["pipeline_and_compute"]
    print(f"\nCIFAR-10-shaped epoch: {len(train)} training images (3x32x32), batch {args.batch}, {args.threads} "
          f"threads, median of {args.rounds} interleaved rounds; reading the {len(train) + len(bench.val)} + "
          f"{len(bench.test)} JPEGs took {load:.1f} s (once per process)")
    print(f"{'epoch of':<24}{'median s':>12}")
    for name in configs:
        print(f"{name:<24}{medians[name]:>12.2f}")
    print(f"data pipeline = {100 * share:.1f} % of an epoch with both; both / compute alone = "
          f"{medians['pipeline_and_compute'] / medians['compute_alone']:.3f}")
    record.write(args.out, {"medians_s": medians, "per_round_s": times, "load_s": load, "write_s": written,
                            "pipeline_share": share, "train_images": len(train)}, args)

if __name__ == "__main__":
    main()
