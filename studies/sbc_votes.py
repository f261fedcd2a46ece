"""Simulation-based calibration of the vote-counting model (retrosim.meta.votes).

The design is the EMG family's (the muscles, modes and sample sizes of its usable rows). Each
replicate draws every parameter from the stated priors, simulates each row's t statistic (a
row effect around its cell's delta, then a noncentral t), turns it into the class a two-sided
test at 5 % reports (significantly higher, no difference, significantly lower), fits the model
and ranks the true values among thinned posterior draws (Talts et al. 2018, arXiv:1804.06788).
The model is compiled once; replicates change only its data. The data are synthetic.

Writes ``results/sbc_votes/ranks.csv``, ``uniformity.csv``, ``rank_histograms.png`` and
``results/values/sbc_votes.json``.

Usage: ``python studies/sbc_votes.py [--n 100] [--seed 7000] [--draws 400] [--tune 400]``.
"""

from __future__ import annotations

import argparse
import sys

import _common

INPUTS = ["retrosim.meta.votes", "retrosim/data/literature/emg.csv"]
OUTPUTS = [
    "results/sbc_votes/ranks.csv",
    "results/sbc_votes/uniformity.csv",
    "results/sbc_votes/rank_histograms.png",
    "results/values/sbc_votes.json",
]
TIMEOUT_S = 3600
ARGS = ["--n", "100"]
N_DEFAULT, SEED_DEFAULT, DRAWS, TUNE, N_RANKS = 100, 7000, 400, 400, 99
#: Share of a uniform bin count inside the figure's grey band.
BAND = 0.99
#: A uniformity test below this p marks the vote model's calibration as not established.
ALARM_P = 0.01


def _plot(ranks, n_ranks, path, design):
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import stats

    from retrosim._io import atomic_path

    cols = [c for c in ranks.columns if c.startswith("rank_")]
    n = len(ranks)
    bins = int(np.clip(n // 10, 5, 20))
    ncol = 4
    nrow = -(-len(cols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.0, 1.6 * nrow), sharey=True, squeeze=False)
    lo, hi = stats.binom.ppf([(1 - BAND) / 2, (1 + BAND) / 2], n, 1 / bins)
    for ax, col in zip(axes.flat, cols, strict=False):
        ax.axhspan(lo, hi, color="0.85", lw=0)
        ax.hist(ranks[col], bins=bins, range=(0, n_ranks + 1), color="#0072B2", edgecolor="white")
        name = col.removeprefix("rank_")
        if name.startswith("delta["):
            name = "delta " + design.cells[int(name[6:-1])].split(":")[0].replace("_", " ")
        ax.set_title(name, fontsize=7)
    for ax in list(axes.flat)[len(cols) :]:
        ax.set_visible(False)
    fig.suptitle(f"SBC of the vote model: {n} replicates (band: {100 * BAND:g} % of a uniform bin count)",
                 fontsize=8)  # fmt: skip
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=N_DEFAULT, help="number of simulated datasets")
    ap.add_argument("--seed", type=int, default=SEED_DEFAULT, help="replicate i uses seed + i")
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--tune", type=int, default=TUNE)
    args = ap.parse_args(argv)
    args.thin = 1
    log = _common.setup("sbc_votes")
    import pandas as pd

    from retrosim._io import atomic_path
    from retrosim.bayes.sampling import compile_model
    from retrosim.meta import votes
    from retrosim.meta.model import sbc_uniformity

    base = votes.sbc_base(votes.emg_design())
    compiled = compile_model(votes.build_model(base))
    out = _common.RESULTS / "sbc_votes"
    out.mkdir(parents=True, exist_ok=True)
    seeds = [args.seed + i for i in range(args.n)]
    rows = [
        votes.run_sbc_replicate(
            base, s, draws=args.draws, tune=args.tune, n_ranks=N_RANKS, compiled=compiled
        )
        for s in _common.progress(seeds, len(seeds), "SBC replicates")
    ]
    ranks = pd.DataFrame(rows)
    with atomic_path(out / "ranks.csv") as tmp:
        ranks.to_csv(tmp, index=False, float_format="%.6g")
    uni = sbc_uniformity(ranks)
    with atomic_path(out / "uniformity.csv") as tmp:
        uni.to_csv(tmp, index=False, float_format="%.6g")
    log.info("\n%s", uni.to_string(index=False))
    _plot(ranks, N_RANKS, out / "rank_histograms.png", base)
    _common.write_values(
        "sbc_votes",
        {
            "n_replicates": len(ranks),
            "draws_per_chain": args.draws,
            "tune": args.tune,
            "n_ranks": N_RANKS,
            "band_pct": 100 * BAND,
            "alarm_p": ALARM_P,
            "alarm_pct": 100 * ALARM_P,
            "calibrated": bool(min(uni["p_chi2"].min(), uni["p_ks"].min()) >= ALARM_P),
            "min_mean_rank": float(uni["mean_u"].min()),
            "max_mean_rank": float(uni["mean_u"].max()),
            "n_rows": base.n_rows,
            "n_cells": len(base.cells),
            "n_parameters": len(uni),
            "min_p_chi2": float(uni["p_chi2"].min()),
            "min_p_ks": float(uni["p_ks"].min()),
            "p_chi2": dict(zip(uni["parameter"], uni["p_chi2"], strict=True)),
            "p_ks": dict(zip(uni["parameter"], uni["p_ks"], strict=True)),
            "share_passed": float(ranks["passed"].mean()),
            "median_max_rhat": float(ranks["max_rhat"].median()),
            "median_min_ess_bulk": float(ranks["min_ess_bulk"].median()),
            "total_divergences": int(ranks["divergences"].sum()),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
