import json
import re
import subprocess
import sys
import time

import nbformat
import pytest
import torch

import joint
import joint.__main__
from joint import experiments
from joint.__main__ import main
from joint.search import random_architecture
from joint.config import RunConfig
from joint.store import ROOT, Store, shown, write_json


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_table_and_totals(capsys):
    code, out, _ = run(capsys, "info", "resnet8")
    assert code == 0
    assert "s2.down           conv        16    32     1x1     2x2" in out
    assert out.strip().endswith("total: 78,058 trainable parameters, 77,360 conv/linear weights, 12,501,632 MACs")


@pytest.mark.parametrize("name,params,weights,macs", [("dscnn", 23_756, 22_016, 2_656_768),
                                                       ("resnet18_tiny", 11_271_432, 11_261_632, 2_221_772_800)])
def test_info_json(capsys, name, params, weights, macs):  # docs/protocol.md: 2.66 M and 2.22 G MACs
    code, out, _ = run(capsys, "info", name, "--json")
    data = json.loads(out)
    assert (code, data["parameters"], data["weights"], data["macs"]) == (0, params, weights, macs)
    assert sum(row["weights"] for row in data["layers"]) == weights


def test_cost_of_a_uniform_model(capsys):
    code, out, _ = run(capsys, "cost", "resnet8", "--wbits", "2", "--abits", "8", "--cost", "size")
    assert (code, out.strip()) == (0, "resnet8 w2a8 size: 154,720.00 bits (19.340 kB)")


def test_cost_of_an_arch_file(capsys, tmp_path):
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace(), torch.rand(1, 3, 32, 32))
    random_architecture(net, seed=7)
    arch = net.arch()
    arch.save(tmp_path / "a.json")
    code, out, _ = run(capsys, "cost", "--arch", str(tmp_path / "a.json"), "--cost", "mpic")
    assert code == 0 and f"mpic: {arch.cost('mpic'):,.2f} cycles" in out


@pytest.mark.parametrize("argv,message", [
    (["cost", "resnet8", "--cost", "latency"],
     "error: unknown cost model 'latency'; allowed: bitops, mpic, ne16, size"),
    (["cost", "resnet8", "--wbits", "-1"], "error: weight_bits must contain distinct integers in 0..16; got -1"),
    (["cost", "resnet8", "--abits", "0"], "error: act_bits must not contain 0"),
    (["cost", "--arch", "missing.json"], "error: [Errno 2] No such file or directory: 'missing.json'"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "joint", "cost", "dscnn", "--cost", "size"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "dscnn w8a8 size: 176,128.00 bits (22.016 kB)"


def dirs(tmp_path):
    return ["--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"), "--quiet"]


def test_run_records_one_run(capsys, tmp_path):
    code, out, _ = run(capsys, "run", "--profile", "smoke", "--method", "w4a8", *dirs(tmp_path))
    assert code == 0 and out.startswith("w4a8 lam=0 (size) on digits (smoke): test accuracy")
    assert len(list((tmp_path / "results" / "smoke" / "runs").glob("*.json"))) == 1


def test_estimate_of_one_analysis_sets_the_recorded_runs_beside_their_estimate(capsys, tmp_path):
    w8a8 = Store(results=tmp_path / "results").record_path(RunConfig("digits", "w8a8", profile="smoke"))
    write_json(w8a8, {"key": w8a8.stem, "metrics": {}, "config": {"seed": 0}, "phases": {
        "warmup": {"epochs": 3, "seconds": 5.0, "shared": True}, "finetune": {"epochs": 2, "seconds": 2.0}}})
    code, out, _ = run(capsys, "estimate", "--profile", "smoke", "--analysis", "cost", *dirs(tmp_path))
    assert code == 0 and out.startswith("digits (smoke): 10 of 11 runs pending")  # the fixed ones and 4 costs x 2
    assert "; the 1 recorded runs took 7 s of training one after another, against " in out


def test_run_searches_with_a_cost_model_and_activation_precisions(capsys, tmp_path):
    code, out, _ = run(capsys, "run", "--profile", "smoke", "--method", "joint", "--lam", "1", "--cost", "mpic",
                       "--act-bits", "4,8", *dirs(tmp_path))
    assert code == 0 and out.startswith("joint lam=1 (mpic) on digits (smoke)") and "MPIC /" in out
    record = json.loads(next((tmp_path / "results" / "smoke" / "runs").glob("*.json")).read_text())
    assert record["config"]["act_bits"] == [4, 8] and record["space"]["act_bits"] == [4, 8]
    assert set(record["arch"]["activations"].values()) <= {4, 8}


@pytest.mark.parametrize("argv,message", [
    (["sweep", "--profile", "huge"], "error: unknown profile 'huge'; allowed: smoke, quick, cpu, cpu_long, paper"),
    (["sweep", "--profile", "smoke", "--benchmark", "cifar10"],
     "error: benchmark 'cifar10' is not part of profile 'smoke'; allowed: digits"),
    (["run", "--method", "prune", "--profile", "smoke"], "error: unknown method 'prune'"),
    (["run", "--method", "joint", "--lam", "-1", "--profile", "smoke"], "error: lam must be a finite number >= 0"),
    (["reproduce", "--profile", "huge"], "error: unknown profile 'huge'; allowed: smoke, quick, cpu, cpu_long, paper"),
    (["run", "--method", "joint", "--cost", "ne16", "--act-bits", "4,8", "--profile", "smoke"],
     "error: act_bits (4, 8) are not all supported by cost model 'ne16'; allowed: a subset of (8,)"),
    (["run", "--method", "joint", "--act-bits", "3,5", "--profile", "smoke"],
     "error: act_bits (3, 5) are not all supported by cost model 'mpic', which every record measures; allowed: a "
     "subset of (2, 4, 8)"),
    (["run", "--method", "joint", "--variant", "hard+fast", "--profile", "smoke"],
     "error: variant 'hard+fast': unknown part 'fast'; allowed: compensate, hard, gumbel, slow_anneal, ramp, "
     "no_momentum, joined by '+'"),
    (["run", "--method", "joint", "--act-bits", "8,x", "--profile", "smoke"],
     "error: act_bits must be comma-separated integers such as 2,4,8; got '8,x'"),
    (["scan", "--lams", "0.5,x", "--profile", "smoke"], "error: lams must be comma-separated numbers such as 0.5,2"),
    (["scan", "--lams", "0", "--method", "w8a8", "--profile", "smoke"],
     "error: scan takes a search with a lambda (joint, mixprec, edmips, pit); got method 'w8a8'"),
])
def test_bad_experiment_input_is_one_line(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *argv, *dirs(tmp_path))
    assert code == 2 and err.startswith(message) and err.count("\n") == 1


def test_reproduce_executes_every_notebook_two_at_a_time_and_says_where_the_outputs_are(capsys, tmp_path,
                                                                                        monkeypatch):
    argv = ["reproduce", "--profile", "smoke", "--results", str(tmp_path / "results"),
            "--figures", str(tmp_path / "figures"), "--cache", str(tmp_path / "cache"), "--executor", "local",
            "--workers", "2"]
    times, execute = {}, joint.__main__._execute_notebook

    def timed(source, *rest):
        started = time.perf_counter()
        execute(source, *rest)
        times[source.stem] = (started, time.perf_counter())

    monkeypatch.setattr(joint.__main__, "_execute_notebook", timed)
    code, out, _ = run(capsys, *argv)
    assert code == 0, out
    notebook = tmp_path / "results" / "smoke" / "notebooks" / "01_size_pareto-digits.ipynb"
    assert sorted(times) == list(experiments.NOTEBOOKS) and not list(notebook.parent.glob("*.partial.ipynb"))
    (tour_start, tour_end), (first_start, first_end) = times["00_tour"], times["01_size_pareto"]
    assert first_start < tour_end and tour_start < first_end  # started together in two kernels
    written = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*.*") if p.suffix in (".ipynb", ".csv", ".md")}
    written.update({p: p.read_bytes() for p in (tmp_path / "figures").rglob("*.*")})  # PNG and PDF
    assert any(p.suffix == ".pdf" for p in written)
    assert run(capsys, *argv)[0] == 0  # again, on the records it wrote: the same files, byte for byte
    assert {p: p.read_bytes() for p in written} == written
    assert notebook.exists() and (tmp_path / "figures" / "smoke" / "digits_size_pareto.pdf").exists()
    for path in (tmp_path / "results" / "smoke" / "digits" / "size_table.md",
                 tmp_path / "figures" / "smoke" / "digits_size_pareto.png",
                 tmp_path / "results" / "smoke" / "digits" / "cycles_at_iso_accuracy.md",
                 tmp_path / "figures" / "smoke" / "digits_cost_models.png"):
        assert shown(path) in out and shown(path).startswith("../")  # relative to the root
    for executed in notebook.parent.glob("*.ipynb"):  # no absolute path of this machine in any output
        text = executed.read_text()
        assert str(ROOT) not in text, executed.name
        absolute = re.compile(r"(?<!\.\.)" + re.escape(str(tmp_path)))  # only inside ../../tmp/..., if at all
        assert shown(tmp_path) in text and not absolute.search(text), executed.name


def test_scan_prints_a_row_per_lambda_as_each_search_ends(capsys, tmp_path):
    code, out, _ = run(capsys, "scan", "--profile", "smoke", "--lams", "0.5,5", *dirs(tmp_path))
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == "scan of joint (size) on digits (smoke), search phase only:"
    assert lines[1].split() == ["lambda", "size", "kB", "cost", "ratio", "pruned", "%", "val", "acc", "%", "epochs",
                                "s"]
    assert [line.split()[0] for line in lines[2:4]] == ["0.5", "5"]
    assert lines[-1].startswith("2 searches; python -m joint run with the same settings resumes each")
    assert not list(tmp_path.rglob("*.json"))  # a scan records nothing


def test_arch_table_and_export_of_a_recorded_run(capsys, tmp_path):
    run(capsys, "run", "--profile", "smoke", "--method", "joint", "--lam", "5", *dirs(tmp_path))
    code, out, _ = run(capsys, "arch", "--profile", "smoke", "--lam", "5", *dirs(tmp_path))
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("joint lam=5 (size) on digits: test accuracy")
    assert lines[1].split()[:6] == ["layer", "kind", "in", "kept", "bits:channels", "act"]
    stem = next(line for line in lines if line.startswith("stem"))
    assert "/16" in stem and "8:" in stem and len(lines) == 2 + 10  # ResNet-8: ten conv/linear layers
    target = tmp_path / "joint.onnx"
    code, out, _ = run(capsys, "export", "--profile", "smoke", "--lam", "5", "--out", str(target), *dirs(tmp_path))
    assert code == 0 and target.exists() and "integer weights" in out and "opset 25" in out
    record = json.loads(next((tmp_path / "results" / "smoke" / "runs").glob("*.json")).read_text())
    code, out, _ = run(capsys, "arch", "--profile", "smoke", "--key", record["key"], *dirs(tmp_path))
    assert code == 0 and lines[0] in out


@pytest.mark.parametrize("argv,message", [
    (["arch", "--lam", "7"], r"error: no recorded run of joint lam=7 \(size\) on digits in .*smoke/runs; recorded "
                             r"lambdas of this method and cost model: 5"),
    (["export", "--key", "0123abcd"], r"error: no record with key '0123abcd' in "),
    (["export", "--method", "float"], r"error: run \w+ \(float\) is a float model; export takes a quantized run"),
    (["export", "--lam", "5", "--opset", "13"], r"error: opset 13 cannot hold this model's precisions; allowed: 25"),
])
def test_naming_a_run_that_is_not_there_or_cannot_be_exported_is_one_line(capsys, tmp_path, argv, message):
    run(capsys, "run", "--profile", "smoke", "--method", "joint", "--lam", "5", *dirs(tmp_path))
    run(capsys, "run", "--profile", "smoke", "--method", "float", *dirs(tmp_path))
    code, out, err = run(capsys, *argv, "--profile", "smoke", "--out", str(tmp_path / "x.onnx"), *dirs(tmp_path)) \
        if argv[0] == "export" else run(capsys, *argv, "--profile", "smoke", *dirs(tmp_path))
    assert code == 2 and re.match(message, err) and err.count("\n") == 1


def test_a_file_in_the_runs_folder_that_is_not_a_record_is_one_line(capsys, tmp_path):
    runs = tmp_path / "results" / "smoke" / "runs"
    runs.mkdir(parents=True)
    (runs / "0123abcd.json").write_text("{}")
    code, _, err = run(capsys, "arch", "--profile", "smoke", "--key", "0123abcd", *dirs(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert re.match(r"error: .*0123abcd.json is not a run record \(no key, config, phases, metrics\); restore it", err)
    assert (runs / "0123abcd.json").read_text() == "{}"


def test_reproduce_rejects_an_unknown_executor_before_estimating_anything(capsys, tmp_path):
    code, out, err = run(capsys, "reproduce", "--profile", "smoke", "--executor", "bogus", *dirs(tmp_path))
    assert (code, out, err) == (2, "", "error: unknown executor 'bogus'; allowed: serial, local, dask\n")


def test_a_notebook_that_fails_under_papermill_is_one_line_naming_it(tmp_path):
    from joint.__main__ import _execute_notebook, build_parser

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('benchmark = "digits"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('raise ValueError(f"parameter benchmark={benchmark!r} is wrong\\nsecond line")')])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "broken.ipynb"
    nbformat.write(notebook, source)
    args = build_parser().parse_args(["reproduce", "--profile", "smoke", *dirs(tmp_path)])
    with pytest.raises(ValueError) as failure:
        _execute_notebook(source, tmp_path / "out.ipynb", "cifar10", args)
    message = str(failure.value)
    assert message.startswith("notebook broken.ipynb failed for cifar10 at In [3]: ValueError: parameter "
                              "benchmark='cifar10' is wrong (the executed part: ")
    assert "\n" not in message and not (tmp_path / "out.ipynb").exists()


def test_verify_trains_a_recorded_run_again_in_a_scratch_folder_and_compares_every_metric(capsys, tmp_path):
    run(capsys, "run", "--profile", "smoke", "--method", "w4a8", *dirs(tmp_path))
    (key,) = [p.stem for p in (tmp_path / "results" / "smoke" / "runs").glob("*.json")
              if json.loads(p.read_text())["config"]["method"] == "w4a8"]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, _ = run(capsys, "verify", key, "--profile", "smoke", *dirs(tmp_path))
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == f"verify {key}: w4a8 lam=0 (size) on digits, training it again from its config " \
                                     f"in a scratch folder"
    assert any(line.startswith("test_accuracy ") for line in lines) and lines[-1].startswith("all 10 metrics equal")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written beside the records
    code, out, _ = run(capsys, "verify", key, "--reload", "--profile", "smoke", *dirs(tmp_path))
    assert code == 0 and out.strip().splitlines()[-1].startswith("all 2 metrics equal")
    code, _, err = run(capsys, "verify", "0123abcd", "--profile", "smoke", *dirs(tmp_path))
    assert code == 2 and err.startswith("error: no record with key '0123abcd' in ")
