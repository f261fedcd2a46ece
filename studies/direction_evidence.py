"""What the direction-only results add: rows per family, verdicts and intervals with and without.

Fits the claims' pooled model twice on the same evidence: with the numeric rows only (the
earlier analysis) and with the direction-only results as interval-censored rows
(``retrosim.evidence.directions``), plus two sensitivity fits in which the between-person SD that
scales the direction rows' standard errors is halved or doubled, and two on the underwater
comparisons (Masumoto 2007, 2009), which the analysis pools with their own shift
``b_underwater`` (buoyancy and drag): one leaves them out, one pools them as if they were land
evidence. Reports, per analysis family,
the rows in the likelihood (numeric, direction) and the statements left out with the reason, and,
per claim x reading, the verdict and 95 % interval of each fit and how much the interval narrows.

Writes ``results/tables/direction_counts.csv``, ``results/tables/direction_verdicts.csv``,
``results/tables/direction_excluded.csv``, ``results/figures/direction_intervals.png`` and
``results/values/direction_evidence.json``.
"""

from __future__ import annotations

import _common
import numpy as np

INPUTS = [
    "retrosim/data/literature",
    "retrosim.meta.claims",
    "retrosim.evidence.tables",
    "retrosim.cli.claims",
    "retrosim.evidence.directions",
]
OUTPUTS = [
    "results/tables/direction_counts.csv",
    "results/tables/direction_counts_paper.csv",
    "results/tables/direction_verdicts.csv",
    "results/tables/direction_excluded.csv",
    "results/figures/direction_intervals.png",
    "results/values/direction_evidence.json",
]
TIMEOUT_S = 1200

SEED = 20261201
DRAWS, TUNE, CHAINS = 1000, 1000, 4
#: Factors on the pooled between-person SD of the ln ratio (sensitivity of the direction rows).
SIGMA_FACTORS = (0.5, 2.0)


def _counts(design, excluded, statements):
    import pandas as pd

    fr = design.frame
    rows = []
    for fam in design.families:
        sub = fr[fr["family"] == fam]
        num, dr = sub[sub["row_kind"] == "numeric"], sub[sub["row_kind"] == "direction"]
        rows.append(
            {
                "family": fam,
                "numeric_rows": len(num),
                "numeric_studies": num["group_key"].nunique(),
                "direction_rows": len(dr),
                "direction_studies": dr["group_key"].nunique(),
                "studies_total": sub["group_key"].nunique(),
                "sigma_donors": dr["sigma_donors"].iloc[0] if len(dr) else "",
            }
        )
    out = pd.DataFrame(rows)
    ex = excluded.merge(statements[["row_id", "outcome_family"]], on="row_id", how="left")
    return out, ex


def _figure(table, plt):
    """Per claim x reading: the 95 % interval without (grey) and with (blue) direction rows."""
    t = table[np.isfinite(table["ci_low_numeric"]) | np.isfinite(table["ci_low_directions"])]
    fig, ax = plt.subplots(figsize=(6.7, 0.32 * len(t) + 0.9))
    y = np.arange(len(t))[::-1]
    for off, key, color, label in (
        (0.13, "numeric", "0.55", "numeric rows only"),
        (-0.13, "directions", "#0072B2", "with direction-only rows"),
    ):
        lo, med, hi = (t[f"{c}_{key}"].to_numpy() for c in ("ci_low", "median", "ci_high"))
        ax.hlines(y + off, lo, hi, color=color, lw=2, label=label)
        ax.plot(med, y + off, "o", color=color, ms=3.5)
    ax.axvline(0, color="0.3", lw=0.6)
    ax.set_yticks(y, [f"{c} — {r}" for c, r in zip(t["claim"], t["reading"], strict=True)])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("backward vs forward [%], mean effect, 95 % interval")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def main() -> None:
    log = _common.setup("direction_evidence")
    from dataclasses import replace

    import matplotlib.pyplot as plt

    from retrosim.evidence import tables as evidence
    from retrosim.evidence.directions import direction_rows
    from retrosim.meta import claims, verdicts
    from retrosim.meta import model as inference

    effects = claims.analysis_rows(evidence.effect_sizes())
    statements = evidence.direction_statements()
    kw = dict(draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, gate="warn")
    fits = {
        "numeric": verdicts.fit_evidence(effects, statements, numeric_only=True, **kw),
        "directions": verdicts.fit_evidence(effects, statements, **kw),
    }
    design = fits["directions"].design
    for k in SIGMA_FACTORS:
        scaled = replace(design, sigma2_P=design.sigma2_P * k**2, sigma2_Q=design.sigma2_Q * k**2)
        fits[f"sigma_x{k:g}"] = inference.fit(scaled, **kw)
    # sensitivity: the underwater statements (Masumoto 2007, 2009) left out, and pooled as if
    # they were land evidence (their surface relabelled, so b_underwater stays off)
    water = ("underwater",)
    fits["without_underwater"] = verdicts.fit_evidence(
        claims.analysis_rows(evidence.effect_sizes(), excluded_surfaces=water), statements,
        excluded_surfaces=water, **kw,
    )  # fmt: skip
    as_land = statements.assign(surface=statements["surface"].replace("underwater", "unspecified"))
    fits["underwater_as_land"] = verdicts.fit_evidence(effects, as_land, **kw)
    for name, res in fits.items():
        log.info("%s: %s", name, res.diagnostics)
    _rows, excluded = direction_rows(claims.analysis_rows(statements), effects)
    counts, excluded = _counts(design, excluded, statements)
    num_only = fits["numeric"].design.frame
    counts["numeric_rows_before"] = [int((num_only["family"] == f).sum()) for f in counts["family"]]
    land = fits["without_underwater"].design.frame
    counts["rows_without_underwater"] = [int((land["family"] == f).sum()) for f in counts["family"]]
    fr = design.frame
    counts["underwater_rows"] = [
        int(((fr["family"] == f) & (fr["surface"] == "underwater")).sum()) for f in counts["family"]
    ]
    _common.write_table(counts, "direction_counts")
    paper = counts[counts["direction_rows"] > 0].rename(
        columns={
            "family": "Family",
            "numeric_rows": "Numeric rows",
            "numeric_studies": "Numeric studies",
            "direction_rows": "Direction rows",
            "direction_studies": "Direction studies",
            "underwater_rows": "Underwater direction rows",
        }
    )
    cols = ["Family", "Numeric rows", "Numeric studies", "Direction rows", "Direction studies"]
    _common.write_table(paper[[*cols, "Underwater direction rows"]], "direction_counts_paper")
    _common.write_table(excluded, "direction_excluded")

    per = {name: claims.evaluate(res, statements=statements) for name, res in fits.items()}
    base = per["numeric"][["claim", "reading", "reading_key"]].copy()
    for name, v in per.items():
        for col in ("verdict", "median_pct", "ci_low_pct", "ci_high_pct", "p_in_range"):
            base[f"{col.removesuffix('_pct')}_{name}"] = v[col].to_numpy()
    width = {n: base[f"ci_high_{n}"] - base[f"ci_low_{n}"] for n in fits}
    base["width_ratio"] = width["directions"] / width["numeric"]
    _common.write_table(base, "direction_verdicts")
    _common.savefig(_figure(base, plt), "direction_intervals")

    changed = base[base["verdict_numeric"] != base["verdict_directions"]]
    tested = base[np.isfinite(base["width_ratio"])]

    def _against(name):
        changed = base["verdict_directions"] != base[f"verdict_{name}"]
        shift = (base[f"median_{name}"] - base["median_directions"]).abs()
        return {
            f"n_verdicts_changed_{name}": int(changed.sum()),
            f"readings_changed_{name}": [
                f"{c} ({r}): {b} -> {a}"
                for c, r, a, b in base.loc[
                    changed, ["claim", "reading", "verdict_directions", f"verdict_{name}"]
                ].itertuples(index=False)
            ],
            f"max_median_shift_{name}_pp": float(shift.max()),
        }

    water_fams = [f for f, on in zip(design.families, design.has_underwater, strict=True) if on]
    b_water = fits["directions"].draws("b_underwater")
    shift_summary = {}
    for f in water_fams:
        b = b_water[:, design.families.index(f)]
        lo, med, hi = 100 * np.expm1(np.quantile(b, [0.025, 0.5, 0.975]))
        shift_summary[f] = {
            "median_pct": float(med),
            "ci_low_pct": float(lo),
            "ci_high_pct": float(hi),
            "sd_over_prior_sd": float(b.std() / inference.Priors().underwater_sd),
        }
    sig_changed = sum(
        int((base["verdict_directions"] != base[f"verdict_sigma_x{k:g}"]).sum())
        for k in SIGMA_FACTORS
    )
    _common.write_values(
        "direction_evidence",
        {
            "interval_pct": 95,
            "sigma_factors": list(SIGMA_FACTORS),
            "n_numeric_rows": int(counts["numeric_rows"].sum()),
            "n_direction_rows": int(counts["direction_rows"].sum()),
            "n_direction_excluded": len(excluded),
            "n_studies_numeric_only": int(num_only["group_key"].nunique()),
            "n_studies_with_directions": int(design.frame["group_key"].nunique()),
            "n_verdicts_changed": len(changed),
            "n_readings_tested": len(tested),
            "median_width_ratio": float(tested["width_ratio"].median()),
            "min_width_ratio": float(tested["width_ratio"].min()),
            "max_width_ratio": float(tested["width_ratio"].max()),
            "n_verdicts_changed_by_sigma": sig_changed,
            "n_underwater_rows": int(counts["underwater_rows"].sum()),
            "underwater_families": water_fams,
            "underwater_shift": shift_summary,
            "min_underwater_sd_over_prior_sd": min(
                v["sd_over_prior_sd"] for v in shift_summary.values()
            ),
            **_against("without_underwater"),
            **_against("underwater_as_land"),
            "all_converged": all(r.converged for r in fits.values()),
            "max_rhat": max(r.diagnostics.max_rhat for r in fits.values()),
            "min_ess_bulk": min(r.diagnostics.min_ess_bulk for r in fits.values()),
            "divergences": sum(r.diagnostics.n_divergences for r in fits.values()),
        },
    )
    log.info("\n%s", base.to_string())


if __name__ == "__main__":
    main()
