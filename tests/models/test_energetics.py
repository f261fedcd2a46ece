"""Science and input checks of retrosim.models.energetics.

Expected values are published numbers (anchors.md / retrosim/data/parameters/gait.csv) or hand
calculations written out here, never outputs of the code under test.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrosim.errors import InputError
from retrosim.models import energetics as en
from retrosim.models import gait
from retrosim.units import J_PER_KCAL

MARGARIA_J_KG_M = 1.0 * J_PER_KCAL / 1000  # 1 kcal/kg/km (Margaria 1963 abstract)


@pytest.mark.parametrize("model", ["kram_taylor", "acsm", "leger_mercier_1984", "minetti_2002"])
def test_forward_running_net_cost_near_one_kcal_per_kg_km(model):
    v = np.linspace(2.5, 4.5, 9)
    out = en.metabolic_rate(model, v, 70.0, "forward", "run")
    # within 15 % of Margaria's 1 kcal/kg/km at every speed
    np.testing.assert_allclose(out["net_cost_j_kg_m"], MARGARIA_J_KG_M, rtol=0.15)


def test_acsm_80kg_anchor_kcal_per_1600m():
    # MSSE 2005 comparison paper (anchors.md 1.1): ACSM gives 88 kcal walking 1.41 m/s and
    # 137 kcal running 2.82 m/s per 1600 m for 80 kg (gross).
    walk = en.metabolic_rate("acsm", 1.41, 80.0, "forward", "walk")["gross_kcal_km"] * 1.6
    run = en.metabolic_rate("acsm", 2.82, 80.0, "forward", "run")["gross_kcal_km"] * 1.6
    assert walk == pytest.approx(88, rel=0.02)
    assert run == pytest.approx(137, rel=0.02)


def test_acsm_level_hand_calculation():
    # 3 m/s = 180 m/min, 5 % grade: 3.5 + 0.2*180 + 0.9*180*0.05 = 47.6 mL/kg/min
    assert en.acsm(3.0, "run", 0.05) == pytest.approx(47.6)
    # 1.5 m/s = 90 m/min, level: 3.5 + 9 = 12.5
    assert en.acsm(1.5, "walk") == pytest.approx(12.5)


def test_minetti_level_and_hand_example():
    assert en.minetti_2002(0.0) == pytest.approx(3.6)
    assert en.minetti_2002(0.0, "walk") == pytest.approx(2.5)
    i = 0.1
    hand = 155.4 * i**5 - 30.4 * i**4 - 43.3 * i**3 + 46.3 * i**2 + 19.5 * i + 3.6
    assert en.minetti_2002(i) == pytest.approx(hand)
    assert hand == pytest.approx(5.968214)


def test_leger_mercier_hand_calculation():
    # 12 km/h: 2.209 + 3.163 * 12 = 40.165 mL/kg/min
    assert en.leger_mercier_1984(12 / 3.6) == pytest.approx(40.165)


def test_weir_conversion():
    assert en.kcal_per_litre_o2(1.0) == pytest.approx(3.941 + 1.106)
    # 10 mL/kg/min at RER 1.0: 0.01 L * 5.047 kcal/L * 4184 J/kcal / 60 s
    assert en.vo2_to_w_kg(10.0, 1.0) == pytest.approx(0.01 * 5.047 * 4184 / 60)


def test_kram_taylor_matches_kipp_measured_rates():
    # calibrated to ACSM only; Kipp 2018's measured 9.28 and 21.44 W/kg stay independent
    df = gait.load_parameters().set_index("name")
    for kmh, key in ((8, "metabolic_rate_8kmh"), (18, "metabolic_rate_18kmh")):
        v = kmh / 3.6
        rate = en.metabolic_rate("kram_taylor", v, 70.0, "forward", "run")["net_rate_w_kg"]
        assert rate == pytest.approx(float(df.loc[key, "value"]), rel=0.15)


def test_kram_taylor_backward_mechanistic():
    p = {**gait.nominal_parameters(), "dir_muscle_volume": 0.1}
    for v, h in ((2.0, 0.0), (3.0, 1.0)):
        tcf = gait.gait(v, 70, None, "forward", "run", params=p)["contact_time_s"]
        tcb = gait.gait(v, 70, None, "backward", "run", params=p)["contact_time_s"]
        f = en.metabolic_rate("kram_taylor", v, 70, "forward", "run", params=p)["net_rate_w_kg"]
        b = en.metabolic_rate("kram_taylor", v, 70, "backward", "run", params=p)["net_rate_w_kg"]
        assert b / f == pytest.approx(tcf / tcb * np.exp(h * 0.1))
        # every other model gets the same backward factor
        a_f = en.metabolic_rate("acsm", v, 70, "forward", "run", params=p)["net_rate_w_kg"]
        a_b = en.metabolic_rate("acsm", v, 70, "backward", "run", params=p)["net_rate_w_kg"]
        assert a_b / a_f == pytest.approx(b / f)


def test_volume_term_follows_wright_weyand_speeds():
    # eight speeds 1.75-3.50 m/s (equal spacing assumed): the fifth is 2.75 m/s; at the five
    # slowest 1/t_c alone explained the difference, volumes were estimated at 3.0 m/s
    df = gait.load_parameters().set_index("name")
    lo, hi, n = (float(df.loc[k, "value"]) for k in ("ww_speed_low", "ww_speed_high",
                                                      "ww_n_speeds"))  # fmt: skip
    fifth = lo + 4 * (hi - lo) / (n - 1)
    assert fifth == pytest.approx(2.75)
    v = np.array([1.75, 2.5, fifth, (fifth + 3.0) / 2, 3.0, 3.5, 5.0])
    np.testing.assert_allclose(en.volume_term(v), [0, 0, 0, 0.5, 1, 1, 1], atol=1e-12)
    # so the backward penalty is the contact-time ratio alone at slow speeds
    p = {**gait.nominal_parameters(), "dir_muscle_volume": 0.2}
    slow = en.running_direction_ratio(2.2, p)
    assert slow == pytest.approx(np.exp(-p["dir_contact_time"]))
    assert en.running_direction_ratio(3.2, p) == pytest.approx(slow * np.exp(0.2))


def test_walking_ratio_applies_to_net_and_gross_ratio_is_smaller():
    p = {"walk_log_ratio": np.log(1.4), "walk_log_slope": 0.0}
    f = en.metabolic_rate("acsm", 1.34, 70, "forward", "walk", params=p)
    b = en.metabolic_rate("acsm", 1.34, 70, "backward", "walk", params=p)
    assert b["net_rate_w_kg"] / f["net_rate_w_kg"] == pytest.approx(1.4)
    # gross = net + resting 3.5 mL/kg/min: hand-computed from the ACSM walking equation
    net_f = 0.1 * 1.34 * 60
    gross_ratio = (1.4 * net_f + 3.5) / (net_f + 3.5)
    assert b["vo2_gross_ml_kg_min"] / f["vo2_gross_ml_kg_min"] == pytest.approx(gross_ratio)
    assert gross_ratio < 1.4


def test_walking_rate_grows_with_speed():
    v = np.linspace(0.9, 1.9, 6)
    for model in ("acsm", "minetti_2002"):
        r = en.metabolic_rate(model, v, 70, "forward", "walk")["gross_rate_w_kg"]
        assert np.all(np.diff(r) > 0)


@pytest.mark.parametrize("model", en.MODELS)
def test_per_kg_independent_of_mass(model):
    a = en.metabolic_rate(model, 3.0, 50.0, "backward", "run")
    b = en.metabolic_rate(model, 3.0, 100.0, "backward", "run")
    for name, (_, _, scales) in en.ENERGY_OUTPUTS.items():
        if scales:
            assert b[name] == pytest.approx(2 * a[name])
        else:
            assert b[name] == pytest.approx(a[name])


def test_level_only_models_are_nan_on_grades():
    assert np.isnan(en.metabolic_rate("margaria", 3.0, 70, "forward", "run", 0.05)["net_rate_w_kg"])
    assert np.isfinite(en.metabolic_rate("acsm", 3.0, 70, "forward", "run", 0.05)["net_rate_w_kg"])


def test_validated_range_warning():
    assert en.metabolic_rate("leger_mercier_1984", 1.9, 70, "forward", "run")["warning"]
    assert not en.metabolic_rate("leger_mercier_1984", 3.0, 70, "forward", "run")["warning"]


@settings(max_examples=40, deadline=None)
@given(st.floats(1.0, 6.5), st.floats(1.0, 6.5), st.sampled_from(["forward", "backward"]),
       st.sampled_from(en.MODELS))  # fmt: skip
def test_running_rate_positive_and_monotonic(v1, v2, direction, model):
    lo, hi = sorted((v1, v2))
    if hi - lo < 1e-3:
        return
    a = en.metabolic_rate(model, lo, 70, direction, "run")["net_rate_w_kg"]
    b = en.metabolic_rate(model, hi, 70, direction, "run")["net_rate_w_kg"]
    assert a > 0 and b > a


@settings(max_examples=50, deadline=None)
@given(st.floats(0.1, 100.0), st.floats(0.7, 1.1), st.floats(0.5, 6.0), st.floats(30, 150))
def test_unit_round_trips(vo2, rer, v, m):
    w = en.vo2_to_w_kg(vo2, rer)
    assert en.w_kg_to_vo2(w, rer) == pytest.approx(vo2)
    out = en.energy_outputs(w, v, m, rer)
    # kcal/km = kcal/min / km per min
    assert out["gross_kcal_km"] == pytest.approx(out["gross_kcal_min"] / (v * 60 / 1000))
    assert out["vo2_net_ml_kg_min"] == pytest.approx(vo2)
    assert out["gross_rate_w"] == pytest.approx(out["gross_rate_w_kg"] * m)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: en.metabolic_rate("bogus", 3.0, 70), "model"),
        (lambda: en.metabolic_rate("acsm", 3.0, 70, rer=2.0), "rer"),
        (lambda: en.metabolic_rate("acsm", 12.0, 70, mode="walk"), "speed_m_s"),
        (lambda: en.metabolic_rate("acsm", 0.0, 70), "speed_m_s"),
        (lambda: en.metabolic_rate("acsm", 3.0, float("nan")), "mass_kg"),
        (lambda: en.metabolic_rate("acsm", 3.0, 70, direction="up"), "direction"),
        (lambda: en.minetti_2002(0.6), "grade"),
        (lambda: en.metabolic_rate("kram_taylor", 1.3, 70, mode="walk"), "mode"),
    ],
)
def test_bad_input(call, argument):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.argument == argument


# --------------------------------------------------------------------------- one function per model
# Weir at the default RER 0.85, written out: W/kg per mL O2/kg/min
_W_PER_ML = (3.941 + 1.106 * 0.85) * 4184.0 / 1000.0 / 60.0


def _hand_net_rate(model, mode, v):
    """Forward net rate [W/kg] on level ground from each model's published equation, by hand."""
    if model == "acsm":
        return (0.2 if mode == "run" else 0.1) * v * 60.0 * _W_PER_ML
    if model == "minetti_2002":
        return (3.6 if mode == "run" else 2.5) * v
    if model == "leger_mercier_1984":
        return (2.209 + 3.163 * v * 3.6 - 3.5) * _W_PER_ML
    if model == "margaria":
        return 1.0 * 4184.0 / 1000.0 * v
    raise AssertionError(model)


@pytest.mark.parametrize(("model", "mode"), sorted(en.VALID_SPEED))
def test_dispatcher_gives_each_models_published_equation(model, mode):
    v = np.array([2.5, 3.0, 4.0]) if mode == "run" else np.array([0.9, 1.2, 1.5])
    got = en.forward_net_rate(model, v, mode)
    if model == "kram_taylor":  # the model function itself, on the forward contact times
        tc = gait.spring_mass_running(v, 70.0)["contact_time_s"]
        np.testing.assert_allclose(got, en.kram_taylor(tc, v), rtol=1e-12)
    else:
        np.testing.assert_allclose(got, _hand_net_rate(model, mode, v), rtol=1e-12)


@pytest.mark.parametrize(
    ("function", "args", "published"),
    [
        # 3 m/s = 180 m/min, 5 % grade: 3.5 + 0.2*180 + 0.9*180*0.05 = 47.6 mL/kg/min
        (en.acsm, (3.0, "run", 0.05), 47.6),
        # 1.5 m/s = 90 m/min, 10 % grade: 3.5 + 0.1*90 + 1.8*90*0.1 = 28.7
        (en.acsm, (1.5, "walk", 0.1), 28.7),
        # 12 km/h: 2.209 + 3.163 * 12 = 40.165 mL/kg/min
        (en.leger_mercier_1984, (12 / 3.6,), 40.165),
        # i = 0.1: 155.4e-5 - 30.4e-4 - 43.3e-3 + 46.3e-2 + 1.95 + 3.6
        (en.minetti_2002, (0.1, "run"), 5.968214),
        # i = 0.1: 280.5e-5 - 58.7e-4 - 76.8e-3 + 51.9e-2 + 1.96 + 2.5
        (en.minetti_2002, (0.1, "walk"), 4.899135),
        # 1 kcal/kg/km = 4.184 J/kg/m at any speed
        (en.margaria, (4.0,), 4.184),
    ],
)
def test_model_functions_reproduce_hand_calculations(function, args, published):
    assert float(function(*args)) == pytest.approx(published, rel=1e-9)


@pytest.mark.parametrize("mode", ["run", "walk"])
def test_acsm_net_is_gross_minus_rest(mode):
    v, i = np.array([1.0, 1.5, 3.0]), 0.02
    np.testing.assert_allclose(en.acsm(v, mode, i) - en.acsm(v, mode, i, net=True), 3.5,
                               rtol=1e-12)  # fmt: skip


@pytest.mark.parametrize(
    ("model", "mode", "inside", "outside"),
    [
        ("kram_taylor", "run", 3.0, 5.5),  # 1.75-5.0 m/s
        ("acsm", "run", 3.0, 1.5),
        ("acsm", "walk", 1.0, 0.8),  # >= 50 m/min
        ("minetti_2002", "run", 3.0, 5.5),
        ("minetti_2002", "walk", 1.0, 0.8),
        ("leger_mercier_1984", "run", 3.0, 2.1),  # 8-25 km/h
        ("margaria", "run", 6.0, 6.2),  # up to 22 km/h
    ],
)
def test_validated_range_of_every_model(model, mode, inside, outside):
    assert (model, mode) in en.VALID_SPEED
    assert en.speed_warning(model, mode, inside) == ""
    assert en.speed_warning(model, mode, outside)


def test_every_model_has_a_validated_range_per_mode_and_a_test():
    # the parametrisations above cover every model; a new model must join them
    assert {m for m, _ in en.VALID_SPEED} == set(en.MODELS)
    assert set(en.MODE_MODELS["walk"]) == {"acsm", "minetti_2002"}


def test_minetti_beyond_its_grade_range_is_nan_on_grids_and_an_error_alone():
    assert np.isnan(en.forward_net_rate("minetti_2002", 3.0, "run", 0.48))
    assert np.isfinite(en.forward_net_rate("minetti_2002", 1.2, "walk", 0.48))
    with pytest.raises(InputError):
        en.minetti_2002(0.48)


# --------------------------------------------------------------------------- backward running ratio
@pytest.mark.parametrize("speed", [2.0, 2.9, 3.3])
def test_running_ratio_is_contact_time_ratio_times_volume_ratio(speed):
    # Wright & Weyand 2001: E_B/E_F = (t_c,F / t_c,B) x (V_B / V_F)
    p = {**gait.nominal_parameters(), "dir_contact_time": -0.1, "dir_muscle_volume": 0.2}
    h = float(np.clip((speed - 2.75) / (3.0 - 2.75), 0.0, 1.0))
    tcf = gait.spring_mass_running(speed, 70, params=p)["contact_time_s"]
    tcb = gait.spring_mass_running(speed, 70, direction="backward", params=p)["contact_time_s"]
    expected = tcf / tcb * np.exp(0.2 * h)
    assert en.running_direction_ratio(speed, p) == pytest.approx(expected, rel=1e-12)
    assert en.running_volume_ratio(speed, p) == pytest.approx(np.exp(0.2 * h), rel=1e-12)


@pytest.mark.parametrize("model", en.MODE_MODELS["run"])
def test_every_model_has_the_same_backward_running_ratio(model):
    p = {**gait.nominal_parameters(), "dir_muscle_volume": 0.15}
    v = 3.1
    f = en.metabolic_rate(model, v, 70, "forward", "run", params=p)["net_rate_w_kg"]
    b = en.metabolic_rate(model, v, 70, "backward", "run", params=p)["net_rate_w_kg"]
    assert b / f == pytest.approx(en.running_direction_ratio(v, p), rel=1e-12)


def test_calibration_design_is_the_log_of_the_running_ratio():
    # the calibration fits ln(E_B/E_F) = x . theta; x must be the log of the one ratio
    from retrosim.bayes import calibration

    names = calibration.priors()[0]
    theta = dict(zip(names, np.linspace(-0.3, 0.4, len(names)), strict=True))
    for v in (2.0, 2.9, 3.5):
        x = calibration.design_row("energy", "run", v)
        lin = float(np.dot(x, [theta[n] for n in names]))
        assert lin == pytest.approx(float(np.log(en.running_direction_ratio(v, theta))), abs=1e-12)
