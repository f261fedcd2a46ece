"""Simulation-based calibration of the vote-counting model (retrosim.meta.votes), both designs.

Two designs: the EMG family's (its muscles, mode and sample sizes) and the training family's
(outcome classes, kinds of control and group sizes). Each replicate draws every parameter from
the stated priors, simulates each row's t statistic (a row effect around its cell's delta,
then a noncentral t), turns it into the class a two-sided test at 5 % reports (significantly
higher, no difference, significantly lower), fits the model with the sampler settings of the
real fits (NUTS, target acceptance 0.99) and ranks the true values among posterior draws
thinned to ``N_RANKS`` (Talts et al. 2018, arXiv:1804.06788). The model is compiled once per
design; replicates change only its data. The data are synthetic.

A rank test can fail because the sampler misses the posterior or because the simulated data
sets happen to be unusual. To tell the two apart, every replicate also computes the exact
posterior of the same data by importance sampling from the prior
(``retrosim.meta.votes.reference_posterior``, ``REFERENCE_DRAWS`` draws): its probability below
the true value is uniform for any correct likelihood, and the NUTS ranks should scatter around
it by the binomial noise of ``N_RANKS`` draws alone.

Writes ``results/sbc_votes/ranks_<design>.csv``, ``uniformity.csv``, ``rank_histograms.png``
and ``results/values/sbc_votes.json``.

Usage: ``python studies/sbc_votes.py [--n 200] [--draws 500] [--tune 500] [--design emg]``.
"""

from __future__ import annotations

import argparse
import sys

import _common

INPUTS = [
    "retrosim.meta.votes",
    "retrosim/data/literature/emg.csv",
    "retrosim/data/literature/training.csv",
]
OUTPUTS = [
    "results/sbc_votes/ranks_emg.csv",
    "results/sbc_votes/ranks_training.csv",
    "results/sbc_votes/uniformity.csv",
    "results/sbc_votes/rank_histograms.png",
    "results/values/sbc_votes.json",
]
TIMEOUT_S = 7200
DESIGNS = ("emg", "training")
#: Replicates per design, draws and tuning steps per chain, chains, ranks per replicate. The
#: 2 x 500 draws are thinned to 99 (every tenth draw: the replicates' bulk ESS is about a
#: quarter of the draws, so thinned draws are close to independent).
N_DEFAULT, DRAWS, TUNE, CHAINS, N_RANKS = 200, 500, 500, 2, 99
SEEDS = {"emg": 7000, "training": 9000}
#: Importance-sampling draws of the reference posterior per replicate.
REFERENCE_DRAWS = 40_000
#: The sampler matches the reference when its ranks scatter around the reference quantiles by
#: at most this multiple of the binomial noise of N_RANKS draws (mean absolute difference).
AGREEMENT_MAX = 1.5
#: Share of a uniform bin count inside the figure's grey band.
BAND = 0.99
#: A uniformity test below this p marks the vote model's calibration as not established.
ALARM_P = 0.01
TITLES = {"emg": "EMG", "training": "training"}


def _label(name, design):
    if name.startswith("delta["):
        cell = design.cells[int(name[6:-1])]
        return "delta " + cell.replace("_", " ")
    if name.startswith("mu[") and len(design.groups) > 1:
        return "mu " + design.groups[int(name[3:-1])].replace("_", " ")
    return name


def _plot(ranks, designs, n_ranks, path):
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import stats

    from retrosim._io import atomic_path

    ncol = 6
    panels = [(d, c) for d in DESIGNS if d in ranks
              for c in ranks[d].columns if c.startswith("rank_")]  # fmt: skip
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.0, 1.25 * nrow), sharey=True, squeeze=False)
    for ax, (d, col) in zip(axes.flat, panels, strict=False):
        n = len(ranks[d])
        bins = int(np.clip(n // 10, 5, 20))
        lo, hi = stats.binom.ppf([(1 - BAND) / 2, (1 + BAND) / 2], n, 1 / bins)
        ax.axhspan(lo, hi, color="0.85", lw=0)
        ax.hist(ranks[d][col], bins=bins, range=(0, n_ranks + 1), color="#0072B2",
                edgecolor="white")  # fmt: skip
        ax.set_title(f"{TITLES[d]}: {_label(col.removeprefix('rank_'), designs[d])}", fontsize=5.5)
        ax.set_xticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(f"SBC of the vote model (band: {100 * BAND:g} % of a uniform bin count)",
                 fontsize=8)  # fmt: skip
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def run_design(name, n, draws, tune):
    """Ranks of ``n`` replicates on design ``name`` and the design itself."""
    import pandas as pd

    from retrosim.bayes.sampling import compile_model
    from retrosim.meta import votes

    design = votes.emg_design() if name == "emg" else votes.training_design()
    base = votes.sbc_base(design)
    compiled = compile_model(votes.build_model(base))
    seeds = [SEEDS[name] + i for i in range(n)]
    kw = dict(draws=draws, tune=tune, chains=CHAINS, n_ranks=N_RANKS, compiled=compiled,
              reference_draws=REFERENCE_DRAWS)  # fmt: skip
    rows = [
        votes.run_sbc_replicate(base, s, **kw)
        for s in _common.progress(seeds, len(seeds), f"SBC replicates ({name})")
    ]
    return pd.DataFrame(rows), base


def _reference(ranks):
    """Uniformity of the reference quantiles and the ranks' scatter around them, per parameter."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    rows = []
    L = N_RANKS
    k = np.arange(L + 1)
    for col in [c for c in ranks.columns if c.startswith("ref_") and c != "ref_ess"]:
        name = col.removeprefix("ref_")
        q = ranks[col].to_numpy(float)
        u = (ranks[f"rank_{name}"].to_numpy(float) + 0.5) / (L + 1)
        # expected |u - q| if the ranks were Binomial(L, q): the scatter of exact draws
        pmf = stats.binom.pmf(k[None, :], L, q[:, None])
        noise = np.sum(pmf * np.abs((k[None, :] + 0.5) / (L + 1) - q[:, None]), axis=1)
        n_bins = int(np.clip(len(q) // 5, 2, 20))
        rows.append({
            "parameter": name,
            "ref_p_chi2": float(stats.chisquare(np.histogram(q, n_bins, (0, 1))[0]).pvalue),
            "ref_p_ks": float(stats.kstest(q, "uniform").pvalue),
            "ref_mean": float(q.mean()),
            "corr": float(np.corrcoef(q, u)[0, 1]),
            "agreement": float(np.mean(np.abs(u - q)) / np.mean(noise)),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _summary(ranks, uni, base, draws):
    ref = _reference(ranks)
    return {
        "ref_min_p": float(min(ref["ref_p_chi2"].min(), ref["ref_p_ks"].min())),
        "ref_calibrated": bool(min(ref["ref_p_chi2"].min(), ref["ref_p_ks"].min()) >= ALARM_P),
        "ref_min_corr": float(ref["corr"].min()),
        "ref_max_agreement": float(ref["agreement"].max()),
        "sampler_matches_reference": bool(ref["agreement"].max() <= AGREEMENT_MAX),
        "ref_median_ess": float(ranks["ref_ess"].median()),
        "ref_min_ess": float(ranks["ref_ess"].min()),
        "ref_draws": REFERENCE_DRAWS,
        "agreement_max": AGREEMENT_MAX,
        "n_replicates": len(ranks),
        "n_rows": base.n_rows,
        "n_cells": len(base.cells),
        "n_groups": len(base.groups),
        "n_parameters": len(uni),
        "calibrated": bool(min(uni["p_chi2"].min(), uni["p_ks"].min()) >= ALARM_P),
        "min_p_chi2": float(uni["p_chi2"].min()),
        "min_p_ks": float(uni["p_ks"].min()),
        "min_mean_rank": float(uni["mean_u"].min()),
        "max_mean_rank": float(uni["mean_u"].max()),
        "p_chi2": dict(zip(uni["parameter"], uni["p_chi2"], strict=True)),
        "p_ks": dict(zip(uni["parameter"], uni["p_ks"], strict=True)),
        "share_passed": float(ranks["passed"].mean()),
        "median_max_rhat": float(ranks["max_rhat"].median()),
        "median_min_ess_bulk": float(ranks["min_ess_bulk"].median()),
        "min_ess_bulk_per_rank": float(ranks["min_ess_bulk"].median() / N_RANKS),
        "total_divergences": int(ranks["divergences"].sum()),
        "thin": CHAINS * draws / N_RANKS,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=N_DEFAULT, help="simulated datasets per design")
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--tune", type=int, default=TUNE)
    ap.add_argument("--design", choices=DESIGNS, action="append",
                    help="design(s) to run (default: both)")  # fmt: skip
    args = ap.parse_args(argv)
    log = _common.setup("sbc_votes")
    import pandas as pd

    from retrosim._io import atomic_path
    from retrosim.meta.model import sbc_uniformity

    out = _common.RESULTS / "sbc_votes"
    out.mkdir(parents=True, exist_ok=True)
    ranks, designs, unis, values = {}, {}, [], {}
    for name in args.design or DESIGNS:
        ranks[name], designs[name] = run_design(name, args.n, args.draws, args.tune)
        with atomic_path(out / f"ranks_{name}.csv") as tmp:
            ranks[name].to_csv(tmp, index=False, float_format="%.6g")
        uni = sbc_uniformity(ranks[name])
        log.info("%s\n%s", name, uni.merge(_reference(ranks[name])).to_string(index=False))
        unis.append(uni.merge(_reference(ranks[name])).assign(design=name))
        values[name] = _summary(ranks[name], uni, designs[name], args.draws)
    with atomic_path(out / "uniformity.csv") as tmp:
        pd.concat(unis).to_csv(tmp, index=False, float_format="%.6g")
    _plot(ranks, designs, N_RANKS, out / "rank_histograms.png")
    _common.write_values(
        "sbc_votes",
        {
            **values,
            "designs": list(values),
            "draws_per_chain": args.draws,
            "tune": args.tune,
            "chains": CHAINS,
            "n_ranks": N_RANKS,
            "band_pct": 100 * BAND,
            "alarm_p": ALARM_P,
            "alarm_pct": 100 * ALARM_P,
            "calibrated": all(v["calibrated"] for v in values.values()),
            "n_parameters": sum(v["n_parameters"] for v in values.values()),
            "min_p_chi2": min(v["min_p_chi2"] for v in values.values()),
            "min_p_ks": min(v["min_p_ks"] for v in values.values()),
            "total_divergences": sum(v["total_divergences"] for v in values.values()),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
