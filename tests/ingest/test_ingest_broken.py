"""A corpus of broken lab folders, each made from a good one by one change.

Every one must end with exit code 2, one clear message naming the file and the row or
stage and what was expected, and no output folder.
"""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from retrosim.cli import main
from retrosim.ingest import synthetic


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good") / "lab"
    synthetic.make_lab_folder(root, seed=4, n_participants=3, speeds_m_s=(3.0,), rest_s=150.0,
                              stage_s=150.0, force_s=2.5)  # fmt: skip
    return root


def _protocol(d, fn):
    p = d / "protocol.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df = fn(df)
    df.to_csv(p, index=False)


def _cart(d, fn, name="cart/P01.csv"):
    p = d / name
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    fn(df).to_csv(p, index=False)


def _force_file(d):
    prot = pd.read_csv(d / "protocol.csv", dtype=str, keep_default_na=False)
    return d / prot.loc[prot["force_file"] != "", "force_file"].iloc[0]


def _force(d, fn):
    p = _force_file(d)
    x = pd.read_csv(p)["fz_n"].to_numpy(float)
    x = fn(x)
    with gzip.open(p, "wt") as fh:
        fh.write("fz_n\n" + "\n".join(f"{v:g}" for v in x) + "\n")


def _set(col, value, row=1):
    def f(df):
        df.loc[row, col] = value
        return df

    return f


def _shift_time(df):
    t = df["time_s"].astype(float).to_numpy().copy()
    t[50], t[51] = t[51], t[50]
    df["time_s"] = t
    return df


def _scale(col, k):
    def f(df):
        df[col] = (df[col].astype(float) * k).round(4).astype(str)
        return df

    return f


def _gap(df):
    t = df["time_s"].astype(float)
    return df[~((t > 160.0) & (t < 300.0))]


def _no_rate(df):
    df["force_rate_hz"] = ""
    return df


def _xlsx(d):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["Zeit", "Sauerstoff"])
    wb.active.append([1, 2])
    wb.save(d / "cart" / "P01.xlsx")
    _protocol(d, lambda df: df.assign(cart_file=df["cart_file"].str.replace(
        "P01.csv", "P01.xlsx")))  # fmt: skip


def _semicolons(d):
    p = d / "protocol.csv"
    p.write_text(p.read_text().replace(",", ";"))


def _rest_force(df):
    f = df.loc[df["stage_type"] == "exercise", "force_file"].iloc[0]
    df.loc[0, "force_file"] = f
    df.loc[0, "force_rate_hz"] = "1000"
    return df


def _overlap(df):
    df.loc[1, "start_s"] = str(float(df.loc[0, "end_s"]) - 30.0)
    return df


def _dup(df):
    df.loc[2, "stage"] = df.loc[1, "stage"]
    return df


def _rename_force(d):
    p = _force_file(d)
    p.rename(p.with_name("trial.dat"))
    _protocol(d, lambda df: df.replace({"force_file": {str(p.relative_to(d)): str(
        p.with_name("trial.dat").relative_to(d))}}))  # fmt: skip


def _use_markers(d, *, column=True, label="end run 1"):
    """Mark the end of P01's first running stage in the cart file and use it in the protocol."""
    prot = pd.read_csv(d / "protocol.csv", dtype=str, keep_default_na=False)
    end = float(prot.loc[1, "end_s"])
    if column:

        def mark(df):
            t = df["time_s"].astype(float)
            df["marker"] = ""
            df.loc[int((t - end).abs().idxmin()), "marker"] = "end run 1"
            return df

        _cart(d, mark)
    prot.loc[1, "end_s"] = ""
    prot["end_marker"] = ""
    prot.loc[1, "end_marker"] = label
    prot.to_csv(d / "protocol.csv", index=False)


CASES = {
    # protocol sheet
    "no_protocol": (lambda d: (d / "protocol.csv").unlink(), "protocol", "expected one row"),
    "missing_mass_column": (
        lambda d: _protocol(d, lambda df: df.drop(columns="mass_kg")),
        "protocol.csv",
        "required column 'mass_kg'",
    ),
    "unknown_column": (
        lambda d: _protocol(d, lambda df: df.assign(speed_kmh="10")),
        "protocol.csv",
        "unknown column 'speed_kmh'",
    ),
    "end_before_start": (
        lambda d: _protocol(d, _set("end_s", "10")),
        "row 2",
        "expected end_s > start_s",
    ),
    "overlapping_stages": (
        lambda d: _protocol(d, _overlap),
        "overlaps stage",
        "expected stages that do not overlap",
    ),
    "stage_shorter_than_window": (
        lambda d: _protocol(d, _set("end_s", "200")),
        "stage 'run_3",
        "shorter than the steady-state window",
    ),
    "missing_cart_file": (
        lambda d: (d / "cart" / "P02.csv").unlink(),
        "protocol.csv",
        "does not exist",
    ),
    "missing_force_file": (
        lambda d: _force_file(d).unlink(),
        "column 'force_file'",
        "does not exist",
    ),
    "no_direction": (
        lambda d: _protocol(d, _set("direction", "")),
        "row 2",
        "an exercise stage needs direction",
    ),
    "mass_in_pounds": (
        lambda d: _protocol(d, _set("mass_kg", "300")),
        "column 'mass_kg'",
        "outside (20, 250] kg",
    ),
    "speed_in_kmh": (
        lambda d: _protocol(d, _set("speed_m_s", "10.8")),
        "column 'speed_m_s'",
        "outside (0, 10] m/s",
    ),
    "duplicate_stage": (lambda d: _protocol(d, _dup), "rows 2, 3", "stage name repeats"),
    "semicolons": (_semicolons, "protocol.csv", "separated by semicolons"),
    "rest_stage_with_force": (
        lambda d: _protocol(d, _rest_force),
        "row 1",
        "force files on running stages only",
    ),
    "start_and_marker": (
        lambda d: _protocol(d, lambda df: df.assign(start_marker="go")),
        "rows 1, 2",
        "give start_s or start_marker, not both",
    ),
    "no_stage_end": (
        lambda d: _protocol(d, _set("end_s", "")),
        "row 2",
        "missing stage end: give end_s [s] or end_marker",
    ),
    "marker_not_found": (
        lambda d: _use_markers(d, label="end run 2"),
        "stage 'run_3",
        "marker 'end run 2' is not in the cart file",
    ),
    "marker_without_column": (
        lambda d: _use_markers(d, column=False),
        "P01.csv",
        "expected a 'marker' column",
    ),
    # cart files
    "cart_time_not_increasing": (
        lambda d: _cart(d, _shift_time),
        "row 52",
        "expected strictly increasing breath times",
    ),
    "cart_litres_labelled_ml": (
        lambda d: _cart(d, _scale("vo2_ml_min", 0.001)),
        "P01.csv",
        "expected 50-8000 mL/min",
    ),
    "cart_no_vo2_column": (
        lambda d: _cart(d, lambda df: df.rename(columns={"vo2_ml_min": "oxygen"})),
        "P01.csv",
        "no VO2 column",
    ),
    "cart_unit_in_name_unknown": (
        lambda d: _cart(d, lambda df: df.rename(columns={"vo2_ml_min": "vo2_ml_h"})),
        "P01.csv",
        "expected one of vo2_ml_min",
    ),
    "cart_text_cell": (
        lambda d: _cart(d, _set("vco2_ml_min", "n/a?", row=10)),
        "row 11",
        "expected mL/min",
    ),
    "cart_negative_vo2": (
        lambda d: _cart(d, _set("vo2_ml_min", "-5", row=20)),
        "row 21",
        "expected values >= 0",
    ),
    "stage_outside_recording": (
        lambda d: _cart(d, lambda df: df.iloc[:40]),
        "stage 'run_3",
        "expected the stage inside the recording",
    ),
    "stage_without_breaths": (
        lambda d: _cart(d, _gap),
        "stage 'run_3",
        "valid breaths in its window",
    ),
    "unknown_vendor_layout": (_xlsx, "P01.xlsx", "unknown vendor layout"),
    # force files
    "force_no_sampling_rate": (
        lambda d: _protocol(d, _no_rate),
        "missing sampling rate",
        "never guessed",
    ),
    "force_saturated": (
        lambda d: _force(d, lambda x: np.minimum(x, 0.8 * x.max())),
        "saturated",
        "expected no clipping",
    ),
    "force_zero_offset": (
        lambda d: _force(d, lambda x: x + 200.0),
        "zero offset",
        "re-zero the plate",
    ),
    "force_flat": (lambda d: _force(d, lambda x: 0.0 * x), "flat", "live force channel"),
    "force_unknown_type": (_rename_force, "trial.dat", "expected .csv"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_folder(name, good, tmp_path, capsys):
    mutate, where, expected = CASES[name]
    d = tmp_path / "lab"
    shutil.copytree(good, d)
    mutate(d)
    out = tmp_path / "out"
    code = main(["ingest", str(d), "--out", str(out), "--no-figures"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("retrosim: input error:"), err
    assert where in err, err
    assert expected in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_corpus_size():
    assert len(CASES) >= 20


def test_good_folder_passes(good, tmp_path, capsys):
    code = main(["ingest", str(good), "--out", str(tmp_path / "out"), "--no-figures"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "trials.csv").exists()


def test_foreign_output_folder_is_refused(good, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("keep me")
    assert main(["ingest", str(good), "--out", str(out)]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]


def test_markers_instead_of_times(good, tmp_path):
    from retrosim.ingest import process_folder

    d = tmp_path / "lab"
    shutil.copytree(good, d)
    _use_markers(d)
    by_marker = process_folder(d).stages
    by_time = process_folder(good).stages
    assert abs(by_marker.loc[1, "end_s"] - by_time.loc[1, "end_s"]) < 3.0  # nearest breath
    assert by_marker.loc[1, "vo2_ml_min"] == pytest.approx(by_time.loc[1, "vo2_ml_min"], rel=0.01)
