"""Sweep executors: "serial" trains the pending runs in this process, "local" in single-threaded worker processes on
this machine (one per core, for steps too small to use several threads: the quick profile's default on a CPU, 1.8x
faster than serial at two threads on a 2-core machine; plain spawned processes, since torch steps ran about 4x slower
inside a Dask worker process), "dask" sends each to a Dask cluster as a task.

With "dask", this process (the driver) is the only writer of run records: workers train and return them. Workers
must see the store's results, cache and data folders at the same absolute paths as the driver (a shared
filesystem, as a cluster home directory under SLURM): checkpoints, the shared float warm-up and the recorded PIT
models that sequential runs start from are exchanged there. Start a cluster with `dask scheduler` and, once per machine
or GPU, `DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker tcp://host:8786 --nthreads 1` (non-daemonic, so DataLoader
processes can start; on GPU machines one worker per GPU, with CUDA_VISIBLE_DEVICES=<i> and `--resources "GPU=1"`:
each task then claims one GPU). Dask starts workers with OMP_NUM_THREADS=1 unless it is set: give torch a CPU
worker's cores with `OMP_NUM_THREADS=8 dask worker ...`.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace

import torch
from distributed import Client, Future
from distributed import wait as wait_on_cluster
from tqdm.auto import tqdm

from . import experiments, profiles
from .config import RunConfig
from .store import Store

EXECUTORS = ("serial", "local", "dask")


def default_executor(profile: str, device: torch.device) -> str:
    """The profile's executor on a CPU; serial on a GPU, which local processes would share."""
    return profiles.get_profile(profile).executor if device.type == "cpu" else "serial"


WORKER_MEMORY = 1.5 * 2**30  # bytes per local worker: a process training one quick-profile run peaked at 0.99 GB


def local_processes(workers: int | None = None) -> int:
    """How many processes the local executor starts: `workers`, else one per core this process may run on, no more
    than the machine's memory holds."""
    if workers:
        return workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(cores, int(memory // WORKER_MEMORY)))


def side_by_side(executor: str, workers: int | None = None) -> int:
    """How many processes `executor` runs side by side on this machine: the local executor's, else one."""
    return local_processes(workers) if executor == "local" else 1


def check_settings(executor: str, workers: int | None = None) -> None:
    """A one-line error for an unknown executor or a bad number of local processes (before anything runs)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive number of processes; got {workers!r}")


def run_sweep(configs: list[RunConfig], store: Store, executor: str = "serial", scheduler: str | None = None,
              workers: int | None = None) -> list[dict]:
    """Records of every config, in order; only the runs not recorded yet are trained: here, in `workers` local
    single-threaded processes (default: one per core), or on a Dask cluster."""
    check_settings(executor, workers)
    if executor == "serial":
        return experiments.sweep(configs, store)
    if executor == "dask" and scheduler is None:
        raise ValueError("the dask executor needs a scheduler address such as tcp://host:8786; start a cluster with "
                         "`dask scheduler` and `dask worker tcp://host:8786` on each worker machine")
    pending = [c for c in dict.fromkeys(configs) if not store.record_path(c).exists()]
    if pending and executor == "local":
        _run_locally(pending, store, min(local_processes(workers), len(pending)))
    elif pending:
        with Client(scheduler) as client:
            _run_on_cluster(client, pending, store)
    return [store.read_record(c) for c in configs]


def _run_on_cluster(client: Client, pending: list[RunConfig], store: Store) -> None:
    """Send the warm-ups, then every run, each task after its warm-up's."""
    remote, resources = _remote_store(store), _gpu_resources(client)
    warmups = {key: client.submit(_warm_up, *key, remote, resources=resources)
               for key in dict.fromkeys((c.benchmark, c.profile, c.seed) for c in pending)}
    _dispatch(pending, store, lambda config: client.submit(
        _compute, config, remote, warmups[config.benchmark, config.profile, config.seed], resources=resources),
        wait_on_cluster)


def _dispatch(pending: list[RunConfig], store: Store, submit: Callable[[RunConfig], object],
              wait_for: Callable[..., tuple[set, set]]) -> None:
    """Submit every run (a sequential one once its PIT seed is recorded) and write each record as it arrives; `submit`
    returns a future that `wait_for` (concurrent.futures.wait or distributed.wait) waits on."""
    owner, waiting, failed = {}, {}, {}  # future -> its run; PIT run -> the sequential runs it seeds; run -> error
    for config in pending:
        if config.method == "sequential" and config.seed_config() in pending:
            waiting.setdefault(config.seed_config(), []).append(config)
        else:
            owner[submit(config)] = config
    with tqdm(total=len(pending), desc="runs", disable=not store.progress) as bar:
        while owner:
            done, _ = wait_for(list(owner), return_when=FIRST_COMPLETED)
            for future in done:
                config = owner.pop(future)
                bar.update(1)
                try:
                    store.write_record(config, _result(future))
                except Exception as err:  # noqa: BLE001 - the others go on; every failure is named at the end
                    failed[config] = str(err)
                    for follower in waiting.pop(config, []):
                        failed[follower] = f"not run: its PIT seed ({config.label()}) failed"
                        bar.update(1)
                    continue
                for follower in waiting.pop(config, []):
                    owner[submit(follower)] = follower
    if failed:
        raise experiments.RunsFailed(failed, len(pending))


@contextlib.contextmanager
def child_environment(**variables: str):
    """Environment variables set while the block runs, for the processes it starts (workers, notebook kernels):
    OpenMP reads its thread count once, at start, and compiled kernels fix theirs when compiled."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _worker_start(parent: int) -> None:
    """A local worker process: single-threaded, and gone when the driver is (a killed `make reproduce` leaves no
    process training on)."""
    torch.set_num_threads(1)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _run_locally(pending: list[RunConfig], store: Store, count: int) -> None:
    """Train the warm-ups, then every run, in `count` spawned single-threaded processes."""
    remote = _remote_store(store)
    context = multiprocessing.get_context("spawn")
    with child_environment(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"), \
            ProcessPoolExecutor(count, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)) as pool:
        for key in dict.fromkeys((c.benchmark, c.profile, c.seed) for c in pending):
            pool.submit(_warm_up, *key, remote).result()
        _dispatch(pending, store, lambda config: pool.submit(experiments.compute, config, remote), wait)


def _result(future) -> dict:
    """The record a task returned, or its error raised here saying where it ran (a ValueError stays one, with its
    message; another error is named)."""
    try:
        return future.result()
    except Exception as err:
        kind = ValueError if isinstance(err, ValueError) else RuntimeError
        where = "on a Dask worker" if isinstance(future, Future) else "in a local worker process"
        raise kind(f"{where}: {err}" if kind is ValueError else f"{type(err).__name__} {where}: {err}") from err


def _remote_store(store: Store) -> Store:
    """The store as workers use it: absolute paths (resolved here), no loaded benchmarks to ship, no progress bars."""
    return replace(store, results=store.results.absolute(), cache=store.cache.absolute(),
                   data_root=store.data_root.absolute(), progress=False, _benchmarks={})


def _gpu_resources(client: Client) -> dict[str, int]:
    """One GPU per task if the cluster's workers declare GPUs (`dask worker --resources "GPU=1"`), else nothing;
    waits for a first worker (queued SLURM jobs), whose resources tell."""
    client.wait_for_workers(1)
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return {"GPU": 1} if any("GPU" in worker.get("resources", {}) for worker in workers) else {}


def _check_loader_processes(benchmark: str, profile: str) -> None:
    """Dask's nannies start daemonic worker processes by default, which cannot start the DataLoader processes a
    profile asks for: say how to start the workers instead of failing in the first epoch."""
    if multiprocessing.current_process().daemon and profiles.get_profile(profile, benchmark).workers:
        raise ValueError(f"profile {profile!r} loads {benchmark} with DataLoader processes, which a daemonic Dask "
                         f"worker cannot start; start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")


def _warm_up(benchmark: str, profile: str, seed: int, store: Store) -> None:
    """Task: train and cache the shared float warm-up once, so the runs that start from it do not all train it."""
    _check_loader_processes(benchmark, profile)
    experiments.warmup(benchmark, profile, seed, store)


def _compute(config: RunConfig, store: Store, warmed_up: None) -> dict:
    """Task: train and measure one run and return its record (the driver writes it); `warmed_up` orders it after
    its warm-up task."""
    _check_loader_processes(config.benchmark, config.profile)
    return experiments.compute(config, store)
