"""Benchmark of the lab-trial fit (:func:`retrosim.fit_trials`).

``run()`` times, with the default sampler settings (nutpie, 4 chains x 1000 draws after 1000
tuning steps) and including validation, model compilation, sampling, posterior predictive
checks and LOO:

* the reference design of the issue: 40 participants x 2 directions x 5 speeds x 3 trials
  (1,200 rows), goal < 60 s on 2 cores;
* a 100,000-row fit (200 participants x 2 x 5 x 50 trials; LOO is skipped above
  :data:`retrosim.trials.fit.LOO_MAX_VALUES` log-likelihood values);
* time against rows (1,200 / 6,000 / 24,000 / 100,000), reported as seconds and as the ratio
  to the 1,200-row fit measured in the same run.

Wall seconds (``_s``) and process CPU seconds of all threads (``_cpu_s``) are both given:
on a shared machine the wall time mostly measures the other load. The first fit also pays
the one-off imports of PyMC/nutpie (the measured goal includes them, as a fresh
``retrosim fit`` does). Nothing runs on import.
"""

from __future__ import annotations

import time

SPEEDS_M_S = (2.0, 2.5, 3.0, 3.5, 4.0)
#: (participants, trials per condition) -> rows = participants x 2 x 5 x trials
SIZES = ((40, 3), (60, 10), (120, 20), (200, 50))


def _fit_seconds(n_participants, n_trials, seed=0):
    from retrosim.trials.fit import fit_trials, simulate_trials

    df, _ = simulate_trials(n_participants=n_participants, speeds_m_s=SPEEDS_M_S,
                            n_trials=n_trials, seed=seed)  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    fit = fit_trials(df, "vo2_ml_kg_min", seed=seed, gate="warn")
    return len(df), time.perf_counter() - t0, time.process_time() - c0, fit


def run() -> dict:
    out = {}
    base = None
    for n_part, n_trials in SIZES:
        rows, seconds, cpu, fit = _fit_seconds(n_part, n_trials)
        out[f"fit_{rows}_rows_s"] = round(seconds, 2)
        out[f"fit_{rows}_rows_cpu_s"] = round(cpu, 2)
        out[f"fit_{rows}_rows_gate_passed"] = int(fit.diagnostics_.passed)
        out[f"fit_{rows}_rows_min_ess_bulk"] = round(fit.diagnostics_.min_ess_bulk)
        if base is None:
            base = seconds
            out["fit_1200_rows_goal_s"] = 60
        else:
            out[f"fit_{rows}_rows_vs_1200"] = round(seconds / base, 2)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
