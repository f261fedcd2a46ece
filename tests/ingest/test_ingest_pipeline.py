"""End to end: the shipped synthetic lab folder through retrosim ingest and retrosim fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retrosim.cli import main
from retrosim.config import DATA_DIR
from retrosim.trials import schema as trial_schema

EXAMPLE = DATA_DIR / "examples" / "lab_raw"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest") / "lab"
    assert main(["-q", "ingest", str(EXAMPLE), "--out", str(out)]) == 0
    return out


def test_outputs(ingested):
    names = {p.name for p in ingested.iterdir()}
    assert {"trials.csv", "stages.csv", "steps.csv", "qc.md", "ingest.json", "figures"} <= names
    trials = trial_schema.validate_trials(ingested / "trials.csv", outcome="vo2_ml_kg_min")
    truth = json.loads((EXAMPLE / "truth.json").read_text())
    n_ex = sum(s["speed_m_s"] is not None for s in truth["stages"])
    assert len(trials) == n_ex
    assert trials["synthetic"].all()
    for col in ("contact_time_s", "loading_rate_avg_bw_s", "impulse_bw_s_km", "energy_w"):
        assert trials[col].notna().all(), col
    # forefoot (backward) landings: no impact peak reported, forward ones have one
    back = trials["direction"] == "backward"
    assert trials.loc[back, "impact_peak_bw"].isna().all()
    assert trials.loc[~back, "impact_peak_bw"].notna().all()
    qc = (ingested / "qc.md").read_text()
    assert "SYNTHETIC" in qc and "peronnet1991" in qc
    figs = list((ingested / "figures").glob("*.png"))
    assert len(figs) == truth["settings"]["n_participants"] + n_ex
    meta = json.loads((ingested / "ingest.json").read_text())
    assert "protocol.csv" in meta["inputs"] and meta["synthetic"]


def test_net_energy_subtracts_rest(ingested):
    st = pd.read_csv(ingested / "stages.csv")
    rest = st[st["stage_type"] == "rest"].set_index("participant_id")["energy_w"]
    ex = st[st["stage_type"] == "exercise"]
    assert np.allclose(ex["net_energy_w"], ex["energy_w"] - rest.loc[ex["participant_id"]].values)


def test_rerun_replaces_earlier_output(ingested, capsys):
    before = (ingested / "trials.csv").read_text()
    assert main(["-q", "ingest", str(EXAMPLE), "--out", str(ingested), "--no-figures"]) == 0
    assert (ingested / "trials.csv").read_text() == before
    assert not (ingested / "figures").exists()  # the whole folder was replaced
    assert not [p for p in ingested.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_fit_recovers_direction_effect(ingested, tmp_path, capsys):
    out = tmp_path / "fit"
    code = main(["-q", "fit", str(ingested / "trials.csv"), "--out", str(out), "--draws", "1000",
                 "--tune", "1000", "--chains", "2", "--seed", "3"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ratio = pd.read_csv(out / "ratio.csv")
    truth = json.loads((EXAMPLE / "truth.json").read_text())
    true = truth["population_backward_forward_vo2_ratio"]
    for r in ratio.itertuples():
        t = true[f"{r.speed_m_s:g}"]
        assert r.ratio_q5 < t < r.ratio_q95, (r, t)
        assert abs(r.ratio_median / t - 1) < 0.05
