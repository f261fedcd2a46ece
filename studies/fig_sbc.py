"""Figure: SBC rank histograms of the meta-analysis model, from studies/sbc_meta.py's ranks."""

from __future__ import annotations

import _common
import numpy as np

INPUTS = ["results/sbc/ranks.csv", "results/sbc/uniformity.csv"]
OUTPUTS = ["results/figures/sbc_ranks.png", "results/values/fig_sbc.json"]

#: Labels of the meta-analysis parameters (retrosim.meta.model.SBC_PARAMS).
LABELS = {"alpha": "α (mean effect)", "b_speed": "β (speed)", "tau_study": "τ (studies)",
          "tau_cond": "ω (conditions)", "r": "r (correlation)"}  # fmt: skip
BAND = 0.99
#: A chi-square p-value below this flags a non-uniform rank histogram.
P_FLAG = 0.01


def main() -> None:
    _common.setup("fig_sbc")
    import matplotlib.pyplot as plt
    import pandas as pd
    from scipy import stats

    ranks = pd.read_csv(_common.RESULTS / "sbc" / "ranks.csv")
    uni = pd.read_csv(_common.RESULTS / "sbc" / "uniformity.csv").set_index("parameter")
    params = [c.removeprefix("rank_") for c in ranks.columns if c.startswith("rank_")]
    n, n_ranks = len(ranks), int(ranks["n_ranks"].iloc[0])
    bins = int(np.clip(n // 10, 5, 20))
    lo, hi = stats.binom.ppf([(1 - BAND) / 2, 1 - (1 - BAND) / 2], n, 1 / bins)
    fig, axes = plt.subplots(1, len(params), figsize=(6.7, 1.9), sharey=True)
    for ax, name in zip(axes, params, strict=True):
        ax.axhspan(lo, hi, color="0.88", lw=0)
        ax.axhline(n / bins, color="0.45", lw=0.7)
        ax.hist(
            ranks[f"rank_{name}"],
            bins=bins,
            range=(0, n_ranks + 1),
            color="#0072B2",
            edgecolor="white",
            lw=0.4,
        )
        ax.set_title(f"{LABELS.get(name, name)}\np = {uni.loc[name, 'p_chi2']:.2f}", fontsize=7.5)
        ax.set_xticks([0, n_ranks])
        ax.grid(False)
    axes[0].set_ylabel("replicates")
    fig.supxlabel("rank of the true value among the posterior draws", fontsize=7.5)
    fig.tight_layout()
    _common.savefig(fig, "sbc_ranks")
    _common.write_values(
        "fig_sbc",
        {
            "bins": bins,
            "band_pct": 100 * BAND,
            "n_params": len(params),
            "p_flag": P_FLAG,
            "n_flagged": int((uni["p_chi2"] < P_FLAG).sum()),
        },
    )


if __name__ == "__main__":
    main()
