"""The marginal meta-analysis model: coefficients, study and condition effects integrated out.

Checked against implementations written here, independently of ``retrosim.meta.model``:

* the marginal likelihood against a dense multivariate normal built by hand (scipy);
* the gradient of the numpy density against finite differences, its prior part against
  scipy's densities plus the log/logit Jacobians;
* the PyMC graph against the numpy density;
* the conditional draws of the integrated-out quantities against the joint Gaussian
  posterior of (coefficients, study effects, condition effects) computed densely;
* the posterior against the sampled-study-effects model, against brms
  (``tests/data/reference/brms_reference.json``) and against an exact grid computation of the
  one-level random-effects model (bayesmeta style);
* recovery of known parameters, and the convergence gate on the project's evidence.

Monte-Carlo comparisons use tolerances of a few combined Monte-Carlo standard errors (arviz
``mcse``) and fixed seeds.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from retrosim.meta import model as inf

REF = Path(__file__).parents[1] / "data" / "reference"
TAU_PRIORS = ("half_normal", "half_cauchy", "log_normal_tau2")
#: Monte-Carlo tolerance in combined MCSEs
K_MCSE = 5.0


# ----------------------------------------------------------------------------------------------
# Designs and an independent dense implementation
# ----------------------------------------------------------------------------------------------


def _mixed_frame(seed=3):
    """Two families, paired and unpaired rows, run and walk, all three speed matchings, graded
    rows, and underwater rows in one family."""
    df, _ = inf.simulate_effect_sizes(
        seed,
        n_studies=5,
        speeds_m_s=(2.0, 3.0, 4.0),
        families=("energy", "knee_moment"),
        modes=("run", "walk"),
        tau_study=0.1,
        tau_cond=0.05,
    )
    df = df.copy()
    # some rows reported as between-subject: their vi is a fixed sampling variance
    between = np.arange(len(df)) % 4 == 1
    df.loc[between, "design"] = "between"
    df.loc[between, "vi"] = df.loc[between, "vi"] * 1.7
    # speed matching varies within each family, so both match moderators are active
    df.loc[np.arange(len(df)) % 5 == 2, "speed_matching"] = "self_selected"
    df.loc[np.arange(len(df)) % 7 == 3, "speed_matching"] = "matched_intensity"
    # treadmill grades vary (one value averaged over a grade range), so the grade moderator is on
    i = np.arange(len(df))
    df["grade_pct"] = np.where(i % 3 == 0, 5.0, 0.0)
    df["grade_low_pct"] = np.where(i % 11 == 4, 0.0, np.nan)
    df["grade_high_pct"] = np.where(i % 11 == 4, 10.0, np.nan)
    df.loc[i % 11 == 4, "grade_pct"] = np.nan
    # some energy rows walked or run underwater: the underwater shift is on in that family only
    water = (i % 7 == 1) & (df["outcome_family"] == "energy").to_numpy()
    df["surface"] = np.where(water, "underwater", "treadmill")
    return df


def _masked(design):
    """One row and one whole study cluster of the design masked out."""
    mask = np.ones(design.n_rows)
    mask[1] = 0.0
    mask[design.cluster_idx == 3] = 0.0
    return replace(design, mask=mask)


def _coef_sd(priors):
    return np.array(
        [
            priors.alpha_sd,
            priors.speed_sd,
            priors.mode_sd,
            priors.match_sd,
            priors.match_sd,
            priors.grade_sd,
            priors.underwater_sd,
        ]
    )


def _dense_loglik(design, priors, ts, tc, r):
    """Per-family log density of y_f under N(0, V_f) with V_f built densely from the frame."""
    fr = design.frame
    X = design.data()["X_row"]
    paired = (fr["design"] == "within").to_numpy()
    vf, vb = fr["v_forward"].to_numpy(float), fr["v_backward"].to_numpy(float)
    v = np.where(paired, vf + vb - 2 * r * np.sqrt(vf * vb), fr["vi"].to_numpy(float))
    if "grade_low_pct" in fr.columns:  # a value averaged over 0-10 %: uniform variance 100/12
        ranged = fr["grade_low_pct"].notna().to_numpy()
        v = v + np.where(ranged, priors.grade_sd**2 * 10.0**2 / 12.0, 0.0)
    fam = fr["family"].to_numpy()
    cluster = fr["group_key"].to_numpy()
    keep = design.mask > 0
    out = []
    for j, f in enumerate(design.families):
        rows = np.flatnonzero((fam == f) & keep)
        if rows.size == 0:
            out.append(0.0)
            continue
        same = (cluster[rows][:, None] == cluster[rows][None, :]).astype(float)
        Xf = X[rows]
        V = (
            np.diag(v[rows] + design.use_cond * tc[j] ** 2)
            + ts[j] ** 2 * same
            + Xf @ np.diag(_coef_sd(priors) ** 2) @ Xf.T
        )
        out.append(
            stats.multivariate_normal(np.zeros(rows.size), V).logpdf(fr["yi"].to_numpy()[rows])
        )
    return np.array(out)


def _random_params(rng, F):
    return rng.uniform(0.02, 0.4, F), rng.uniform(0.01, 0.2, F), rng.uniform(0.05, 0.95)


@pytest.fixture(scope="module")
def mixed_design():
    design = inf.MetaDesign.from_frame(_mixed_frame())
    # the design really has every moderator switched on in both families
    assert design.has_speed.tolist() == [1.0, 1.0]
    assert design.has_mode.tolist() == [1.0, 1.0]
    assert design.has_match.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert design.has_grade.tolist() == [1.0, 1.0]
    # the underwater shift only where there are underwater rows (energy, sorted first)
    assert design.families == ("energy", "knee_moment")
    assert design.has_underwater.tolist() == [1.0, 0.0]
    assert 0 < design.paired.sum() < design.n_rows
    # the row covariates, by hand: speed centred on the family's mean speed, mode +-1/2,
    # matching indicators (same-speed rows are the reference)
    fr = design.frame
    centre = fr.groupby("outcome_family")["speed_m_s"].transform("mean")
    by_hand = np.column_stack(
        [
            np.ones(len(fr)),
            fr["speed_m_s"] - centre,
            np.where(fr["mode"] == "run", 0.5, -0.5),
            fr["speed_matching"] == "self_selected",
            fr["speed_matching"] == "matched_intensity",
            # grade [%]; the value averaged over 0-10 % at the range's midpoint
            fr["grade_pct"].fillna(5.0),
            # underwater indicator, zero in the family without underwater rows
            (fr["surface"] == "underwater") & (fr["outcome_family"] == "energy"),
        ]
    ).astype(float)
    assert by_hand[:, -1].sum() >= 2
    np.testing.assert_allclose(design.data()["X_row"], by_hand, atol=1e-12)
    return _masked(design)


# ----------------------------------------------------------------------------------------------
# 1. likelihood identity
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [True, False])
def test_marginal_loglik_equals_dense_multivariate_normal(nested):
    design = inf.MetaDesign.from_frame(_mixed_frame(), nested=nested)
    design = _masked(design)
    assert design.use_cond == (1.0 if nested else 0.0)
    priors = inf.Priors(alpha_sd=0.6, speed_sd=0.3, mode_sd=0.4, match_sd=0.35)
    dens = inf.MarginalDensity(design, priors)
    rng = np.random.default_rng(42)
    F = len(design.families)
    draws = [_random_params(rng, F) for _ in range(6)]
    for ts, tc, r in draws:
        ref = _dense_loglik(design, priors, ts, tc, r)
        np.testing.assert_allclose(
            inf.marginal_loglik(design, priors, ts, tc, r), ref, rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(dens.loglik(ts, tc, r), ref, rtol=1e-9, atol=1e-9)
    # vectorised over a leading draw axis
    ts = np.array([d[0] for d in draws])
    tc = np.array([d[1] for d in draws])
    r = np.array([d[2] for d in draws])
    batched = inf.marginal_loglik(design, priors, ts, tc, r)
    ref = np.array([_dense_loglik(design, priors, *d) for d in draws])
    np.testing.assert_allclose(batched, ref, rtol=1e-9, atol=1e-9)


def test_fully_masked_family_contributes_nothing():
    design = inf.MetaDesign.from_frame(_mixed_frame())
    mask = (design.family_idx == 0).astype(float)  # the second family has no rows left
    design = replace(design, mask=mask)
    priors = inf.Priors()
    ts, tc, r = np.array([0.1, 0.2]), np.array([0.05, 0.07]), 0.6
    ref = _dense_loglik(design, priors, ts, tc, r)
    assert ref[1] == 0.0
    np.testing.assert_allclose(inf.marginal_loglik(design, priors, ts, tc, r), ref, atol=1e-9)
    np.testing.assert_allclose(
        inf.MarginalDensity(design, priors).loglik(ts, tc, r), ref, atol=1e-9
    )


# ----------------------------------------------------------------------------------------------
# 2. gradient and prior of the numpy density
# ----------------------------------------------------------------------------------------------


def _log_prior_scipy(priors, ts, tc, r):
    """Log prior density of (tau_study, tau_cond, r) with scipy."""
    if priors.tau_prior == "half_normal":
        lp = stats.halfnorm(scale=priors.tau_study_sd).logpdf(ts).sum()
    elif priors.tau_prior == "half_cauchy":
        lp = stats.halfcauchy(scale=priors.tau_study_sd).logpdf(ts).sum()
    else:  # ln tau² ~ N(mu, sigma²)  <=>  tau ~ LogNormal(mu / 2, sigma / 2)
        lp = (
            stats.lognorm(
                s=priors.tau2_lognormal_sigma / 2, scale=np.exp(priors.tau2_lognormal_mu / 2)
            )
            .logpdf(ts)
            .sum()
        )
    lp += stats.halfnorm(scale=priors.tau_cond_sd).logpdf(tc).sum()
    return lp + stats.beta(priors.r_a, priors.r_b).logpdf(r)


def _log_jacobian_log_logit(ts, tc, r):
    """ln |d(tau_study, tau_cond, r) / d(ln tau_study, ln tau_cond, logit r)| (PyMC's
    transforms)."""
    return np.log(ts).sum() + np.log(tc).sum() + np.log(r * (1 - r))


def _log_jacobian_numeric(dens, z, h=1e-5):
    """ln |det d(tau_study, tau_cond, r) / dz| of the density's own map ``split`` (central
    differences, whatever the unconstrained parameterisation is)."""

    def theta(z):
        ts, tc, r = dens.split(z)
        return np.concatenate([ts, tc, [r]])

    J = np.column_stack([(theta(z + h * e) - theta(z - h * e)) / (2 * h) for e in np.eye(z.size)])
    return np.linalg.slogdet(J)[1]


def _z(dens, ts, tc, r):
    """The unconstrained point of (tau_study, tau_cond, r), checked to invert ``split``."""
    z = dens.unconstrained(ts, tc, r)
    back = dens.split(z)
    np.testing.assert_allclose(
        np.concatenate([back[0], back[1], [back[2]]]), np.concatenate([ts, tc, [r]]), rtol=1e-12
    )
    return z


@pytest.mark.parametrize("tau_prior", TAU_PRIORS)
def test_logp_gradient_matches_finite_differences(mixed_design, tau_prior):
    priors = inf.Priors(tau_prior=tau_prior, r_a=3.0, r_b=2.5)
    dens = inf.MarginalDensity(mixed_design, priors)
    assert dens.ndim == 5
    rng = np.random.default_rng(7)
    for _ in range(3):
        z = _z(dens, *_random_params(rng, 2))
        _, grad = dens.logp_grad(z)
        h = 1e-5
        fd = np.array(
            [
                (dens.logp_grad(z + h * e)[0] - dens.logp_grad(z - h * e)[0]) / (2 * h)
                for e in np.eye(z.size)
            ]
        )
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tau_prior", TAU_PRIORS)
def test_log_density_is_scipy_prior_plus_likelihood(mixed_design, tau_prior):
    """log p(z) = log prior(theta) + log lik(theta) + ln|d theta / dz| + constant."""
    priors = inf.Priors(tau_prior=tau_prior, tau_study_sd=0.3, tau_cond_sd=0.15, r_a=4.0, r_b=3.0)
    dens = inf.MarginalDensity(mixed_design, priors)
    rng = np.random.default_rng(11)
    points = [_random_params(rng, 2) for _ in range(4)]
    ours, ref = [], []
    for ts, tc, r in points:
        z = _z(dens, ts, tc, r)
        ours.append(dens.logp_grad(z)[0])
        ref.append(
            _log_prior_scipy(priors, ts, tc, r)
            + _dense_loglik(mixed_design, priors, ts, tc, r).sum()
            + _log_jacobian_numeric(dens, z)
        )
    np.testing.assert_allclose(np.diff(ours), np.diff(ref), rtol=1e-8, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# 3. the PyMC graph and the numpy density agree
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau_prior", TAU_PRIORS)
def test_pymc_graph_matches_numpy_density(mixed_design, tau_prior):
    priors = inf.Priors(tau_prior=tau_prior, alpha_sd=0.7, r_a=3.0, r_b=2.0)
    model = inf.build_model(mixed_design, priors)
    assert {v.name for v in model.free_RVs} == {"tau_study", "tau_cond", "r"}
    logp = model.compile_logp()
    dens = inf.MarginalDensity(mixed_design, priors)
    rng = np.random.default_rng(5)
    vals_pm, vals_np = [], []
    for ts, tc, r in [_random_params(rng, 2) for _ in range(3)]:
        point = {
            "tau_study_log__": np.log(ts),
            "tau_cond_log__": np.log(tc),
            "r_logodds__": np.log(r / (1 - r)),
        }
        vals_pm.append(float(logp(point)) - _log_jacobian_log_logit(ts, tc, r))
        # PyMC's full log density: the scipy log prior plus the dense log likelihood
        full = (
            _log_prior_scipy(priors, ts, tc, r)
            + _dense_loglik(mixed_design, priors, ts, tc, r).sum()
        )
        assert vals_pm[-1] == pytest.approx(full, rel=1e-9, abs=1e-8)
        z = _z(dens, ts, tc, r)
        vals_np.append(dens.logp_grad(z)[0] - _log_jacobian_numeric(dens, z))
    # the same density of (tau_study, tau_cond, r) up to a constant
    np.testing.assert_allclose(np.diff(vals_pm), np.diff(vals_np), rtol=1e-8, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# 7. conditional draws of the integrated-out quantities
# ----------------------------------------------------------------------------------------------


def _dense_joint_posterior(design, priors, ts, tc, r):
    """Exact Gaussian posterior of (coefficients (F x 5), study effects (C), condition effects
    (n)) given tau_study, tau_cond and r: y = X beta + u[cluster] + c + e, e ~ N(0, v(r))."""
    fr = design.frame
    X = design.data()["X_row"]
    n, F, C = design.n_rows, len(design.families), len(design.clusters)
    paired = (fr["design"] == "within").to_numpy()
    vf, vb = fr["v_forward"].to_numpy(float), fr["v_backward"].to_numpy(float)
    v = np.where(paired, vf + vb - 2 * r * np.sqrt(vf * vb), fr["vi"].to_numpy(float))
    fam = np.array([design.families.index(f) for f in fr["family"]])
    keys = list(dict.fromkeys(fr["group_key"] + "|" + fr["family"]))
    clu = np.array([keys.index(k) for k in fr["group_key"] + "|" + fr["family"]])
    clu_fam = np.array([design.families.index(k.split("|", 1)[1]) for k in keys])
    k = X.shape[1]
    W = np.zeros((n, k * F + C + n))
    for i in range(n):
        W[i, k * fam[i] : k * fam[i] + k] = X[i]
        W[i, k * F + clu[i]] = 1.0
        W[i, k * F + C + i] = 1.0
    prior_var = np.concatenate([np.tile(_coef_sd(priors) ** 2, F), ts[clu_fam] ** 2, tc[fam] ** 2])
    lik_prec = design.mask / v
    P = np.diag(1 / prior_var) + W.T @ (lik_prec[:, None] * W)
    cov = np.linalg.inv(P)
    mean = cov @ (W.T @ (lik_prec * fr["yi"].to_numpy()))
    return mean, cov, v


@pytest.fixture(scope="module")
def conditional_case():
    # large study SD and eight conditions per study: the study effects are well determined
    df, _ = inf.simulate_effect_sizes(
        17,
        n_studies=4,
        speeds_m_s=(1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
        families=("energy", "knee_moment"),
        modes=("run", "walk"),
        tau_study=0.6,
        tau_cond=0.05,
    )
    df.loc[np.arange(len(df)) % 6 == 4, "design"] = "between"
    design = inf.MetaDesign.from_frame(df)
    mask = np.ones(design.n_rows)
    mask[[2, 9]] = 0.0  # two masked rows ...
    mask[design.cluster_idx == 5] = 0.0  # ... and a masked cluster
    design = replace(design, mask=mask)
    priors = inf.Priors(alpha_sd=0.5, speed_sd=0.3, mode_sd=0.4)
    ts, tc, r = np.array([0.6, 0.45]), np.array([0.05, 0.08]), 0.65
    N = 20000
    params = {
        "tau_study": np.tile(ts, (N, 1)),
        "tau_cond": np.tile(tc, (N, 1)),
        "r": np.full(N, r),
    }
    out = inf.conditional_draws(design, priors, params, np.random.default_rng(2024))
    return design, priors, (ts, tc, r), out


def _coefficients(out):
    """(N, F, k) coefficient draws in the column order of ``X_row``."""
    b = [
        out["alpha"],
        out["b_speed"],
        out["b_mode"],
        out["b_match"][..., 0],
        out["b_match"][..., 1],
        out["b_grade"],
        out["b_underwater"],
    ]
    return np.stack(b, axis=-1)


def test_conditional_study_effect_is_the_normal_normal_posterior(conditional_case):
    """Given beta: u_c | y ~ N(sum(e/d) / prec, 1 / prec), prec = 1/tau² + sum 1/d, with
    residuals e = y - X beta and d = v(r) + tau_cond² over the cluster's unmasked rows."""
    design, priors, (ts, tc, r), out = conditional_case
    fr = design.frame
    X = design.data()["X_row"]
    _, _, v = _dense_joint_posterior(design, priors, ts, tc, r)
    fam = np.array([design.families.index(f) for f in fr["family"]])
    d = v + tc[fam] ** 2
    beta = _coefficients(out)  # (N, F, k)
    resid = fr["yi"].to_numpy() - np.einsum("nk,snk->sn", X, beta[:, fam, :])
    N = beta.shape[0]
    for c, key in enumerate(design.clusters):
        rows = np.flatnonzero((design.cluster_idx == c) & (design.mask > 0))
        tau = ts[design.cluster_family[c]]
        prec = 1 / tau**2 + np.sum(1 / d[rows])
        mean = (resid[:, rows] / d[rows]).sum(axis=1) / prec
        z = (out["study_effect"][:, c] - mean) * np.sqrt(prec)
        if rows.size:
            assert prec > 10 / tau**2, "the data should dominate the prior here"
        else:
            assert key == design.clusters[5]  # the masked cluster: its prior N(0, tau²)
        assert abs(z.mean()) < K_MCSE / np.sqrt(N), (key, z.mean())
        assert abs(z.var() - 1) < K_MCSE * np.sqrt(2 / N), (key, z.var())


def test_conditional_draws_match_the_joint_gaussian_posterior(conditional_case):
    design, priors, (ts, tc, r), out = conditional_case
    mean, cov, _ = _dense_joint_posterior(design, priors, ts, tc, r)
    F = len(design.families)
    beta = _coefficients(out).reshape(-1, inf.N_COEF * F)
    draws = np.column_stack([beta, out["study_effect"], out["condition_effect"]])
    N, dim = draws.shape
    assert dim == mean.size
    # Bonferroni over all means and covariance elements at an overall 0.1 %
    z_crit = stats.norm.isf(0.0005 / (dim + dim * (dim + 1) / 2))
    sd = np.sqrt(np.diag(cov))
    z_mean = (draws.mean(axis=0) - mean) / (sd / np.sqrt(N))
    assert np.max(np.abs(z_mean)) < z_crit, np.argmax(np.abs(z_mean))
    emp = np.cov(draws, rowvar=False)
    se_cov = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / N)
    z_cov = (emp - cov) / se_cov
    worst = np.unravel_index(np.argmax(np.abs(z_cov)), z_cov.shape)
    assert np.max(np.abs(z_cov)) < z_crit, (worst, emp[worst], cov[worst])


# ----------------------------------------------------------------------------------------------
# Monte-Carlo comparison helpers
# ----------------------------------------------------------------------------------------------


def _chains(res, name, *index):
    """(chain, draw) array of one element of a posterior variable."""
    arr = np.asarray(res.idata["posterior"][name].values)
    return arr[(slice(None), slice(None), *index)]


def _summary(a, prob=None):
    """Estimate and its MCSE: the mean (prob None) or a quantile."""
    if prob is None:
        return float(a.mean()), float(az.mcse(a, method="mean"))
    return float(np.quantile(a, prob)), float(az.mcse(a, method="quantile", prob=prob))


def _assert_close_mc(label, est_a, mcse_a, est_b, mcse_b=0.0, k=K_MCSE):
    se = float(np.hypot(mcse_a, mcse_b))
    assert abs(est_a - est_b) < k * se, (
        f"{label}: {est_a:.5f} (MCSE {mcse_a:.5f}) vs {est_b:.5f} (MCSE {mcse_b:.5f}); "
        f"difference {(est_a - est_b) / se:+.2f} combined MCSEs"
    )


# ----------------------------------------------------------------------------------------------
# 4. marginal model vs the sampled-study-effects model
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim10():
    df, truth = inf.simulate_effect_sizes(0, n_studies=10, speeds_m_s=(2.5, 3.5))
    return df, truth


@pytest.fixture(scope="module")
def marginal_fit_sim10(sim10):
    return inf.fit(sim10[0], seed=2, gate="raise")


@pytest.mark.slow
def test_marginal_model_matches_sampled_study_effects_model(sim10, marginal_fit_sim10):
    # the sampled model has a funnel: with target_accept 0.99, 2000 draws per chain and this
    # seed it passes the gate (with seed 1 and 1000 draws, R-hat 1.013 failed it)
    sampled = inf.fit(
        sim10[0], seed=3, gate="raise", marginal=False, target_accept=0.99, draws=2000
    )
    marg = marginal_fit_sim10
    assert marg.marginal and not sampled.marginal
    for name in ("alpha", "b_speed", "tau_study"):
        a, b = _chains(marg, name, 0), _chains(sampled, name, 0)
        for prob in (None, 0.025, 0.975):
            _assert_close_mc(f"{name} {prob or 'mean'}", *_summary(a, prob), *_summary(b, prob))
    for c, key in enumerate(marg.design.clusters):
        a, b = _chains(marg, "study_effect", c), _chains(sampled, "study_effect", c)
        _assert_close_mc(f"study_effect[{key}] mean", *_summary(a), *_summary(b))


# ----------------------------------------------------------------------------------------------
# 5. against brms: yi | se(sei) ~ 1 + (1 | study/condition)
# ----------------------------------------------------------------------------------------------

BRMS = json.loads((REF / "brms_reference.json").read_text())
BRMS_PRIORS = inf.Priors(alpha_sd=0.5, tau_study_sd=0.25, tau_cond_sd=0.1)


def _intercept_only_frame(study, condition, yi, vi, family):
    """An effect-size table whose design is the intercept-only two-level model: no speed
    (NaN), mode unspecified, same-speed matching, between-subject rows (vi fixed, no r)."""
    k = len(yi)
    return pd.DataFrame(
        {
            "row_id": list(condition),
            "study_key": list(study),
            "group_key": list(study),
            "outcome": family,
            "outcome_family": family,
            "mode": "unspecified",
            "speed_m_s": np.full(k, np.nan),
            "speed_matching": "same",
            "n": 10,
            "design": "between",
            "yi": np.asarray(yi, float),
            "vi": np.asarray(vi, float),
        }
    )


def _brms_frame(fit_name):
    fit = BRMS["fits"][fit_name]
    csv = REF / fit["input"]
    assert (
        BRMS["inputs"][fit["input"]]["md5"]
        == __import__("hashlib").md5(csv.read_bytes()).hexdigest()
    ), "brms reference is out of date with its input table"
    raw = pd.read_csv(csv)
    if fit_name == "effects_snapshot_energy":
        raw = raw[raw["family"] == "energy"]
        # the brms formula has no moderators: modes and speeds are dropped below
        assert raw["row_id"].tolist() == fit["row_ids"]
        assert raw["mode"].nunique() > 1
    np.testing.assert_allclose(raw["sei"] ** 2, raw["vi"], rtol=1e-12)
    assert len(raw) == fit["k"] and raw["study"].nunique() == fit["n_study"]
    assert raw["condition"].nunique() == fit["n_condition"]
    study = raw["study"]
    if "group_key" in raw:
        # brms's study is "<group_key>|<family>": within one family the same clusters
        assert (raw["group_key"] + "|" + raw["family"]).equals(study)
        study = raw["group_key"]
    return _intercept_only_frame(study, raw["condition"], raw["yi"], raw["vi"], "fam")


@pytest.mark.slow
@pytest.mark.parametrize("fit_name", ["synthetic_bayes", "effects_snapshot_energy"])
def test_posterior_matches_brms(fit_name):
    ref = BRMS["fits"][fit_name]["parameters"]
    assert BRMS["fits"][fit_name]["ok"] and BRMS["fits"][fit_name]["sampler"]["divergences"] == 0
    design = inf.MetaDesign.from_frame(_brms_frame(fit_name))
    # the design reduces to the intercept-only model of the brms formula
    assert design.has_speed.tolist() == [0.0] and design.has_mode.tolist() == [0.0]
    assert design.has_match.tolist() == [[0.0, 0.0]] and design.paired.sum() == 0
    assert np.all(design.data()["X_row"][:, 1:] == 0) and design.use_cond == 1.0
    res = inf.fit(design, priors=BRMS_PRIORS, seed=31, gate="raise")
    pairs = {
        "alpha": "b_Intercept",
        "tau_study": "sd_study__Intercept",
        "tau_cond": "sd_study:condition__Intercept",
    }
    for ours, theirs in pairs.items():
        a, b = _chains(res, ours, 0), ref[theirs]
        for prob, key in ((None, "mean"), (0.025, "q2.5"), (0.5, "q50"), (0.975, "q97.5")):
            mcse_key = "mcse_mean" if prob is None else f"mcse_{key}"
            _assert_close_mc(f"{ours} vs {theirs} {key}", *_summary(a, prob), b[key], b[mcse_key])


# ----------------------------------------------------------------------------------------------
# 6. exact grid posterior of the one-level random-effects model (bayesmeta style)
# ----------------------------------------------------------------------------------------------


def _grid_posterior(y, v, priors):
    """p(tau | y) on a grid, alpha | tau, y ~ N(m(tau), s²(tau)); alpha ~ N(0, alpha_sd²)."""
    tau = np.linspace(0.0, 4.0, 40001)[1:]
    s2a = priors.alpha_sd**2
    w = 1 / (v[None, :] + tau[:, None] ** 2)
    # log N(y; 0, diag(v + tau²) + s2a 11') by the matrix determinant lemma / Sherman-Morrison
    quad = (w * y**2).sum(1) - s2a * (w * y).sum(1) ** 2 / (1 + s2a * w.sum(1))
    logdet = -np.log(w).sum(1) + np.log1p(s2a * w.sum(1))
    loglik = -0.5 * (quad + logdet)
    if priors.tau_prior == "half_normal":
        logprior = stats.halfnorm(scale=priors.tau_study_sd).logpdf(tau)
    elif priors.tau_prior == "half_cauchy":
        logprior = stats.halfcauchy(scale=priors.tau_study_sd).logpdf(tau)
    else:
        logprior = stats.lognorm(
            s=priors.tau2_lognormal_sigma / 2, scale=np.exp(priors.tau2_lognormal_mu / 2)
        ).logpdf(tau)
    lp = loglik + logprior
    dens = np.exp(lp - lp.max())
    dens /= integrate.trapezoid(dens, tau)
    cdf = integrate.cumulative_trapezoid(dens, tau, initial=0.0)
    prec = 1 / s2a + w.sum(1)
    m, s = (w * y).sum(1) / prec, np.sqrt(1 / prec)
    wt = dens * np.gradient(tau)
    wt /= wt.sum()

    def alpha_cdf(a):
        return np.sum(wt * stats.norm.cdf((a - m) / s))

    out = {
        "tau_study": {
            "mean": integrate.trapezoid(tau * dens, tau),
            **{p: np.interp(p, cdf, tau) for p in (0.025, 0.975)},
        },
        "alpha": {
            "mean": np.sum(wt * m),
            **{
                p: optimize.brentq(lambda a, p=p: alpha_cdf(a) - p, m.min() - 10, m.max() + 10)
                for p in (0.025, 0.975)
            },
        },
    }
    assert cdf[-1] == pytest.approx(1.0, abs=1e-9) and dens[-1] < 1e-8 * dens.max()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tau_prior", TAU_PRIORS)
def test_posterior_matches_exact_grid(tau_prior):
    # BCG vaccine trials (metafor dat.bcg: log risk ratios), one row per study
    bcg = pd.read_csv(REF / "metafor_dat_bcg.csv")
    df = _intercept_only_frame(
        bcg["trial"].astype(str), "t" + bcg["trial"].astype(str), bcg["yi"], bcg["vi"], "bcg"
    )
    design = inf.MetaDesign.from_frame(df, nested=False)
    assert design.use_cond == 0.0 and np.all(design.data()["X_row"][:, 1:] == 0)
    priors = inf.Priors(alpha_sd=1.0, tau_study_sd=0.5, tau_prior=tau_prior)
    grid = _grid_posterior(bcg["yi"].to_numpy(), bcg["vi"].to_numpy(), priors)
    # default settings; tau_cond is still sampled here, from its prior alone (checked below)
    res = inf.fit(design, priors=priors, seed=41, gate="raise")
    for name in ("alpha", "tau_study"):
        a = _chains(res, name, 0)
        _assert_close_mc(f"{name} mean", *_summary(a), grid[name]["mean"])
        for p in (0.025, 0.975):
            _assert_close_mc(f"{name} q{p}", *_summary(a, p), grid[name][p])
    # tau_cond is not in the likelihood: its posterior is its HalfNormal prior
    tc = _chains(res, "tau_cond", 0)
    _assert_close_mc("tau_cond mean", *_summary(tc), priors.tau_cond_sd * np.sqrt(2 / np.pi))


# ----------------------------------------------------------------------------------------------
# 8. parameter recovery
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_recovers_known_parameters():
    df, truth = inf.simulate_effect_sizes(
        8, n_studies=20, alpha=-0.15, b_speed=0.07, tau_study=0.12, tau_cond=0.03, r=0.7
    )
    res = inf.fit(df, seed=8, gate="raise")
    for name in ("alpha", "b_speed", "tau_study"):
        d = res.draws(name)[:, 0]
        t = truth[name][0]
        lo, hi = np.quantile(d, [0.025, 0.975])
        assert lo < t < hi, (name, t, lo, hi)
        assert abs(d.mean() - t) < 2.0 * d.std(), (name, t, d.mean(), d.std())
    # the data are informative: posterior SDs well below the prior SDs
    assert res.draws("alpha").std() < 0.1 * inf.Priors().alpha_sd
    assert res.draws("b_speed").std() < 0.25 * inf.Priors().speed_sd


# ----------------------------------------------------------------------------------------------
# 9. the project's evidence: default fit settings pass the gate
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evidence_rows():
    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims

    return claims.analysis_rows(evidence.effect_sizes())


@pytest.mark.slow
@pytest.mark.parametrize("tau_prior", TAU_PRIORS)
def test_evidence_fit_passes_the_gate(evidence_rows, tau_prior):
    res = inf.fit(evidence_rows, priors=inf.Priors(tau_prior=tau_prior), seed=2026)
    assert res.converged, str(res.diagnostics)
    d = res.diagnostics
    assert d.n_draws == 4000 and d.n_divergences == 0
    assert d.max_rhat <= 1.01 and min(d.min_ess_bulk, d.min_ess_tail) >= 400


def test_group_key_may_contain_the_cluster_separator():
    """A study key such as ``williford1998|energy`` keeps its family (regression)."""
    df, _ = inf.simulate_effect_sizes(0, n_studies=3, families=("energy", "pfj_force"))
    df["group_key"] = "lab|" + df["group_key"]
    design = inf.MetaDesign.from_frame(df)
    fams = [c.rsplit("|", 1)[1] for c in design.clusters]
    assert [design.families[j] for j in design.cluster_family] == fams
