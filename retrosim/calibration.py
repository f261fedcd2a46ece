"""Bayesian calibration of the direction-specific energetics parameters.

What is fitted to what
----------------------
Data: the metabolic rows of :func:`retrosim.evidence.effect_sizes` (``outcome_family =
"energy"``, primary outcome of each independent report): ``y_i = ln(backward/forward)``
with sampling variance ``v_i``.

Model (per row *i*, mode from the row; ``"unspecified"`` mode is assigned by speed:
walking below the backward energetically optimal walk-run transition speed
1.85 m/s of Hreljac et al. 2005 [3]_, running above)::

    y_i ~ Normal(mu_i, sqrt(v_i + s_i^2 + tau^2))
    run:  mu_i = ln(t_cF(v_i) / t_cB(v_i)) + ln(V_B / V_F)        (mechanistic, [1]_ [2]_)
    walk: mu_i = a_walk + s_walk (v_i - 1.34 m/s)                  (explicit direction effect)

where the contact times come from :mod:`retrosim.gait` and depend on the sampled
``kvert_ratio`` (Cavagna 2012 [2]_), ``delta_aerial_s`` (Cavagna 2012), ``tc_scale``
and the muscle-volume ratio ``V_B/V_F`` (Wright & Weyand 2001 [1]_). Rows without a
speed are evaluated at the centre of the validated running range with an extra variance
``s_i^2`` equal to the spread of ``mu`` over that range (nominal parameters).

Priors: the gait priors of :func:`retrosim.gait.prior_spec` (published values, SEMs or
stated assumptions); ``a_walk ~ Normal(0, 0.5)`` and ``s_walk ~ Normal(0, 0.5)`` per m/s
(no direction effect a priori, +-65 % at one SD); ``tau ~ HalfNormal(0.2)`` between-study
SD of the log ratio. These widths are assumptions, stated here and checked by prior
predictive draws in the tests.

Posterior draws are cached under ``results/cache/`` keyed by a hash of the evidence
table, priors and model version, so ``retrosim simulate`` is fast after the first run.

References
----------
.. [1] Wright S, Weyand PG. J Exp Biol 2001;204:1805-1815.
.. [2] Cavagna GA, Legramandi MA, La Torre A. J Exp Biol 2012;215:75-84.
   doi:10.1242/jeb.057562
.. [3] Hreljac A, Imamura R, Escamilla RF, Casebolt J, Sison M. Preferred and
   energetically optimal transition speeds during backward human locomotion. J Sports
   Sci Med 2005;4:446-454 (abstract: EOTS 1.85 +- 0.09 m/s).
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from . import energetics as en
from . import gait as ga
from ._io import NETCDF_ENGINE, atomic_path
from .errors import InputError
from .paths import results_dir

log = logging.getLogger(__name__)

MODEL_VERSION = "calibration-v1"
#: Backward energetically optimal walk-run transition speed [m/s] (Hreljac 2005 [3]_).
WALK_RUN_SPLIT_M_S = 1.85
WALK_REF_SPEED_M_S = en.direction_params_nominal()["walk_ref_speed_m_s"]
WALK_PRIOR = {"walk_log_ratio": (0.0, 0.5), "walk_log_slope": (0.0, 0.5)}
TAU_PRIOR_SD = 0.2
FITTED = ("tc_scale", "kvert_ratio", "delta_aerial_s", "muscle_volume_ratio",
          "walk_log_ratio", "walk_log_slope", "tau")  # fmt: skip
REQUIRED = ("yi", "vi", "speed_m_s", "mode", "study_key")


# --------------------------------------------------------------------------- data
def calibration_table(effects=None):
    """Rows used for calibration, with the assigned mode and speed.

    Parameters
    ----------
    effects : pandas.DataFrame, optional
        Effect-size table shaped like ``retrosim.evidence.effect_sizes(outcome_family=
        "energy")``; default: that call.

    Returns
    -------
    pandas.DataFrame
        Columns ``study_key, mode_used, speed_used, speed_known, yi, vi, extra_var``.
    """
    import pandas as pd

    if effects is None:
        from . import evidence

        effects = evidence.effect_sizes(outcome_family="energy")
    df = pd.DataFrame(effects).copy()
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"effect table lacks columns {missing}", argument="effects")
    for col, default in (("primary", True), ("independent_report", True)):
        if col in df.columns:
            df = df[df[col].fillna(default).astype(bool)]
    df = df[np.isfinite(df["yi"].astype(float)) & np.isfinite(df["vi"].astype(float))]
    speed = pd.to_numeric(df["speed_m_s"], errors="coerce")
    mode = df["mode"].astype(str).str.lower()
    assigned = np.where(mode.str.startswith("walk"), "walk",
                        np.where(mode.str.startswith("run"), "run", ""))  # fmt: skip
    unknown = assigned == ""
    assigned = np.where(unknown & (speed < WALK_RUN_SPLIT_M_S), "walk", assigned)
    assigned = np.where(unknown & (speed >= WALK_RUN_SPLIT_M_S), "run", assigned)
    out = pd.DataFrame({
        "study_key": df["study_key"].astype(str).to_numpy(),
        "mode_used": assigned,
        "speed_known": np.isfinite(speed).to_numpy(),
        "speed_used": speed.to_numpy(),
        "yi": df["yi"].astype(float).to_numpy(),
        "vi": df["vi"].astype(float).to_numpy(),
    })  # fmt: skip
    out = out[out["mode_used"] != ""].reset_index(drop=True)
    lo, hi = ga.RUN_VALID_M_S
    grid = np.linspace(lo, hi, 50)
    spread = float(np.var(np.log(en.running_direction_ratio(grid))))
    fill = ~out["speed_known"].to_numpy()
    if np.any(fill & (out["mode_used"] == "walk").to_numpy()):
        raise InputError("walking rows need a speed", argument="effects")
    out.loc[fill, "speed_used"] = 0.5 * (lo + hi)
    out["extra_var"] = np.where(fill, spread, 0.0)
    return out


def table_hash(table) -> str:
    """Hash of the calibration table, priors and model version (cache key)."""
    payload = {
        "rows": table[["study_key", "mode_used", "speed_used", "yi", "vi", "extra_var"]]
        .round(12).astype(str).to_numpy().tolist(),
        "gait_priors": {k: list(map(str, v)) for k, v in ga.prior_spec().items()},
        "walk": WALK_PRIOR, "tau": TAU_PRIOR_SD, "version": MODEL_VERSION,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- model
def run_log_ratio(speed_m_s, tc_scale, kvert_ratio, delta_aerial_s, muscle_volume_ratio,
                  xp=np):  # fmt: skip
    """ln(backward/forward) net metabolic rate of running (numpy or pytensor ``xp``).

    Same algebra as :func:`retrosim.gait.spring_mass_running` and the force-time model.
    """
    nom = ga.nominal_parameters()
    kf = nom["kvert_forward_s2"]
    tcf = tc_scale * nom["tc_a"] * speed_m_s ** nom["tc_b"]
    half_f = np.pi / np.sqrt(kf)
    period_f = 2.0 * half_f
    period_b = np.pi / xp.sqrt(kf * kvert_ratio) + half_f
    tcb = xp.maximum(tcf - (period_f - period_b) - delta_aerial_s, 1e-3)
    return xp.log(tcf / tcb) + xp.log(muscle_volume_ratio)


def build_model(table):
    """PyMC model of the calibration (see module docstring)."""
    import pymc as pm
    import pytensor.tensor as pt

    spec = ga.prior_spec()
    run = (table["mode_used"] == "run").to_numpy()
    v = table["speed_used"].to_numpy(float)
    with pm.Model() as model:
        rv = {}
        for name, (dist, centre, spread) in spec.items():
            if name == "walk_step_frequency_ratio":
                continue
            if dist == "lognormal":
                z = pm.Normal(f"log_{name}", np.log(centre), spread)
                rv[name] = pm.Deterministic(name, pt.exp(z))
            else:
                rv[name] = pm.Normal(name, centre, spread)
        a = pm.Normal("walk_log_ratio", *WALK_PRIOR["walk_log_ratio"])
        s = pm.Normal("walk_log_slope", *WALK_PRIOR["walk_log_slope"])
        tau = pm.HalfNormal("tau", TAU_PRIOR_SD)
        mu_run = run_log_ratio(v, rv["tc_scale"], rv["kvert_ratio"], rv["delta_aerial_s"],
                               rv["muscle_volume_ratio"], xp=pt)  # fmt: skip
        mu_walk = a + s * (v - WALK_REF_SPEED_M_S)
        mu = pt.where(run, mu_run, mu_walk)
        sd = pt.sqrt(table["vi"].to_numpy() + table["extra_var"].to_numpy() + tau**2)
        pm.Normal("y", mu, sd, observed=table["yi"].to_numpy())
    return model


def fit(effects=None, *, draws=1000, tune=1000, chains=4, seed=20261121, gate="warn",
        cache=True):  # fmt: skip
    """Calibrate and return the posterior as a flat :class:`xarray.Dataset` (dim ``sample``).

    Cached in ``results/cache/calibration-<hash>.nc``; the Dataset attributes hold the
    convergence diagnostics and whether the gate passed.
    """
    import xarray as xr

    table = calibration_table(effects)
    key = f"{table_hash(table)}-d{draws}-t{tune}-c{chains}-s{seed}"
    path = results_dir() / "cache" / f"calibration-{key}.nc"
    if cache and path.exists():
        try:
            with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
                return ds.load()
        except (OSError, ValueError) as exc:  # stale or foreign cache file: resample
            log.warning("ignoring unreadable calibration cache %s (%s)", path, exc)
    from .sampling import sample  # heavy import only when sampling

    idata, diag = sample(build_model(table), draws=draws, tune=tune, chains=chains, seed=seed,
                         gate=gate, var_names=list(FITTED))  # fmt: skip
    post = idata["posterior"].to_dataset()[list(FITTED)]
    flat = post.stack(sample=("chain", "draw")).reset_index("sample", drop=True)
    flat = flat.transpose("sample", ...)
    flat = xr.Dataset({k: ("sample", np.asarray(flat[k].values, float)) for k in FITTED})
    flat.attrs.update(diagnostics=str(diag), converged=int(diag.passed), cache_key=key,
                      n_rows=len(table), studies=",".join(sorted(set(table["study_key"]))))  # fmt: skip
    for k in FITTED:
        flat[k].attrs.update(units="s" if k == "delta_aerial_s" else "1",
                             long_name=f"posterior of {k}")  # fmt: skip
    if cache:
        with atomic_path(path) as tmp:
            flat.to_netcdf(tmp, engine=NETCDF_ENGINE)
    return flat


# --------------------------------------------------------------------------- draws
def prior_draws(n_draws, rng) -> dict:
    """Parameter draws from the literature priors (gait + walking direction effect)."""
    rng = np.random.default_rng(rng)
    out = ga.sample_gait_parameters(n_draws, rng)
    out.update(en.direction_params_nominal())
    for name, (mu, sd) in WALK_PRIOR.items():
        out[name] = mu + sd * rng.standard_normal(int(n_draws))
    return out


def posterior_draws(n_draws, rng, *, effects=None, posterior=None) -> dict:
    """Parameter draws from the calibration posterior (resampled with replacement).

    Parameters not calibrated (e.g. the backward walking step-frequency ratio) are drawn
    from their priors.
    """
    rng = np.random.default_rng(rng)
    post = fit(effects) if posterior is None else posterior
    out = prior_draws(n_draws, rng)
    idx = rng.integers(0, post.sizes["sample"], int(n_draws))
    for k in FITTED:
        if k != "tau":
            out[k] = np.asarray(post[k].values)[idx]
    return out


def predict_log_ratio(posterior, speed_m_s, mode, *, new_study=True):
    """Posterior (predictive) draws of ln(backward/forward) at one speed and mode.

    With ``new_study`` the between-study SD ``tau`` is added (prediction for a new study).
    """
    p = {k: np.asarray(posterior[k].values) for k in FITTED}
    if mode == "run":
        mu = run_log_ratio(float(speed_m_s), p["tc_scale"], p["kvert_ratio"],
                           p["delta_aerial_s"], p["muscle_volume_ratio"])  # fmt: skip
    else:
        mu = p["walk_log_ratio"] + p["walk_log_slope"] * (float(speed_m_s) - WALK_REF_SPEED_M_S)
    if new_study:
        mu = mu + p["tau"] * np.random.default_rng(0).standard_normal(mu.shape)
    return mu


def held_out_check(effects=None, *, draws=500, tune=500, chains=2, seed=7):
    """Leave-one-study-out check.

    For each study, calibrate without it and predict its log ratio(s). Reports the
    posterior-predictive median and 95 % interval, and whether (a) the prediction's
    median lies inside the study's published 95 % interval ``y +- 1.96 sqrt(v)`` and
    (b) the published estimate lies inside the 95 % predictive interval.

    Returns
    -------
    pandas.DataFrame
        One row per held-out effect.
    """
    import pandas as pd

    table = calibration_table(effects)
    rows = []
    for study in sorted(set(table["study_key"])):
        train = table[table["study_key"] != study]
        test = table[table["study_key"] == study]
        eff = train.rename(columns={"mode_used": "mode", "speed_used": "speed_m_s"}).copy()
        eff.loc[~train["speed_known"].to_numpy(), "speed_m_s"] = np.nan
        post = fit(eff, draws=draws, tune=tune, chains=chains, seed=seed, gate="off")
        for _, r in test.iterrows():
            pred = predict_log_ratio(post, r["speed_used"], r["mode_used"])
            pred = pred + np.sqrt(r["extra_var"]) * np.random.default_rng(1).standard_normal(
                pred.shape)  # fmt: skip
            lo, med, hi = np.quantile(pred, [0.025, 0.5, 0.975])
            half = 1.96 * np.sqrt(r["vi"])
            rows.append({
                "study_key": study, "mode": r["mode_used"], "speed_m_s": r["speed_used"],
                "published_ratio": np.exp(r["yi"]),
                "published_lo": np.exp(r["yi"] - half), "published_hi": np.exp(r["yi"] + half),
                "predicted_ratio": np.exp(med), "predicted_lo": np.exp(lo),
                "predicted_hi": np.exp(hi),
                "median_inside_published": bool(abs(med - r["yi"]) <= half),
                "published_inside_predicted": bool(lo <= r["yi"] <= hi),
            })  # fmt: skip
    return pd.DataFrame(rows)
