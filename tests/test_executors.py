import os
from contextlib import contextmanager

import pytest
import torch
from distributed import Client, LocalCluster

from joint import executors, profiles
from joint.config import RunConfig
from joint.experiments import without_timing
from joint.store import Store

SMOKE = [RunConfig("digits", "w8a8", profile="smoke"), RunConfig("digits", "joint", 0.5, profile="smoke"),
         RunConfig("digits", "pit", 1.0, profile="smoke"),
         RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=1.0)]  # seeded by the PIT run


def store(tmp_path, name):
    return Store(results=tmp_path / name / "results", cache=tmp_path / name / "cache", progress=False)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> list[dict]:
    """SMOKE's records trained serially at one thread, as each local process and Dask worker trains: trained once
    for every test that compares an executor with them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [without_timing(r) for r in executors.run_sweep(SMOKE, store(tmp_path_factory.mktemp("serial"), "s"))]
    finally:
        torch.set_num_threads(threads)


@contextmanager
def environment_kept():
    """Dask's nanny writes its workers' settings (OMP_NUM_THREADS=1 among them) into this process's environment and
    leaves them there: put it back, so the processes later tests start train with the threads they would have."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def scheduler():
    """A one-process, one-thread local cluster on loopback, its workers single-threaded for torch."""
    with environment_kept(), LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                          dashboard_address=None, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
                                          ) as cluster:
        yield cluster.scheduler_address


def test_dask_sweep_gives_the_serial_records_and_a_rerun_trains_nothing(tmp_path, scheduler, serial):
    remote = store(tmp_path, "dask")
    dask = executors.run_sweep(SMOKE, remote, "dask", scheduler)
    assert [without_timing(r) for r in dask] == serial
    assert dask[3]["seed"]["key"] == dask[2]["key"]
    stamps = {p: p.stat().st_mtime_ns for p in remote.results.rglob("*.json")}
    assert len(stamps) == len(SMOKE)
    assert executors.run_sweep(SMOKE, remote, "dask", scheduler) == dask
    assert {p: p.stat().st_mtime_ns for p in remote.results.rglob("*.json")} == stamps


def test_local_processes_give_the_single_threaded_serial_records(tmp_path, serial):
    local = executors.run_sweep(SMOKE, store(tmp_path, "local"), "local", workers=2)
    assert [without_timing(r) for r in local] == serial


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_a_failed_run_stops_nothing_else_and_every_failure_is_one_line(tmp_path, executor):
    configs = [RunConfig("digits", "pit", 1000.0, profile="smoke"),  # prunes everything: a one-line ValueError
               RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=1000.0),
               RunConfig("digits", "w8a8", profile="smoke")]
    s = store(tmp_path, executor)
    with pytest.raises(ValueError) as failure:
        executors.run_sweep(configs, s, executor, workers=2)
    first, *lines = str(failure.value).splitlines()
    assert first == "2 of 3 runs failed (the other records are written):" and len(lines) == 2
    assert "pit lam=1000 (size) on digits: " in lines[0] and "pruned every prunable channel group" in lines[0]
    assert lines[1].startswith("  sequential lam=0.5 (size, pit_lam=1000) on digits: ")
    assert s.read_record(configs[2]) is not None and s.read_record(configs[0]) is None


def test_the_quick_profile_trains_in_local_processes_on_a_cpu_and_every_profile_serially_on_a_gpu():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert {p: executors.default_executor(p, cpu) for p in profiles.PROFILES} == \
        {"smoke": "serial", "quick": "local", "cpu": "serial", "cpu_long": "serial", "paper": "serial"}
    assert {executors.default_executor(p, gpu) for p in profiles.PROFILES} == {"serial"}


@pytest.mark.parametrize("cores,gib,workers,expected", [(2, 24, None, 2), (64, 16, None, 10), (64, 1, None, 1),
                                                          (64, 16, 3, 3)])
def test_local_processes_are_one_per_usable_core_as_far_as_memory_holds(monkeypatch, cores, gib, workers, expected):
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": gib * 2**30 // 4096}
    monkeypatch.setattr(executors.os, "sysconf", pages.__getitem__)
    assert executors.local_processes(workers) == expected


def test_a_failed_task_raises_naming_its_run_and_keeps_the_records_written(tmp_path, scheduler):
    orphan = RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=0.3)  # its PIT seed is not recorded
    s = store(tmp_path, "dask")
    executors.run_sweep(SMOKE[:1], s, "dask", scheduler)
    stamp = s.record_path(SMOKE[0]).stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"1 of 1 runs failed \(the other records are written\):\n  sequential "
                                         r"lam=0.5 \(size, pit_lam=0.3\) on digits: on a Dask worker: the sequential "
                                         r"run needs its PIT seed"):
        executors.run_sweep([SMOKE[0], orphan], s, "dask", scheduler)
    assert s.record_path(SMOKE[0]).stat().st_mtime_ns == stamp and not s.record_path(orphan).exists()


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the module cluster has the default HTTP port
def test_tasks_claim_a_gpu_only_on_clusters_whose_workers_declare_one():
    for resources, expected in (({"GPU": 1}, {"GPU": 1}), (None, {})):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                          dashboard_address=None, resources=resources) as cluster, Client(cluster) as client:
            assert executors._gpu_resources(client) == expected


@pytest.mark.parametrize("executor,scheduler,message", [
    ("dask", None, "the dask executor needs a scheduler address such as tcp://host:8786; start a cluster with "
                   "`dask scheduler` and `dask worker tcp://host:8786`"),
    ("x", None, "unknown executor 'x'; allowed: serial, local, dask"),
    ("local", 0, "workers must be a positive number of processes; got 0"),
])
def test_bad_executor_settings_are_one_line(tmp_path, executor, scheduler, message):
    with pytest.raises(ValueError, match=message):
        if executor == "local":
            executors.run_sweep(SMOKE, store(tmp_path, "a"), executor, workers=scheduler)
        else:
            executors.run_sweep(SMOKE, store(tmp_path, "a"), executor, scheduler)


def test_a_daemonic_worker_asked_for_loader_processes_says_how_to_start_workers(monkeypatch):
    monkeypatch.setattr(executors.multiprocessing.current_process(), "daemon", True, raising=False)
    with pytest.raises(ValueError, match="start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False"):
        executors._check_loader_processes("tiny_imagenet", "paper")
    executors._check_loader_processes("digits", "smoke")  # no loader processes: nothing to say
