"""Dask scaling: a chunked sweep equals the in-memory one; cluster fits equal the serial fits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from retrosim.distributed import (
    SCHEDULER_ENV,
    check_scheduler_address,
    get_client,
    map_tasks,
    numerics_settings,
    simulate_chunked,
    task_seeds,
)
from retrosim.errors import InputError
from retrosim.models.chain import RetroChain

GRID = dict(
    speed_m_s=[1.0, 1.5, 2.0, 2.5, 2.75],
    mass_kg=[55.0, 70.0, 85.0],
    direction=("forward", "backward"),
    mode=("run", "walk"),
    grade=(0.0, 0.05),
)
N_DRAWS, SEED = 24, 3


@pytest.fixture(scope="module")
def chain():
    return RetroChain()


@pytest.fixture(scope="module")
def in_memory(chain):
    return chain.run(*GRID.values(), n_draws=N_DRAWS, seed=SEED)


def test_chunked_sweep_equals_in_memory_sweep(chain, in_memory):
    lazy = simulate_chunked(
        *GRID.values(), n_draws=N_DRAWS, seed=SEED, chain=chain,
        chunks={"speed": 2, "mass": 1, "mode": 1},
    )  # fmt: skip
    # really chunked and lazy: 3 x 3 x 2 blocks, dask-backed variables
    assert lazy.attrs["chunked_blocks"] == 18
    assert lazy["net_kcal_km"].chunks is not None
    assert lazy["net_kcal_km"].data.numblocks[lazy["net_kcal_km"].dims.index("speed")] == 3
    got = lazy.compute()
    xr.testing.assert_equal(got, in_memory)  # same values, dims, coordinates, units
    for name in in_memory.data_vars:
        assert got[name].attrs == in_memory[name].attrs
    assert got.attrs["warnings"] == in_memory.attrs["warnings"]


def test_chunked_reduction_over_draws_matches_numpy(chain, in_memory, tmp_path):
    names = ["net_kcal_km", "contact_time_s"]
    out = simulate_chunked(
        *GRID.values(), n_draws=N_DRAWS, seed=SEED, chain=chain, chunks={"speed": 2},
        variables=names, reduce="draw", statistics=("mean", "sd", "q95"),
        out=tmp_path / "sweep.zarr",
    )  # fmt: skip
    with xr.open_zarr(out) as red:
        assert set(red.data_vars) == set(names)
        for name in names:
            full = in_memory[name]
            axis = full.dims.index("draw")
            got = red[name].transpose("statistic", *[d for d in full.dims if d != "draw"])
            np.testing.assert_allclose(got.sel(statistic="mean"), full.values.mean(axis=axis))
            np.testing.assert_allclose(got.sel(statistic="sd"), full.values.std(axis=axis, ddof=1))
            np.testing.assert_allclose(
                got.sel(statistic="q95"), np.quantile(full.values, 0.95, axis=axis)
            )
            assert red[name].attrs["units"] == full.attrs["units"]
    assert not list(tmp_path.glob(".sweep.zarr*")), "temporary store left behind"


def test_chunked_netcdf_round_trip(chain, in_memory, tmp_path):
    out = simulate_chunked(
        *GRID.values(), n_draws=N_DRAWS, seed=SEED, chain=chain, chunks={"mass": 2},
        variables=["gross_kcal_min"], out=tmp_path / "sweep.nc",
    )  # fmt: skip
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds["gross_kcal_min"].values, in_memory["gross_kcal_min"])
        assert ds["speed"].attrs["units"] == "m/s"


def test_chunked_bad_input(chain):
    with pytest.raises(InputError, match="draw"):
        simulate_chunked([3.0], [70.0], n_draws=4, chain=chain, chunks={"draw": 2})
    with pytest.raises(InputError, match="chunks"):
        simulate_chunked([3.0], [70.0], n_draws=4, chain=chain, chunks={"weather": 2})
    with pytest.raises(InputError, match="variables"):
        simulate_chunked([3.0], [70.0], n_draws=4, chain=chain, variables=["nope"])
    with pytest.raises(InputError, match="speed"):  # the chain's own checks, on every value
        simulate_chunked([3.0, 12.0, 40.0], [70.0], n_draws=4, chain=chain)
    with pytest.raises(InputError, match="out"):
        simulate_chunked([3.0], [70.0], n_draws=4, chain=chain, out="x.csv")


@pytest.mark.parametrize(
    "address", ["localhost:8786", "tcp://", "tcp://host", "http://host:8786", "tcp://h:99999"]
)
def test_bad_scheduler_address(address):
    with pytest.raises(InputError, match="tcp://host:port") as exc:
        check_scheduler_address(address)
    assert exc.value.argument == "scheduler"


def test_unreachable_scheduler_and_env_variable(monkeypatch):
    with pytest.raises(InputError, match="no Dask scheduler answered"):
        get_client("tcp://127.0.0.1:9", timeout_s=1)
    monkeypatch.setenv(SCHEDULER_ENV, "not-an-address")
    with pytest.raises(InputError) as exc:
        get_client()
    assert exc.value.argument == SCHEDULER_ENV


def test_task_seeds_depend_only_on_position():
    seeds = task_seeds(5, 4)
    assert seeds == task_seeds(5, 4)
    assert seeds[:2] == task_seeds(5, 2)
    assert len(set(seeds)) == 4 and seeds != task_seeds(6, 4)


def tiny_fit(n_obs, seed):
    """A small seeded Bayesian fit: posterior of a normal mean with known sd."""
    import pymc as pm

    from retrosim.bayes.sampling import sample

    y = np.random.default_rng(seed).normal(1.0, 1.0, n_obs)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        pm.Normal("y", mu, 1.0, observed=y)
    # PyMC's own NUTS: its logp function (numba, through PyTensor) is in PyTensor's compile
    # cache after the first run, so a fresh worker does not pay nutpie's JIT (about 7 s of CPU).
    idata, _ = sample(model, draws=200, tune=200, chains=2, seed=seed, gate="off", sampler="pymc")
    return n_obs, y.mean(), np.asarray(idata["posterior"]["mu"].values)


def worker_numerics(_):
    """Where a task ran, and the settings it ran under."""
    return os.getpid(), numerics_settings()


@contextlib.contextmanager
def strict_ieee():
    """Compile models without fast-math, so that their results do not depend on the cache.

    With PyTensor's default ``numba__fastmath=True``, LLVM may reorder the sum of the
    log-likelihood, and does so differently for a model compiled afresh and one loaded from
    PyTensor's compile cache. In a run with a cold cache the serial fit compiled the model and
    the workers loaded it from the cache: 283 of 400 draws of the 90-observation fit then
    differed in the last bits (max relative difference 5e-13). Without fast-math, a cold
    cache, a warm one and no cache give the same bits (and the same as PyTensor's C backend).
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield


FIT_ITEMS, FIT_SEED = (10, 40, 90), 11


@pytest.fixture(scope="module")
def serial_fits():
    with strict_ieee():
        return map_tasks(tiny_fit, FIT_ITEMS, seed=FIT_SEED, serial=True)


def check_cluster_equals_serial(scheduler, serial_fits, chain, in_memory, out):
    """Fits as tasks and a chunked grid on the cluster at ``scheduler`` equal the serial runs.

    ``scheduler`` is a Client or an address; ``None`` means the one in ``RETROSIM_SCHEDULER``.
    ``serial_fits=None`` skips the fits. Returns the process ids the tasks ran in.
    """
    with strict_ieee():
        here = numerics_settings()
        ran = map_tasks(worker_numerics, range(4), scheduler=scheduler)
        if serial_fits is not None:
            parallel = map_tasks(tiny_fit, FIT_ITEMS, seed=FIT_SEED, scheduler=scheduler)
    pids = {pid for pid, _ in ran}
    assert os.getpid() not in pids  # really ran in worker processes
    for _, there in ran:  # under this process's compile flags and BLAS threads
        assert there["pytensor"] == here["pytensor"]
        assert here["pytensor"]["numba__fastmath"] is False
        for lib, n in here["blas_threads"].items():
            assert there["blas_threads"].get(lib) == n, (lib, there)
    if serial_fits is not None:
        assert [r[0] for r in parallel] == list(FIT_ITEMS)  # in item order
        for (n, ybar, mu_s), (_, _, mu_p) in zip(serial_fits, parallel, strict=True):
            np.testing.assert_array_equal(mu_p, mu_s)  # identical draws for identical seeds
            # and a sane posterior: mean ybar * n / (n + 1/100), sd 1/sqrt(n) (conjugate normal)
            assert abs(mu_s.mean() - ybar * n / (n + 0.01)) < 4 / np.sqrt(n) / np.sqrt(100)
    # the chunked grid evaluated by the cluster's workers, streamed to Zarr
    names = ["net_kcal_km", "pfj_force_bw"]
    path = simulate_chunked(
        *GRID.values(), n_draws=N_DRAWS, seed=SEED, chain=chain, chunks={"speed": 3},
        variables=names, out=out, scheduler=scheduler,
    )  # fmt: skip
    with xr.open_zarr(path) as got:
        xr.testing.assert_equal(got.load(), in_memory[names])
    return pids


def test_local_cluster_fits_and_chunks_equal_serial(serial_fits, chain, in_memory, tmp_path):
    environ = dict(os.environ)
    client = get_client()
    try:
        # starting the cluster leaves this process's environment as it was (dask's nanny
        # writes OMP_NUM_THREADS=1, PYTHONHASHSEED... into it for the worker processes)
        assert dict(os.environ) == environ
        assert len(client.scheduler_info()["workers"]) == 2
        check_cluster_equals_serial(client, serial_fits, chain, in_memory, tmp_path / "c.zarr")
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# A real scheduler and workers, started with dask's command line on the loopback interface
# --------------------------------------------------------------------------------------------
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 120  # a loaded 2-core machine: each worker imports dask, then registers


def _dask_command(kind, *args):
    """``python -m distributed.cli.dask_<kind> ...`` with this interpreter (the venv's dask)."""
    return [sys.executable, "-m", f"distributed.cli.dask_{kind}", *args]


def _stop(procs, timeout_s=20.0):
    """SIGTERM every process group, then SIGKILL those whose leader still runs after ``timeout_s``.

    A nanny stops its worker process on SIGTERM (which the worker, in the same group, also
    receives); SIGKILL is only sent to a group whose leader is still ours (not yet reaped).
    """
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def tcp_scheduler(tmp_path):
    """Address of a ``dask scheduler`` with two ``dask worker`` processes (1 thread each).

    Everything listens on 127.0.0.1 only, ports chosen by the system, dashboards off; the
    processes are stopped (their whole process groups) whatever the test does. As a last
    resort the scheduler exits by itself after 5 idle minutes and the workers 60 s after
    losing it.
    """
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    scheduler_file = tmp_path / "scheduler.json"
    # --no-dashboard leaves the HTTP server (health checks) running: keep it on loopback too
    local = ["--no-dashboard", "--dashboard-address", f"{LOOPBACK}:0"]
    procs = []

    def start(name, command):
        with open(logs / f"{name}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                    start_new_session=True,
                )
            )

    def failed(what):
        text = "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(logs.iterdir()))
        return f"{what}\n{text}"

    try:
        start("scheduler", _dask_command(
            "scheduler", "--host", LOOPBACK, "--port", "0", *local,
            "--scheduler-file", str(scheduler_file), "--idle-timeout", "300s",
        ))  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        address = None
        while address is None:
            assert procs[0].poll() is None, failed("dask scheduler exited")
            assert time.monotonic() < deadline, failed("dask scheduler did not start in time")
            with contextlib.suppress(OSError, ValueError, KeyError):
                address = json.loads(scheduler_file.read_text())["address"]
            time.sleep(0.2)
        assert address.startswith(f"tcp://{LOOPBACK}:"), address
        for i in range(2):
            start(f"worker-{i}", _dask_command(
                "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", LOOPBACK,
                *local, "--local-directory", str(tmp_path), "--death-timeout", "60s",
            ))  # fmt: skip
        yield address, procs, deadline, failed
    finally:
        _stop(procs)


def test_tcp_scheduler_fits_and_chunks_equal_serial(
    tcp_scheduler, serial_fits, chain, in_memory, tmp_path, monkeypatch
):
    from distributed import Client

    address, procs, deadline, failed = tcp_scheduler
    with Client(address, timeout="30s") as client:
        try:
            client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            pytest.fail(failed("the two dask workers did not register in time"))
        workers = client.scheduler_info()["workers"]
        assert all(w.startswith(f"tcp://{LOOPBACK}:") for w in workers), workers
        worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2
    # the address as an argument, then through RETROSIM_SCHEDULER (what --scheduler sets)
    pids = check_cluster_equals_serial(address, serial_fits, chain, in_memory, tmp_path / "a.zarr")
    assert pids <= worker_pids
    monkeypatch.setenv(SCHEDULER_ENV, address)  # tasks and the chunked grid (fits done above)
    pids = check_cluster_equals_serial(None, None, chain, in_memory, tmp_path / "e.zarr")
    assert pids <= worker_pids
    assert all(p.poll() is None for p in procs), failed("a dask process died during the test")


def test_cli_simulate_chunked_equals_in_memory(tmp_path, capsys):
    from retrosim.cli import main

    common = ["simulate", "--speed", "2:3:0.5", "--mass", "60,80", "--draws", "20",
              "--uncalibrated", "--seed", "4"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "mem.nc")]) == 0
    assert main([*common, "--chunks", "speed=1", "--out", str(tmp_path / "dask.zarr")]) == 0
    assert "backward" in capsys.readouterr().out
    with xr.open_dataset(tmp_path / "mem.nc") as mem, xr.open_zarr(tmp_path / "dask.zarr") as lazy:
        xr.testing.assert_allclose(lazy.load(), mem.load())
    assert main([*common, "--chunks", "draw=5", "--out", str(tmp_path / "x.nc")]) == 2
    assert "--chunks" in capsys.readouterr().err
