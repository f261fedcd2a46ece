"""Synthetic lab folders with known truth, for tests, the notebook and the shipped example.

**Everything here is simulated, not measured.** :func:`make_lab_folder` writes a folder
laid out as a lab would hand it to ``retrosim ingest`` (``protocol.csv``, one plain-CSV
breath-by-breath cart file per participant, one vertical-force CSV per running stage)
and ``truth.json`` beside it, every file labelled synthetic.

How the signals are made (stated simulation choices, not published values):

* Steady-state VO2 of a stage: gross VO2 of :func:`retrosim.models.energetics.metabolic_rate`
  (ACSM running equation with the package's nominal backward factor) times a participant
  factor ``exp(u)``, a participant direction factor ``exp(+-v/2)`` and a stage factor
  ``exp(e)`` (``u``, ``v``, ``e`` normal with SDs ``sd_participant``, ``sd_direction``,
  ``sd_stage``). The rest stage sits at ``rest_vo2_ml_kg_min``.
* Breath-by-breath VO2: first-order on-kinetics from the previous stage's level (time
  constant ``tau_s``), breaths at gamma-distributed intervals, multiplicative Gaussian
  noise (``breath_cv``) and artefact breaths (probability ``p_artefact``, VO2 x 0.4-0.6 or
  x 1.5-1.8, as swallows or sighs). VCO2 = RER x VO2 with its own noise; heart rate a
  linear function of VO2 (illustrative).
* Vertical force of running: per step, contact and flight times from
  :func:`retrosim.models.gait.spring_mass_running` with step-to-step jitter; the force is a half
  sine (peak set so that the mean force over the step equals body weight) plus, forward
  only, an impact transient ``A sin^2(pi t / (2 t_i))`` for ``t < 2 t_i`` (rearfoot
  landings); backward steps have none (forefoot landings). Gaussian sample noise,
  a linear baseline drift and rounding to whole newtons.

The truth of each stage is computed from the noise-free model, on a 10 microsecond grid,
with the definitions of :mod:`retrosim.ingest.force` (contact time = time the model force
is above zero).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.units import G

__all__ = ["DEFAULTS", "make_lab_folder", "simulate_breaths", "simulate_vgrf", "write_force_c3d"]

LABEL = "SYNTHETIC - simulated by retrosim.ingest.synthetic, not measured on people"

#: Simulation settings (illustrative values chosen for this generator, not published).
DEFAULTS = {
    "n_participants": 6,
    "speeds_m_s": (2.5, 3.0),
    "rest_s": 360.0,
    "stage_s": 300.0,
    "force_s": 8.0,
    "force_rate_hz": 1000.0,
    "mass_mean_kg": 70.0,
    "mass_sd_kg": 8.0,
    "sd_participant": 0.06,
    "sd_direction": 0.03,
    "sd_stage": 0.02,
    "rest_vo2_ml_kg_min": 4.0,
    "tau_s": 25.0,
    "breath_rate_rest_min": 15.0,
    "breath_rate_run_min": 35.0,
    "breath_cv": 0.03,
    "p_artefact": 0.02,
    "rer_rest": 0.82,
    "rer_run": 0.88,
    "hr_rest_bpm": 65.0,
    "hr_per_ml_kg_min": 2.6,
    "step_jitter": 0.02,
    "impact_amplitude": 0.45,
    "impact_time": 0.1,
    "force_noise_n": 5.0,
    "force_drift_n": 12.0,
}


def simulate_breaths(levels, durations_s, *, rer, rng, tau_s=25.0, breath_rate_min=(15.0,),
                     breath_cv=0.03, p_artefact=0.02, start_level=None):  # fmt: skip
    """Breath-by-breath VO2 [mL/min] through consecutive stages with first-order kinetics.

    Parameters
    ----------
    levels : sequence of float
        Steady-state VO2 of each stage [mL/min].
    durations_s : sequence of float
        Stage lengths [s].
    rer : sequence of float
        Steady-state RER of each stage.
    breath_rate_min : sequence of float
        Mean breathing rate of each stage [breaths/min] (one value: all stages).

    Returns
    -------
    pandas.DataFrame
        ``time_s``, ``vo2_ml_min``, ``vco2_ml_min``, ``artefact`` (bool), ``stage`` (index).
    """
    levels = np.asarray(levels, float)
    rates = np.broadcast_to(np.asarray(breath_rate_min, float), levels.shape)
    t0, v0, r0 = 0.0, levels[0] if start_level is None else start_level, rer[0]
    out = []
    for s, (lev, dur, rr, br) in enumerate(zip(levels, durations_s, rer, rates, strict=True)):
        mean_dt = 60.0 / br
        n = int(dur / mean_dt * 1.3) + 10
        dt = rng.gamma(16.0, mean_dt / 16.0, n)  # CV of breath intervals 25 %
        t = t0 + np.cumsum(dt)
        t = t[t < t0 + dur]
        x = np.exp(-(t - t0) / tau_s)
        vo2 = lev + (v0 - lev) * x
        rer_t = rr + (r0 - rr) * x
        vo2_obs = vo2 * (1.0 + breath_cv * rng.standard_normal(t.size))
        vco2_obs = rer_t * vo2 * (1.0 + breath_cv * rng.standard_normal(t.size))
        art = rng.random(t.size) < p_artefact
        up = rng.random(t.size) < 0.5
        f = np.where(up, rng.uniform(1.5, 1.8, t.size), rng.uniform(0.4, 0.6, t.size))
        vo2_obs = np.where(art, vo2_obs * f, vo2_obs)
        vco2_obs = np.where(art, vco2_obs * f, vco2_obs)
        out.append(pd.DataFrame({"time_s": t, "vo2_ml_min": vo2_obs, "vco2_ml_min": vco2_obs,
                                 "artefact": art, "stage": s, "vo2_true": vo2}))  # fmt: skip
        t0 += dur
        v0 = lev + (v0 - lev) * np.exp(-dur / tau_s)
        r0 = rr + (r0 - rr) * np.exp(-dur / tau_s)
    return pd.concat(out, ignore_index=True)


def _step_force(tau, tc, peak, amp, ti):
    """Noise-free force of one step at times ``tau`` after touchdown [N]."""
    f = np.where((tau >= 0) & (tau <= tc), peak * np.sin(np.pi * np.clip(tau, 0, tc) / tc), 0.0)
    if amp > 0:
        bump = amp * np.sin(np.pi * np.clip(tau, 0, 2 * ti) / (2 * ti)) ** 2
        f = f + np.where((tau >= 0) & (tau <= 2 * ti), bump, 0.0)
    return f


def _step_truth(tc, peak, amp, ti, dt=1e-5):
    tau = np.arange(0.0, tc + dt / 2, dt)
    f = _step_force(tau, tc, peak, amp, ti)
    ipk = int(np.argmax(f))
    impact = np.nan
    if amp > 0:
        # first local maximum of the model force (the transient), before the active peak
        d = np.diff(f)
        loc = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0)) + 1
        loc = loc[loc < ipk]
        if loc.size:
            impact = float(f[loc[0]])
    ref = impact if np.isfinite(impact) else float(f[ipk])
    t20 = tau[np.argmax(f >= 0.2 * ref)]
    t80 = tau[np.argmax(f >= 0.8 * ref)]
    seg = (tau >= t20) & (tau <= t80)
    slope = np.gradient(f, dt)[seg].max()
    return {
        "contact_time_s": tc,
        "peak_n": float(f[ipk]),
        "impact_peak_n": impact,
        "loading_rate_avg_n_s": 0.6 * ref / (t80 - t20),
        "loading_rate_inst_n_s": float(slope),
        "impulse_n_s": 2.0 * peak * tc / np.pi + amp * ti,
    }


def simulate_vgrf(contact_s, flight_s, mass_kg, *, rate_hz, duration_s, rng, impact=0.0,
                  impact_time=0.1, jitter=0.02, noise_n=5.0, drift_n=12.0,
                  lead_s=0.1):  # fmt: skip
    """Vertical force of treadmill running [N] from spring-mass contact and flight times.

    Returns
    -------
    (force, truth)
        The sampled force (noise, drift, whole newtons) and a table of the true steps
        (onset time and the measures of each step, from the noise-free model).
    """
    bw = mass_kg * G
    t_end = duration_s
    steps, t = [], lead_s
    while True:
        tc = contact_s * (1.0 + jitter * rng.standard_normal())
        tf = flight_s * (1.0 + jitter * rng.standard_normal())
        if t + tc > t_end:
            break
        ti = impact_time * tc
        amp_frac = impact
        # mean force over the step = body weight: 2 P tc / pi + A ti = bw (tc + tf)
        # with A = amp_frac x P
        peak = bw * (tc + tf) / (2.0 * tc / np.pi + amp_frac * ti)
        amp = amp_frac * peak
        steps.append((t, tc, tf, peak, amp, ti))
        t += tc + tf
    n = round(duration_s * rate_hz)
    ts = np.arange(n) / rate_hz
    f = np.zeros(n)
    rows = []
    for on, tc, _tf, peak, amp, ti in steps:
        lo, hi = int(np.floor(on * rate_hz)), int(np.ceil((on + tc) * rate_hz)) + 1
        f[lo:hi] += _step_force(ts[lo:hi] - on, tc, peak, amp, ti)
        rows.append({"onset_s": on, **_step_truth(tc, peak, amp, ti)})
    drift = drift_n * ts / max(ts[-1], 1e-9)
    noisy = f + drift + noise_n * rng.standard_normal(n)
    truth = pd.DataFrame(rows)
    truth["flight_time_s"] = truth["onset_s"].shift(-1) - truth["onset_s"] - truth[
        "contact_time_s"]  # fmt: skip
    return np.round(noisy), truth


def write_force_c3d(path, fz_n, rate_hz, *, point_rate_hz=100.0):
    """Write a vertical force as a C3D file with one type-2 force platform (via ezc3d).

    The analog channels are Fx, Fy, Fz [N], Mx, My, Mz [N mm] (only Fz non-zero), the platform
    a 0.5 m square; the points hold one dummy marker. For tests of the C3D path.
    """
    import ezc3d

    fz = np.asarray(fz_n, float)
    per = round(rate_hz / point_rate_hz)
    n = (fz.size // per) * per
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = np.array([point_rate_hz])
    c["parameters"]["POINT"]["LABELS"]["value"] = ["dummy"]
    c["data"]["points"] = np.zeros((4, 1, n // per))
    an = c["parameters"]["ANALOG"]
    an["RATE"]["value"] = np.array([float(rate_hz)])
    an["LABELS"]["value"] = ["Fx1", "Fy1", "Fz1", "Mx1", "My1", "Mz1"]
    an["UNITS"]["value"] = ["N", "N", "N", "Nmm", "Nmm", "Nmm"]
    an["SCALE"]["value"] = np.ones(6)
    an["OFFSET"]["value"] = np.zeros(6, dtype=int)
    data = np.zeros((1, 6, n))
    data[0, 2] = fz[:n]
    c["data"]["analogs"] = data
    fp = c["parameters"]["FORCE_PLATFORM"]
    fp["USED"]["value"] = np.array([1], dtype=int)
    fp["TYPE"]["value"] = np.array([2], dtype=int)
    fp["CHANNEL"]["value"] = np.arange(1, 7, dtype=int).reshape(6, 1)
    corners = np.array([[500, 500, 0], [500, 0, 0], [0, 0, 0], [0, 500, 0]], float)
    fp["CORNERS"]["value"] = corners.T.reshape(3, 4, 1)
    fp["ORIGIN"]["value"] = np.array([[0.0], [0.0], [-30.0]])
    fp["CAL_MATRIX"]["value"] = np.zeros((6, 6, 1))
    c.write(str(path))


def _truth_means(steps: pd.DataFrame, mass_kg, speed_m_s):
    """Stage truth in trial-table units from the true steps wholly inside the record."""
    bw = mass_kg * G
    st = steps["onset_s"].diff().shift(-1).dropna()
    freq = 1.0 / float(st.mean())
    imp = steps["impact_peak_n"]
    return {
        "n_contacts": len(steps),
        "contact_time_s": float(steps["contact_time_s"].mean()),
        "flight_time_s": float(steps["flight_time_s"].dropna().mean()),
        "step_frequency_hz": freq,
        "grf_bw": float(steps["peak_n"].mean() / bw),
        "impact_peak_bw": float(imp.mean() / bw) if imp.notna().all() else None,
        "loading_rate_avg_bw_s": float(steps["loading_rate_avg_n_s"].mean() / bw),
        "loading_rate_inst_bw_s": float(steps["loading_rate_inst_n_s"].mean() / bw),
        "impulse_bw_s_step": float(steps["impulse_n_s"].mean() / bw),
        "impulse_bw_s_km": float(steps["impulse_n_s"].mean() / bw) * 1000.0 * freq / speed_m_s,
    }


def make_lab_folder(path, *, seed, overwrite=False, **settings) -> dict:
    """Write a synthetic lab folder (protocol, cart files, force files) and its truth.

    Parameters
    ----------
    path : path-like
        Folder to create.
    seed : int
        Required: every random number comes from ``numpy.random.default_rng(seed)``.
    overwrite : bool
        Replace the generated files of an existing folder.
    **settings
        Any key of :data:`DEFAULTS`.

    Returns
    -------
    dict
        The truth (also written to ``truth.json``).
    """
    from retrosim.models import energetics, gait

    cfg = {**DEFAULTS, **settings}
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    root = Path(path)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} is not empty (overwrite=True replaces it)")
    (root / "cart").mkdir(parents=True, exist_ok=True)
    (root / "force").mkdir(parents=True, exist_ok=True)
    speeds = [float(s) for s in cfg["speeds_m_s"]]
    protocol, truth_stages = [], []
    n = int(cfg["n_participants"])
    masses = np.round(rng.normal(cfg["mass_mean_kg"], cfg["mass_sd_kg"], n).clip(45, 110), 1)
    u = rng.normal(0.0, cfg["sd_participant"], n)
    v = rng.normal(0.0, cfg["sd_direction"], n)
    pop_ratio = {}
    for sp in speeds:
        f = energetics.metabolic_rate("acsm", sp, 70.0, "forward", "run")["vo2_gross_ml_kg_min"]
        b = energetics.metabolic_rate("acsm", sp, 70.0, "backward", "run")["vo2_gross_ml_kg_min"]
        pop_ratio[sp] = float(b / f)
    for i in range(n):
        pid = f"P{i + 1:02d}"
        m = float(masses[i])
        conds = [(sp, d) for sp in speeds for d in ("forward", "backward")]
        order = rng.permutation(len(conds))
        conds = [conds[k] for k in order]
        levels = [cfg["rest_vo2_ml_kg_min"] * m]
        rers = [cfg["rer_rest"]]
        durs = [cfg["rest_s"]]
        rates = [cfg["breath_rate_rest_min"]]
        stage_rows = [("rest", None, None)]
        for sp, d in conds:
            vo2 = float(energetics.metabolic_rate("acsm", sp, m, d, "run")["vo2_gross_ml_kg_min"])
            sign = 0.5 if d == "backward" else -0.5
            lev = vo2 * m * np.exp(u[i] + sign * v[i] + rng.normal(0.0, cfg["sd_stage"]))
            levels.append(lev)
            rers.append(cfg["rer_run"])
            durs.append(cfg["stage_s"])
            rates.append(cfg["breath_rate_run_min"])
            stage_rows.append((f"run_{sp:g}_{d}", sp, d))
        br = simulate_breaths(levels, durs, rer=rers, rng=rng, tau_s=cfg["tau_s"],
                              breath_rate_min=rates, breath_cv=cfg["breath_cv"],
                              p_artefact=cfg["p_artefact"])  # fmt: skip
        vo2_kg = br["vo2_ml_min"] / m
        hr = cfg["hr_rest_bpm"] + cfg["hr_per_ml_kg_min"] * (br["vo2_true"] / m - levels[0] / m)
        hr = hr + rng.normal(0.0, 1.5, len(br))
        cart = pd.DataFrame({
            "time_s": br["time_s"].round(2),
            "vo2_ml_min": br["vo2_ml_min"].round(1),
            "vco2_ml_min": br["vco2_ml_min"].round(1),
            "hr_bpm": hr.round(0),
            # provenance on every row: these breaths are simulated, not measured
            "synthetic": True,
        })  # fmt: skip
        del vo2_kg
        cart_name = f"cart/{pid}.csv"
        cart.to_csv(root / cart_name, index=False)
        t0 = 0.0
        for s, (name, sp, d) in enumerate(stage_rows):
            start, end = t0, t0 + durs[s]
            t0 = end
            row = {"participant_id": pid, "mass_kg": m, "stage": name,
                   "stage_type": "rest" if sp is None else "exercise",
                   "direction": d or "", "mode": "run" if sp else "", "speed_m_s": sp or "",
                   "grade_pct": 0 if sp else "", "session": 1, "start_s": start, "end_s": end,
                   "cart_file": cart_name, "force_file": "", "force_rate_hz": "",
                   "synthetic": "true"}  # fmt: skip
            rec = {"participant_id": pid, "stage": name, "mass_kg": m, "speed_m_s": sp,
                   "direction": d, "vo2_ml_min": float(levels[s]),
                   "vco2_ml_min": float(levels[s] * rers[s]), "rer": float(rers[s])}  # fmt: skip
            if sp is not None:
                g = gait.spring_mass_running(sp, m, direction=d)
                fz, steps = simulate_vgrf(
                    float(g["contact_time_s"]), float(g["flight_time_s"]), m,
                    rate_hz=cfg["force_rate_hz"], duration_s=cfg["force_s"], rng=rng,
                    impact=cfg["impact_amplitude"] if d == "forward" else 0.0,
                    impact_time=cfg["impact_time"], jitter=cfg["step_jitter"],
                    noise_n=cfg["force_noise_n"], drift_n=cfg["force_drift_n"],
                )  # fmt: skip
                fname = f"force/{pid}_{name}.csv.gz"
                with gzip.open(root / fname, "wt", encoding="utf-8", compresslevel=9) as fh:
                    fh.write("fz_n\n")
                    fh.write("\n".join(str(int(x)) for x in fz))
                    fh.write("\n")
                row["force_file"] = fname
                row["force_rate_hz"] = cfg["force_rate_hz"]
                # contacts wholly inside the record (the reader drops the cut ones)
                whole = steps[steps["onset_s"] + steps["contact_time_s"]
                              < cfg["force_s"] - 1.0 / cfg["force_rate_hz"]]  # fmt: skip
                rec["force"] = _truth_means(whole, m, sp)
                rec["force_onsets_s"] = [round(float(x), 6) for x in whole["onset_s"]]
            protocol.append(row)
            truth_stages.append(rec)
    pd.DataFrame(protocol).to_csv(root / "protocol.csv", index=False)
    truth = {
        "label": LABEL,
        "seed": seed,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "population_backward_forward_vo2_ratio": {f"{k:g}": r for k, r in pop_ratio.items()},
        "stages": truth_stages,
        "note": "stage vo2_ml_min is the simulated steady-state level (the asymptote of the "
        "on-kinetics), vco2 = rer x vo2; force values are means over the true steps wholly "
        "inside each force record; ratios are the simulator's population values at 70 kg "
        "(ACSM with the nominal backward factor), without participant effects.",
    }
    (root / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    (root / "README.md").write_text(_readme(cfg, seed), encoding="utf-8")
    return truth


def _readme(cfg, seed):
    return f"""# {LABEL}

A lab folder as `retrosim ingest` reads it, generated by
`python -m retrosim.ingest.synthetic <folder> --seed {seed}` from stated simulation settings
(`truth.json`, key `settings`). Not measured on people.

* `protocol.csv` - one row per stage (format: `retrosim ingest --schema`): a rest stage, then
  running forward and backward at {", ".join(f"{s:g}" for s in cfg["speeds_m_s"])} m/s, in a
  random order per participant.
* `cart/P01.csv` ... - breath-by-breath VO2, VCO2 [mL/min] and heart rate (plain CSV layout).
* `force/*.csv.gz` - vertical ground reaction force [N] of each running stage at
  {cfg["force_rate_hz"]:g} Hz ({cfg["force_s"]:g} s; rate in the protocol's `force_rate_hz`).
* `truth.json` - the simulated steady-state gas exchange and force measures of every stage.

Try: `retrosim ingest {{this folder}} --out results/lab && retrosim fit results/lab/trials.csv`.
"""


def main(argv=None):
    p = argparse.ArgumentParser(description="write a synthetic lab folder (simulated data)")
    p.add_argument("folder")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--participants", type=int, default=DEFAULTS["n_participants"])
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    make_lab_folder(a.folder, seed=a.seed, n_participants=a.participants, overwrite=a.overwrite)
    print(f"wrote {a.folder} (synthetic)")


if __name__ == "__main__":  # pragma: no cover
    main()
