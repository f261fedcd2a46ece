"""Lab-trial input: the broken-file corpus, the schema, the fit, recovery and MixedLM agreement.

The bad-input corpus is generated into ``tmp_path`` from one valid table: each case breaks it
in one way and must give an InputError that names the problem, through the Python API and
through ``retrosim fit`` (exit code 2, one message, no traceback, no output folder).
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retrosim.errors import InputError
from retrosim.trial_schema import OUTCOMES, SCHEMA, read_trials, schema_table, validate_trials
from retrosim.trials import simulate_trials


def _base() -> pd.DataFrame:
    df, _ = simulate_trials(n_participants=4, speeds_m_s=(2.0, 3.0), n_trials=2, seed=5)
    df["sex"] = np.where(df["participant_id"].isin(["P01", "P03"]), "female", "male")
    df["age_y"] = 30.0
    df["vo2_ml_kg_min"] = df["vo2_ml_kg_min"].round(2)
    return df


def _csv(df: pd.DataFrame, sep=",") -> bytes:
    return df.to_csv(index=False, sep=sep).encode()


def _edit(fn):
    def build():
        df = _base()
        return _csv(fn(df) if fn(df) is not None else df)

    return build


def _set(col, value, rows=(0,)):
    def fn(df):
        df = df.copy()
        df[col] = df[col].astype(object)
        for r in rows:
            df.loc[r, col] = value
        return df

    return fn


def _scale(col, factor):
    def fn(df):
        df = df.copy()
        df[col] = (df[col] * factor).round(3)
        return df

    return fn


def _rename(old, new):
    return lambda df: df.rename(columns={old: new})


def _drop(col):
    return lambda df: df.drop(columns=col)


def _only(participants):
    return lambda df: df[df["participant_id"].isin(participants)]


def _raw(text):
    return lambda: text


def _walk_kmh(df):
    df = df.copy()
    df["mode"] = "walk"
    df["speed_m_s"] = df["speed_m_s"].map({2.0: 4.5, 3.0: 5.5})
    return df


def _dup_row(df):
    return pd.concat([df, df.iloc[[3]]], ignore_index=True)


def _one_direction(df):
    return df[~((df["participant_id"] == "P02") & (df["direction"] == "backward"))]


def _ragged():
    lines = _csv(_base()).decode().splitlines()
    lines[3] = lines[3] + ",extra"
    return ("\n".join(lines) + "\n").encode()


def _dup_header():
    text = _csv(_base()).decode()
    head, rest = text.split("\n", 1)
    return (head.replace("age_y", "mass_kg") + "\n" + rest).encode()


def _latin1():
    df = _base()
    df["participant_id"] = df["participant_id"].str.replace("P01", "José")
    return df.to_csv(index=False).encode("latin-1")


# (case id, file bytes builder, regex the message must contain, extra read kwargs)
CORPUS = [
    ("empty", _raw(b""), r"empty \(0 bytes\)", {}),
    ("blank", _raw(b"\n\n   \n"), r"no content", {}),
    ("header_only", _raw(_csv(_base().iloc[:0])), r"header but no data rows", {}),
    ("semicolons", lambda: _csv(_base(), sep=";"), r"separated by semicolons", {}),
    ("tabs", lambda: _csv(_base(), sep="\t"), r"separated by tabs", {}),
    ("latin1", _latin1, r"not valid UTF-8.*line 2", {}),
    (
        "binary_xlsx",
        _raw(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U\x00"),
        r"UTF-8|binary",
        {},
    ),
    ("huge_rows", lambda: _csv(_base()), r"32 data rows, above the limit of 10", {"max_rows": 10}),
    ("huge_bytes", lambda: _csv(_base()), r"above the limit of", {"max_bytes": 100}),
    ("ragged_row", _ragged, r"do not line up with the header", {}),
    ("dup_header", _dup_header, r"'mass_kg'.* more than once", {}),
    ("missing_mass", _edit(_drop("mass_kg")), r"column 'mass_kg': required column missing", {}),
    ("misspelt_speed", _edit(_rename("speed_m_s", "speed_ms")), r"did you mean 'speed_m_s'", {}),
    (
        "misspelt_outcome",
        _edit(_rename("vo2_ml_kg_min", "vo2_ml_kgmin")),
        r"did you mean 'vo2_ml_kg_min'",
        {},
    ),
    ("kmh_column_name", _edit(_rename("speed_m_s", "speed_kmh")), r"convert km/h to m/s", {}),
    ("speed_kmh", _edit(_scale("speed_m_s", 3.6)), r"speed_m_s.*km/h", {}),
    ("walk_kmh", _edit(_walk_kmh), r"walking speeds .* likely km/h", {}),
    ("mass_pounds", _edit(_scale("mass_kg", 2.2046)), r"mass_kg.*pounds", {}),
    (
        "vo2_l_min",
        _edit(lambda df: df.assign(vo2_ml_kg_min=(df.vo2_ml_kg_min * 70 / 1000).round(3))),
        r"vo2_ml_kg_min.*L/min",
        {},
    ),
    (
        "text_in_speed",
        _edit(_set("speed_m_s", "fast", rows=(0, 5))),
        r"rows 1, 6, column 'speed_m_s': expected numbers \[m/s\], found text 'fast'",
        {},
    ),
    (
        "nan_outcome",
        _edit(_set("vo2_ml_kg_min", "NaN", rows=(7,))),
        r"row 8, column 'vo2_ml_kg_min': missing or NaN",
        {},
    ),
    (
        "empty_mass_cell",
        _edit(_set("mass_kg", "", rows=(2,))),
        r"row 3, column 'mass_kg': missing",
        {},
    ),
    ("negative_speed", _edit(_set("speed_m_s", -2.0)), r"row 1, column 'speed_m_s'.*outside", {}),
    (
        "absurd_mass",
        _edit(_set("mass_kg", 900.0, rows=(4,))),
        r"row 5, column 'mass_kg'.*900.*outside",
        {},
    ),
    ("absurd_age", _edit(_set("age_y", 300.0)), r"column 'age_y'.*outside the accepted range", {}),
    ("fractional_trial", _edit(_set("trial", 1.5)), r"column 'trial': expected whole numbers", {}),
    ("duplicate_row", _edit(_dup_row), r"rows 4, 33: duplicated trial", {}),
    ("one_participant", _edit(_only(["P01"])), r"only 1 participant", {}),
    ("one_direction", _edit(_one_direction), r"participant 'P02' has only forward trials", {}),
    (
        "unknown_direction",
        _edit(_set("direction", "backwards", rows=(1,))),
        r"unknown label 'backwards'.*did you mean 'backward'",
        {},
    ),
    (
        "unknown_mode",
        _edit(_set("mode", "jog", rows=(1, 2))),
        r"rows 2, 3, column 'mode'.*'jog'",
        {},
    ),
    ("unknown_sex", _edit(_set("sex", "x", rows=(0,))), r"column 'sex': unknown label 'x'", {}),
    ("no_outcome", _edit(_drop("vo2_ml_kg_min")), r"no outcome column", {}),
]


def _write(tmp_path, case):
    name, build, _, _ = case
    path = tmp_path / f"{name}.csv"
    path.write_bytes(build())
    return path


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


def test_base_table_is_valid(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_bytes(_csv(_base()))
    df = validate_trials(read_trials(path), outcome="vo2_ml_kg_min")
    assert len(df) == 32
    assert set(df["direction"]) == {"forward", "backward"}
    assert df["grade_pct"].eq(0).all() and df["session"].eq(1).all()


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_file_gives_input_error(tmp_path, case):
    path = _write(tmp_path, case)
    _, _, pattern, kwargs = case
    with pytest.raises(InputError) as exc:
        validate_trials(read_trials(path, **kwargs), outcome="vo2_ml_kg_min")
    assert exc.value.problems, "the problem list is attached"
    assert str(path) in str(exc.value)
    assert re.search(pattern, str(exc.value), flags=re.S), str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "nothing written"


def test_every_problem_reported_at_once():
    df = _base()
    df["speed_m_s"] = df["speed_m_s"].astype(object)
    df.loc[0, "speed_m_s"] = "fast"
    df.loc[1, "direction"] = "sideways"
    df.loc[2, "mass_kg"] = 500.0
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    df = df.rename(columns={"age_y": "age_yr"})
    with pytest.raises(InputError) as exc:
        validate_trials(df, outcome="vo2_ml_kg_min")
    kinds = {(p.kind, p.column) for p in exc.value.problems}
    assert ("text", "speed_m_s") in kinds
    assert ("label", "direction") in kinds
    assert ("range", "mass_kg") in kinds
    assert ("column", "age_yr") in kinds
    assert any(p.kind == "duplicate" for p in exc.value.problems)
    assert str(exc.value).startswith("5 problems found")


def test_dataframe_rows_are_index_labels():
    df = _base()
    df.index = df.index + 100
    df.loc[103, "mass_kg"] = -1.0
    with pytest.raises(InputError) as exc:
        validate_trials(df, outcome="vo2_ml_kg_min")
    assert exc.value.problems[0].rows == (103,)
    assert exc.value.row == 103 and exc.value.column == "mass_kg"


def test_outcome_not_in_file_and_unknown_outcome():
    with pytest.raises(InputError, match=r"'hr_bpm' is not a column.*vo2_ml_kg_min"):
        validate_trials(_base(), outcome="hr_bpm")
    with pytest.raises(InputError, match="did you mean 'hr_bpm'"):
        validate_trials(_base(), outcome="hr_bmp")


def test_schema_is_published_data():
    tab = schema_table()
    assert list(tab["column"]) == list(SCHEMA)
    required = set(tab.loc[tab["required"] == "yes", "column"])
    assert required == {"participant_id", "direction", "mode", "speed_m_s", "mass_kg"}
    for name in OUTCOMES:
        units = SCHEMA[name]["units"]
        assert units, name
    assert tab.set_index("column").loc["speed_m_s", "units"] == "m/s"


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "retrosim.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_schema():
    res = _cli("fit", "--schema")
    assert res.returncode == 0
    assert "speed_m_s" in res.stdout and "vo2_ml_kg_min" in res.stdout


def _cli_args(tmp_path, case):
    path = _write(tmp_path, case)
    extra = ["--max-rows", case[3]["max_rows"]] if "max_rows" in case[3] else []
    extra += ["--max-bytes", case[3]["max_bytes"]] if "max_bytes" in case[3] else []
    return path, ["fit", path, "--outcome", "vo2_ml_kg_min", "--out", tmp_path / "out", *extra]


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_cli_bad_file_exit_2_one_message_no_output(tmp_path, case, capsys):
    from retrosim.cli import main

    path, args = _cli_args(tmp_path, case)
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("retrosim: input error:") and err.count("retrosim:") == 1, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "no output written"


@pytest.mark.parametrize("name", ["latin1", "speed_kmh"])
def test_cli_subprocess_no_traceback(tmp_path, name):
    path, args = _cli_args(tmp_path, next(c for c in CORPUS if c[0] == name))
    res = _cli(*args)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("retrosim: input error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
