"""Meta-analysis: REML/DL/PM against published metafor results and independent computations;
the Bayesian model against REML, known parameters (recovery), SBC, and the convergence gate.

Published reference values
--------------------------
* BCG vaccine data (Colditz et al. 1994, JAMA 271(9):698-702; metafor's ``dat.bcg``): counts
  and the REML results (log risk ratios) read in the metafor README (github.com/wviechtb/metafor,
  README.md, commit 49fcd48): tau² 0.3132 (SE 0.1664), estimate -0.7145, I² 92.22 %,
  H² 12.86, Q(12) 152.2330; with ``mods = ~ ablat``: tau² 0.0764 (SE 0.0591), intercept 0.2515,
  ablat -0.0291. The z-test SE of the REML estimate, 0.1798, as printed by metafor in two
  tutorials found with the search tools (the README shows the Knapp-Hartung SE).
* DL on the same data, read in metafor's test file
  ``tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r`` (values checked there against
  Stata ``metan``): RR: estimate -0.7141, CI [-1.0644, -0.3638], tau² 0.3088, I² 92.1173;
  OR: estimate -0.7474, CI [-1.1242, -0.3706], tau² 0.3663, I² 92.6455.
* Paule-Mandel and DL for the Kacker (2004) example, computed with metafor and stored in
  statsmodels' ``statsmodels/stats/tests/results/results_meta.py`` (``exk1_metafor``,
  ``exk1_dl``; read in the installed statsmodels package).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from retrosim.errors import ConvergenceError, InputError
from retrosim.meta import model as inf

# --- BCG data (metafor README, read) --------------------------------------------------------
TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27.0])
TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886.0])
CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29.0])
CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825.0])
ABLAT = np.array([44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33.0])


def bcg_rr():
    """Log risk ratios and variances as metafor's escalc(measure='RR') defines them."""
    n1, n2 = TPOS + TNEG, CPOS + CNEG
    yi = np.log(TPOS / n1) - np.log(CPOS / n2)
    vi = 1 / TPOS - 1 / n1 + 1 / CPOS - 1 / n2
    return yi, vi


def bcg_or():
    yi = np.log(TPOS * CNEG / (TNEG * CPOS))
    vi = 1 / TPOS + 1 / TNEG + 1 / CPOS + 1 / CNEG
    return yi, vi


# Kacker 2004 example (statsmodels results_meta.py, metafor output)
KACKER_Y = np.array([61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9])
KACKER_V = np.array([0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225])


def test_reml_matches_metafor_bcg():
    res = inf.reml(*bcg_rr())
    assert res.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert res.se_tau2 == pytest.approx(0.1664, abs=5e-5)
    assert res.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert res.se[0] == pytest.approx(0.1798, abs=5e-5)
    assert res.i2 == pytest.approx(92.22, abs=5e-3)
    assert res.h2 == pytest.approx(12.86, abs=5e-3)
    assert res.q == pytest.approx(152.2330, abs=5e-4)


def test_reml_meta_regression_matches_metafor_bcg():
    yi, vi = bcg_rr()
    X = np.column_stack([np.ones_like(yi), ABLAT])
    res = inf.reml(yi, vi, X, names=["intrcpt", "ablat"])
    assert res.tau2 == pytest.approx(0.0764, abs=1e-4)
    assert res.se_tau2 == pytest.approx(0.0591, abs=1e-4)
    assert res.beta[0] == pytest.approx(0.2515, abs=5e-5)
    assert res.beta[1] == pytest.approx(-0.0291, abs=5e-5)
    assert res.q == pytest.approx(30.7331, abs=5e-4)
    assert "ablat" in res.summary().as_text()


@pytest.mark.parametrize(
    "data, est, lo, hi, tau2, i2",
    [
        (bcg_rr, -0.7141, -1.0644, -0.3638, 0.3088, 92.1173),
        (bcg_or, -0.7474, -1.1242, -0.3706, 0.3663, 92.6455),
    ],
)
def test_dl_matches_metafor_bcg(data, est, lo, hi, tau2, i2):
    res = inf.dersimonian_laird(*data())
    assert res.estimate == pytest.approx(est, abs=5e-5)
    assert res.conf_int()[0] == pytest.approx([lo, hi], abs=5e-5)
    assert res.tau2 == pytest.approx(tau2, abs=5e-5)
    assert res.i2 == pytest.approx(i2, abs=5e-4)


def test_pm_and_dl_match_metafor_kacker():
    pm_ = inf.paule_mandel(KACKER_Y, KACKER_V)
    assert pm_.tau2 == pytest.approx(0.705395309224248, rel=1e-6)
    assert pm_.estimate == pytest.approx(62.4076199113286, abs=1e-6)
    assert pm_.se[0] == pytest.approx(0.338030602684471, rel=1e-5)
    assert pm_.i2 == pytest.approx(83.7218626490482, rel=1e-5)
    dl = inf.frequentist(KACKER_Y, KACKER_V, method="DL")
    assert dl.tau2 == pytest.approx(0.288049246973751, rel=1e-9)
    assert dl.estimate == pytest.approx(62.3901386044504, abs=1e-9)
    assert dl.se[0] == pytest.approx(0.245749668040304, rel=1e-8)


def _our_energy_rows():
    from retrosim.evidence import tables as evidence

    df = evidence.effect_sizes()
    df = df[df["primary"].astype(bool) & (df["outcome_family"].isin(["energy", "heart_rate"]))]
    return df["yi"].to_numpy(float), df["vi"].to_numpy(float)


def test_estimators_on_our_evidence_match_independent_computations():
    yi, vi = _our_energy_rows()
    k = yi.size
    assert k >= 5
    # DL closed form (DerSimonian & Laird 1986), written out here
    w = 1 / vi
    mu_fe = np.sum(w * yi) / w.sum()
    q = np.sum(w * (yi - mu_fe) ** 2)
    tau2_dl = max(0.0, (q - (k - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
    assert inf.dersimonian_laird(yi, vi).tau2 == pytest.approx(tau2_dl, rel=1e-10, abs=1e-12)

    # PM: root of the generalised Q statistic = k - 1
    def gen_q(t2):
        ww = 1 / (vi + t2)
        m = np.sum(ww * yi) / ww.sum()
        return np.sum(ww * (yi - m) ** 2) - (k - 1)

    tau2_pm = optimize.brentq(gen_q, 0.0, 10.0, xtol=1e-14) if gen_q(0.0) > 0 else 0.0
    assert inf.paule_mandel(yi, vi).tau2 == pytest.approx(tau2_pm, rel=1e-5, abs=1e-9)

    # REML: brute-force maximisation of the restricted log-likelihood
    def neg_restricted_ll(t2):
        ww = 1 / (vi + t2)
        m = np.sum(ww * yi) / ww.sum()
        return 0.5 * (np.sum(np.log(vi + t2)) + np.log(ww.sum()) + np.sum(ww * (yi - m) ** 2))

    opt = optimize.minimize_scalar(
        neg_restricted_ll, bounds=(0.0, 5.0), method="bounded", options={"xatol": 1e-12}
    )
    res = inf.reml(yi, vi)
    assert res.tau2 == pytest.approx(opt.x, rel=1e-5, abs=1e-9)
    ww = 1 / (vi + res.tau2)
    assert res.estimate == pytest.approx(np.sum(ww * yi) / ww.sum(), rel=1e-12)
    assert res.se[0] == pytest.approx(1 / np.sqrt(ww.sum()), rel=1e-12)


def test_frequentist_rejects_bad_input():
    with pytest.raises(InputError, match="vi"):
        inf.reml([0.1, 0.2, 0.3], [0.01, -1, 0.02])
    with pytest.raises(InputError, match="method"):
        inf.frequentist([0.1, 0.2, 0.3], [0.01, 0.01, 0.02], method="ML")


# --- Bayesian model ----------------------------------------------------------------------------
# Every fit below uses the SBC design's shape (one family, 10 studies x 2 speeds), so the
# nutpie-compiled model is built once per test session.


def _sim(seed, **kw):
    kw = {"n_studies": 10, "speeds_m_s": (2.5, 3.5), "families": ("energy",)} | kw
    return inf.simulate_effect_sizes(seed, **kw)


def test_prior_predictive_matches_closed_form():
    df, _ = _sim(0)
    summ = inf.prior_predictive_summary(df, draws=4000, seed=1)
    row = summ[(summ["quantity"] == "mean effect") & (summ["scale"] == "%")].iloc[0]
    # alpha ~ Normal(0, 0.5): its 2.5 % / 97.5 % quantiles on the % scale in closed form
    z = stats.norm.ppf(0.975) * inf.Priors().alpha_sd
    assert row["q2.5"] == pytest.approx(100 * np.expm1(-z), abs=3.0)
    assert row["q97.5"] == pytest.approx(100 * np.expm1(z), abs=8.0)
    y = summ[(summ["quantity"] == "observed y") & (summ["scale"] == "ln ratio")].iloc[0]
    assert y["q2.5"] < row["q2.5"] / 100 < 0 < y["q97.5"]


@pytest.fixture(scope="module")
def recovery_fit():
    df, truth = _sim(11, alpha=0.25, b_speed=0.08, tau_study=0.1, tau_cond=0.03, r=0.7)
    res = inf.fit(df, draws=500, tune=500, chains=2, seed=5, target_accept=0.95, gate="warn")
    return res, truth


def test_bayesian_recovers_known_parameters(recovery_fit):
    res, truth = recovery_fit
    for name in ("alpha", "b_speed", "tau_study"):
        d = res.draws(name)[:, 0]
        lo, hi = np.quantile(d, [0.005, 0.995])
        assert lo < truth[name][0] < hi, name
    assert abs(np.median(res.draws("alpha")) - truth["alpha"][0]) < 0.1
    assert res.draws("alpha").std() < 0.06
    assert "alpha[energy]" in res.summary().as_text()


def test_meta_summary_is_arviz_summary(recovery_fit, tmp_path):
    """The printed, HTML and tabular summaries carry ArviZ's numbers (computed here directly)."""
    import arviz as az
    import matplotlib
    import xarray as xr
    from matplotlib.figure import Figure

    res, _ = recovery_fit
    names = ["alpha", "tau_study", "r"]
    ref = az.summary(res.idata, var_names=names, ci_kind="eti", ci_prob=0.95, round_to="none")
    tab = res.to_dataframe(names)
    for col in ("mean", "sd", "eti95_lb", "eti95_ub", "r_hat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(tab[col], ref.loc[tab.index, col], rtol=1e-12)
    # the median is the draws' median, the interval their 2.5 and 97.5 % quantiles
    alpha = res.idata["posterior"]["alpha"].values[..., 0].ravel()
    assert tab.loc["alpha[energy]", "median"] == pytest.approx(np.median(alpha), rel=1e-12)
    assert tab.loc["alpha[energy]", "eti95_lb"] == pytest.approx(np.quantile(alpha, 0.025))
    summ = res.summary(names)
    text, page = summ.as_text(), summ.as_html()
    assert str(summ) == text and summ._repr_html_() == page
    for label in ("alpha[energy]", "tau_study[energy]", "r"):
        for col in ("mean", "sd", "eti95_ub"):
            assert f"{ref.loc[label, col]:.3f}" in text and f"{ref.loc[label, col]:.3f}" in page
        assert f"{ref.loc[label, 'ess_bulk']:.0f}" in text
    assert "97.5%" in text and "diagnostics: max R-hat" in text
    assert str(res) == res.summary().as_text()
    # the gate's per-parameter data are ArviZ's R-hat and ESS
    diag = res.diagnostics.to_dataframe()
    np.testing.assert_allclose(diag.loc[ref.index, "r_hat"], ref["r_hat"], rtol=1e-12)
    assert diag["r_hat"].max() == pytest.approx(res.diagnostics.max_rhat)
    # plot draws on the given axes and leaves the backend alone; to_netcdf round-trips
    backend = matplotlib.get_backend()
    ax = Figure().add_subplot()
    assert res.plot(ax=ax) is ax and len(ax.lines) >= 1
    assert matplotlib.get_backend() == backend
    back = xr.open_datatree(res.to_netcdf(tmp_path / "meta.nc"), engine="h5netcdf")
    np.testing.assert_array_equal(
        back["posterior"]["alpha"].values,
        res.draws("alpha").reshape(back["posterior"]["alpha"].shape),
    )
    assert set(back.children) == set(res.idata.children)


def test_posterior_predictive_check_covers_the_data(recovery_fit):
    res, _ = recovery_fit
    rows, summ = inf.posterior_predictive_check(res, seed=3)
    assert len(rows) == res.design.n_rows
    assert summ["share_inside_95"] >= 0.8
    assert 0.01 < summ["p_sd"] < 0.99


def test_flat_priors_agree_with_reml():
    # one active row per study, fixed variances, no moderators: the plain random-effects model
    df, _ = _sim(23, alpha=-0.2, tau_study=0.15, tau_cond=0.0)
    design = inf.MetaDesign.from_frame(df, nested=False)
    first = ~df["row_id"].str.endswith("_3.5").to_numpy()
    design = replace(
        design,
        mask=first.astype(float),
        has_speed=np.zeros(1),
        paired=np.zeros(design.n_rows),
    )
    res = inf.fit(
        design,
        priors=inf.Priors.flat(),
        draws=1000,
        tune=1000,
        chains=2,
        seed=9,
        target_accept=0.95,
        gate="warn",
    )
    ref = inf.reml(design.y[first], design.v_fixed[first])
    alpha = res.draws("alpha")[:, 0]
    assert abs(np.median(alpha) - ref.estimate) < 0.25 * ref.se[0]
    # the posterior SD adds tau uncertainty to the REML SE: a little wider, not narrower
    assert 0.9 * ref.se[0] < alpha.std() < 1.5 * ref.se[0]
    tau = res.draws("tau_study")[:, 0]
    assert np.quantile(tau, 0.05) < np.sqrt(ref.tau2) < np.quantile(tau, 0.95)
    assert abs(np.median(tau) - np.sqrt(ref.tau2)) < 0.35 * np.sqrt(ref.tau2)


def test_small_sbc_shows_no_miscalibration():
    ranks = pd.DataFrame([inf.run_sbc_replicate(s, draws=100, tune=150) for s in range(24)])
    uni = inf.sbc_uniformity(ranks)
    assert set(uni["parameter"]) == set(inf.SBC_PARAMS)
    # Bonferroni over 5 parameters x 2 tests at 1 %
    assert (uni["p_chi2"] > 0.001).all(), uni.to_string()
    assert (uni["p_ks"] > 0.001).all(), uni.to_string()
    # and the same test rejects clearly non-uniform ranks (all at the extremes)
    shifted = ranks.copy()
    shifted["rank_alpha"] = np.where(ranks["rank_alpha"] > 0, ranks["n_ranks"], 0)
    assert inf.sbc_uniformity(shifted).set_index("parameter").loc["alpha", "p_ks"] < 0.001


def test_unconverged_fit_is_caught():
    df, _ = _sim(31)
    res = inf.fit(df, draws=10, tune=5, chains=2, seed=1, gate="off")
    assert not res.converged
    assert res.diagnostics.problems()
    with pytest.raises(ConvergenceError, match="convergence gate"):
        inf.fit(df, draws=10, tune=5, chains=2, seed=1, gate="raise")


def test_design_rejects_bad_tables():
    df, _ = _sim(0)
    with pytest.raises(InputError, match="columns"):
        inf.MetaDesign.from_frame(df.drop(columns=["vi"]))
    bad = df.copy()
    bad.loc[3, "vi"] = -1.0
    with pytest.raises(InputError, match="row"):
        inf.MetaDesign.from_frame(bad)
    bad = df.copy()
    bad.loc[0, "mode"] = "jog"
    with pytest.raises(InputError, match="mode"):
        inf.MetaDesign.from_frame(bad)
