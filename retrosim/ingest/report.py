"""QC report of an ingest: Markdown summary and figures.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot, no backend
switch), one per participant (VO2 trace, breaths removed as outliers, each stage's
steady-state window) and one per force stage (the filtered vertical force of the first
seconds with the detected contacts and the threshold).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["cart_figure", "force_figure", "qc_markdown"]


def _fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return str(v)


def cart_figure(cart, outliers, stages: pd.DataFrame, title):
    """VO2 [mL/min] against time with the outliers and the steady-state windows."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    t = cart.time_s / 60.0
    ax.plot(t[~outliers], cart.vo2_ml_min[~outliers], ".", ms=2, color="0.35", label="breaths")
    if outliers.any():
        ax.plot(t[outliers], cart.vo2_ml_min[outliers], "x", ms=4, color="tab:red",
                label="removed (outlier rule)")  # fmt: skip
    for _, s in stages.iterrows():
        if not np.isfinite(s.get("window_start_s", np.nan)):
            continue
        a, b = s["window_start_s"] / 60.0, s["window_end_s"] / 60.0
        ax.axvspan(a, b, color="tab:blue" if s["steady"] else "tab:orange", alpha=0.15, lw=0)
        ax.hlines(s["vo2_ml_min"], a, b, color="tab:blue", lw=2)
        ax.annotate(str(s["stage"]), (a, s["vo2_ml_min"]), xytext=(0, 6),
                    textcoords="offset points", fontsize=7)  # fmt: skip
    ax.set_xlabel("time [min]")
    ax.set_ylabel("VO2 [mL/min]")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def force_figure(steps: pd.DataFrame, title, seconds=3.0):
    """Filtered vertical force [N] with detected contact onsets and offsets."""
    from matplotlib.figure import Figure

    y = steps.attrs["filtered_n"]
    rate, t0 = steps.attrs["rate_hz"], steps.attrs["t0_s"]
    n = min(y.size, int(seconds * rate))
    t = t0 + np.arange(n) / rate
    fig = Figure(figsize=(9, 2.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t, y[:n], lw=0.8, color="0.2", label="filtered vGRF")
    ax.axhline(steps.attrs["threshold_n"], color="tab:orange", lw=0.8, ls="--",
               label=f"threshold {steps.attrs['threshold_n']:.0f} N")  # fmt: skip
    sel = steps["onset_s"] < t0 + seconds
    ax.plot(steps.loc[sel, "onset_s"], np.zeros(sel.sum()), "^", color="tab:green", ms=5,
            label="onset")  # fmt: skip
    sel2 = steps["offset_s"] < t0 + seconds
    ax.plot(steps.loc[sel2, "offset_s"], np.zeros(sel2.sum()), "v", color="tab:red", ms=5,
            label="offset")  # fmt: skip
    ax.set_xlabel("time [s]")
    ax.set_ylabel("vertical force [N]")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right", ncol=5)
    return fig


def qc_markdown(stages: pd.DataFrame, settings: dict, warnings: list, figures: list,
                synthetic: bool) -> str:  # fmt: skip
    """The QC report as Markdown text."""
    lines = ["# retrosim ingest: quality control", ""]
    if synthetic:
        lines += ["**SYNTHETIC DATA**: the protocol marks these stages as simulated, not "
                  "measured on people.", ""]  # fmt: skip
    lines += ["## Settings", ""]
    for k, v in settings.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Stages", ""]
    head = ["participant", "stage", "condition", "VO2 mL/kg/min", "RER", "HR bpm", "breaths",
            "outliers", "drift %", "steady", "energy W", "net W", "contacts", "tc ms",
            "impact peak BW", "AVLR BW/s"]  # fmt: skip
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for _, s in stages.iterrows():
        cond = "rest" if s["stage_type"] == "rest" else (
            f"{s['direction']} {s['mode']} {s['speed_m_s']:g} m/s")  # fmt: skip
        vo2kg = s["vo2_ml_min"] / s["mass_kg"] if np.isfinite(s.get("vo2_ml_min", np.nan)) else None
        tc = s.get("contact_time_s", np.nan)
        cells = [
            s["participant_id"], s["stage"], cond, _fmt(vo2kg), _fmt(s.get("rer"), ".3f"),
            _fmt(s.get("hr_bpm"), ".0f"), _fmt(s.get("n_breaths")), _fmt(s.get("n_outliers")),
            _fmt(100 * s.get("drift", np.nan), ".1f"), _fmt(s.get("steady")),
            _fmt(s.get("energy_w"), ".0f"), _fmt(s.get("net_energy_w"), ".0f"),
            _fmt(s.get("n_contacts")), _fmt(1000 * tc if np.isfinite(tc) else np.nan, ".0f"),
            _fmt(s.get("impact_peak_bw"), ".2f"), _fmt(s.get("loading_rate_avg_bw_s"), ".0f"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "## Flags", ""]
    flags = []
    for _, s in stages.iterrows():
        for f in s.get("flags", "").split("; ") if isinstance(s.get("flags"), str) else []:
            if f:
                flags.append(f"- {s['label']}: {f}")
    lines += flags or ["- none"]
    if warnings:
        lines += ["", "## Before `retrosim fit`", ""] + [f"- {w}" for w in warnings]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{p}]({p})" for p in figures]
    return "\n".join(lines) + "\n"
