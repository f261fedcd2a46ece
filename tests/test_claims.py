"""Claims registry and verdicts: thresholds, readings and testability on a hand-made posterior
(no sampling), and the ``retrosim claims`` command's gate exit code on a starved fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from retrosim import claims as cl
from retrosim import inference as inf
from retrosim.sampling import Diagnostics


@pytest.mark.parametrize(
    "p_in, p_dir, word",
    [
        (0.60, 0.97, "supported"),
        (0.60, 0.90, "plausible"),
        (0.30, 0.99, "plausible"),
        (0.39, 0.39, "not supported"),
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


def _frame():
    """Two energy studies (run, same speed), one self-selected PFJ study, one same-speed PFJ
    study, one step-frequency row. Synthetic."""
    base = {
        "grade_pct": 0.0,
        "design": "within",
        "vi": 0.01,
        "v_forward": 0.01,
        "v_backward": 0.01,
        "speed_backward_m_s": np.nan,
        "primary": True,
    }
    rows = [
        ("e1", "s1", "vo2", "energy", "run", 3.0, "same", 10),
        ("e2", "s2", "vo2", "energy", "run", 3.0, "same", 12),
        ("p1", "s3", "pfj", "pfj_force", "run", 3.0, "same", 20),
        ("p2", "s4", "pfj", "pfj_force", "run", np.nan, "self_selected", 5),
        ("f1", "s5", "step_frequency_hz", "gait", "run", np.nan, "same", 13),
    ]
    out = []
    for rid, st, outc, fam, mode, v, match, n in rows:
        out.append(
            base
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
        )
    return pd.DataFrame(out)


TAU_STUDY, TAU_COND = 0.1, 0.05


def _fake_result(alpha, b_match_self=0.0, converged=True, n=4000, seed=0):
    """A MetaResult whose posterior is a known normal per family (no sampling), with fixed
    between-study and between-condition SDs ``TAU_STUDY``, ``TAU_COND``."""
    design = inf.MetaDesign.from_frame(cl.analysis_rows(_frame()))
    rng = np.random.default_rng(seed)
    F = len(design.families)
    a = np.stack([rng.normal(alpha[f][0], alpha[f][1], n) for f in design.families], axis=1)
    zeros = np.zeros((1, n, F))
    bm = np.zeros((1, n, F, 2))
    bm[0, :, design.families.index("pfj_force"), 0] = b_match_self
    post = xr.Dataset(
        {
            "alpha": (("chain", "draw", "family"), a[None]),
            "b_speed": (("chain", "draw", "family"), zeros),
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
    # the verdict uses the mean effect (judged_on='mean'): P(20-30 %) of N(ln 1.25, 0.02²)
    from scipy.stats import norm

    p_mean = norm.cdf(np.log(1.3), np.log(1.25), 0.02) - norm.cdf(np.log(1.2), np.log(1.25), 0.02)
    p_new = norm.cdf(np.log(1.3), np.log(1.25), sd) - norm.cdf(np.log(1.2), np.log(1.25), sd)
    assert e["judged_on"] == "mean"
    assert e["p_in_range"] == pytest.approx(p_mean, abs=0.01)
    assert e["p_in_range_new_study"] == pytest.approx(p_new, abs=0.01)
    # the same claim judged on a new study uses the predictive probability
    claim = next(c for c in cl.CLAIMS if c.key == "energy_20_30")
    from dataclasses import replace

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
        b_match_self=np.log(0.55 / 0.8),
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
    # knee per km = per step x step-frequency ratio: 0.8 x 1.1 = 0.88 -> -12 %
    kkm = tab.loc[("knee_stress_30", "knee_per_km_same_speed")]
    assert kkm["median_pct"] == pytest.approx(100 * (0.8 * 1.1 - 1), abs=1.0)
    assert tab.loc[("knee_stress_30", "per_step_same_speed"), "verdict"] == "contradicted"
    # self-selected PFJ -45 %: inside 30-80 % less, but from one study only
    k_ss = tab.loc[("knee_stress_30_80", "per_step_self_selected")]
    assert k_ss["median_pct"] == pytest.approx(-45.0, abs=1.5)
    assert k_ss["n_studies"] == 1 and k_ss["verdict"] == "plausible"
    # no heart-rate or GRF data in this table
    assert tab.loc[("heart_rate_higher", "per_minute_same_speed"), "verdict"].startswith(
        "not testable"
    )
    assert tab.loc[("knee_impact_80", "per_step_same_speed"), "verdict"].startswith("not testable")
    assert tab["reliable"].all()


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
    from retrosim import evidence
    from retrosim.cli import main

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
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 3  # documented: fit refused by the convergence gate
    assert main([*args, "--allow-unconverged"]) == 0
    out = pd.read_csv(tmp_path / "claims.csv")
    assert set(out["claim"]) == {c.key for c in cl.CLAIMS}
    energy = out[(out["claim"] == "energy_20_30") & (out["reading_key"] == "per_minute_same_speed")]
    assert not energy["reliable"].iloc[0]
    tree = xr.open_datatree(tmp_path / "claims.nc", engine="h5netcdf")
    assert "posterior" in tree.children and "verdicts" in tree.children
    assert tree.attrs["converged"] == 0
    assert (tmp_path / "forest_energy.png").stat().st_size > 1000
