"""Benchmark of ``retrosim ingest`` (:mod:`retrosim.ingest`).

``run()`` measures, on synthetic data from :mod:`retrosim.ingest.synthetic`:

* force throughput: samples per second of :func:`retrosim.ingest.force.step_measures`
  (checks, filter, baseline, contacts, per-step measures) on a 60 s, 1000 Hz running record,
  against a straightforward per-sample Python loop doing the same contact detection and
  per-step peak, impulse and 20-80 % loading rate after the same filter;
* breath throughput: breaths per second of the outlier rule plus the steady-state means of
  :mod:`retrosim.ingest.cart`, against a per-breath loop (rolling median by ``statistics``);
* the whole shipped example folder (``retrosim/data/examples/lab_raw``) with and without figures.

Ratios are baseline time / retrosim time in the same process. Nothing runs on import.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _loop_force(fz, rate, mass_kg, thr=30.0):
    """Per-sample loop: threshold state machine, peak, impulse, 20-80 % loading rate."""
    from retrosim.ingest.force import lowpass

    y = lowpass(fz, rate)
    steps, inside, start = [], False, 0
    for i in range(1, len(y)):
        if not inside and y[i] >= thr and y[i - 1] < thr:
            inside, start = True, i
        elif inside and y[i] < thr:
            inside = False
            peak, impulse = 0.0, 0.0
            for k in range(start, i):
                peak = max(peak, y[k])
                impulse += y[k] / rate
            t20 = t80 = None
            for k in range(start, i):
                if t20 is None and y[k] >= 0.2 * peak:
                    t20 = k
                if t80 is None and y[k] >= 0.8 * peak:
                    t80 = k
                    break
            lr = 0.6 * peak * rate / max(t80 - t20, 1)
            steps.append(((i - start) / rate, peak, impulse, lr))
    return steps


def _loop_cart(t, vo2, windows, half=4, k=4.0):
    """Per-breath loop: rolling median, robust scale, outlier test, window means."""
    n = len(vo2)
    rel = []
    for i in range(n):
        med = statistics.median(vo2[max(0, i - half) : i + half + 1])
        rel.append(vo2[i] / med - 1.0)
    s = 1.4826 * statistics.median(abs(r) for r in rel)
    keep = [abs(r) <= k * s for r in rel]
    means = []
    for a, b in windows:
        tot = cnt = 0
        for i in range(n):
            if a <= t[i] <= b and keep[i]:
                tot += vo2[i]
                cnt += 1
        means.append(tot / cnt)
    return means


def run() -> dict:
    from retrosim.config import DATA_DIR
    from retrosim.ingest import cart, force, process_folder, synthetic, write_results
    from retrosim.models import gait

    out = {}
    rng = np.random.default_rng(0)
    m, rate = 70.0, 1000.0
    g = gait.spring_mass_running(3.0, m)
    fz, _ = synthetic.simulate_vgrf(float(g["contact_time_s"]), float(g["flight_time_s"]), m,
                                    rate_hz=rate, duration_s=60.0, rng=rng, impact=0.45)  # fmt: skip
    fd = force.ForceData(fz, rate)
    t_ours, steps = _best(lambda: force.step_measures(fd, m))
    t_loop, loop = _best(lambda: _loop_force(fz, rate, m), repeat=1)
    out["force_samples"] = int(fz.size)
    out["force_contacts"] = len(steps)
    out["force_loop_contacts"] = len(loop)
    out["force_samples_per_s"] = round(fz.size / t_ours)
    out["force_loop_samples_per_s"] = round(fz.size / t_loop)
    out["force_speedup_vs_loop"] = round(t_loop / t_ours, 1)

    br = synthetic.simulate_breaths([300.0, 2500.0, 3000.0, 2600.0], [300.0] * 4,
                                    rer=[0.8, 0.88, 0.9, 0.88], rng=rng,
                                    breath_rate_min=(15.0, 35.0, 38.0, 35.0))  # fmt: skip
    c = cart.CartData(br["time_s"].to_numpy(), br["vo2_ml_min"].to_numpy(),
                      br["vco2_ml_min"].to_numpy(), np.full(len(br), np.nan),
                      np.arange(len(br)), "csv")  # fmt: skip
    windows = [(s * 300.0, s * 300.0 + 300.0) for s in range(4)]

    def ours():
        o = cart.flag_outliers(c.vo2_ml_min)
        return [cart.steady_state(c, a, b, outliers=o)["vo2_ml_min"] for a, b in windows]

    t_c, res = _best(ours)
    tl = c.time_s.tolist()
    vl = c.vo2_ml_min.tolist()
    t_cl, res_l = _best(lambda: _loop_cart(tl, vl, [(b - 120.0, b) for _, b in windows]), 1)
    out["cart_breaths"] = c.n_breaths
    out["cart_breaths_per_s"] = round(c.n_breaths / t_c)
    out["cart_loop_breaths_per_s"] = round(c.n_breaths / t_cl)
    out["cart_speedup_vs_loop"] = round(t_cl / t_c, 1)
    out["cart_max_rel_diff_vs_loop"] = float(np.max(np.abs(np.array(res) / res_l - 1)))

    example = DATA_DIR / "examples" / "lab_raw"
    for figs in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            from retrosim.ingest import IngestOptions

            t0 = time.perf_counter()
            r = process_folder(example, options=IngestOptions(figures=figs))
            write_results(r, Path(tmp) / "out")
            out[f"example_folder{'_with_figures' if figs else ''}_s"] = round(
                time.perf_counter() - t0, 2)  # fmt: skip
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
