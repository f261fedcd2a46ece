"""From per-stage results to the ``retrosim fit`` trial table, validated.

One row per exercise stage, in the columns of :data:`retrosim.trials.schema.SCHEMA`:
the condition and the participant from the protocol, gross VO2 per kg, gross metabolic
power (per kg and per metre), heart rate, and the gait and impact measures of the force
recording. A stage whose RER lies outside the energy equation's range keeps its VO2 but
not its energy (the conversion assumes oxidative metabolism), and says so in the QC report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrosim.errors import InputError
from retrosim.trials import schema as ts

__all__ = ["FORCE_COLUMNS", "to_trial_table", "validate_for_fit"]

#: Force measures carried into the trial table (see :mod:`retrosim.ingest.force`).
FORCE_COLUMNS = (
    "contact_time_s",
    "flight_time_s",
    "step_frequency_hz",
    "grf_bw",
    "impact_peak_bw",
    "loading_rate_avg_bw_s",
    "loading_rate_inst_bw_s",
    "impulse_bw_s_step",
    "impulse_bw_s_km",
)
_PASS = ("sex", "age_y", "habituation_sessions", "synthetic")


def to_trial_table(stages: pd.DataFrame) -> pd.DataFrame:
    """Build the trial table from the per-stage results (``stages.csv`` columns).

    Returns
    -------
    pandas.DataFrame
        Trial-table columns only, exercise stages only; ``attrs["stage_labels"]`` maps each
        row to the stage it came from (for messages).
    """
    ex = stages[stages["stage_type"] == "exercise"].reset_index(drop=True)
    out = pd.DataFrame({
        "participant_id": ex["participant_id"].astype(str),
        "direction": ex["direction"],
        "mode": ex["mode"],
        "speed_m_s": ex["speed_m_s"],
        "mass_kg": ex["mass_kg"],
        "grade_pct": ex["grade_pct"],
    })  # fmt: skip
    if ex["trial"].notna().any():
        out["trial"] = ex["trial"].astype("Int64")
    out["session"] = ex["session"].astype(int)
    for c in _PASS:
        if c in ex and ex[c].notna().any():
            out[c] = ex[c]
    if "vo2_ml_min" in ex and ex["vo2_ml_min"].notna().any():
        out["vo2_ml_kg_min"] = ex["vo2_ml_min"] / ex["mass_kg"]
        ok = ex["rer_valid"].fillna(False).astype(bool)
        energy = ex["energy_w"].where(ok)
        out["energy_w"] = energy
        out["energy_w_kg"] = energy / ex["mass_kg"]
        out["cost_j_kg_m"] = out["energy_w_kg"] / ex["speed_m_s"]
        if ex["hr_bpm"].notna().any():
            out["hr_bpm"] = ex["hr_bpm"]
    for c in FORCE_COLUMNS:
        if c in ex and ex[c].notna().any():
            out[c] = ex[c]
    ordered = [c for c in ts.SCHEMA if c in out.columns]
    out = out[ordered]
    out.attrs["stage_labels"] = ex["label"].tolist()
    return out


def validate_for_fit(trials: pd.DataFrame, source="trials.csv"):
    """Check the table with :func:`retrosim.trials.schema.validate_trials`.

    Problems of the design (too few participants, a participant with one direction) do
    not stop the ingest: they are returned as warnings, since a lab may ingest one
    participant at a time. Any other problem (a value outside its plausible range, which
    from raw files means a unit or protocol mistake) raises an InputError naming the stage.

    Returns
    -------
    list of str
        Design warnings.
    """
    outcome = "vo2_ml_kg_min" if "vo2_ml_kg_min" in trials else next(
        (c for c in ts.OUTCOMES if c in trials), None)  # fmt: skip
    labels = trials.attrs.get("stage_labels", [])
    df = trials.copy()
    df.index = pd.RangeIndex(1, len(df) + 1)
    df.attrs = {}
    try:
        ts.validate_trials(df, outcome=outcome, source=source)
    except InputError as exc:
        problems = getattr(exc, "problems", [])
        design = [p for p in problems if p.kind == "design"]
        other = [p for p in problems if p.kind != "design"]
        if not other:
            return [str(p) for p in design]
        lines = []
        for p in other:
            where = ", ".join(labels[r - 1] for r in p.rows if 0 < r <= len(labels))
            lines.append(f"  - {where or 'trial table'}: column '{p.column}': {p.message}")
        raise InputError(
            "the values computed from the raw files are not plausible (a unit or protocol "
            "mistake?):\n" + "\n".join(lines), file=source,
        ) from None  # fmt: skip
    return []


def net_energy(stages: pd.DataFrame) -> pd.Series:
    """Gross power minus the same participant and session's resting power [W]."""
    rest = stages[stages["stage_type"] == "rest"].set_index(["participant_id", "session"])
    key = list(zip(stages["participant_id"], stages["session"], strict=True))
    base = np.array([rest["energy_w"].get(k, np.nan) if len(rest) else np.nan for k in key])
    net = stages["energy_w"].to_numpy(float) - base
    return pd.Series(np.where(stages["stage_type"] == "rest", np.nan, net), index=stages.index)
