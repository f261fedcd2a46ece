"""Graded (uphill) rows and direction-only rows in the marginal model: the GHK-parameterised
density against a dense multivariate-normal computation, its gradient, and recovery of the
grade coefficient."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from retrosim.evidence.directions import critical_t
from retrosim.meta import model as inf

N_PEOPLE = 10
V_ROW = 0.15**2 / N_PEOPLE  # forward and backward variance of one row (cv 0.15, n = 10)


def _base(key, grade, **kw):
    return {
        "row_id": key,
        "study_key": kw.pop("study", key),
        "group_key": kw.pop("group", key),
        "outcome": "vo2",
        "outcome_family": "energy",
        "mode": "walk",
        "speed_m_s": 1.3,
        "speed_matching": "same",
        "n": float(N_PEOPLE),
        "design": "within",
        "grade_pct": float(grade),
        **kw,
    }


def _numeric():
    """Three numeric studies, one of them uphill (so the grade moderator is on)."""
    rows = [
        _base("a", 0.0, yi=0.21, vi=V_ROW, v_forward=V_ROW, v_backward=V_ROW),
        _base("b", 0.0, yi=0.14, vi=V_ROW, v_forward=V_ROW, v_backward=V_ROW),
        _base("c", 5.0, yi=0.30, vi=V_ROW, v_forward=V_ROW, v_backward=V_ROW),
    ]
    return pd.DataFrame(rows)


def _hooper_like(t_lo, t_hi):
    """One study reporting two uphill grades by direction only (one study cluster)."""
    return pd.DataFrame(
        [
            _base(f"h{g}", g, study="h", group="h", t_lo=t_lo[i], t_hi=t_hi[i])
            for i, g in enumerate((5.0, 10.0))
        ]
    )


def _dense(num, dirs, priors, ts, tc, r):
    """Joint covariance of all rows written out by hand: coefficients (intercept, grade), the
    study effect, the condition effect and the sampling variances; and the direction rows'
    standard errors from the pooled per-person variance of the numeric rows."""
    g = np.concatenate([num["grade_pct"], dirs["grade_pct"]])
    X = np.column_stack([np.ones(g.size), g])
    s2 = np.array([priors.alpha_sd, priors.grade_sd]) ** 2
    v_num = 2 * V_ROW - 2 * r * V_ROW
    sigma2 = N_PEOPLE * v_num  # every donor has the same n and variances
    se2 = sigma2 / dirs["n"].to_numpy()
    v = np.concatenate([np.full(len(num), v_num), se2])
    groups = np.concatenate([num["group_key"], dirs["group_key"]])
    same = (groups[:, None] == groups[None, :]).astype(float)
    V = X @ np.diag(s2) @ X.T + ts**2 * same + np.diag(v + tc**2)
    return V, np.sqrt(se2)


@pytest.mark.parametrize(
    ("t_lo", "t_hi"),
    [
        ((critical_t(1e-5, N_PEOPLE),) * 2, (math.inf,) * 2),  # both significantly positive
        ((0.0, -critical_t(0.05, N_PEOPLE)), (critical_t(0.05, N_PEOPLE),) * 2),  # mixed
    ],
)
def test_censored_graded_rows_have_the_probability_of_their_region(t_lo, t_hi):
    """Integrated over its latent coordinates (a 2-D Gauss-Legendre rule in p = logistic(u)),
    the density adds log P(both rows in their regions | numeric rows), the bivariate normal
    rectangle probability scipy computes from the dense conditional covariance."""
    priors = inf.Priors()
    num, dirs = _numeric(), _hooper_like(t_lo, t_hi)
    dA = inf.MarginalDensity(inf.MetaDesign.from_frame(num), priors)
    dB = inf.MarginalDensity(inf.MetaDesign.from_frame(num, directions=dirs), priors)
    assert dB.K == 2
    ts, tc, r = 0.08, 0.03, 0.6
    x = dA.unconstrained(np.array([ts]), np.array([tc]), r)
    lpA = dA.logp_grad(x)[0]
    nodes, weights = np.polynomial.legendre.leggauss(60)
    p, w = 0.5 * (nodes + 1.0), 0.5 * weights
    total = 0.0
    for p1, w1 in zip(p, w, strict=True):
        for p2, w2 in zip(p, w, strict=True):
            u = special.logit([p1, p2])
            lp = dB.logp_grad(np.append(x, u))[0]
            total += w1 * w2 * math.exp(lp - lpA) / (p1 * (1 - p1) * p2 * (1 - p2))
    V, se = _dense(num, dirs, priors, ts, tc, r)
    y = num["yi"].to_numpy()
    o, c = slice(0, 3), slice(3, 5)
    k = V[c, o] @ np.linalg.inv(V[o, o])
    mu, cov = k @ y, V[c, c] - k @ V[o, c]
    lo, hi = np.array(t_lo) * se, np.array(t_hi) * se
    mvn = stats.multivariate_normal(mean=mu, cov=cov)
    want = mvn.cdf(np.minimum(hi, 50.0), lower_limit=np.maximum(lo, -50.0))
    assert total == pytest.approx(want, rel=2e-4)


def test_gradient_matches_finite_differences_on_a_graded_design(finite_difference_gradient):
    priors = inf.Priors()
    c = critical_t(0.05, N_PEOPLE)
    dirs = pd.concat(
        [
            _hooper_like((c, c), (math.inf, math.inf)),
            pd.DataFrame([_base("d", 0.0, t_lo=-c, t_hi=c), _base("e", 10.0, t_lo=c, t_hi=c)]),
        ]
    )
    design = inf.MetaDesign.from_frame(_numeric(), directions=dirs)
    assert design.has_grade[0] == 1.0
    dens = inf.MarginalDensity(design, priors)
    assert dens.K == 3 and dens.n_direction_rows == 4
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = np.concatenate(
            [
                dens.unconstrained(rng.uniform(0.03, 0.3, 1), rng.uniform(0.02, 0.1, 1), 0.7),
                rng.normal(0, 1.5, dens.K),
            ]
        )
        _lp, g = dens.logp_grad(x)
        fd = finite_difference_gradient(dens.logp_grad, x)
        np.testing.assert_allclose(g, fd, atol=2e-6, rtol=1e-5)


def _simulated(seed, b_grade, alpha=0.15, tau=0.05):
    """Numeric studies at grades 0, 5 and 10 % and direction-only studies reporting two grades
    each (synthetic)."""
    rng = np.random.default_rng(seed)
    num, dirs = [], []
    for s in range(12):
        u = tau * rng.standard_normal()
        grades = (0.0, 10.0) if s % 3 else (5.0,)
        for g in grades:
            theta = alpha + b_grade * g + u
            key = f"s{s}_g{g:g}"
            if s < 6:
                y = theta + math.sqrt(V_ROW) * rng.standard_normal()  # r = 0.5: v = V_ROW
                num.append(
                    _base(key, g, study=f"s{s}", group=f"s{s}", yi=y, vi=V_ROW,
                          v_forward=V_ROW, v_backward=V_ROW)
                )  # fmt: skip
            else:
                t = (theta + math.sqrt(V_ROW) * rng.standard_normal()) / math.sqrt(V_ROW)
                c = critical_t(0.05, N_PEOPLE)
                lo, hi = (c, math.inf) if t > c else ((-math.inf, -c) if t < -c else (-c, c))
                dirs.append(_base(key, g, study=f"s{s}", group=f"s{s}", t_lo=lo, t_hi=hi))
    return pd.DataFrame(num), pd.DataFrame(dirs)


def test_grade_coefficient_is_recovered_and_level_effects_are_at_grade_zero():
    truth = 0.015  # per % of grade: +15 % of ln ratio at 10 %
    for seed in range(2):
        num, dirs = _simulated(seed, truth)
        res = inf.fit(
            num, directions=dirs, priors=inf.Priors(r_a=50.0, r_b=50.0), draws=400, tune=400,
            chains=2, seed=seed, gate="off", adaptation="low_rank",
        )  # fmt: skip
        assert res.diagnostics.n_divergences == 0
        b = res.draws("b_grade")[:, 0]
        assert abs(b.mean() - truth) < 3.0 * b.std()
        assert b.std() < 0.5 * inf.Priors().grade_sd  # the data, not the prior, carry it
        # the claims read effects on level ground: alpha alone; a grade adds g b_grade
        level = res.effect_draws("energy", mode="walk")
        np.testing.assert_array_equal(level, res.draws("alpha")[:, 0])
        up = res.effect_draws("energy", mode="walk", grade_pct=10.0)
        np.testing.assert_allclose(up - level, 10.0 * b)
