"""Settings the Methods section quotes, read from the package (priors, gate, defaults)."""

from __future__ import annotations

import dataclasses

import _common

INPUTS = ["retrosim.inference", "retrosim.sampling", "retrosim.energetics", "retrosim.evidence"]
OUTPUTS = ["results/values/model_setup.json"]


def main() -> None:
    _common.setup("model_setup")
    from scipy.stats import norm

    from retrosim import energetics, evidence, inference, sampling

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
        },
    )


if __name__ == "__main__":
    main()
