"""retrosim.meta.frequentist: HKSJ inference, prediction intervals, multilevel REML, small-study tests.

What the expected values are and where they come from
-----------------------------------------------------
* Hand computations written out here with numpy/scipy (HKSJ for three studies, prediction
  intervals, PET/PEESE and Egger through statsmodels WLS/OLS, a dense-matrix restricted
  likelihood maximised by scipy for the multilevel model).
* Published metafor output, read in the metafor README (github.com/wviechtb/metafor,
  README.md at commit 71ae8f5), for the BCG data (``dat.bcg``, log risk ratios):
  ``rma(yi, vi, test="knha")``: estimate -0.7145, se 0.1808, t -3.9522 (12 df), p 0.0019,
  CI [-1.1084, -0.3206]; ``predict(res, transf=exp)``: 0.49 [0.33, 0.73], PI [0.14, 1.76];
  ``regtest(res)`` on that fit: t -0.7812 (11 df), p 0.4512, limit estimate -0.5104
  [-1.2123, 0.1915]; ``rma(yi, vi, mods = ~ ablat, test="knha")``: intercept 0.2515 (se
  0.2839, CI [-0.3735, 0.8764]), ablat -0.0291 (se 0.0082, CI [-0.0472, -0.0111]).
* metafor's own test of the three-level model on ``dat.konstantopoulos2011``
  (``tests/testthat/test_analysis_example_konstantopoulos2011.r``, same commit; REML with
  ``random = ~ 1 | district/study``): estimate 0.1847, se 0.0846, sigma² (0.0651, 0.0327),
  logLik -7.9587. Needs the data file in tests/data/reference.
* Numbers computed with R metafor and stored in ``tests/data/reference/metafor_reference.json``
  (compared at 1e-6 when the file is present).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from test_inference import ABLAT, bcg_rr  # BCG data (metafor README), as in the REML tests

from retrosim.errors import InputError
from retrosim.meta import frequentist as fq

REF = Path(__file__).parents[1] / "data" / "reference"
REF_JSON = REF / "metafor_reference.json"


def reml_tau2_brute(yi, vi):
    """tau² maximising the restricted log-likelihood, by bounded scalar search (independent)."""

    def nll(t2):
        w = 1 / (vi + t2)
        m = np.sum(w * yi) / w.sum()
        return 0.5 * (np.sum(np.log(vi + t2)) + np.log(w.sum()) + np.sum(w * (yi - m) ** 2))

    opt = optimize.minimize_scalar(nll, bounds=(0, 10), method="bounded", options={"xatol": 1e-13})
    return float(opt.x)


# --- HKSJ by hand -----------------------------------------------------------------------------

Y3 = np.array([0.10, 0.30, 0.55])
V3 = np.array([0.010, 0.020, 0.040])


def hksj_by_hand(yi, vi, tau2, level=0.95, modified=False):
    w = 1 / (vi + tau2)
    mu = np.sum(w * yi) / np.sum(w)
    se_wald = np.sqrt(1 / np.sum(w))
    q = np.sum(w * (yi - mu) ** 2) / (yi.size - 1)
    if modified:
        q = max(q, 1.0)
    se = se_wald * np.sqrt(q)
    t = stats.t.ppf(0.5 + level / 2, yi.size - 1)
    return mu, se, np.array([mu - t * se, mu + t * se]), t


def test_hksj_three_studies_by_hand_reml_and_dl():
    # REML: tau² from an independent brute-force maximisation
    tau2 = reml_tau2_brute(Y3, V3)
    res = fq.reml(Y3, V3)
    assert res.tau2 == pytest.approx(tau2, rel=1e-6)
    mu, se, ci, _ = hksj_by_hand(Y3, V3, tau2)
    assert res.estimate == pytest.approx(mu, rel=1e-7)  # tau² above is good to ~1e-7
    assert res.bse("hksj")[0] == pytest.approx(se, rel=1e-6)
    assert res.conf_int(method="hksj")[0] == pytest.approx(ci, rel=1e-6)
    # DL: tau² in closed form
    w = 1 / V3
    mfe = np.sum(w * Y3) / w.sum()
    qdl = np.sum(w * (Y3 - mfe) ** 2)
    tau2_dl = max(0.0, (qdl - 2) / (w.sum() - np.sum(w**2) / w.sum()))
    dl = fq.dersimonian_laird(Y3, V3)
    mu, se, ci, _ = hksj_by_hand(Y3, V3, tau2_dl)
    assert dl.conf_int(method="hksj")[0] == pytest.approx(ci, rel=1e-9)
    assert dl.summary_frame(method="knha")["se"].iloc[0] == pytest.approx(se, rel=1e-9)
    # PM through the same formula with its own tau²
    pm = fq.paule_mandel(Y3, V3)
    _, _, ci, _ = hksj_by_hand(Y3, V3, pm.tau2, modified=True)
    assert pm.conf_int(method="hksj_modified")[0] == pytest.approx(ci, rel=1e-9)


def test_modified_hksj_is_never_narrower_than_wald_and_hksj_can_be():
    rng = np.random.default_rng(4)
    seen_narrow = False
    for _ in range(60):
        k = int(rng.integers(2, 12))
        vi = rng.uniform(0.005, 0.08, k)
        yi = rng.normal(0.1, rng.uniform(0, 0.3), k) + rng.normal(0, np.sqrt(vi))
        res = fq.reml(yi, vi)
        width = {m: np.diff(res.conf_int(0.95, m)[0])[0] for m in fq.INTERVAL_METHODS}
        assert width["hksj_modified"] >= width["wald"] * (1 - 1e-12)
        assert width["hksj_modified"] >= width["hksj"] * (1 - 1e-12)
        seen_narrow |= width["hksj"] < width["wald"]
    assert seen_narrow  # plain HKSJ is narrower than Wald for some data sets (q small)


def test_hksj_factor_is_zero_when_all_estimates_equal():
    res = fq.reml([0.2, 0.2, 0.2], [0.01, 0.02, 0.03])
    assert res.hksj_scale == 0.0
    assert res.conf_int(method="hksj")[0] == pytest.approx([0.2, 0.2])
    assert res.variance_factor("hksj_modified") == 1.0


def test_summary_frame_and_text():
    yi, vi = bcg_rr()
    res = fq.reml(yi, vi, np.column_stack([np.ones(13), ABLAT]), names=["intrcpt", "ablat"])
    wald = res.summary_frame()
    assert list(wald.columns) == ["coef", "se", "statistic", "df", "p_value", "ci_low", "ci_upp"]
    z = res.beta / res.se
    assert wald["p_value"].to_numpy() == pytest.approx(2 * stats.norm.sf(np.abs(z)))
    assert np.isinf(wald["df"]).all()
    assert wald[["ci_low", "ci_upp"]].to_numpy() == pytest.approx(res.conf_int())
    t = res.summary_frame(method="hksj")
    assert (t["df"] == 11).all()
    se = res.se * np.sqrt(res.hksj_scale)
    assert t["p_value"].to_numpy() == pytest.approx(2 * stats.t.sf(np.abs(res.beta / se), 11))
    text = res.summary("hksj").as_text()
    assert "t(11)" in text and "ablat" in text
    assert str(res) == res.summary().as_text()  # the default text table stays the Wald one


def test_summary_object_carries_the_coefficients():
    """Text and HTML show the fit's coefficients; to_dataframe gives the numbers unrounded."""
    yi, vi = bcg_rr()
    res = fq.reml(yi, vi, np.column_stack([np.ones(13), ABLAT]), names=["intrcpt", "ablat"])
    summ = res.summary()
    np.testing.assert_array_equal(summ.to_dataframe()["coef"], res.beta)
    pd.testing.assert_frame_equal(res.to_dataframe(), res.summary_frame())
    lo, hi = res.conf_int()[1]
    for shown in (f"{res.beta[1]:.4f}", f"{lo:.4f}", f"{hi:.4f}", "[0.025", "0.975]"):
        assert shown in summ.as_text() and shown in summ.as_html()
    assert str(summ) == summ.as_text() and summ._repr_html_() == summ.as_html()


# --- published metafor output (README) ---------------------------------------------------------


def test_hksj_predict_and_regtest_match_metafor_readme_bcg():
    yi, vi = bcg_rr()
    res = fq.reml(yi, vi)
    row = res.summary_frame(method="knha").iloc[0]
    assert row.coef == pytest.approx(-0.7145, abs=5e-5)
    assert row.se == pytest.approx(0.1808, abs=5e-5)
    assert row.statistic == pytest.approx(-3.9522, abs=5e-5)
    assert row.df == 12
    assert row.p_value == pytest.approx(0.0019, abs=5e-5)
    assert [row.ci_low, row.ci_upp] == pytest.approx([-1.1084, -0.3206], abs=5e-5)
    pred = np.exp(fq.predict(res, method="hksj").iloc[0])
    assert pred.pred == pytest.approx(0.49, abs=0.005)
    assert [pred.ci_lb, pred.ci_ub] == pytest.approx([0.33, 0.73], abs=0.005)
    assert [pred.pi_lb, pred.pi_ub] == pytest.approx([0.14, 1.76], abs=0.005)
    reg = fq.egger_test(yi, vi, model="rma", method="hksj")
    assert reg.statistic == pytest.approx(-0.7812, abs=5e-5)
    assert reg.df == 11
    assert reg.p_value == pytest.approx(0.4512, abs=5e-5)
    assert reg.limit_estimate == pytest.approx(-0.5104, abs=5e-5)
    assert [reg.ci_low, reg.ci_upp] == pytest.approx([-1.2123, 0.1915], abs=5e-5)


def test_hksj_meta_regression_matches_metafor_readme_bcg():
    yi, vi = bcg_rr()
    res = fq.reml(yi, vi, np.column_stack([np.ones(13), ABLAT]))
    f = res.summary_frame(method="hksj")
    assert f["se"].to_numpy() == pytest.approx([0.2839, 0.0082], abs=5e-5)
    # metafor stops Fisher scoring once tau² changes by less than 1e-5 (its default
    # ``threshold``); here that moves its printed 4th decimal of the lower limit by one unit
    # (fully converged: -0.37345), hence 1e-4 for the interval limits
    assert f["ci_low"].to_numpy() == pytest.approx([-0.3735, -0.0472], abs=1e-4)
    assert f["ci_upp"].to_numpy() == pytest.approx([0.8764, -0.0111], abs=1e-4)


# --- prediction intervals --------------------------------------------------------------------


def test_prediction_interval_by_hand():
    yi, vi = Y3, V3
    res = fq.reml(yi, vi)
    tau2 = res.tau2
    w = 1 / (vi + tau2)
    mu, se = np.sum(w * yi) / w.sum(), np.sqrt(1 / w.sum())
    z = stats.norm.ppf(0.975)
    assert res.prediction_interval() == pytest.approx(
        [mu - z * np.sqrt(se**2 + tau2), mu + z * np.sqrt(se**2 + tau2)], rel=1e-9
    )
    _, se_h, _, t = hksj_by_hand(yi, vi, tau2)
    assert res.prediction_interval(method="hksj") == pytest.approx(
        [mu - t * np.sqrt(se_h**2 + tau2), mu + t * np.sqrt(se_h**2 + tau2)], rel=1e-9
    )
    t1 = stats.t.ppf(0.975, 1)  # Riley / Higgins et al.: t with k - 2 df
    assert res.prediction_interval(pi_type="riley") == pytest.approx(
        [mu - t1 * np.sqrt(se**2 + tau2), mu + t1 * np.sqrt(se**2 + tau2)], rel=1e-9
    )
    # with moderators the new study's covariates are needed; rows of x give rows of output
    X = np.column_stack([np.ones(13), ABLAT])
    reg = fq.reml(*bcg_rr(), X)
    x_new = np.array([[1.0, 20.0], [1.0, 40.0]])
    out = fq.predict(reg, x=x_new, method="hksj")
    v = np.einsum("ij,jk,ik->i", x_new, reg.vcov, x_new) * reg.hksj_scale
    tcrit = stats.t.ppf(0.975, 11)
    assert out["pred"].to_numpy() == pytest.approx(x_new @ reg.beta)
    assert out["pi_ub"].to_numpy() == pytest.approx(
        x_new @ reg.beta + tcrit * np.sqrt(v + reg.tau2), rel=1e-9
    )
    assert reg.prediction_interval(x=x_new).shape == (2, 2)
    assert reg.prediction_interval(x=[1.0, 30.0]).shape == (2,)


# --- multilevel REML ---------------------------------------------------------------------------


def _dense_reml_ll(theta, yi, vi, study, X):
    """Restricted log-likelihood with dense matrices (independent of the block formulas)."""
    s, c = theta
    same = (study[:, None] == study[None, :]).astype(float)
    V = np.diag(vi + c) + s * same
    Vi = np.linalg.inv(V)
    A = X.T @ Vi @ X
    b = np.linalg.solve(A, X.T @ Vi @ yi)
    r = yi - X @ b
    k, p = X.shape
    ll = (
        -0.5 * (k - p) * np.log(2 * np.pi)
        + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        - 0.5 * np.linalg.slogdet(V)[1]
        - 0.5 * np.linalg.slogdet(A)[1]
        - 0.5 * r @ Vi @ r
    )
    return ll, b, np.linalg.inv(A)


def _nested_data(seed, m=15, moderator=True):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, m)
    study = np.repeat(np.arange(m), sizes)
    k = study.size
    vi = rng.uniform(0.01, 0.05, k)
    yi = 0.2 + rng.normal(0, 0.2, m)[study] + rng.normal(0, 0.1, k) + rng.normal(0, np.sqrt(vi))
    X = np.column_stack([np.ones(k), rng.normal(size=k)]) if moderator else None
    return yi, vi, study, X


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_multilevel_matches_dense_brute_force(seed):
    yi, vi, study, X = _nested_data(seed)
    res = fq.reml_multilevel(yi, vi, study, X)
    assert res.converged and res.identified
    opt = optimize.minimize(
        lambda t: -_dense_reml_ll(t, yi, vi, study, X)[0],
        x0=[0.02, 0.02],
        bounds=[(0, None), (0, None)],
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    ll, b, _ = _dense_reml_ll(opt.x, yi, vi, study, X)
    assert res.loglik >= ll - 1e-9  # at least as high as the brute-force optimum
    assert res.sigma2 == pytest.approx(opt.x, abs=2e-6)
    ll_at, b_at, cov_at = _dense_reml_ll(res.sigma2, yi, vi, study, X)
    assert res.loglik == pytest.approx(ll_at, abs=1e-9)
    assert res.beta == pytest.approx(b_at, rel=1e-9)
    assert res.vcov == pytest.approx(cov_at, rel=1e-9)
    assert res.beta == pytest.approx(b, abs=1e-5)


def test_multilevel_score_and_information_match_dense_derivatives():
    yi, vi, study, X = _nested_data(7)
    m = study.max() + 1
    model = fq._NestedREML(yi, vi, X, study, m)
    theta = np.array([0.03, 0.01])
    ev = model.evaluate(*theta)
    h = 1e-6
    num = [
        (
            _dense_reml_ll(theta + h * e, yi, vi, study, X)[0]
            - _dense_reml_ll(theta - h * e, yi, vi, study, X)[0]
        )
        / (2 * h)
        for e in np.eye(2)
    ]
    assert ev["score"] == pytest.approx(num, rel=1e-6)
    same = (study[:, None] == study[None, :]).astype(float)
    V = np.diag(vi + theta[1]) + theta[0] * same
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.inv(X.T @ Vi @ X) @ X.T @ Vi
    mats = [same, np.eye(yi.size)]
    info = 0.5 * np.array([[np.trace(P @ a @ P @ b) for b in mats] for a in mats])
    assert ev["info"] == pytest.approx(info, rel=1e-9)


def test_multilevel_boundary_and_unidentified_cases():
    rng = np.random.default_rng(11)
    yi = rng.normal(0.1, 0.3, 8)
    vi = rng.uniform(0.01, 0.05, 8)
    uni = fq.reml(yi, vi)
    # one condition per study: only the sum is identified; split equally
    res = fq.reml_multilevel(yi, vi, [f"s{i}" for i in range(8)])
    assert not res.identified and "not" in res.note
    assert res.sigma2_study == pytest.approx(res.sigma2_condition, rel=1e-12)
    assert res.sigma2.sum() == pytest.approx(uni.tau2, rel=1e-6)
    assert res.estimate == pytest.approx(uni.estimate, rel=1e-6)
    assert res.loglik == pytest.approx(uni.loglik, abs=1e-9)
    # a single study: sigma2_study fixed at 0, the rest is the univariate model
    one = fq.reml_multilevel(yi, vi, np.zeros(8))
    assert one.sigma2_study == 0.0
    assert one.sigma2_condition == pytest.approx(uni.tau2, rel=1e-6)
    # no between-condition variation: sigma2_condition on the boundary at exactly 0
    study = np.repeat(np.arange(10), 3)
    vi = np.full(30, 0.02)
    yi = np.repeat(rng.normal(0, 0.4, 10), 3) + np.tile([-0.001, 0.0, 0.001], 10)
    res = fq.reml_multilevel(yi, vi, study)
    assert res.sigma2_condition == 0.0 and res.sigma2_study > 0.05
    opt = optimize.minimize_scalar(
        lambda s: -_dense_reml_ll([s, 0.0], yi, vi, study, np.ones((30, 1)))[0],
        bounds=(0, 2),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert res.sigma2_study == pytest.approx(opt.x, rel=1e-6)


def test_multilevel_large_k_runs_blockwise():
    yi, vi, study, _ = _nested_data(5, m=20000, moderator=False)
    res = fq.reml_multilevel(yi, vi, study)
    assert res.converged and res.k > 40000
    # truth used to simulate: sigma_study 0.2, sigma_condition 0.1
    assert res.sigma2 == pytest.approx([0.04, 0.01], rel=0.1)
    lo, hi = res.prediction_interval()
    assert hi - lo == pytest.approx(
        2 * stats.norm.ppf(0.975) * np.sqrt(res.se[0] ** 2 + res.sigma2.sum()), rel=1e-12
    )


# --- small-study tests ----------------------------------------------------------------------


def _wls_statsmodels(yi, vi, z):
    import statsmodels.api as sm

    return sm.WLS(yi, sm.add_constant(z), weights=1 / vi).fit()


def test_egger_lm_matches_statsmodels_and_the_classical_form():
    yi, vi = bcg_rr()
    sei = np.sqrt(vi)
    res = fq.egger_test(yi, vi, model="lm")
    wls = _wls_statsmodels(yi, vi, sei)
    assert res.slope == pytest.approx(wls.params[1], rel=1e-10)
    assert res.statistic == pytest.approx(wls.tvalues[1], rel=1e-10)
    assert res.p_value == pytest.approx(wls.pvalues[1], rel=1e-8)
    assert res.df == 11 and not res.underpowered and res.k == 13
    # Egger et al. 1997: OLS of the standard normal deviate y/se on precision 1/se; the bias
    # is that regression's intercept
    import statsmodels.api as sm

    ols = sm.OLS(yi / sei, sm.add_constant(1 / sei)).fit()
    assert res.slope == pytest.approx(ols.params[0], rel=1e-10)
    assert res.statistic == pytest.approx(ols.tvalues[0], rel=1e-10)
    assert res.limit_estimate == pytest.approx(ols.params[1], rel=1e-10)


def test_pet_peese_match_statsmodels_and_the_rule():
    yi, vi = bcg_rr()
    for fit, z in ((fq.pet(yi, vi), np.sqrt(vi)), (fq.peese(yi, vi), vi)):
        wls = _wls_statsmodels(yi, vi, z)
        assert fit.intercept == pytest.approx(wls.params[0], rel=1e-10)
        assert fit.se_intercept == pytest.approx(wls.bse[0], rel=1e-10)
        assert fit.p_intercept == pytest.approx(wls.pvalues[0], rel=1e-8)
        assert [fit.ci_low, fit.ci_upp] == pytest.approx(wls.conf_int()[0], rel=1e-10)
        assert fit.slope == pytest.approx(wls.params[1], rel=1e-10)
    pp = fq.pet_peese(yi, vi)
    assert pp.pet.p_intercept > 0.05 and pp.chosen == "PET"
    assert pp.estimate == pp.pet.intercept and "PEESE if" in pp.rule
    # a clear genuine effect: PET's intercept is significant, so PEESE is reported
    rng = np.random.default_rng(3)
    vi2 = rng.uniform(0.001, 0.02, 12)
    yi2 = 0.5 + rng.normal(0, np.sqrt(vi2))
    pp2 = fq.pet_peese(yi2, vi2)
    assert pp2.pet.p_intercept < 0.05 and pp2.chosen == "PEESE"
    assert pp2.estimate == pp2.peese.intercept and not pp2.underpowered
    # one-sided rule in the other direction never picks PEESE for a positive intercept
    assert fq.pet_peese(yi2, vi2, alternative="less").chosen == "PET"


def test_small_study_underpowered_flag_and_minimum_k():
    rng = np.random.default_rng(8)
    for k in (3, 9, 10):
        vi = rng.uniform(0.01, 0.05, k)
        yi = rng.normal(0, 0.2, k)
        assert fq.egger_test(yi, vi).underpowered == (k < 10)
        assert fq.egger_test(yi, vi, model="rma").k == k
        assert fq.pet_peese(yi, vi).underpowered == (k < 10)
    with pytest.raises(InputError, match="at least 3"):
        fq.egger_test([0.1, 0.2], [0.01, 0.02])
    with pytest.raises(InputError, match="different precision"):
        fq.pet([0.1, 0.2, 0.3], [0.01, 0.01, 0.01])


def test_funnel_plot_returns_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    yi, vi = bcg_rr()
    out = fq.funnel_plot(yi, vi, ax=ax, labels=[f"s{i}" for i in range(13)])
    assert out is ax
    assert ax.get_ylim()[0] > ax.get_ylim()[1] == 0.0  # inverted standard-error axis
    assert len(ax.texts) == 13
    assert matplotlib.get_backend()  # no backend was forced by the call
    fq.funnel_plot([0.2], [0.01], ax=fig.add_subplot(212))  # a single effect size draws


def test_bad_input_is_rejected_with_clear_messages():
    with pytest.raises(InputError, match="method"):
        fq.reml(Y3, V3).conf_int(method="profile")
    with pytest.raises(InputError, match="level"):
        fq.reml(Y3, V3).conf_int(level=95)
    res = fq.reml(*bcg_rr(), np.column_stack([np.ones(13), ABLAT]))
    with pytest.raises(InputError, match="moderator values"):
        fq.predict(res)
    with pytest.raises(InputError, match="length 2"):
        fq.predict(res, x=[1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="study"):
        fq.reml_multilevel(Y3, V3, ["a", "b"])
    with pytest.raises(InputError, match="row 2"):
        fq.reml_multilevel(Y3, V3, ["a", None, "b"])
    ml = fq.reml_multilevel(Y3, V3, ["a", "a", "b"])
    with pytest.raises(InputError, match="Wald"):
        fq.predict(ml, method="hksj")
    with pytest.raises(InputError, match="full column rank"):
        fq.reml(Y3, V3, np.column_stack([np.ones(3), np.ones(3)]))
    with pytest.raises(InputError, match="labels"):
        fq.funnel_plot(Y3, V3, labels=["a"])
    with pytest.raises(InputError, match="alternative"):
        fq.pet_peese(*bcg_rr(), alternative="up")
    with pytest.raises(InputError, match="FrequentistResult"):
        fq.predict(object())


# --- metafor reference numbers (R), when the file is present ---------------------------------

needs_reference = pytest.mark.skipif(
    not REF_JSON.exists(), reason="tests/data/reference/metafor_reference.json not generated yet"
)


@pytest.fixture(scope="module")
def reference():
    return json.loads(REF_JSON.read_text(encoding="utf-8"))


def _sets(reference):
    """(name, yi, vi, entry) for every univariate data set in the reference file."""
    bcg = pd.read_csv(REF / reference["univariate"]["dat.bcg"]["input"])
    out = [
        (
            "dat.bcg",
            bcg["yi"].to_numpy(float),
            bcg["vi"].to_numpy(float),
            reference["univariate"]["dat.bcg"],
        )
    ]
    snap = pd.read_csv(REF / "effects_snapshot.csv").set_index("row_id")
    for fam, entry in reference["univariate"]["effects_snapshot"]["families"].items():
        sub = snap.loc[entry["row_ids"]]
        out.append((fam, sub["yi"].to_numpy(float), sub["vi"].to_numpy(float), entry))
    return out


def close(value, expected, rel=1e-6, abs_=1e-10):
    """Agreement at 1e-6 relative (absolute 1e-10 for values at or near 0)."""
    return value == pytest.approx(expected, rel=rel, abs=abs_)


@needs_reference
def test_reference_bcg_data_are_the_readme_counts(reference):
    bcg = pd.read_csv(REF / "metafor_dat_bcg.csv")
    yi, vi = bcg_rr()
    assert bcg["yi"].to_numpy() == pytest.approx(yi, rel=1e-12)
    assert bcg["vi"].to_numpy() == pytest.approx(vi, rel=1e-12)


@needs_reference
def test_reml_matches_metafor(reference):
    # metafor's default REML stops when tau² changes by < 1e-5; 'reml_tight' is the same fit
    # with threshold 1e-12, which is what a fully converged estimate has to match
    for name, yi, vi, entry in _sets(reference):
        res, tight, default = fq.reml(yi, vi), entry["reml_tight"], entry["reml"]
        assert tight["ok"], name
        assert close(res.tau2, tight["tau2"]), name
        assert close(res.estimate, tight["beta"]), name
        assert close(res.se[0], tight["se"]), name
        assert close(res.se_tau2, tight["se.tau2"]), name
        assert close(res.i2, tight["I2_percent"]), name
        assert close(res.h2, tight["H2"]), name
        assert close(res.q, default["QE"]), name  # Q does not depend on tau²
        assert close(stats.chi2.sf(res.q, res.df_q), default["QEp"]), name
        assert res.k == entry["k"]


@needs_reference
def test_hksj_modified_hksj_and_predict_match_metafor(reference):
    # metafor's knha/adhoc/predict numbers come from its default-threshold fit; evaluated at its
    # tau² our formulas must reproduce them exactly; the fully converged fit is then close
    for name, yi, vi, entry in _sets(reference):
        res = fq.reml(yi, vi, tau2=entry["reml"]["tau2"])
        for test, method in (("knha", "hksj"), ("adhoc", "hksj_modified")):
            ref = entry[test]
            assert ref["ok"] and ref["supported"], (name, test)
            row = res.summary_frame(0.95, method).iloc[0]
            assert close(row.coef, ref["beta"]), (name, test)
            assert close(row.se, ref["se"]), (name, test)
            assert close(row.statistic, ref["tval"]), (name, test)
            assert row.df == ref["df"]
            assert close(row.p_value, ref["pval"]), (name, test)
            assert close(row.ci_low, ref["ci.lb"]) and close(row.ci_upp, ref["ci.ub"]), name
            assert close(res.variance_factor(method), ref["s2w"]), (name, test)
            pred = fq.predict(res, method=method).iloc[0]
            for ours, theirs in (
                ("pred", "pred"),
                ("se", "se"),
                ("ci_lb", "ci.lb"),
                ("ci_ub", "ci.ub"),
                ("pi_lb", "pi.lb"),
                ("pi_ub", "pi.ub"),
            ):
                assert close(pred[ours], ref["predict"][theirs]), (name, test, ours)
        pred, ref = fq.predict(res).iloc[0], entry["reml_predict"]  # Wald (test="z")
        assert close(pred.pi_lb, ref["pi.lb"]) and close(pred.pi_ub, ref["pi.ub"]), name
        assert close(pred.ci_lb, ref["ci.lb"]) and close(pred.ci_ub, ref["ci.ub"]), name
        converged = fq.reml(yi, vi)
        assert close(
            converged.conf_int(method="hksj")[0],
            [entry["knha"]["ci.lb"], entry["knha"]["ci.ub"]],
            rel=1e-3,
        ), name


@needs_reference
def test_egger_pet_peese_match_metafor(reference):
    for name, yi, vi, entry in _sets(reference):
        if entry["k"] < 3:
            # metafor's lm fit has 0 residual df (no test: NaN); we refuse such a fit
            assert entry["egger_lm"]["df"] == 0 and entry["egger_lm"]["pval"] is None
            with pytest.raises(InputError, match="at least 3"):
                fq.egger_test(yi, vi)
            with pytest.raises(InputError, match="at least 3"):
                fq.pet_peese(yi, vi)
            continue
        eg, ref = fq.egger_test(yi, vi, model="lm"), entry["egger_lm"]
        assert close(eg.statistic, ref["tval"]) and eg.df == ref["df"], name
        assert close(eg.p_value, ref["pval"]), name
        assert close(eg.limit_estimate, ref["est"]), name
        assert close(eg.ci_low, ref["est.ci.lb"]) and close(eg.ci_upp, ref["est.ci.ub"]), name
        assert close(eg.slope, ref["slope"]["estimate"]), name
        assert close(eg.se_slope, ref["slope"]["se"]), name
        assert eg.underpowered == (entry["k"] < 10)
        for fit, key in ((fq.pet(yi, vi), "pet"), (fq.peese(yi, vi), "peese")):
            ref = entry[key]
            assert fit.df == ref["df"]
            for ours, theirs in (
                ("intercept", "estimate"),
                ("se_intercept", "se"),
                ("t_intercept", "tval"),
                ("p_intercept", "pval"),
            ):
                assert close(getattr(fit, ours), ref["intercept"][theirs]), (name, key, ours)
            assert close(fit.slope, ref["slope"]["estimate"]), (name, key)
            assert close(fit.p_slope, ref["slope"]["pval"]), (name, key)
        # regtest(model="rma"): REML meta-regression on sei, Wald z test of the slope; at
        # metafor's (default-threshold) residual tau² exactly, fully converged within 1e-4
        ref = entry["egger_rma"]
        X = np.column_stack([np.ones_like(yi), np.sqrt(vi)])
        at = fq.reml(yi, vi, X, tau2=ref["tau2_residual"]).summary_frame()
        assert close(at["statistic"].iloc[1], ref["zval"]), name
        assert close(at["p_value"].iloc[1], ref["pval"]), name
        assert close(at["coef"].iloc[1], ref["slope_estimate"]), name
        assert close(at["se"].iloc[1], ref["slope_se"]), name
        assert close(at["coef"].iloc[0], ref["est"]), name
        assert close(at["ci_low"].iloc[0], ref["est.ci.lb"]), name
        assert close(at["ci_upp"].iloc[0], ref["est.ci.ub"]), name
        eg = fq.egger_test(yi, vi, model="rma")
        assert close(eg.p_value, ref["pval"], rel=1e-4), name
        assert close(eg.tau2, ref["tau2_residual"], rel=1e-4), name


def _multilevel_sets(reference):
    """(name, yi, vi, study, X, entry, separable) for every rma.mv fit in the reference file."""
    ml = reference["multilevel"]
    out = []
    k11 = pd.read_csv(REF / ml["dat.konstantopoulos2011"]["input"])
    out.append(
        (
            "konstantopoulos2011",
            k11["yi"].to_numpy(float),
            k11["vi"].to_numpy(float),
            k11["district"].to_numpy(),
            None,
            ml["dat.konstantopoulos2011"]["reml"],
            True,
        )
    )
    syn = pd.read_csv(REF / ml["synthetic_bayes"]["input"])
    out.append(
        (
            "synthetic_bayes",
            syn["yi"].to_numpy(float),
            syn["vi"].to_numpy(float),
            syn["study"].to_numpy(str),
            None,
            ml["synthetic_bayes"]["reml"],
            True,
        )
    )
    snap = pd.read_csv(REF / "effects_snapshot.csv")
    indexed = snap.set_index("row_id")
    for fam, entry in ml["effects_snapshot"]["families"].items():
        sub = indexed.loc[entry["row_ids"]]
        out.append(
            (
                fam,
                sub["yi"].to_numpy(float),
                sub["vi"].to_numpy(float),
                sub["study"].to_numpy(str),
                None,
                entry["reml"],
                entry["components_separable"],
            )
        )
    allfam = ml["effects_snapshot"]["all_families"]
    X = (snap["family"].to_numpy(str)[:, None] == np.array(allfam["family_levels"])).astype(float)
    out.append(
        (
            "all_families",
            snap["yi"].to_numpy(float),
            snap["vi"].to_numpy(float),
            snap["study"].to_numpy(str),
            X,
            allfam["reml"],
            True,
        )
    )
    return out


@needs_reference
def test_multilevel_matches_metafor_rma_mv(reference):
    for name, yi, vi, study, X, ref, separable in _multilevel_sets(reference):
        assert ref["ok"], name
        res = fq.reml_multilevel(yi, vi, study, X)
        s2 = np.array(list(ref["sigma2"].values()))
        beta, se = np.array(list(ref["beta"].values())), np.array(list(ref["se"].values()))
        assert res.identified == separable, name
        assert res.k == ref["k"] and res.n_studies == next(iter(ref["s.nlevels"].values()))
        # variance components: absolute 1e-6 [ln-ratio²] (metafor optimises log-variances with
        # nlminb and reports boundary values as ~1e-12 instead of 0)
        assert res.sigma2 == pytest.approx(s2, abs=1e-6), name
        assert close(res.beta, beta) and close(res.se, se), name
        # our optimum is at least as high as metafor's, and the same to 1e-6
        assert res.loglik >= ref["logLik_REML"] - 1e-9, name
        assert close(res.loglik, ref["logLik_REML"]), name
        # at metafor's components every derived number agrees to rounding
        at = fq.reml_multilevel(yi, vi, study, X, sigma2=s2)
        frame = at.summary_frame()
        assert close(at.beta, beta) and close(at.se, se), name
        assert close(frame["ci_low"].to_numpy(), list(ref["ci.lb"].values())), name
        assert close(frame["ci_upp"].to_numpy(), list(ref["ci.ub"].values())), name
        assert close(frame["p_value"].to_numpy(), list(ref["pval"].values())), name
        assert close(at.loglik, ref["logLik_REML"]), name
        preds = ref["predict"]
        preds = [preds] if "pred" in preds else list(preds.values())
        x_new = None if X is None else np.eye(X.shape[1])
        ours = fq.predict(at, x=x_new)
        for j, p in enumerate(preds):
            for a, b in (("pred", "pred"), ("se", "se"), ("pi_lb", "pi.lb"), ("pi_ub", "pi.ub")):
                assert close(ours[a].iloc[j], p[b]), (name, j, a)


@needs_reference
def test_multilevel_matches_published_konstantopoulos2011(reference):
    # metafor tests/testthat/test_analysis_example_konstantopoulos2011.r (4 decimals)
    k11 = pd.read_csv(REF / "metafor_dat_konstantopoulos2011.csv")
    res = fq.reml_multilevel(k11["yi"], k11["vi"], k11["district"])
    assert res.estimate == pytest.approx(0.1847, abs=5e-5)
    assert res.se[0] == pytest.approx(0.0846, abs=5e-5)
    assert res.sigma2 == pytest.approx([0.0651, 0.0327], abs=5e-5)
    assert res.loglik == pytest.approx(-7.9587, abs=5e-5)
