"""Element-wise numpy operations on large grids, optionally split over threads.

The grid outputs that carry the body-mass axis are one broadcast product each (a per-kg
array on the reduced grid times mass); their cost is writing memory (mostly first-touch page
faults). :func:`binary` computes ``ufunc(a, b)`` into one output array cut into blocks along an
outer axis; the calling thread and a small shared pool of helper threads take blocks from a
common queue (numpy releases the GIL inside ufunc loops, so no compiled code is needed). The
caller never waits for a helper that has not started a block, so on a machine where the
helpers get no core the call costs about what the serial one does. Every element is produced
by the same numpy ufunc on the same operands as ``ufunc(a, b)``, so results are bitwise
identical to the serial call.

The number of threads is :func:`retrosim.config.threads` (``RETROSIM_THREADS``; its docstring
gives the default, serial, and the measurement behind it) unless :func:`set_threads` overrides
it; one thread is the plain serial numpy path.

Small outputs (fewer than :data:`MIN_PARALLEL_SIZE` elements) always take the serial path.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from retrosim import config

#: Outputs smaller than this (elements) are computed serially (thread hand-off costs more).
MIN_PARALLEL_SIZE = 1 << 17

_lock = threading.Lock()
_state = {"threads": None, "pool": None}


def threads() -> int:
    """Number of threads :func:`binary` uses: :func:`set_threads`, else :func:`retrosim.config.threads`."""
    if _state["threads"] is None:
        _state["threads"] = config.threads()
    return _state["threads"]


def set_threads(n: int | None) -> None:
    """Use ``n`` threads (1: serial numpy); ``None`` restores the default."""
    with _lock:
        _state["threads"] = None if n is None else max(1, int(n))
        pool, _state["pool"] = _state["pool"], None
    if pool is not None:
        pool.shutdown(wait=False)


def _pool(n):
    with _lock:
        pool = _state["pool"]
        if pool is None or pool._max_workers != n:
            if pool is not None:
                pool.shutdown(wait=False)
            pool = _state["pool"] = ThreadPoolExecutor(n, thread_name_prefix="retrosim")
        return pool


def _forget_pool_after_fork():  # a forked child has none of the parent's threads
    _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def binary(ufunc, a, b):
    """``ufunc(a, b)`` with broadcasting, computed block-wise on :func:`threads` threads.

    Parameters
    ----------
    ufunc : numpy.ufunc
        A binary ufunc, e.g. ``np.multiply``.
    a, b : array_like
        Operands (broadcast together as by ``ufunc(a, b)``).

    Returns
    -------
    numpy.ndarray
        A new C-ordered array, identical to ``ufunc(a, b)``.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    shape = np.broadcast_shapes(a.shape, b.shape)
    n = threads()
    size = int(np.prod(shape, dtype=np.int64))
    if n == 1 or size < MIN_PARALLEL_SIZE or not shape:
        return ufunc(a, b)
    # cut the outermost axis of length > 1 into (up to 4 per thread) blocks: each block is
    # then one contiguous piece of ``out``, so threads rarely fault in the same memory page
    axis = next((k for k, s in enumerate(shape) if s > 1), None)
    if axis is None:
        return ufunc(a, b)
    length = shape[axis]
    out = np.empty(shape, dtype=np.result_type(a, b))
    full_a = np.broadcast_to(a, shape)
    full_b = np.broadcast_to(b, shape)
    edges = np.linspace(0, length, min(length, 4 * n) + 1).astype(int)
    lead = (slice(None),) * axis
    n_blocks = len(edges) - 1
    todo = iter(range(n_blocks))  # shared queue of blocks: whoever is running takes the next
    lock = threading.Lock()
    finished = threading.Event()
    state = {"done": 0, "error": None}

    def work():
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            sl = (*lead, slice(edges[k], edges[k + 1]))
            try:
                ufunc(full_a[sl], full_b[sl], out=out[sl])
            except BaseException as err:  # pragma: no cover - e.g. MemoryError
                state["error"] = err
            with lock:
                state["done"] += 1
                if state["done"] == n_blocks:
                    finished.set()

    # The calling thread works too and waits only for blocks already taken: on a busy
    # machine where the helper threads get no core, it simply does every block itself.
    pool = _pool(n - 1)
    for _ in range(n - 1):
        pool.submit(work)
    work()
    finished.wait()
    if state["error"] is not None:  # pragma: no cover
        raise state["error"]
    return out


def multiply(a, b):
    """``a * b`` (see :func:`binary`)."""
    return binary(np.multiply, a, b)


def divide(a, b):
    """``a / b`` (see :func:`binary`)."""
    return binary(np.true_divide, a, b)
