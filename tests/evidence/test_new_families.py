"""The muscle-activity, ankle, training and habituation tables (issue 17): shipped values as read
in their sources, and clear errors for bad rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from retrosim.errors import InputError
from retrosim.evidence import tables

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "retrosim" / "data"


@pytest.fixture
def lit(tmp_path):
    out = tmp_path / "literature"
    shutil.copytree(DATA / "literature", out)
    shutil.copy(DATA / "references.bib", tmp_path / "references.bib")
    return out


def _edit(path, row_id, column, value):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    i = df.index[df["row_id"] == row_id][0]
    df.loc[i, column] = value
    df.to_csv(path, index=False)
    return int(i) + 1


def test_emg_rows_keep_the_source_normalisation():
    emg = tables.load_family("emg")
    assert len(emg) == 26 and set(emg["outcome_family"]) == {"emg"}
    # J Chiropr Med 2018 (PMID 30846913, abstract): EMG "normalized by respective MVIC's",
    # MF and ES higher backward, P < .001, 21 + 21 participants
    mf = emg.loc["jcm2018_emg_multifidus"]
    assert mf["unit"] == "%MVIC" and mf["n"] == 42
    assert (mf["result_p_relation"], mf["result_p_value"]) == ("<", 0.001)
    assert set(emg["unit"]) <= set(tables.EMG_UNITS)
    st = tables.direction_statements(emg)
    # hand count of the staged rows: 17 higher backward, 5 lower, 4 no difference
    assert st["direction"].value_counts().to_dict() == {
        "backward>forward": 17,
        "backward<forward": 5,
        "no_difference": 4,
    }


def test_emg_unit_outside_the_accepted_set_is_rejected(lit):
    row = _edit(lit / "emg.csv", "jcm2018_emg_multifidus", "unit", "mV")
    with pytest.raises(InputError, match="%MVIC") as exc:
        tables.load_family("emg", lit)
    assert Path(exc.value.file).name == "emg.csv"
    assert (exc.value.row, exc.value.column) == (row, "unit")


def test_families_stay_in_their_files(lit):
    emg = pd.read_csv(lit / "emg.csv", dtype=str, keep_default_na=False)
    cp = pd.read_csv(lit / "comparisons.csv", dtype=str, keep_default_na=False)
    pd.concat([cp, emg.iloc[:1]]).to_csv(lit / "comparisons.csv", index=False)
    with pytest.raises(InputError, match=r"kept in emg\.csv") as exc:
        tables.load(lit)
    assert (exc.value.row, exc.value.column) == (len(cp) + 1, "outcome")
    with pytest.raises(InputError, match="holds family 'ankle'"):
        shutil.copy(lit / "emg.csv", lit / "ankle.csv")
        tables.load_family("ankle", lit)
    with pytest.raises(InputError, match="unknown family"):
        tables.load_family("energy", lit)


def test_training_rows_as_read():
    tr = tables.load_training()
    assert len(tr) == 42
    # Negra et al. 2022 (PMID 36913532, abstract): RBRT n = 20, control n = 16, between-group
    # "improved performance on all performance tasks more than the CG ... p <= 0.05"
    neg = tr.loc["negra2022_linear"]
    assert (neg["n_train"], neg["n_control"]) == (20, 16)
    assert neg["result"] == "improved_vs_control" and neg["vs_control"]
    assert (neg["result_p_relation"], neg["result_p_value"]) == ("<=", 0.05)
    # Uthoff et al. 2020 (abstract): BRT 26, control 24, BRT vs CON p <= 0.01
    ut = tr.loc["uthoff2020_10m_sprint_vs_con"]
    assert (ut["n_train"], ut["n_control"], ut["control_kind"]) == (26, 24, "passive")
    # Ordway et al. 2016: uncontrolled, forward running economy -2.54 %
    od = tr.loc["ordway2016_fw_running_economy"]
    assert od["design"] == "uncontrolled" and od["pct_change_train_reported"] == -2.54


@pytest.mark.parametrize(
    ("row_id", "column", "value", "match"),
    [
        ("negra2022_linear", "control_kind", "placebo", "expected one of passive"),
        ("negra2022_linear", "n_train", "twenty", "expected a number"),
        ("ordway2016_vo2max", "result_only", "improved_vs_control; x", "uncontrolled"),
        ("hadfield2017_hamstring_interaction", "result_significant", "true", "not significant"),
        ("ansari2020_pain", "result_p_value", "", "together"),
        ("cha2016_step", "outcome_class", "speed", "expected one of sprint_jump"),
    ],
)
def test_bad_training_rows_name_file_row_column(lit, row_id, column, value, match):
    row = _edit(lit / "training.csv", row_id, column, value)
    with pytest.raises(InputError, match=match) as exc:
        tables.load_training(lit)
    assert Path(exc.value.file).name == "training.csv"
    assert exc.value.row == row
    assert exc.value.column == column or (column, exc.value.column) == (
        "result_p_value",
        "result_p_relation",
    )


def test_habituation_rows_as_read(lit):
    hb = tables.load_habituation()
    # Heath et al. (abstract): VO2 2.05 +/- 0.56 to 1.66 +/- 0.28 L/min, baseline to week 4, n = 8
    base, wk4 = hb.loc["heath2001_vo2_l_min_baseline"], hb.loc["heath2001_vo2_l_min_week4"]
    assert (base["mean"], wk4["mean"], base["n"], base["unit"]) == (2.05, 1.66, 8, "L/min")
    row = _edit(lit / "habituation.csv", "heath2001_hr_bpm_week4", "disp_kind", "none")
    with pytest.raises(InputError, match="disp_kind") as exc:
        tables.load_habituation(lit)
    assert Path(exc.value.file).name == "habituation.csv" and exc.value.row == row


def test_claim_sources_are_complete():
    cs = pd.read_csv(DATA / "claims" / "claim_sources.csv", dtype=str, keep_default_na=False)
    assert cs["quote_id"].is_unique and len(cs) == 87
    assert set(cs["article_file"].str[:3]) == {"000", "001", "002", "003", "004"}
    testable = cs["testable"] != "not_a_testable_claim"
    assert (cs.loc[testable, "registry_claim"] != "").all()
    assert (cs.loc[~testable, "registry_claim"] == "").all()
