import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def warmup_variants(tmp_path, *variants):
    command = [sys.executable, "benchmarks/warmup_variants.py", "--profile", "smoke", "--benchmark", "digits",
               "--out", str(tmp_path / "variants.json"), "--cache", str(tmp_path / "cache")]
    for variant in variants:
        command += ["--variant", variant]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_warmup_variants_records_each_schedule_once_and_rejects_an_unknown_field_before_training(tmp_path):
    bad = warmup_variants(tmp_path, "epochs=2", "bogus=1")
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith(
        "error: variant 'bogus=1': unknown field 'bogus'; allowed: epochs, lr,")
    assert not (tmp_path / "variants.json").exists()  # nothing trained
    first = warmup_variants(tmp_path, "epochs=2", "optimizer=sgd,momentum=0.9,lr=0.05,epochs=2")
    assert first.returncode == 0, first.stderr
    variants = json.loads((tmp_path / "variants.json").read_text())["variants"]
    assert [v["variant"] for v in variants.values()] == ["epochs=2", "optimizer=sgd,momentum=0.9,lr=0.05,epochs=2"]
    assert all(v["epochs"] == 2 and len(v["curve"]) == 2 and 0 < v["test_accuracy"] <= 1 for v in variants.values())
    again = warmup_variants(tmp_path, "epochs=2")
    assert again.returncode == 0 and "epochs=2: recorded, skipped" in again.stdout
    assert json.loads((tmp_path / "variants.json").read_text())["variants"] == variants
    assert not list((tmp_path / "cache").rglob("*.pt"))  # a finished variant leaves no checkpoint behind
