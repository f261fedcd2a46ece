"""Metabolic energy models of running and walking, forward and backward.

One plain function per published model (pvlib style), each returning its native quantity with
its own equation, units, validated range and references:

===========================  =====================================  ==========================
model name                   function                               native quantity
===========================  =====================================  ==========================
``"kram_taylor"``            :func:`kram_taylor`                    net rate [W/kg]
``"acsm"``                   :func:`acsm`                           gross VO2 [mL/kg/min]
``"minetti_2002"``           :func:`minetti_2002`                   net cost [J/kg/m]
``"leger_mercier_1984"``     :func:`leger_mercier_1984`             gross VO2 [mL/kg/min]
``"margaria"``               :func:`margaria`                       net cost [J/kg/m]
===========================  =====================================  ==========================

:func:`forward_net_rate` dispatches by model name to these functions and expresses every model
as a forward net metabolic rate [W/kg] (the quantity the backward ratio multiplies);
:func:`metabolic_rate` adds the direction and input checks, and :func:`energy_outputs` turns a
net rate into every unit people and researchers ask for.

Backward locomotion, as a ratio of **net** metabolic rates at the same speed (paired with
forward: backward = forward x ratio):

* **running** (every model, so all agree on the backward penalty): the force-time ratio [1]_

      E_B / E_F = (t_c,F / t_c,B) x (V_B / V_F)(v)
                = exp(-dir_contact_time) x exp(h(v) dir_muscle_volume)

  (:func:`running_direction_ratio`) with the contact-time direction effect of
  :mod:`retrosim.models.gait` and a **speed-dependent** muscle-volume term
  (:func:`running_volume_ratio`): Wright & Weyand found the backward-forward differences in
  1/t_c directly proportional to the metabolic differences at their five slowest speeds and a
  greater active muscle volume at 3.0 m/s, one of the three highest [1]_. So ``h(v) = 0`` up
  to the fifth of their eight speeds (1.75-3.50 m/s, taken as equally spaced: 2.75 m/s), rises
  linearly to 1 at 3.0 m/s and stays 1 above (no evidence on a further change; an
  assumption), :func:`volume_term`. The magnitude ``dir_muscle_volume`` is calibrated on the
  published energy ratios, not taken from Wright & Weyand's +10 % (the same four runners gave
  the +35 % the calibration uses; the +10 % is kept as a hold-out check);
* **walking**: ``exp(a + s (v - v0))`` with ``a, s`` calibrated against the published walking
  contrasts converted to net ratios (resting VO2 subtracted, :mod:`retrosim.bayes.calibration`),
  :func:`walking_direction_ratio`.

Gross = net + resting metabolism (explicit: :data:`RESTING_VO2_ML_KG_MIN`, the ACSM resting
component [2]_), so a gross ratio is always nearer 1 than the net one. VO2 is converted to
energy with the Weir equation at a user-set respiratory exchange ratio (default
:data:`DEFAULT_RER`, an assumption), :func:`kcal_per_litre_o2`.

References
----------
.. [1] Wright S, Weyand PG. The application of ground force explains the energetic cost
   of running backward and forward. J Exp Biol 2001;204:1805-1815 (abstract).
.. [2] American College of Sports Medicine metabolic equations, resting component
   3.5 mL/kg/min, as read in public code and in the MSSE 2005 comparison paper
   (doi:10.1249/01.mss.0000147584.87788.0e).
"""

from __future__ import annotations

import functools

import numpy as np

from retrosim._checks import check_choice, check_range
from retrosim.errors import InputError
from retrosim.models import _kernels
from retrosim.models import gait as _gait
from retrosim.units import J_PER_KCAL, G
from retrosim.vocabulary import UNITS

#: Model names accepted by :func:`forward_net_rate` and :func:`metabolic_rate`.
MODELS = ("kram_taylor", "acsm", "minetti_2002", "leger_mercier_1984", "margaria")

#: Weir (1949) coefficients [kcal per L O2 and per L CO2] (:func:`kcal_per_litre_o2`).
WEIR_O2_KCAL_L = 3.941
WEIR_CO2_KCAL_L = 1.106
#: Default respiratory exchange ratio: an assumption (mixed substrate), user-settable.
DEFAULT_RER = 0.85
#: ACSM resting VO2 [mL/kg/min] (ACSM metabolic equations, module references).
RESTING_VO2_ML_KG_MIN = 3.5
#: ACSM coefficients per mode: (horizontal [mL/kg/min per m/min], vertical [mL/kg/min per m/min
#: per unit grade]) (:func:`acsm`).
ACSM_COEFFICIENTS = {"run": (0.2, 0.9), "walk": (0.1, 1.8)}
#: Léger & Mercier (1984) treadmill equation: intercept [mL/kg/min], slope [mL/kg/min per km/h]
#: (:func:`leger_mercier_1984`).
LEGER_MERCIER_COEFFICIENTS = (2.209, 3.163)
#: Minetti et al. (2002) cost polynomials [J/kg/m] in the decimal grade, highest power first
#: (:func:`minetti_2002`).
MINETTI_COEFFICIENTS = {"run": (155.4, -30.4, -43.3, 46.3, 19.5, 3.6),
                        "walk": (280.5, -58.7, -76.8, 51.9, 19.6, 2.5)}  # fmt: skip
#: Largest absolute decimal grade of the Minetti et al. (2002) polynomials, per mode.
MINETTI_GRADE_LIMIT = {"run": 0.45, "walk": 0.5}
#: Margaria et al. (1963) net running cost [kcal/kg/km] (:func:`margaria`).
MARGARIA_KCAL_KG_KM = 1.0

#: Validated speed ranges [m/s] per (model, mode); outside -> warning in the outputs. A model
#: describes exactly the modes listed here.
VALID_SPEED = {
    ("kram_taylor", "run"): _gait.RUN_VALID_M_S,
    ("acsm", "run"): _gait.RUN_VALID_M_S,
    ("acsm", "walk"): (50.0 / 60.0, None),
    ("minetti_2002", "run"): _gait.RUN_VALID_M_S,
    ("minetti_2002", "walk"): (50.0 / 60.0, None),
    ("leger_mercier_1984", "run"): (8.0 / 3.6, 25.0 / 3.6),
    ("margaria", "run"): (_gait.RUN_VALID_M_S[0], 22.0 / 3.6),
}
#: Models that describe each mode (from :data:`VALID_SPEED`, in the order of :data:`MODELS`).
MODE_MODELS = {md: tuple(m for m in MODELS if (m, md) in VALID_SPEED) for md in _gait.MODES}


# --------------------------------------------------------------------------- conversions
def kcal_per_litre_o2(rer=DEFAULT_RER):
    """Energy per litre of O2 from the Weir equation, ``3.941 + 1.106 RER`` [1]_.

    Parameters
    ----------
    rer : float
        Respiratory exchange ratio [1], 0.6 to 1.3.

    Returns
    -------
    float or numpy.ndarray
        Energy equivalent of oxygen [kcal/L].

    References
    ----------
    .. [1] Weir (1949) equation, kcal = 3.941 VO2 + 1.106 VCO2 [L], as given in the Wikipedia
       article "Weir formula" and public indirect-calorimetry calculators (original paper not
       read).
    """
    rer = check_range("rer", rer, 0.6, 1.3, "1")
    return WEIR_O2_KCAL_L + WEIR_CO2_KCAL_L * rer


def vo2_to_w_kg(vo2_ml_kg_min, rer=DEFAULT_RER):
    """Convert VO2 [mL/kg/min] to metabolic power [W/kg] (Weir, :func:`kcal_per_litre_o2`)."""
    return np.asarray(vo2_ml_kg_min) / 1000.0 * kcal_per_litre_o2(rer) * J_PER_KCAL / 60.0


def w_kg_to_vo2(power_w_kg, rer=DEFAULT_RER):
    """Convert metabolic power [W/kg] to VO2 [mL/kg/min] (inverse of :func:`vo2_to_w_kg`)."""
    return np.asarray(power_w_kg) * 60.0 * 1000.0 / (kcal_per_litre_o2(rer) * J_PER_KCAL)


# --------------------------------------------------------------------------- models
def acsm(speed_m_s, mode="run", grade=0.0, *, net=False):
    """ACSM metabolic equations: ``VO2 = 3.5 + k_h S + k_v S G`` [1]_.

    Running ``k_h = 0.2``, ``k_v = 0.9``; walking ``k_h = 0.1``, ``k_v = 1.8``
    (:data:`ACSM_COEFFICIENTS`); ``S`` is the speed in m/min and ``G`` the decimal grade.

    Parameters
    ----------
    speed_m_s : array_like
        Speed [m/s]; validated 1.75-5.0 m/s running (this package's running range) and from
        0.83 m/s (50 m/min) walking. Only the equation's domain is checked here (positive,
        below :data:`retrosim.models.gait.RUN_SPEED_MAX_M_S`): whether a speed can be walked
        (Froude number <= 1) is checked by :func:`metabolic_rate` and the chain.
    mode : {"run", "walk"}
        Which of the two equations.
    grade : array_like
        Decimal grade [1] (0.05 = 5 %).
    net : bool
        Return the net VO2 (without the resting 3.5 mL/kg/min).

    Returns
    -------
    numpy.ndarray
        Gross (or net) oxygen uptake [mL/kg/min].

    References
    ----------
    .. [1] American College of Sports Medicine metabolic equations: running
       VO2 = 3.5 + 0.2 S + 0.9 S G; walking VO2 = 3.5 + 0.1 S + 1.8 S G [mL/kg/min; S in
       m/min; G decimal grade]; walking valid >= 50 m/min. As read in public code and in the
       MSSE 2005 comparison paper (doi:10.1249/01.mss.0000147584.87788.0e).
    """
    k_h, k_v = ACSM_COEFFICIENTS[str(check_choice("mode", mode, _gait.MODES))]
    v = _gait.check_speed(speed_m_s, "run")
    # net = (k_h + k_v G) S with S = 60 v [m/min], in the order of operations the grids use
    out = (k_h + k_v * np.asarray(grade, dtype=float)) * v * 60.0
    return out if net else RESTING_VO2_ML_KG_MIN + out


def leger_mercier_1984(speed_m_s):
    """Léger & Mercier (1984) treadmill running: ``VO2 = 2.209 + 3.163 v`` (v in km/h) [1]_.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s]; validated 8-25 km/h (2.22-6.94 m/s).

    Returns
    -------
    numpy.ndarray
        Gross oxygen uptake [mL/kg/min].

    References
    ----------
    .. [1] Léger & Mercier (1984). Treadmill VO2 = 2.209 + 3.163 v [v km/h], 130 subjects
       of 10 studies; ~3.5 v for 8-25 km/h (abstract as read at biomaterialdatabase.com; full
       bibliographic record not read).
    """
    a, b = LEGER_MERCIER_COEFFICIENTS
    return a + b * _gait.check_speed(speed_m_s, "run") * 3.6


def minetti_2002(grade, mode="run"):
    """Minetti et al. (2002) energy cost of running or walking against decimal grade [1]_.

    Running ``Cr(i) = 155.4 i^5 - 30.4 i^4 - 43.3 i^3 + 46.3 i^2 + 19.5 i + 3.6``, walking
    ``Cw(i) = 280.5 i^5 - 58.7 i^4 - 76.8 i^3 + 51.9 i^2 + 19.6 i + 2.5``
    (:data:`MINETTI_COEFFICIENTS`), treated as net costs (above rest); speed-independent, so
    the rate is the cost times speed.

    Parameters
    ----------
    grade : array_like
        Decimal grade ``i`` [1]; validated -0.45 to 0.45 running, -0.5 to 0.5 walking
        (:data:`MINETTI_GRADE_LIMIT`).
    mode : {"run", "walk"}
        Which of the two polynomials.

    Returns
    -------
    numpy.ndarray
        Net energy cost of transport [J/kg/m].

    References
    ----------
    .. [1] Minetti et al. (2002), J Appl Physiol 93:1039. doi:10.1152/japplphysiol.01177.2001.
       Polynomials read in public code (heartandsole ``fitanalysis/runpower.py``; Conveyal r5
       ``MinettiCalculator``, citing "coefficients under figure 1"), not in the paper.
    """
    mode = str(check_choice("mode", mode, _gait.MODES))
    lim = MINETTI_GRADE_LIMIT[mode]
    i = check_range("grade", grade, -lim, lim, "1 (decimal grade)", lo_inclusive=True)
    return np.polyval(MINETTI_COEFFICIENTS[mode], i)


def margaria(speed_m_s):
    """Margaria et al. (1963): net cost of level running 1 kcal/kg/km, independent of speed [1]_.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s]; validated up to 22 km/h (6.1 m/s), the fastest speed studied.

    Returns
    -------
    numpy.ndarray
        Net energy cost of transport [J/kg/m], the same at every speed.

    References
    ----------
    .. [1] Margaria et al. (1963), J Appl Physiol 18:367. Net cost ~1 kcal/kg/km on the level,
       independent of speed, up to 22 km/h (abstract at jap.physiology.org/content/18/2/367).
    """
    v = _gait.check_speed(speed_m_s, "run")
    return np.full_like(v, MARGARIA_KCAL_KG_KM * J_PER_KCAL / 1000.0)


def kram_taylor(contact_time_s, speed_m_s, *, volume_ratio=1.0, coefficient_m=None,
                params=None):  # fmt: skip
    """Force-time model of running: net metabolic rate from contact time [1]_ [2]_.

    ``E / m = c g (V(v) / V_ref) volume_ratio / t_c`` where ``V(v)/V_ref`` is the
    active-muscle-volume power law through Kipp et al.'s volumes [2]_, and ``volume_ratio``
    the backward/forward muscle volume per unit force for backward running
    (:func:`running_volume_ratio`).

    Parameters
    ----------
    contact_time_s : array_like
        Foot-ground contact time [s], (0, 2] (from :mod:`retrosim.models.gait`).
    speed_m_s : array_like
        Running speed [m/s]; validated 1.75-5.0 m/s.
    volume_ratio : array_like
        Active muscle volume relative to forward running at the same speed [1].
    coefficient_m : float, optional
        Cost coefficient ``c`` [m]; default :func:`kram_taylor_coefficient`.
    params : dict, optional
        Gait parameters (for the volume exponent); default nominal.

    Returns
    -------
    numpy.ndarray
        Net metabolic rate [W/kg].

    References
    ----------
    .. [1] Kram R, Taylor CR (1990), "cost of generating force": E_metab / W_b = c / t_c (form
       as described in the abstracts of [2]_ and JEB 2022 225:jeb244755; c not read,
       therefore calibrated here: :func:`kram_taylor_coefficient`).
    .. [2] Kipp S, Grabowski AM, Kram R (authors as usually cited). What determines the
       metabolic cost of human running across a wide range of velocities? J Exp Biol
       2018;221:jeb184218 (abstract): metabolic rate tracks active muscle volume / t_c.
    """
    tc = check_range("contact_time_s", contact_time_s, 0.0, 2.0, "s")
    v = _gait.check_speed(speed_m_s, "run")
    p = _gait.nominal_parameters() if params is None else params
    c = kram_taylor_coefficient() if coefficient_m is None else coefficient_m
    vol = (v / p["v_ref_m_s"]) ** p["volume_exponent"]
    return c * G * vol * volume_ratio / tc


@functools.lru_cache(maxsize=8)
def kram_taylor_coefficient(rer=DEFAULT_RER) -> float:
    """Calibrated Kram-Taylor cost coefficient ``c`` [m] of :func:`kram_taylor`.

    Fitted (least squares in log space, closed form: geometric mean) so that the forward
    force-time model reproduces the ACSM net running cost (:func:`acsm`, converted
    with Weir at ``rer``) at the two speeds of Kipp et al. (8 and 18 km/h) [1]_, using the
    nominal forward contact times and muscle-volume law. Kipp's measured metabolic rates are
    *not* used, so they remain an independent check.

    Parameters
    ----------
    rer : float
        Respiratory exchange ratio [1] of the Weir conversion.

    Returns
    -------
    float
        Cost coefficient [m].

    References
    ----------
    .. [1] Kipp S, Grabowski AM, Kram R. J Exp Biol 2018;221:jeb184218 (abstract).
    """
    p = _gait.nominal_parameters()
    v = np.array([p["v_ref_m_s"], p["v_ref_hi_m_s"]])
    net_w_kg = vo2_to_w_kg(acsm(v, "run", net=True), rer)
    tc = p["tc_a"] * v ** p["tc_b"]
    vol = (v / p["v_ref_m_s"]) ** p["volume_exponent"]
    return float(np.exp(np.mean(np.log(net_w_kg * tc / (G * vol)))))


# --------------------------------------------------------------------------- direction
def direction_params_nominal() -> dict:
    """Nominal (prior-centre) direction parameters of the energetics.

    Walking log-ratio 0 and slope 0 (no direction effect a priori) at the reference speed
    1.34 m/s; running muscle-volume term 0 (1/t_c alone).
    """
    return {"walk_log_ratio": 0.0, "walk_log_slope": 0.0, "walk_ref_speed_m_s": 1.34,
            "dir_muscle_volume": 0.0}  # fmt: skip


@functools.lru_cache(maxsize=1)
def volume_term_speeds() -> tuple[float, float]:
    """Speeds [m/s] where the muscle-volume term starts and reaches its full size.

    Onset: the fifth of Wright & Weyand's eight speeds from 1.75 to 3.50 m/s [1]_ (equal
    spacing assumed: the abstract gives the range and the count); full: 3.0 m/s, where they
    estimated the muscle volumes. Read from ``retrosim/data/parameters/gait.csv``.

    Returns
    -------
    tuple of float
        Onset and full-size speeds [m/s].

    References
    ----------
    .. [1] Wright S, Weyand PG. J Exp Biol 2001;204:1805-1815 (abstract).
    """
    lo, hi = _gait._p("ww_speed_low"), _gait._p("ww_speed_high")
    speeds = np.linspace(lo, hi, int(_gait._p("ww_n_speeds")))
    onset = float(speeds[int(_gait._p("ww_n_speeds_proportional")) - 1])
    full = _gait._p("ww_volume_speed")
    if not onset < full:
        raise InputError(f"volume term onset {onset} m/s must be below {full} m/s",
                         file=_gait.DATA_DIR / _gait.PARAMETER_FILE)  # fmt: skip
    return onset, full


def volume_term(speed_m_s):
    """Shape ``h(v)`` of the running muscle-volume direction term (0 to 1), see module docstring.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s].

    Returns
    -------
    numpy.ndarray
        0 at and below the onset speed, 1 at and above 3.0 m/s, linear between.
    """
    onset, full = volume_term_speeds()
    v = np.asarray(speed_m_s, dtype=float)
    return np.clip((v - onset) / (full - onset), 0.0, 1.0)


def running_volume_ratio(speed_m_s, params=None):
    """Backward/forward active muscle volume per unit force of running, ``exp(h(v) d)``.

    ``d`` is ``dir_muscle_volume`` and ``h`` the speed-dependent shape :func:`volume_term`
    (Wright & Weyand 2001, module docstring); the factor :func:`kram_taylor` takes as
    ``volume_ratio`` for backward running.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s].
    params : dict, optional
        Direction parameters (``dir_muscle_volume``; default :func:`direction_params_nominal`).

    Returns
    -------
    numpy.ndarray
        Volume ratio [1].
    """
    p = {**direction_params_nominal(), **(params or {})}
    return np.exp(volume_term(speed_m_s) * p["dir_muscle_volume"])


def running_direction_ratio(speed_m_s, params=None):
    """Backward/forward net metabolic ratio of running at the same speed (module docstring).

    ``(t_c,F / t_c,B) x (V_B / V_F)(v) = exp(-dir_contact_time) x exp(h(v) dir_muscle_volume)``:
    the contact-time ratio of :func:`retrosim.models.gait.running_contact_ratio` times
    :func:`running_volume_ratio`. The one definition of the ratio: the chain, the per-condition
    functions and the calibration's predictions all use it.

    Parameters
    ----------
    speed_m_s : array_like
        Running speed [m/s].
    params : dict, optional
        Gait and direction parameters (default nominal / prior centres).

    Returns
    -------
    numpy.ndarray
        Ratio of net metabolic rates, backward / forward [1].
    """
    p = {**_gait.nominal_parameters(), **direction_params_nominal(), **(params or {})}
    return _gait.running_contact_ratio(speed_m_s, p) * running_volume_ratio(speed_m_s, p)


def walking_direction_ratio(speed_m_s, params=None):
    """Backward/forward net metabolic ratio of walking: ``exp(a + s (v - v0))``.

    ``a`` (``walk_log_ratio``) and ``s`` (``walk_log_slope``) are calibrated on the published
    walking contrasts (:mod:`retrosim.bayes.calibration`); ``v0`` is ``walk_ref_speed_m_s``.

    Parameters
    ----------
    speed_m_s : array_like
        Walking speed [m/s].
    params : dict, optional
        Direction parameters (default :func:`direction_params_nominal`: ratio 1).

    Returns
    -------
    numpy.ndarray
        Ratio of net metabolic rates, backward / forward [1].
    """
    p = {**direction_params_nominal(), **(params or {})}
    v = np.asarray(speed_m_s, dtype=float)
    return np.exp(p["walk_log_ratio"] + p["walk_log_slope"] * (v - p["walk_ref_speed_m_s"]))


def direction_factor(speed_m_s, mode, direction, params=None):
    """Multiplier of the forward net rate: 1 forward, the mode's ratio backward.

    Parameters
    ----------
    speed_m_s : array_like
        Speed [m/s].
    mode : {"run", "walk"}
        :func:`running_direction_ratio` or :func:`walking_direction_ratio`.
    direction : {"forward", "backward"} or array of them
    params : dict, optional
        Gait and direction parameters.

    Returns
    -------
    numpy.ndarray
        Factor [1].
    """
    mode = str(check_choice("mode", mode, _gait.MODES))
    back = np.asarray(check_choice("direction", direction, _gait.DIRECTIONS) == "backward")
    ratio = (running_direction_ratio if mode == "run" else walking_direction_ratio)(
        speed_m_s, params
    )
    return np.where(back, ratio, 1.0)


# --------------------------------------------------------------------------- outputs
#: Output variables of :func:`energy_outputs`: name -> (units, long_name, scales with mass).
ENERGY_OUTPUTS = {
    "net_rate_w_kg": (UNITS["power_per_mass"], "net metabolic rate per kg", False),
    "gross_rate_w_kg": (UNITS["power_per_mass"], "gross metabolic rate per kg", False),
    "gross_rate_w": (UNITS["power"], "gross metabolic rate", True),
    "vo2_gross_ml_kg_min": (UNITS["vo2"], "gross oxygen uptake", False),
    "vo2_net_ml_kg_min": (UNITS["vo2"], "net oxygen uptake", False),
    "net_cost_j_kg_m": (UNITS["cost_per_mass_distance"], "net energy cost of transport", False),
    "gross_cost_j_kg_m": (UNITS["cost_per_mass_distance"], "gross energy cost of transport", False),
    "gross_kcal_min": (UNITS["energy_rate_kcal"], "gross energy expenditure per minute", True),
    "gross_kcal_km": (
        UNITS["energy_distance_kcal"],
        "gross energy expenditure per kilometre",
        True,
    ),
    "net_kcal_km": (UNITS["energy_distance_kcal"], "net energy expenditure per kilometre", True),
}


def energy_outputs(net_rate_w_kg, speed_m_s, mass_kg, rer=DEFAULT_RER):
    """Every energy unit from a net metabolic rate.

    Parameters
    ----------
    net_rate_w_kg : array_like
        Net metabolic rate [W/kg].
    speed_m_s : array_like
        Speed [m/s].
    mass_kg : array_like
        Body mass [kg] (only the per-person outputs depend on it).
    rer : float
        Respiratory exchange ratio for the Weir conversion.

    Returns
    -------
    dict of ndarray
        Keys of :data:`ENERGY_OUTPUTS`.
    """
    net = np.asarray(net_rate_w_kg, dtype=float)
    v = np.asarray(speed_m_s, dtype=float)
    m = np.asarray(mass_kg, dtype=float)
    rest = vo2_to_w_kg(RESTING_VO2_ML_KG_MIN, rer)
    gross = net + rest
    to_vo2 = 60.0 * 1000.0 / (kcal_per_litre_o2(rer) * J_PER_KCAL)
    gross_cost = gross / v
    net_cost = net / v
    # per-kg quantities first (small arrays), then one multiplication by mass each (the
    # large outputs; split over threads, bitwise equal to ``a * m``)
    mul = _kernels.multiply
    return {
        "net_rate_w_kg": net,
        "gross_rate_w_kg": gross,
        "gross_rate_w": mul(gross, m),
        "vo2_gross_ml_kg_min": gross * to_vo2,
        "vo2_net_ml_kg_min": net * to_vo2,
        "net_cost_j_kg_m": net_cost,
        "gross_cost_j_kg_m": gross_cost,
        "gross_kcal_min": mul(gross * (60.0 / J_PER_KCAL), m),
        "gross_kcal_km": mul(gross_cost * (1000.0 / J_PER_KCAL), m),
        "net_kcal_km": mul(net_cost * (1000.0 / J_PER_KCAL), m),
    }


def forward_net_rate(model, speed_m_s, mode, grade=0.0, *, contact_time_s=None,
                     params=None, rer=DEFAULT_RER):  # fmt: skip
    """Forward net metabolic rate of one model, by name; NaN where the model does not apply.

    Dispatches to the model functions (pvlib ``get_sky_diffuse`` style) and expresses each as
    a net rate: gross VO2 models minus the resting :data:`RESTING_VO2_ML_KG_MIN`, cost models
    times speed, VO2 converted with Weir at ``rer``:

    ========================  ================================================================
    ``model``                 computed from
    ========================  ================================================================
    ``"kram_taylor"``         :func:`kram_taylor` (running, level)
    ``"acsm"``                :func:`acsm` (net; any grade)
    ``"minetti_2002"``        :func:`minetti_2002` times speed (NaN beyond
                              :data:`MINETTI_GRADE_LIMIT`)
    ``"leger_mercier_1984"``  :func:`leger_mercier_1984` minus rest (running, level)
    ``"margaria"``            :func:`margaria` times speed (running, level)
    ========================  ================================================================

    Broadcasting; used by :func:`metabolic_rate` and the chain. Models that apply only to
    level running give NaN for walking and for non-zero grade.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    speed_m_s : array_like
        Speed [m/s] (checked by the model functions: positive, below
        :data:`retrosim.models.gait.RUN_SPEED_MAX_M_S`).
    mode : {"run", "walk"}
    grade : array_like
        Decimal grade [1].
    contact_time_s : array_like, optional
        Forward contact time [s] for ``"kram_taylor"`` (default from the gait model).
    params : dict, optional
        Gait parameters (default nominal).
    rer : float
        Respiratory exchange ratio [1] of the Weir conversion.

    Returns
    -------
    numpy.ndarray
        Forward net metabolic rate [W/kg].
    """
    if model not in MODELS:
        raise InputError(f"unknown model {model!r}; expected one of {MODELS}", argument="model")
    v = np.asarray(speed_m_s, dtype=float)
    i = np.asarray(grade, dtype=float)
    if (model, mode) not in VALID_SPEED:
        return np.full(np.broadcast(v, i).shape, np.nan)
    level = i == 0.0
    if model == "kram_taylor":
        tc = _gait._forward_contact_time(v, params or _gait.nominal_parameters())
        tc = tc if contact_time_s is None else contact_time_s
        net = kram_taylor(tc, v, coefficient_m=kram_taylor_coefficient(rer), params=params)
        return np.where(level, net, np.nan)
    if model == "acsm":
        return vo2_to_w_kg(acsm(v, mode, i, net=True), rer)
    if model == "minetti_2002":
        inside = np.abs(i) <= MINETTI_GRADE_LIMIT[mode]
        cost = minetti_2002(np.where(inside, i, 0.0), mode)
        return np.where(inside, cost * v, np.nan)
    if model == "leger_mercier_1984":
        net_vo2 = leger_mercier_1984(v) - RESTING_VO2_ML_KG_MIN
        return np.where(level, vo2_to_w_kg(net_vo2, rer), np.nan)
    return np.where(level, margaria(v) * v, np.nan)  # margaria


def metabolic_rate(model, speed_m_s, mass_kg, direction="forward", mode="run", grade=0.0, *,
                   params=None, rer=DEFAULT_RER):  # fmt: skip
    """Energy outputs of one model, forward or backward, with input checks.

    Forward: :func:`forward_net_rate`. Backward: the force-time model takes the backward
    contact time and :func:`running_volume_ratio`; every other model the forward rate times
    :func:`direction_factor`.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    speed_m_s : array_like
        Speed [m/s].
    mass_kg : array_like
        Body mass [kg].
    direction : {"forward", "backward"}
    mode : {"run", "walk"}
    grade : array_like
        Decimal grade [1] (0.05 = 5 %), -0.5 to 0.5.
    params : dict, optional
        Gait + direction parameters (default nominal / prior centres).
    rer : float
        Respiratory exchange ratio [1] (Weir).

    Returns
    -------
    dict
        :data:`ENERGY_OUTPUTS` arrays plus ``"warning"`` (empty string when inside the
        model's validated range).
    """
    model = str(check_choice("model", model, MODELS))
    mode = str(check_choice("mode", mode, _gait.MODES))
    direction = str(check_choice("direction", direction, _gait.DIRECTIONS))
    v = _gait.check_speed(speed_m_s, mode)
    m = _gait.check_mass(mass_kg)
    i = check_range("grade", grade, -0.5, 0.5, "1 (decimal grade)", lo_inclusive=True)
    kcal_per_litre_o2(rer)
    p = {**_gait.nominal_parameters(), **direction_params_nominal(), **(params or {})}
    if (model, mode) not in VALID_SPEED:
        raise InputError(f"model {model!r} does not describe mode {mode!r}", argument="mode")
    if model == "kram_taylor":
        tc = _gait.spring_mass_running(v, 1.0, None, direction, params=p, _check=False)[
            "contact_time_s"
        ]
        vol = running_volume_ratio(v, p) if direction == "backward" else 1.0
        net = kram_taylor(tc, v, volume_ratio=vol, coefficient_m=kram_taylor_coefficient(rer),
                          params=p)  # fmt: skip
        net = np.where(i == 0.0, net, np.nan)
    else:
        net = forward_net_rate(model, v, mode, i, params=p, rer=rer)
        net = net * direction_factor(v, mode, direction, p)
    out = energy_outputs(net, v, m, rer)
    out["warning"] = speed_warning(model, mode, v)
    return out


def speed_warning(model, mode, speed_m_s):
    """Warning text when speeds leave the validated range of (model, mode), else ''."""
    lo, hi = VALID_SPEED.get((model, mode), (None, None))
    v = np.asarray(speed_m_s, dtype=float)
    bad = np.zeros(v.shape, bool)
    if lo is not None:
        bad |= v < lo
    if hi is not None:
        bad |= v > hi
    if np.any(bad):
        return (f"{model}/{mode}: {int(bad.sum())} speed value(s) outside the validated range "
                f"({lo if lo is None else round(lo, 2)}-{hi if hi is None else round(hi, 2)} m/s)")  # fmt: skip
    return ""
