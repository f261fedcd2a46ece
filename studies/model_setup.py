"""Settings the Methods section quotes, read from the package (priors, gate, defaults)."""

from __future__ import annotations

import dataclasses

import _common

INPUTS = [
    "retrosim.meta.model",
    "retrosim.bayes.sampling",
    "retrosim.models.energetics",
    "retrosim.evidence.tables",
    "retrosim.bayes.calibration",
    "retrosim.models.gait",
    "retrosim.models.knee",
    "retrosim/data/parameters",
]
OUTPUTS = ["results/values/model_setup.json"]


def _models() -> dict:
    """Constants of the gait, energetics, knee and calibration models quoted in the Methods."""
    import numpy as np

    from retrosim.bayes import calibration
    from retrosim.errors import InputError
    from retrosim.models import energetics, gait, knee

    g = gait.load_parameters()

    def gp(name, direction=None):
        rows = g[(g["name"] == name) & ((g["direction"] == direction) if direction else True)]
        if len(rows) != 1:
            raise InputError(f"expected one row {name!r} ({direction}), found {len(rows)}",
                             file=gait.DATA_DIR / gait.PARAMETER_FILE, column="name")  # fmt: skip
        return float(rows["value"].iloc[0])

    nom = gait.nominal_parameters()
    onset, full = energetics.volume_term_speeds()
    names, _, sd = calibration.priors(slope=True)
    return {
        "volume_onset_m_s": onset,
        "volume_full_m_s": full,
        "ww_speed_low_m_s": gp("ww_speed_low"),
        "ww_speed_high_m_s": gp("ww_speed_high"),
        "ww_n_speeds": int(gp("ww_n_speeds")),
        "ww_n_proportional": int(gp("ww_n_speeds_proportional")),
        "ww_volume_pct": 100.0 * (gp("muscle_volume_ratio", "backward") - 1.0),
        "kvert_forward_s2": gp("kvert_mass_specific", "forward"),
        "kvert_backward_s2": gp("kvert_mass_specific", "backward"),
        "prior_step_frequency_pct": 100.0 * float(np.expm1(nom["dir_step_frequency"])),
        "prior_contact_time_pct": 100.0 * float(np.expm1(nom["dir_contact_time"])),
        "prior_sd": dict(zip(names, (float(x) for x in sd), strict=True)),
        "tc_scale_cv": float(gait.prior_spec()["tc_scale"][2]),
        "cadence_ref_speed_m_s": gait.CADENCE_REF_SPEED_M_S,
        "tau_prior_sd": calibration.TAU_PRIOR_SD,
        "tau_grid_n": len(calibration.TAU_GRID),
        "tau_grid_max": float(calibration.TAU_GRID[-1]),
        "walk_ref_speed_m_s": calibration.WALK_REF_SPEED_M_S,
        "walk_run_split_m_s": calibration.WALK_RUN_SPLIT_M_S,
        "resting_vo2_ml_kg_min": energetics.RESTING_VO2_ML_KG_MIN,
        "knee_reference_weight_n": knee.reference_inputs()["reference_body_weight_n"],
        "knee_angle_min_deg": knee.ANGLE_RANGE_DEG[0],
        "knee_angle_max_deg": knee.ANGLE_RANGE_DEG[1],
        "roos_n": int(knee.load_parameters().set_index("name").loc["roos_n", "value"]),
    }


def main() -> None:
    _common.setup("model_setup")
    from scipy.stats import norm

    from retrosim.bayes import sampling
    from retrosim.evidence import tables as evidence
    from retrosim.meta import model as inference
    from retrosim.models import energetics

    priors = inference.Priors()
    p = dataclasses.asdict(priors)
    r_mean = priors.r_a / (priors.r_a + priors.r_b)
    _common.write_values(
        "model_setup",
        {
            "priors": p,
            "r_prior_mean": r_mean,
            "alpha_prior_pct_lo": float(inference.to_percent(-1.96 * priors.alpha_sd)),
            "alpha_prior_pct_hi": float(inference.to_percent(1.96 * priors.alpha_sd)),
            "prior_range_pct": round(100 * (2 * norm.cdf(1.96) - 1)),
            "rhat_max": sampling.RHAT_MAX,
            "ess_min": sampling.ESS_MIN,
            "default_rer": energetics.DEFAULT_RER,
            "default_r": evidence.DEFAULT_R,
            "models": _models(),
        },
    )


if __name__ == "__main__":
    main()
