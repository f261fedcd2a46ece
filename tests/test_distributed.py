"""Dask scaling: a chunked sweep equals the in-memory one; cluster fits equal the serial fits."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from retrosim.chain import RetroChain
from retrosim.distributed import (
    SCHEDULER_ENV,
    check_scheduler_address,
    get_client,
    map_tasks,
    simulate_chunked,
    task_seeds,
)
from retrosim.errors import InputError

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
    return RetroChain(calibrated=False)


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

    from retrosim.sampling import sample

    y = np.random.default_rng(seed).normal(1.0, 1.0, n_obs)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        pm.Normal("y", mu, 1.0, observed=y)
    # PyMC's own NUTS: its compiled C is cached across processes, so a fresh worker does not
    # pay nutpie's first-call JIT (about 7 s of CPU) and the test stays cheap.
    idata, _ = sample(model, draws=200, tune=200, chains=2, seed=seed, gate="off", sampler="pymc")
    return n_obs, y.mean(), np.asarray(idata["posterior"]["mu"].values)


def worker_pid(_):
    return os.getpid()


def test_local_cluster_fits_and_chunks_equal_serial(chain, in_memory, tmp_path):
    items = [10, 40, 90]
    serial = map_tasks(tiny_fit, items, seed=11, serial=True)
    client = get_client()
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        pids = map_tasks(worker_pid, range(4), scheduler=client)
        assert os.getpid() not in pids  # really ran in worker processes
        parallel = map_tasks(tiny_fit, items, seed=11, scheduler=client)
        # the chunked grid evaluated by the cluster's workers, streamed to Zarr
        out = simulate_chunked(
            *GRID.values(), n_draws=N_DRAWS, seed=SEED, chain=chain, chunks={"speed": 3},
            variables=["net_kcal_km", "pfj_force_bw"], out=tmp_path / "c.zarr", scheduler=client,
        )  # fmt: skip
        with xr.open_zarr(out) as got:
            xr.testing.assert_equal(got.load(), in_memory[["net_kcal_km", "pfj_force_bw"]])
    finally:
        client.close()
    assert [r[0] for r in parallel] == items  # in item order
    for (n, ybar, mu_s), (_, _, mu_p) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(mu_p, mu_s)  # identical draws for identical seeds
        # and a sane posterior: mean ybar * n / (n + 1/100), sd 1/sqrt(n) (conjugate normal)
        assert abs(mu_s.mean() - ybar * n / (n + 0.01)) < 4 / np.sqrt(n) / np.sqrt(100)


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
