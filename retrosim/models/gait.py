"""Gait models: spring-mass running and inverted-pendulum walking, forward and backward.

Plain vectorised functions (pvlib style). Every published constant is read from
``retrosim/data/parameters/gait.csv`` (value, uncertainty, units, speed, citation, locator) by
:func:`load_parameters`; nothing numeric about people is typed into this module.

Running (bouncing gait), forward
--------------------------------
* Contact time follows a power law ``t_c = a v**b`` through the two group means of
  Kipp et al. [1]_ (0.280 s at 8 km/h, 0.190 s at 18 km/h), times a population scale
  ``tc_scale``.
* Step frequency rises with speed as ``f = f_ref (v / v_ref)**e`` (``v_ref`` = 3 m/s), times a
  population scale ``sf_scale``. The exponent ``e`` is the mean of the within-study changes
  of preferred cadence with speed (van Oeveren et al. 2017 [9]_: 77, 79, 80 strides/min at
  2.4, 2.6, 2.9 m/s; the outdoor study [10]_: +3 steps/min at a 15 % higher speed than
  3.04 m/s; Cavanagh & Kram [11]_: +4 % over 3.15-4.12 m/s); ``f_ref`` is the mean of the
  studies' levels moved to ``v_ref`` with that exponent ([9]_, [10]_ 165 steps/min at
  3.04 m/s, Moore et al. [12]_ 2.67 Hz at 12.7 km/h). The spread of the study levels and
  of the study exponents is the prior spread of ``sf_scale`` and ``sf_exponent``
  (:func:`cadence_law`). Flight time = 1/f - t_c.
* Peak force, centre-of-mass drop, leg compression and stiffness use the sine-wave
  method of Morin et al. [4]_.

Running, backward: paired direction effects
-------------------------------------------
Backward quantities are the forward ones times ``exp(direction effect)``::

    f_B   = f_F   exp(dir_step_frequency)     step frequency
    t_c,B = t_c,F exp(dir_contact_time)       contact time

so a forward/backward ratio carries only the uncertainty of the direction effect, not of the
absolute levels. The prior centres come from the bouncing-system analysis of Cavagna et al.
[2]_ [3]_: the mass-specific vertical stiffness ``k/m = (pi / t_ce)**2`` is 499 s^-2 backward
and 352 s^-2 forward, so the lower part of the oscillation is shorter by ``sqrt(352/499)``;
with contact time taken proportional to ``t_ce`` (an assumption) ``dir_contact_time`` is
centred on ``-ln(499/352)/2``, and with a stiffer lower part and "a similar duration of the
upper part" [2]_ the step period is ``(t_ce,B + t_ce,F)`` instead of ``2 t_ce,F``, which
centres ``dir_step_frequency`` on ``ln(2 / (1 + sqrt(352/499)))``. Their prior SDs are stated
assumptions (``gait.csv``); :mod:`retrosim.bayes.calibration` updates them with the published
backward/forward ratios (peak force, energy, knee moment).

Walking (inverted pendulum)
---------------------------
* Step frequency grows as ``sqrt(v / w)`` (constant walk ratio: step length
  proportional to step frequency), with ``w`` fixed by the walk-run transition
  (139 steps/min at 1.95 m/s, [5]_). This form is a modelling choice, documented here.
* Stance duration [% of stride] = 64.2 - 3.5 v [6]_.
* Peak vertical force uses the half-sine impulse balance ``pi m g / (4 DF)``, the same
  assumption as the running sine-wave method (an upper-envelope approximation for the
  double-humped walking force). No leg spring: stiffness is NaN.
* Backward walking: cadence unchanged at self-selected pace [7]_ (ratio 1, assumed SD).
* Walking is impossible for an inverted pendulum above Froude number ``v^2/(gL) = 1``.

Validated ranges: running 1.75-5.0 m/s (Wright & Weyand speeds [8]_ to Kipp's fastest
[1]_); walking 0.83 m/s (50 m/min) to the transition speed. Outside them the outputs
carry a warning (see :func:`validity`); meaningless input raises InputError.

References
----------
.. [1] Kipp S, Grabowski AM, Kram R. What determines the metabolic cost of human running
   across a wide range of velocities? J Exp Biol 2018;221:jeb184218 (abstract).
.. [2] Cavagna GA, Legramandi MA, La Torre A. An analysis of the rebound of the body in
   backward human running. J Exp Biol 2012;215:75-84. doi:10.1242/jeb.057562
.. [3] Cavagna GA. Symmetry and asymmetry in bouncing gaits. Symmetry 2010;2:1270-1321
   (abstract); k_vert definition in Cavagna et al. J Exp Biol 2005;208:2333, Fig. 5.
.. [4] Morin JB, Dalleau G, Kyrolainen H, Jeannin T, Belli A. A simple method for
   measuring stiffness during running. J Appl Biomech 2005;21:167-180.
.. [5] Cadence (steps/min) as an indicator of the walk-to-run transition. Hum Mov Sci
   2023;90:103117. doi:10.1016/j.humov.2023.103117
.. [6] Kirtley C, Whittle MW, Jefferson RJ. Influence of walking speed on gait
   parameters. J Biomed Eng 1985;7(4):282-288 (regression as quoted by C. Kirtley).
.. [7] Effect of age on characteristics of forward and backward gait at preferred and
   accelerated walking speed. J Gerontol A 2005;60(5):627 (abstract).
.. [8] Wright S, Weyand PG. The application of ground force explains the energetic
   cost of running backward and forward. J Exp Biol 2001;204:1805-1815.
.. [9] van Oeveren BT, de Ruiter CJ, Beek PJ, van Dieen JH. Optimal stride frequencies in
   running at different speeds. PLoS One 2017;12(10):e0184273 (abstract).
.. [10] Individual optimal step frequency during outdoor running. Eur J Sport Sci
   2020;20(2):182-190. doi:10.1080/17461391.2019.1626911 (abstract).
.. [11] Cavanagh PR, Kram R. Stride length in distance running: velocity, body dimensions,
   and added mass effects. PMID 2674599 (abstract).
.. [12] Moore IS et al. Humans optimize ground contact time and leg stiffness to minimize the
   metabolic cost of running. Front Sports Act Living 2019. doi:10.3389/fspor.2019.00053
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from retrosim._checks import check_choice, check_range
from retrosim.config import DATA_DIR
from retrosim.errors import InputError
from retrosim.units import G, kmh_to_m_s
from retrosim.vocabulary import DIRECTIONS, MODES, UNITS

log = logging.getLogger(__name__)

PARAMETER_FILE = "parameters/gait.csv"

#: Output names of :func:`gait` with (units, long_name).
GAIT_OUTPUTS = {
    "contact_time_s": (UNITS["time"], "foot-ground contact time per step"),
    "flight_time_s": (UNITS["time"], "aerial (flight) time per step"),
    "step_frequency_hz": (UNITS["frequency"], "step frequency"),
    "step_length_m": (UNITS["length"], "step length"),
    "duty_factor": (UNITS["ratio"], "duty factor (contact time / stride time)"),
    "vgrf_peak_n": (UNITS["force"], "peak vertical ground reaction force"),
    "vgrf_peak_bw": (UNITS["force_bw"], "peak vertical ground reaction force in body weights"),
    "vertical_stiffness_n_m": (UNITS["stiffness"], "vertical stiffness (sine-wave method)"),
    "leg_stiffness_n_m": (UNITS["stiffness"], "leg stiffness (sine-wave method)"),
}


# --------------------------------------------------------------------------- parameters
@functools.lru_cache(maxsize=1)
def _table():
    import pandas as pd

    path = DATA_DIR / PARAMETER_FILE
    df = pd.read_csv(path)
    need = {"name", "mode", "direction", "value", "uncertainty", "units", "citation"}
    missing = need - set(df.columns)
    if missing:
        raise InputError(f"missing columns {sorted(missing)}", file=path)
    return df


def load_parameters():
    """Return the gait parameter table (a copy of ``retrosim/data/parameters/gait.csv``)."""
    return _table().copy()


def _p(name, direction=None, column="value"):
    df = _table()
    rows = df[df["name"] == name]
    if direction is not None:
        rows = rows[rows["direction"] == direction]
    if len(rows) != 1:
        raise InputError(
            f"expected one row for parameter {name!r} ({direction}), found {len(rows)}",
            file=DATA_DIR / PARAMETER_FILE,
        )
    return float(rows[column].iloc[0])


#: Step frequency units of ``gait.csv`` -> factor to Hz (a stride is two steps).
_CADENCE_TO_HZ = {"Hz": 1.0, "steps/min": 1.0 / 60.0, "strides/min": 2.0 / 60.0}
#: Reference speed of the forward cadence law [m/s] (middle of the cadence data).
CADENCE_REF_SPEED_M_S = 3.0


def _cadence_rows(name, units=_CADENCE_TO_HZ):
    df = _table()
    rows = df[(df["name"] == name) & (df["mode"] == "run") & (df["direction"] == "forward")]
    bad = rows[~rows["units"].isin(list(units))]
    if len(bad):
        raise InputError(
            f"parameter {name!r} has units {bad['units'].iloc[0]!r}; expected one of "
            f"{sorted(units)}", file=DATA_DIR / PARAMETER_FILE, row=int(bad.index[0]) + 1,
            column="units",
        )  # fmt: skip
    return rows


@functools.lru_cache(maxsize=1)
def cadence_law() -> dict:
    """Forward running cadence law ``f = f_ref (v / v_ref)**e`` fitted to ``gait.csv``.

    Every ``cadence_run`` row is a group-mean step (or stride) frequency at one speed;
    ``cadence_run_increase`` + ``speed_increase_pct`` and ``cadence_run_change_pct`` rows are
    within-study changes with speed. Computed here, never typed:

    * each study's exponent ``e_s``: the least-squares slope of ln f on ln v over its own
      speeds (or ``ln(1 + change) / ln(v_high / v_low)`` for a reported change);
      ``e`` = mean over studies, ``e_sd`` = their SD (between-study spread);
    * each study's level at ``v_ref``: ``mean(ln f_i + e ln(v_ref / v_i))``; ``f_ref`` =
      exp(mean level), ``level_sd`` = SD of the study levels (log scale).

    Returns
    -------
    dict
        ``f_ref_hz``, ``v_ref_m_s``, ``exponent``, ``exponent_sd``, ``level_log_sd`` and the
        per-study ``exponents`` and ``levels_hz`` (for the record).
    """
    rows = _cadence_rows("cadence_run")
    f_hz = rows["value"].to_numpy(float) * rows["units"].map(_CADENCE_TO_HZ).to_numpy(float)
    v = rows["speed_m_s"].to_numpy(float)
    groups = rows["group"].to_numpy(str)
    exps = {}
    for g in dict.fromkeys(groups):
        sel = groups == g
        if sel.sum() >= 2:
            x, y = np.log(v[sel]), np.log(f_hz[sel])
            exps[str(g)] = float(np.polyfit(x, y, 1)[0])
    inc = _cadence_rows("cadence_run_increase")
    for _, r in inc.iterrows():
        g = r["group"]
        base = rows[rows["group"] == g]
        pct = _table()[(_table()["name"] == "speed_increase_pct") & (_table()["group"] == g)]
        if len(base) != 1 or len(pct) != 1:
            raise InputError(
                f"cadence_run_increase of group {g!r} needs one cadence_run and one "
                "speed_increase_pct row of the same group", file=DATA_DIR / PARAMETER_FILE,
            )  # fmt: skip
        f0 = float(base["value"].iloc[0]) * _CADENCE_TO_HZ[base["units"].iloc[0]]
        df_hz = float(r["value"]) * _CADENCE_TO_HZ[r["units"]]
        exps[str(g)] = float(np.log1p(df_hz / f0) / np.log1p(float(pct["value"].iloc[0]) / 100.0))
    for _, r in _cadence_rows("cadence_run_change_pct", ("%",)).iterrows():
        exps[str(r["group"])] = float(
            np.log1p(float(r["value"]) / 100.0)
            / np.log(float(r["speed_high_m_s"]) / float(r["speed_m_s"]))
        )
    e = float(np.mean(list(exps.values())))
    e_sd = float(np.std(list(exps.values()), ddof=1))
    v_ref = CADENCE_REF_SPEED_M_S
    levels = {}
    for g in dict.fromkeys(groups):
        sel = groups == g
        levels[str(g)] = float(np.mean(np.log(f_hz[sel]) + e * np.log(v_ref / v[sel])))
    lv = np.array(list(levels.values()))
    return {
        "f_ref_hz": float(np.exp(lv.mean())),
        "v_ref_m_s": v_ref,
        "exponent": e,
        "exponent_sd": e_sd,
        "level_log_sd": float(np.std(lv, ddof=1)),
        "exponents": exps,
        "levels_hz": {g: float(np.exp(x)) for g, x in levels.items()},
    }


@functools.lru_cache(maxsize=1)
def nominal_parameters() -> dict:
    """Point values of every gait parameter used by the models (floats).

    Derived quantities are computed here from the table, never typed in:
    ``tc_a``, ``tc_b`` (power law through Kipp's two contact times), ``volume_exponent``
    (power law through Kipp's muscle volumes), ``sf_ref_hz``, ``sf_exponent`` (cadence law,
    :func:`cadence_law`), the prior centres of the running direction effects
    ``dir_step_frequency`` and ``dir_contact_time`` (Cavagna's stiffnesses, module docstring)
    and ``walk_w_m_s`` (walk ratio constant).
    """
    v8, v18 = float(kmh_to_m_s(8.0)), float(kmh_to_m_s(18.0))
    tc8, tc18 = _p("tc_run_8kmh"), _p("tc_run_18kmh")
    tc_b = np.log(tc18 / tc8) / np.log(v18 / v8)
    tc_a = tc8 / v8**tc_b
    vol8, vol18 = _p("muscle_volume_8kmh"), _p("muscle_volume_18kmh")
    kf, kb = _p("kvert_mass_specific", "forward"), _p("kvert_mass_specific", "backward")
    v_wrt = _p("walk_run_transition_speed")
    f_wrt = _p("walk_run_transition_cadence") / 60.0
    law = cadence_law()
    return {
        "v_ref_m_s": v8,
        "v_ref_hi_m_s": v18,
        "tc_a": float(tc_a),
        "tc_b": float(tc_b),
        "tc_scale": 1.0,
        "volume_exponent": float(np.log(vol18 / vol8) / np.log(v18 / v8)),
        "sf_ref_hz": law["f_ref_hz"],
        "sf_ref_speed_m_s": law["v_ref_m_s"],
        "sf_exponent": law["exponent"],
        "sf_scale": 1.0,
        "dir_step_frequency": float(np.log(2.0 / (1.0 + np.sqrt(kf / kb)))),
        "dir_contact_time": float(-0.5 * np.log(kb / kf)),
        "walk_w_m_s": v_wrt / f_wrt**2,
        "walk_transition_speed_m_s": v_wrt,
        "stance_pct_intercept": _p("stance_pct_intercept"),
        "stance_pct_slope": _p("stance_pct_slope"),
        "walk_step_frequency_ratio": _p("step_frequency_ratio", "backward"),
        "leg_length_default_m": _p("stature") * _p("leg_length_per_stature"),
    }


#: Parameters that vary between draws (the rest stay at their nominal values). The first
#: three are forward (population) levels; the ``dir_*`` entries are direction effects
#: ``ln(backward / forward)``.
SAMPLED = ("tc_scale", "sf_scale", "sf_exponent", "dir_step_frequency", "dir_contact_time",
           "walk_step_frequency_ratio")  # fmt: skip
#: The running direction effects of this module (calibrated by :mod:`retrosim.bayes.calibration`).
DIRECTION_EFFECTS = ("dir_step_frequency", "dir_contact_time")


def prior_spec() -> dict:
    """Prior of each sampled gait parameter: name -> (distribution, centre, spread).

    ``lognormal`` entries give (median, sigma of the log); ``normal`` give (mean, sd).
    Spreads are the published SD/between-study spread where one exists, otherwise the stated
    assumptions in ``gait.csv`` (rows with citation_key ``assumption``).
    """
    nom = nominal_parameters()
    law = cadence_law()
    return {
        "tc_scale": ("lognormal", 1.0, _p("tc_run_scale_cv", column="uncertainty")),
        "sf_scale": ("lognormal", 1.0, law["level_log_sd"]),
        "sf_exponent": ("normal", law["exponent"], law["exponent_sd"]),
        "dir_step_frequency": (
            "normal",
            nom["dir_step_frequency"],
            _p("dir_step_frequency_prior_sd"),
        ),
        "dir_contact_time": ("normal", nom["dir_contact_time"], _p("dir_contact_time_prior_sd")),
        "walk_step_frequency_ratio": (
            "lognormal",
            1.0,
            _p("step_frequency_ratio", "backward", "uncertainty"),
        ),
    }


def sample_gait_parameters(n_draws: int, rng) -> dict:
    """Draw gait parameters from their literature priors.

    Parameters
    ----------
    n_draws : int
        Number of draws (> 0).
    rng : numpy.random.Generator or int
        Source of randomness (an int is used as a seed).

    Returns
    -------
    dict
        Every key of :func:`nominal_parameters`; sampled ones are arrays of shape
        ``(n_draws,)``, the others floats.
    """
    n = int(check_range("n_draws", n_draws, 0, 1e9, "draws"))
    rng = np.random.default_rng(rng)
    out = dict(nominal_parameters())
    for name, (dist, centre, spread) in prior_spec().items():
        z = rng.standard_normal(n)
        out[name] = centre * np.exp(spread * z) if dist == "lognormal" else centre + spread * z
    return out


# --------------------------------------------------------------------------- checks
#: Running speeds above this are refused: twice the highest speed any model here was
#: validated at (25 km/h, Leger & Mercier 1984), so almost surely km/h typed as m/s.
RUN_SPEED_MAX_M_S = 2.0 * float(kmh_to_m_s(25.0))
RUN_VALID_M_S = (1.75, 5.0)
WALK_VALID_LO_M_S = 50.0 / 60.0


def check_speed(speed_m_s, mode="run", leg_length_m=None):
    """Check speeds for a mode; raise InputError for meaningless values.

    Walking above Froude number 1 (``v > sqrt(g L)``) is impossible for an inverted
    pendulum; running above :data:`RUN_SPEED_MAX_M_S` is almost surely km/h.
    """
    mode = str(check_choice("mode", mode, MODES))
    if mode == "walk":
        leg = nominal_parameters()["leg_length_default_m"] if leg_length_m is None else leg_length_m
        vmax = float(np.sqrt(G * np.min(leg)))
        return check_range(
            "speed_m_s", speed_m_s, 0.0, vmax, "m/s",
            hint=f"walking is impossible above Froude number 1 (sqrt(g L) = {vmax:.2f} m/s "
            f"for leg length {np.min(leg):.2f} m); was the speed given in km/h?",
        )  # fmt: skip
    return check_range(
        "speed_m_s", speed_m_s, 0.0, RUN_SPEED_MAX_M_S, "m/s",
        hint="speeds this high are almost surely km/h; divide by 3.6",
    )  # fmt: skip


def check_mass(mass_kg):
    """Check body mass [kg]: finite, in (0, 400]."""
    return check_range("mass_kg", mass_kg, 0.0, 400.0, "kg", hint="body mass in kilograms")


def check_leg_length(leg_length_m):
    """Check leg length [m]: finite, in (0, 2]."""
    return check_range("leg_length_m", leg_length_m, 0.0, 2.0, "m")


def _is_backward(direction, check=True):
    """Boolean mask of backward entries (checked against :data:`DIRECTIONS` if ``check``)."""
    arr = check_choice("direction", direction, DIRECTIONS) if check else np.asarray(direction)
    return np.asarray(arr == "backward")


def validity(speed_m_s, mode):
    """Return a warning string when ``speed_m_s`` leaves the validated range, else ''."""
    v = np.asarray(speed_m_s, dtype=float)
    if mode == "run":
        lo, hi = RUN_VALID_M_S
    else:
        lo, hi = WALK_VALID_LO_M_S, nominal_parameters()["walk_transition_speed_m_s"]
    out = v[(v < lo) | (v > hi)]
    if out.size:
        return (
            f"{mode}: {out.size} speed value(s) outside the validated range "
            f"{lo:.2f}-{hi:.2f} m/s (e.g. {out.flat[0]:g} m/s); extrapolated"
        )
    return ""


# --------------------------------------------------------------------------- sine-wave method
def sine_wave_peak_force(mass_kg, contact_time_s, flight_time_s):
    """Peak vertical force of the sine-wave model [N] (Morin et al. 2005 [1]_).

    ``F_max = m g (pi/2) (t_f / t_c + 1)``.

    Parameters
    ----------
    mass_kg : array_like
        Body mass [kg].
    contact_time_s, flight_time_s : array_like
        Contact and flight time per step [s].

    Returns
    -------
    numpy.ndarray
        Peak vertical ground reaction force [N].

    References
    ----------
    .. [1] Morin JB, Dalleau G, Kyrolainen H, Jeannin T, Belli A. A simple method for
       measuring stiffness during running. J Appl Biomech 2005;21:167-180.
    """
    return mass_kg * G * (np.pi / 2.0) * (flight_time_s / contact_time_s + 1.0)


def sine_wave_com_displacement(peak_force_n, mass_kg, contact_time_s):
    """Downward centre-of-mass displacement during contact [m] (Morin et al. 2005).

    ``dy_c = F_max t_c^2 / (m pi^2) - g t_c^2 / 8``.
    """
    tc2 = contact_time_s**2
    return peak_force_n * tc2 / (mass_kg * np.pi**2) - G * tc2 / 8.0


def sine_wave_leg_compression(leg_length_m, speed_m_s, contact_time_s, com_displacement_m):
    """Leg compression [m] (Morin et al. 2005): ``L - sqrt(L^2 - (v t_c / 2)^2) + dy_c``.

    NaN where the half contact length exceeds the leg length (model meaningless).
    """
    half = speed_m_s * contact_time_s / 2.0
    under = leg_length_m**2 - half**2
    root = np.sqrt(np.where(under >= 0, under, np.nan))
    return leg_length_m - root + com_displacement_m


# --------------------------------------------------------------------------- models
def _forward_contact_time(v, p):
    return p["tc_scale"] * p["tc_a"] * v ** p["tc_b"]


def forward_step_frequency(speed_m_s, params=None):
    """Forward running step frequency [Hz] of the cadence law (:func:`cadence_law`).

    ``f = sf_scale * f_ref * (v / v_ref)**sf_exponent``; unchecked, broadcasting.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s].
    params : dict, optional
        Gait parameters (default :func:`nominal_parameters`).
    """
    p = nominal_parameters() if params is None else params
    v = np.asarray(speed_m_s, dtype=float)
    return p["sf_scale"] * p["sf_ref_hz"] * (v / p["sf_ref_speed_m_s"]) ** p["sf_exponent"]


def running_contact_ratio(speed_m_s, params=None):
    """Forward / backward contact-time ratio of the running model, ``exp(-dir_contact_time)``.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s] (the ratio does not depend on it; kept for broadcasting).
    params : dict, optional
        Gait parameters (default :func:`nominal_parameters`).
    """
    p = nominal_parameters() if params is None else params
    v = np.asarray(speed_m_s, dtype=float)
    return np.exp(-np.asarray(p["dir_contact_time"])) + 0.0 * v


def spring_mass_running(speed_m_s, mass_kg, leg_length_m=None, direction="forward", *,
                        params=None, _check=True):  # fmt: skip
    """Spring-mass (bouncing) model of running, forward or backward.

    Forward contact time and step frequency follow their published speed laws; backward ones
    are the forward ones times ``exp(dir_contact_time)`` and ``exp(dir_step_frequency)``
    (paired direction effects, module docstring). Flight time is ``1/f - t_c`` (0 if that
    is negative: grounded running).

    Parameters
    ----------
    speed_m_s : array_like
        Treadmill/overground speed [m/s]; validated 1.75-5.0 m/s.
    mass_kg : array_like
        Body mass [kg].
    leg_length_m : array_like, optional
        Leg length [m]; default 0.53 x 1.72 m stature (see gait.csv).
    direction : {"forward", "backward"} or array of them
    params : dict, optional
        Gait parameters (arrays broadcast against the inputs); default nominal.

    Returns
    -------
    dict of ndarray
        Keys of :data:`GAIT_OUTPUTS`, broadcast over the inputs.
    """
    p = nominal_parameters() if params is None else params
    if leg_length_m is None:
        leg_length_m = p["leg_length_default_m"]
    if _check:
        speed_m_s = check_speed(speed_m_s, "run")
        mass_kg = check_mass(mass_kg)
        leg_length_m = check_leg_length(leg_length_m)
    back = _is_backward(direction, check=_check)
    v = np.asarray(speed_m_s, dtype=float)
    # small arrays first (speed x draw), then one selection by direction
    tc_f = _forward_contact_time(v, p)
    f_f = forward_step_frequency(v, p)
    tc = np.where(back, tc_f * np.exp(p["dir_contact_time"]), tc_f)
    freq = np.where(back, f_f * np.exp(p["dir_step_frequency"]), f_f)
    tc = np.maximum(tc, 1e-3)
    step_t = 1.0 / freq
    tf = np.maximum(step_t - tc, 0.0)  # grounded running: no flight
    step_t = tc + tf
    freq = 1.0 / step_t
    fmax = sine_wave_peak_force(mass_kg, tc, tf)
    dy = sine_wave_com_displacement(fmax, mass_kg, tc)
    dl = sine_wave_leg_compression(leg_length_m, v, tc, dy)
    return {
        "contact_time_s": tc,
        "flight_time_s": tf,
        "step_frequency_hz": freq,
        "step_length_m": v / freq,
        "duty_factor": tc / (2.0 * step_t),
        "vgrf_peak_n": fmax,
        "vgrf_peak_bw": fmax / (np.asarray(mass_kg) * G),
        "vertical_stiffness_n_m": fmax / dy,
        "leg_stiffness_n_m": fmax / dl,
    }


def inverted_pendulum_walking(speed_m_s, mass_kg, leg_length_m=None, direction="forward", *,
                              params=None, on_invalid="raise", _check=True):  # fmt: skip
    """Inverted-pendulum description of walking, forward or backward.

    Parameters
    ----------
    speed_m_s : array_like
        Walking speed [m/s]; must satisfy ``v^2 / (g L) <= 1``.
    mass_kg : array_like
        Body mass [kg].
    leg_length_m : array_like, optional
        Leg length [m] (default from gait.csv).
    direction : {"forward", "backward"} or array of them
    params : dict, optional
        Gait parameters; default nominal.
    on_invalid : {"raise", "nan"}
        Speeds above Froude 1 raise InputError, or give NaN (used on grids).

    Returns
    -------
    dict of ndarray
        Keys of :data:`GAIT_OUTPUTS`; flight time 0, stiffnesses NaN (rigid leg).
    """
    p = nominal_parameters() if params is None else params
    if leg_length_m is None:
        leg_length_m = p["leg_length_default_m"]
    if _check:
        leg_length_m = check_leg_length(leg_length_m)
        if on_invalid == "raise":
            speed_m_s = check_speed(speed_m_s, "walk", leg_length_m)
        else:
            speed_m_s = check_range("speed_m_s", speed_m_s, 0.0, RUN_SPEED_MAX_M_S, "m/s")
        mass_kg = check_mass(mass_kg)
    back = _is_backward(direction, check=_check)
    v = np.asarray(speed_m_s, dtype=float)
    possible = v**2 <= G * np.asarray(leg_length_m)
    v_ok = np.where(possible, v, np.nan)
    freq = np.sqrt(v_ok / p["walk_w_m_s"]) * np.where(back, p["walk_step_frequency_ratio"], 1.0)
    stance = (p["stance_pct_intercept"] + p["stance_pct_slope"] * v_ok) / 100.0
    stride_t = 2.0 / freq
    tc = stance * stride_t
    fmax = np.pi * np.asarray(mass_kg) * G / (4.0 * stance)
    nan = np.full(np.broadcast(v_ok, mass_kg, leg_length_m, freq).shape, np.nan)
    return {
        "contact_time_s": tc,
        "flight_time_s": np.where(possible, 0.0, np.nan) + 0.0 * tc,
        "step_frequency_hz": freq,
        "step_length_m": v_ok / freq,
        "duty_factor": stance + 0.0 * freq,
        "vgrf_peak_n": fmax,
        "vgrf_peak_bw": fmax / (np.asarray(mass_kg) * G),
        "vertical_stiffness_n_m": nan,
        "leg_stiffness_n_m": nan,
    }


def gait(speed_m_s, mass_kg, leg_length_m=None, direction="forward", mode="run", *,
         params=None):  # fmt: skip
    """Gait variables for one mode (``"run"`` or ``"walk"``); see the two model functions.

    Returns a dict of arrays with the keys of :data:`GAIT_OUTPUTS` and a ``"warning"``
    string (empty when every speed is inside the validated range).
    """
    mode = str(check_choice("mode", mode, MODES))
    if mode == "run":
        out = spring_mass_running(speed_m_s, mass_kg, leg_length_m, direction, params=params)
    else:
        out = inverted_pendulum_walking(speed_m_s, mass_kg, leg_length_m, direction,
                                        params=params)  # fmt: skip
    out["warning"] = validity(speed_m_s, mode)
    if out["warning"]:
        log.debug(out["warning"])
    return out
