"""Parameter-recovery coverage of the lab-trial model (:mod:`retrosim.trials.fit`).

Each replicate simulates a trial table from the model's own generative structure with known
parameters (:func:`retrosim.trials.fit.simulate_trials`, defaults: 12 participants x 2
directions x 4 speeds x 2 trials), fits it, and records whether the central 90 % posterior
interval of each parameter contains the truth. Across replicates the coverage should be near
0.90 (binomial standard error sqrt(0.9 x 0.1 / n)).

:func:`run_replicate` is self-contained (seed in, dict out) so it can be distributed. Each
replicate is a :class:`retrosim.trials.fit.TrialFit` with the gate off (its diagnostics are
recorded instead); to avoid recompiling the model for every replicate, the fits share one
``compile_cache``, so the model is compiled once per design and fed new data.

Run: ``.venv/bin/python studies/trial_coverage.py [n_replicates]`` -> writes
``results/trial_coverage.csv`` and ``results/trial_coverage.json``.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd

from retrosim._io import write_text
from retrosim.config import results_dir, scheduler_address
from retrosim.trials.fit import TrialFit, simulate_trials

log = logging.getLogger(__name__)

#: Parameters whose coverage is reported.
CHECKED = (
    "intercept",
    "beta_direction",
    "beta_speed",
    "beta_direction_speed",
    "beta_log_mass",
    "sigma_participant",
    "sigma_participant_direction",
    "sigma_trial",
)
PROB = 0.90
#: NUTS target acceptance of the replicates (the coverage results were computed with it;
#: :class:`retrosim.trials.fit.TrialFit` defaults to 0.95).
TARGET_ACCEPT = 0.9
#: Compiled models shared by the replicates of one process (see ``compile_cache``).
_COMPILED: dict = {}


def run_replicate(seed, *, n_participants=12, speeds_m_s=(2.0, 2.5, 3.0, 3.5), n_trials=2,
                  draws=1000, tune=1000, chains=4, target_accept=TARGET_ACCEPT) -> dict:  # fmt: skip
    """Simulate, fit and check interval coverage for one seed. Returns a flat dict."""
    t0 = time.perf_counter()
    df, truth = simulate_trials(n_participants=n_participants, speeds_m_s=speeds_m_s,
                                n_trials=n_trials, seed=seed)  # fmt: skip
    # the gate (on everything but the per-participant offsets u_*/v_*) is recorded, not applied
    fit = TrialFit("vo2_ml_kg_min", draws=draws, tune=tune, chains=chains, seed=int(seed),
                   gate="off", target_accept=target_accept,
                   compile_cache=_COMPILED).fit(df)  # fmt: skip
    diag = fit.diagnostics_
    post = fit.posterior_draws_
    # truth on the model's scale: the intercept is defined at the data's reference mass;
    # with beta_log_mass = 0 it equals the simulated one.
    out = {"seed": int(seed), "passed_gate": bool(diag.passed), "n_obs": fit.n_obs_,
           "form": "/".join(f[0] for f in fit.parameterization_.values()),
           "max_rhat": diag.max_rhat, "min_ess_bulk": diag.min_ess_bulk,
           "divergences": diag.n_divergences}  # fmt: skip
    lo_q, hi_q = (1 - PROB) / 2, 1 - (1 - PROB) / 2
    for name in CHECKED:
        x = post[name]
        lo, hi = np.quantile(x, [lo_q, hi_q])
        out[f"{name}_true"] = truth[name]
        out[f"{name}_median"] = float(np.median(x))
        out[f"{name}_covered"] = bool(lo <= truth[name] <= hi)
    out["seconds"] = time.perf_counter() - t0
    return out


def summarise(rows: pd.DataFrame) -> dict:
    """Coverage per parameter with its binomial standard error."""
    n = len(rows)
    res = {"n_replicates": n, "nominal": PROB,
           "gate_passed_fraction": float(rows["passed_gate"].mean())}  # fmt: skip
    for name in CHECKED:
        c = float(rows[f"{name}_covered"].mean())
        res[name] = {
            "coverage": c,
            "se": float(np.sqrt(PROB * (1 - PROB) / n)),
            "mean_bias": float((rows[f"{name}_median"] - rows[f"{name}_true"]).mean()),
        }
    return res  # fmt: skip


def main(n_replicates=100, first_seed=1000, scheduler="auto"):
    """Run the replicates (serially, or as Dask tasks) and write the coverage table.

    ``scheduler``: ``"auto"`` uses ``RETROSIM_SCHEDULER`` if set, else runs serially (on 2 cores
    serial nutpie already uses both cores and beat a local cluster, see benchmarks/bench_dask);
    ``"local"`` starts a 2-worker LocalCluster; ``"serial"``; or a ``tcp://host:port`` address.
    Results do not depend on the choice: each replicate's seed is its position + first_seed.
    """
    from retrosim.distributed import map_tasks

    seeds = [first_seed + i for i in range(n_replicates)]
    t0 = time.perf_counter()
    if scheduler == "auto":
        scheduler = "env" if scheduler_address() else "serial"
    if scheduler == "serial":
        rows = []
        for i, seed in enumerate(seeds):
            rows.append(run_replicate(seed))
            log.info("replicate %d/%d done (%.0f s so far)", i + 1, n_replicates,
                     time.perf_counter() - t0)  # fmt: skip
    else:
        address = None if scheduler in ("env", "local") else scheduler
        rows = map_tasks(run_replicate, seeds, scheduler=address)
    df = pd.DataFrame(rows).drop(columns="seconds")  # timings would make reruns differ
    summary = summarise(df)
    out = results_dir()
    write_text(out / "trial_coverage.csv", df.to_csv(index=False))
    write_text(out / "trial_coverage.json", json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=100, help="number of replicates")
    ap.add_argument("--seed", type=int, default=1000, help="first seed")
    ap.add_argument("--scheduler", default="auto", help="auto | serial | local | tcp://host:port")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(json.dumps(main(args.n, args.seed, args.scheduler), indent=2))
