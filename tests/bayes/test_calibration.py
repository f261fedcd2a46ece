"""Calibration of the paired direction effects against the published backward/forward ratios.

Expected values are published numbers read from data/, hand calculations written out here, or
an independent computation (dense Gaussian conditioning, brute-force integration), never
outputs of the code under test.
"""

import numpy as np
import pandas as pd
import pytest

from retrosim.bayes import calibration as cal
from retrosim.errors import InputError
from retrosim.evidence import tables as evidence
from retrosim.models import energetics as en
from retrosim.models import gait as ga
from retrosim.models import knee as kn


@pytest.fixture(scope="module")
def effects():
    return evidence.effect_sizes()


@pytest.fixture(scope="module")
def table(effects):
    return cal.calibration_table(effects)


@pytest.fixture(scope="module")
def posterior(effects):
    return cal.fit(effects, draws=4000, chains=1, seed=11).posterior


def _row(effects, **props):
    sel = effects
    for k, v in props.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, props
    return sel.iloc[0]


def _interval(effects, **props):
    r = _row(effects, **props)
    half = 1.96 * np.sqrt(r["vi"])
    return np.exp(r["yi"] - half), np.exp(r["yi"] + half)


# ----------------------------------------------------------------------------- the design
def test_linear_design_equals_the_models(table):
    """x . theta (what is fitted) equals the gait/energetics/knee functions (what is run)."""
    rng = np.random.default_rng(3)
    p = cal.prior_draws(400, rng)
    names = cal.priors()[0]
    theta = np.stack([p[n] for n in names], axis=1)
    cases = [("energy", "run", 2.2, "vo2_ml_kg_min"), ("energy", "run", 2.9, "vo2_ml_kg_min"),
             ("energy", "run", 3.4, "metabolic_rate_w_kg"), ("energy", "walk", 1.6, "vo2_ml_kg_min"),
             ("step_frequency", "run", 3.0, "step_frequency_hz"),
             ("peak_vgrf", "run", 3.1, "vgrf_peak_bw"),
             ("knee_moment", "run", 3.1, "knee_ext_moment_nm"),
             ("knee_flexion", "run", 3.1, "knee_flexion_at_peak_moment_deg"),
             ("muscle_volume", "run", 3.0, "active_muscle_volume_per_force")]  # fmt: skip
    for quantity, mode, v, outcome in cases:
        row = {"quantity": quantity, "mode_used": mode, "speed_used": v,
               "speed_backward_used": v, "outcome": outcome}  # fmt: skip
        model = cal.model_log_ratio(row, p, np.random.default_rng(1))
        linear = theta @ cal.design_row(quantity, mode, v)
        ok = np.ones(len(model), bool)
        if mode == "run" and quantity != "energy":  # linear only while both steps have flight
            g = [ga.spring_mass_running(v, 70.0, None, d, params=p, _check=False)
                 for d in ("forward", "backward")]  # fmt: skip
            ok = (g[0]["flight_time_s"] > 0) & (g[1]["flight_time_s"] > 0)
            assert ok.mean() > 0.97, quantity  # grounded running only in extreme prior draws
        if quantity == "knee_flexion":  # backward angle clipped at 60 deg in rare draws
            kp = kn.sample_parameters(400, np.random.default_rng(1), effects=p)
            ok &= kp["knee_flexion_deg_backward"] < 60
        np.testing.assert_allclose(model[ok], linear[ok], rtol=1e-9, atol=1e-12,
                                   err_msg=quantity)  # fmt: skip


def test_net_conversion_of_a_gross_vo2_ratio(effects, table):
    # Williford 1998 walking: 12.42 -> 15.95 mL/kg/min gross; net with resting 3.5
    src = _row(effects, study_key="williford1998", outcome="vo2_ml_kg_min", mode="walk")
    row = table[table["row_id"] == src["row_id"]].iloc[0]
    f, b = src["forward_mean"], src["backward_mean"]
    assert row["y"] == pytest.approx(np.log((b - 3.5) / (f - 3.5)))
    assert row["y"] > row["published_yi"]  # the net ratio is further from 1
    back = cal.to_published_ratio(row, row["y"])
    assert back == pytest.approx(b / f)


def test_table_selects_by_properties_not_position(effects, table):
    shuffled = effects.sample(frac=1.0, random_state=4)
    extra = effects.iloc[[0]].copy()
    extra["row_id"], extra["study_key"] = "new_same_speed", "newstudy"
    extra["speed_m_s"] = extra["speed_backward_m_s"] = 1.6
    graded = extra.copy()
    graded["row_id"], graded["grade_class"] = "new_graded", "uphill"
    selfsel = extra.copy()
    selfsel["row_id"], selfsel["speed_matching"] = "new_selfselected", "self_selected"
    selfsel["speed_backward_m_s"] = 1.1
    t = cal.calibration_table(pd.concat([shuffled, extra, graded, selfsel]))
    t = t.set_index("row_id")
    base = table.set_index("row_id")
    for rid in base.index:
        assert t.loc[rid, "status"] == base.loc[rid, "status"]
        assert t.loc[rid, "y"] == pytest.approx(base.loc[rid, "y"], nan_ok=True)
    assert t.loc["new_same_speed", "status"] == "fit"
    assert t.loc["new_graded", "status"] == "excluded"
    assert t.loc["new_selfselected", "status"] == "holdout"
    assert t.loc["new_selfselected", "speed_backward_used"] == pytest.approx(1.1)
    with pytest.raises(InputError):
        cal.calibration_table(effects.drop(columns="vi"))


def test_holdout_list_names_existing_rows_and_is_never_fitted(effects, table):
    hold = cal.load_holdout()
    assert set(hold["row_id"]) <= set(effects["row_id"])
    assert hold["reason"].str.len().min() > 20
    st = table.set_index("row_id").loc[list(hold["row_id"]), "status"]
    assert set(st) <= {"holdout", "excluded"}
    # the +35 % and the +10 % of the same four runners are not both fitted
    ww = table[table["study_key"] == "wright2001"].set_index("quantity")["status"]
    assert ww["energy"] == "fit" and ww["muscle_volume"] == "holdout"


# ----------------------------------------------------------------------------- the posterior
def test_exact_posterior_equals_dense_gaussian_conditioning(table):
    """Given the SDs, the normal-normal posterior equals conditioning the joint (theta, y)."""
    post = cal.exact_posterior(table)
    names, m0, s0 = cal.priors()
    fit = table[table["status"] == "fit"]
    X = fit[[f"x_{n}" for n in names]].to_numpy(float)
    y = fit["y"].to_numpy(float)
    j, k = 7, 3
    te, tm = cal.TAU_GRID[j], cal.TAU_GRID[k]
    d = fit["v"] + fit["extra_var"] + np.where(fit["tau"] == "tau_energy", te**2, tm**2)
    s_tt = np.diag(s0**2)
    s_ty = s_tt @ X.T
    s_yy = X @ s_tt @ X.T + np.diag(d)
    mean = m0 + s_ty @ np.linalg.solve(s_yy, y - X @ m0)
    cov = s_tt - s_ty @ np.linalg.solve(s_yy, s_ty.T)
    np.testing.assert_allclose(post.mean[j, k], mean, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(post.chol[j, k] @ post.chol[j, k].T, cov, rtol=1e-8, atol=1e-14)


def test_tau_grid_posterior_against_brute_force_integration():
    """One effect, five studies: mean and SD of the effect by 2-D quadrature over (mu, tau)."""
    y = np.array([0.30, 0.42, 0.25, 0.51, 0.38])
    v = np.array([0.004, 0.006, 0.003, 0.01, 0.005])
    tab = pd.DataFrame({"row_id": [f"r{i}" for i in range(5)], "study_key": list("abcde"),
                        "y": y, "v": v, "extra_var": 0.0, "tau": "tau_energy", "status": "fit"})  # fmt: skip
    names = cal.priors()[0]
    for n in names:
        tab[f"x_{n}"] = 1.0 if n == "walk_log_ratio" else 0.0
    post = cal.exact_posterior(tab)
    d = post.draw(200000, np.random.default_rng(0))
    mu = np.linspace(-1.5, 1.5, 1201)
    tau = np.linspace(0, 0.8, 801)
    M, T = np.meshgrid(mu, tau, indexing="ij")
    s2 = v[None, None, :] + T[..., None] ** 2
    ll = -0.5 * (((y - M[..., None]) ** 2) / s2 + np.log(s2)).sum(-1)
    lp = ll - 0.5 * (M / cal.PRIOR_SD["walk_log_ratio"]) ** 2 - 0.5 * (T / cal.TAU_PRIOR_SD) ** 2
    w = np.exp(lp - lp.max())
    w /= w.sum()
    m_true = (w * M).sum()
    sd_true = np.sqrt((w * (M - m_true) ** 2).sum())
    assert d["walk_log_ratio"].mean() == pytest.approx(m_true, abs=0.003)
    assert d["walk_log_ratio"].std() == pytest.approx(sd_true, rel=0.03)
    assert d["tau_energy"].mean() == pytest.approx((w * T).sum(), abs=0.005)


def test_recovers_known_effects_from_simulated_evidence(table):
    names, _, _ = cal.priors()
    truth = dict(zip(names, [0.10, -0.20, 0.12, 0.35, 0.1, -0.28, -0.07], strict=True))
    fit = table[table["status"] == "fit"]
    X = fit[[f"x_{n}" for n in names]].to_numpy(float)
    tab = pd.concat([fit] * 20, ignore_index=True)  # many studies with the same designs
    tab["study_key"] = [f"s{i}" for i in range(len(tab))]
    rng = np.random.default_rng(2)
    tab["v"] = 0.0005
    tab["extra_var"] = 0.0
    tab["y"] = np.tile(X @ np.array([truth[n] for n in names]), 20) + rng.normal(
        0, np.sqrt(0.0005 + 0.05**2), len(tab))  # fmt: skip
    d = cal.exact_posterior(tab).draw(20000, np.random.default_rng(1))
    for n in names:
        if n == "walk_log_slope":  # the walking speeds barely differ: slope weakly identified
            continue
        lo, hi = np.quantile(d[n], [0.005, 0.995])
        assert lo < truth[n] < hi, n
    assert 0.02 < np.median(d["tau_mechanics"]) < 0.1


def test_leave_one_out_intervals_cover_at_their_nominal_rate(table):
    """Data simulated from the model itself: 95 % predictive intervals cover about 95 %."""
    names, m0, s0 = cal.priors()
    fit = table[table["status"] == "fit"].reset_index(drop=True)
    X = fit[[f"x_{n}" for n in names]].to_numpy(float)
    is_e = (fit["tau"] == "tau_energy").to_numpy()
    rng = np.random.default_rng(8)
    hits, reps = 0, 80
    for i in range(reps):
        theta = m0 + s0 * rng.standard_normal(len(names))
        tau = np.abs(rng.normal(0, cal.TAU_PRIOR_SD, 2))
        sd = np.sqrt(fit["v"] + fit["extra_var"] + np.where(is_e, tau[0], tau[1]) ** 2)
        t = fit.copy()
        t["y"] = X @ theta + sd * rng.standard_normal(len(t))
        k = i % len(t)
        t.loc[k, "status"] = "left_out"
        d = cal.exact_posterior(t).draw(2000, rng)
        th = np.stack([d[n] for n in names], axis=1)
        pred = th @ X[k] + np.sqrt(d[t.loc[k, "tau"]] ** 2 + t.loc[k, "v"]
                                   + t.loc[k, "extra_var"]) * rng.standard_normal(2000)  # fmt: skip
        lo, hi = np.quantile(pred, [0.025, 0.975])
        hits += lo <= t.loc[k, "y"] <= hi
    assert 0.86 <= hits / reps <= 1.0  # binomial SE 2.4 points at 95 %


# ----------------------------------------------------------------------------- against the evidence
def test_posterior_reproduces_the_published_ratios(effects, posterior):
    p = {k: posterior[k].values for k in posterior.data_vars}
    vgrf = np.exp(-p["dir_step_frequency"] - p["dir_contact_time"])
    moment = vgrf * np.exp(p["dir_knee_lever_arm"])
    lo, hi = _interval(effects, study_key="roos2012", outcome="knee_ext_moment_nm")
    assert lo < np.median(moment) < hi
    lo, hi = _interval(effects, study_key="roos2012", outcome="grf_magnitude_at_peak_moment_bw")
    assert lo < np.median(vgrf) < hi
    cav = effects[(effects["study_key"] == "cavagna2012") & (effects["outcome"] == "vgrf_peak_bw")]
    if len(cav):  # derived from the peak accelerations (m (g + a))
        lo, hi = np.exp(cav["yi"].iloc[0] + np.array([-1.96, 1.96]) * np.sqrt(cav["vi"].iloc[0]))
        assert lo < np.median(vgrf) < hi
    energy = np.exp(-p["dir_contact_time"] + float(en.volume_term(3.0)) * p["dir_muscle_volume"])
    lo, hi = _interval(effects, study_key="wright2001", outcome="metabolic_rate_w_kg",
                       speed_m_s=3.0)  # fmt: skip
    assert lo < np.median(energy) < hi
    # the hold-out: muscle volume per unit force +10 +/- 3 % (SEM) at 3.0 m/s, never fitted
    lo, hi = _interval(effects, study_key="wright2001", outcome="active_muscle_volume_per_force")
    assert lo < np.median(np.exp(p["dir_muscle_volume"])) < hi


def test_prior_predictive_plausible():
    # the priors put most mass on a costlier backward run (Cavagna's stiffer bounce) but
    # leave the volume term open; nothing implausible a priori
    from scipy.stats import norm

    d = cal.prior_draws(20000, 2)
    r = en.running_direction_ratio(3.0, d)
    # ln r = -dir_contact_time + dir_muscle_volume, two independent normal priors
    _, m_tc, s_tc = ga.prior_spec()["dir_contact_time"]
    s = np.hypot(s_tc, cal.PRIOR_SD["dir_muscle_volume"])
    assert np.mean(r < 1.0) == pytest.approx(norm.cdf(m_tc / s), abs=0.01)
    assert 1.0 < np.median(r) < 2.0
    assert np.quantile(r, 0.99) < 3.0  # no "double the calories" a priori


def test_fit_reproducible_and_draws(effects, posterior):
    again = cal.fit(effects, draws=4000, chains=1, seed=11, cache=False).to_dataset()
    for k in cal.FITTED:
        np.testing.assert_array_equal(posterior[k].values, again[k].values)
    assert posterior.attrs["converged"] == 1 and posterior.attrs["n_rows"] >= 5
    d = cal.posterior_draws(50, 1, posterior=posterior)
    assert d["dir_contact_time"].shape == (50,) and d["walk_log_ratio"].shape == (50,)
    assert np.all(np.isin(d["dir_knee_lever_arm"], posterior["dir_knee_lever_arm"].values))
    assert "tau_energy" not in d


def test_leaving_out_a_study_changes_only_what_it_informs(effects):
    full = cal.fit(effects, draws=4000, chains=1, seed=3).posterior
    roos = cal.calibration_table(effects)
    ids = roos.loc[(roos["study_key"] == "roos2012") & (roos["status"] == "fit"), "row_id"]
    without = cal.fit(effects, draws=4000, chains=1, seed=3, exclude_rows=list(ids)).posterior
    # without Roos the knee effects fall back to their prior N(0, 0.5)
    assert without["dir_knee_lever_arm"].std() > 3 * full["dir_knee_lever_arm"].std()
    assert abs(float(without["dir_knee_lever_arm"].mean())) < 0.05


def test_predictive_checks_predict_every_comparison_once_out_of_sample(effects):
    checks = cal.predictive_checks(effects, n_draws=2000, seed=5)
    table = cal.calibration_table(effects)
    prim = checks[checks["primary"]]
    assert prim["row_id"].is_unique
    assert set(prim["row_id"]) == set(
        table.loc[table["status"].isin(["fit", "check", "holdout"]), "row_id"]
    )
    n_main = int((table["status"] == "fit").sum())
    # a study-out fit never contains the study; hold-outs come from the full fit
    for r in checks[checks["check"] == "loso"].itertuples():
        in_study = table[(table["study_key"] == r.study_key) & (table["status"] == "fit")]
        assert r.n_fit_rows == n_main - len(in_study)
    assert (checks.loc[checks["check"] == "holdout", "n_fit_rows"] == n_main).all()
    assert (checks.loc[checks["check"] == "loco", "n_fit_rows"] == n_main - 1).all()
    # the published value is the dataset's, and the coverage flags agree with the PIT
    pub = effects.set_index("row_id")["yi"]
    np.testing.assert_allclose(prim["published_ratio"], np.exp(pub.loc[prim["row_id"]]))
    tol = 1.0 / 2000
    inside = prim["inside_95"].to_numpy()
    pit = prim["pit"].to_numpy()
    assert np.all(~inside | ((pit >= 0.025 - tol) & (pit <= 0.975 + tol)))
    assert np.all(inside | (pit <= 0.025 + tol) | (pit >= 0.975 - tol))
