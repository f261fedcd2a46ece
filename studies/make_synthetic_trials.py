"""Generate the synthetic example trial file ``retrosim/data/examples/synthetic_trials.csv``.

The population mean of every condition comes from the package's own simulator,
:func:`retrosim.models.energetics.metabolic_rate` with the ACSM running equation and the package's
nominal (uncalibrated) backward direction factor. Participants and trials then vary
multiplicatively around it, exactly the structure :mod:`retrosim.trials.fit` fits:

    VO2 = VO2_sim(speed, direction) x exp(u_p + v_p d + e),   d = +1/2 backward, -1/2 forward
    u_p ~ N(0, SIGMA_PARTICIPANT), v_p ~ N(0, SIGMA_PARTICIPANT_DIRECTION), e ~ N(0, SIGMA_TRIAL)

The spreads, body masses, ages and sample size are stated synthetic choices (not published
values). ``energy_w`` is the same noisy VO2 turned into gross metabolic power with
:func:`retrosim.models.energetics.vo2_to_w_kg` x body mass. Every row is labelled
``synthetic=true``. The true parameters, including the simulator's backward/forward ratio at
each speed and its log-linear projection (the quantity the model estimates), go to
``retrosim/data/examples/synthetic_trials_truth.json``.

Run: ``.venv/bin/python studies/make_synthetic_trials.py`` (fixed seed; output is
deterministic).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from retrosim._io import write_text
from retrosim.config import DATA_DIR
from retrosim.models import energetics

log = logging.getLogger(__name__)

SEED = 20260
N_PARTICIPANTS = 12
SPEEDS_M_S = (2.0, 2.5, 3.0, 3.5)
N_TRIALS = 2
SIGMA_PARTICIPANT = 0.08
SIGMA_PARTICIPANT_DIRECTION = 0.05
SIGMA_TRIAL = 0.03
MASS_MEAN_KG, MASS_SD_KG = 70.0, 9.0
OUT_DIR = DATA_DIR / "examples"


def simulator_vo2(speed_m_s, direction):
    """Population gross VO2 [mL/kg/min] from the package simulator (ACSM, nominal factor)."""
    out = energetics.metabolic_rate("acsm", speed_m_s, 70.0, direction=direction, mode="run")
    return np.asarray(out["vo2_gross_ml_kg_min"], dtype=float)


def true_ratio(speeds_m_s=SPEEDS_M_S):
    """Simulator backward/forward ratio of gross VO2 at each speed."""
    v = np.asarray(speeds_m_s, float)
    return simulator_vo2(v, "backward") / simulator_vo2(v, "forward")


def make(seed=SEED, n_participants=N_PARTICIPANTS, speeds_m_s=SPEEDS_M_S, n_trials=N_TRIALS):
    """Return (trials DataFrame, truth dict)."""
    rng = np.random.default_rng(seed)
    speeds = np.asarray(speeds_m_s, float)
    pid = np.array([f"S{i + 1:02d}" for i in range(n_participants)])
    mass = np.round(np.clip(rng.normal(MASS_MEAN_KG, MASS_SD_KG, n_participants), 48, 105), 1)
    sex = rng.choice(["female", "male"], n_participants)
    age = rng.integers(19, 41, n_participants)
    habituation = rng.integers(0, 4, n_participants)
    u = rng.normal(0.0, SIGMA_PARTICIPANT, n_participants)
    v = rng.normal(0.0, SIGMA_PARTICIPANT_DIRECTION, n_participants)

    p_i, dir_i, s_i, t_i = np.meshgrid(
        np.arange(n_participants), [0, 1], np.arange(speeds.size), np.arange(n_trials),
        indexing="ij",
    )  # fmt: skip
    p_i, dir_i, s_i, t_i = (a.ravel() for a in (p_i, dir_i, s_i, t_i))
    direction = np.where(dir_i == 1, "backward", "forward")
    d = np.where(dir_i == 1, 0.5, -0.5)
    base = np.where(dir_i == 1, simulator_vo2(speeds, "backward")[s_i],
                    simulator_vo2(speeds, "forward")[s_i])  # fmt: skip
    noise = rng.normal(0.0, SIGMA_TRIAL, base.size)
    vo2 = base * np.exp(u[p_i] + v[p_i] * d + noise)
    energy_w = energetics.vo2_to_w_kg(vo2) * mass[p_i]
    df = pd.DataFrame(
        {
            "participant_id": pid[p_i],
            "direction": direction,
            "mode": "run",
            "speed_m_s": speeds[s_i],
            "mass_kg": mass[p_i],
            "grade_pct": 0.0,
            "trial": t_i + 1,
            "session": 1,
            "sex": sex[p_i],
            "age_y": age[p_i],
            "habituation_sessions": habituation[p_i],
            "vo2_ml_kg_min": np.round(vo2, 2),
            "energy_w": np.round(energy_w, 1),
            "synthetic": "true",
        }
    )
    ratio = true_ratio(speeds)
    speed_ref = float(np.round(speeds.mean(), 2))
    # closed-form least squares (not np.polyfit, whose LAPACK path can differ in the last bit
    # between machines and thread counts, which would rewrite this tracked file)
    x, y = speeds - speed_ref, np.log(ratio)
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    intercept = float(y.mean() - slope * x.mean())
    truth = {
        "label": "SYNTHETIC - simulated by studies/make_synthetic_trials.py, not measured",
        "seed": seed,
        "n_participants": n_participants,
        "speeds_m_s": speeds.tolist(),
        "n_trials": n_trials,
        "simulator": "retrosim.models.energetics.metabolic_rate('acsm', mode='run'), nominal "
        "direction factor; gross VO2",
        "sigma_participant": SIGMA_PARTICIPANT,
        "sigma_participant_direction": SIGMA_PARTICIPANT_DIRECTION,
        "sigma_trial": SIGMA_TRIAL,
        "mass_kg_mean_sd": [MASS_MEAN_KG, MASS_SD_KG],
        "true_ratio_by_speed": dict(zip(map(str, speeds.tolist()), ratio.tolist(), strict=True)),
        "speed_ref_m_s": speed_ref,
        "beta_direction": float(intercept),
        "beta_direction_speed": float(slope),
        "beta_log_mass": 0.0,
        "note": "beta_direction and beta_direction_speed are the least-squares log-linear "
        "projection of the simulator's ratio curve over the speeds (the model's parameters); "
        "the realised participant effects are in the data, not here.",
    }
    return df, truth


README = """# retrosim/data/examples

`synthetic_trials.csv` - **SYNTHETIC** lab trials (labelled `synthetic=true` on every row),
generated by `studies/make_synthetic_trials.py` (seed {seed}) from the package's own
simulator (`retrosim.models.energetics`, ACSM running equation with the nominal backward factor),
with stated participant and trial spreads. Not measured on people; use it to try
`retrosim fit` and in tests. True parameters: `synthetic_trials_truth.json`.

{n} participants x 2 directions x {k} speeds ({speeds} m/s) x {t} trials = {rows} rows.
Format: `retrosim fit --schema`.

`lab_raw/` - a **SYNTHETIC** raw lab folder (protocol sheet, breath-by-breath cart CSVs,
vertical-force CSVs at 1000 Hz) for `retrosim ingest`, written by
`python -m retrosim.ingest.synthetic retrosim/data/examples/lab_raw --seed 20261` from the package's
simulators (`retrosim.models.energetics`, `retrosim.models.gait`) with stated noise; `lab_raw/truth.json`
holds the simulated values, `lab_raw/README.md` the layout. 6 participants x (rest + forward and
backward running at 2.5 and 3 m/s). Not measured on people.
"""


def main():
    df, truth = make()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_text(OUT_DIR / "synthetic_trials.csv", df.to_csv(index=False))
    write_text(OUT_DIR / "synthetic_trials_truth.json", json.dumps(truth, indent=2) + "\n")
    write_text(
        OUT_DIR / "README.md",
        README.format(
            seed=truth["seed"], n=truth["n_participants"], k=len(truth["speeds_m_s"]),
            speeds=", ".join(f"{s:g}" for s in truth["speeds_m_s"]), t=truth["n_trials"],
            rows=len(df),
        ),
    )  # fmt: skip
    log.info("wrote %d rows to %s", len(df), OUT_DIR / "synthetic_trials.csv")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
