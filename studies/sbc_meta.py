"""Simulation-based calibration of the meta-analysis model (>= 200 simulated datasets).

Each replicate draws every parameter and a dataset from the model's prior on the fixed SBC
design (10 synthetic studies x 2 speeds, paired; ``retrosim.meta.model.sbc_design``), fits the
model with nutpie and ranks the true value among the thinned posterior draws
(``retrosim.meta.model.run_sbc_replicate``). Under a correct sampler and model the ranks are
uniform (Talts et al. 2018, arXiv:1804.06788). Replicates are independent tasks of one
argument (the seed); ``--scheduler`` runs them as Dask tasks (``retrosim.distributed.map_tasks``)
with results identical to the serial loop.

Writes ``results/sbc/ranks.csv`` (one row per replicate), ``results/sbc/uniformity.csv``
(chi-square and KS tests per parameter), ``results/sbc/rank_histograms.png`` and
``results/values/sbc_meta.json``.

Usage: ``python studies/sbc_meta.py [--n 200] [--seed 1000] [--draws 400] [--tune 200] [--thin 4]``
(2 chains per fit; few draws per fit keep the 200 fits to minutes.)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import _common
import numpy as np

INPUTS = ["retrosim.meta.model"]
OUTPUTS = [
    "results/sbc/ranks.csv",
    "results/sbc/uniformity.csv",
    "results/sbc/rank_histograms.png",
    "results/values/sbc_meta.json",
]
TIMEOUT_S = 3000

N_DEFAULT, SEED_DEFAULT = 200, 1000
DRAWS, TUNE, THIN = 400, 200, 4


def plot(ranks, n_ranks, path, *, title="SBC of the meta-analysis model"):
    import matplotlib.pyplot as plt
    from scipy import stats

    from retrosim._io import atomic_path
    from retrosim.meta.model import SBC_PARAMS

    n = len(ranks)
    bins = int(np.clip(n // 10, 5, 20))
    fig, axes = plt.subplots(1, len(SBC_PARAMS), figsize=(3.0 * len(SBC_PARAMS), 2.8), sharey=True)
    expected = n / bins
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
    for ax, name in zip(axes, SBC_PARAMS, strict=True):
        ax.axhspan(lo, hi, color="0.85", lw=0)
        ax.axhline(expected, color="0.4", lw=0.8)
        ax.hist(
            ranks[f"rank_{name}"],
            bins=bins,
            range=(0, n_ranks + 1),
            color="#0072B2",
            edgecolor="white",
        )
        ax.set_title(name)
        ax.set_xlabel(f"rank (0-{n_ranks})")
    axes[0].set_ylabel("replicates")
    fig.suptitle(f"{title}: {n} replicates (band: 99 % of a uniform bin count)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_outputs(ranks, out, name, args, log, *, title=None, extra=None):
    """Ranks, uniformity tests, rank histograms and the paper's values of one SBC run (shared
    with ``studies/sbc_directions.py``)."""
    from retrosim._io import atomic_path
    from retrosim.meta.model import sbc_uniformity

    with atomic_path(out / "ranks.csv") as tmp:
        ranks.to_csv(tmp, index=False, float_format="%.6g")
    uni = sbc_uniformity(ranks)
    with atomic_path(out / "uniformity.csv") as tmp:
        uni.to_csv(tmp, index=False, float_format="%.6g")
    n_ranks = int(ranks["n_ranks"].iloc[0])
    kw = {} if title is None else {"title": title}
    plot(ranks, n_ranks, out / "rank_histograms.png", **kw)
    log.info("\n%s", uni.to_string(index=False))
    _common.write_values(
        name,
        {
            "n_replicates": len(ranks),
            "draws_per_chain": args.draws,
            "n_ranks": n_ranks,
            "min_p_chi2": float(uni["p_chi2"].min()),
            "min_p_ks": float(uni["p_ks"].min()),
            "p_chi2": dict(zip(uni["parameter"], uni["p_chi2"], strict=True)),
            "p_ks": dict(zip(uni["parameter"], uni["p_ks"], strict=True)),
            "thin": args.thin,
            "median_min_ess_bulk": float(ranks["min_ess_bulk"].median()),
            "median_max_rhat": float(ranks["max_rhat"].median()),
            "total_divergences": int(ranks["divergences"].sum()),
            **(extra or {}),
        },
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=N_DEFAULT, help="number of simulated datasets")
    ap.add_argument(
        "--seed", type=int, default=SEED_DEFAULT, help="first seed (replicate i uses seed + i)"
    )
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--tune", type=int, default=TUNE)
    ap.add_argument("--thin", type=int, default=THIN, help="keep every THIN-th draw for the ranks")
    ap.add_argument(
        "--scheduler",
        default="auto",
        help="auto (RETROSIM_SCHEDULER if set, else serial) | serial | local | tcp://host:port",
    )
    args = ap.parse_args(argv)
    log = _common.setup("sbc_meta")
    import pandas as pd

    from retrosim.meta.model import run_sbc_replicate

    out = _common.RESULTS / "sbc"
    out.mkdir(parents=True, exist_ok=True)
    seeds = [args.seed + i for i in range(args.n)]
    replicate = functools.partial(
        run_sbc_replicate, draws=args.draws, tune=args.tune, thin=args.thin
    )
    scheduler = args.scheduler
    if scheduler == "auto":
        # On 2 cores serial nutpie already uses both cores and beat a local cluster
        # (benchmarks/bench_dask); a cluster pays off with more workers.
        scheduler = "env" if os.environ.get("RETROSIM_SCHEDULER") else "serial"
    if scheduler == "serial":
        rows = [replicate(s) for s in _common.progress(seeds, len(seeds), "SBC replicates")]
    else:
        from retrosim.distributed import map_tasks

        address = None if scheduler in ("env", "local") else scheduler
        rows = map_tasks(replicate, seeds, scheduler=address)
    ranks = pd.DataFrame(rows)
    bad_fits = int(((ranks["max_rhat"] > 1.05) | (ranks["divergences"] > 0)).sum())
    write_outputs(
        ranks,
        out,
        "sbc_meta",
        args,
        log,
        extra={"fits_with_rhat_gt_1.05_or_divergences": bad_fits},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
