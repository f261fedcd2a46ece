"""Claims registry and verdicts: thresholds, every verdict class on hand-made draws, the one
rule for claimed numbers, reference speeds, readings and testability on a hand-made posterior
(no sampling), the verdict along speed, and the ``retrosim claims`` command's gate exit code on
a starved fit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from retrosim.bayes.sampling import Diagnostics
from retrosim.meta import claims as cl
from retrosim.meta import model as inf

CLAIM = {c.key: c for c in cl.CLAIMS}


@pytest.mark.parametrize(
    "p_in, p_dir, word",
    [
        (0.60, 0.97, "supported"),
        (0.60, 0.90, "plausible"),
        (0.30, 0.99, "plausible"),
        (0.39, 0.39, "not supported"),  # no interval given: inconclusive cannot be told
        (0.30, 0.50, "plausible"),
        (0.10, 0.99, "not supported"),
        (0.04, 0.99, "contradicted"),
        (0.00, 0.01, "contradicted"),
    ],
)
def test_verdict_thresholds(p_in, p_dir, word):
    assert cl.verdict(p_in, p_dir) == word


def test_one_study_cannot_support_a_claim():
    assert cl.verdict(0.9, 0.99, n_studies=1) == "plausible"
    assert cl.verdict(0.9, 0.99, n_studies=2) == "supported"


def test_inconclusive_needs_an_interval_holding_the_claim_and_clearly_different_effects():
    c = CLAIM["energy_20_30"]  # read as +15 to +35 %, margin 10 points
    # opposite direction beyond -10 %
    assert cl.verdict(0.2, 0.7, interval=(-11, 40), claim=c) == "inconclusive"
    # beyond the far end (35 + 10 = 45 %)
    assert cl.verdict(0.2, 0.99, interval=(5, 46), claim=c) == "inconclusive"
    # neither: the interval lies between a small decrease and the claim
    assert cl.verdict(0.2, 0.9, interval=(-9, 44), claim=c) == "not supported"
    # P(range) < 0.05: contradicted, whatever the width
    assert cl.verdict(0.04, 0.6, interval=(-60, 16), claim=c) == "contradicted"
    d = CLAIM["knee_stress_30"]  # -35 to -25 %: opposite is above +10 %, far end below -45 %
    assert cl.verdict(0.1, 0.8, interval=(-40, 11), claim=d) == "inconclusive"
    assert cl.verdict(0.1, 0.99, interval=(-46, -5), claim=d) == "inconclusive"
    assert cl.verdict(0.1, 0.99, interval=(-44, 9), claim=d) == "not supported"


def _quantile_draws(mean, sd, n=20000):
    """Deterministic draws with exact normal quantiles (%)."""
    return norm.ppf((np.arange(n) + 0.5) / n, mean, sd)


# (claim, mean %, sd %, studies, expected verdict); P(range), P(direction) and the 95 % interval
# of each normal are computed by hand in the comments
HAND_MADE = [
    # P(15..35) = 0.9991, P(>0) = 1 -> supported with two studies
    ("energy_20_30", 25, 3, 2, "supported"),
    # the same draws from one study -> plausible
    ("energy_20_30", 25, 3, 1, "plausible"),
    # P(15..35) = Phi(2.5) - Phi(0.5) = 0.30 >= 0.25, P(>0) = 0.84 -> plausible
    ("energy_20_30", 10, 10, 3, "plausible"),
    # P(>15) = 1 - Phi(1.33) = 0.091; interval 0.2 to 17.8 %: nothing clearly different
    ("energy_20_30", 9, 4.5, 3, "not supported"),
    # P = Phi(2) - Phi(0.67) = 0.23; interval -24 to +34 %: opposite direction beyond -10 %
    ("energy_20_30", 5, 15, 3, "inconclusive"),
    # P = Phi(-0.83) - Phi(-2.5) = 0.20; interval +21 to +69 %: beyond 35 + 10 %
    ("energy_20_30", 45, 12, 3, "inconclusive"),
    # P(15..35) of N(0, 3) ~ 3e-7 -> contradicted
    ("energy_20_30", 0, 3, 3, "contradicted"),
    # "about 30 % less" (-35 to -25): P(< -25) = Phi(-1.6) = 0.055; interval -26.8 to -7.2 %
    ("knee_stress_30", -17, 5, 2, "not supported"),
    # P(-35..-25) = Phi(-0.67) - Phi(-1.33) = 0.16; interval -44 to +14 %: opposite beyond +10 %
    ("knee_stress_30", -15, 15, 2, "inconclusive"),
    # "up to 80 % less": P(-85 <= x < 0) = P(dir) = Phi(-0.2) = 0.42 < 0.5 -> not plausible;
    # interval -26 to +32 %: opposite direction -> inconclusive
    ("knee_impact_80", 3, 15, 2, "inconclusive"),
    # "higher": P(>0) = Phi(2) = 0.977 -> supported
    ("heart_rate_higher", 20, 10, 2, "supported"),
]


@pytest.mark.parametrize("key, mean, sd, n_studies, word", HAND_MADE)
def test_every_verdict_class_on_hand_made_draws(key, mean, sd, n_studies, word):
    c = CLAIM[key]
    out = cl.judge_draws(_quantile_draws(mean, sd), None, c, n_studies)
    assert out["verdict"] == word
    p_in = norm.cdf(c.high_pct, mean, sd) - norm.cdf(c.low_pct, mean, sd)
    assert out["p_in_range"] == pytest.approx(p_in, abs=2e-4)
    assert out["ci_low_pct"] == pytest.approx(mean - 1.959964 * sd, abs=0.01)
    assert out["ci_high_pct"] == pytest.approx(mean + 1.959964 * sd, abs=0.01)
    assert out["verdict_basis"]


def test_claimed_numbers_are_read_with_one_rounding_rule():
    # each stated multiple of 10 stands for +- 5 points; a bound at zero is the direction
    expect = {
        "energy_20_30": (15, 35),  # "20-30 % more"
        "energy_up_to_30": (0, 35),  # "up to 30 % more"
        "knee_stress_30": (-35, -25),  # "about 30 % less"
        "knee_impact_80": (-85, 0),  # "up to 80 % less"
        "knee_stress_30_80": (-85, -25),  # "30-80 % less"
        "heart_rate_higher": (0, np.inf),  # "higher"
    }
    for key, (lo, hi) in expect.items():
        assert (CLAIM[key].low_pct, CLAIM[key].high_pct) == (lo, hi), key
    assert CLAIM["knee_stress_30"].stated_text() == "about 30 % less"
    assert CLAIM["energy_20_30"].stated_text() == "20 to 30 % more"
    assert CLAIM["knee_impact_80"].range_text() == "-85 to < 0 %"
    # "up to" excludes no change; the range read excludes 0
    up = cl.judge_draws(np.array([0.0, 0.0, 10.0, 40.0]), None, CLAIM["energy_up_to_30"], 2)
    assert up["p_in_range"] == 0.25
    with pytest.raises(ValueError, match="multiple"):
        replace(CLAIM["energy_20_30"], stated_low_pct=23.0)


def test_registry_has_the_required_claims():
    keys = {c.key for c in cl.CLAIMS}
    assert {
        "energy_20_30",
        "energy_up_to_30",
        "knee_stress_30",
        "knee_impact_80",
        "heart_rate_higher",
        "knee_stress_30_80",
    } <= keys
    for c in cl.CLAIMS:
        assert c.sources and all(s.kind and s.paraphrase for s in c.sources)
        assert c.low_pct < c.high_pct
        assert set(c.readings) <= set(cl.READINGS)


def test_reference_speeds_are_the_registry_values():
    run, walk = cl.REFERENCE_SPEEDS["run"], cl.REFERENCE_SPEEDS["walk"]
    # the midpoint of 2.74 and 3.25 m/s (women's and men's preferred running speeds)
    assert (run.low_m_s, run.high_m_s) == (2.74, 3.25)
    assert run.speed_m_s == pytest.approx(2.995)
    assert (walk.speed_m_s, walk.low_m_s, walk.high_m_s) == (1.31, 1.27, 1.35)
    for ref in (run, walk):
        assert ref.doi and ref.citation and ref.locator
    reg = cl.registry_table()
    assert len(reg) == sum(len(c.readings) for c in cl.CLAIMS)
    for _, r in reg.iterrows():
        assert r["speed_ref_m_s"] == cl.REFERENCE_SPEEDS[r["mode"]].speed_m_s
    assert set(reg.loc[reg["reading_key"] == "walk_per_minute_same_speed", "mode"]) == {"walk"}
    with pytest.raises(ValueError, match="low <= speed <= high"):
        cl.ReferenceSpeed("run", 2.0, 2.5, 3.0, "", "", "", "", "")


def test_impact_claim_is_read_on_a_labelled_proxy_and_impact_itself():
    c = CLAIM["knee_impact_80"]
    assert c.family == "vgrf" and "proxy" in c.construct
    assert "impact_per_step_same_speed" in c.readings
    assert c.reading_family("impact_per_step_same_speed") == cl.IMPACT_FAMILY


# ----------------------------------------------------------------------------------------------
# Hand-made posteriors
# ----------------------------------------------------------------------------------------------

BASE = {
    "grade_pct": 0.0,
    "design": "within",
    "vi": 0.01,
    "v_forward": 0.01,
    "v_backward": 0.01,
    "speed_backward_m_s": np.nan,
    "primary": True,
}


def _rows(spec):
    out = []
    for rid, st, outc, fam, mode, v, match, n, *rest in spec:
        out.append(
            BASE
            | {
                "row_id": rid,
                "study_key": st,
                "group_key": st,
                "outcome": outc,
                "outcome_family": fam,
                "mode": mode,
                "speed_m_s": v,
                "speed_matching": match,
                "n": n,
                "yi": 0.1,
            }
            | (rest[0] if rest else {})
        )
    return pd.DataFrame(out)


def _frame():
    """Two energy studies (run, same speed), one self-selected PFJ study, one same-speed PFJ
    study, one step-frequency row. Synthetic."""
    return _rows(
        [
            ("e1", "s1", "vo2", "energy", "run", 3.0, "same", 10),
            ("e2", "s2", "vo2", "energy", "run", 3.0, "same", 12),
            ("p1", "s3", "pfj", "pfj_force", "run", 3.0, "same", 20),
            ("p2", "s4", "pfj", "pfj_force", "run", np.nan, "self_selected", 5),
            ("f1", "s5", "step_frequency_hz", "gait", "run", np.nan, "same", 13),
        ]
    )


def _speed_frame():
    """Energy at 2.0 and 3.0 m/s (a speed moderator, centre 2.5 m/s), also at self-selected
    speeds with both speeds reported (forward 2.5, backward 2.0 m/s); GRF at one speed (no
    moderator). Synthetic."""
    return _rows(
        [
            ("e1", "s1", "vo2", "energy", "run", 2.0, "same", 10),
            ("e2", "s2", "vo2", "energy", "run", 3.0, "same", 12),
            (
                "e3",
                "s3",
                "vo2",
                "energy",
                "run",
                2.5,
                "self_selected",
                8,
                {"speed_backward_m_s": 2.0},
            ),
            ("g1", "s4", "grf", "vgrf", "run", 3.1, "same", 20),
            ("g2", "s5", "grf", "vgrf", "run", 3.1, "same", 15),
        ]
    )


TAU_STUDY, TAU_COND = 0.1, 0.05


def _fake_result(
    alpha, b_match_self=None, converged=True, n=4000, seed=0, frame=None, b_speed=None
):
    """A MetaResult whose posterior is a known normal per family (no sampling), with fixed
    between-study and between-condition SDs ``TAU_STUDY``, ``TAU_COND``.

    ``alpha``, ``b_speed``: {family: (mean, sd)} of the ln-ratio intercept and speed slope
    [1/(m/s)]; ``b_match_self``: {family: shift of self-selected rows}."""
    design = inf.MetaDesign.from_frame(cl.analysis_rows(_frame() if frame is None else frame))
    rng = np.random.default_rng(seed)
    F = len(design.families)

    def stack(spec):
        cols = [rng.normal(*spec.get(f, (0.0, 0.0)), n) for f in design.families]
        return np.stack(cols, axis=1)[None]

    zeros = np.zeros((1, n, F))
    bm = np.zeros((1, n, F, 2))
    for fam, shift in (b_match_self or {}).items():
        bm[0, :, design.families.index(fam), 0] = shift
    post = xr.Dataset(
        {
            "alpha": (("chain", "draw", "family"), stack(alpha)),
            "b_speed": (("chain", "draw", "family"), stack(b_speed or {})),
            "b_mode": (("chain", "draw", "family"), zeros),
            "b_match": (("chain", "draw", "family", "matching"), bm),
            "tau_study": (("chain", "draw", "family"), zeros + TAU_STUDY),
            "tau_cond": (("chain", "draw", "family"), zeros + TAU_COND),
        },
        coords={
            "family": list(design.families),
            "matching": ["self_selected", "matched_intensity"],
        },
    )
    tree = xr.DataTree.from_dict({"posterior": post})
    diag = Diagnostics(1.0 if converged else 1.2, 1000, 1000, 0, n, "fake")
    return inf.MetaResult(tree, diag, design, inf.Priors(), seed=seed)


def test_prediction_interval_adds_between_study_and_condition_spread():
    # mean effect ~ N(ln 1.25, 0.02²); a new study adds N(0, 0.1²) + N(0, 0.05²), so its
    # effect is N(ln 1.25, 0.02² + 0.1² + 0.05²) (hand-computed normal quantiles below)
    res = _fake_result(
        {
            "energy": (np.log(1.25), 0.02),
            "pfj_force": (np.log(0.8), 0.02),
            "gait:step_frequency_hz": (0.0, 0.01),
        },
        n=40000,
    )
    tab = cl.evaluate(res).set_index(["claim", "reading_key"])
    e = tab.loc[("energy_20_30", "per_minute_same_speed")]
    sd = np.sqrt(0.02**2 + 0.1**2 + 0.05**2)
    assert e["pred_low_pct"] == pytest.approx(100 * (1.25 * np.exp(-1.959964 * sd) - 1), abs=0.6)
    assert e["pred_high_pct"] == pytest.approx(100 * (1.25 * np.exp(1.959964 * sd) - 1), abs=0.8)
    # the verdict uses the mean effect (judged_on='mean'): P(+15 to +35 %) of N(ln 1.25, 0.02²)
    p_mean = norm.cdf(np.log(1.35), np.log(1.25), 0.02) - norm.cdf(np.log(1.15), np.log(1.25), 0.02)
    p_new = norm.cdf(np.log(1.35), np.log(1.25), sd) - norm.cdf(np.log(1.15), np.log(1.25), sd)
    assert e["judged_on"] == "mean"
    assert e["p_in_range"] == pytest.approx(p_mean, abs=0.01)
    assert e["p_in_range_new_study"] == pytest.approx(p_new, abs=0.01)
    # the same claim judged on a new study uses the predictive probability
    claim = CLAIM["energy_20_30"]
    tab2 = cl.evaluate(res, claims=(replace(claim, judged_on="new_study"),)).set_index(
        "reading_key"
    )
    assert tab2.loc["per_minute_same_speed", "p_in_range"] == pytest.approx(p_new, abs=0.01)
    with pytest.raises(ValueError, match="judged_on"):
        replace(claim, judged_on="typical person")


def test_evaluate_readings_and_testability():
    # energy +25 % (ln 1.25), PFJ per step -20 % at same speed, step frequency +10 %
    res = _fake_result(
        {
            "energy": (np.log(1.25), 0.02),
            "pfj_force": (np.log(0.8), 0.02),
            "gait:step_frequency_hz": (np.log(1.1), 0.01),
        },
        b_match_self={"pfj_force": np.log(0.55 / 0.8)},
    )
    tab = cl.evaluate(res).set_index(["claim", "reading_key"])
    e = tab.loc[("energy_20_30", "per_minute_same_speed")]
    assert e["median_pct"] == pytest.approx(25.0, abs=1.0)
    assert e["verdict"] == "supported"
    assert (e["n_studies"], e["n_participants"]) == (2, 22)
    # per km at the same speed equals per minute (stated in the module docstring)
    km = tab.loc[("energy_20_30", "per_km_same_speed")]
    assert km["median_pct"] == e["median_pct"] and km["p_in_range"] == e["p_in_range"]
    # no self-selected energy data: not testable, no number
    ss = tab.loc[("energy_20_30", "per_minute_self_selected")]
    assert ss["verdict"] == "not testable with current evidence" and np.isnan(ss["median_pct"])
    # no walking rows: the walking reading is not testable either
    assert tab.loc[("energy_20_30", "walk_per_minute_same_speed"), "verdict"].startswith(
        "not testable"
    )
    # knee per km = per step x step-frequency ratio: 0.8 x 1.1 = 0.88 -> -12 %
    kkm = tab.loc[("knee_stress_30", "knee_per_km_same_speed")]
    assert kkm["median_pct"] == pytest.approx(100 * (0.8 * 1.1 - 1), abs=1.0)
    # -20 % is outside -35 to -25 % with a narrow interval
    assert tab.loc[("knee_stress_30", "per_step_same_speed"), "verdict"] == "contradicted"
    # self-selected PFJ -45 %: inside 30-80 % less, but from one study only
    k_ss = tab.loc[("knee_stress_30_80", "per_step_self_selected")]
    assert k_ss["median_pct"] == pytest.approx(-45.0, abs=1.5)
    assert k_ss["n_studies"] == 1 and k_ss["verdict"] == "plausible"
    # no heart-rate, GRF or impact data in this table
    assert tab.loc[("heart_rate_higher", "per_minute_same_speed"), "verdict"].startswith(
        "not testable"
    )
    assert tab.loc[("knee_impact_80", "per_step_same_speed"), "verdict"].startswith("not testable")
    imp = tab.loc[("knee_impact_80", "impact_per_step_same_speed")]
    assert imp["verdict"].startswith("not testable") and "impact peak" in imp["note"]
    assert tab["reliable"].all()
    # every reading carries its registry reference speed, testable or not
    for (key, reading), r in tab.iterrows():
        ref = CLAIM[key].reference_speed(reading)
        assert r["speed_ref_m_s"] == ref.speed_m_s
        assert (r["speed_ref_low_m_s"], r["speed_ref_high_m_s"]) == (ref.low_m_s, ref.high_m_s)


def test_reference_speed_comes_from_the_registry_not_the_family_mean():
    # energy rows at 2.0 and 3.0 m/s (family mean 2.5 m/s); ln ratio = ln 1.2 + 0.1 (v - 2.5)
    res = _fake_result(
        {"energy": (np.log(1.2), 1e-4), "vgrf": (np.log(1.05), 0.05)},
        b_speed={"energy": (0.1, 0.0)},
        frame=_speed_frame(),
    )
    tab = cl.evaluate(res).set_index(["claim", "reading_key"])
    e = tab.loc[("energy_20_30", "per_minute_same_speed")]
    v_ref = (2.74 + 3.25) / 2
    assert e["speed_ref_m_s"] == pytest.approx(v_ref)
    assert e["median_pct"] == pytest.approx(100 * (1.2 * np.exp(0.1 * (v_ref - 2.5)) - 1), abs=0.01)
    assert e["speed_moderated"] and not e["speed_extrapolated"]  # 2.995 m/s inside 2.0-3.0 m/s
    # at the ends of the reference range the verdict is recomputed: +22.9 % and +29.3 % are
    # both well inside +15 to +35 %
    assert e["verdict_at_low_speed"] == e["verdict_at_high_speed"] == "supported"
    # GRF: one speed, so no speed moderator: the same verdict at every speed, and it says so
    g = tab.loc[("knee_impact_80", "per_step_same_speed")]
    assert not g["speed_moderated"] and "same verdict at every speed" in g["note"]
    assert "proxy" in g["note"] and "proxy" in g["construct"]


def test_per_km_at_self_selected_speeds_adds_the_speed_ratio():
    # self-selected rows shift ln ratio by ln 1.1; forward 2.5 m/s, backward 2.0 m/s, so per km
    # = per minute x 2.5 / 2.0: ln 1.2 + 0.1 (2.995 - 2.5) + ln 1.1 + ln 1.25
    res = _fake_result(
        {"energy": (np.log(1.2), 1e-4), "vgrf": (0.0, 0.05)},
        b_speed={"energy": (0.1, 0.0)},
        b_match_self={"energy": np.log(1.1)},
        frame=_speed_frame(),
    )
    tab = cl.evaluate(res).set_index(["claim", "reading_key"])
    per_min = tab.loc[("energy_20_30", "per_minute_self_selected"), "median_pct"]
    per_km = tab.loc[("energy_20_30", "per_km_self_selected"), "median_pct"]
    ln_min = np.log(1.2) + 0.1 * (2.995 - 2.5) + np.log(1.1)
    assert per_min == pytest.approx(100 * (np.exp(ln_min) - 1), abs=0.01)
    assert per_km == pytest.approx(100 * (np.exp(ln_min) * 2.5 / 2.0 - 1), abs=0.01)


def test_verdict_vs_speed_is_consistent_and_monotone():
    # every slope draw positive (0.3 +- 0.05 per m/s): the effect grows with speed draw by draw
    res = _fake_result(
        {"energy": (np.log(1.1), 0.05), "vgrf": (np.log(0.9), 0.1)},
        b_speed={"energy": (0.3, 0.05)},
        frame=_speed_frame(),
    )
    curve = cl.verdict_vs_speed(res)
    tab = cl.evaluate(res).set_index(["claim", "reading_key"])
    assert set(curve["mode"]) == {"run"}  # no walking rows: walking readings untestable
    for (key, reading), g in curve.groupby(["claim", "reading_key"]):
        g = g.sort_values("speed_m_s")
        c = CLAIM[key]
        ref = g[g["is_reference"]]
        assert len(ref) == 1
        r = tab.loc[(key, reading)]
        assert ref["p_in_range"].iloc[0] == pytest.approx(r["p_in_range"], abs=1e-12)
        assert ref["verdict"].iloc[0] == r["verdict"]
        # the claimed range lies inside the claimed direction
        assert (g["p_in_range"] <= g["p_direction"] + 1e-12).all()
        # every row's verdict follows from its own numbers
        for _, x in g.iterrows():
            assert x["verdict"] == cl.verdict(
                x["p_in_range"],
                x["p_direction"],
                x["n_studies"],
                interval=(x["ci_low_pct"], x["ci_high_pct"]),
                claim=c,
            )
        if c.family == "vgrf":  # no speed moderator: constant along speed
            assert g["p_in_range"].nunique() == 1 and not g["speed_moderated"].any()
        else:  # positive slope in every draw: P(more) and the median rise with speed
            assert (np.diff(g["p_direction"].to_numpy()) >= 0).all()
            assert (np.diff(g["median_pct"].to_numpy()) > 0).all()
            # outside the energy rows' speeds (2.0-3.0 m/s) is flagged as extrapolation
            v = g["speed_m_s"].to_numpy()
            assert (g["extrapolated"].to_numpy() == ((v < 2.0 - 1e-9) | (v > 3.0 + 1e-9))).all()
    grid = cl.speed_grid(res, "run")
    assert grid.min() <= 2.0 and grid.max() >= 3.25 and np.isclose(grid, 2.995).any()


def test_energy_basis_keeps_net_rows_out_of_the_calorie_family():
    df = _speed_frame()
    assert set(cl.analysis_rows(df)["outcome_family"]) == {"energy", "vgrf"}  # no column: pooled
    df["energy_basis"] = ["gross", "net", "not_stated", None, None]
    fams = cl.analysis_rows(df).set_index("row_id")["outcome_family"]
    assert fams.to_dict() == {
        "e1": "energy",
        "e2": "energy_net",
        "e3": "energy_not_stated",
        "g1": "vgrf",
        "g2": "vgrf",
    }
    res = _fake_result({"energy": (np.log(1.2), 0.01)}, frame=df)
    e = (
        cl.evaluate(res)
        .set_index(["claim", "reading_key"])
        .loc[("energy_20_30", "per_minute_same_speed")]
    )
    assert e["n_studies"] == 1 and "gross energy rows only" in e["note"]


def test_unconverged_fit_marks_verdicts_unreliable():
    res = _fake_result(
        {
            "energy": (np.log(1.25), 0.02),
            "pfj_force": (np.log(0.8), 0.02),
            "gait:step_frequency_hz": (0.0, 0.01),
        },
        converged=False,
    )
    tab = cl.evaluate(res)
    testable = tab["verdict"] != "not testable with current evidence"
    assert testable.any()
    assert not tab.loc[testable, "reliable"].any()


def test_cli_exits_nonzero_on_unconverged_fit(tmp_path, monkeypatch):
    from retrosim.cli import main
    from retrosim.evidence import tables as evidence

    # the SBC design's shape: the compiled model is shared with tests/test_inference.py
    df, _ = inf.simulate_effect_sizes(41, n_studies=10, speeds_m_s=(2.5, 3.5), families=("energy",))
    monkeypatch.setattr(evidence, "effect_sizes", lambda *a, **k: df)
    monkeypatch.setattr(evidence, "direction_statements", lambda *a, **k: pd.DataFrame())
    args = [
        "claims",
        "--draws",
        "10",
        "--tune",
        "5",
        "--chains",
        "2",
        "--seed",
        "3",
        "--no-votes",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 3  # documented: fit refused by the convergence gate
    assert main([*args, "--allow-unconverged"]) == 0
    out = pd.read_csv(tmp_path / "claims.csv")
    assert set(out["claim"]) == {c.key for c in cl.CLAIMS}
    energy = out[(out["claim"] == "energy_20_30") & (out["reading_key"] == "per_minute_same_speed")]
    assert not energy["reliable"].iloc[0]
    assert energy["speed_ref_m_s"].iloc[0] == pytest.approx(2.995)
    assert out["speed_ref_m_s"].notna().all()  # every reading names its reference speed
    tree = xr.open_datatree(tmp_path / "claims.nc", engine="h5netcdf")
    assert "posterior" in tree.children and "verdicts" in tree.children
    assert tree.attrs["converged"] == 0
    assert tree["verdicts"]["speed_ref_m_s"].attrs["units"] == "m/s"
    assert (tmp_path / "forest_energy.png").stat().st_size > 1000
