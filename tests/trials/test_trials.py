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
from retrosim.trials.fit import simulate_trials
from retrosim.trials.schema import OUTCOMES, SCHEMA, read_trials, schema_table, validate_trials


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


def test_seed_is_required():
    from retrosim.trials.fit import TrialFit

    with pytest.raises(InputError, match="seed"):
        TrialFit().fit(_base())
    with pytest.raises(InputError, match="integer seed"):
        fit_trials(_base(), seed=1.5)


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
        [sys.executable, "-m", "retrosim", *map(str, args)],
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


# ----------------------------------------------------------------------------- fitting

from retrosim.config import DATA_DIR, SOURCE_ROOT  # noqa: E402
from retrosim.trials import report as trial_report  # noqa: E402
from retrosim.trials.fit import fit_trials, mixedlm_crosscheck  # noqa: E402

FIXED = ("intercept", "beta_direction", "beta_speed", "beta_direction_speed", "beta_log_mass")


@pytest.fixture(scope="module")
def sim():
    return simulate_trials(n_participants=10, speeds_m_s=(2.0, 2.5, 3.0, 3.5), n_trials=2, seed=11)


@pytest.fixture(scope="module")
def fitted(sim):
    df, _ = sim
    return fit_trials(df, "vo2_ml_kg_min", draws=500, tune=500, chains=4, seed=3)


def test_fit_recovers_known_parameters(fitted, sim):
    _, truth = sim
    assert fitted.diagnostics_.passed, str(fitted.diagnostics_)
    coef = fitted.summary().to_dataframe()
    for name in (*FIXED, "sigma_trial", "sigma_participant", "sigma_participant_direction"):
        row = coef.loc[name]
        assert abs(row["median"] - truth[name]) < 3 * row["sd"], (name, row["median"], truth)


def test_point_estimates_agree_with_mixedlm(fitted, sim):
    df, _ = sim
    ref = mixedlm_crosscheck(df, "vo2_ml_kg_min")
    coef = fitted.summary().to_dataframe()
    for name in FIXED:
        assert (
            abs(coef.loc[name, "mean"] - ref.loc[name, "estimate"])
            < 0.2 * ref.loc[name, "se"] + 0.003
        ), (name, coef.loc[name, "mean"], ref.loc[name, "estimate"])
    assert coef.loc["sigma_trial", "median"] == pytest.approx(ref.loc["sigma_trial", "estimate"],
                                                             rel=0.1)  # fmt: skip


def test_ratios_match_the_data(fitted):
    # independent of the model: geometric mean over participants of mean(backward)/mean(forward)
    obs = trial_report.observed_ratios(fitted)
    geo = obs.groupby("speed_m_s")["ratio"].apply(lambda r: float(np.exp(np.log(r).mean())))
    pop = fitted.ratio_.set_index("speed_m_s")
    assert list(pop.index) == list(geo.index)
    assert np.allclose(pop["ratio_median"], geo, atol=0.02)
    assert (pop["ratio_q5"] < pop["ratio_median"]).all()
    # at the reference speed the ratio is exp(beta_direction)
    at_ref = fitted.ratio_at(fitted.speed_ref_m_s_)["ratio_median"].iloc[0]
    assert at_ref == pytest.approx(np.exp(fitted.summary().to_dataframe().loc["beta_direction", "median"]),
                                   rel=1e-3)  # fmt: skip
    pr = fitted.participant_ratio_
    assert len(pr) == 10 * 4 and set(pr["participant_id"]) == set(obs["participant_id"])


def test_posterior_predictive_and_loo(fitted):
    assert 0.8 < fitted.ppc_["coverage_90"] < 0.99
    for k, p in fitted.ppc_["p_values"].items():
        assert 0.02 < p < 0.98, (k, p)
    assert fitted.loo_ is not None
    assert np.isfinite(float(fitted.loo_.elpd))
    assert (np.asarray(fitted.loo_.pareto_k) < 0.7).mean() > 0.95
    pp = fitted.prior_predictive_summary()
    assert pp["q5"] < 20 < 60 < pp["q95"]  # priors wide enough to cover plausible VO2


def test_informative_prior_update_matches_normal_approximation(fitted, sim):
    df, _ = sim
    m_hat = fitted.prior_update_["posterior_mean"]
    s_hat = fitted.prior_update_["posterior_sd"]  # ~ the likelihood under the wide prior
    # a prior that disagrees mildly (two likelihood SDs): the normal approximation holds. (A
    # strongly conflicting prior is partly absorbed by the participant direction effects.)
    m0, s0 = m_hat - 2 * s_hat, 1.2 * s_hat
    strong = fit_trials(df, "vo2_ml_kg_min", prior_direction=(m0, s0), draws=500, tune=500,
                        chains=4, seed=4)  # fmt: skip
    w0, w1 = 1 / s0**2, 1 / s_hat**2
    expect_mean = (w0 * m0 + w1 * m_hat) / (w0 + w1)
    expect_sd = (w0 + w1) ** -0.5
    pu = strong.prior_update_
    assert pu["posterior_mean"] == pytest.approx(expect_mean, abs=0.25 * abs(m_hat - m0))
    assert pu["posterior_sd"] == pytest.approx(expect_sd, rel=0.2)
    assert pu["prior_mean"] == m0 and pu["prior_sd"] == s0


def test_claim_verdicts(fitted):
    tab = fitted.claim_verdicts()
    assert {"claim", "reading", "verdict"} <= set(tab.columns)
    energy = tab[(tab["claim"] == "energy_20_30") & (tab["reading"] == "per_minute_same_speed")]
    assert len(energy) == 1
    bd = fitted.idata_["posterior"]["beta_direction"].values.ravel()
    from retrosim.meta import claims

    c = next(c for c in claims.CLAIMS if c.key == "energy_20_30")  # the range as read
    lo, hi = 1 + c.low_pct / 100, 1 + c.high_pct / 100
    expect = np.mean((np.exp(bd) >= lo) & (np.exp(bd) <= hi))
    assert energy["p_in_range"].iloc[0] == pytest.approx(expect, abs=1e-9)
    assert "supported" not in set(tab["verdict"])  # one lab = one study: at most plausible
    knee = tab[tab["claim"].str.startswith("knee")]
    assert (knee["verdict"] == "not testable with these data").all()


def test_write_outputs_and_read_back(fitted, tmp_path):
    out = tmp_path / "fit"
    written = trial_report.write_outputs(fitted, out)
    assert sorted(p.name for p in written) == sorted(trial_report.OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]
    tree = trial_report.read_fit(out / "fit.nc")
    bd = np.asarray(tree["posterior"]["beta_direction"].values)
    assert np.allclose(np.sort(bd.ravel()),
                       np.sort(fitted.idata_["posterior"]["beta_direction"].values.ravel()))  # fmt: skip
    assert tree["ratio"]["ratio"].attrs["units"] == "1"
    report = (out / "report.md").read_text()
    assert "synthetic" in report and "| energy_20_30 |" in report
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert summary.loc["beta_direction", "median"] == pytest.approx(
        fitted.summary().to_dataframe().loc["beta_direction", "median"]
    )


def test_nothing_written_when_output_fails(fitted, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(trial_report, "plot_fit", boom)
    with pytest.raises(RuntimeError):
        trial_report.write_outputs(fitted, tmp_path / "fit")
    assert list(tmp_path.iterdir()) == []


def test_summary_speaks_the_results_api(fitted):
    from retrosim.bayes.results import Summary

    s = fitted.summary()
    assert isinstance(s, Summary)
    tab = s.to_dataframe()
    assert list(tab.columns) == ["mean", "sd", "eti90_lb", "median", "eti90_ub", "r_hat",
                                 "ess_bulk", "ess_tail", "meaning"]  # fmt: skip
    assert "sigma_trial" in tab.index and "beta_walk" not in tab.index  # only fitted terms
    # the numbers are the draws' own statistics (ArviZ), 5 % and 95 % quantiles as bounds
    bd = fitted.posterior_draws_["beta_direction"]
    row = tab.loc["beta_direction"]
    assert row["median"] == pytest.approx(np.median(bd), rel=1e-9)
    assert row["sd"] == pytest.approx(bd.std(ddof=1), rel=1e-6)
    assert (row["eti90_lb"], row["eti90_ub"]) == pytest.approx(np.quantile(bd, [0.05, 0.95]))
    text = str(s)
    assert "vo2_ml_kg_min [mL/kg/min]" in text and "participants 10" in text
    assert "backward/forward ratio (population):" in text and "5%" in text
    assert "<table" in s._repr_html_()
    assert fitted.to_dataframe().loc["beta_direction", "mcse_mean"] > 0
    assert fitted.plot("parameters").get_yticklabels()[0].get_text() in tab.index


def test_public_draws_ratio_and_predictive(fitted):
    # at the reference speed the log ratio is the direction effect itself, draw by draw
    bd = fitted.idata_["posterior"]["beta_direction"].values.ravel()
    at_ref = fitted.log_ratio_draws([fitted.speed_ref_m_s_])[:, 0]
    assert np.array_equal(at_ref, bd)
    per = fitted.log_ratio_draws([2.0, 3.5], participant=True)
    assert per.shape == (bd.size, fitted.n_participants_, 2)
    assert fitted.modes_ == ["run"]
    [(mode, speeds)] = fitted.conditions_
    assert mode == "run" and list(speeds) == [2.0, 2.5, 3.0, 3.5]
    rep = fitted.posterior_predictive_
    assert rep.shape == (fitted.ppc_["n_draws"], fitted.n_obs_)
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    y = np.log(fitted.data_["vo2_ml_kg_min"].to_numpy())
    assert np.mean((y >= lo) & (y <= hi)) == pytest.approx(fitted.ppc_["coverage_90"])


def test_compile_cache_reuses_the_model_on_new_data(fitted, sim):
    from retrosim.trials.fit import TrialFit

    df, _ = sim
    cache = {}
    kw = dict(draws=500, tune=500, chains=4, seed=3, compile_cache=cache)
    first = TrialFit("vo2_ml_kg_min", **kw).fit(df)
    for name, draws in fitted.posterior_draws_.items():  # first use: the fresh compile's draws
        assert np.array_equal(first.posterior_draws_[name], draws), name
    # the same design with every outcome 10 % higher: only the intercept moves, by ln 1.1
    scaled = TrialFit("vo2_ml_kg_min", **kw).fit(df.assign(vo2_ml_kg_min=df["vo2_ml_kg_min"] * 1.1))
    assert len(cache) == 1  # compiled once, the second table fed through with_data
    coef, ref = scaled.to_dataframe(), fitted.summary().to_dataframe()
    shift = {"intercept": np.log(1.1)}
    for name in FIXED:
        diff = coef.loc[name, "mean"] - ref.loc[name, "mean"] - shift.get(name, 0.0)
        assert abs(diff) < 0.25 * ref.loc[name, "sd"], (name, diff)


def test_plots_leave_the_matplotlib_backend_alone(fitted, monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    def no_switch(*args, **kwargs):
        raise AssertionError("a plot switched the matplotlib backend")

    monkeypatch.setattr(matplotlib, "use", no_switch)
    before = plt.get_fignums()
    for kind in ("ratio", "ppc", "prior_update"):
        ax = fitted.plot(kind)
        assert ax.has_data()
    assert plt.get_fignums() == before  # not a pyplot figure: nothing to close
    fig, (a1, a2) = plt.subplots(1, 2)
    assert fitted.plot("ratio", ax=a2) is a2 and a2.has_data() and not a1.has_data()
    plt.close(fig)


def test_example_file_is_valid_synthetic_and_matches_its_truth():
    import json

    from retrosim.models import energetics

    path = DATA_DIR / "examples" / "synthetic_trials.csv"
    df = validate_trials(path, outcome="vo2_ml_kg_min")
    assert df["synthetic"].all()
    truth = json.loads((DATA_DIR / "examples" / "synthetic_trials_truth.json").read_text())
    speeds = np.array(truth["speeds_m_s"])
    f = energetics.metabolic_rate("acsm", speeds, 70.0, "forward", "run")["vo2_gross_ml_kg_min"]
    b = energetics.metabolic_rate("acsm", speeds, 70.0, "backward", "run")["vo2_gross_ml_kg_min"]
    assert np.allclose(list(truth["true_ratio_by_speed"].values()), b / f, rtol=1e-9)
    assert len(df) == truth["n_participants"] * 2 * len(speeds) * truth["n_trials"]


def test_cli_fit_writes_outputs(tmp_path, capsys):
    from retrosim.cli import main

    out = tmp_path / "fit"
    code = main(["fit", str(DATA_DIR / "examples" / "synthetic_trials.csv"), "--outcome",
                 "energy_w", "--out", str(out), "--draws", "300", "--tune", "300",
                 "--chains", "2", "--allow-unconverged"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "retrosim: error" not in captured.err, captured.err
    assert (out / "fit.nc").exists() and (out / "report.md").exists()
    assert "backward/forward ratio" in captured.out


def test_coverage_replicate_runs():
    sys.path.insert(0, str(SOURCE_ROOT / "studies"))
    try:
        import trial_coverage
    finally:
        sys.path.pop(0)
    res = trial_coverage.run_replicate(7, n_participants=5, speeds_m_s=(2.0, 3.0), draws=200,
                                       tune=200, chains=2)  # fmt: skip
    for name in trial_coverage.CHECKED:
        assert isinstance(res[f"{name}_covered"], bool)
    summary = trial_coverage.summarise(pd.DataFrame([res]))
    assert summary["n_replicates"] == 1


def test_design_of_mixed_modes_and_parameterization_rule():
    from retrosim.trials.fit import choose_parameterization, make_design

    run, _ = simulate_trials(n_participants=4, speeds_m_s=(2.5, 3.0), seed=1, mode="run")
    walk, _ = simulate_trials(n_participants=4, speeds_m_s=(1.0, 1.4), seed=2, mode="walk")
    walk["mass_kg"] = walk["participant_id"].map(run.groupby("participant_id")["mass_kg"].first())
    design = make_design(
        validate_trials(pd.concat([run, walk], ignore_index=True)), "vo2_ml_kg_min"
    )
    cols = design.columns()
    assert {"beta_walk", "beta_direction_walk"} <= set(cols)
    assert np.allclose(cols["beta_direction_walk"], design.d * design.walk)
    assert design.mass_participant is not None and "beta_log_mass" not in cols
    # many precise trials per participant -> centred; one noisy trial each -> non-centred
    form = choose_parameterization("auto", design)
    assert form["participant"] == "centered"
    noisy, _ = simulate_trials(n_participants=8, speeds_m_s=(2.0,), n_trials=1, seed=3,
                               params={"sigma_trial": 0.3, "sigma_participant": 0.01,
                                       "sigma_participant_direction": 0.01})  # fmt: skip
    d2 = make_design(validate_trials(noisy), "vo2_ml_kg_min")
    assert choose_parameterization("auto", d2) == {"participant": "noncentered",
                                                    "participant_direction": "noncentered"}  # fmt: skip
    with pytest.raises(InputError, match="parameterization"):
        choose_parameterization("sideways", d2)


def test_direction_prior_from_meta_adds_between_study_spread():
    from retrosim.trials.fit import direction_prior_from_meta

    class FakeMeta:  # the interface of retrosim.meta.model.MetaResult that is used
        def __init__(self):
            rng = np.random.default_rng(12345)  # not the seed of the added spread
            self._alpha = rng.normal(0.26, 0.03, 20000)
            self._tau = np.column_stack([np.full(20000, 0.1), np.full(20000, 0.04)])

        def effect_draws(self, family, *, mode, matching, speed_m_s):
            assert (family, mode, matching) == ("energy", "run", "same")
            return self._alpha

        def family_index(self, family):
            return 1

        def draws(self, name):
            assert name == "tau_study"
            return self._tau

    m, sd = direction_prior_from_meta(FakeMeta(), "energy", speed_m_s=3.0, predictive=False)
    assert m == pytest.approx(0.26, abs=0.002) and sd == pytest.approx(0.03, rel=0.03)
    m, sd = direction_prior_from_meta(FakeMeta(), "energy", speed_m_s=3.0)
    assert sd == pytest.approx(np.hypot(0.03, 0.04), rel=0.03)
