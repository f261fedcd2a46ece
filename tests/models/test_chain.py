"""RetroChain: dimensions, units, agreement with the per-condition model functions."""

import numpy as np
import pytest

from retrosim.errors import InputError
from retrosim.models import energetics as en
from retrosim.models import gait, priors
from retrosim.models.chain import DIMS, RetroChain, evaluate


@pytest.fixture(scope="module")
def ds():
    # prior draws keep the test independent of the (cached) calibration
    return RetroChain().run(
        [1.5, 3.0, 4.0], [60.0, 90.0], mode=("run", "walk"), grade=(0.0, 0.05),
        n_draws=20, seed=4,
    )  # fmt: skip


def test_dims_and_units(ds):
    for d in DIMS:
        assert d in ds.dims
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    assert set(ds["gross_kcal_km"].dims) == set(("model", *DIMS))
    assert "mass" not in ds["net_cost_j_kg_m"].dims  # per-kg does not depend on mass


def test_chain_matches_model_functions(ds):
    # one condition recomputed with the plain functions and the same draw's parameters
    params = RetroChain().parameters(20, np.random.default_rng(4))
    k = 7
    p = {key: (val[k] if np.ndim(val) == 1 else val) for key, val in params.items()}
    out = en.metabolic_rate("acsm", 3.0, 90.0, "backward", "run", 0.05, params=p)
    chain = ds["gross_kcal_km"].sel(model="acsm", speed=3.0, mass=90.0, direction="backward",
                                    mode="run", grade=0.05).isel(draw=k)  # fmt: skip
    assert float(chain) == pytest.approx(float(out["gross_kcal_km"]), rel=1e-10)
    g = gait.spring_mass_running(3.0, 90.0, None, "backward", params=p)
    c = ds["vgrf_peak_n"].sel(speed=3.0, mass=90.0, direction="backward", mode="run").isel(draw=k)
    assert float(c.squeeze()) == pytest.approx(float(g["vgrf_peak_n"]), rel=1e-10)


def test_not_applicable_models_are_nan(ds):
    walk = ds["net_rate_w_kg"].sel(mode="walk", model="kram_taylor")
    assert bool(walk.isnull().all())
    graded = ds["net_rate_w_kg"].sel(mode="run", model="margaria", grade=0.05)
    assert bool(graded.isnull().all())
    assert ds.attrs["warnings"]


def test_evaluate_is_chunkable():
    params = RetroChain().parameters(5, np.random.default_rng(1))
    args = (["forward", "backward"], ["run"], [0.0])
    _, whole = evaluate([2.0, 3.0, 4.0], [70.0], *args, params)
    _, part = evaluate([4.0], [70.0], *args, params)
    np.testing.assert_allclose(whole["gross_kcal_min"][:, 2:3], part["gross_kcal_min"])


def test_broadcast_option_materialises():
    ds = RetroChain(knee=False).run([3.0], [70.0, 80.0], n_draws=3, seed=0,
                                                      broadcast=True)  # fmt: skip
    assert set(ds["net_cost_j_kg_m"].dims) == set(("model", *DIMS))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"speed_m_s": [0.0]}, "speed_m_s"),
        ({"speed_m_s": [np.nan]}, "speed_m_s"),
        ({"speed_m_s": [12.0], "mode": ("walk",)}, "speed_m_s"),
        ({"mass_kg": [-5.0]}, "mass_kg"),
        ({"direction": ("forward", "up")}, "direction"),
        ({"mode": ("swim",)}, "mode"),
    ],
)
def test_bad_input(kwargs, argument):
    args = {"speed_m_s": [3.0], "mass_kg": [70.0], **kwargs}
    with pytest.raises(InputError) as err:
        RetroChain().run(n_draws=2, **args)
    assert err.value.argument == argument


def test_default_chain_does_not_calibrate(monkeypatch):
    # the calibration runs only when a posterior is passed
    from retrosim.bayes import calibration

    def refuse(*args, **kwargs):
        raise AssertionError("calibration ran although not asked for")

    monkeypatch.setattr(calibration, "posterior_draws", refuse)
    monkeypatch.setattr(calibration, "fit", refuse)
    ds = RetroChain(knee=False).run([3.0], [70.0], n_draws=3, seed=0)
    assert ds.attrs["calibrated"] == 0
    assert ds.attrs["parameter_source"] == "literature priors"


def test_chain_with_a_posterior_draws_from_it():
    calls = []

    class Posterior:
        description = "a stand-in posterior"

        def draws(self, n_draws, rng):
            calls.append(n_draws)
            return priors.prior_draws(n_draws, rng)

    ds = RetroChain(posterior=Posterior(), knee=False).run([3.0], [70.0], n_draws=3, seed=0)
    assert calls == [3]
    assert ds.attrs["calibrated"] == 1
    assert ds.attrs["parameter_source"] == "a stand-in posterior"


def test_chain_with_the_calibration_posterior_matches_its_draws():
    from retrosim.bayes import calibration

    post = calibration.fit(draws=50, chains=1, seed=3)
    ds = RetroChain(posterior=post, knee=False).run([3.0], [70.0], n_draws=4, seed=5)
    expected = calibration.posterior_draws(4, np.random.default_rng(5), posterior=post)
    ref = RetroChain(knee=False).run([3.0], [70.0], n_draws=4, seed=0, params=expected)
    np.testing.assert_array_equal(ds["contact_time_s"].values, ref["contact_time_s"].values)
    assert ds.attrs["parameter_source"] == "calibration posterior"


def test_posterior_without_draws_is_an_input_error():
    with pytest.raises(InputError, match="draws"):
        RetroChain(posterior=object())


def test_output_units_come_from_the_vocabulary(ds):
    from retrosim.vocabulary import UNITS

    spelled = set(UNITS.values())
    for name, var in ds.variables.items():
        assert var.attrs["units"] in spelled, (name, var.attrs["units"])
