"""Where a benchmark's numbers go: one JSON file with the machine and versions they were measured with."""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

import joint


def processor() -> str:
    """The CPU's model name (platform.processor() is empty on Linux): the same code runs at other speeds, and with
    other last bits, on another kind of CPU."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def write(path: str, results: dict, args: argparse.Namespace) -> None:
    """Write `results` and the run's settings to `path` atomically and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = {**vars(args), "torch": torch.__version__, "joint": joint.__version__, "machine": platform.machine(),
             "processor": processor()}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({**results, "setup": setup}, indent=1))
    tmp.replace(out)
    print(f"wrote {out}")
