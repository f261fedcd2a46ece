"""The claims meta-analysis: end-to-end time, refit time and ESS per second.

(a) ``retrosim claims`` end to end, each run a new process (imports, evidence, fit, verdicts,
    outputs): the marginal model (default) against the earlier sampled-study-effects model
    (``--sampled-effects --target-accept 0.99``), alternating A B A B. The first marginal run
    uses an empty numba cache directory (a new installation: the log-density kernel is
    compiled); later runs reuse the cache. The earlier model compiles its PyMC graph every run.
    Goal: under 10 s cold on 2 cores.
(b) The checks of ``studies/meta_analysis.py``: every sensitivity variant and every
    leave-one-study-out refit at the paper's chain length (4 x 1000 after 1000), total wall time
    and how many passed the convergence gate. Goal: under 30 s. Baseline in the same run: one
    refit of the earlier model with its compiled graph cached, times the number of refits.
(c) nutpie (the numba density, chains on one core as retrosim runs it) against PyMC's own NUTS
    on the marginal model's PyTensor graph (2 cores), 4 chains x 1000 draws after 1000: min bulk
    ESS per second of sampling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 123
REPEATS = 2


def _evidence():
    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims

    return claims.analysis_rows(evidence.effect_sizes())


def _claims_run(extra, out, env) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "retrosim", "claims", "--out", out, *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, proc.returncode


def _end_to_end(out: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba-cache")}
        new, old, codes = [], [], []
        for i in range(REPEATS + 1):
            t, c = _claims_run([], os.path.join(tmp, f"new{i}"), env)
            new.append(t)
            codes.append(c)
            if i < REPEATS:
                t, c = _claims_run(
                    ["--sampled-effects", "--target-accept", "0.99", "--allow-unconverged"],
                    os.path.join(tmp, f"old{i}"),
                    env,
                )
                old.append(t)
                codes.append(c)
    out["claims_cold_s"] = new[0]
    out["claims_warm_s_median"] = sorted(new[1:])[len(new[1:]) // 2]
    out["claims_sampled_effects_s_median"] = sorted(old)[len(old) // 2]
    out["claims_ratio_sampled_over_marginal_cold"] = out["claims_sampled_effects_s_median"] / new[0]
    out["claims_exit_codes"] = ",".join(map(str, codes))
    out["claims_goal_cold_s"] = 10.0


def _checks(out: dict, effects) -> None:
    from retrosim.meta import model as inference

    design = inference.MetaDesign.from_frame(effects)
    res = inference.fit(design, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, gate="warn")
    t0 = time.perf_counter()
    sens = inference.sensitivity(design, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED)
    loso = inference.leave_one_study_out(res, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED)
    out["checks_s"] = time.perf_counter() - t0
    n_fit = sens["variant"].nunique() + loso["left_out"].nunique()
    passed = sens.groupby("variant")["converged"].all().sum() + (
        loso.groupby("left_out")["converged"].all().sum()
    )
    out["checks_refits"] = int(n_fit)
    out["checks_passed_gate"] = int(passed)
    out["checks_goal_s"] = 30.0
    # baseline: one refit of the sampled-effects model (compiled graph cached), x refits
    inference.fit(design, marginal=False, draws=10, tune=10, chains=CHAINS, seed=SEED, gate="off")
    t0 = time.perf_counter()
    run = dict(draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED)
    old = inference.fit(design, marginal=False, gate="off", target_accept=0.99, **run)
    out["sampled_effects_refit_s"] = time.perf_counter() - t0
    out["sampled_effects_refit_divergences"] = old.diagnostics.n_divergences
    out["checks_ratio_sampled_over_marginal"] = (
        out["sampled_effects_refit_s"] * n_fit / out["checks_s"]
    )


def _ess(idata):
    import arviz as az
    import numpy as np

    from retrosim.meta.model import SAMPLED_VARS

    post = idata["posterior"].to_dataset()[list(SAMPLED_VARS)]
    bulk = np.concatenate(
        [np.ravel(v.values) for v in az.ess(post, method="bulk").data_vars.values()]
    )
    div = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    return float(bulk.min()), div


def _samplers(out: dict, effects) -> None:
    import nutpie
    import pymc as pm

    from retrosim.meta import model as inference

    design = inference.MetaDesign.from_frame(effects)
    priors = inference.Priors()
    dens = inference.MarginalDensity(design, priors)
    dens.logp_grad([-2.0] * dens.ndim)  # compile (or load) the kernel outside the timing
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = nutpie.sample(
            dens.nutpie_model(design),
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            cores=1,  # as retrosim.meta.model runs it: its chains would share the GIL
            seed=SEED,
            target_accept=0.95,
            progress_bar=False,
        )
    out["nutpie_sample_s"] = time.perf_counter() - t0
    out["nutpie_min_ess_bulk"], out["nutpie_divergences"] = _ess(idata)
    model = inference.build_model(design, priors)
    t0 = time.perf_counter()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = pm.NUTS(target_accept=0.95)
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
    out["pymc_min_ess_bulk"], out["pymc_divergences"] = _ess(idata)
    out["ratio_ess_per_s_nutpie_over_pymc"] = (
        out["nutpie_min_ess_bulk"] / out["nutpie_sample_s"]
    ) / (out["pymc_min_ess_bulk"] / out["pymc_sample_s"])


def run() -> dict:
    effects = _evidence()
    out = {"rows": len(effects), "draws": DRAWS, "tune": TUNE, "chains": CHAINS}
    _end_to_end(out)
    _checks(out, effects)
    _samplers(out, effects)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(), indent=1))
