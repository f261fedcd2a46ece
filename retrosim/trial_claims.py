"""Verdicts of the popular claims on one lab fit (adapter to :mod:`retrosim.claims`).

When :mod:`retrosim.claims` provides a registry (``CLAIMS``: objects or dicts with an id,
text, outcome family, claimed ratio range ``lo``/``hi`` and mode), its claims are used.
Otherwise the small built-in list :data:`FALLBACK_CLAIMS` is evaluated: the energy and
heart-rate claims whose wording is listed in the project's issue on claims, read as ratios
of backward to forward at the same speed. Knee claims need the registry's readings and are
not evaluated by the fallback.

Verdict words (thresholds of this module, applied at every speed of the data):

* ``supported``: P(ratio in the claimed range) >= 0.9 at every speed,
* ``contradicted``: P(ratio on the claimed side of 1) <= 0.05 at every speed,
* ``not supported``: P(ratio in the claimed range) <= 0.1 at every speed,
* ``plausible``: anything else,
* ``not testable with these data``: the outcome family or mode is absent.
"""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Outcome columns of each claim family.
FAMILIES = {
    "energy": ("vo2_ml_kg_min", "energy_w", "energy_w_kg", "cost_j_kg_m"),
    "heart_rate": ("hr_bpm",),
    "knee_stress": ("pfj_force_bw", "pfj_stress_mpa", "knee_moment_nm", "knee_moment_nm_kg"),
    "knee_impact": ("grf_bw",),
}

#: Built-in claims (wording from the project's claims issue; ranges are its literal reading).
FALLBACK_CLAIMS = (
    {
        "claim_id": "calories_20_30",
        "text": "backward running burns 20-30% more calories than forward at the same speed",
        "family": "energy",
        "mode": "run",
        "lo": 1.20,
        "hi": 1.30,
    },
    {
        "claim_id": "calories_up_to_30",
        "text": "backward running burns up to 30% more calories than forward",
        "family": "energy",
        "mode": "run",
        "lo": 1.00,
        "hi": 1.30,
    },
    {
        "claim_id": "heart_rate_higher",
        "text": "heart rate is higher when moving backward at the same pace",
        "family": "heart_rate",
        "mode": None,
        "lo": 1.00,
        "hi": np.inf,
    },
)


def _get(obj, *names, default=None):
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def registered_claims():
    """Return (claims as dicts, source note): the registry if usable, else the fallback."""
    try:
        mod = importlib.import_module("retrosim.claims")
    except ImportError:
        return list(FALLBACK_CLAIMS), "built-in fallback (retrosim.claims not available)"
    reg = getattr(mod, "CLAIMS", None)
    if callable(reg):
        reg = reg()
    if isinstance(reg, dict):
        reg = list(reg.values())
    out = []
    for c in reg or []:
        lo, hi = _get(c, "lo", "claimed_lo"), _get(c, "hi", "claimed_hi")
        rng = _get(c, "claimed_range", "range")
        if (lo is None or hi is None) and rng is not None and len(rng) == 2:
            lo, hi = rng
        family = _get(c, "family", "outcome_family")
        if lo is None or hi is None or family is None:
            continue
        out.append(
            {
                "claim_id": str(_get(c, "claim_id", "id", "key", "name", default=len(out))),
                "text": str(_get(c, "text", "claim", "statement", default="")),
                "family": str(family),
                "mode": _get(c, "mode"),
                "lo": float(lo),
                "hi": float(hi),
            }
        )
    if not out:
        return list(FALLBACK_CLAIMS), (
            "built-in fallback (retrosim.claims present but its registry could not be read)"
        )
    return out, "retrosim.claims registry"


def _ratio_scale(lo, hi):
    """Claimed ranges may be given as ratios (1.2) or percent changes (20): return ratios."""
    if abs(lo) > 3 or (np.isfinite(hi) and abs(hi) > 3):
        return 1 + lo / 100.0, 1 + hi / 100.0
    return lo, hi


def evaluate_claims(fit) -> pd.DataFrame:
    """One row per claim: ratio at the reference speed, probabilities and verdict."""
    claims, source = registered_claims()
    speeds = np.sort(fit.data_["speed_m_s"].unique())
    modes = set(fit.data_["mode"].astype(str))
    r = np.exp(fit._log_ratio_draws(speeds))  # samples x speeds
    r_ref = np.exp(fit._log_ratio_draws([fit.speed_ref_m_s_]))[:, 0]
    rows = []
    for c in claims:
        lo, hi = _ratio_scale(c["lo"], c["hi"])
        row = {
            "claim_id": c["claim_id"],
            "claim": c["text"],
            "claimed_ratio": f"[{lo:.2f}, {hi:.2f}]" if np.isfinite(hi) else f"> {lo:.2f}",
            "speed_ref_m_s": fit.speed_ref_m_s_,
        }
        outcomes = FAMILIES.get(c["family"], ())
        if fit.outcome not in outcomes or (c["mode"] and c["mode"] not in modes):
            why = (
                f"outcome {fit.outcome} is not in family {c['family']}"
                if fit.outcome not in outcomes
                else f"no {c['mode']} trials"
            )
            rows.append({**row, "verdict": "not testable with these data", "note": why})
            continue
        p_in = ((r >= lo) & (r <= hi)).mean(0)
        side_up = lo >= 1.0
        p_dir = (r > 1).mean(0) if side_up else (r < 1).mean(0)
        if np.all(p_in >= 0.9):
            verdict = "supported"
        elif np.all(p_dir <= 0.05):
            verdict = "contradicted"
        elif np.all(p_in <= 0.1):
            verdict = "not supported"
        else:
            verdict = "plausible"
        rows.append(
            {
                **row,
                "ratio_median": float(np.median(r_ref)),
                "ratio_q5": float(np.quantile(r_ref, 0.05)),
                "ratio_q95": float(np.quantile(r_ref, 0.95)),
                "p_direction": float((r_ref > 1).mean() if side_up else (r_ref < 1).mean()),
                "p_in_range": float(((r_ref >= lo) & (r_ref <= hi)).mean()),
                "p_in_range_min_over_speeds": float(p_in.min()),
                "p_in_range_max_over_speeds": float(p_in.max()),
                "verdict": verdict,
                "note": source,
            }
        )
    return pd.DataFrame(rows)
