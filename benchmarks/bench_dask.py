"""Chunked Dask evaluation of the model chain: overhead vs in-memory, and a 10⁹-point sweep.

Every case runs in a fresh Python subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the memory figures include the
interpreter and imported libraries (reported separately as ``*_import_rss_mb``).

(b) ``inmem_*`` vs ``chunked_*``: the full chain (gait, five energetics models, knee) on a
    grid that fits in memory, once with ``RetroChain.run`` and once with
    :func:`retrosim.distributed.simulate_chunked` computed into memory with dask's threaded
    scheduler (2 threads on this machine). ``chunked_speedup`` = in-memory time / chunked time.
(e) ``sweep_*``: 10⁹ condition-draws (250 speeds x 2000 masses x 2 directions x running x
    level x 1000 draws) with the gait model and the Kram-Taylor (force-time) energetics
    model, knee off, streamed block by block (about 2·10⁶ condition-draws per block) to a
    Zarr store that holds, for five variables, the mean and SD over the 1000 draws of each
    condition. The store goes to ``benchmarks/.scratch/`` and is deleted afterwards.

Parameters are drawn from the literature priors (``calibrated=False``) so that the benchmark
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
SCRATCH = HERE / ".scratch"

#: (b) grid that fits in memory: 20 speeds x 25 masses x 2 directions x run x level x 2000 draws.
INMEM = dict(n_speed=20, n_mass=25, n_draws=2000)
#: (e) the large sweep: 250 x 2000 x 2 x 1 x 1 x 1000 = 1e9 condition-draws.
SWEEP = dict(n_speed=250, n_mass=2000, n_draws=1000)
SWEEP_VARIABLES = ["net_kcal_km", "gross_kcal_min", "net_cost_j_kg_m", "contact_time_s",
                   "peak_vgrf_n"]  # fmt: skip


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _grid(n_speed, n_mass):
    import numpy as np

    speed = np.round(np.linspace(2.0, 4.5, n_speed), 4)
    mass = np.round(np.linspace(45.0, 120.0, n_mass), 4)
    return speed, mass


def _case(name: str) -> dict:
    """Run one case in this (fresh) process and return its figures."""
    import numpy as np

    from retrosim.chain import RetroChain
    from retrosim.distributed import simulate_chunked

    import_rss = _rss_mb()
    if name in ("inmem", "chunked"):
        speed, mass = _grid(INMEM["n_speed"], INMEM["n_mass"])
        chain = RetroChain(calibrated=False)
        chain.run(speed[:2], mass[:2], n_draws=10, seed=1)  # warm caches (CSV parameter tables)
        n = len(speed) * len(mass) * 2 * INMEM["n_draws"]
        t0 = time.perf_counter()
        if name == "inmem":
            ds = chain.run(speed, mass, n_draws=INMEM["n_draws"], seed=1)
        else:
            ds = simulate_chunked(speed, mass, n_draws=INMEM["n_draws"], seed=1, chain=chain,
                                  chunks={"speed": 5}).compute()  # fmt: skip
        seconds = time.perf_counter() - t0
        return {"points": n, "seconds": seconds, "rss_mb": _rss_mb(), "import_rss_mb": import_rss,
                "nbytes_mb": ds.nbytes / 2**20}  # fmt: skip
    if name == "sweep":
        draws = int(os.environ.get("RETROSIM_BENCH_SWEEP_DRAWS", SWEEP["n_draws"]))
        speed, mass = _grid(SWEEP["n_speed"], SWEEP["n_mass"])
        chain = RetroChain(models=("kram_taylor",), calibrated=False, knee=False)
        out = SCRATCH / "sweep.zarr"
        t0 = time.perf_counter()
        path = simulate_chunked(
            speed, mass, ("forward", "backward"), ("run",), (0.0,), n_draws=draws, seed=1,
            chain=chain, variables=SWEEP_VARIABLES, reduce="draw", statistics=("mean", "sd"),
            out=out,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        store_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        import xarray as xr

        with xr.open_zarr(path) as ds:
            blocks = int(ds.attrs["chunked_blocks"])
            written = {k: list(v.dims) for k, v in ds.data_vars.items()}
            finite = bool(np.isfinite(ds["net_kcal_km"].sel(statistic="mean").values).all())
        shutil.rmtree(path)
        n = len(speed) * len(mass) * 2 * draws
        return {"points": n, "seconds": seconds, "rss_mb": _rss_mb(), "import_rss_mb": import_rss,
                "blocks": blocks, "store_mb": store_mb, "written": written,
                "all_finite": finite}  # fmt: skip
    raise ValueError(name)


def _run_case(name: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"bench_dask case {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run() -> dict:
    SCRATCH.mkdir(exist_ok=True)
    try:
        inmem = _run_case("inmem")
        chunked = _run_case("chunked")
        sweep = _run_case("sweep")
    finally:
        shutil.rmtree(SCRATCH / "sweep.zarr", ignore_errors=True)
    return {
        "inmem_points": inmem["points"],
        "inmem_s": round(inmem["seconds"], 2),
        "inmem_peak_rss_mb": round(inmem["rss_mb"]),
        "inmem_dataset_mb": round(inmem["nbytes_mb"]),
        "chunked_s": round(chunked["seconds"], 2),
        "chunked_peak_rss_mb": round(chunked["rss_mb"]),
        "chunked_speedup": round(inmem["seconds"] / chunked["seconds"], 2),
        "import_rss_mb": round(inmem["import_rss_mb"]),
        "sweep_points": sweep["points"],
        "sweep_s": round(sweep["seconds"], 1),
        "sweep_points_per_s": round(sweep["points"] / sweep["seconds"]),
        "sweep_peak_rss_mb": round(sweep["rss_mb"]),
        "sweep_blocks": sweep["blocks"],
        "sweep_store_mb": round(sweep["store_mb"], 1),
        "sweep_written": "mean,sd over draws of " + ",".join(sweep["written"]),
        "sweep_all_finite": sweep["all_finite"],
    }


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(_case(sys.argv[1])))
    else:
        for key, value in run().items():
            print(f"{key:<24} {value}")
