"""Codings of the evidence data read in the sources (issue 13): significance, energy basis,
Williford's modes, the Cavagna 2012 peak force derived from its accelerations, leads.

Expected values are typed from the sources (abstract sentences quoted in the docstrings) or
computed by hand here, never read back from the code under test.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrosim import cli
from retrosim.evidence import tables as evidence

ROOT = Path(__file__).resolve().parents[2]
LIT = ROOT / "retrosim" / "data" / "literature"
G = 9.80665  # standard gravity [m/s^2], typed here independently of retrosim.units


@pytest.fixture(scope="module")
def data():
    return evidence.load()


@pytest.fixture(scope="module")
def effects(data):
    return evidence.effect_sizes(data).set_index("row_id")


# --------------------------------------------------------------------------- significance


@pytest.mark.parametrize(
    ("row_id", "relation", "p", "significant"),
    [
        # Flynn 1994: "significantly higher (P < 0.001) during backward walking and running"
        ("flynn1994_vo2_run", "<", 0.001, True),
        # Hooper 2004: "17% to 20% higher for BW than for FW (P < .00001)"
        ("hooper2004_hr_g10", "<", 0.00001, True),
        # Gao 2022: "All variables were significantly different between conditions (P <= 0.026)"
        ("gao2022_vo2_shuttle", "<=", 0.026, True),
        # Zhang 2022: "... and KAAI (P = 0.02) were significantly decreased during BW"
        ("zhang2022_kaai", "=", 0.02, True),
        # Zhang 2022: "the first peak ground reaction force was significantly increased" (no p)
        ("zhang2022_vgrf1", "", None, True),
        # Zhang 2025: "BW did not reduce the second peak of EKAM ... (p > 0.05)"
        ("zhang2025_ekam2", ">", 0.05, False),
        # WKU abstract: vertical GRFs "significantly higher during BW ... (p = 0.0057)"
        ("wku_ijes_vgrf", "=", 0.0057, True),
        # WKU abstract: knee compressive force "(p = 0.07) indicates a possible trend"
        ("wku_ijes_kneeforce", "=", 0.07, False),
        # Paes 2016: jogging "were not significantly different" (no p)
        ("paes2016_vo2_2.46", "", None, False),
        # Masumoto 2007: HR "tended to be greater ... with a statistical significance at fast
        # speed (P<0.05)": the fast speed is significant, the other speeds a tendency only
        ("masumoto2007_hr_fast", "<", 0.05, True),
        ("masumoto2007_hr_other", "", None, False),
        # Wright & Weyand 2001: "at all eight speeds ... greater for backward" (no test stated)
        ("wright2001_metab_all", "", None, None),
        # Cavagna 2012: "Step frequency ... greater in backward running" (background sentence)
        ("cavagna2012_stepfreq", "", None, None),
    ],
)
def test_significance_read_in_source(data, row_id, relation, p, significant):
    row = data.loc[row_id]
    assert row["result_p_relation"] == relation
    if p is None:
        assert np.isnan(row["result_p_value"])
    else:
        assert row["result_p_value"] == pytest.approx(p, rel=1e-12)
    assert row["result_significant"] is significant


def test_significance_columns_agree_with_the_statement_text(data):
    """The explicit columns repeat the p written in each row's own statement text."""
    res = data[data["result_only"] != ""]
    assert len(res) == 42
    for rid, x in res.iterrows():
        text = x["result_only"].split(";", 1)[1]
        found = re.findall(r"\bp\s*(<=|<|=|>)\s*(0?\.\d+(?:e-?\d+)?)", text, flags=re.IGNORECASE)
        if "only at 0% BWS" in text:  # the P<0.01 there is the interaction, not this row's test
            found = []
        if found:
            rel, p = found[0]
            assert (x["result_p_relation"], x["result_p_value"]) == (rel, float(p)), rid
        else:
            assert x["result_p_relation"] == "" and np.isnan(x["result_p_value"]), rid
        if x["result_only"].startswith("no_difference"):
            assert x["result_significant"] is False, rid
    numeric = data[data["result_only"] == ""]
    assert (numeric["result_p_relation"] == "").all()
    assert numeric["result_p_value"].isna().all()
    assert numeric["result_significant"].map(lambda v: v is None).all()


def test_significance_class_counts(data):
    """Counts of the 42 result-only rows by significance class, tallied from the sources."""
    res = data[data["result_only"] != ""]
    classes = res["result_significant"].map({True: "sig", False: "ns", None: "direction"})
    assert classes.value_counts().to_dict() == {"sig": 32, "ns": 6, "direction": 4}
    by_family = pd.crosstab(res["outcome_family"], classes)
    assert by_family.loc["energy"].to_dict() == {"direction": 1, "ns": 2, "sig": 12}
    assert by_family.loc["knee_adduction"].to_dict() == {"direction": 0, "ns": 1, "sig": 6}


def test_direction_statements_carry_what_the_likelihood_needs(data):
    ds = evidence.direction_statements(data).set_index("row_id")
    for col in (
        "n",
        "direction",
        "result_p_relation",
        "result_p_value",
        "result_significant",
        "speed_low_m_s",
        "speed_high_m_s",
        "speed_backward_m_s",
        "primary",
        "design",
        "citation_key",
        "energy_basis",
    ):
        assert col in ds.columns, col
    # Wright & Weyand 2001: "eight treadmill speeds from 1.75 to 3.50 m s-1"
    w = ds.loc["wright2001_metab_all"]
    assert (w["speed_low_m_s"], w["speed_high_m_s"]) == (1.75, 3.5)
    assert w["energy_basis"] == "not_stated" and w["result_significant"] is None
    # Flynn 1994 running at 160.8 m/min both directions; n not in the abstract
    f = ds.loc["flynn1994_vo2_run"]
    assert f["speed_backward_m_s"] == pytest.approx(160.8 / 60, abs=1e-3) and pd.isna(f["n"])
    assert f["result_significant"] is True and f["design"] == "within"
    assert f["citation_key"] == "flynn1994" and f["energy_basis"] == "gross"
    # the "smoother ride" remark is no second vote beside the derived force
    assert not ds.loc["cavagna2012_ride", "primary"]
    assert ds.loc["zhang2022_ekam1", "energy_basis"] == ""


# --------------------------------------------------------------------------- energy basis


def test_energy_basis_of_every_energy_row(data, effects):
    energy = data[data["outcome_family"] == "energy"]
    assert set(energy["energy_basis"]) <= {"gross", "net", "not_stated"}
    assert (data.loc[data["outcome_family"] != "energy", "energy_basis"] == "").all()
    # VO2 in mL/kg/min as measured: gross (Williford 1998, Kim & Choi 2001)
    for rid in ("williford1998_vo2_1.34", "williford1998_vo2_2.23", "kim2001_vo2"):
        assert data.loc[rid, "energy_basis"] == "gross"
    # Wright & Weyand 2001 abstract: "Rates of oxygen uptake were measured to determine
    # metabolic rates" -- whether standing was subtracted is not said
    assert data.loc["wright2001_metab_3.0", "energy_basis"] == "not_stated"
    assert "not whether standing was subtracted" in data.loc["wright2001_metab_3.0", "notes"]
    assert effects.loc["wright2001_metab_3.0", "energy_basis"] == "not_stated"
    assert effects.loc["williford1998_vo2_2.23", "energy_basis"] == "gross"
    assert effects.loc["roos2012_pfj", "energy_basis"] == ""


# --------------------------------------------------------------------------- Williford, Flynn


def test_williford_fast_speed_is_running_by_inference(data, effects):
    """134.08 m/min: forward VO2 27.15 is near ACSM running (30.3), not walking (16.9)."""
    for rid in ("williford1998_vo2_2.23", "williford1998_hr_2.23"):
        row = data.loc[rid]
        assert row["mode"] == "run" and row["speed_as_reported"] == "134.08 m/min"
        assert "run inferred, not stated" in row["notes"] and "Hreljac" in row["notes"]
        assert effects.loc[rid, "mode"] == "run"
    assert data.loc["williford1998_vo2_1.34", "mode"] == "walk"


def test_flynn1994_n_left_missing_with_reason(data):
    flynn = data[data["study_key"] == "flynn1994"]
    assert len(flynn) == 4 and flynn["n"].isna().all()
    assert flynn["notes"].str.contains("n left missing").all()


def test_hooper2004_doi_read_in_record_mirror(data):
    h = data.loc["hooper2004_vo2_g5"]
    assert (h["doi"], h["pmid"]) == ("10.2519/jospt.2004.34.2.65", "15029939")
    bib = (ROOT / "retrosim" / "data" / "references.bib").read_text(encoding="utf-8")
    entry = bib.split("@article{hooper2004,", 1)[1].split("\n}", 1)[0]
    assert "doi     = {10.2519/jospt.2004.34.2.65}" in entry


# --------------------------------------------------------------------------- Cavagna derived force


def test_cavagna_peak_force_derived_by_hand(data, effects):
    """Abstract: peak upward COM acceleration 13.2 (forward) vs 15.7 m/s^2 (backward).

    Peak vertical force F = m (g + a): 1 + 13.2/9.80665 = 2.34603 and 1 + 15.7/9.80665 =
    2.60095 BW, i.e. backward +10.87 %.
    """
    acc = data.loc["cavagna2012_accel"]
    assert (acc["forward_mean"], acc["backward_mean"]) == (13.2, 15.7)
    d = effects.loc["cavagna2012_accel_vgrf_derived"]
    assert d["outcome"] == "vgrf_peak_bw" and d["outcome_family"] == "vgrf"
    assert d["derived_from"] == "cavagna2012_accel" and d["effect_from"] == "derived_from_accel"
    assert d["forward_mean"] == pytest.approx(2.346025, abs=1e-6)
    assert d["backward_mean"] == pytest.approx(2.600954, abs=1e-6)
    assert d["yi"] == pytest.approx(math.log((1 + 15.7 / G) / (1 + 13.2 / G)), rel=1e-12)
    assert d["pct_change"] == pytest.approx(10.866, abs=1e-3)
    # delta method: each CV^2 scales by (a / (g + a))^2, the correlation is the source's
    src = effects.loc["cavagna2012_accel"]
    vf = src["v_forward"] * (13.2 / (G + 13.2)) ** 2
    vb = src["v_backward"] * (15.7 / (G + 15.7)) ** 2
    vi = vf + vb - 2 * 0.5 * math.sqrt(vf * vb)
    assert d["vi"] == pytest.approx(vi, rel=1e-12)
    assert d["dispersion_imputed"] and src["dispersion_imputed"]
    assert d["n"] == 9 and d["primary"] and d["mode"] == "run"
    # the derived row is code, not data
    assert "cavagna2012_accel_vgrf_derived" not in data.index
    raw = pd.read_csv(LIT / "comparisons.csv", dtype=str, keep_default_na=False)
    assert not (raw["outcome"].eq("vgrf_peak_bw") & raw["result_only"].eq("")).any()


def test_peak_force_helper_by_hand():
    assert evidence.peak_force_bw_from_accel(0.0) == 1.0
    assert evidence.peak_force_bw_from_accel(G) == pytest.approx(2.0, rel=1e-12)
    np.testing.assert_allclose(
        evidence.peak_force_bw_from_accel([13.2, 15.7]), [1 + 13.2 / G, 1 + 15.7 / G]
    )


def test_derived_variance_matches_monte_carlo(data):
    """Paired normal accelerations with the source's CVs and r: the ln ratio of the mean peak
    forces has the derived row's variance."""
    es = evidence.effect_sizes(data, r=0.3).set_index("row_id")
    src, d = es.loc["cavagna2012_accel"], es.loc["cavagna2012_accel_vgrf_derived"]
    n = 9
    sd_f = math.sqrt(src["v_forward"] * n) * 13.2
    sd_b = math.sqrt(src["v_backward"] * n) * 15.7
    cov = [[sd_f**2, 0.3 * sd_f * sd_b], [0.3 * sd_f * sd_b, sd_b**2]]
    rng = np.random.default_rng(20260213)
    acc = rng.multivariate_normal([13.2, 15.7], cov, size=(40000, n)).mean(axis=1)
    lrr = np.log((1 + acc[:, 1] / G) / (1 + acc[:, 0] / G))
    assert lrr.var(ddof=1) == pytest.approx(d["vi"], rel=0.05)
    assert lrr.mean() == pytest.approx(d["yi"], abs=0.01)


def test_derived_row_follows_imputation_and_family_filter(data):
    without = evidence.effect_sizes(data, impute=False)
    assert not {"cavagna2012_accel", "cavagna2012_accel_vgrf_derived"} & set(without["row_id"])
    vgrf = evidence.effect_sizes(data, outcome_family="vgrf")
    assert set(vgrf["row_id"]) == {"roos2012_grf", "cavagna2012_accel_vgrf_derived"}
    full = evidence.effect_sizes(data).set_index("row_id")
    np.testing.assert_allclose(
        vgrf.set_index("row_id")["vi"], full.loc[vgrf["row_id"], "vi"], rtol=1e-12
    )
    gait = evidence.effect_sizes(data, outcome_family="gait").set_index("row_id")
    assert gait.loc["cavagna2012_accel", "vi"] == pytest.approx(
        full.loc["cavagna2012_accel", "vi"], rel=1e-12
    )


def test_cavagna_smoother_ride_statement(data):
    """Abstract: the catapult-like mechanism, "although requiring greater energy expenditure and
    not providing a smoother ride" -- an authors' reading, kept as a non-primary statement."""
    row = data.loc["cavagna2012_ride"]
    assert row["outcome"] == "vgrf_peak_bw" and row["result_only"].startswith("backward>forward")
    assert not row["primary"] and row["result_significant"] is None
    assert "smoother ride" in row["notes"] and row["locator"] == "abstract"


# --------------------------------------------------------------------------- leads


def test_unreadable_new_evidence_stays_in_leads(data):
    leads = pd.read_csv(LIT / "leads.csv", dtype=str, keep_default_na=False)
    leads = leads.set_index("lead_key")
    for key in ("jsr2004_selfselected", "zhang2015_oarsi", "devita1991"):
        assert leads.loc[key, "status"].startswith("not in dataset"), key
    assert "not a comparison" in leads.loc["hreljac2005_transition", "status"]
    # Hreljac 2005 abstract: "The EOTS (1.85 +/- 0.09 m/s) was significantly greater than the
    # BPTS (1.63 +/- 0.11 m/s)"; no forward transition speed, so no row
    assert "1.63 +/- 0.11 m/s" in leads.loc["hreljac2005_transition", "status"]
    assert not data["study_key"].str.startswith(("hreljac", "devita", "jsr")).any()
    bib = evidence.load_references(ROOT / "retrosim" / "data" / "references.bib")
    assert "hreljac2005" in bib


# --------------------------------------------------------------------------- command line


def test_cli_shows_derived_force_and_significance_table(tmp_path, capsys):
    out = tmp_path / "es.csv"
    assert cli.main(["evidence", "--plain", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cavagna2012_accel_vgrf_derived" in text and "Result-only rows by significance" in text
    line = next(x for x in text.splitlines() if "cavagna2012_accel_vgrf_derived" in x)
    assert "2.346" in line and "2.601" in line and "+10.9" in line
    es = pd.read_csv(out, keep_default_na=False)
    assert {"energy_basis", "derived_from"} <= set(es.columns)
