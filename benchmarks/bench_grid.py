"""Throughput of the gait + energetics grid vs a per-condition Python loop (same process).

A *condition-draw* is one cell (speed, mass, direction, mode, grade, draw) with every gait
output and the energy outputs of all five energetics models. The vectorised path is
:func:`retrosim.chain.evaluate` (what RetroChain and the Dask helper use); the baseline
calls the same model functions once per condition-draw with scalar inputs. Peak memory is
measured with tracemalloc at three draw counts to show linear growth.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

GRID = {
    "speed": np.arange(1.0, 5.0001, 0.25),
    "mass": np.arange(50.0, 110.0001, 10.0),
    "direction": ["forward", "backward"],
    "mode": ["run", "walk"],
    "grade": np.array([0.0]),
}


def _params(n_draws, seed=0):
    from retrosim import calibration

    return calibration.prior_draws(n_draws, seed)


def _n_cells(n_draws):
    return int(np.prod([len(v) for v in GRID.values()])) * n_draws


def _vectorised(params, broadcast=False):
    from retrosim.chain import evaluate

    gait_out, energy = evaluate(GRID["speed"], GRID["mass"], GRID["direction"], GRID["mode"],
                                GRID["grade"], params)  # fmt: skip
    if broadcast:  # materialise every output on the full grid
        shape = energy["gross_kcal_km"].shape
        full = np.broadcast_shapes(shape, *(a.shape for a in energy.values()))
        for a in energy.values():
            np.ascontiguousarray(np.broadcast_to(a, full))
    return gait_out, energy


def _loop(params, n_cells):
    """Per-condition loop over the same functions, for the first ``n_cells`` cells."""
    from retrosim import energetics as en
    from retrosim import gait as ga
    from retrosim.chain import MODE_MODELS

    n_draws = len(params["kvert_ratio"])
    done = 0
    for v in GRID["speed"]:
        for m in GRID["mass"]:
            for d in GRID["direction"]:
                for md in GRID["mode"]:
                    for i in GRID["grade"]:
                        for k in range(n_draws):
                            p = {key: (val[k] if np.ndim(val) == 1 else val)
                                 for key, val in params.items()}  # fmt: skip
                            if md == "run":
                                g = ga.spring_mass_running(v, m, None, d, params=p, _check=False)
                            else:
                                g = ga.inverted_pendulum_walking(v, m, None, d, params=p,
                                                                 _check=False)  # fmt: skip
                            for model in MODE_MODELS[md]:
                                if model == "kram_taylor":
                                    vol = p["muscle_volume_ratio"] if d == "backward" else 1.0
                                    net = en._kram_taylor(g["contact_time_s"], v, vol, None, p)
                                else:
                                    net = en.forward_net_rate(model, v, md, i, params=p)
                                    net = net * en.direction_factor(v, md, d, p)
                                en.energy_outputs(net, v, m)
                            done += 1
                            if done >= n_cells:
                                return done
    return done


def _best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(n_draws=1000, loop_cells=300) -> dict:
    params = _params(n_draws)
    cells = _n_cells(n_draws)
    _vectorised(params)  # warm-up (coefficient cache, imports)
    t_vec = _best(lambda: _vectorised(params))
    t_full = _best(lambda: _vectorised(params, broadcast=True))
    t_loop = _best(lambda: _loop(params, loop_cells), repeat=1)
    loop_rate = loop_cells / t_loop

    from retrosim.chain import RetroChain

    chain = RetroChain(calibrated=False, knee=False)
    t_chain = _best(lambda: chain.run(GRID["speed"], GRID["mass"], GRID["direction"],
                                      GRID["mode"], GRID["grade"], params=params), repeat=2)  # fmt: skip

    peaks = {}
    for nd in (n_draws // 4, n_draws // 2, n_draws):
        p = _params(nd)
        tracemalloc.start()
        _vectorised(p)
        peaks[nd] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    per_cell = [peaks[nd] / _n_cells(nd) for nd in peaks]
    return {
        "grid_condition_draws": cells,
        "evaluate_s": t_vec,
        "condition_draws_per_s": cells / t_vec,
        "condition_draws_per_s_materialised": cells / t_full,
        "chain_run_condition_draws_per_s": cells / t_chain,
        "loop_condition_draws_per_s": loop_rate,
        "speedup_vs_loop": (cells / t_vec) / loop_rate,
        "peak_mem_mib": peaks[n_draws] / 2**20,
        "peak_bytes_per_condition_draw": f"{per_cell[0]:.0f}/{per_cell[1]:.0f}/{per_cell[2]:.0f}"
        f" at {'/'.join(map(str, peaks))} draws",
    }


if __name__ == "__main__":  # pragma: no cover
    for k, v in run().items():
        print(f"{k}: {v}")
