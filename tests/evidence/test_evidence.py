"""retrosim.evidence.tables: the published dataset, its validation and the effect-size formulas."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrosim import cli
from retrosim.errors import InputError
from retrosim.evidence import tables as evidence

ROOT = Path(__file__).resolve().parents[2]
LIT = ROOT / "retrosim" / "data" / "literature"


@pytest.fixture(scope="module")
def data():
    return evidence.load()


# --------------------------------------------------------------------------- the real data


def test_every_row_is_sourced(data):
    assert data["row_id"].is_unique
    assert (data["citation_key"] != "").all()
    assert (data["locator"] != "").all()
    has_id = (data["doi"] != "") | (data["pmid"] != "") | data["id_note"].str.startswith("none")
    assert has_id.all()
    keys = evidence.load_references(ROOT / "retrosim" / "data" / "references.bib")
    assert set(data["citation_key"]) <= keys


def test_published_values_read_from_data(data):
    # Roos et al. 2012 abstract, pairs (FR; BR): PFJCF 4.5+-1.5 vs 3.4+-1.4 BW.
    roos = data.loc["roos2012_pfj"]
    assert (roos["forward_mean"], roos["backward_mean"]) == (4.5, 3.4)
    assert roos["n"] == 20 and roos["design"] == "within"
    # Williford 1998 at 80.45 m/min: VO2 12.42 vs 15.95 mL/kg/min.
    w = data.loc["williford1998_vo2_1.34"]
    assert (w["forward_mean"], w["backward_mean"]) == (12.42, 15.95)
    assert w["speed_forward_m_s"] == pytest.approx(80.45 / 60, abs=1e-3)


def test_non_independent_reports_share_group(data):
    assert data.loc["adesola_vo2_run", "group_key"] == "flynn1994"
    assert data.loc["lee2016_hr_pct", "group_key"] == "hooper2004"
    assert not data.loc["adesola_vo2_run", "independent_report"]


@pytest.mark.parametrize(
    ("speed_m_min", "mode", "rows"),
    [
        (80.45, "walk", ("williford1998_vo2_1.34", "williford1998_hr_1.34")),
        (134.08, "run", ("williford1998_vo2_2.23", "williford1998_hr_2.23")),
    ],
)
def test_williford_mode_inferred_from_forward_vo2(data, speed_m_min, mode, rows):
    """Williford 1998 does not say walk or run; each speed's mode is inferred from forward VO2.

    Abstract: forward VO2 12.42 mL/kg/min at 80.45 m/min and 27.15 at 134.08 m/min. The ACSM
    equations (computed here, independently of the data) give about 11.5 walking / 19.6
    running at the slow speed and 16.9 walking / 30.3 running at the fast one: the measured
    value is nearer the walking equation at 80.45 and the running equation at 134.08 m/min.
    """
    from retrosim.models import energetics

    v = speed_m_min / 60
    walk, run = float(energetics.acsm(v, "walk")), float(energetics.acsm(v, "run"))
    assert walk == pytest.approx(3.5 + 0.1 * speed_m_min)
    assert run == pytest.approx(3.5 + 0.2 * speed_m_min)
    vo2 = data.loc[rows[0], "forward_mean"]
    assert vo2 == {80.45: 12.42, 134.08: 27.15}[speed_m_min]
    nearer = "walk" if abs(vo2 - walk) < abs(vo2 - run) else "run"
    assert nearer == mode
    for row in rows:
        assert data.loc[row, "mode"] == mode
        assert data.loc[row, "speed_forward_m_s"] == pytest.approx(v, abs=1e-3)
        notes = data.loc[row, "notes"]
        assert f"{mode} inferred, not stated" in notes and data.loc[row, "locator"] == "abstract"
        # the ACSM values the note quotes are the ones computed here (one decimal)
        assert f"= {walk:.1f} mL/kg/min" in notes and f"= {run:.1f} mL/kg/min" in notes


def test_williford_results_dispersion_unclear(data):
    """The abstract labels only the sample description mean +/- SD, not the results."""
    w = data[data["study_key"] == "williford1998"]
    assert len(w) == 4 and (w["disp_kind"] == "unclear").all()
    es = evidence.effect_sizes(data).set_index("row_id")
    es = es.loc[w["row_id"]]
    assert (es["sd_converted_from"] == "unclear").all()
    assert not es["dispersion_imputed"].any() and np.isfinite(es["vi"]).all()
    # 'unclear' is read as an SD: the same variance as an sd-coded copy of the row
    as_sd = data.copy()
    as_sd.loc[w.index, "disp_kind"] = "sd"
    ref = evidence.effect_sizes(as_sd).set_index("row_id").loc[w["row_id"]]
    np.testing.assert_allclose(es["vi"], ref["vi"], rtol=1e-12)


def test_rasica_average_over_grades_is_not_level(data):
    """Rasica 2020 abstract: +35 % on average over level and uphill 0 to +25 % (5 % steps)."""
    r = data.loc["rasica2020_cost_avg"]
    assert r["pct_change_reported"] == 35 and r["locator"] == "abstract"
    assert np.isnan(r["grade_pct"])
    assert (r["grade_low_pct"], r["grade_high_pct"]) == (0, 25)
    assert r["grade_class"] == "uphill"
    es = evidence.effect_sizes(data).set_index("row_id").loc["rasica2020_cost_avg"]
    assert es["grade_class"] == "uphill" and es["grade_high_pct"] == 25
    # a level reading (level or no grade stated) leaves it out
    level = evidence.effect_sizes(data).query("grade_class in ['level', 'not_stated']")
    assert "rasica2020_cost_avg" not in set(level["row_id"])
    assert "roos2012_pfj" in set(level["row_id"])  # no grade stated: kept
    st = evidence.direction_statements(data).set_index("row_id")["grade_class"]
    assert (st["chaloupka1997_vo2_g0"], st["chaloupka1997_vo2_g5"]) == ("level", "uphill")


def test_grade_class_by_hand():
    nan = np.nan
    got = evidence.grade_class(
        [0, 5, -3, nan, nan, nan, nan, nan],
        [nan, nan, nan, 0, 0, -10, -10, nan],
        [nan, nan, nan, 25, 0, 10, 0, nan],
    )
    assert list(got) == [
        "level", "uphill", "downhill", "uphill", "level", "mixed", "downhill", "not_stated"
    ]  # fmt: skip


def test_bws_stride_frequency_is_the_average_over_support_levels(data):
    """BWS abstract: stride frequency +11.3 % backward regardless of BWS (0, 20, 50 %)."""
    row = data.loc["bwsabstract_stride_freq"]
    assert row["pct_change_reported"] == 11.3
    assert "0, 20, 50%" in row["condition"] and "regardless of BWS" in row["notes"]
    gait = pd.read_csv(
        ROOT / "retrosim" / "data" / "parameters" / "gait.csv", dtype=str, keep_default_na=False
    )
    g = gait[gait["name"] == "stride_frequency_ratio"].iloc[0]
    assert g["citation_key"] == "bwsabstract"
    assert float(g["value"]) == pytest.approx(1 + row["pct_change_reported"] / 100)
    assert "regardless of body-weight support" in g["note"]
    assert "not a value at 0 % support" in g["note"] and "MSSE" not in g["citation"]


def test_identifiers_read_in_sources(data):
    """Chaloupka 1997: DOI as printed in the PubMed and Web of Science record mirrors.

    Kim & Choi 2001: no DOI or PMID on the journal's record; its citation line is
    J Korean Acad Rehabil Med 2001;25(3):474-478 (e-arm.org record header).
    """
    ch = data.loc["chaloupka1997_vo2_g0"]
    assert (ch["doi"], ch["pmid"]) == ("10.2519/jospt.1997.25.5.302", "9130146")
    bib = (ROOT / "retrosim" / "data" / "references.bib").read_text(encoding="utf-8")
    entry = bib.split("@article{chaloupka1997,", 1)[1].split("\n}", 1)[0]
    assert "doi     = {10.2519/jospt.1997.25.5.302}" in entry and "{302--306}" in entry
    kim = data.loc["kim2001_vo2"]
    assert kim["doi"] == "" and kim["pmid"] == "" and kim["id_note"].startswith("none")
    assert "2001;25(3):474-478" in kim["id_note"]
    entry = bib.split("@article{kim2001,", 1)[1].split("\n}", 1)[0]
    assert "{25}" in entry and "{3}" in entry and "{474--478}" in entry
    leads = pd.read_csv(LIT / "leads.csv", dtype=str, keep_default_na=False)
    assert "DOI or PMID" in leads.set_index("lead_key").loc["kim2001_ids", "needed"]


def test_units_match_outcome_vocabulary(data):
    for out, unit in zip(data["outcome"], data["unit"], strict=True):
        assert evidence.OUTCOMES[out].unit == unit


# --------------------------------------------------------------------------- formulas


def test_effect_size_williford_by_hand(data):
    """ln(B/F) and paired variance for Williford 1998, 1.341 m/s VO2, from the raw numbers."""
    n, mf, sf, mb, sb, r = 13, 12.42, 2.29, 15.95, 2.45, 0.3
    v_f = sf**2 / (n * mf**2)
    v_b = sb**2 / (n * mb**2)
    vi = v_f + v_b - 2 * r * math.sqrt(v_f * v_b)
    es = evidence.effect_sizes(data, r=r).set_index("row_id").loc["williford1998_vo2_1.34"]
    assert es["yi"] == pytest.approx(math.log(15.95 / 12.42), rel=1e-12)
    assert es["pct_change"] == pytest.approx(100 * (15.95 / 12.42 - 1), rel=1e-12)
    assert es["v_forward"] == pytest.approx(v_f, rel=1e-12)
    assert es["v_backward"] == pytest.approx(v_b, rel=1e-12)
    assert es["vi"] == pytest.approx(vi, rel=1e-12)
    assert not es["dispersion_imputed"]


def test_effect_size_roos_by_hand(data):
    """Roos 2012 knee moment, 157+-54 vs 124+-51 N m, n = 20, at r = 0."""
    es = evidence.effect_sizes(data, r=0.0).set_index("row_id").loc["roos2012_moment"]
    assert es["yi"] == pytest.approx(math.log(124 / 157), rel=1e-12)
    assert es["vi"] == pytest.approx(54**2 / (20 * 157**2) + 51**2 / (20 * 124**2), rel=1e-12)
    assert es["pct_change"] == pytest.approx(-21.019, abs=1e-3)
    assert es["sd_converted_from"] == "unclear"


def test_paired_variance_matches_published_worked_example():
    """vcmeta::se.meanratio.ps(21.9, 16.1, 3.82, 3.21, .748, 40) documents SE 0.02130161.

    Independent check of the formula against Bonett & Price (2020) as implemented in R.
    """
    v1 = 3.82**2 / (40 * 21.9**2)
    v2 = 3.21**2 / (40 * 16.1**2)
    vi = evidence._paired_vi(v1, v2, 0.748)
    assert math.sqrt(vi) == pytest.approx(0.02130161, abs=2e-8)


def test_paired_variance_matches_monte_carlo():
    """Delta-method variance vs simulated paired normal data with known correlation."""
    rng = np.random.default_rng(20240611)
    n, mf, mb, sf, sb, r = 25, 30.0, 38.0, 4.0, 5.0, 0.7
    cov = [[sf**2, r * sf * sb], [r * sf * sb, sb**2]]
    sims = rng.multivariate_normal([mf, mb], cov, size=(20000, n))
    lrr = np.log(sims[..., 1].mean(axis=1) / sims[..., 0].mean(axis=1))
    vi = evidence._paired_vi(sf**2 / (n * mf**2), sb**2 / (n * mb**2), r)
    assert lrr.var(ddof=1) == pytest.approx(vi, rel=0.05)
    independent = sf**2 / (n * mf**2) + sb**2 / (n * mb**2)
    assert lrr.var(ddof=1) < 0.6 * independent  # the covariance term matters


def test_se_and_ci_conversions():
    assert evidence.sd_from_se(6.0, 4) == pytest.approx(12.0)
    from scipy import stats

    h = 1.0
    assert evidence.sd_from_ci95(h, 10) == pytest.approx(math.sqrt(10) / stats.t.ppf(0.975, 9))
    # large n: approaches sqrt(n) * h / 1.96
    assert evidence.sd_from_ci95(h, 10_000) == pytest.approx(100 / 1.96, rel=1e-3)


def test_pct_change_row_with_sem(data):
    """Wright & Weyand 2001: +35 +- 6 % (SEM) -> yi = ln 1.35, vi = (0.06/1.35)^2."""
    es = evidence.effect_sizes(data).set_index("row_id").loc["wright2001_metab_3.0"]
    assert es["yi"] == pytest.approx(math.log(1.35))
    assert es["vi"] == pytest.approx((0.06 / 1.35) ** 2)


def test_imputation_flagged_and_switchable(data):
    with_imp = evidence.effect_sizes(data)
    without = evidence.effect_sizes(data, impute=False)
    assert with_imp["dispersion_imputed"].any()
    assert not without["dispersion_imputed"].any()
    imputed = set(with_imp.loc[with_imp["dispersion_imputed"], "row_id"])
    assert "kim2001_vo2" in imputed and "kim2001_vo2" not in set(without["row_id"])
    # Kim 2001 VO2 borrows the pooled CV of the Williford VO2 rows (same outcome).
    w = data.loc[["williford1998_vo2_1.34", "williford1998_vo2_2.23"]]
    cvs = np.r_[w["forward_disp"] / w["forward_mean"], w["backward_disp"] / w["backward_mean"]]
    cv2 = float(np.mean(cvs**2))
    expected = 2 * cv2 / 20 - 2 * 0.5 * cv2 / 20
    kim = with_imp.set_index("row_id").loc["kim2001_vo2"]
    assert kim["vi"] == pytest.approx(expected, rel=1e-12)


def test_variance_decreases_with_r(data):
    lo = evidence.effect_sizes(data, r=0.0).set_index("row_id")["vi"]
    hi = evidence.effect_sizes(data, r=0.9).set_index("row_id")["vi"]
    assert (hi.loc["roos2012_pfj"] < lo.loc["roos2012_pfj"]) and (hi > 0).all()


def test_correlation_bound_from_roos_p_value():
    # sd_d^2 = 54^2 + 51^2 - 2 r 54 51 must be <= (33 sqrt(20) / t_{0.995,19})^2
    from scipy import stats

    sd_d = 33 * math.sqrt(20) / stats.t.ppf(0.995, 19)
    r = (54**2 + 51**2 - sd_d**2) / (2 * 54 * 51)
    assert evidence.correlation_lower_bound(157, 54, 124, 51, 20, 0.01) == pytest.approx(r)
    assert r > 0.5


def test_family_filter_and_xarray(data):
    es = evidence.effect_sizes(data, outcome_family="pfj_force")
    assert set(es["outcome_family"]) == {"pfj_force"}
    ds = evidence.to_xarray(es)
    assert ds.sizes["comparison"] == len(es)
    assert ds["yi"].attrs["units"] == "1" and "long_name" in ds["vi"].attrs
    assert ds["speed_m_s"].attrs["units"] == "m/s"
    with pytest.raises(InputError):
        evidence.effect_sizes(data, outcome_family="calories")


def test_direction_statements(data):
    ds = evidence.direction_statements(data)
    assert set(ds["direction"]) <= set(evidence.RESULT_DIRECTIONS)
    paes = ds.set_index("row_id").loc["paes2016_vo2_2.46"]
    assert paes["direction"] == "no_difference"


def test_non_independent_reports_add_no_direction_vote(data):
    """Adesola & Azeez (copy of Flynn 1994) and Lee & Lee 2016 (Hooper 2004's results)."""
    marked = set(data.loc[~data["independent_report"], "study_key"])
    assert marked == {"adesola", "lee2016"}
    ds = evidence.direction_statements(data)
    assert ds["independent_report"].all()
    assert not {"adesola_vo2_run", "lee2016_hr_pct"} & set(ds["row_id"])
    every = evidence.direction_statements(data, independent_only=False)
    result_only = data[data["result_only"] != ""]
    assert len(every) == len(result_only)
    assert set(every["row_id"]) - set(ds["row_id"]) == {"adesola_vo2_run", "lee2016_hr_pct"}
    # the reports they duplicate still vote once each
    for group in ("flynn1994", "hooper2004"):
        assert (
            (ds["group_key"] == group).sum()
            == ((result_only["group_key"] == group) & result_only["independent_report"]).sum()
            > 0
        )


# --------------------------------------------------------------------------- corrupted copies


@pytest.fixture
def copy(tmp_path):
    lit = tmp_path / "literature"
    shutil.copytree(LIT, lit)
    shutil.copy(ROOT / "retrosim" / "data" / "references.bib", tmp_path / "references.bib")
    return lit


def _edit(path, row, column, value):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row - 1, column] = value
    df.to_csv(path, index=False)


def _row_of(path, row_id):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return int(np.flatnonzero(df["row_id"] == row_id)[0]) + 1


def _expect(lit, file, row, column, match):
    with pytest.raises(InputError, match=match) as exc:
        evidence.load(lit)
    assert Path(exc.value.file).name == file
    assert exc.value.row == row
    assert exc.value.column == column


def test_missing_column_rejected(copy):
    p = copy / "comparisons.csv"
    pd.read_csv(p, dtype=str, keep_default_na=False).drop(columns="backward_disp").to_csv(
        p, index=False
    )
    with pytest.raises(InputError, match="missing column") as exc:
        evidence.load(copy)
    assert exc.value.column == "backward_disp" and Path(exc.value.file).name == "comparisons.csv"


@pytest.mark.parametrize(
    ("row_id", "column", "value", "match"),
    [
        ("roos2012_pfj", "forward_mean", "4.5 BW", "expected a number"),
        ("williford1998_hr_2.23", "backward_disp", "-11", "must be >= 0"),
        ("kim2001_vo2", "speed_forward_m_s", "12", "km/h"),
        ("odu1998_pfj", "citation_key", "", "source"),
        ("odu1998_pfj", "locator", "", "source"),
        ("roos2012_moment", "row_id", "roos2012_pfj", "duplicate row_id"),
        ("roos2012_pfj", "unit", "N", "does not match outcome"),
        ("roos2012_pfj", "n", "0", ">= 1"),
    ],
)
def test_corrupted_comparison_rejected(copy, row_id, column, value, match):
    p = copy / "comparisons.csv"
    row = _row_of(p, row_id)
    _edit(p, row, column, value)
    _expect(copy, "comparisons.csv", row, column, match)


def test_file_without_grade_range_columns_still_loads(copy):
    """Backward compatibility: the grade-range columns are optional in the CSV."""
    p = copy / "comparisons.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.drop(columns=["grade_low_pct", "grade_high_pct"]).to_csv(p, index=False)
    old = evidence.load(copy)
    assert old["grade_low_pct"].isna().all() and old["grade_high_pct"].isna().all()
    assert old.loc["rasica2020_cost_avg", "grade_class"] == "not_stated"
    assert old.loc["hooper2004_vo2_g10", "grade_class"] == "uphill"
    # and effect sizes accept a frame built before grade_class existed
    es = evidence.effect_sizes(old.drop(columns=["grade_class", "grade_low_pct"]))
    assert "grade_class" in es.columns and len(es) == len(evidence.effect_sizes(old))


@pytest.mark.parametrize(
    ("row_id", "values", "column", "match"),
    [
        ("paes2016_vo2_2.46", {"result_significant": "true"}, "result_significant", "false"),
        ("flynn1994_vo2_run", {"result_significant": "false"}, "result_significant", "true"),
        ("flynn1994_vo2_run", {"result_significant": ""}, "result_significant", "true"),
        ("zhang2025_ekam2", {"result_significant": "true"}, "result_significant", "false"),
        ("wku_ijes_kneeforce", {"result_p_value": "0.01"}, "result_p_value", "contradicts"),
        ("flynn1994_vo2_run", {"result_p_value": ""}, "result_p_value", "together"),
        ("flynn1994_vo2_run", {"result_p_relation": "~"}, "result_p_relation", "expected one"),
        ("flynn1994_vo2_run", {"result_p_value": "1.5"}, "result_p_value", r"\(0, 1\)"),
        ("flynn1994_vo2_run", {"result_significant": "yes"}, "result_significant", "true, false"),
        ("roos2012_pfj", {"result_significant": "true"}, "result_significant", "numeric row"),
        ("williford1998_vo2_1.34", {"energy_basis": ""}, "energy_basis", "gross, net"),
        ("williford1998_hr_1.34", {"energy_basis": "gross"}, "energy_basis", "energy-family"),
        ("rasica2020_cost_avg", {"grade_low_pct": ""}, "grade_low_pct", "both"),
        (
            "rasica2020_cost_avg",
            {"grade_low_pct": "20", "grade_high_pct": "5"},
            "grade_low_pct",
            "exceeds",
        ),
        ("rasica2020_cost_avg", {"grade_pct": "0"}, "grade_pct", "not both"),
        ("rasica2020_cost_avg", {"grade_high_pct": "60"}, "grade_high_pct", "plausible range"),
    ],
)
def test_bad_coding_rejected(copy, row_id, values, column, match):
    """Significance coding, energy basis and grade range (module docstring of
    retrosim.evidence.tables): each error names the file, the row and the column."""
    p = copy / "comparisons.csv"
    row = _row_of(p, row_id)
    for col, value in values.items():
        _edit(p, row, col, value)
    _expect(copy, "comparisons.csv", row, column, match)


def test_file_without_significance_or_energy_columns_still_loads(copy):
    """Backward compatibility: these four columns are optional in the CSV too."""
    p = copy / "comparisons.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    cols = ["result_p_relation", "result_p_value", "result_significant", "energy_basis"]
    df.drop(columns=cols).to_csv(p, index=False)
    old = evidence.load(copy)
    assert (old["result_p_relation"] == "").all() and old["result_p_value"].isna().all()
    assert old["result_significant"].map(lambda v: v is None).all()
    assert (old["energy_basis"] == "").all()
    ds = evidence.direction_statements(old)
    assert ds["result_significant"].map(lambda v: v is None).all()
    # a frame built before the columns existed also works
    es = evidence.effect_sizes(old.drop(columns=cols))
    assert (es["energy_basis"] == "").all()


def test_citation_not_in_bib_rejected(copy):
    p = copy / "studies.csv"
    _edit(p, 1, "citation_key", "nobody2099")
    _expect(copy, "studies.csv", 1, "citation_key", "references.bib")


def test_duplicate_row_rejected(copy):
    p = copy / "comparisons.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    extra = df.iloc[[0]].copy()
    extra["row_id"] = "copy_of_first"
    pd.concat([df, extra]).to_csv(p, index=False)
    _expect(copy, "comparisons.csv", len(df) + 1, "row_id", "duplicate row")


# --------------------------------------------------------------------------- command line


def test_cli_writes_effect_sizes(tmp_path, capsys):
    out = tmp_path / "es.csv"
    assert cli.main(["evidence", "--plain", "--out", str(out), "--r", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "roos2012" not in text and "pfj_force_bw" in text
    es = pd.read_csv(out)
    assert {"yi", "vi", "dispersion_imputed"} <= set(es.columns)
    assert es.loc[es["row_id"] == "roos2012_pfj", "r"].item() == 0.3


def test_cli_bad_data_exit_2(copy, capsys):
    _edit(copy / "comparisons.csv", 1, "n", "-3")
    assert cli.main(["evidence", "--plain", "--data", str(copy), "--out", str(copy / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "comparisons.csv" in err and "row 1" in err and len(err.splitlines()) == 1


def test_study_without_identifier_rejected(copy):
    p = copy / "studies.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(df["study_key"] == "roos2012")[0]) + 1
    for col in ("doi", "pmid", "id_note"):
        _edit(p, row, col, "")
    _expect(copy, "studies.csv", row, "id_note", "no DOI or PMID")
