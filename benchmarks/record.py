"""Where a benchmark's numbers go: one JSON file with the machine and versions they were measured with."""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

import joint


def write(path: str, results: dict, args: argparse.Namespace) -> None:
    """Write `results` and the run's settings to `path` atomically and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = {**vars(args), "torch": torch.__version__, "joint": joint.__version__, "machine": platform.machine(),
             "processor": platform.processor()}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({**results, "setup": setup}, indent=1))
    tmp.replace(out)
    print(f"wrote {out}")
