"""Verdicts of the registered claims on one lab fit (adapter to :mod:`retrosim.meta.claims`).

The claims, their ranges (percent, backward relative to forward), readings and verdict
thresholds come from :mod:`retrosim.meta.claims` (:data:`retrosim.meta.claims.CLAIMS`,
:func:`retrosim.meta.claims.verdict`). Lab trials are matched-speed comparisons of rates or
per-step peaks, so only these readings can be tested here:

* ``per_minute_same_speed`` and ``per_km_same_speed`` (energy, heart rate): at equal speed the
  per-km ratio equals the per-minute ratio, so both read the fitted ratio;
* ``per_step_same_speed`` (knee): peak force or stress per step.

Self-selected-speed readings and knee load per km (which needs step frequency) are reported
as not testable with these data. One lab's data set counts as one study, so, as in
:func:`retrosim.meta.claims.verdict`, it can make a claim at most "plausible"; ``p_in_range`` and
``p_direction`` say how strongly the data speak. The claim is checked for each mode it concerns at the mean
speed of that mode's trials (``speed_m_s``); the probability of the claimed range at the
slowest and fastest speeds is given alongside (``p_in_range_slowest``, ``p_in_range_fastest``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrosim.meta import claims as meta_claims

__all__ = ["FAMILIES", "TESTABLE_READINGS", "evaluate_claims", "registered_claims"]

#: Outcome columns of each claim family (families of :mod:`retrosim.meta.claims`).
FAMILIES = {
    "energy": ("vo2_ml_kg_min", "energy_w", "energy_w_kg", "cost_j_kg_m"),
    "heart_rate": ("hr_bpm",),
    "pfj_force": ("pfj_force_bw", "pfj_stress_mpa"),
    "vgrf": ("grf_bw",),
}
#: Readings a matched-speed lab fit can test.
TESTABLE_READINGS = ("per_minute_same_speed", "per_km_same_speed", "per_step_same_speed")

#: Where the claims and the verdict thresholds come from (the ``note`` column).
SOURCE = "retrosim.meta.claims registry"


def registered_claims() -> list[dict]:
    """The claims of :data:`retrosim.meta.claims.CLAIMS` as dicts of the fields used here."""
    fields = ("key", "text", "family", "direction", "low_pct", "high_pct", "mode", "readings")
    return [{k: getattr(c, k) for k in fields} for c in meta_claims.CLAIMS]


def evaluate_claims(fit) -> pd.DataFrame:
    """One row per claim, reading and mode: ratio at the mode's mean speed, probabilities, verdict."""
    claims, verdict, source = registered_claims(), meta_claims.verdict, SOURCE
    conditions = dict(fit.conditions_)
    modes_all = fit.data_["mode"].astype(str)
    reliable = bool(fit.diagnostics_.passed)
    rows = []
    for c in claims:
        lo, hi = 1 + c["low_pct"] / 100.0, 1 + c["high_pct"] / 100.0
        modes = list(conditions) if c["mode"] == "unspecified" else [c["mode"]]
        for reading in c["readings"]:
            for mode in modes:
                row = {
                    "claim": c["key"],
                    "reading": reading,
                    "mode": mode,
                    "claimed_change_pct": (
                        f"> {c['low_pct']:+g}" if np.isinf(c["high_pct"])
                        else f"{c['low_pct']:+g} to {c['high_pct']:+g}"
                    ),
                }  # fmt: skip
                if fit.outcome not in FAMILIES.get(c["family"], ()):
                    why = f"outcome {fit.outcome} does not measure {c['family']}"
                elif mode not in conditions:
                    why = f"no {mode} trials"
                elif reading not in TESTABLE_READINGS:
                    why = "needs self-selected speeds or step frequency, not in lab trials"
                else:
                    why = None
                if why:
                    rows.append({**row, "verdict": "not testable with these data", "note": why})
                    continue
                speeds = conditions[mode]
                v_ref = float(np.round(fit.data_.loc[modes_all == mode, "speed_m_s"].mean(), 2))
                r_ref = np.exp(fit.log_ratio_draws([v_ref], mode=mode))[:, 0]
                r_ends = np.exp(fit.log_ratio_draws([speeds[0], speeds[-1]], mode=mode))
                p_in = float(((r_ref >= lo) & (r_ref <= hi)).mean())
                p_dir = float((r_ref > 1).mean() if c["direction"] > 0 else (r_ref < 1).mean())
                p_in_ends = ((r_ends >= lo) & (r_ends <= hi)).mean(0)
                rows.append(
                    {
                        **row,
                        "speed_m_s": v_ref,
                        "change_pct_median": 100 * (float(np.median(r_ref)) - 1),
                        "change_pct_q5": 100 * (float(np.quantile(r_ref, 0.05)) - 1),
                        "change_pct_q95": 100 * (float(np.quantile(r_ref, 0.95)) - 1),
                        "p_direction": p_dir,
                        "p_in_range": p_in,
                        "p_in_range_slowest": float(p_in_ends[0]),
                        "p_in_range_fastest": float(p_in_ends[1]),
                        "verdict": verdict(p_in, p_dir, n_studies=1),
                        "reliable": reliable,
                        "note": source,
                    }
                )
    return pd.DataFrame(rows)
