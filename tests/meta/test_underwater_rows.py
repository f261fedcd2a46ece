"""Underwater rows in the meta-regression: the shift ``b_underwater`` is recovered from
synthetic studies, land effects leave it out, and direction-only underwater rows do not pass
for land evidence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from retrosim.evidence.directions import critical_t
from retrosim.meta import model as inf

N_PEOPLE = 10
V_ROW = 0.15**2 / N_PEOPLE  # forward and backward variance of one row (cv 0.15, n = 10)


def _row(key, study, surface, **kw):
    return {
        "row_id": key,
        "study_key": study,
        "group_key": study,
        "outcome": "hr",
        "outcome_family": "heart_rate",
        "mode": "walk",
        "speed_m_s": 1.0,
        "speed_matching": "same",
        "n": float(N_PEOPLE),
        "design": "within",
        "surface": surface,
        **kw,
    }


def _simulated(seed, alpha, b_underwater, *, n_land=6, n_water=6, tau=0.05, directions=False):
    """Synthetic: land studies, and underwater studies that also report a land condition
    (numeric), or underwater studies reporting a direction only (``directions=True``)."""
    rng = np.random.default_rng(seed)
    num, dirs = [], []
    c = critical_t(0.05, N_PEOPLE)
    for s in range(n_land + n_water):
        u = tau * rng.standard_normal()
        study = f"s{s}"
        surfaces = ("treadmill",) if s < n_land else ("underwater",)
        if s >= n_land and not directions:
            surfaces = ("treadmill", "underwater")
        for surface in surfaces:
            theta = alpha + u + (b_underwater if surface == "underwater" else 0.0)
            y = theta + math.sqrt(V_ROW) * rng.standard_normal()  # r = 0.5: v = V_ROW
            key = f"{study}_{surface}"
            if surface == "underwater" and directions:
                t = y / math.sqrt(V_ROW)
                lo, hi = (c, math.inf) if t > c else ((-math.inf, -c) if t < -c else (-c, c))
                dirs.append(_row(key, study, surface, t_lo=lo, t_hi=hi))
            else:
                num.append(
                    _row(key, study, surface, yi=y, vi=V_ROW, v_forward=V_ROW, v_backward=V_ROW)
                )
    return pd.DataFrame(num), (pd.DataFrame(dirs) if dirs else None)


def _fit(num, dirs, seed):
    return inf.fit(
        num, directions=dirs, priors=inf.Priors(r_a=50.0, r_b=50.0), draws=400, tune=400,
        chains=2, seed=seed, gate="off",
    )  # fmt: skip


def test_design_switches_the_shift_on_only_with_underwater_rows():
    num, _ = _simulated(0, 0.1, 0.2)
    design = inf.MetaDesign.from_frame(num)
    assert design.has_underwater.tolist() == [1.0]
    water = (num["surface"] == "underwater").to_numpy(float)
    np.testing.assert_array_equal(design.data()["X_row"][:, -1], water)
    land = inf.MetaDesign.from_frame(num[num["surface"] != "underwater"])
    assert land.has_underwater.tolist() == [0.0]
    assert not land.data()["X_row"][:, -1].any()
    # a table without a surface column is all land
    assert not inf.MetaDesign.from_frame(num.drop(columns="surface")).has_underwater.any()


def test_underwater_shift_is_recovered_and_land_effects_leave_it_out():
    alpha, shift = 0.12, -0.25
    for seed in range(2):
        num, _ = _simulated(seed, alpha, shift)
        res = _fit(num, None, seed)
        assert res.diagnostics.n_divergences == 0
        b = res.draws("b_underwater")[:, 0]
        a = res.draws("alpha")[:, 0]
        assert abs(b.mean() - shift) < 3.0 * b.std()
        assert abs(a.mean() - alpha) < 3.0 * a.std()
        assert b.std() < 0.2 * inf.Priors().underwater_sd  # the data, not the prior, carry it
        land = res.effect_draws("heart_rate", mode="walk")
        np.testing.assert_array_equal(land, a)
        water = res.effect_draws("heart_rate", mode="walk", underwater=True)
        np.testing.assert_allclose(water - land, b)


def test_direction_only_underwater_rows_do_not_pass_for_land_evidence():
    """Underwater studies that report only 'backward > forward, p < 0.05' on a large shift:
    pooled as land evidence they pull the land effect up; with the shift they leave it where
    the land studies put it, and the shift takes the sign they report."""
    alpha, shift = 0.02, 0.5
    num, dirs = _simulated(3, alpha, shift, n_land=5, n_water=8, directions=True)
    assert (dirs["t_lo"] > 0).all()  # every underwater study reports a significant increase
    with_shift = _fit(num, dirs, 3)
    as_land = _fit(num, dirs.assign(surface="treadmill"), 3)
    land_only = _fit(num, None, 3)
    for res in (with_shift, as_land, land_only):
        assert res.diagnostics.n_divergences == 0
    a_shift, a_land, a_only = (r.draws("alpha")[:, 0] for r in (with_shift, as_land, land_only))
    assert a_land.mean() > a_only.mean() + 2.0 * a_only.std()
    assert abs(a_shift.mean() - a_only.mean()) < 0.5 * a_only.std()
    assert np.mean(with_shift.draws("b_underwater")[:, 0] > 0) > 0.95
