"""Scale retrosim with Dask: chunked grids that never sit whole in memory, and many fits as tasks.

Two things live here.

* :func:`evaluate_chunked` / :func:`simulate_chunked` evaluate a model grid lazily, block by
  block (``xarray.map_blocks`` over a dask-backed skeleton that costs no memory), optionally
  reduce each block over the posterior draws to summary statistics, and stream the result to
  Zarr or NetCDF. Only a few blocks are ever in memory, so a grid of 10⁹ condition-draws runs
  in a few hundred MB (see ``benchmarks/bench_dask.py``).
* :func:`map_tasks` runs many independent fits (SBC replicates, sensitivity settings, several
  trial files) as Dask tasks, on a local 2-process cluster by default or on an existing cluster
  given its scheduler address (argument or the ``RETROSIM_SCHEDULER`` environment variable).
  Each task gets its seed from its position only, and runs under this process's PyTensor
  compilation flags and BLAS thread counts (:func:`numerics_settings`), so the results are
  identical to the serial run with the same seeds, whatever the number of workers or the
  order they finish in (see :func:`map_tasks` for the one condition: code compiled with
  fast-math is not reproducible to the bit).

Examples
--------
>>> from retrosim.distributed import map_tasks
>>> map_tasks(pow, [(2, 3), (3, 2)], serial=True)            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from retrosim._io import NETCDF_ENGINE, atomic_path
from retrosim.config import PACKAGE_DIR, SCHEDULER_ENV, SOURCE_ROOT, scheduler_address
from retrosim.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "SCHEDULER_ENV",
    "evaluate_chunked",
    "get_client",
    "map_tasks",
    "numerics_settings",
    "task_seeds",
    "using_client",
]

#: Environment variable holding the address of an existing Dask scheduler (``tcp://host:port``).
_SCHEMES = ("tcp", "tls")
#: Statistics :func:`evaluate_chunked` can reduce the draw dimension to.
STATISTICS = ("mean", "sd", "q05", "q50", "q95")
_QUANTILES = {"q05": 0.05, "q50": 0.50, "q95": 0.95}
#: PyTensor flags that decide how a model compiles, hence the bits of its results, and that
#: can be changed in a running process (``optimizer`` and its ``optimizer_*`` lists can only
#: be set when a worker starts, through its ``PYTENSOR_FLAGS`` environment variable).
COMPILE_FLAGS = ("floatX", "cast_policy", "mode", "linker", "numba__fastmath")


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------
def check_scheduler_address(address: str, argument: str = "scheduler") -> str:
    """Return ``address`` if it looks like ``tcp://host:port`` (or ``tls://``); else InputError."""
    text = str(address).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in _SCHEMES
        or not parts.hostname
        or port is None
        or not 0 < port < 65536
        or parts.path not in ("", "/")
    ):
        raise InputError(
            f"scheduler address {text!r} is not of the form tcp://host:port "
            f"(scheme one of {', '.join(_SCHEMES)}, port 1-65535)",
            argument=argument,
        )
    return f"{parts.scheme}://{parts.netloc}"


def get_client(scheduler: str | None = None, *, timeout_s: float = 10.0):
    """Return a :class:`distributed.Client`.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler, ``tcp://host:port``. When omitted, the environment
        variable ``RETROSIM_SCHEDULER`` is used; when that is unset too, a fresh
        ``LocalCluster`` is started on the loopback interface: 2 worker processes with one
        thread each, no dashboard. Closing the returned client also closes that cluster.
    timeout_s : float
        Seconds to wait for an existing scheduler before giving up [s].

    Raises
    ------
    InputError
        If the address is malformed or nothing answers at it within ``timeout_s``.
    """
    import dask
    from distributed import Client

    argument = "scheduler"
    if scheduler is None:
        scheduler = scheduler_address()
        argument = SCHEDULER_ENV if scheduler is not None else argument
    if scheduler is None:
        log.info("starting a local Dask cluster: 2 worker processes x 1 thread, loopback only")
        # Generous start-up timeouts: on a loaded 2-core machine importing PyMC in a fresh
        # worker can take longer than dask's 30 s default. RETROSIM_THREADS=1 keeps each
        # worker's model kernels on its one thread (the cluster already uses both cores).
        timeouts = {
            "distributed.comm.timeouts.connect": "180s",
            "distributed.comm.timeouts.tcp": "180s",
        }
        with dask.config.set(timeouts), _environ_kept():
            return Client(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                local_directory=tempfile.gettempdir(),
                env={"RETROSIM_THREADS": "1"},
                timeout="180s",
            )
    address = check_scheduler_address(scheduler, argument)
    try:
        return Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"no Dask scheduler answered at {address} within {timeout_s:g} s ({exc})",
            argument=argument,
        ) from None


@contextlib.contextmanager
def _environ_kept():
    """Restore ``os.environ`` on exit.

    A dask Nanny writes its ``pre-spawn-environ`` (``OMP_NUM_THREADS=1``, ...,
    ``PYTHONHASHSEED``) into the environment of the process that starts it, so that the worker
    processes inherit them. Without this, every subprocess this process starts afterwards would
    inherit them too (a notebook run, a paper build).
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


@contextlib.contextmanager
def using_client(scheduler=None):
    """Yield ``scheduler`` itself if it is already a Client, else a new one closed on exit."""
    from distributed import Client

    if isinstance(scheduler, Client):
        yield scheduler
        return
    client = get_client(scheduler)
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Many independent fits
# --------------------------------------------------------------------------------------------
def task_seeds(seed: int, n: int) -> list[int]:
    """Return ``n`` independent integer seeds derived from ``seed`` (``SeedSequence.spawn``).

    Seed ``i`` depends only on ``seed`` and ``i``, never on how tasks are scheduled.
    """
    if n < 0:
        raise InputError(f"number of tasks must be >= 0, got {n}", argument="n")
    children = np.random.SeedSequence(int(seed)).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def numerics_settings() -> dict:
    """The settings of this process that decide the bits of a fit's results.

    Returns
    -------
    dict
        ``"pytensor"``: the :data:`COMPILE_FLAGS` of this process, when PyTensor is imported
        (otherwise the workers' defaults apply, which a local cluster inherits through the
        environment); ``"blas_threads"``: the thread count of every loaded BLAS library (a dot
        product split over more threads sums in another order).

    Notes
    -----
    A dask worker starts with one BLAS thread (dask sets ``OPENBLAS_NUM_THREADS=1`` and
    friends) and a remote worker may have other ``PYTENSOR_FLAGS``, so :func:`map_tasks` runs
    every task under the settings of the submitting process.
    """
    settings = {"pytensor": {}, "blas_threads": {}}
    pytensor = sys.modules.get("pytensor")
    if pytensor is not None:
        settings["pytensor"] = {name: getattr(pytensor.config, name) for name in COMPILE_FLAGS}
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        settings["blas_threads"] = {
            lib["prefix"]: lib["num_threads"]
            for lib in threadpool_info()
            if lib["user_api"] == "blas"
        }
    return settings


def _run_with(settings: dict, pickled_func: bytes, item, **kwargs):
    """Apply ``settings`` (:func:`numerics_settings`) in this worker, then ``func(item)``.

    ``pickled_func`` is ``cloudpickle.dumps(func)``: pickled by the submitting process, so
    that a function of a repository script travels by value (see :func:`_ship_by_value`);
    dask would pickle an argument of this wrapper by reference. The settings stay in force
    after the task: the next task of the same run needs them too, and restoring them could
    change them under a task running in another thread.
    """
    import cloudpickle

    func = cloudpickle.loads(pickled_func)
    if settings["pytensor"]:
        import pytensor

        for name, value in settings["pytensor"].items():
            if getattr(pytensor.config, name) != value:
                setattr(pytensor.config, name, value)
    if settings["blas_threads"]:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings["blas_threads"])
    return func(item, **kwargs)


def _ship_by_value(func) -> None:
    """Let worker processes unpickle ``func`` defined in a script of this repository.

    Functions in ``studies/``, ``benchmarks/`` or ``tests/`` are imported by file path, so a
    worker could not import them by module name; cloudpickle then sends them by value.
    """
    import cloudpickle

    while isinstance(func, functools.partial):
        func = func.func
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    if module is None or path is None or module.__name__ == "__main__":
        return
    path = Path(path).resolve()
    if (
        SOURCE_ROOT is not None
        and path.is_relative_to(SOURCE_ROOT)
        and not path.is_relative_to(PACKAGE_DIR)
    ):
        with contextlib.suppress(ValueError):
            cloudpickle.register_pickle_by_value(module)


def map_tasks(
    func: Callable,
    items: Iterable,
    *,
    seed: int | None = None,
    scheduler=None,
    serial: bool = False,
) -> list:
    """Run ``func`` on every item as independent Dask tasks; return the results in item order.

    Parameters
    ----------
    func : callable
        A module-level function (picklable). Called as ``func(item)``, or as
        ``func(item, seed=s_i)`` when ``seed`` is given.
    items : iterable
        One entry per task: an SBC replicate's seed, a sensitivity setting, a trial file ...
    seed : int, optional
        Master seed. Task ``i`` receives ``task_seeds(seed, n)[i]``, so results do not depend
        on scheduling and equal the serial run's.
    scheduler : str or distributed.Client, optional
        Address of an existing scheduler (``tcp://host:port``) or a Client to reuse. Default:
        ``RETROSIM_SCHEDULER``, else a local 2-process cluster (see :func:`get_client`).
    serial : bool
        Run in this process with a plain loop (the reference the Dask run must equal).

    Returns
    -------
    list
        ``[func(item_0), func(item_1), ...]``. The first task exception is re-raised.

    Notes
    -----
    Every task runs under the PyTensor flags and BLAS thread counts of this process
    (:func:`numerics_settings`), so a worker compiles and computes as the serial run does. One
    thing this cannot make equal: PyTensor's numba backend compiles with LLVM fast-math flags
    by default (``pytensor.config.numba__fastmath``), which let LLVM reorder floating-point
    reductions such as the sum of a log-likelihood, and the order it picks differs between a
    model compiled afresh and one assembled from PyTensor's compile cache. Fits compiled with
    fast-math therefore differ in the last bits between a process that compiled the model and
    one that loaded it from the cache, and a sampler can amplify that (relative differences of
    1e-4 in the draws of a two-parameter nutpie fit). When results must be bit-identical to
    the serial run, compile without it:
    ``with pytensor.config.change_flags(numba__fastmath=False): map_tasks(...)`` (the flag is
    passed on to the workers).
    """
    items = list(items)
    seeds = task_seeds(seed, len(items)) if seed is not None else None

    def call_args(i):
        return {"seed": seeds[i]} if seeds is not None else {}

    if serial or not items:
        return [func(item, **call_args(i)) for i, item in enumerate(items)]
    import cloudpickle

    _ship_by_value(func)
    pickled_func = cloudpickle.dumps(func)
    name = getattr(func, "__name__", "task")
    settings = numerics_settings()
    t0 = time.perf_counter()
    with using_client(scheduler) as client:
        futures = [
            client.submit(
                _run_with,
                settings,
                pickled_func,
                item,
                key=f"retrosim-{name}-{i}-{os.getpid()}-{t0}",
                **call_args(i),
            )
            for i, item in enumerate(items)
        ]
        try:
            results = client.gather(futures)
        finally:
            client.cancel(futures)
    log.info("%d %s tasks done in %.1f s", len(items), name, time.perf_counter() - t0)
    return results


# --------------------------------------------------------------------------------------------
# Chunked grids
# --------------------------------------------------------------------------------------------
def _summarise(ds, dim: str, statistics: Sequence[str]):
    """Reduce ``dim`` of every variable that has it to ``statistics`` along a new dimension.

    Variables without ``dim`` are kept unchanged. ``sd`` uses ``ddof=1``.
    """
    import pandas as pd
    import xarray as xr

    names = [n for n, v in ds.data_vars.items() if dim in v.dims]
    reduced = ds[names]
    parts = []
    for stat in statistics:
        if stat == "mean":
            part = reduced.mean(dim, skipna=False, keep_attrs=True)
        elif stat == "sd":
            part = reduced.std(dim, ddof=1, skipna=False, keep_attrs=True)
        else:
            part = reduced.quantile(_QUANTILES[stat], dim=dim, skipna=False, keep_attrs=True)
            part = part.drop_vars("quantile")
        parts.append(part)
    out = xr.concat(parts, dim=pd.Index(list(statistics), name="statistic"))
    out = out.assign_coords(statistic=np.array(list(statistics), dtype=str))
    out["statistic"].attrs.update(
        units="1", long_name=f"summary over {dim} (mean; sd with ddof=1; qNN: NN % quantile)"
    )
    for name in names:
        out[name].attrs = dict(ds[name].attrs, reduced_over=dim)
    for name, var in ds.data_vars.items():
        if name not in names:
            out[name] = var
    out = out.drop_vars(
        [c for c in out.coords if dim in ds.coords.get(c, out[c]).dims], errors="ignore"
    )
    out.attrs = dict(ds.attrs)
    return out


def _conform(ds, layout, coords=None):
    """Give each variable of ``ds`` exactly the dimensions in ``layout`` (name -> dims).

    A model may keep a length-1 dimension it does not depend on when the block happens to
    have one value along it (squeezed here), or drop one it does not depend on within this
    block, e.g. a block holding only walking (broadcast back along ``coords``), so that every
    block matches the template.
    """
    import xarray as xr

    out = {}
    for name, dims in layout.items():
        var = ds[name]
        extra = [d for d in var.dims if d not in dims]
        if extra:
            var = var.squeeze(extra, drop=True)
        missing = {d: coords[d] for d in dims if d not in var.dims}
        if missing:
            var = var.expand_dims(missing).copy()
        out[name] = var.transpose(*dims)
    return xr.Dataset(out, attrs=dict(ds.attrs))


def _evaluate_block(skeleton, func, dims, layout, reduce, statistics):
    """map_blocks worker: evaluate ``func`` on this block's coordinates (and reduce)."""
    coords = {d: skeleton[d].values for d in dims}
    result = _conform(func(coords), layout, coords)
    if reduce is not None:
        result = _summarise(result, reduce, statistics)
    return result


def _chunk_sizes(coords, chunks, reduce):
    sizes = {d: len(v) for d, v in coords.items()}
    chunks = dict(chunks or {})
    unknown = set(chunks) - set(sizes)
    if unknown:
        raise InputError(
            f"chunks name dimensions {sorted(unknown)} that are not in the grid {list(sizes)}",
            argument="chunks",
        )
    out = {}
    for d, n in sizes.items():
        size = int(chunks.get(d, n) if chunks.get(d, -1) not in (-1, None) else n)
        if size < 1:
            raise InputError(f"chunk size for '{d}' must be >= 1, got {size}", argument="chunks")
        out[d] = min(size, n)
    if reduce is not None:
        if reduce not in sizes:
            raise InputError(
                f"cannot reduce over '{reduce}': not a grid dimension {list(sizes)}",
                argument="reduce",
            )
        if out[reduce] != sizes[reduce]:
            raise InputError(
                f"the reduced dimension '{reduce}' must be in one chunk "
                f"({sizes[reduce]}), got chunk size {out[reduce]}",
                argument="chunks",
            )
    return sizes, out


def evaluate_chunked(
    func: Callable[[Mapping[str, np.ndarray]], object],
    coords: Mapping[str, Sequence],
    *,
    chunks: Mapping[str, int] | None = None,
    reduce: str | None = None,
    statistics: Sequence[str] = ("mean", "sd"),
    out=None,
    scheduler=None,
    coord_attrs: Mapping[str, Mapping] | None = None,
    probe=None,
):
    """Evaluate ``func`` over the Cartesian grid ``coords`` block by block, lazily.

    The grid is never materialised: a dask skeleton (a broadcast view, zero bytes per block)
    carries the coordinates, ``xarray.map_blocks`` calls ``func`` on each block's coordinates,
    and the result is either returned lazily or streamed to ``out`` one block at a time.

    Parameters
    ----------
    func : callable
        Pure function ``func(block_coords) -> xarray.Dataset`` where ``block_coords`` maps each
        grid dimension to the 1-D numpy array of its coordinate values in this block, and the
        returned Dataset has (a subset of) the grid dimensions with exactly those coordinates.
        It must be picklable (module level, or a ``functools.partial`` of one) to run on a
        distributed cluster.
    coords : mapping
        Grid dimension -> 1-D coordinate values, in grid order.
    chunks : mapping, optional
        Dimension -> block length; missing dimensions are not split.
    reduce : str, optional
        A dimension (typically ``"draw"``) to reduce inside each block to ``statistics``; it
        must not be split. The output then has a ``statistic`` dimension instead.
    statistics : sequence of str
        Any of ``"mean"``, ``"sd"`` (ddof=1), ``"q05"``, ``"q50"``, ``"q95"``.
    out : str or Path, optional
        ``*.zarr`` (a directory store) or ``*.nc`` (NetCDF4 via h5netcdf). Written atomically:
        the store appears whole or not at all. When omitted, the lazy Dataset is returned.
    scheduler : str or distributed.Client, optional
        ``None``: the cluster at ``RETROSIM_SCHEDULER`` if set, else as ``"threads"``;
        ``"threads"``: dask's threaded scheduler in this process; ``"synchronous"``;
        ``"distributed"``: :func:`get_client` default; a ``tcp://`` address or a Client.
    coord_attrs : mapping, optional
        Attributes (``units``, ``long_name``) for grid coordinates; by default those of the
        coordinates returned by ``func``.
    probe : xarray.Dataset, optional
        ``func`` already evaluated on a sub-grid with, along every dimension, at least two
        values or all of them; it tells which dimensions each variable has. Default: ``func``
        on the first two values of every dimension.

    Returns
    -------
    xarray.Dataset or pathlib.Path
        The lazy Dataset (``out`` omitted) or the path written.
    """
    import dask.array as da
    import xarray as xr

    if reduce is not None:
        for stat in statistics:
            if stat not in STATISTICS:
                raise InputError(
                    f"unknown statistic {stat!r}; expected any of {', '.join(STATISTICS)}",
                    argument="statistics",
                )
    coords = {d: np.asarray(v) for d, v in coords.items()}
    for d, v in coords.items():
        if v.ndim != 1 or v.size == 0:
            raise InputError(
                f"grid coordinate '{d}' must be a non-empty 1-D array", argument="coords"
            )
    sizes, csize = _chunk_sizes(coords, chunks, reduce)
    dims = list(coords)

    # Probe a 2-point-per-dimension corner to learn variables, dimensions, dtypes, attributes.
    if probe is None:
        probe = func({d: v[:2] for d, v in coords.items()})
    layout = {
        n: tuple(d for d in v.dims if not (d in sizes and v.sizes[d] == 1 and sizes[d] > 1))
        for n, v in probe.data_vars.items()
    }
    probe = _conform(probe, layout).assign_coords(
        {c: probe[c] for c in probe.coords if c not in sizes}
    )
    if reduce is not None:
        probe = _summarise(probe, reduce, statistics)
    # Dimensions the output adds (e.g. "model", "statistic") come whole, from the probe.
    extra = {d: n for d, n in probe.sizes.items() if d not in sizes}
    all_sizes = {**sizes, **extra}
    all_chunks = {**csize, **extra}
    template_vars = {}
    for name, var in probe.data_vars.items():
        shape = tuple(all_sizes[d] for d in var.dims)
        chunk = tuple(all_chunks[d] for d in var.dims)
        template_vars[name] = xr.Variable(
            var.dims, da.empty(shape, chunks=chunk, dtype=var.dtype), attrs=dict(var.attrs)
        )
    used = {d for v in probe.data_vars.values() for d in v.dims}
    template_coords = {d: coords[d] for d in dims if d in used}
    template_coords.update({d: probe[d].values for d in extra if d in probe.coords})
    template = xr.Dataset(template_vars, coords=template_coords, attrs=dict(probe.attrs))
    for c in template.coords:
        attrs = (coord_attrs or {}).get(c) or (probe[c].attrs if c in probe.coords else {})
        template[c].attrs.update(attrs)

    shape = tuple(sizes[d] for d in dims)
    grid = da.broadcast_to(
        da.zeros((1,) * len(dims), dtype=bool, chunks=1),
        shape,
        chunks=tuple(csize[d] for d in dims),
    )
    skeleton = xr.Dataset({"_grid": (dims, grid)}, coords=coords)
    lazy = xr.map_blocks(
        _evaluate_block,
        skeleton,
        args=[func, dims, layout, reduce, tuple(statistics)],
        template=template,
    )
    n_blocks = int(np.prod([-(-sizes[d] // csize[d]) for d in dims]))
    lazy.attrs.update(
        chunked_grid_points=int(np.prod(shape)),
        chunked_blocks=n_blocks,
        chunked_reduce=reduce or "none",
    )
    if out is None:
        return lazy
    return _write(lazy, Path(out), scheduler)


@contextlib.contextmanager
def _dask_scheduler(scheduler):
    """Configure dask for ``scheduler`` (see :func:`evaluate_chunked`)."""
    import dask

    if scheduler is None and scheduler_address():
        scheduler = "distributed"  # get_client reads the address from the environment
    if scheduler in (None, "threads", "synchronous", "processes"):
        from retrosim import models

        # Blocks already run on one dask thread per core: keep the model's own element-wise
        # kernels serial meanwhile (no oversubscription), then restore their setting.
        previous = models.threads()
        if scheduler in (None, "threads"):
            models.set_threads(1)
        try:
            with dask.config.set(scheduler=scheduler or "threads"):
                yield
        finally:
            models.set_threads(previous)
        return
    with using_client(None if scheduler == "distributed" else scheduler) as client:
        with dask.config.set(scheduler=client.get):
            yield


def _write(ds, path: Path, scheduler) -> Path:
    """Stream ``ds`` to ``path`` (``.zarr`` or ``.nc``) block by block, atomically."""
    suffix = path.suffix.lower()
    if suffix not in (".zarr", ".nc"):
        raise InputError(
            f"output must end in .zarr or .nc, got {path.name!r}", argument="out", file=path
        )
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _dask_scheduler(scheduler):
        if suffix == ".nc":
            with atomic_path(path) as tmp:
                ds.to_netcdf(tmp, engine=NETCDF_ENGINE, compute=True)
        else:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
            try:
                with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec yet
                    warnings.filterwarnings("ignore", message="Consolidated metadata")
                    ds.to_zarr(tmp, mode="w", compute=True, consolidated=True)
                if path.exists():
                    shutil.rmtree(path)
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp)
    log.info("wrote %s in %.1f s", path, time.perf_counter() - t0)
    return path


# --------------------------------------------------------------------------------------------
# The model chain, chunked
# --------------------------------------------------------------------------------------------
#: Grid dimensions :func:`simulate_chunked` may split (the draws share one parameter set).
SPLITTABLE = ("speed", "mass", "direction", "mode", "grade")
#: Default block size [condition-draws]: a few hundred MB of model output per block.
BLOCK_POINTS = 2_000_000


def _generator(state: dict) -> np.random.Generator:
    """A Generator in exactly ``state`` (a ``bit_generator.state`` dict)."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _chain_block(coords, chain, params, rng_state, variables):
    """Evaluate ``chain`` on one block with the shared draws (module level: picklable)."""
    ds = chain.run(
        coords["speed"],
        coords["mass"],
        coords["direction"],
        coords["mode"],
        coords["grade"],
        params=params,
        seed=_generator(rng_state),
    )
    return ds[list(variables)] if variables else ds


def parse_chunks(text, option: str = "chunks") -> dict | None:
    """Parse ``"speed=10,mass=50"`` into ``{"speed": 10, "mass": 50}``; ``"auto"`` -> None."""
    text = "" if text is None else str(text).strip()
    if text in ("", "auto"):
        return None
    chunks = {}
    for part in text.split(","):
        name, _, size = part.partition("=")
        name = name.strip()
        try:
            n = int(size)
        except ValueError:
            n = 0
        if name not in SPLITTABLE or n < 1:
            raise InputError(
                f"expected 'auto' or dim=size pairs such as speed=10,mass=50 with dim one of "
                f"{', '.join(SPLITTABLE)} and size >= 1, got {part.strip()!r}",
                argument=option,
            )
        chunks[name] = n
    return chunks


def auto_chunks(sizes: Mapping[str, int], block_points: int = BLOCK_POINTS) -> dict:
    """Split speed, then mass, so a block holds about ``block_points`` condition-draws."""
    chunks = dict(sizes)
    for dim in ("speed", "mass", "grade"):
        total = int(np.prod(list(chunks.values())))
        if total <= block_points:
            break
        rest = total // chunks[dim]
        chunks[dim] = max(1, block_points // rest)
    return {d: chunks[d] for d in SPLITTABLE if d in chunks}


def simulate_chunked(
    speed_m_s,
    mass_kg,
    direction=("forward", "backward"),
    mode=("run",),
    grade=(0.0,),
    *,
    n_draws: int = 200,
    seed=0,
    chain=None,
    chunks: Mapping[str, int] | None = None,
    variables: Sequence[str] | None = None,
    reduce: str | None = None,
    statistics: Sequence[str] = ("mean", "sd"),
    out=None,
    scheduler=None,
):
    """:meth:`retrosim.models.chain.RetroChain.run` on a chunked grid, evaluated block by block.

    Same arguments and, when computed, the same values as ``chain.run(...)`` with the same
    ``n_draws`` and ``seed``: the parameter draws (and the random state the chain continues
    from, e.g. for the knee parameters) are drawn once and shared by every block.

    Parameters
    ----------
    speed_m_s, mass_kg, direction, mode, grade, n_draws, seed
        As :meth:`RetroChain.run` ([m/s], [kg], decimal grade).
    chain : RetroChain, optional
        The configured chain (models, posterior, knee ...); default
        ``RetroChain(posterior=calibration.shared_posterior())`` (the calibration posterior).
    chunks : mapping, optional
        Block length per dimension among ``speed, mass, direction, mode, grade``; the draw
        dimension is never split. Default: :func:`auto_chunks` (about 2·10⁶ condition-draws
        per block).
    variables : sequence of str, optional
        Keep only these output variables (less work in the reduction and on disk).
    reduce : {"draw"}, optional
        Reduce the draws inside each block to ``statistics`` (``mean``, ``sd``, ``q05``,
        ``q50``, ``q95``) so that the output is small whatever ``n_draws``.
    out : str or Path, optional
        ``*.zarr`` or ``*.nc`` to stream to; else the lazy Dataset is returned.
    scheduler : optional
        See :func:`evaluate_chunked` (default: ``RETROSIM_SCHEDULER`` if set, else threads in
        this process).

    Returns
    -------
    xarray.Dataset or pathlib.Path
        Lazy Dataset (dask-backed), or the path written.
    """
    from retrosim.models.chain import COORD_ATTRS, RetroChain

    if chain is None:
        from retrosim.bayes.calibration import shared_posterior

        chain = RetroChain(posterior=shared_posterior())
    if reduce not in (None, "draw"):
        raise InputError(f"only the draws can be reduced, got {reduce!r}", argument="reduce")
    n_draws = int(np.asarray(n_draws))
    if n_draws < 1:
        raise InputError(f"n_draws must be >= 1, got {n_draws}", argument="n_draws")
    coords = {
        "speed": np.atleast_1d(np.asarray(speed_m_s, dtype=float)),
        "mass": np.atleast_1d(np.asarray(mass_kg, dtype=float)),
        "direction": np.atleast_1d(np.asarray(direction, dtype=str)),
        "mode": np.atleast_1d(np.asarray(mode, dtype=str)),
        "grade": np.atleast_1d(np.asarray(grade, dtype=float)),
        "draw": np.arange(n_draws),
    }
    if chunks and "draw" in chunks and int(chunks["draw"]) < n_draws:
        raise InputError(
            "the draw dimension cannot be split (every block shares the parameter draws); "
            "split speed, mass, direction, mode or grade",
            argument="chunks",
        )
    sizes = {d: len(v) for d, v in coords.items()}
    chunks = {k: v for k, v in (chunks or auto_chunks(sizes)).items() if k != "draw"}

    rng = np.random.default_rng(seed)
    params = chain.parameters(n_draws, rng)
    state = rng.bit_generator.state
    # Validate every coordinate with the chain's own checks (two draws: cheap), and use the
    # full-speed pass as the structure probe and for the grid-wide attributes (validity
    # warnings depend on speed and mode). A second pass checks the masses when they are many.
    two = {k: (v[:2] if np.ndim(v) == 1 else v) for k, v in params.items()}
    probe_coords = {**coords, "draw": coords["draw"][:2]}
    if len(coords["mass"]) > 2 and len(coords["speed"]) * len(coords["mass"]) > 10_000:
        _chain_block({**probe_coords, "speed": coords["speed"][:2]}, chain, two, state, ())
        probe_coords["mass"] = coords["mass"][:2]
    full_speed = _chain_block(probe_coords, chain, two, state, ())
    if variables:
        missing = sorted(set(variables) - set(full_speed.data_vars))
        if missing:
            raise InputError(
                f"unknown variables {missing}; available: {', '.join(full_speed.data_vars)}",
                argument="variables",
            )
    func = functools.partial(
        _chain_block, chain=chain, params=params, rng_state=state, variables=tuple(variables or ())
    )
    lazy = evaluate_chunked(
        func,
        coords,
        chunks=chunks,
        reduce=reduce,
        statistics=statistics,
        coord_attrs={d: dict(units=u, long_name=n) for d, (u, n) in COORD_ATTRS.items()},
        probe=full_speed[list(variables)] if variables else full_speed,
    )
    lazy.attrs.update({k: v for k, v in full_speed.attrs.items() if not k.startswith("chunked")})
    lazy.attrs.update(n_draws=n_draws, seed=str(seed))
    if out is None:
        return lazy
    return _write(lazy, Path(out), scheduler)


def open_output(path):
    """Open a store written by :func:`evaluate_chunked` lazily (``.zarr`` or ``.nc``)."""
    import xarray as xr

    path = Path(path)
    if path.suffix.lower() == ".zarr":
        return xr.open_zarr(path)
    return xr.open_dataset(path, engine=NETCDF_ENGINE, chunks={})
