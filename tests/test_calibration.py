"""Calibration against the published backward/forward metabolic contrasts."""

import os

import numpy as np
import pandas as pd
import pytest

from retrosim import calibration as cal
from retrosim import energetics as en
from retrosim import gait
from retrosim.errors import InputError


def _effects():
    try:
        from retrosim import evidence

        return evidence.effect_sizes(outcome_family="energy")
    except (ImportError, AttributeError) as exc:  # evidence not available yet
        pytest.skip(f"retrosim.evidence not available: {exc}")


@pytest.fixture(scope="module")
def posterior(tmp_path_factory):
    old = os.environ.get("RETROSIM_RESULTS")
    os.environ["RETROSIM_RESULTS"] = str(tmp_path_factory.mktemp("results"))
    try:
        post = cal.fit(_effects(), draws=300, tune=400, chains=2, seed=11, gate="off")
        again = cal.fit(_effects(), draws=300, tune=400, chains=2, seed=11, gate="off")
    finally:
        if old is None:
            os.environ.pop("RETROSIM_RESULTS")
        else:
            os.environ["RETROSIM_RESULTS"] = old
    return post, again


def _published_range(mode):
    t = cal.calibration_table(_effects())
    t = t[t["mode_used"] == mode]
    half = 1.96 * np.sqrt(t["vi"])
    return float(np.exp((t["yi"] - half).min())), float(np.exp((t["yi"] + half).max()))


def test_run_log_ratio_matches_gait_and_energetics():
    v = np.linspace(1.75, 5.0, 7)
    p = gait.nominal_parameters()
    mine = cal.run_log_ratio(v, 1.0, p["kvert_ratio"], p["delta_aerial_s"],
                             p["muscle_volume_ratio"])  # fmt: skip
    np.testing.assert_allclose(np.exp(mine), en.running_direction_ratio(v), rtol=1e-10)


def test_table_assigns_modes_and_fills_speed():
    eff = pd.DataFrame({
        "yi": [0.2, 0.3, 0.25], "vi": [0.002, 0.003, 0.004], "speed_m_s": [1.3, 2.5, np.nan],
        "mode": ["unspecified", "unspecified", "run"], "study_key": ["a", "b", "c"],
    })  # fmt: skip
    t = cal.calibration_table(eff)
    assert t["mode_used"].tolist() == ["walk", "run", "run"]
    assert t.loc[2, "speed_used"] == pytest.approx(np.mean(gait.RUN_VALID_M_S))
    assert t.loc[2, "extra_var"] > 0 and t.loc[0, "extra_var"] == 0
    with pytest.raises(InputError):
        cal.calibration_table(eff.drop(columns="vi"))


def test_prior_predictive_plausible():
    d = cal.prior_draws(4000, 2)
    r = np.exp(cal.run_log_ratio(3.0, d["tc_scale"], d["kvert_ratio"], d["delta_aerial_s"],
                                 d["muscle_volume_ratio"]))  # fmt: skip
    assert np.all(r > 0.9)
    assert 1.0 < np.median(r) < 2.0
    assert np.quantile(r, 0.99) < 3.0  # no "double the calories" a priori


def test_posterior_ratio_within_published_ranges(posterior):
    post, _ = posterior
    lo, hi = _published_range("run")
    run = np.exp(np.median(cal.predict_log_ratio(post, 3.0, "run", new_study=False)))
    assert lo <= run <= hi
    lo, hi = _published_range("walk")
    walk = np.exp(np.median(cal.predict_log_ratio(post, 1.34, "walk", new_study=False)))
    assert lo <= walk <= hi


def test_cache_returns_identical_draws(posterior):
    post, again = posterior
    for k in cal.FITTED:
        np.testing.assert_array_equal(post[k].values, again[k].values)
    assert post.attrs["cache_key"] == again.attrs["cache_key"]


def test_posterior_draws_shape(posterior):
    post, _ = posterior
    d = cal.posterior_draws(50, 1, posterior=post)
    assert d["kvert_ratio"].shape == (50,) and d["walk_log_ratio"].shape == (50,)
    assert np.all(np.isin(d["kvert_ratio"], post["kvert_ratio"].values))
