"""Frequentist cross-check and small-study diagnostics per outcome family.

For every outcome family of the analysis rows (``retrosim.meta.claims.analysis_rows``) this study
reports the REML pooled effect with Wald, Hartung–Knapp–Sidik–Jonkman (HKSJ) and modified-HKSJ
95 % intervals and prediction intervals, the multilevel REML fit (conditions nested in
independence clusters, ``group_key``), Egger's regression test and the PET / PEESE intercepts,
all from :mod:`retrosim.meta.frequentist`. Families have at most a handful of effect sizes, so every
small-study test here is flagged ``underpowered`` (fewer than 10 effect sizes; Sterne et al.
2011, BMJ 343:d4002); families with fewer than 3 effect sizes get no Egger or PET-PEESE fit.

Outputs: ``results/tables/small_study.csv`` (one row per family), ``results/tables/
frequentist_crosscheck.csv`` (family × estimator × interval method), ``results/figures/
funnel.png`` and ``results/values/small_study.json``.
"""

from __future__ import annotations

import _common
import numpy as np

INPUTS = [
    "retrosim/data/literature",
    "retrosim.meta.claims",
    "retrosim.evidence.tables",
    "retrosim.meta.frequentist",
]
OUTPUTS = [
    "results/tables/small_study.csv",
    "results/tables/frequentist_crosscheck.csv",
    "results/tables/small_study_paper.csv",
    "results/figures/funnel.png",
    "results/values/small_study.json",
]

LEVEL = 0.95
#: Outcome families in display order (others found in the data are appended).
FAMILIES = {
    "energy": "Energy (VO2, cost, rate)",
    "heart_rate": "Heart rate",
    "pfj_force": "Patellofemoral force",
    "knee_moment": "Knee extensor moment",
    "vgrf": "Ground reaction force",
    "gait": "Step frequency",
}
#: Fewest effect sizes for Egger's test and PET / PEESE (two coefficients and one residual df).
MIN_K_REGRESSION = 3
METHODS = ("wald", "hksj", "hksj_modified")
#: Pseudo-confidence contours of the funnel plots.
FUNNEL_LEVELS = (0.95, 0.99)


def _pct(y):
    return 100.0 * np.expm1(y)


def _none(x):
    """None for a missing number (the values file cannot hold NaN)."""
    if x is None:
        return None
    if isinstance(x, float | np.floating) and not np.isfinite(x):
        return None
    return x


def _note(k, studies, ml, fq):
    parts = []
    if k < 2:
        parts.append(f"k = {k}: a single effect size, nothing to pool")
    else:
        if k - 1 < 3:
            parts.append(f"HKSJ t on {k - 1} df")
        if ml is not None and not ml.identified:
            parts.append("multilevel: one condition per study, components split equally")
    if k < MIN_K_REGRESSION:
        parts.append(f"k = {k} < {MIN_K_REGRESSION}: no Egger or PET-PEESE")
    elif k < fq.MIN_K_SMALL_STUDY:
        parts.append(f"k = {k} < {fq.MIN_K_SMALL_STUDY}: small-study tests underpowered")
    if studies < k:
        parts.append(f"{k} effect sizes from {studies} studies")
    return "; ".join(parts)


def _long_row(fam, k, fit, interval, pred, tau2):
    """One row of the cross-check table from a row of ``retrosim.meta.frequentist.predict``."""
    out = {"family": fam, "k": k, "fit": fit, "interval": interval, "tau2": tau2}
    out |= {"estimate": pred.pred, "se": pred.se}
    out |= {
        "ci_low": pred.ci_lb,
        "ci_high": pred.ci_ub,
        "pi_low": pred.pi_lb,
        "pi_high": pred.pi_ub,
    }
    for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        out[f"{key}_pct"] = _pct(out[key])
    return out


def family_row(fam, sub, fq):
    """One row of the small-study table and the long cross-check rows of one family."""
    yi, vi = sub["yi"].to_numpy(float), sub["vi"].to_numpy(float)
    k, studies = len(sub), int(sub["group_key"].nunique())
    row = {"family": fam, "label": FAMILIES.get(fam, fam), "k": k, "studies": studies}
    long_rows = []
    ml = None
    if k >= 2:
        fits = {m: fq.frequentist(yi, vi, method=m) for m in ("REML", "DL", "PM")}
        res = fits["REML"]
        row.update({"reml": res.estimate, "reml_pct": _pct(res.estimate), "tau2": res.tau2})
        for method in METHODS:
            ci = res.conf_int(LEVEL, method)[0]
            pi = res.prediction_interval(LEVEL, method)
            row[f"{method}_low_pct"], row[f"{method}_high_pct"] = _pct(ci)
            row[f"{method}_pi_low_pct"], row[f"{method}_pi_high_pct"] = _pct(pi)
        row["hksj_factor"] = res.hksj_scale
        for name, fit in fits.items():
            for method in METHODS:
                pred = fq.predict(fit, level=LEVEL, method=method).iloc[0]
                long_rows.append(_long_row(fam, k, name, method, pred, fit.tau2))
        ml = fq.reml_multilevel(yi, vi, sub["group_key"].to_numpy())
        pred = fq.predict(ml, level=LEVEL).iloc[0]
        row.update(
            {
                "ml_pct": _pct(ml.estimate),
                "ml_low_pct": _pct(pred.ci_lb),
                "ml_high_pct": _pct(pred.ci_ub),
                "ml_pi_low_pct": _pct(pred.pi_lb),
                "ml_pi_high_pct": _pct(pred.pi_ub),
                "sigma2_study": ml.sigma2_study,
                "sigma2_condition": ml.sigma2_condition,
                "ml_identified": ml.identified,
            }
        )
        heterogeneity = ml.sigma2_study + ml.sigma2_condition
        long_rows.append(_long_row(fam, k, "REML multilevel", "wald", pred, heterogeneity))
    else:  # nothing to pool: the single effect size is reported as such, not as an estimate
        row["single_effect_pct"] = _pct(yi[0])
    if k >= MIN_K_REGRESSION:
        egger = fq.egger_test(yi, vi, model="lm", level=LEVEL)
        egger_rma = fq.egger_test(yi, vi, model="rma", level=LEVEL)
        pp = fq.pet_peese(yi, vi, level=LEVEL)
        row.update(
            {
                "egger_slope": egger.slope,
                "egger_t": egger.statistic,
                "egger_p": egger.p_value,
                "egger_rma_p": egger_rma.p_value,
                "pet_pct": _pct(pp.pet.intercept),
                "pet_se": pp.pet.se_intercept,
                "pet_p": pp.pet.p_intercept,
                "peese_pct": _pct(pp.peese.intercept),
                "peese_se": pp.peese.se_intercept,
                "peese_p": pp.peese.p_intercept,
                "pet_peese": pp.chosen,
                "pet_peese_pct": _pct(pp.estimate),
            }
        )
    row["underpowered"] = k < fq.MIN_K_SMALL_STUDY
    row["note"] = _note(k, studies, ml, fq)
    return row, long_rows


def funnel_figure(effects, table, fq, plt):
    """One funnel panel per family with at least MIN_K_REGRESSION effect sizes."""
    fams = [r.family for r in table.itertuples() if r.k >= MIN_K_REGRESSION]
    fig, axes = plt.subplots(1, len(fams), figsize=(6.7, 2.8), squeeze=False)
    # fixed layout before drawing, so the label placement measures the final axes
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.22, top=0.74, wspace=0.3)
    for ax, fam in zip(axes[0], fams, strict=True):
        sub = effects[effects["outcome_family"] == fam]
        r = table.set_index("family").loc[fam]
        fq.funnel_plot(
            sub["yi"].to_numpy(float),
            sub["vi"].to_numpy(float),
            ax=ax,
            estimate=float(r["reml"]),
            labels=list(sub["study_key"]),
            levels=FUNNEL_LEVELS,
        )
        ax.set_title(
            f"{FAMILIES.get(fam, fam)}\nk = {r['k']}, Egger p = {r['egger_p']:.2f} (underpowered)",
            loc="left",
            fontsize=7,
        )
        ax.secondary_xaxis("top", functions=(_pct, lambda p: np.log1p(p / 100.0))).set_xlabel(
            "backward vs forward (%)", fontsize=6.5
        )
        ax.xaxis.label.set_size(7)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=6.5)
    return fig


def _ci(lo, hi):
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "–"
    return f"{round(float(lo)):+d} to {round(float(hi)):+d}"


def paper_table(table):
    """The compact table the paper prints: one row per family with k >= 2."""
    import pandas as pd

    rows = []
    for r in table.to_dict("records"):
        if r["k"] < 2:
            continue
        g = r.get
        egger = g("egger_p")
        rows.append(
            {
                "Family": r["label"],
                "k (studies)": f"{r['k']} ({r['studies']})",
                "REML, %": f"{round(r['reml_pct']):+d}",
                "Wald CI": _ci(g("wald_low_pct"), g("wald_high_pct")),
                "HKSJ CI": _ci(g("hksj_low_pct"), g("hksj_high_pct")),
                "mod. HKSJ CI": _ci(g("hksj_modified_low_pct"), g("hksj_modified_high_pct")),
                "PI (HKSJ)": _ci(g("hksj_pi_low_pct"), g("hksj_pi_high_pct")),
                "Multilevel, %": f"{round(r['ml_pct']):+d}" if np.isfinite(r["ml_pct"]) else "–",
                "Egger p": f"{egger:.2f}" if egger is not None and np.isfinite(egger) else "–",
                "PET-PEESE, %": (
                    f"{round(r['pet_peese_pct']):+d} ({r['pet_peese']})"
                    if isinstance(r.get("pet_peese"), str)
                    else "–"
                ),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    log = _common.setup("small_study")
    import matplotlib.pyplot as plt
    import pandas as pd

    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims
    from retrosim.meta import frequentist as fq

    effects = claims.analysis_rows(evidence.effect_sizes())
    present = list(dict.fromkeys(effects["outcome_family"]))
    fams = [f for f in FAMILIES if f in present] + [f for f in present if f not in FAMILIES]
    rows, long_rows = [], []
    for fam in fams:
        sub = effects[effects["outcome_family"] == fam].sort_values(["group_key", "row_id"])
        row, extra = family_row(fam, sub, fq)
        log.info("%s: k = %d, %s", fam, row["k"], row["note"])
        rows.append(row)
        long_rows += extra
    table = pd.DataFrame(rows)
    _common.write_table(table, "small_study")
    _common.write_table(pd.DataFrame(long_rows), "frequentist_crosscheck")
    _common.write_table(paper_table(table), "small_study_paper")
    _common.savefig(funnel_figure(effects, table, fq, plt), "funnel")

    keys = [c for c in table.columns if c not in ("family", "label", "note")]
    values = {
        "level_pct": round(100 * LEVEL),
        "min_k_small_study": fq.MIN_K_SMALL_STUDY,
        "min_k_regression": MIN_K_REGRESSION,
        "max_k": int(table["k"].max()),
        "funnel_levels_pct": [round(100 * lv) for lv in FUNNEL_LEVELS],
        "n_families": len(table),
        "n_tested": int((table["k"] >= MIN_K_REGRESSION).sum()),
        "all_underpowered": bool(table["underpowered"].all()),
        "families": {
            r["family"]: {key: _none(r[key]) for key in keys if key in r and r[key] == r[key]}
            | {"note": r["note"]}
            for r in table.to_dict("records")
        },
    }
    _common.write_values("small_study", values)


if __name__ == "__main__":
    main()
