"""Tests of retrosim.models.knee: units of the angle polynomials, published anchors, scaling, bad input.

Published numbers are read from data/ (the evidence dataset when available, else
retrosim/data/parameters/knee.csv with its source columns), never typed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrosim.config import DATA_DIR
from retrosim.errors import InputError
from retrosim.models import knee
from retrosim.units import G

PARAMS = pd.read_csv(DATA_DIR / "parameters" / "knee.csv")


def par(name, direction=None, column="value"):
    rows = PARAMS[PARAMS["name"] == name]
    if direction is not None:
        rows = rows[rows["direction"] == direction]
    assert len(rows) == 1, name
    return float(rows[column].iloc[0])


def roos(outcome_evidence, name_params):
    """(forward mean, sd, backward mean, sd) for a Roos 2012 outcome, from data/.

    Prefers the evidence dataset (study_key 'roos2012'); falls back to knee.csv, which carries
    the same abstract values with citation and locator columns.
    """
    try:
        from retrosim.evidence import tables as evidence

        table = evidence.load()
        table = getattr(table, "comparisons", table)
        rows = table[(table["study_key"] == "roos2012") & (table["outcome"] == outcome_evidence)]
        if len(rows) == 1:
            r = rows.iloc[0]
            return tuple(
                float(r[c])
                for c in ("forward_mean", "forward_disp", "backward_mean", "backward_disp")
            )
    except Exception:  # evidence module absent or different layout: use the parameters file
        pass
    return (
        par(name_params, "forward"),
        par(name_params, "forward", "sd"),
        par(name_params, "backward"),
        par(name_params, "backward", "sd"),
    )


def test_parameter_file_has_sources():
    assert "citation" in PARAMS.columns and "citation_key" in PARAMS.columns
    assert PARAMS[["citation_key", "locator"]].notna().all().all()
    assert PARAMS["value"].notna().all()


def test_module_coefficients_match_parameter_file():
    assert knee._K_NUM == tuple(par(f"k_num_c{i}") for i in range(3))
    assert knee._K_DEN[1:] == tuple(par(f"k_den_d{i}") for i in (1, 2, 3))
    assert knee._MAQ == tuple(par(f"maq_c{i}") for i in range(4))


# ----------------------------------------------------------------------------- polynomials
def test_k_ratio_independent_evaluation_at_0_30_60():
    num = np.polynomial.Polynomial([par(f"k_num_c{i}") for i in range(3)])
    den = np.polynomial.Polynomial([1.0] + [par(f"k_den_d{i}") for i in (1, 2, 3)])
    angles = np.array([0.0, 30.0, 60.0])
    np.testing.assert_allclose(knee.pfj_force_ratio(angles), num(angles) / den(angles), rtol=1e-12)
    assert knee.pfj_force_ratio(0.0) == pytest.approx(par("k_num_c0"))
    # k rises with flexion (more of the quadriceps force is turned into compression)
    assert np.all(np.diff(knee.pfj_force_ratio(angles)) > 0.1)


def test_moment_arm_is_in_degrees_against_in_vivo_eqma():
    """ma_Q read in degrees matches in vivo effective moment arms (PMC4662057); in radians not."""
    model_mm = 1000 * knee.quadriceps_moment_arm(np.array([10.0, 50.0]))
    for sex in ("male", "female"):
        vivo = np.array([par(f"eqma_{sex}_10deg"), par(f"eqma_{sex}_50deg")])
        np.testing.assert_allclose(model_mm, vivo, rtol=0.2)
        change_ratio = (model_mm[0] - model_mm[1]) / (vivo[0] - vivo[1])
        assert 0.5 < change_ratio < 1.5
    # the same coefficients fed radians give an almost constant arm with the wrong trend
    rad_mm = 1000 * knee._poly(knee._MAQ, np.deg2rad(np.array([10.0, 50.0])))
    assert rad_mm[1] - rad_mm[0] > 0 and abs(rad_mm[1] - rad_mm[0]) < 1.0


def test_degrees_reproduce_roos_pfj_from_roos_moments_radians_do_not():
    """k/ma_Q applied to Roos's moments reproduces Roos's PFJ forces only with degrees."""
    w_ref = knee.reference_inputs()["reference_body_weight_n"]
    mf, _, mb, _ = roos("knee_ext_moment_nm", "knee_moment_peak")
    pf, pf_sd, pb, pb_sd = roos("pfj_force_bw", "pfj_force_peak")
    af, _, ab, _ = roos("knee_flexion_at_peak_moment_deg", "knee_flexion_at_peak_moment")
    for m, a, p, sd in ((mf, af, pf, pf_sd), (mb, ab, pb, pb_sd)):
        deg = knee.pfj_force(m, a) / w_ref
        assert abs(deg - p) < sd
        rad = m * knee._poly(knee._K_NUM, np.deg2rad(a)) / knee._poly(knee._K_DEN, np.deg2rad(a))
        rad = rad / knee._poly(knee._MAQ, np.deg2rad(a)) / w_ref
        assert abs(rad - p) > abs(deg - p)
    # forward branch: the radian reading falls outside the published SD altogether
    rad_f = mf * 0.462 / knee._poly(knee._MAQ, np.deg2rad(af)) / w_ref
    assert abs(rad_f - pf) > pf_sd


def test_reference_body_weight_from_flynn_pairs():
    for d in knee.DIRECTIONS:
        w = par("pfj_force_peak_n", d) / par("pfj_force_peak_bw", d)
        assert w == pytest.approx(knee.reference_inputs()["reference_body_weight_n"], rel=0.01)


def test_contact_area_published_points_and_interpolation():
    pub = np.array([par(f"pfj_area_male_unloaded_{a}deg") for a in (0, 30, 60)])
    got = knee.contact_area(np.array([0.0, 30.0, 60.0]), weight_bearing=False)
    np.testing.assert_allclose(got, pub)
    wb = knee.contact_area(np.array([0.0, 30.0, 60.0]))
    np.testing.assert_allclose(wb, pub * (1 + par("pfj_area_weight_bearing_increase") / 100))
    mid = knee.contact_area(np.array([15.0, 45.0]), weight_bearing=False)
    np.testing.assert_allclose(mid, [(pub[0] + pub[1]) / 2, (pub[1] + pub[2]) / 2])


@pytest.mark.parametrize(
    "func", [knee.pfj_force_ratio, knee.quadriceps_moment_arm, knee.contact_area]
)
@pytest.mark.parametrize("angle", [-1.0, 60.5, 90.0, np.nan])
def test_angles_outside_range_are_refused(func, angle):
    with pytest.raises(InputError, match=r"knee_flexion_deg.*0, 60\] deg"):
        func(np.array([30.0, angle]))


# ----------------------------------------------------------------------------- science checks
def hand_gait(mass_kg, peak_bw, contact_time_s, step_length_m, speed_m_s=3.0):
    peak_bw = np.asarray(peak_bw, dtype=float)
    step_length_m = np.asarray(step_length_m, dtype=float)
    return {
        "contact_time_s": np.asarray(contact_time_s, dtype=float),
        "flight_time_s": np.zeros_like(peak_bw),
        "step_frequency_hz": speed_m_s / step_length_m,
        "step_length_m": step_length_m,
        "vgrf_peak_n": peak_bw * np.asarray(mass_kg) * G,
        "vgrf_peak_bw": peak_bw,
    }


DIRS = np.array(["forward", "backward"])


def roos_gait():
    """Gait at Roos's speed with Roos's |GRF| at peak moment and the reference body mass."""
    gf, _, gb, _ = roos("grf_magnitude_at_peak_moment_bw", "grf_at_peak_moment")
    mass = knee.reference_inputs()["reference_body_weight_n"] / G
    return mass, hand_gait(mass, [gf, gb], [0.25, 0.2], [1.05, 0.95])


def test_roos_matched_speed_pfj_and_moment_point_estimate():
    mass, gait = roos_gait()
    out = knee.from_gait(gait, mass_kg=mass, direction=DIRS, mode="run", speed_m_s=3.0)
    pf, pf_sd, pb, pb_sd = roos("pfj_force_bw", "pfj_force_peak")
    mf, mf_sd, mb, mb_sd = roos("knee_ext_moment_nm", "knee_moment_peak")
    pfj = out["pfj_force_bw"][0]
    assert abs(pfj[0] - pf) < pf_sd and abs(pfj[1] - pb) < pb_sd
    assert pfj[1] < pfj[0]
    moment = out["knee_ext_moment_nm"][0]
    assert abs(moment[0] - mf) < mf_sd and abs(moment[1] - mb) < mb_sd


def test_roos_matched_speed_with_draws():
    n = 4000
    params = knee.sample_parameters(n, np.random.default_rng(20120601))
    mass, gait = roos_gait()
    gait = {k: v[:, None] for k, v in gait.items()}
    out = knee.from_gait(
        gait, mass_kg=mass, direction=DIRS[:, None], mode="run", speed_m_s=3.0, params=params
    )
    pfj = out["pfj_force_bw"][0]
    assert pfj.shape == (2, n)
    pf, pf_sd, pb, pb_sd = roos("pfj_force_bw", "pfj_force_peak")
    for row, (p, sd) in zip(pfj, ((pf, pf_sd), (pb, pb_sd)), strict=True):
        assert abs(row.mean() - p) < sd
        assert 0.5 < row.std() / sd < 2.0
    # the published reduction (BR lower) holds on average in the draws
    assert pfj[1].mean() < pfj[0].mean()


def test_roos_with_gait_model():
    from retrosim.models import gait as gait_mod

    mass = knee.reference_inputs()["reference_body_weight_n"] / G
    g = gait_mod.gait(3.0, mass, direction=DIRS, mode="run")
    out = knee.from_gait(g, mass_kg=mass, direction=DIRS, mode="run", speed_m_s=3.0)
    pf, pf_sd, pb, pb_sd = roos("pfj_force_bw", "pfj_force_peak")
    mf, mf_sd, mb, mb_sd = roos("knee_ext_moment_nm", "knee_moment_peak")
    assert abs(out["pfj_force_bw"][0][0] - pf) < pf_sd
    assert abs(out["pfj_force_bw"][0][1] - pb) < pb_sd
    assert abs(out["knee_ext_moment_nm"][0][0] - mf) < mf_sd
    assert abs(out["knee_ext_moment_nm"][0][1] - mb) < mb_sd


def test_hand_computed_chain():
    mass = 70.0
    gait = hand_gait(mass, [2.5], [0.25], [1.0])
    params = {
        "knee_flexion_deg_forward": np.array([30.0]),
        "knee_flexion_deg_backward": np.array([30.0]),
        "knee_lever_arm_m_forward": np.array([0.1]),
        "knee_lever_arm_m_backward": np.array([0.1]),
    }
    out = knee.from_gait(
        gait, mass_kg=mass, direction="forward", mode="run", speed_m_s=3.0, params=params
    )
    w = mass * G
    moment = 2.5 * w * 0.1
    ma = 0.046 + 2.8e-4 * 30 - 1.3e-5 * 900 + 8e-8 * 27000
    k = (0.462 + 1.47e-3 * 30 - 3.84e-5 * 900) / (
        1 - 1.62e-2 * 30 + 1.55e-4 * 900 - 6.98e-7 * 27000
    )
    area = par("pfj_area_male_unloaded_30deg") * (1 + par("pfj_area_weight_bearing_increase") / 100)
    assert out["knee_ext_moment_nm"][0] == pytest.approx([moment])
    assert out["quadriceps_force_n"][0] == pytest.approx([moment / ma])
    assert out["pfj_force_n"][0] == pytest.approx([k * moment / ma])
    assert out["pfj_stress_mpa"][0] == pytest.approx([k * moment / ma / area])
    assert out["pfj_impulse_ns"][0] == pytest.approx([k * moment / ma * 0.25 * 2 / np.pi])
    assert out["vgrf_loading_rate_bw_s"][0] == pytest.approx([2 * 2.5 / 0.25])
    assert out["contacts_per_km_knee"][0] == pytest.approx([500.0])
    assert out["pfj_force_per_km_bw"][0] == pytest.approx([k * moment / ma / w * 500.0])
    # per-km vertical impulse: per-contact impulse x contacts per km (= 500 m g / v)
    assert out["vgrf_impulse_per_km_ns"][0] == pytest.approx(
        out["vgrf_impulse_ns"][0] * out["contacts_per_km_knee"][0]
    )


def test_vertical_impulse_equals_half_sine_integral_with_morin_peak():
    """m g / f_step equals the half-sine integral 2/pi F_max t_c when F_max follows Morin 2005."""
    mass, tc, tf = 65.0, np.array([0.24, 0.19]), np.array([0.09, 0.12])
    fmax = mass * G * np.pi / 2 * (tf / tc + 1)
    gait = {
        "contact_time_s": tc,
        "flight_time_s": tf,
        "step_frequency_hz": 1 / (tc + tf),
        "step_length_m": 3.0 * (tc + tf),
        "vgrf_peak_n": fmax,
        "vgrf_peak_bw": fmax / (mass * G),
    }
    out = knee.from_gait(gait, mass_kg=mass, direction=DIRS, mode="run", speed_m_s=3.0)
    np.testing.assert_allclose(out["vgrf_impulse_ns"][0], 2 / np.pi * fmax * tc)


def test_loads_scale_with_body_mass():
    outs = []
    for mass in (60.0, 120.0):
        gait = hand_gait(mass, [2.4, 2.6], [0.25, 0.2], [1.05, 0.95])
        outs.append(knee.from_gait(gait, mass_kg=mass, direction=DIRS, mode="run", speed_m_s=3.0))
    for name in ("knee_ext_moment_nm", "pfj_force_n", "pfj_stress_mpa", "vgrf_impulse_ns"):
        np.testing.assert_allclose(outs[1][name][0], 2 * outs[0][name][0])
    for name in ("pfj_force_bw", "knee_flexion_at_peak_moment_deg", "vgrf_rise_rate_bw_s"):
        np.testing.assert_allclose(outs[1][name][0], outs[0][name][0])


def test_per_km_ratio_differs_from_per_step_as_step_counts_imply():
    mass, gait = roos_gait()  # backward steps shorter: 0.95 m vs 1.05 m
    out = knee.from_gait(gait, mass_kg=mass, direction=DIRS, mode="run", speed_m_s=3.0)
    step = out["pfj_force_bw"][0]
    km = out["pfj_force_per_km_bw"][0]
    ratio_step, ratio_km = step[1] / step[0], km[1] / km[0]
    lengths = gait["step_length_m"]
    assert ratio_km > ratio_step  # more backward contacts per km narrow the difference
    assert ratio_km == pytest.approx(ratio_step * lengths[0] / lengths[1])
    stress_step = out["pfj_stress_mpa"][0]
    stress_km = out["pfj_stress_per_km_mpa"][0]
    assert stress_km[1] / stress_km[0] > stress_step[1] / stress_step[0]


def test_backward_loading_rate_is_nan_with_flag():
    mass, gait = roos_gait()
    out = knee.from_gait(gait, mass_kg=mass, direction=DIRS, mode="run", speed_m_s=3.0)
    rate, _units, long_name = out["vgrf_loading_rate_bw_s"]
    assert np.isfinite(rate[0]) and np.isnan(rate[1])
    assert "forefoot" in long_name and "impact peak" in long_name
    assert out["loading_rate_defined"][0].tolist() == [True, False]
    assert np.all(np.isfinite(out["vgrf_rise_rate_bw_s"][0]))


def test_walking_knee_variables_are_nan_and_say_why():
    gait = hand_gait(70.0, [1.2], [0.6], [0.7], speed_m_s=1.2)
    out = knee.from_gait(gait, mass_kg=70.0, direction="forward", mode="walk", speed_m_s=1.2)
    assert np.isnan(out["pfj_force_bw"][0]).all()
    assert "walk" in out["pfj_force_bw"][2]
    assert np.isfinite(out["vgrf_impulse_ns"][0]).all()


def test_grid_broadcasting_matches_scalar_evaluation():
    rng = np.random.default_rng(7)
    n = 5
    params = knee.sample_parameters(n, rng)
    speed = np.array([2.5, 3.0, 3.5])[:, None, None, None, None, None]
    mass = np.array([60.0, 80.0])[None, :, None, None, None, None]
    direction = DIRS[None, None, :, None, None, None]
    peak_bw = 2.0 + 0.2 * speed + 0.3 * (direction == "backward")
    gait = hand_gait(mass, peak_bw, 0.7 / speed, speed / 3.0 + 0 * peak_bw, speed_m_s=speed)
    gait["contact_time_s"] = gait["contact_time_s"] + 0 * peak_bw
    out = knee.from_gait(
        gait, mass_kg=mass, direction=direction, mode="run", speed_m_s=speed, params=params
    )
    pfj = out["pfj_force_n"][0]
    assert pfj.shape == (3, 2, 2, 1, 1, n)
    i, j, d, r = 2, 1, 1, 3
    scalar = {k: np.array([v[r]]) for k, v in params.items()}
    shape = np.broadcast_shapes(*(np.shape(v) for v in gait.values()))
    g1 = {k: np.broadcast_to(v, shape)[i, j, d, 0, 0] for k, v in gait.items()}
    one = knee.from_gait(
        g1, mass_kg=mass[0, j, 0, 0, 0, 0], direction=DIRS[d], mode="run", speed_m_s=3.5,
        params=scalar,
    )  # fmt: skip
    assert pfj[i, j, d, 0, 0, r] == pytest.approx(one["pfj_force_n"][0][0])


def test_sample_parameters_reproducible_and_published():
    a = knee.sample_parameters(20000, np.random.default_rng(1))
    b = knee.sample_parameters(20000, np.random.default_rng(1))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert a[key].shape == (20000,)
    # forward levels: the published mean and between-subject SD (Roos 2012)
    theta = a["knee_flexion_deg_forward"]
    assert theta.mean() == pytest.approx(par("knee_flexion_at_peak_moment", "forward"), abs=0.3)
    assert theta.std() == pytest.approx(
        par("knee_flexion_at_peak_moment", "forward", "sd"), rel=0.1
    )
    lever_mean, lever_sd = knee.reference_inputs()["forward"]["lever_arm_m"]
    lever = a["knee_lever_arm_m_forward"]
    assert lever.mean() == pytest.approx(lever_mean, rel=0.03)
    assert lever.std() == pytest.approx(lever_sd, rel=0.1)
    # backward = forward x exp(effect): the published backward means are recovered
    for d in knee.DIRECTIONS:
        theta = a[f"knee_flexion_deg_{d}"]
        assert theta.min() >= 0 and theta.max() <= 60
    assert a["knee_flexion_deg_backward"].mean() == pytest.approx(
        par("knee_flexion_at_peak_moment", "backward"), abs=0.5
    )
    assert a["knee_lever_arm_m_backward"].mean() == pytest.approx(
        knee.reference_inputs()["backward"]["lever_arm_m"][0], rel=0.03
    )


def test_roos_direction_effects_hand_computed():
    # paired delta-method variance with n = 20 and r = 0.5, written out
    n, r = 20, 0.5

    def lr(f, sf, b, sb):
        vf, vb = sf**2 / (n * f**2), sb**2 / (n * b**2)
        return np.log(b / f), vf + vb - 2 * r * np.sqrt(vf * vb)

    flex = lr(*roos("knee_flexion_at_peak_moment_deg", "knee_flexion_at_peak_moment"))
    mom = lr(*roos("knee_ext_moment_nm", "knee_moment_peak"))
    grf = lr(*roos("grf_magnitude_at_peak_moment_bw", "grf_at_peak_moment"))
    got = knee.roos_direction_effects(r=0.5)
    assert got["dir_knee_flexion"][0] == pytest.approx(flex[0])
    assert got["dir_knee_flexion"][1] == pytest.approx(np.sqrt(flex[1]))
    assert got["dir_knee_lever_arm"][0] == pytest.approx(mom[0] - grf[0])
    # d = M / |GRF| with |GRF| and d independent across subjects (as reference_inputs assumes):
    # var(ln d) = var(ln M) - var(ln |GRF|)
    assert got["dir_knee_lever_arm"][1] == pytest.approx(np.sqrt(mom[1] - grf[1]))
    # Roos's paired moment ratio (SE about 8.5 % in log) is far tighter than the ratio of two
    # independent draws of the between-subject spreads (about 50 %)
    assert got["dir_knee_lever_arm"][1] < 0.1


def test_backward_inputs_paired_with_forward_draws():
    n = 5000
    effects = {"dir_knee_flexion": np.full(n, -0.05), "dir_knee_lever_arm": np.full(n, -0.3)}
    a = knee.sample_parameters(n, np.random.default_rng(3), effects=effects)
    ok = a["knee_flexion_deg_backward"] < 60  # not clipped
    np.testing.assert_allclose(
        (a["knee_flexion_deg_backward"] / a["knee_flexion_deg_forward"])[ok], np.exp(-0.05)
    )
    np.testing.assert_allclose(a["knee_lever_arm_m_backward"] / a["knee_lever_arm_m_forward"],
                               np.exp(-0.3))  # fmt: skip
    # so the moment ratio at equal |GRF| is the effect itself, whatever the forward draw
    mass, gait = roos_gait()
    gait = {k: np.full((2, n), v[0])[...] for k, v in gait.items()}
    out = knee.from_gait(gait, mass_kg=mass, direction=DIRS[:, None], mode="run", speed_m_s=3.0,
                         params=a)  # fmt: skip
    m = out["knee_ext_moment_nm"][0]
    np.testing.assert_allclose(m[1] / m[0], np.exp(-0.3))


def test_pfj_ratio_depends_on_forward_draws_only_through_the_angle_curvature():
    # effects fixed: the PFJ ratio at equal |GRF| is exp(d_lever) g(theta_F e^d_flex) / g(theta_F)
    # with g = k / ma_Q (polynomials from knee.csv): the forward lever arm cancels, and the
    # forward angle (drawn with Roos's between-subject SD) moves the ratio only through the
    # curvature of g
    n = 4000
    d_flex = np.log(par("knee_flexion_at_peak_moment", "backward")
                    / par("knee_flexion_at_peak_moment", "forward"))  # fmt: skip
    effects = {"dir_knee_flexion": np.full(n, d_flex), "dir_knee_lever_arm": np.full(n, -0.3)}
    a = knee.sample_parameters(n, np.random.default_rng(5), effects=effects)
    mass, gait = roos_gait()
    gait = {k: np.full((2, n), v[0]) for k, v in gait.items()}
    out = knee.from_gait(gait, mass_kg=mass, direction=DIRS[:, None], mode="run", speed_m_s=3.0,
                         params=a)  # fmt: skip
    f = out["pfj_force_bw"][0]
    num = np.polynomial.Polynomial([par(f"k_num_c{i}") for i in range(3)])
    den = np.polynomial.Polynomial([1.0] + [par(f"k_den_d{i}") for i in (1, 2, 3)])
    maq = np.polynomial.Polynomial([par(f"maq_c{i}") for i in range(4)])

    def g(t):
        return num(t) / den(t) / maq(t)

    tf, tb = a["knee_flexion_deg_forward"], a["knee_flexion_deg_backward"]
    ok = tb < 60  # not clipped
    np.testing.assert_allclose((f[1] / f[0])[ok], (np.exp(-0.3) * g(tb) / g(tf))[ok], rtol=1e-10)
    # the 6-deg between-subject spread of the forward angle adds < 0.01 SD to ln(PFJ ratio),
    # a tenth of Roos's paired standard error of the moment ratio
    assert tf.std() > 5.0
    assert np.log(f[1] / f[0]).std() < 0.01


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"speed_m_s": 12.5}, "speed_m_s"),
        ({"speed_m_s": 0.0}, "speed_m_s"),
        ({"mass_kg": 0.0}, "mass_kg"),
        ({"mass_kg": np.nan}, "mass_kg"),
        ({"direction": "sideways"}, "direction"),
        ({"mode": "swim"}, "mode"),
    ],
)
def test_bad_input_names_argument(kwargs, argument):
    base = {"mass_kg": 70.0, "direction": "forward", "mode": "run", "speed_m_s": 3.0}
    gait = hand_gait(70.0, [2.4], [0.25], [1.0])
    with pytest.raises(InputError) as err:
        knee.from_gait(gait, **(base | kwargs))
    assert err.value.argument == argument


def test_params_out_of_range_angle_refused():
    params = knee.sample_parameters(3, np.random.default_rng(0))
    params["knee_flexion_deg_backward"] = np.array([41.0, 75.0, 40.0])
    gait = hand_gait(70.0, [2.4], [0.25], [1.0])
    with pytest.raises(InputError, match="knee_flexion_deg"):
        knee.from_gait(
            gait, mass_kg=70.0, direction="backward", mode="run", speed_m_s=3.0, params=params
        )


def test_missing_gait_key_and_bad_draw_count():
    with pytest.raises(InputError, match="contact_time_s"):
        knee.from_gait({}, mass_kg=70.0, direction="forward", mode="run", speed_m_s=3.0)
    with pytest.raises(InputError):
        knee.sample_parameters(0, np.random.default_rng(0))


def test_parameter_file_agrees_with_evidence_dataset():
    from retrosim.evidence import tables as evidence

    table = evidence.load()
    pairs = {
        "pfj_force_bw": "pfj_force_peak",
        "knee_ext_moment_nm": "knee_moment_peak",
        "grf_magnitude_at_peak_moment_bw": "grf_at_peak_moment",
        "knee_flexion_at_peak_moment_deg": "knee_flexion_at_peak_moment",
    }
    for outcome, name in pairs.items():
        row = table[(table["study_key"] == "roos2012") & (table["outcome"] == outcome)].iloc[0]
        assert row["forward_mean"] == par(name, "forward")
        assert row["backward_mean"] == par(name, "backward")
        assert row["forward_disp"] == par(name, "forward", "sd")
        assert row["backward_disp"] == par(name, "backward", "sd")
