"""Meta-analysis of the published evidence: forest plots, estimator cross-check, sensitivity, LOSO.

Fits the Bayesian random-effects meta-regression of retrosim.meta.model to every effect size,
then (same compiled model) the prior/correlation sensitivity variants and leave-one-study-out
refits. Frequentist DerSimonian-Laird, Paule-Mandel and REML pooled estimates per family are
computed alongside as a cross-check.
"""

from __future__ import annotations

import _common
import numpy as np

INPUTS = [
    "retrosim/data/literature",
    "retrosim/data/references.bib",
    "retrosim.meta.claims",
    "retrosim.evidence.tables",
    "retrosim.cli.claims",
]
OUTPUTS = [
    "results/figures/forest.png",
    "results/figures/sensitivity.png",
    "results/tables/meta_pooled.csv",
    "results/tables/meta_sensitivity.csv",
    "results/tables/meta_loso.csv",
    "results/tables/heterogeneity_sensitivity.csv",
    "results/tables/verdicts.csv",
    "results/tables/claims_registry.csv",
    "results/values/meta_analysis.json",
]
TIMEOUT_S = 1500

SEED = 20261121
DRAWS, TUNE, CHAINS = 1000, 1000, 4
# Same chain length as the main fit, so the refits pass the same convergence gate.
CHECK_DRAWS, CHECK_TUNE, CHECK_CHAINS = DRAWS, TUNE, CHAINS
#: Axis range of the sensitivity panel [%]: wide prior variants have intervals beyond it (clipped).
SENS_YLIM = (-100, 200)
#: Outcome families shown in the forest plot and quoted in the text.
FAMILIES = {
    "energy": "Energy (VO2, cost, rate)",
    "heart_rate": "Heart rate",
    "pfj_force": "Patellofemoral force",
    "knee_moment": "Knee extensor moment",
    "vgrf": "Ground reaction force",
}


def _finite(x):
    """None for NaN (a family with one row has no frequentist estimate), else the value."""
    return None if isinstance(x, float) and not np.isfinite(x) else x


def _pct(y):
    return 100.0 * (np.exp(y) - 1.0)


def forest_figure(effects, pooled, plt):
    """One row per effect size (95 % CI), and per family the posterior pooled mean effect."""
    fams = [f for f in FAMILIES if f in set(effects["outcome_family"])]
    rows = []
    for fam in fams:
        e = effects[effects["outcome_family"] == fam].sort_values(["study_key", "speed_m_s"])
        rows.append(("header", fam, None))
        for _, r in e.iterrows():
            rows.append(("study", fam, r))
        rows.append(("pooled", fam, pooled[fam]))
    fig, ax = plt.subplots(figsize=(6.7, 0.17 * len(rows) + 0.8))
    y = len(rows)
    labels, ypos = [], []
    for kind, fam, r in rows:
        y -= 1
        if kind == "header":
            ax.text(
                -0.01,
                y,
                FAMILIES[fam],
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="center",
                fontsize=7.5,
                weight="bold",
            )
            continue
        if kind == "study":
            lo, hi = r.yi - 1.96 * np.sqrt(r.vi), r.yi + 1.96 * np.sqrt(r.vi)
            ax.plot(_pct([lo, hi]), [y, y], color="0.35", lw=0.9)
            ax.plot(
                _pct(r.yi),
                y,
                "s",
                color="0.2",
                ms=3.2,
                mfc="white" if r.dispersion_imputed else "0.2",
            )
            speed = f", {r.speed_m_s:.2g} m/s" if np.isfinite(r.speed_m_s) else ""
            labels.append(f"{r.study_key} ({r.outcome.split('_')[0]}{speed})")
        else:
            med, lo, hi = r["median_pct"], r["ci_low_pct"], r["ci_high_pct"]
            ax.fill([lo, med, hi, med], [y, y + 0.35, y, y - 0.35], color="#D55E00", alpha=0.85)
            labels.append("pooled (posterior mean effect)")
        ypos.append(y)
    ax.set_yticks(ypos, labels, fontsize=6.5)
    ax.axvline(0, color="0.4", lw=0.7)
    ax.set_xlabel("backward vs forward (%)")
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    fig.tight_layout()
    return fig


def _family_ticks(ax, fams):
    """One tick per outcome family, labelled with its short name."""
    ax.set_xticks(
        np.arange(len(fams)),
        [FAMILIES[f].split(" (")[0] for f in fams],
        rotation=25,
        ha="right",
        fontsize=6.5,
    )


def sensitivity_figure(sens, loso, plt):
    fams = [f for f in FAMILIES if f in set(sens["family"])]
    fig, axes = plt.subplots(1, 2, figsize=(6.7, 3.3), sharey=False)
    variants = list(dict.fromkeys(sens["variant"]))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax = axes[0]
    width = 0.8 / len(variants)
    for k, var in enumerate(variants):
        s = sens[sens["variant"] == var].set_index("family").reindex(fams)
        x = np.arange(len(fams)) + (k - (len(variants) - 1) / 2) * width
        ok = bool(s["converged"].fillna(False).astype(bool).all())
        # A refit that failed the convergence gate is drawn hollow and labelled unreliable.
        ax.errorbar(
            x,
            s["median_pct"],
            yerr=[s["median_pct"] - s["ci_low_pct"], s["ci_high_pct"] - s["median_pct"]],
            fmt="o",
            ms=2.5,
            lw=0.8,
            color=colors[k % len(colors)],
            mfc=None if ok else "white",
            ls="none",
            label=var if ok else f"{var} (failed gate: unreliable)",
        )
    _family_ticks(ax, fams)
    ax.axhline(0, color="0.4", lw=0.7)
    ax.set_ylim(*SENS_YLIM)
    ax.set_ylabel("pooled effect (%)")
    ax.set_title("Prior and correlation sensitivity", loc="left", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    ax = axes[1]
    sub = loso[loso["family"].isin(fams) & np.isfinite(loso["shift_pct_points"])]
    for j, fam in enumerate(fams):
        s = sub[sub["family"] == fam]
        good = s["converged"].fillna(False).astype(bool).to_numpy()
        ax.plot(np.full(good.sum(), j), s["shift_pct_points"][good], "o", ms=3, color="0.25")
        ax.plot(np.full((~good).sum(), j), s["shift_pct_points"][~good], "x", ms=3, color="0.25")
        for _, r in s[
            np.abs(s["shift_pct_points"]) == np.abs(s["shift_pct_points"]).max()
        ].iterrows():
            ax.annotate(
                r.left_out,
                (j, r.shift_pct_points),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=5.5,
                va="center",
            )
    _family_ticks(ax, fams)
    ax.axhline(0, color="0.4", lw=0.7)
    ax.set_ylabel("shift of pooled median (points)")
    ax.set_title("Leave one study out", loc="left", fontsize=8)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=5.5, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _effect_text(r):
    if not np.isfinite(r.median_pct):
        return "–"
    med, lo, hi = (round(float(x)) for x in (r.median_pct, r.ci_low_pct, r.ci_high_pct))
    return f"{med:+d} ({lo:+d} to {hi:+d})"  # integers: no "-0"


def _speed_text(r):
    """Reference speed of a reading; 'any': no speed moderator, 'ext.': extrapolated."""
    if not np.isfinite(r.speed_ref_m_s):
        return "–"
    text = f"{r.speed_ref_m_s:.2f}"
    if np.isfinite(r.median_pct) and not r.speed_moderated:
        return text + " (any)"
    if np.isfinite(r.median_pct) and r.speed_extrapolated:
        return text + " (ext.)"
    return text


def _pred_text(r):
    if not np.isfinite(r.pred_low_pct):
        return "–"
    lo, hi = (round(float(x)) for x in (r.pred_low_pct, r.pred_high_pct))
    return f"{lo:+d} to {hi:+d}"


def heterogeneity_table(claims, fits):
    """Verdict (and P(in range)) of every testable reading under each heterogeneity prior."""
    import pandas as pd

    per = {name: claims.evaluate(res) for name, res in fits.items()}
    first = next(iter(per.values()))
    keep = first["verdict"] != "not testable with current evidence"
    texts = {c.key: c.text for c in claims.CLAIMS}
    table = pd.DataFrame(
        {
            "Claim": [texts[k] for k in first["claim"][keep]],
            "Reading": first["reading"][keep].to_numpy(),
        }
    )
    changed = np.zeros(int(keep.sum()), dtype=bool)
    base = first["verdict"][keep].to_numpy()
    for name, v in per.items():
        vv = v[keep]
        table[name] = [
            f"{w} ({p:.2f})" + ("" if ok else " (unreliable)")
            for w, p, ok in zip(vv["verdict"], vv["p_in_range"], vv["reliable"], strict=True)
        ]
        changed |= vv["verdict"].to_numpy() != base
    # the claim text once per claim, as in the verdict table
    table["Claim"] = [
        c if i == 0 or table["Claim"].iloc[i - 1] != c else "" for i, c in enumerate(table["Claim"])
    ]
    return table, int(changed.sum()), int(keep.sum())


def write_claim_tables(claims, verdicts, converged):
    """The claim registry (introduction) and the verdict table (results); values per claim."""
    import pandas as pd

    registry = pd.DataFrame(
        [
            {
                "Claim": c.text,
                "Stated": c.stated_text(),
                "Read as (%)": c.range_text().replace(" %", ""),
                "Source": "; ".join(s.kind for s in c.sources),
            }
            for c in claims.CLAIMS
        ]
    )
    _common.write_table(registry, "claims_registry")
    texts = {c.key: c.text for c in claims.CLAIMS}
    table = pd.DataFrame(
        {
            "Claim": [
                texts[c] if i == 0 or verdicts["claim"].iloc[i - 1] != c else ""
                for i, c in enumerate(verdicts["claim"])
            ],
            "Reading": verdicts["reading"],
            "Claimed (%)": verdicts["claimed"].str.replace(" %", ""),
            "Speed (m/s)": [_speed_text(r) for r in verdicts.itertuples()],
            "Mean effect, % (95% CrI)": [_effect_text(r) for r in verdicts.itertuples()],
            "New study, % (95% PI)": [_pred_text(r) for r in verdicts.itertuples()],
            "P(in range)": [f"{p:.2f}" if np.isfinite(p) else "–" for p in verdicts["p_in_range"]],
            "Studies": verdicts["n_studies"],
            "Verdict": [
                v + ("" if ok or v.startswith("not testable") else " (unreliable)")
                for v, ok in zip(verdicts["verdict"], verdicts["reliable"], strict=True)
            ],
        }
    )
    _common.write_table(table, "verdicts")
    out = {
        "n_claims": int(verdicts["claim"].nunique()),
        "n_readings": len(verdicts),
        "all_reliable": bool(converged),
        "counts": verdicts["verdict"].value_counts().to_dict(),
    }
    for c in claims.CLAIMS:
        out[c.key] = {"text": c.text, "claimed": c.range_text(), "stated": c.stated_text()}
    for r in verdicts.itertuples():
        out.setdefault(r.claim, {})[r.reading_key] = {
            "verdict": r.verdict,
            "median_pct": _finite(float(r.median_pct)),
            "lo": _finite(float(r.ci_low_pct)),
            "hi": _finite(float(r.ci_high_pct)),
            "pred_lo": _finite(float(r.pred_low_pct)),
            "pred_hi": _finite(float(r.pred_high_pct)),
            "judged_on": r.judged_on,
            "p_in": _finite(float(r.p_in_range)),
            "p_dir": _finite(float(r.p_direction)),
            "studies": int(r.n_studies),
            "participants": int(r.n_participants),
            "speed_ref_m_s": _finite(float(r.speed_ref_m_s)),
            "speed_moderated": bool(r.speed_moderated),
            "speed_extrapolated": bool(r.speed_extrapolated),
        }
    return out


def fit_claims_evidence(log):
    """The claims' evidence (effect sizes, direction statements) and its fit: the one main fit
    of the paper (studies/claims_speed.py calls this too, so both read the same posterior)."""
    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims, verdicts

    effects = claims.analysis_rows(evidence.effect_sizes())
    statements = evidence.direction_statements()
    log.info("fitting the meta-regression to %d effect sizes (%d chains)", len(effects), CHAINS)
    res = verdicts.fit_evidence(
        effects, statements, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, gate="warn"
    )
    log.info("%s", res.diagnostics)
    return effects, statements, res


def main() -> None:
    log = _common.setup("meta_analysis")
    import matplotlib.pyplot as plt
    import pandas as pd
    from scipy.stats import norm

    from retrosim.meta import claims
    from retrosim.meta import model as inference

    effects, statements, res = fit_claims_evidence(log)
    rows, pooled = [], {}
    for fam in [f for f in FAMILIES if f in res.design.families]:
        e = _pct(res.effect_draws(fam))
        q = np.quantile(e, [0.025, 0.5, 0.975])
        pq = np.quantile(_pct(res.predictive_draws(fam)), [0.025, 0.975])
        sub = effects[effects["outcome_family"] == fam]
        row = {
            "family": fam,
            "label": FAMILIES[fam],
            "rows": len(sub),
            "studies": sub["group_key"].nunique(),
            "median_pct": q[1],
            "ci_low_pct": q[0],
            "ci_high_pct": q[2],
            "pred_low_pct": pq[0],
            "pred_high_pct": pq[1],
            "p_positive": float(np.mean(e > 0)),
        }
        for method in ("DL", "PM", "REML"):
            if len(sub) >= 2:
                fr = inference.frequentist(
                    sub["yi"].to_numpy(), sub["vi"].to_numpy(), method=method
                )
                ci = np.asarray(fr.conf_int()).ravel()
                row[f"{method}_pct"] = _pct(fr.estimate)
                row[f"{method}_low_pct"], row[f"{method}_high_pct"] = _pct(ci[0]), _pct(ci[-1])
            else:
                row[f"{method}_pct"] = row[f"{method}_low_pct"] = row[f"{method}_high_pct"] = np.nan
        rows.append(row)
        pooled[fam] = row
    table = pd.DataFrame(rows)
    _common.write_table(table, "meta_pooled")
    _common.savefig(forest_figure(effects, pooled, plt), "forest")

    verdicts = claims.evaluate(res, statements=statements)
    verdict_values = write_claim_tables(claims, verdicts, res.converged)

    log.info("sensitivity: %d prior variants", len(inference.SENSITIVITY_VARIANTS))
    sens, fits = inference.sensitivity(
        res.design,
        draws=CHECK_DRAWS,
        tune=CHECK_TUNE,
        chains=CHECK_CHAINS,
        seed=SEED,
        return_fits=True,
    )
    _common.write_table(sens, "meta_sensitivity")
    het_names = list(inference.HETEROGENEITY_VARIANTS)
    het_fits = {name: fits["default" if "(default)" in name else name] for name in het_names}
    het, n_het_changed, n_het_readings = heterogeneity_table(claims, het_fits)
    _common.write_table(het, "heterogeneity_sensitivity")
    log.info("leave-one-study-out refits")
    loso = inference.leave_one_study_out(
        res, draws=CHECK_DRAWS, tune=CHECK_TUNE, chains=CHECK_CHAINS, seed=SEED
    )
    _common.write_table(loso, "meta_loso")
    _common.savefig(sensitivity_figure(sens, loso, plt), "sensitivity")

    s = sens[sens["family"].isin(FAMILIES)]
    lo = loso[loso["family"].isin(FAMILIES) & np.isfinite(loso["shift_pct_points"])]
    values = {
        "converged": res.converged,
        "n_direction_rows": int(getattr(res.design, "n_latent", 0)),
        "diagnostics": {
            "max_rhat": res.diagnostics.max_rhat,
            "min_ess_bulk": res.diagnostics.min_ess_bulk,
            "divergences": res.diagnostics.n_divergences,
        },
        "draws": DRAWS * CHAINS,
        "families": {
            r["family"]: {
                k: _finite(r[k])
                for k in (
                    "rows",
                    "studies",
                    "median_pct",
                    "ci_low_pct",
                    "ci_high_pct",
                    "pred_low_pct",
                    "pred_high_pct",
                    "p_positive",
                    "REML_pct",
                    "DL_pct",
                    "PM_pct",
                )
            }
            for r in rows
        },
        "n_variants": int(s["variant"].nunique()),
        "heterogeneity": {
            "variants": het_names,
            "n_readings": n_het_readings,
            "n_changed": n_het_changed,
        },
        "sens_range": {
            f: {"lo": float(g["median_pct"].min()), "hi": float(g["median_pct"].max())}
            for f, g in s.groupby("family")
        },
        "loso_max_shift": float(np.abs(lo["shift_pct_points"]).max()) if len(lo) else 0.0,
        "loso_max_study": str(lo.loc[np.abs(lo["shift_pct_points"]).idxmax(), "left_out"])
        if len(lo)
        else "",
        "loso_max_family": FAMILIES.get(
            str(lo.loc[np.abs(lo["shift_pct_points"]).idxmax(), "family"]), ""
        )
        if len(lo)
        else "",
        "n_loso": int(loso["left_out"].nunique()),
        "sens_unconverged": [
            str(v) for v, g in sens.groupby("variant", sort=False) if not g["converged"].all()
        ],
        "loso_refits": len(loso),
        "loso_unconverged": int((~loso["converged"].astype(bool)).sum()),
        "variants": [v for v in dict.fromkeys(sens["variant"]) if v != "default"],
        "sens_ylim": list(SENS_YLIM),
        "sens_clipped": int(
            (sens["ci_high_pct"] > SENS_YLIM[1]).sum() + (sens["ci_low_pct"] < SENS_YLIM[0]).sum()
        ),
        "interval_pct": round(100 * (2 * norm.cdf(1.96) - 1)),
        "claims": verdict_values,
        "thresholds": {
            "p_supported": claims.P_SUPPORTED,
            "p_direction": claims.P_DIRECTION_SUPPORTED,
            "p_plausible": claims.P_PLAUSIBLE,
            "p_contradicted": claims.P_CONTRADICTED,
            "p_direction_plausible": claims.P_DIRECTION_PLAUSIBLE,
            "min_studies": claims.MIN_STUDIES_SUPPORTED,
            "precision_pct": claims.DEFAULT_PRECISION_PCT,
            "clear_margin_pct": claims.CLEAR_MARGIN_PCT,
            "rounding_half_pct": claims.DEFAULT_PRECISION_PCT / 2,
            "interval_pct": claims.INTERVAL_PCT,
        },
    }
    _common.write_values("meta_analysis", values)


if __name__ == "__main__":
    main()
