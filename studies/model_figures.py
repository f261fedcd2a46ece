"""Figures of the model chain: energy vs speed, backward/forward ratio vs evidence, knee loading.

Reads the quantiles written by studies/model_grid.py and the published effect sizes
(retrosim.evidence.tables); writes three figures and the model-versus-evidence numbers.
"""

from __future__ import annotations

import _common
import numpy as np

INPUTS = [
    "results/tables/model_quantiles.csv",
    "retrosim/data/literature",
    "retrosim.evidence.tables",
]
OUTPUTS = [
    "results/figures/energy_speed.png",
    "results/figures/ratio_speed.png",
    "results/figures/knee_speed.png",
    "results/tables/ratio_vs_evidence.csv",
    "results/values/model_figures.json",
]

MODE_MARKERS = {"run": "o", "walk": "s", "unspecified": "D"}
MODE_LABELS = {"run": "running", "walk": "walking", "unspecified": "mode not stated"}


def _series(q, mode, var, direction, mass=None):
    sel = q[(q["mode"] == mode) & (q["variable"] == var) & (q["direction"] == direction)]
    if mass is not None:
        sel = sel[np.isclose(sel["mass_kg"], mass)]
    return sel.sort_values("speed_m_s")


def _band(ax, s, color, label=None, lw=1.4, alpha=0.18, scale=1.0, offset=0.0):
    x = s["speed_m_s"].to_numpy()
    ax.fill_between(
        x, s["q025"] * scale + offset, s["q975"] * scale + offset, color=color, alpha=alpha, lw=0
    )
    ax.plot(x, s["q50"] * scale + offset, color=color, lw=lw, label=label)


def energy_figure(q, masses, plt):
    fig, axes = plt.subplots(2, 2, figsize=(6.7, 5.2))
    widths = np.linspace(0.8, 2.0, len(masses))
    for row, mode in enumerate(("run", "walk")):
        for col, var in enumerate(("gross_kcal_min", "net_kcal_km")):
            ax = axes[row, col]
            for m, lw in zip(masses, widths, strict=True):
                for d in ("forward", "backward"):
                    s = _series(q, mode, var, d, m)
                    label = f"{d}, {m:.0f} kg" if col == 0 else None
                    _band(ax, s, _common.COLORS[d], label, lw=lw, alpha=0.12)
                    x = s["speed_m_s"].iloc[-1]
                    if col == 1 and d == "backward":
                        ax.annotate(
                            f"{m:.0f} kg",
                            (x, s["q50"].iloc[-1]),
                            xytext=(3, 0),
                            textcoords="offset points",
                            fontsize=6.5,
                            va="center",
                        )
            model = q[(q["mode"] == mode) & (q["variable"] == var)]["model"].iloc[0]
            what = "gross energy (kcal/min)" if col == 0 else "net energy (kcal/km)"
            ax.set_ylabel(what)
            ax.set_title(
                f"{MODE_LABELS[mode].capitalize()}: {what.split(' (')[0]} [{model}]", loc="left"
            )
            if row == 1:
                ax.set_xlabel("speed (m/s)")
    handles = [plt.Line2D([], [], color=_common.COLORS[d], lw=2, label=d) for d in _common.COLORS]
    fig.legend(handles=handles, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def ratio_figure(q, effects, ref_mass, plt):
    """Model B/F ratio of net metabolic rate with 95 % bands, and the published points."""
    fig, ax = plt.subplots(figsize=(6.7, 3.3))
    colors = {"run": "#0072B2", "walk": "#009E73"}
    for mode in ("run", "walk"):
        s = _series(q, mode, "net_rate_w_kg", "ratio", ref_mass)
        _band(ax, s, colors[mode], f"model, {MODE_LABELS[mode]}", scale=100, offset=-100)
    rows = []
    for _, e in effects.iterrows():
        lo, hi = e.yi - 1.96 * np.sqrt(e.vi), e.yi + 1.96 * np.sqrt(e.vi)
        pct = 100 * (np.exp([e.yi, lo, hi]) - 1)
        inside = np.nan
        if np.isfinite(e.speed_m_s) and e["mode"] in ("run", "walk"):
            s = _series(q, e["mode"], "net_rate_w_kg", "ratio", ref_mass)
            x = s["speed_m_s"].to_numpy()
            if x.min() - 1e-9 <= e.speed_m_s <= x.max() + 1e-9:
                band_lo = np.interp(e.speed_m_s, x, s["q025"]) * 100 - 100
                band_hi = np.interp(e.speed_m_s, x, s["q975"]) * 100 - 100
                inside = float(pct[1] <= band_hi and pct[2] >= band_lo)  # intervals overlap
        rows.append(
            {
                "study": e.study_key,
                "outcome": e.outcome,
                "mode": e["mode"],
                "speed_m_s": e.speed_m_s,
                "pct": pct[0],
                "pct_lo": pct[1],
                "pct_hi": pct[2],
                "imputed": bool(e.dispersion_imputed),
                "overlaps_model": inside,
            }
        )
    import pandas as pd

    table = pd.DataFrame(rows)
    xmax = q[q["variable"] == "net_rate_w_kg"]["speed_m_s"].max()
    no_speed = table[~np.isfinite(table["speed_m_s"])]
    x_nr = xmax + 0.45
    for mode, marker in MODE_MARKERS.items():
        t = table[table["mode"] == mode]
        if t.empty:
            continue
        x = np.where(np.isfinite(t["speed_m_s"]), t["speed_m_s"], x_nr)
        jitter = np.where(np.isfinite(t["speed_m_s"]), 0, np.linspace(-0.12, 0.12, len(t)))
        ax.errorbar(
            x + jitter,
            t["pct"],
            yerr=[t["pct"] - t["pct_lo"], t["pct_hi"] - t["pct"]],
            fmt=marker,
            ms=4,
            color=colors.get(mode, "0.3"),
            mfc="white",
            capsize=2,
            lw=0.9,
            label=f"published, {MODE_LABELS[mode]}",
        )
    ax.axhline(0, color="0.4", lw=0.7)
    if len(no_speed):
        ax.axvline(xmax + 0.2, color="0.7", lw=0.6, ls=":")
        ticks = [t for t in ax.get_xticks() if t <= xmax]
        ax.set_xticks([*ticks, x_nr], [f"{t:g}" for t in ticks] + ["speed\nnot given"])
    ax.set_xlabel("speed (m/s)")
    ax.set_ylabel("backward vs forward (%)")
    ax.set_title("Net metabolic rate, backward relative to forward (same speed)", loc="left")
    ax.legend(ncol=2, loc="upper left")
    fig.tight_layout()
    return fig, table


def knee_figure(q, effects, ref_mass, plt):
    fig, axes = plt.subplots(1, 3, figsize=(6.7, 2.6))
    panels = [
        ("pfj_force_bw", "PFJ force per contact (BW)"),
        ("pfj_force_per_km_bw", "PFJ force per km, one knee (BW/km)"),
    ]
    for ax, (var, label) in zip(axes[:2], panels, strict=True):
        for d in ("forward", "backward"):
            _band(ax, _series(q, "run", var, d, ref_mass), _common.COLORS[d], d)
        ax.set_title(label, loc="left", fontsize=8)
        ax.set_xlabel("speed (m/s)")
    axes[0].legend(loc="upper left")
    ax = axes[2]
    for var, color, label in (
        ("pfj_force_bw", "#CC79A7", "per contact"),
        ("pfj_force_per_km_bw", "#E69F00", "per km"),
    ):
        _band(ax, _series(q, "run", var, "ratio", ref_mass), color, label, scale=100, offset=-100)
    pfj = effects[effects["outcome_family"] == "pfj_force"].drop_duplicates("study_key")
    xmax = q["speed_m_s"].max()
    n_nr = int((~np.isfinite(pfj["speed_m_s"])).sum())
    k = 0
    for _, e in pfj.iterrows():
        pct = 100 * (np.exp(e.yi + np.array([0, -1.96, 1.96]) * np.sqrt(e.vi)) - 1)
        if np.isfinite(e.speed_m_s):
            xs = e.speed_m_s
        else:
            xs, k = xmax + 0.5 + 0.35 * k, k + 1
        ax.errorbar(
            [xs],
            [pct[0]],
            yerr=[[pct[0] - pct[1]], [pct[2] - pct[0]]],
            fmt="o",
            ms=3.5,
            mfc="white",
            color="0.2",
            capsize=2,
            lw=0.9,
        )
        ax.annotate(
            e.study_key, (xs, pct[0]), xytext=(3, 2), textcoords="offset points", fontsize=5.5
        )
    ax.axhline(0, color="0.4", lw=0.7)
    if n_nr:
        ax.axvline(xmax + 0.25, color="0.7", lw=0.6, ls=":")
        ticks = [t for t in range(1, int(xmax) + 1)]
        ax.set_xticks([*ticks, xmax + 0.5 + 0.175 * (n_nr - 1)], [*map(str, ticks), "n/g"])
    ax.set_title("Backward vs forward (%)", loc="left", fontsize=8)
    ax.set_xlabel("speed (m/s)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def main() -> None:
    log = _common.setup("model_figures")
    import matplotlib.pyplot as plt
    import pandas as pd

    from retrosim.evidence import tables as evidence

    q = pd.read_csv(_common.TABLES / "model_quantiles.csv")
    masses = sorted(q["mass_kg"].unique())
    ref_mass = 70.0 if 70.0 in masses else masses[len(masses) // 2]
    effects = evidence.effect_sizes()
    energy = effects[effects["outcome_family"] == "energy"]
    _common.savefig(energy_figure(q, masses, plt), "energy_speed")
    fig, table = ratio_figure(q, energy, ref_mass, plt)
    _common.savefig(fig, "ratio_speed")
    _common.write_table(table, "ratio_vs_evidence")
    _common.savefig(knee_figure(q, effects, ref_mass, plt), "knee_speed")
    compared = table[np.isfinite(table["overlaps_model"])]
    values = {
        "n_energy_points": len(table),
        "n_energy_points_no_speed": int((~np.isfinite(table["speed_m_s"])).sum()),
        "n_compared": len(compared),
        "n_overlap": int(compared["overlaps_model"].sum()),
        "published_pct_min": float(table["pct"].min()),
        "published_pct_max": float(table["pct"].max()),
        "n_pfj_points": int((effects["outcome_family"] == "pfj_force").sum()),
    }
    log.info("model vs published: %d of %d intervals overlap", values["n_overlap"], len(compared))
    _common.write_values("model_figures", values)


if __name__ == "__main__":
    main()
