"""Which muscles work harder backward, does backward training carry over, how long is the
learning phase: the vote-counting model (retrosim.meta.votes) on the EMG and training evidence.

Fits the EMG model (per-muscle standardised effect delta, backward minus forward, partially
pooled across muscles within a mode) and the training model (delta of training vs control per
outcome class and control kind), checks their convergence gate and prior predictive, and judges
the direction-only claims of the registry (retrosim.meta.claims.VOTE_CLAIMS) with their article
sources.

Writes ``results/tables/muscles_training.csv`` (one verdict row per claim x reading x muscle,
with the article files and quotes), ``results/tables/muscles_training_paper.csv`` (the paper's
table), ``results/tables/vote_excluded.csv`` (rows left out and why),
``results/figures/muscles_training.png`` and ``results/values/muscles_training.json``.
"""

from __future__ import annotations

import _common
import numpy as np

INPUTS = [
    "retrosim/data/literature",
    "retrosim/data/claims",
    "retrosim.meta.votes",
    "retrosim.meta.claims",
    "retrosim.evidence.tables",
]
OUTPUTS = [
    "results/tables/muscles_training.csv",
    "results/tables/muscles_training_paper.csv",
    "results/tables/vote_excluded.csv",
    "results/figures/muscles_training.png",
    "results/values/muscles_training.json",
]
TIMEOUT_S = 1800
SEED = 20261217
DRAWS, TUNE, CHAINS = 2000, 1000, 4  # draws as retrosim.meta.votes.VOTE_DRAWS


def _figure(emg, tr, path_name):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.2))
    for ax, res, title in ((axes[0], emg, "EMG, backward vs forward (walking)"),
                           (axes[1], tr, "training vs control")):  # fmt: skip
        d = res.design
        x = res.draws("delta")
        q = np.quantile(x, [0.025, 0.5, 0.975], axis=0)
        y = np.arange(len(d.cells))
        ax.errorbar(q[1], y, xerr=[q[1] - q[0], q[2] - q[1]], fmt="o", ms=3,
                    color=_common.COLORS["backward"], lw=1)  # fmt: skip
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(y, [c.replace("_", " ").replace(":", ", ") for c in d.cells], fontsize=6)
        ax.set_xlabel("standardised effect delta (SD units)")
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _common.savefig(fig, path_name)


def main() -> int:
    log = _common.setup("muscles_training")
    import pandas as pd

    from retrosim.evidence import tables
    from retrosim.meta import claims as cl
    from retrosim.meta import votes

    emg_d, tr_d = votes.emg_design(), votes.training_design()
    emg = votes.fit(emg_d, seed=SEED, draws=DRAWS, tune=TUNE, chains=CHAINS, gate="warn")
    tr = votes.fit(tr_d, seed=SEED + 1, draws=DRAWS, tune=TUNE, chains=CHAINS, gate="warn")
    log.info("EMG: %s", emg.diagnostics)
    log.info("training: %s", tr.diagnostics)
    verdicts = votes.claim_verdicts(emg, tr)
    _common.write_table(verdicts, "muscles_training")
    excluded = pd.concat(
        [emg_d.excluded.assign(family="emg"), tr_d.excluded.assign(family="training")]
    )
    _common.write_table(excluded, "vote_excluded")
    _figure(emg, tr, "muscles_training")

    tested = verdicts[verdicts["verdict"] != cl.NOT_TESTABLE]
    paper = pd.DataFrame(
        {
            "claim": tested["claim"] + np.where(
                tested["target"].notna() & (tested["claim"] == "muscles_work_harder"),
                ": " + tested["target"].fillna("").str.replace("_", " "), ""),
            "reading": tested["reading_key"].str.replace("_", " "),
            "delta (95 % interval)": [
                f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                for m, lo, hi in zip(tested["delta_median"], tested["delta_low"],
                                     tested["delta_high"], strict=True)
            ],
            "P(claimed sign)": tested["p_direction"].map(lambda p: f"{p:.2f}"),
            "studies": tested["n_studies"],
            "verdict": tested["verdict"],
        }
    )  # fmt: skip
    _common.write_table(paper, "muscles_training_paper")

    emg_all = tables.load_family("emg")
    tr_all = tables.load_training()
    hb = tables.load_habituation()
    pp = votes.prior_predictive(emg_d, seed=SEED)
    pt = votes.prior_predictive(tr_d, seed=SEED)
    per_muscle = verdicts[(verdicts["claim"] == "muscles_work_harder")
                          & verdicts["target"].notna()]  # fmt: skip
    c1 = verdicts[(verdicts["claim"] == "muscle_focus_c1")
                  & (verdicts["reading_key"] == "emg_walking")].iloc[0]  # fmt: skip
    sj = verdicts[(verdicts["claim"] == "training_sprint_jump")
                  & (verdicts["reading_key"] == "training_trained")].iloc[0]  # fmt: skip
    srcs = cl.article_sources()
    heath = hb.set_index("row_id")

    def diag(res):
        d = res.diagnostics
        return {"max_rhat": d.max_rhat, "min_ess_bulk": d.min_ess_bulk,
                "min_ess_tail": d.min_ess_tail, "divergences": d.n_divergences,
                "passed": d.passed, "n_draws": d.n_draws}  # fmt: skip

    def muscle_key(m):
        return m.replace(" ", "_")

    values = {
        "emg_rows": len(emg_all),
        "emg_studies": int(emg_all["study_key"].nunique()),
        "emg_rows_used": emg_d.n_rows,
        "emg_studies_used": int(emg_d.rows["group_key"].nunique()),
        "emg_rows_excluded": len(emg_d.excluded),
        "emg_excluded_no_n": int((emg_d.excluded["reason"] == "sample size not reported").sum()),
        "emg_excluded_underwater": int(emg_d.excluded["reason"].str.contains("underwater").sum()),
        "emg_muscles_used": len(emg_d.cells),
        "emg_modes": emg_d.groups,
        "training_rows": len(tr_all),
        "training_studies": int(tr_all["study_key"].nunique()),
        "training_rows_used": tr_d.n_rows,
        "training_studies_used": int(tr_d.rows["study_key"].nunique()),
        "training_cells": len(tr_d.cells),
        "ankle_rows": len(tables.load_family("ankle")),
        "habituation_rows": len(hb),
        "heath_vo2_baseline_l_min": float(heath.loc["heath2001_vo2_l_min_baseline", "mean"]),
        "heath_vo2_week4_l_min": float(heath.loc["heath2001_vo2_l_min_week4", "mean"]),
        "heath_n": int(heath.loc["heath2001_vo2_l_min_baseline", "n"]),
        "emg_gate": diag(emg),
        "training_gate": diag(tr),
        "priors": {
            "mu_sd": emg.priors.mu_sd,
            "tau_cell_sd": emg.priors.tau_cell_sd,
            "tau_study_sd": emg.priors.tau_study_sd,
        },
        "prior_share_significant_emg": float((pp["p_up"] + pp["p_down"]).mean()),
        "prior_share_significant_training": float((pt["p_up"] + pt["p_down"]).mean()),
        "observed_share_significant_emg": float(pp["observed"].isin(["up", "down"]).mean()),
        "observed_share_significant_training": float(pt["observed"].isin(["up", "down"]).mean()),
        "p_muscle": {muscle_key(r.target): r.p_direction for r in per_muscle.itertuples()},
        "verdict_muscle": {muscle_key(r.target): r.verdict for r in per_muscle.itertuples()},
        "c1_p_quad_over_posterior": c1["p_direction"],
        "c1_verdict": c1["verdict"],
        "c1_favours_neither": "favour neither" in c1["verdict_basis"],
        "c1_delta_median": c1["delta_median"],
        "c1_delta_low": c1["delta_low"],
        "c1_delta_high": c1["delta_high"],
        "sprint_p": sj["p_direction"],
        "sprint_delta_median": sj["delta_median"],
        "sprint_delta_low": sj["delta_low"],
        "sprint_delta_high": sj["delta_high"],
        "sprint_verdict": sj["verdict"],
        "sprint_studies": sj["studies"],
        "n_vote_claims": len(cl.VOTE_CLAIMS),
        "n_not_testable_claims": int(sum(c.kind == "not_testable" for c in cl.VOTE_CLAIMS)),
        "n_claim_sentences": len(srcs),
        "n_sentences_verdict": int((srcs["testable"] == "verdict").sum()),
        "n_sentences_not_testable": int(
            (srcs["testable"] == "not_testable_current_evidence").sum()
        ),
        "n_sentences_not_a_claim": int((srcs["testable"] == "not_a_testable_claim").sum()),
        "n_articles": int(srcs["article_file"].nunique()),
        "claim_text": {c.key: c.text for c in cl.VOTE_CLAIMS},
        "quad_articles": sorted(
            set(srcs.loc[srcs["registry_claim"] == "muscle_quadriceps_backward", "article_file"])
        ),
        "posterior_articles": sorted(
            set(
                srcs.loc[
                    srcs["registry_claim"] == "muscle_posterior_chain_backward", "article_file"
                ]
            )
        ),
        "learning_quote": srcs.set_index("quote_id").loc["q075", "quote"],
        "learning_article": srcs.set_index("quote_id").loc["q075", "article_file"],
        "articles": {
            f: srcs.loc[srcs["article_file"] == f, "testable"].value_counts().to_dict()
            for f in sorted(set(srcs["article_file"]))
        },
        "interval_pct": votes.INTERVAL_PCT,
        "seed": SEED,
    }
    _common.write_values("muscles_training", values)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
