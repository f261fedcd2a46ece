"""ESS per second of nutpie against PyMC's own NUTS on the claims meta-analysis model.

Both samplers run in this process on the same model (the real evidence of
``retrosim.evidence``, or a synthetic table of the same shape if the evidence cannot be
loaded), the same priors, 2 chains x 1000 draws after 1000 tuning steps, target acceptance
0.99, 2 cores each. Reported: minimum and median bulk ESS and minimum tail ESS over the
gated parameters, divergences, sampling wall time, compile time, and the ratios
``nutpie / pymc`` of min-bulk-ESS per second (sampling only, and including compilation).
Goal: ratio >= 2.
"""

from __future__ import annotations

import time
import warnings

DRAWS, TUNE, CHAINS, TARGET_ACCEPT, SEED = 1000, 1000, 2, 0.99, 123


def _design():
    from retrosim import claims, inference

    try:
        from retrosim import evidence

        return inference.MetaDesign.from_frame(
            claims.analysis_rows(evidence.effect_sizes())
        ), "evidence"
    except Exception:  # pragma: no cover - evidence not available
        df, _ = inference.simulate_effect_sizes(0, n_studies=8, families=("energy", "pfj_force"))
        return inference.MetaDesign.from_frame(df), "synthetic"


def _ess(idata):
    import arviz as az
    import numpy as np

    from retrosim.inference import GATE_VARS

    post = idata["posterior"].to_dataset()[list(GATE_VARS)]
    bulk = np.concatenate(
        [np.ravel(v.values) for v in az.ess(post, method="bulk").data_vars.values()]
    )
    tail = np.concatenate(
        [np.ravel(v.values) for v in az.ess(post, method="tail").data_vars.values()]
    )
    div = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    return float(bulk.min()), float(np.median(bulk)), float(tail.min()), div


def run() -> dict:
    import nutpie
    import pymc as pm

    from retrosim import inference

    design, source = _design()
    priors = inference.Priors()
    out = {"data": source, "rows": design.n_rows, "draws": DRAWS, "tune": TUNE, "chains": CHAINS}

    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(inference.build_model(design, priors))
    out["nutpie_compile_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = nutpie.sample(
            compiled,
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            cores=2,
            seed=SEED,
            target_accept=TARGET_ACCEPT,
            progress_bar=False,
            save_warmup=False,
        )
    out["nutpie_sample_s"] = time.perf_counter() - t0
    b, m, t, d = _ess(idata)
    out.update(
        nutpie_min_ess_bulk=b, nutpie_median_ess_bulk=m, nutpie_min_ess_tail=t, nutpie_divergences=d
    )

    model = inference.build_model(design, priors)
    t0 = time.perf_counter()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = pm.NUTS(target_accept=TARGET_ACCEPT)
        out["pymc_compile_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        idata = pm.sample(
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            cores=2,
            step=step,
            random_seed=SEED,
            progressbar=False,
            compute_convergence_checks=False,
        )
    out["pymc_sample_s"] = time.perf_counter() - t1
    b, m, t, d = _ess(idata)
    out.update(pymc_min_ess_bulk=b, pymc_median_ess_bulk=m, pymc_min_ess_tail=t, pymc_divergences=d)

    nut = out["nutpie_min_ess_bulk"] / out["nutpie_sample_s"]
    pmc = out["pymc_min_ess_bulk"] / out["pymc_sample_s"]
    out["nutpie_min_ess_bulk_per_s"] = nut
    out["pymc_min_ess_bulk_per_s"] = pmc
    out["ratio_ess_per_s_sampling"] = nut / pmc
    out["ratio_ess_per_s_with_compile"] = (
        out["nutpie_min_ess_bulk"] / (out["nutpie_sample_s"] + out["nutpie_compile_s"])
    ) / (out["pymc_min_ess_bulk"] / (out["pymc_sample_s"] + out["pymc_compile_s"]))
    out["goal_ratio"] = 2.0
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(), indent=1))
