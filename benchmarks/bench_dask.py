"""Chunked Dask evaluation of the model chain: overhead vs in-memory, and a 10⁹-point sweep.

Every case runs in a fresh Python subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the memory figures include the
interpreter and imported libraries (reported separately as ``*_import_rss_mb``).

(b) ``inmem_*`` vs ``chunked_*``: the full chain (gait, five energetics models, knee) on a
    grid that fits in memory (2·10⁶ condition-draws), with ``RetroChain.run`` and with
    :func:`retrosim.distributed.simulate_chunked` (4 blocks, dask's threaded scheduler),
    (i) computed into memory and (ii) written to a Zarr store (in-memory: run, then
    ``to_zarr``; chunked: streamed block by block). ``*_speed`` = in-memory time / chunked
    time (> 1: chunked is faster). Imports (dask, distributed, xarray) happen before timing.
(e) ``sweep_*``: 10⁹ condition-draws (250 speeds x 2000 masses x 2 directions x running x
    level x 1000 draws) with the gait model and the Kram-Taylor (force-time) energetics
    model, knee off, streamed block by block (about 2·10⁶ condition-draws per block) to a
    Zarr store that holds, for five variables, the mean and SD over the 1000 draws of each
    condition. The store goes to ``benchmarks/.scratch/`` and is deleted afterwards.

(e') ``sweep_full_chain_*``: the same 10⁹ condition-draws (250 x 2000 x 2 conditions x 1000
    draws) with the full chain (five energetics models and the knee model), seven variables
    (the five above and the peak patellofemoral force per contact and per km) reduced to
    mean and SD over the draws.
(f) ``fits_*``: four SBC replicates of the claims meta-analysis model
    (:func:`retrosim.meta.model.run_sbc_replicate`, nutpie, 2 chains x 100 draws) run serially
    and as Dask tasks on a fresh 2-worker ``LocalCluster`` (start-up and per-worker compilation
    included) with :func:`retrosim.distributed.map_tasks`; ``fits_identical`` says whether the
    two runs returned exactly the same ranks and diagnostics.

Parameters are drawn from the literature priors (``RetroChain()``, no posterior) so that the benchmark
does not depend on the calibration posterior; the arithmetic per cell is the same.
``RETROSIM_BENCH_SWEEP_DRAWS`` (default 1000) scales the sweep down for a quick check.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / ".scratch" / "dask"  # git-ignored; removed after the run

#: (b) grid that fits in memory: 20 speeds x 25 masses x 2 directions x run x level x 2000 draws.
INMEM = dict(n_speed=20, n_mass=25, n_draws=2000)
#: (e) the large sweep: 250 x 2000 x 2 x 1 x 1 x 1000 = 1e9 condition-draws.
SWEEP = dict(n_speed=250, n_mass=2000, n_draws=1000)
#: (f) independent fits: SBC replicates of the meta-analysis model, serial vs 2-worker cluster.
FITS = {"seeds": [1, 2, 3, 4], "settings": {"draws": 100, "tune": 200, "chains": 2}}
#: (e') the same conditions with the full chain (five models, knee) and 1000 draws: 1e9.
SWEEP_FULL_DRAWS = 1000
SWEEP_KNEE = ["pfj_force_bw", "pfj_force_per_km_bw"]
SWEEP_VARIABLES = ["net_kcal_km", "gross_kcal_min", "net_cost_j_kg_m", "contact_time_s",
                   "vgrf_peak_n"]  # fmt: skip


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _grid(n_speed, n_mass):
    import numpy as np

    speed = np.round(np.linspace(2.0, 4.5, n_speed), 4)
    mass = np.round(np.linspace(45.0, 120.0, n_mass), 4)
    return speed, mass


def _case(name: str) -> dict:
    """Run one case in this (fresh) process and return its figures."""
    import dask.array  # noqa: F401  (imported before timing: dask probes for distributed)
    import distributed  # noqa: F401
    import numpy as np
    import xarray as xr

    from retrosim.distributed import simulate_chunked
    from retrosim.models.chain import RetroChain

    import_rss = _rss_mb()
    if name in ("inmem", "chunked", "inmem_zarr", "chunked_zarr"):
        speed, mass = _grid(INMEM["n_speed"], INMEM["n_mass"])
        chain = RetroChain()
        chain.run(speed[:2], mass[:2], n_draws=10, seed=1)  # warm caches (CSV parameter tables)
        n = len(speed) * len(mass) * 2 * INMEM["n_draws"]
        out = SCRATCH / f"{name}.zarr"
        t0 = time.perf_counter()
        if name.startswith("inmem"):
            ds = chain.run(speed, mass, n_draws=INMEM["n_draws"], seed=1)
            if name == "inmem_zarr":
                ds.to_zarr(out, mode="w", consolidated=False)
        else:
            ds = simulate_chunked(speed, mass, n_draws=INMEM["n_draws"], seed=1, chain=chain,
                                  chunks={"speed": 5},
                                  out=out if name == "chunked_zarr" else None)  # fmt: skip
            if name == "chunked":
                ds = ds.compute()
            else:
                ds = xr.open_zarr(ds)
        seconds = time.perf_counter() - t0
        nbytes = ds.nbytes / 2**20
        shutil.rmtree(out, ignore_errors=True)
        return {"points": n, "seconds": seconds, "rss_mb": _rss_mb(), "import_rss_mb": import_rss,
                "nbytes_mb": nbytes}  # fmt: skip
    if name in ("sweep", "sweep_full"):
        full = name == "sweep_full"
        draws = SWEEP_FULL_DRAWS if full else SWEEP["n_draws"]
        draws = int(os.environ.get("RETROSIM_BENCH_SWEEP_DRAWS", draws))
        speed, mass = _grid(SWEEP["n_speed"], SWEEP["n_mass"])
        if full:
            chain, variables = RetroChain(), SWEEP_VARIABLES + SWEEP_KNEE
        else:
            chain = RetroChain(models=("kram_taylor",), knee=False)
            variables = SWEEP_VARIABLES
        out = SCRATCH / f"{name}.zarr"
        t0 = time.perf_counter()
        path = simulate_chunked(
            speed, mass, ("forward", "backward"), ("run",), (0.0,), n_draws=draws, seed=1,
            chain=chain, variables=variables, reduce="draw", statistics=("mean", "sd"), out=out,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        store_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        with xr.open_zarr(path) as ds:
            blocks = int(ds.attrs["chunked_blocks"])
            written = {k: list(v.dims) for k, v in ds.data_vars.items()}
            finite = bool(np.isfinite(ds["net_kcal_km"].sel(statistic="mean").values).all())
        shutil.rmtree(path)
        n = len(speed) * len(mass) * 2 * draws
        return {"points": n, "seconds": seconds, "rss_mb": _rss_mb(), "import_rss_mb": import_rss,
                "blocks": blocks, "store_mb": store_mb, "written": written,
                "all_finite": finite}  # fmt: skip
    if name == "fits":
        import functools

        from retrosim.distributed import map_tasks
        from retrosim.meta.model import run_sbc_replicate

        func = functools.partial(run_sbc_replicate, **FITS["settings"])
        t0 = time.perf_counter()
        serial = map_tasks(func, FITS["seeds"], serial=True)
        t1 = time.perf_counter()
        parallel = map_tasks(func, FITS["seeds"])  # fresh 2-worker LocalCluster, start-up included
        t2 = time.perf_counter()
        return {"serial_s": t1 - t0, "cluster_s": t2 - t1, "identical": serial == parallel}
    raise ValueError(name)


def _run_case(name: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"bench_dask case {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run() -> dict:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    try:
        case = {
            name: _run_case(name) for name in ("inmem", "chunked", "inmem_zarr", "chunked_zarr")
        }
        sweep = _run_case("sweep")
        full = _run_case("sweep_full")
        fits = _run_case("fits")
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    inmem, chunked = case["inmem"], case["chunked"]
    return {
        "inmem_points": inmem["points"],
        "inmem_dataset_mb": round(inmem["nbytes_mb"]),
        "inmem_s": round(inmem["seconds"], 2),
        "chunked_s": round(chunked["seconds"], 2),
        "chunked_vs_inmem_speed": round(inmem["seconds"] / chunked["seconds"], 2),
        "inmem_peak_rss_mb": round(inmem["rss_mb"]),
        "chunked_peak_rss_mb": round(chunked["rss_mb"]),
        "inmem_to_zarr_s": round(case["inmem_zarr"]["seconds"], 2),
        "chunked_to_zarr_s": round(case["chunked_zarr"]["seconds"], 2),
        "chunked_vs_inmem_to_zarr_speed": round(
            case["inmem_zarr"]["seconds"] / case["chunked_zarr"]["seconds"], 2
        ),
        "inmem_to_zarr_peak_rss_mb": round(case["inmem_zarr"]["rss_mb"]),
        "chunked_to_zarr_peak_rss_mb": round(case["chunked_zarr"]["rss_mb"]),
        "import_rss_mb": round(inmem["import_rss_mb"]),
        "sweep_points": sweep["points"],
        "sweep_s": round(sweep["seconds"], 1),
        "sweep_points_per_s": round(sweep["points"] / sweep["seconds"]),
        "sweep_peak_rss_mb": round(sweep["rss_mb"]),
        "sweep_blocks": sweep["blocks"],
        "sweep_store_mb": round(sweep["store_mb"], 1),
        "sweep_written": "mean,sd over draws of " + ",".join(sweep["written"]),
        "sweep_all_finite": sweep["all_finite"],
        "sweep_full_chain_points": full["points"],
        "sweep_full_chain_s": round(full["seconds"], 1),
        "sweep_full_chain_points_per_s": round(full["points"] / full["seconds"]),
        "sweep_full_chain_peak_rss_mb": round(full["rss_mb"]),
        "fits_n": len(FITS["seeds"]),
        "fits_serial_s": round(fits["serial_s"], 1),
        "fits_cluster_s": round(fits["cluster_s"], 1),
        "fits_cluster_speedup": round(fits["serial_s"] / fits["cluster_s"], 2),
        "fits_identical": fits["identical"],
        "load_average_before_after": (
            f"{'/'.join(f'{x:.1f}' for x in load_before)} -> "
            f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min) on {os.cpu_count()} CPUs"
        ),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(_case(sys.argv[1])))
    else:
        for key, value in run().items():
            print(f"{key:<24} {value}")
