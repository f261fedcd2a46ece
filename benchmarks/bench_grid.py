"""Throughput of the model grid vs a per-condition Python loop (same process, same run).

A *condition-draw* is one cell (speed, mass, direction, mode, grade, draw) of the full grid.
Two workloads, each timed on 1 thread and on 2 threads (``retrosim.models.set_threads``; the machine has
2 cores), and each against a per-condition loop over the same public model functions with
scalar inputs, measured in the same run:

* ``energy``: :func:`retrosim.models.chain.evaluate`: every gait output and the energy outputs of all
  five energetics models (what RetroChain and the Dask helper call);
* ``chain``: ``RetroChain(knee=True).run``: the same plus every knee variable
  (``knee.from_gait``), assembled into the xarray Dataset (parameters passed in, so no
  calibration or sampling is timed).

What is materialised (reported as ``*_materialised_bytes_per_cd``): every output that depends
on body mass is a full array over its own dimensions including mass (energy per person: model x
the full grid; gait forces and stiffnesses and the mass-dependent knee variables: the full
grid). Per-kg outputs do not depend on mass and are stored without the mass axis, exactly as
in the returned Dataset; no output is left lazy. Nothing is materialised twice for the count.

Timing: each workload is repeated; ``best`` is the fastest repeat, ``median`` the typical one.
The machine is shared with other jobs: the load average before and after is reported, and
``cpu_s_per_call`` (process CPU time) shows the work apart from waiting for a core.
Peak traced memory (tracemalloc) at three draw counts shows growth with the grid.
"""

from __future__ import annotations

import os
import statistics
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
    from retrosim.models import priors

    return priors.prior_draws(n_draws, seed)


def _n_cells(n_draws):
    return int(np.prod([len(v) for v in GRID.values()])) * n_draws


def _args():
    return GRID["speed"], GRID["mass"], GRID["direction"], GRID["mode"], GRID["grade"]


def _energy(params):
    from retrosim.models.chain import evaluate

    return evaluate(*_args(), params)


def _chain(params):
    from retrosim.models.chain import RetroChain

    return RetroChain(knee=True).run(*_args(), params=params, seed=0)


def _loop(params, n_cells, knee_too=False):
    """Per-condition loop over the same functions, for the first ``n_cells`` cells."""
    from retrosim.models import energetics as en
    from retrosim.models import gait as ga
    from retrosim.models import knee
    from retrosim.models.chain import MODE_MODELS

    n_draws = len(params["dir_contact_time"])
    effects = {k: params[k] for k in knee.DIRECTION_EFFECTS}
    kparams = (knee.sample_parameters(n_draws, np.random.default_rng(0), effects=effects)
               if knee_too else None)  # fmt: skip
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
                                    vol = (en.running_volume_ratio(v, p)
                                           if d == "backward" else 1.0)  # fmt: skip
                                    net = en.kram_taylor(g["contact_time_s"], v,
                                                         volume_ratio=vol, params=p)  # fmt: skip
                                else:
                                    net = en.forward_net_rate(model, v, md, i, params=p)
                                    net = net * en.direction_factor(v, md, d, p)
                                en.energy_outputs(net, v, m)
                            if knee_too:
                                kp = {key: val[k] for key, val in kparams.items()}
                                knee.from_gait(g, mass_kg=m, direction=d, mode=md, speed_m_s=v,
                                               params=kp)  # fmt: skip
                            done += 1
                            if done >= n_cells:
                                return done
    return done


def _times(fn, repeat):
    wall, cpu = [], []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def _materialised_bytes(out):
    if isinstance(out, tuple):  # evaluate: (gait dict, energy dict)
        return sum(np.asarray(a).nbytes for part in out for a in part.values())
    return sum(v.nbytes for v in out.data_vars.values())  # Dataset (data variables)


def _peak_bytes(fn, draws):
    peaks = {}
    for nd in draws:
        p = _params(nd)
        tracemalloc.start()
        fn(p)
        peaks[nd] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peaks


def run(n_draws=1000, repeat=9, loop_cells=300) -> dict:
    from retrosim import models

    load_before = os.getloadavg()
    params = _params(n_draws)
    cells = _n_cells(n_draws)
    out = {"grid_condition_draws": cells, "grid": "17 speeds x 7 masses x 2 dir x 2 modes x "
           f"1 grade x {n_draws} draws"}  # fmt: skip
    for name, fn, knee_too in (("energy", _energy, False), ("chain", _chain, True)):
        out[f"{name}_materialised_bytes_per_cd"] = round(_materialised_bytes(fn(params)) / cells, 1)
        rates = {}
        for n_threads in (1, 2):
            models.set_threads(n_threads)
            fn(params)  # warm-up (imports, coefficient caches, thread pool)
            wall, cpu = _times(lambda fn=fn: fn(params), repeat)
            rates[n_threads] = cells / min(wall)
            out[f"{name}_{n_threads}thread_cd_per_s_best"] = cells / min(wall)
            out[f"{name}_{n_threads}thread_cd_per_s_median"] = cells / statistics.median(wall)
            out[f"{name}_{n_threads}thread_cpu_s_per_call"] = statistics.median(cpu)
        models.set_threads(None)
        t_loop = min(_times(lambda kt=knee_too: _loop(params, loop_cells, kt), 1)[0])
        loop_rate = loop_cells / t_loop
        out[f"{name}_loop_cd_per_s"] = loop_rate
        out[f"{name}_2thread_speedup_vs_loop"] = rates[2] / loop_rate
        peaks = _peak_bytes(fn, (n_draws // 4, n_draws // 2, n_draws))
        out[f"{name}_peak_mem_mib"] = peaks[n_draws] / 2**20
        out[f"{name}_peak_bytes_per_cd"] = (
            "/".join(f"{peaks[nd] / _n_cells(nd):.0f}" for nd in peaks)
            + f" at {'/'.join(map(str, peaks))} draws"
        )
    out["load_average_before_after"] = (
        f"{'/'.join(f'{x:.1f}' for x in load_before)} -> "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min) on {os.cpu_count()} CPUs"
    )
    return out


if __name__ == "__main__":  # pragma: no cover
    for k, v in run().items():
        print(f"{k}: {v}")
