"""Real files from public repositories (tests/data/ingest/README.md) and unit handling.

Expected values are read in the files themselves (first breath of each export) or in the
test suite that ships the C3D file; energy coefficients in the sources named in
retrosim.ingest.cart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrosim.errors import InputError
from retrosim.ingest import cart, force
from retrosim.models.energetics import kcal_per_litre_o2

DATA = Path(__file__).parents[1] / "data" / "ingest"


def test_cosmed_english_breath_by_breath():
    """whippr's example COSMED export: first breath t = 00:00:02, VO2 379.96 mL/min."""
    c = cart.read_cart(DATA / "cosmed_whippr_example.xlsx")
    assert c.vendor == "cosmed"
    assert c.units["vo2"] == "ml/min" and c.units["time"] == "hh:mm:ss"
    assert c.n_breaths == 754
    assert c.time_s[:3].tolist() == [2.0, 4.0, 8.0]
    assert c.vo2_ml_min[0] == pytest.approx(379.96390090194785)
    assert c.vco2_ml_min[0] == pytest.approx(300.86701675292295)
    assert np.isnan(c.hr_bpm).all()  # the export writes HR 0: no belt worn
    assert c.mass_kg is None  # the weight field is empty in this export


def test_cosmed_german_with_body_mass():
    """spiro's COSMED test export (German labels): t 30 s, VO2 506.16 mL/min, 67.1 kg."""
    c = cart.read_cart(DATA / "cosmed_spiro_de.xlsx")
    assert c.vendor == "cosmed" and c.units["hr"] == "bpm"
    assert c.mass_kg == pytest.approx(67.1)
    assert c.time_s[0] == 30.0 and c.time_s[-1] == 120.0
    assert c.vo2_ml_min[0] == pytest.approx(506.1618208)


def test_cortex_litres_per_minute():
    """whippr's CORTEX step export: t 00:00:04,8; V'O2 0.298 l/min; HF 73 1/min."""
    c = cart.read_cart(DATA / "cortex_whippr_step.xlsx")
    assert c.vendor == "cortex" and c.units["vo2"] == "l/min"
    assert c.n_breaths == 792
    assert c.time_s[0] == pytest.approx(4.8)
    assert c.vo2_ml_min[0] == pytest.approx(298.0)  # 0.298 l/min
    assert c.vco2_ml_min[0] == pytest.approx(248.0)
    assert c.hr_bpm[0] == 73.0


def test_vendor_format_must_match(tmp_path):
    with pytest.raises(InputError, match="not a CORTEX export"):
        cart.read_cart(DATA / "cosmed_spiro_de.xlsx", "cortex")


def test_c3d_force_platforms_in_newtons():
    """ezc3d's Qualisys file: at frame 1001 platform 1 Fz = 763.647 N, platform 2 0.361 N
    (ezc3d test_binder_matlab_force_platform.m); 2000 Hz analog rate, 3400 samples."""
    fd = force.read_force(DATA / "qualisys_ezc3d.c3d")
    assert fd.kind == "c3d" and fd.rate_hz == 2000.0 and fd.fz_n.size == 3400
    assert fd.channels == ["platform 1 Fz [N]", "platform 2 Fz [N]"]
    assert fd.fz_n[1000] == pytest.approx(763.647 + 0.361, abs=2e-3)


def test_c3d_walking_is_refused_with_a_reason():
    """Walking over two plates: no flight phase, so the summed force is one long contact."""
    fd = force.read_force(DATA / "qualisys_ezc3d.c3d")
    with pytest.raises(InputError, match="expected a running recording with flight phases"):
        force.step_measures(fd, 80.0)


def _breaths(n=200, level=2500.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(1.5, 2.0, n))
    return t, level * (1 + 0.03 * rng.standard_normal(n))


@pytest.mark.parametrize(("column", "factor"), [("vo2_ml_min", 1.0), ("vo2_l_min", 1e-3),
                                                ("vo2_ml_kg_min", 1 / 70.0)])  # fmt: skip
def test_csv_units_give_the_same_vo2(tmp_path, column, factor):
    t, v = _breaths()
    p = tmp_path / "c.csv"
    gas = column.replace("vo2", "vco2")
    pd.DataFrame({"time_s": t, column: v * factor, gas: 0.9 * v * factor}).to_csv(p, index=False)
    c = cart.read_cart(p, mass_kg=70.0)
    assert np.allclose(c.vo2_ml_min, v) and np.allclose(c.vco2_ml_min, 0.9 * v)


def test_per_kg_needs_a_mass(tmp_path):
    t, v = _breaths()
    p = tmp_path / "c.csv"
    pd.DataFrame({"time_s": t, "vo2_ml_kg_min": v / 70, "vco2_ml_kg_min": v / 70}).to_csv(p)
    with pytest.raises(InputError, match="a body mass is needed"):
        cart.read_cart(p)


def test_clock_times(tmp_path):
    p = tmp_path / "c.csv"
    pd.DataFrame({"time": ["00:01:02", "0:01:04.5", "01:06,5"], "vo2_l_min": [2.0, 2.1, 2.2],
                  "vco2_l_min": [1.8, 1.9, 2.0]}).to_csv(p, index=False)  # fmt: skip
    assert cart.read_cart(p).time_s.tolist() == [62.0, 64.5, 66.5]


def test_peronnet_equation_reproduces_its_table():
    """The table of nonprotein RQ as stored in PAutilities (kcal/L O2 at RER 0.7036, 0.85,
    0.996: 4.851, 5.020, 5.189) follows from 16.89 + 4.84 RER kJ/L (thermochemical kcal)."""
    for rer, kcal in ((0.7036, 4.851), (0.85, 5.020), (0.996, 5.189)):
        w, ok = cart.energy_w(1000.0, 1000.0 * rer, "peronnet1991")  # 1 L/min
        assert w * 60 / 4184 == pytest.approx(kcal, abs=6e-4) and ok


def test_weir_matches_energetics_and_brockway_by_hand():
    w, _ = cart.energy_w(2000.0, 1700.0, "weir1949")
    assert w == pytest.approx(2.0 * kcal_per_litre_o2(0.85) * 4184 / 60)
    w, _ = cart.energy_w(2000.0, 1800.0, "brockway1987")
    assert w == pytest.approx((16.58 * 2.0 + 4.51 * 1.8) * 1000 / 60)


def test_rer_above_one_is_flagged():
    for eq in cart.ENERGY_EQUATIONS:
        assert not cart.energy_w(2000.0, 2100.0, eq)[1]
        assert cart.energy_w(2000.0, 1700.0, eq)[1]


def test_drifting_stage_is_flagged():
    t = np.arange(0, 300, 2.0)
    v = 2000.0 + 2.0 * t  # +240 mL/min over the last 120 s: 8 % of ~2.5 L/min
    c = cart.CartData(t, v, 0.9 * v, np.full(t.size, np.nan), np.arange(t.size), "csv")
    ss = cart.steady_state(c, 0.0, 298.0)
    assert not ss["steady"] and ss["drift"] == pytest.approx(240.0 / ss["vo2_ml_min"], rel=0.02)


def test_c3d_running_record_through_the_protocol(tmp_path):
    """A simulated running force written as C3D (ezc3d) gives the truth, like the CSV."""
    from retrosim.ingest import process_folder, synthetic
    from retrosim.models import gait

    lab = tmp_path / "lab"
    truth = synthetic.make_lab_folder(lab, seed=8, n_participants=3, speeds_m_s=(3.0,),
                                      rest_s=150.0, stage_s=150.0, force_s=2.0)  # fmt: skip
    rng = np.random.default_rng(1)
    g = gait.spring_mass_running(3.0, 70.0, direction="forward")
    fz, steps = synthetic.simulate_vgrf(float(g["contact_time_s"]), float(g["flight_time_s"]),
                                        70.0, rate_hz=1000.0, duration_s=6.0, rng=rng,
                                        impact=0.45)  # fmt: skip
    synthetic.write_force_c3d(lab / "force" / "long.c3d", fz, 1000.0)
    prot = pd.read_csv(lab / "protocol.csv", dtype=str, keep_default_na=False)
    i = prot.index[prot["stage"] == "run_3_forward"][0]
    prot.loc[i, ["mass_kg", "force_file", "force_rate_hz"]] = ["70", "force/long.c3d", ""]
    prot["force_start_s"] = ""
    prot["force_end_s"] = ""
    prot.loc[i, ["force_start_s", "force_end_s"]] = ["1.0", "5.0"]  # a window of the file
    prot.to_csv(lab / "protocol.csv", index=False)
    del truth
    res = process_folder(lab)
    row = res.stages.loc[i]
    inside = steps[(steps["onset_s"] > 1.0) & (steps["onset_s"] + steps["contact_time_s"] < 5.0)]
    assert row["n_contacts"] == len(inside)
    assert abs(row["contact_time_s"] - inside["contact_time_s"].mean()) < 0.002
    assert row["grf_bw"] == pytest.approx(inside["peak_n"].mean() / (70.0 * 9.80665), rel=0.02)
    assert "sign flipped" in row["force_notes"]  # ezc3d reports the platform's Fz negative
