"""The verdict of every claim as a function of speed, running and walking.

Fits the claims' meta-regression with studies/meta_analysis.py's own fitting function (same
evidence, seed and chain length, so the posterior is the same) and reads every testable claim × reading along a
speed grid that spans the speeds the evidence reports for that mode and the registry's reference
range (:func:`retrosim.meta.claims.verdict_vs_speed`). Points outside the speeds a family's own rows
report are extrapolations along the fitted speed slope and are drawn dashed; a family without a
speed moderator has the same verdict at every speed. Writes the table, the figure, the registry's
reference speeds and the numbers the manuscript quotes.
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
    "studies/meta_analysis.py",
]
OUTPUTS = [
    "results/tables/claims_speed.csv",
    "results/tables/reference_speeds.csv",
    "results/figures/claims_speed.png",
    "results/values/claims_speed.json",
]
TIMEOUT_S = 900

#: Curves drawn in the figure: (claim, reading) per panel; the rest are in the table only.
PANELS = {
    "run": (
        ("energy_20_30", "per_minute_same_speed"),
        ("energy_up_to_30", "per_minute_same_speed"),
        ("heart_rate_higher", "per_minute_same_speed"),
        ("knee_stress_30", "per_step_same_speed"),
        ("knee_stress_30_80", "per_step_same_speed"),
        ("knee_impact_80", "per_step_same_speed"),
    ),
    "walk": (
        ("energy_20_30", "walk_per_minute_same_speed"),
        ("energy_up_to_30", "walk_per_minute_same_speed"),
        ("heart_rate_higher", "walk_per_minute_same_speed"),
    ),
}
SHORT = {
    "energy_20_30": "20-30 % more calories",
    "energy_up_to_30": "up to 30 % more calories",
    "heart_rate_higher": "higher heart rate",
    "knee_stress_30": "about 30 % less knee stress",
    "knee_stress_30_80": "30-80 % less knee stress",
    "knee_impact_80": "up to 80 % less knee impact (peak GRF proxy)",
}
MODE_TITLE = {"run": "Running", "walk": "Walking"}


def figure(curve, claims, plt):
    refs = claims.REFERENCE_SPEEDS
    widths = [2.2, 1.0]
    fig, axes = plt.subplots(1, 2, figsize=(6.7, 3.3), gridspec_kw={"width_ratios": widths})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = list(dict.fromkeys(k for pairs in PANELS.values() for k, _ in pairs))
    handles = {}
    for ax, (mode, pairs) in zip(axes, PANELS.items(), strict=True):
        ref = refs[mode]
        ax.axvspan(ref.low_m_s, ref.high_m_s, color="0.88", lw=0, zorder=0)
        ax.axvline(ref.speed_m_s, color="0.45", lw=0.8, ls=":", zorder=1)
        for level in (claims.P_CONTRADICTED, claims.P_PLAUSIBLE, claims.P_SUPPORTED):
            ax.axhline(level, color="0.6", lw=0.6, ls=(0, (1, 2)), zorder=1)
        for key, reading in pairs:
            g = curve[(curve["claim"] == key) & (curve["reading_key"] == reading)]
            if g.empty:
                continue
            g = g.sort_values("speed_m_s")
            color = colors[keys.index(key) % len(colors)]
            x, y = g["speed_m_s"].to_numpy(), g["p_in_range"].to_numpy()
            inside = ~g["extrapolated"].to_numpy()
            # solid where the family's studies report speeds, dashed where extrapolated
            (line,) = ax.plot(x, np.where(inside, y, np.nan), color=color, lw=1.5)
            ax.plot(x, y, color=color, lw=1.1, ls=(0, (3, 2)))
            r = g[g["is_reference"]]
            ax.plot(r["speed_m_s"], r["p_in_range"], "o", color=color, ms=3.5)
            handles.setdefault(key, line)
        ax.set_xlabel("forward speed (m/s)")
        ax.set_title(MODE_TITLE[mode], loc="left", fontsize=8.5)
        ax.set_ylim(-0.02, 1.02)
        lo = min(curve.loc[curve["mode"] == mode, "speed_m_s"].min(), ref.low_m_s)
        hi = max(curve.loc[curve["mode"] == mode, "speed_m_s"].max(), ref.high_m_s)
        ax.set_xlim(lo - 0.02, hi + 0.02)
    axes[0].set_ylabel("P(effect in the claimed range)")
    fig.legend(
        [handles[k] for k in keys if k in handles],
        [SHORT[k] for k in keys if k in handles],
        loc="lower center",
        ncol=3,
        fontsize=6.5,
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def changes(curve, claims):
    """Per curve: the verdicts met within the family's reported speeds and over the grid."""
    texts = {c.key: c.text for c in claims.CLAIMS}
    order = {w: i for i, w in enumerate(claims.VERDICTS)}
    rows = []
    for (key, reading), g in curve.groupby(["claim", "reading_key"], sort=False):
        g = g.sort_values("speed_m_s")
        inside = g[~g["extrapolated"]]
        within = sorted(set(inside["verdict"]), key=order.get)
        rows.append(
            {
                "claim": key,
                "reading_key": reading,
                "text": texts[key],
                "reading": g["reading"].iloc[0],
                "mode": g["mode"].iloc[0],
                "speed_moderated": bool(g["speed_moderated"].iloc[0]),
                "verdicts_within_data": within,
                "verdicts_on_grid": sorted(set(g["verdict"]), key=order.get),
                "data_speed_min": float(inside["speed_m_s"].min()) if len(inside) else None,
                "data_speed_max": float(inside["speed_m_s"].max()) if len(inside) else None,
                "p_in_range_min": float(g["p_in_range"].min()),
                "p_in_range_max": float(g["p_in_range"].max()),
                "reference_verdict": str(g.loc[g["is_reference"], "verdict"].iloc[0]),
                "reference_extrapolated": bool(g.loc[g["is_reference"], "extrapolated"].iloc[0]),
            }
        )
    return rows


def main() -> None:
    log = _common.setup("claims_speed")
    import matplotlib.pyplot as plt
    import pandas as pd
    from meta_analysis import fit_claims_evidence

    from retrosim.meta import claims

    _effects, statements, res = fit_claims_evidence(log)
    verdicts = claims.evaluate(res, statements=statements).set_index(["claim", "reading_key"])
    curve = claims.verdict_vs_speed(res)
    # the curve at the reference speed is the verdict table's reading (same draws)
    ref = curve[curve["is_reference"]].set_index(["claim", "reading_key"])
    for idx, r in ref.iterrows():
        v = verdicts.loc[idx]
        if r["verdict"] != v["verdict"] or not np.isclose(r["p_in_range"], v["p_in_range"]):
            raise RuntimeError(f"speed curve and verdict table disagree at {idx}")
    cols = [
        "claim",
        "reading_key",
        "reading",
        "mode",
        "family",
        "speed_m_s",
        "is_reference",
        "in_reference_range",
        "speed_moderated",
        "extrapolated",
        "median_pct",
        "ci_low_pct",
        "ci_high_pct",
        "pred_low_pct",
        "pred_high_pct",
        "p_direction",
        "p_in_range",
        "p_in_range_mean",
        "p_in_range_new_study",
        "judged_on",
        "n_studies",
        "verdict",
        "reliable",
    ]
    _common.write_table(curve[cols], "claims_speed")
    refs = claims.REFERENCE_SPEEDS
    _common.write_table(
        pd.DataFrame(
            [
                {
                    "Mode": {"run": "running", "walk": "walking"}[r.mode],
                    "Reference (m/s)": f"{r.speed_m_s:.2f}",
                    "Range (m/s)": f"{r.low_m_s:.2f}–{r.high_m_s:.2f}",
                    "Range is": r.range_what,
                    "Source": f"{r.citation}; {r.locator}",
                }
                for r in refs.values()
            ]
        ),
        "reference_speeds",
    )
    _common.savefig(figure(curve, claims, plt), "claims_speed")

    summary = changes(curve, claims)
    moderated = [s for s in summary if s["speed_moderated"]]
    # energy per km at the same speed is the per-minute curve again (the same ratio)
    changing = [
        s
        for s in moderated
        if len(s["verdicts_within_data"]) > 1 and s["reading_key"] != "per_km_same_speed"
    ]
    grid = {
        m: {
            "lo": float(curve.loc[curve["mode"] == m, "speed_m_s"].min()),
            "hi": float(curve.loc[curve["mode"] == m, "speed_m_s"].max()),
        }
        for m in sorted(set(curve["mode"]))
    }
    frame = res.design.frame
    energy = sorted(f for f in set(frame["family"]) if str(f).startswith("energy"))
    values = {
        "converged": res.converged,
        "energy_basis_coded": "energy_basis" in frame.columns,
        "energy_families": energy,
        "n_energy_gross_rows": int((frame["family"] == claims.ENERGY_FAMILY).sum()),
        "n_energy_other_rows": int((frame["family"].astype(str).str.startswith("energy_")).sum()),
        "reference": {
            m: {
                "speed_m_s": r.speed_m_s,
                "low_m_s": r.low_m_s,
                "high_m_s": r.high_m_s,
                "range_what": r.range_what,
            }
            for m, r in refs.items()
        },
        "grid": grid,
        "n_curves": len(summary),
        "n_moderated": len(moderated),
        "n_unmoderated": len(summary) - len(moderated),
        "unmoderated": sorted({s["text"] for s in summary if not s["speed_moderated"]}),
        "n_changing": len(changing),
        "changing": [
            f"{SHORT[s['claim']]} ({s['reading']}): " + " or ".join(s["verdicts_within_data"])
            for s in changing
        ],
        "n_reference_extrapolated": sum(s["reference_extrapolated"] for s in summary),
        "curves": {f"{s['claim']}.{s['reading_key']}": s for s in summary},
    }
    _common.write_values("claims_speed", values)


if __name__ == "__main__":
    main()
