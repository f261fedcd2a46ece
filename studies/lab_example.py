"""The lab-data example: fit the hierarchical trial model to the synthetic example file.

Recovers the known truth of ``retrosim/data/examples/synthetic_trials.csv`` (written with its true
parameters by studies/make_synthetic_trials.py), compares with statsmodels MixedLM, and plots
the backward/forward ratio by speed, population and per participant, against the truth.
"""

from __future__ import annotations

import json

import _common
import numpy as np

INPUTS = [
    "retrosim/data/examples/synthetic_trials.csv",
    "retrosim/data/examples/synthetic_trials_truth.json",
    "results/trial_coverage.json",
    "retrosim.trials.fit",
]
OUTPUTS = ["results/figures/lab_example.png", "results/values/lab_example.json"]

SEED = 20261121
OUTCOME = "vo2_ml_kg_min"


def main() -> None:
    log = _common.setup("lab_example")
    import matplotlib.pyplot as plt
    import pandas as pd

    from retrosim.trials import fit as trials

    path = _common.DATA / "examples" / "synthetic_trials.csv"
    truth = json.loads((_common.DATA / "examples" / "synthetic_trials_truth.json").read_text())
    data = pd.read_csv(path)
    log.info("fitting %d trials of %d participants", len(data), data["participant_id"].nunique())
    fit = trials.fit_trials(
        data, outcome=OUTCOME, draws=1000, tune=1000, chains=4, seed=SEED, gate="warn"
    )
    log.info("%s", fit.diagnostics_)
    ratio = fit.ratio_
    speed_col, med_col, lo_col, hi_col = "speed_m_s", "ratio_median", "ratio_q5", "ratio_q95"
    true_ratio = {float(k): v for k, v in truth["true_ratio_by_speed"].items()}

    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    pr = fit.participant_ratio_
    pspeed, pmed, pid = "speed_m_s", "ratio_median", "participant_id"
    for _, g in pr.groupby(pid):
        ax.plot(g[pspeed], 100 * (g[pmed] - 1), color="0.75", lw=0.7)
    x = ratio[speed_col].to_numpy()
    ax.fill_between(
        x, 100 * (ratio[lo_col] - 1), 100 * (ratio[hi_col] - 1), color="#D55E00", alpha=0.25, lw=0
    )
    ax.plot(x, 100 * (ratio[med_col] - 1), color="#D55E00", lw=1.8, label="population (posterior)")
    ts = np.array(sorted(true_ratio))
    ax.plot(ts, 100 * (np.array([true_ratio[s] for s in ts]) - 1), "k--", lw=1.0, label="truth")
    ax.plot([], [], color="0.75", lw=0.7, label="participants")
    ax.set_xlabel("speed (m/s)")
    ax.set_ylabel("backward vs forward VO2 (%)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    _common.savefig(fig, "lab_example")

    inside = [
        float(r[lo_col] <= true_ratio.get(float(r[speed_col]), np.nan) <= r[hi_col])
        for _, r in ratio.iterrows()
        if float(r[speed_col]) in true_ratio
    ]
    coef = fit.summary().to_dataframe()
    mixed = trials.mixedlm_crosscheck(data, outcome=OUTCOME)
    bd = coef.loc["beta_direction"]
    med = "median"
    values = {
        "n_rows": len(data),
        "n_participants": int(data["participant_id"].nunique()),
        "speeds": sorted(float(s) for s in data["speed_m_s"].unique()),
        "converged": bool(fit.diagnostics_.passed),
        "true_ratio_ref_pct": 100 * (np.exp(truth["beta_direction"]) - 1),
        "speed_ref": float(truth["speed_ref_m_s"]),
        "beta_direction_pct": 100 * (np.exp(float(bd[med])) - 1),
        "mixedlm_beta_direction_pct": 100
        * (np.exp(float(mixed.loc["beta_direction", "estimate"])) - 1),
        "n_speeds_covered": int(sum(inside)),
        "n_speeds": len(inside),
        "interval_pct": 90,  # ratio_q5 to ratio_q95 of TrialFit.ratio_
    }
    log.info(
        "direction effect %.1f %% (truth %.1f %%)",
        values["beta_direction_pct"],
        values["true_ratio_ref_pct"],
    )
    cov = json.loads((_common.RESULTS / "trial_coverage.json").read_text())
    per_param = [v["coverage"] for v in cov.values() if isinstance(v, dict)]
    values["coverage"] = {
        "n_replicates": cov["n_replicates"],
        "nominal_pct": 100 * cov["nominal"],
        "beta_direction_pct": 100 * cov["beta_direction"]["coverage"],
        "min_pct": 100 * min(per_param),
        "max_pct": 100 * max(per_param),
        "se_pct": 100 * cov["beta_direction"]["se"],
        "gate_passed_pct": 100 * cov["gate_passed_fraction"],
    }
    _common.write_values("lab_example", values)


if __name__ == "__main__":
    main()
