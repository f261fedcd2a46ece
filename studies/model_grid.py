"""Run the model chain over speed x body mass x direction for running and walking.

Writes posterior-predictive quantiles (2.5 %, 50 %, 97.5 %) of the energy and knee variables,
forward, backward and their ratio (computed per draw), to results/tables/model_quantiles.csv,
which the figure studies read, and the numbers the manuscript quotes at the reference speeds.
"""

from __future__ import annotations

import _common
import numpy as np

INPUTS = [
    "retrosim/data/literature",
    "retrosim/data/parameters",
    "retrosim.models.chain",
    "retrosim.bayes.calibration",
]
OUTPUTS = ["results/tables/model_quantiles.csv", "results/values/model_grid.json"]

SEED = 20261121
N_DRAWS = 1000
MASSES_KG = [50.0, 70.0, 90.0, 110.0]
RUN_SPEEDS = np.round(np.arange(1.75, 5.0 + 1e-9, 0.125), 3)
WALK_SPEEDS = np.round(np.arange(0.9, 1.9 + 1e-9, 0.1), 3)
RUN_REF_SPEED, REF_MASS = 3.0, 70.0
#: Energetics model shown per mode: the mechanistic force-time model for running; ACSM (with
#: the calibrated walking direction factor) for walking, where the force-time model does not apply.
SHOWN_MODEL = {"run": "kram_taylor", "walk": "acsm"}
ENERGY_VARS = ["gross_kcal_min", "net_kcal_km", "gross_kcal_km", "net_cost_j_kg_m", "net_rate_w_kg"]
KNEE_VARS = [
    "pfj_force_bw",
    "pfj_force_per_km_bw",
    "pfj_stress_mpa",
    "pfj_stress_per_km_mpa",
    "knee_ext_moment_nm",
    "contacts_per_km_knee",
]
GAIT_VARS = ["contact_time_s", "step_frequency_hz", "step_length_m"]
QUANTILES = (0.025, 0.5, 0.975)


def _draws(log):
    """Calibrated parameter draws (cached calibration posterior)."""
    from retrosim.bayes import calibration

    rng = np.random.default_rng(SEED)
    post = calibration.fit(seed=calibration.POSTERIOR_SEED)  # the shared calibration posterior
    log.info("calibration: %s", post.attrs.get("diagnostics", ""))
    return calibration.posterior_draws(N_DRAWS, rng, posterior=post), post


def _rows(ds, mode, variables, model=None):
    """Quantile rows of each variable, per speed, mass and direction, plus the B/F ratio."""
    import pandas as pd

    rows = []
    for var in variables:
        da = ds[var]
        if "model" in da.dims:
            da = da.sel(model=model)
        da = da.sel(mode=mode).squeeze("grade", drop=True)
        if "mass" not in da.dims:
            da = da.expand_dims(mass=ds["mass"].values)
        ratio = da.sel(direction="backward") / da.sel(direction="forward")
        for label, arr in (
            ("forward", da.sel(direction="forward")),
            ("backward", da.sel(direction="backward")),
            ("ratio", ratio),
        ):
            if "draw" not in arr.dims:
                arr = arr.expand_dims(draw=[0])
            q = arr.quantile(QUANTILES, dim="draw").transpose("quantile", "speed", "mass")
            for i, s in enumerate(ds["speed"].values):
                for j, m in enumerate(ds["mass"].values):
                    vals = q.values[:, i, j]
                    if np.all(np.isnan(vals)):
                        continue
                    rows.append(
                        {
                            "mode": mode,
                            "variable": var,
                            "model": model or "",
                            "direction": label,
                            "speed_m_s": s,
                            "mass_kg": m,
                            "q025": vals[0],
                            "q50": vals[1],
                            "q975": vals[2],
                            "units": "1" if label == "ratio" else da.attrs.get("units", ""),
                        }
                    )
    return pd.DataFrame(rows)


def _pick(table, mode, var, direction, speed, mass=REF_MASS):
    sel = table[
        (table["mode"] == mode)
        & (table["variable"] == var)
        & (table["direction"] == direction)
        & np.isclose(table["speed_m_s"], speed)
        & np.isclose(table["mass_kg"], mass)
    ]
    if len(sel) != 1:
        raise RuntimeError(f"no unique row for {mode} {var} {direction} {speed} {mass}")
    r = sel.iloc[0]
    return {"q025": r.q025, "q50": r.q50, "q975": r.q975}


def _pct(d):
    return {k: 100.0 * (x - 1.0) for k, x in d.items()}


def main() -> None:
    log = _common.setup("model_grid")
    import pandas as pd

    from retrosim.bayes import calibration
    from retrosim.models import chain

    params, post = _draws(log)
    tables, datasets = [], {}
    for mode, speeds in (("run", RUN_SPEEDS), ("walk", WALK_SPEEDS)):
        log.info(
            "chain: %s, %d speeds x %d masses x %d draws",
            mode,
            len(speeds),
            len(MASSES_KG),
            N_DRAWS,
        )
        # params are calibration-posterior draws (posterior= labels the Dataset so)
        ds = chain.RetroChain(posterior=post).run(
            speeds, MASSES_KG, mode=(mode,), params=params, seed=SEED
        )
        datasets[mode] = ds
        tables.append(_rows(ds, mode, ENERGY_VARS, SHOWN_MODEL[mode]))
        tables.append(_rows(ds, mode, GAIT_VARS))
        if mode == "run":
            tables.append(_rows(ds, mode, KNEE_VARS))
    table = pd.concat(tables, ignore_index=True)
    _common.write_table(table, "model_quantiles")

    run = datasets["run"]
    at_ref = run.sel(speed=RUN_REF_SPEED, mode="run", grade=0.0, direction="forward")
    net_km = at_ref["net_kcal_km"].sel(mass=REF_MASS, model=SHOWN_MODEL["run"]).median("draw")
    walk_ref = float(calibration.WALK_REF_SPEED_M_S)
    walk_speed = float(WALK_SPEEDS[np.argmin(np.abs(WALK_SPEEDS - walk_ref))])
    values = {
        "n_draws": N_DRAWS,
        "interval_pct": round(100 * (QUANTILES[2] - QUANTILES[0])),
        "masses_kg": MASSES_KG,
        "run_speed_min": float(RUN_SPEEDS[0]),
        "run_speed_max": float(RUN_SPEEDS[-1]),
        "walk_speed_min": float(WALK_SPEEDS[0]),
        "walk_speed_max": float(WALK_SPEEDS[-1]),
        "ref_speed": RUN_REF_SPEED,
        "ref_mass": REF_MASS,
        "walk_ref_speed": walk_speed,
        "calibration_converged": bool(post.attrs.get("converged", 0)),
        "calibration_rows": int(post.attrs.get("n_rows", 0)),
        "run": {
            "fwd_kcal_min": _pick(table, "run", "gross_kcal_min", "forward", RUN_REF_SPEED),
            "bwd_kcal_min": _pick(table, "run", "gross_kcal_min", "backward", RUN_REF_SPEED),
            "fwd_net_kcal_km": _pick(table, "run", "net_kcal_km", "forward", RUN_REF_SPEED),
            "bwd_net_kcal_km": _pick(table, "run", "net_kcal_km", "backward", RUN_REF_SPEED),
            "net_ratio_pct": _pct(_pick(table, "run", "net_rate_w_kg", "ratio", RUN_REF_SPEED)),
            "gross_ratio_pct": _pct(_pick(table, "run", "gross_kcal_min", "ratio", RUN_REF_SPEED)),
            "net_ratio_pct_slow": _pct(
                _pick(table, "run", "net_rate_w_kg", "ratio", RUN_SPEEDS[0])
            ),
            "net_ratio_pct_fast": _pct(
                _pick(table, "run", "net_rate_w_kg", "ratio", RUN_SPEEDS[-1])
            ),
            "fwd_net_kcal_kg_km": float(net_km) / REF_MASS,
            "n_models": int(
                np.isfinite(at_ref["net_kcal_km"].sel(mass=REF_MASS).median("draw")).sum()
            ),
            "models_net_kcal_km_min": float(
                at_ref["net_kcal_km"].sel(mass=REF_MASS).median("draw").min()
            ),
            "models_net_kcal_km_max": float(
                at_ref["net_kcal_km"].sel(mass=REF_MASS).median("draw").max()
            ),
            "contact_time_ratio_pct": _pct(
                _pick(table, "run", "contact_time_s", "ratio", RUN_REF_SPEED)
            ),
            "step_frequency_ratio_pct": _pct(
                _pick(table, "run", "step_frequency_hz", "ratio", RUN_REF_SPEED)
            ),
        },
        "walk": {
            "fwd_kcal_min": _pick(table, "walk", "gross_kcal_min", "forward", walk_speed),
            "bwd_kcal_min": _pick(table, "walk", "gross_kcal_min", "backward", walk_speed),
            "net_ratio_pct": _pct(_pick(table, "walk", "net_rate_w_kg", "ratio", walk_speed)),
            "gross_ratio_pct": _pct(_pick(table, "walk", "gross_kcal_min", "ratio", walk_speed)),
        },
        "knee": {
            "fwd_pfj_bw": _pick(table, "run", "pfj_force_bw", "forward", RUN_REF_SPEED),
            "bwd_pfj_bw": _pick(table, "run", "pfj_force_bw", "backward", RUN_REF_SPEED),
            "pfj_step_ratio_pct": _pct(_pick(table, "run", "pfj_force_bw", "ratio", RUN_REF_SPEED)),
            "pfj_km_ratio_pct": _pct(
                _pick(table, "run", "pfj_force_per_km_bw", "ratio", RUN_REF_SPEED)
            ),
            "stress_step_ratio_pct": _pct(
                _pick(table, "run", "pfj_stress_mpa", "ratio", RUN_REF_SPEED)
            ),
            "stress_km_ratio_pct": _pct(
                _pick(table, "run", "pfj_stress_per_km_mpa", "ratio", RUN_REF_SPEED)
            ),
            "contacts_ratio_pct": _pct(
                _pick(table, "run", "contacts_per_km_knee", "ratio", RUN_REF_SPEED)
            ),
        },
    }
    _common.write_values("model_grid", values)


if __name__ == "__main__":
    main()
