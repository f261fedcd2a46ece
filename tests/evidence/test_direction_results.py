"""Direction-only results in the meta-regression: bounds, likelihood, gradient, recovery."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from retrosim.errors import InputError
from retrosim.evidence.directions import critical_t, direction_rows, t_bounds
from retrosim.meta import model as inf

# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("p", "n", "table"),
    [
        # two-tailed critical values of Student's t from printed tables (df = n - 1)
        (0.05, 10, 2.262),
        (0.05, 7, 2.447),
        (0.05, 4, 3.182),
        (0.001, 8, 5.408),
        (0.01, 21, 2.845),
    ],
)
def test_critical_t_matches_printed_tables(p, n, table):
    assert critical_t(p, n) == pytest.approx(table, abs=5e-4)


def test_bounds_of_each_statement_kind():
    c05, c001 = critical_t(0.05, 10), critical_t(0.001, 10)
    assert t_bounds("backward>forward", 10, p_relation="<", p_value=0.001) == (c001, math.inf)
    assert t_bounds("backward<forward", 10, p_relation="<=", p_value=0.001) == (-math.inf, -c001)
    assert t_bounds("backward>forward", 10, significant=True) == (c05, math.inf)
    assert t_bounds("backward>forward", 10) == (0.0, math.inf)  # a direction only
    assert t_bounds("backward>forward", 10, significant=False) == (0.0, c05)
    lo, hi = t_bounds("backward>forward", 10, p_relation="=", p_value=0.02)
    assert lo == hi == pytest.approx(critical_t(0.02, 10))
    assert t_bounds("no_difference", 10) == (-c05, c05)
    c20 = critical_t(0.2, 10)
    assert t_bounds("no_difference", 10, p_relation=">", p_value=0.2) == (-c20, c20)
    # an exact n.s. p without a sign: the 5 % interval (a superset), not a point
    assert t_bounds("no_difference", 10, p_relation="=", p_value=0.07) == (-c05, c05)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_relation": "<"},  # relation without a value
        {"p_relation": "~", "p_value": 0.05},
        {"p_relation": "<", "p_value": 1.5},
        {"significant": "maybe"},
    ],
)
def test_bad_statements_raise(kwargs):
    with pytest.raises(InputError):
        t_bounds("backward>forward", 10, **kwargs)
    with pytest.raises(InputError, match="direction"):
        t_bounds("faster", 10)


# --------------------------------------------------------------------------- likelihood


def _numeric(n_studies=3):
    rows = []
    ys, cvs = [0.20, 0.28, 0.15, 0.25][:n_studies], [0.12, 0.15, 0.1, 0.2][:n_studies]
    for s, (y, cv) in enumerate(zip(ys, cvs, strict=True)):
        v = cv**2 / 12
        rows.append(
            dict(
                row_id=f"num{s}", study_key=f"num{s}", group_key=f"num{s}", outcome="vo2",
                outcome_family="energy", mode="run", speed_m_s=3.0, speed_matching="same",
                n=12.0, design="within", yi=y, vi=v, v_forward=v, v_backward=1.5 * v,
            )
        )  # fmt: skip
    return pd.DataFrame(rows)


def _direction(t_lo, t_hi, n=10.0, key="dir0"):
    return pd.DataFrame(
        [
            dict(
                row_id=key, study_key=key, group_key=key, outcome="vo2",
                outcome_family="energy", mode="run", speed_m_s=3.0, speed_matching="same",
                n=n, design="within", t_lo=t_lo, t_hi=t_hi,
            )
        ]
    )  # fmt: skip


def _dense_reference(num, priors, ts, tc, r, n_dir):
    """Joint normal of (numeric rows, the direction row) written out independently: intercept
    only (speed, mode and matching constant), every row its own study."""
    v_f, v_b = num["v_forward"].to_numpy(), num["v_backward"].to_numpy()
    v_num = v_f + v_b - 2 * r * np.sqrt(v_f * v_b)
    sigma2 = np.mean(num["n"].to_numpy() * v_num)  # pooled per-person variance of the ln ratio
    se2 = sigma2 / n_dir
    v = np.append(v_num, se2)
    m = v.size
    V = priors.alpha_sd**2 * np.ones((m, m)) + np.diag(v + tc**2 + ts**2)
    return V, math.sqrt(se2)


@pytest.mark.parametrize(
    ("t_lo", "t_hi"),
    [(2.262, math.inf), (-math.inf, -2.262), (-2.262, 2.262), (0.0, math.inf)],
)
def test_direction_row_likelihood_is_the_probability_of_its_class(t_lo, t_hi):
    """Integrating the augmented density over the latent coordinate gives
    P(t in region | numeric rows), computed here from the conditional normal."""
    priors = inf.Priors()
    num = _numeric()
    A = inf.MetaDesign.from_frame(num)
    B = inf.MetaDesign.from_frame(num, directions=_direction(t_lo, t_hi))
    dA, dB = inf.MarginalDensity(A, priors), inf.MarginalDensity(B, priors)
    ts, tc, r = np.array([0.09]), np.array([0.04]), 0.6
    x = dA.unconstrained(ts, tc, r)
    lpA = dA.logp_grad(x)[0]

    def integrand(u):
        return math.exp(dB.logp_grad(np.append(x, u))[0] - lpA)

    got = integrate.quad(integrand, -40, 40, limit=200, points=[0.0])[0]
    V, se = _dense_reference(num, priors, ts[0], tc[0], r, 10.0)
    y = num["yi"].to_numpy()
    k = V[-1, :-1] @ np.linalg.solve(V[:-1, :-1], np.eye(len(y)))
    mu = k @ y
    sd = math.sqrt(V[-1, -1] - k @ V[:-1, -1])
    want = stats.norm.cdf((t_hi * se - mu) / sd) - stats.norm.cdf((t_lo * se - mu) / sd)
    assert got == pytest.approx(want, rel=1e-6)


def test_exact_p_row_is_the_density_of_its_known_statistic():
    priors = inf.Priors()
    num = _numeric()
    t0 = critical_t(0.01, 10)
    A = inf.MetaDesign.from_frame(num)
    B = inf.MetaDesign.from_frame(num, directions=_direction(t0, t0))
    dA, dB = inf.MarginalDensity(A, priors), inf.MarginalDensity(B, priors)
    assert dB.K == 0 and dB.n_direction_rows == 1
    ts, tc, r = np.array([0.12]), np.array([0.03]), 0.8
    x = dA.unconstrained(ts, tc, r)
    got = dB.logp_grad(x)[0] - dA.logp_grad(x)[0]
    V, se = _dense_reference(num, priors, ts[0], tc[0], r, 10.0)
    y = np.append(num["yi"].to_numpy(), t0 * se)
    want = stats.multivariate_normal(cov=V).logpdf(y) - stats.multivariate_normal(
        cov=V[:-1, :-1]
    ).logpdf(y[:-1])
    assert got == pytest.approx(want + math.log(se), abs=1e-9)


def test_gradient_matches_finite_differences_for_every_kind(finite_difference_gradient):
    priors = inf.Priors()
    num = pd.concat(
        [_numeric(), _numeric(2).assign(outcome_family="heart_rate", outcome="hr").pipe(
            lambda d: d.assign(row_id=d.row_id + "hr", group_key=d.group_key + "hr"))]
    )  # fmt: skip
    c = critical_t(0.05, 10)
    dirs = pd.concat(
        [
            _direction(c, math.inf, key="a"),
            _direction(-math.inf, -c, key="b"),
            _direction(-c, c, key="c"),
            _direction(c, c, key="d"),
            _direction(0.0, math.inf, key="e").assign(outcome_family="heart_rate", outcome="hr"),
        ]
    )
    design = inf.MetaDesign.from_frame(num, directions=dirs)
    dens = inf.MarginalDensity(design, priors)
    assert dens.K == 4 and dens.n_direction_rows == 5
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = np.concatenate(
            [
                dens.unconstrained(rng.uniform(0.03, 0.3, 2), rng.uniform(0.02, 0.1, 2), 0.65),
                rng.normal(0, 1, dens.K),
            ]
        )
        lp, g = dens.logp_grad(x)
        fd = finite_difference_gradient(dens.logp_grad, x)
        np.testing.assert_allclose(g, fd, atol=2e-6, rtol=1e-5)
        # the numba kernel equals the numpy/scipy transcription, latent values included
        lp2, ys = dens._evaluate_numpy(x)
        assert lp == pytest.approx(lp2, abs=1e-9)
        np.testing.assert_allclose(dens._ghk(x)[3], ys, atol=1e-10)


def test_density_stays_finite_far_out_in_the_latent_coordinates():
    """A saturated logistic (u > 37: 1 - logistic(u) rounds to 0) once returned -inf, which
    NUTS reports as a divergence; the density must decay smoothly instead (in the GHK
    coordinates as the logistic density, log p + log(1 - p), whose slope tends to -1)."""
    c = critical_t(0.05, 10)
    dirs = pd.concat([_direction(-c, c, key="a"), _direction(c, math.inf, key="b")])
    dens = inf.MarginalDensity(inf.MetaDesign.from_frame(_numeric(), directions=dirs), inf.Priors())
    x0 = dens.unconstrained(np.array([0.1]), np.array([0.05]), 0.6)
    lps = [dens.logp_grad(np.append(x0, [u, 0.0]))[0] for u in (0.0, 30.0, 45.0, 60.0, 200.0)]
    assert np.all(np.isfinite(lps))
    assert np.all(np.diff(lps) < 0)  # ever less probable towards the interval's edge
    _lp, g = dens.logp_grad(np.append(x0, [60.0, 0.0]))
    assert g[-2] == pytest.approx(-1.0, abs=1e-6)  # d/du of the log Jacobian -|u| - ...


def test_direction_rows_need_the_marginal_nutpie_model():
    design = inf.MetaDesign.from_frame(_numeric(), directions=_direction(2.0, math.inf))
    with pytest.raises(InputError, match="marginal model and nutpie"):
        inf.fit(design, seed=1, sampler="pymc", draws=10, tune=10)


# --------------------------------------------------------------------------- real evidence


def test_evidence_statements_rules():
    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims

    eff = claims.analysis_rows(evidence.effect_sizes())
    st = claims.analysis_rows(evidence.direction_statements())
    rows, excluded = direction_rows(st, eff)
    ids = set(rows["row_id"])
    # non-independent reports never add a row (Adesola & Azeez repeat Flynn 1994; Lee & Lee
    # 2016 repeat Hooper 2004)
    assert not any(i.startswith(("adesola", "lee2016")) for i in ids)
    # a study that reports a number in the family is not counted again by its sentence
    why = dict(zip(excluded["row_id"], excluded["reason"], strict=True))
    assert "counted twice" in why["wright2001_metab_all"]
    # every kept row has a region with lo < hi or an exact statistic, and an n >= 2
    assert (rows["t_lo"] <= rows["t_hi"]).all() and (rows["n"] >= 2).all()
    # a significant positive result (p<0.001, n = 29) sits above the t_28 critical value of a
    # printed table
    m = rows.set_index("row_id").loc["barnes2021_hr_mlist"]
    assert m["t_lo"] == pytest.approx(3.674, abs=5e-4) and math.isinf(m["t_hi"])
    # a family without any numeric row (knee adduction moment) cannot scale its statements
    assert "no numeric row" in why["zhang2022_ekam1"]
    # the underwater results enter, flagged for the model's underwater shift: Masumoto 2009's
    # VO2, heart rate and step frequency and Masumoto 2007's two heart-rate results (the
    # source's five)
    water = {"masumoto2009_vo2", "masumoto2009_hr", "masumoto2009_stepfreq",
             "masumoto2007_hr_fast", "masumoto2007_hr_other"}  # fmt: skip
    assert set(rows.loc[rows["surface"] == "underwater", "row_id"]) == water
    design = inf.MetaDesign.from_frame(eff, directions=rows)
    fams = {f for f, on in zip(design.families, design.has_underwater, strict=True) if on}
    assert fams == {"energy", "heart_rate", "gait:step_frequency_hz"}
    is_water = design.frame["row_id"].isin(water).to_numpy()
    np.testing.assert_array_equal(design.data()["X_row"][:, -1], is_water.astype(float))
    # the sensitivity analysis leaves them out
    st_land = claims.analysis_rows(
        evidence.direction_statements(), excluded_surfaces=("underwater",)
    )
    rows_land, _ = direction_rows(
        st_land, claims.analysis_rows(evidence.effect_sizes(), excluded_surfaces=("underwater",))
    )
    assert ids - set(rows_land["row_id"]) == water
    # uphill results enter at their grade (the model carries them to level ground through
    # b_grade): Hooper 2004's three grades, per outcome
    grades = rows.set_index("row_id")["grade_pct"]
    assert [grades[f"hooper2004_hr_g{g}"] for g in ("5", "7.5", "10")] == [5.0, 7.5, 10.0]


# --------------------------------------------------------------------------- recovery


def _simulated(seed, alpha=0.25, n_num=3, n_dir=12):
    """A synthetic family: a few numeric studies and many direction-only studies."""
    rng = np.random.default_rng(seed)
    tau, cv, n = 0.06, 0.15, 10
    v = cv**2 / n
    num, dirs = [], []
    for s in range(n_num + n_dir):
        theta = alpha + tau * rng.standard_normal()
        key = f"s{s}"
        base = dict(
            row_id=key, study_key=key, group_key=key, outcome="vo2", outcome_family="energy",
            mode="run", speed_m_s=3.0, speed_matching="same", n=float(n), design="within",
        )  # fmt: skip
        if s < n_num:
            y = theta + math.sqrt(v) * rng.standard_normal()  # r = 0.5 with v_f = v_b = v
            num.append({**base, "yi": y, "vi": v, "v_forward": v, "v_backward": v})
        else:
            se = math.sqrt(v)  # sigma^2 / n with the same per-person variance
            t = (theta + se * rng.standard_normal()) / se
            c = critical_t(0.05, n)
            lo, hi = (c, math.inf) if t > c else ((-math.inf, -c) if t < -c else (-c, c))
            dirs.append({**base, "t_lo": lo, "t_hi": hi})
    return pd.DataFrame(num), pd.DataFrame(dirs)


def test_recovery_and_narrowing_with_direction_rows():
    """The truth is recovered without bias and the direction rows narrow the interval."""
    truth = 0.12
    z, widths = [], []
    for seed in range(6):
        num, dirs = _simulated(seed, alpha=truth)
        pri = inf.Priors(r_a=50.0, r_b=50.0)  # r known near 0.5, as simulated
        kw = dict(priors=pri, draws=300, tune=300, chains=2, seed=seed, gate="off")
        both = inf.fit(num, directions=dirs, adaptation="low_rank", **kw)
        alone = inf.fit(num, **kw)
        a_both, a_alone = both.draws("alpha")[:, 0], alone.draws("alpha")[:, 0]
        z.append((a_both.mean() - truth) / a_both.std())
        widths.append(
            (np.subtract(*np.quantile(a_both, [0.975, 0.025])))
            / np.subtract(*np.quantile(a_alone, [0.975, 0.025]))
        )
        assert both.diagnostics.n_divergences == 0
    z = np.array(z)
    # posterior z-scores of the truth: no systematic bias, none far out
    assert abs(z.mean()) < 3.0 / math.sqrt(len(z))
    assert np.all(np.abs(z) < 3.5)
    assert np.median(widths) < 0.8
