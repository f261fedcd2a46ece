"""Knee loading per step and per km: knee extensor moment, quadriceps force, patellofemoral
joint (PFJ) force and stress, vertical ground-force impulse and loading rate.

Plain vectorised functions (pvlib style) plus the two entry points the composing chain calls:
:func:`sample_parameters` and :func:`from_gait`.

Model, per foot contact (running)::

    M_knee  = |GRF| * d_dir                      knee extensor moment at its peak       [N m]
    F_Q     = M_knee / ma_Q(theta_dir)            quadriceps force                       [N]
    F_PFJ   = k(theta_dir) * F_Q                  PFJ compressive force                  [N]
    sigma   = F_PFJ / A(theta_dir)                PFJ stress                             [MPa]

``theta_dir`` is the knee flexion at the time of peak knee moment and ``d_dir`` the effective
lever arm of the ground reaction force about the knee, both direction-specific (Roos et al.
2012 [4]_); ``|GRF|`` is the peak vertical ground reaction force from :mod:`retrosim.models.gait`
(assumption: the resultant at peak knee moment equals the vertical peak; Roos et al. report
2.3 and 2.4 BW at the peak moment). The forward lever arm is Roos's forward moment over
Roos's forward ``|GRF|`` at that instant (the same pair of quantities the chain multiplies), in
units of the reference body weight implied by Flynn & Soutas-Little's paired values [5]_.

Paired direction effects: the backward inputs are the forward ones times
``exp(direction effect)``::

    theta_B = theta_F exp(dir_knee_flexion),    d_B = d_F exp(dir_knee_lever_arm)

so the backward/forward moment ratio is ``(|GRF|_B / |GRF|_F) exp(dir_knee_lever_arm)`` and its
uncertainty is that of the direction effects, not of the forward levels. The effects come
from :mod:`retrosim.bayes.calibration` (fitted to Roos's paired knee-moment and knee-angle ratios);
:func:`roos_direction_effects` gives Roos's own paired estimates (n = 20) for use without it. ``k(theta)`` and ``ma_Q(theta)`` are the polynomials of
[1]_ and [2]_ with the knee angle in **degrees** (checked in ``tests/models/test_knee.py`` against
in vivo moment arms [8]_ and against Roos's paired moments and PFJ forces). ``A(theta)`` is
linear interpolation of Besier et al.'s contact areas [3]_ at 0, 30 and 60 degrees.

Vertical impulse and loading rate take the half-sine vertical force of the sine-wave method
[7]_. Per km: a knee is loaded once per stride, i.e. ``(1000 / step length) / 2`` times per km. Cumulative
load per km = per-contact value x contacts per km for that knee (the per-distance accounting of
Willson et al. [6]_). Backward running takes more, shorter steps, so a smaller peak per step need
not mean less load per km: both are reported.

References
----------
.. [1] van Eijden TMGJ et al. 1986, J Biomech: mathematical model of the patellofemoral joint
   (fit of k(theta) = F_PFJ/F_Q). Coefficients **read in code**, not in the paper: Fox A,
   github aaronsfox/pfjrf-methods, ``code/Fukuchi2017/calc_PFJRF.py``, which attributes them
   to van Eijden (1986) via Nunes et al. (2018). Bibliographic details not verified.
.. [2] Nunes GS et al. 2018 (review of PFJ stress methods in running), as attributed in the same
   code file for the effective quadriceps lever arm ma_Q(theta) (expressed in metres there).
   Original not read.
.. [3] Besier TF, Draper CE, Gold GE, Beaupre GS, Delp SL. Patellofemoral joint contact area
   increases with knee flexion and weight-bearing. J Orthop Res 2005;23(2):345-350.
   doi:10.1016/j.orthres.2004.08.003, PMID 15734247 (abstract read).
.. [4] Roos PE, Barton N, van Deursen RWM. Patellofemoral joint compression forces in backward
   and forward running. J Biomech 2012;45(9):1656-1660. doi:10.1016/j.jbiomech.2012.03.020,
   PMC3391667 (abstract read).
.. [5] Flynn TW, Soutas-Little RW. Patellofemoral joint compressive forces in forward and
   backward running. J Orthop Sports Phys Ther 1995. PMID 7787851 (abstract read).
.. [6] Willson JD, Sharpee R, Meardon SA, Kernozek TW. Effects of step length on patellofemoral
   joint stress in female runners with and without patellofemoral pain. Clin Biomech
   2014;29:243-247 (abstract read; DOI not read).
.. [7] Morin JB, Dalleau G, Kyrolainen H, Jeannin T, Belli A. A simple method for measuring
   stiffness during running. J Appl Biomech 2005;21:167-180 (half-sine vertical force model).
.. [8] The effective quadriceps and patellar tendon moment arms relative to the tibiofemoral
   finite helical axis. J Biomech (dynamic MRI, 30 F / 10 M), PMC4662057 (abstract read).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from retrosim._checks import check_choice, check_range
from retrosim.config import DATA_DIR
from retrosim.errors import InputError
from retrosim.models import _kernels
from retrosim.units import G
from retrosim.vocabulary import DIRECTIONS, MODES, UNITS

__all__ = [
    "ANGLE_RANGE_DEG",
    "DIRECTIONS",
    "MODES",
    "contact_area",
    "from_gait",
    "knee_extensor_moment",
    "load_parameters",
    "parameter",
    "pfj_force",
    "pfj_force_ratio",
    "pfj_stress",
    "quadriceps_force",
    "quadriceps_moment_arm",
    "reference_inputs",
    "roos_direction_effects",
    "sample_parameters",
]

log = logging.getLogger(__name__)


#: Knee-flexion range [deg] over which every angle-dependent ingredient is defined here:
#: Besier et al. [3] measured contact area at 0, 30 and 60 deg only. The polynomials [1], [2]
#: are not evaluated outside it either (their own fitted range was not read).
ANGLE_RANGE_DEG = (0.0, 60.0)
#: Largest GRF lever arm about the knee accepted [m] (a sanity bound, not a measured value).
LEVER_ARM_MAX_M = 0.5

# k(theta) = (c0 + c1 t + c2 t^2) / (1 + d1 t + d2 t^2 + d3 t^3), t in degrees [1] (read in code).
_K_NUM = (0.462, 1.47e-3, -3.84e-5)
_K_DEN = (1.0, -1.62e-2, 1.55e-4, -6.98e-7)
# ma_Q(theta) = c0 + c1 t + c2 t^2 + c3 t^3 [m], t in degrees [2] (read in code).
_MAQ = (0.046, 2.8e-4, -1.3e-5, 8e-8)

PARAMETERS_CSV = DATA_DIR / "parameters" / "knee.csv"


# --------------------------------------------------------------------------------------------
# parameters file
# --------------------------------------------------------------------------------------------
@functools.cache
def load_parameters():
    """Read ``retrosim/data/parameters/knee.csv`` (published constants with their sources).

    Returns
    -------
    pandas.DataFrame
        Columns ``name, value, sd, units, direction, citation, citation_key, doi, locator, note``.
    """
    import pandas as pd

    path = PARAMETERS_CSV
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError("knee parameter file not found", file=path) from None
    need = {
        "name",
        "value",
        "sd",
        "units",
        "direction",
        "citation",
        "citation_key",
        "doi",
        "locator",
    }
    missing = need - set(table.columns)
    if missing:
        raise InputError(f"missing columns {sorted(missing)}", file=path)
    return table


def parameter(name, direction=None, column="value"):
    """One published value of ``knee.csv``: the row named ``name`` (and ``direction``).

    Parameters
    ----------
    name : str
        Row name, e.g. ``"knee_moment_peak"``.
    direction : {"forward", "backward"}, optional
        For direction-specific rows.
    column : str
        ``"value"`` (default) or ``"sd"``.

    Returns
    -------
    float
        The value in the row's ``units``.

    Raises
    ------
    InputError
        Naming the file, when not exactly one row matches.
    """
    table = load_parameters()
    rows = table[table["name"] == name]
    if direction is not None:
        rows = rows[rows["direction"] == direction]
    if len(rows) != 1:
        raise InputError(
            f"expected exactly one row named {name!r} (direction {direction!r}), found {len(rows)}",
            file=PARAMETERS_CSV,
        )
    return float(rows[column].iloc[0])


@functools.cache
def reference_inputs():
    """Direction-specific knee inputs derived from the published values in ``knee.csv``.

    The effective lever arm of the ground reaction force about the knee is
    ``d = M_peak / (|GRF|_BW * W_ref)`` from Roos et al. [4]_ (peak knee moment and ``|GRF|`` at that
    instant, by direction). Roos's abstract does not give body mass, so the reference body
    weight ``W_ref`` is the one implied by Flynn & Soutas-Little's paired values [5]_
    (4253 N = 5.6 BW and 2277 N = 3.0 BW, both about 759 N); this is a modelling assumption and
    PFJ force in BW scales as 1 / W_ref.

    Between-subject spread of ``d``: with ``M = |GRF| * d`` and the two factors independent,
    ``CV_d^2 = CV_M^2 - CV_GRF^2`` (log-variances add); an assumption, since the correlation is
    not reported.

    Returns
    -------
    dict
        ``{direction: {"knee_flexion_deg": (mean, sd), "lever_arm_m": (mean, sd)}}`` plus
        ``"reference_body_weight_n"``.

    References
    ----------
    .. [4] Roos PE, Barton N, van Deursen RWM. Patellofemoral joint compression forces in
       backward and forward running. J Biomech 2012;45(9):1656-1660.
       doi:10.1016/j.jbiomech.2012.03.020 (abstract read).
    .. [5] Flynn TW, Soutas-Little RW. Patellofemoral joint compressive forces in forward and
       backward running. J Orthop Sports Phys Ther 1995. PMID 7787851 (abstract read).
    """
    w_ref = np.mean(
        [parameter("pfj_force_peak_n", d) / parameter("pfj_force_peak_bw", d) for d in DIRECTIONS]
    )
    out = {"reference_body_weight_n": float(w_ref)}
    for d in DIRECTIONS:
        m, m_sd = parameter("knee_moment_peak", d), parameter("knee_moment_peak", d, "sd")
        g, g_sd = parameter("grf_at_peak_moment", d), parameter("grf_at_peak_moment", d, "sd")
        lever = m / (g * w_ref)
        cv = np.sqrt(max((m_sd / m) ** 2 - (g_sd / g) ** 2, 0.0))
        out[d] = {
            "knee_flexion_deg": (
                parameter("knee_flexion_at_peak_moment", d),
                parameter("knee_flexion_at_peak_moment", d, "sd"),
            ),
            "lever_arm_m": (float(lever), float(lever * cv)),
        }
    return out


# --------------------------------------------------------------------------------------------
# angle-dependent ingredients
# --------------------------------------------------------------------------------------------
def _check_angle(knee_flexion_deg, name="knee_flexion_deg"):
    lo, hi = ANGLE_RANGE_DEG
    return check_range(
        name,
        knee_flexion_deg,
        lo,
        hi,
        "deg",
        lo_inclusive=True,
        hint="outside the range where the k(theta), ma_Q(theta) and contact-area relations are "
        "defined here; not extrapolated (give knee flexion in degrees, not radians)",
    )


def _poly(coefs, x):
    """Horner evaluation, ``coefs`` in ascending order."""
    out = np.full_like(x, coefs[-1], dtype=float)
    for c in coefs[-2::-1]:
        out = out * x + c
    return out


def quadriceps_moment_arm(knee_flexion_deg):
    """Effective quadriceps lever arm as a function of knee flexion.

    ``ma_Q = 0.046 + 2.8e-4 t - 1.3e-5 t^2 + 8e-8 t^3`` with ``t`` in degrees [2]_ (coefficients
    read in code, see module references).

    Parameters
    ----------
    knee_flexion_deg : array_like
        Knee flexion angle [deg], 0 (full extension) to 60.

    Returns
    -------
    numpy.ndarray
        Effective quadriceps moment arm [m].

    Raises
    ------
    InputError
        Angle outside [0, 60] deg (not extrapolated).

    References
    ----------
    .. [2] Nunes et al. 2018 via github aaronsfox/pfjrf-methods ``code/Fukuchi2017/calc_PFJRF.py``.
    """
    return _poly(_MAQ, _check_angle(knee_flexion_deg))


def pfj_force_ratio(knee_flexion_deg):
    """Ratio k of PFJ compressive force to quadriceps force as a function of knee flexion.

    ``k = (0.462 + 1.47e-3 t - 3.84e-5 t^2) / (1 - 1.62e-2 t + 1.55e-4 t^2 - 6.98e-7 t^3)``,
    ``t`` in degrees [1]_. In degrees k rises from 0.462 at 0 deg to about 0.95 at 60 deg; read
    in radians it would stay within 0.5 % of 0.462 over the whole range of knee motion.

    Parameters
    ----------
    knee_flexion_deg : array_like
        Knee flexion angle [deg], 0 to 60.

    Returns
    -------
    numpy.ndarray
        k [1].

    Raises
    ------
    InputError
        Angle outside [0, 60] deg.

    References
    ----------
    .. [1] van Eijden et al. 1986 via github aaronsfox/pfjrf-methods
       ``code/Fukuchi2017/calc_PFJRF.py`` (read in code).
    """
    t = _check_angle(knee_flexion_deg)
    return _poly(_K_NUM, t) / _poly(_K_DEN, t)


@functools.cache
def _area_table_mm2():
    angles = np.array([0.0, 30.0, 60.0])
    areas = np.array([parameter(f"pfj_area_male_unloaded_{a}deg") for a in (0, 30, 60)])
    gain = 1.0 + parameter("pfj_area_weight_bearing_increase") / 100.0
    return angles, areas, gain


def contact_area(knee_flexion_deg, *, weight_bearing=True):
    """PFJ contact area by linear interpolation of Besier et al. 2005 [3]_.

    Male means, unloaded (0.15 BW): 210, 414, 520 mm^2 at 0, 30, 60 deg. With
    ``weight_bearing=True`` the areas are multiplied by 1.24 (the mean +24 % from unloaded to
    0.45 BW per leg). Running loads are several BW, beyond the loads imaged, so the area is an
    extrapolation in load (not in angle). The female 0 deg value is not reported, so female
    areas are not offered.

    Parameters
    ----------
    knee_flexion_deg : array_like
        Knee flexion angle [deg], 0 to 60.
    weight_bearing : bool, default True
        Apply the weight-bearing increase.

    Returns
    -------
    numpy.ndarray
        Contact area [mm^2].

    References
    ----------
    .. [3] Besier et al. 2005, J Orthop Res 23(2):345-350, doi:10.1016/j.orthres.2004.08.003.
    """
    t = _check_angle(knee_flexion_deg)
    angles, areas, gain = _area_table_mm2()
    # piecewise-linear on [0, 30] and [30, 60], vectorised
    lower = t <= angles[1]
    a0 = np.where(lower, areas[0], areas[1])
    a1 = np.where(lower, areas[1], areas[2])
    frac = np.where(lower, t, t - angles[1]) / (angles[1] - angles[0])
    area = a0 + (a1 - a0) * frac
    return area * gain if weight_bearing else area


# --------------------------------------------------------------------------------------------
# force chain
# --------------------------------------------------------------------------------------------
def knee_extensor_moment(grf_n, lever_arm_m):
    """Knee extensor moment as ground reaction force times its effective lever arm.

    Parameters
    ----------
    grf_n : array_like
        Ground reaction force magnitude at peak knee moment [N].
    lever_arm_m : array_like
        Perpendicular distance of the GRF line of action from the knee joint centre [m].

    Returns
    -------
    numpy.ndarray
        Knee extensor moment [N m].
    """
    grf = check_range("grf_n", grf_n, 0.0, 1e5, "N", lo_inclusive=True)
    lever = check_range("lever_arm_m", lever_arm_m, 0.0, LEVER_ARM_MAX_M, "m", lo_inclusive=True)
    return grf * lever


def quadriceps_force(moment_nm, knee_flexion_deg):
    """Quadriceps force ``F_Q = M / ma_Q(theta)`` (negative moments give 0).

    Parameters
    ----------
    moment_nm : array_like
        Knee extensor moment [N m].
    knee_flexion_deg : array_like
        Knee flexion [deg], 0 to 60.

    Returns
    -------
    numpy.ndarray
        Quadriceps force [N].
    """
    return np.clip(np.asarray(moment_nm, dtype=float), 0.0, None) / quadriceps_moment_arm(
        knee_flexion_deg
    )


def pfj_force(moment_nm, knee_flexion_deg):
    """PFJ compressive force ``F_PFJ = k(theta) * M / ma_Q(theta)`` [1]_ [2]_.

    Parameters
    ----------
    moment_nm : array_like
        Knee extensor moment [N m].
    knee_flexion_deg : array_like
        Knee flexion [deg], 0 to 60.

    Returns
    -------
    numpy.ndarray
        PFJ compressive force [N].

    References
    ----------
    .. [1] van Eijden et al. 1986 via github aaronsfox/pfjrf-methods
       ``code/Fukuchi2017/calc_PFJRF.py`` (k(theta), read in code).
    .. [2] Nunes et al. 2018 via the same code file (ma_Q(theta), read in code).
    """
    return pfj_force_ratio(knee_flexion_deg) * quadriceps_force(moment_nm, knee_flexion_deg)


def pfj_stress(force_n, knee_flexion_deg, *, weight_bearing=True):
    """PFJ stress ``F_PFJ / A(theta)`` [3]_.

    Parameters
    ----------
    force_n : array_like
        PFJ compressive force [N].
    knee_flexion_deg : array_like
        Knee flexion [deg], 0 to 60.
    weight_bearing : bool, default True
        See :func:`contact_area`.

    Returns
    -------
    numpy.ndarray
        Stress [MPa] (N/mm^2).

    References
    ----------
    .. [3] Besier et al. 2005, J Orthop Res 23(2):345-350, doi:10.1016/j.orthres.2004.08.003.
    """
    return np.asarray(force_n, dtype=float) / contact_area(
        knee_flexion_deg, weight_bearing=weight_bearing
    )


# --------------------------------------------------------------------------------------------
# chain entry points
# --------------------------------------------------------------------------------------------
_PARAM_KEYS = (
    "knee_flexion_deg_forward",
    "knee_flexion_deg_backward",
    "knee_lever_arm_m_forward",
    "knee_lever_arm_m_backward",
)
#: Direction effects ``ln(backward / forward)`` of the knee inputs (paired with forward).
DIRECTION_EFFECTS = ("dir_knee_flexion", "dir_knee_lever_arm")


def _log_ratio(name, n, r):
    """ln(B/F) of a Roos outcome and its paired delta-method variance (n subjects, corr. r)."""
    m_f, m_b = parameter(name, "forward"), parameter(name, "backward")
    v_f = parameter(name, "forward", "sd") ** 2 / (n * m_f**2)
    v_b = parameter(name, "backward", "sd") ** 2 / (n * m_b**2)
    return float(np.log(m_b / m_f)), float(v_f + v_b - 2.0 * r * np.sqrt(v_f * v_b))


@functools.cache
def roos_direction_effects(r=None):
    """Roos et al.'s paired direction effects of the knee inputs, mean and SD [4]_.

    ``dir_knee_flexion = ln(theta_B / theta_F)`` from the knee flexion at peak moment;
    ``dir_knee_lever_arm = ln(M_B / M_F) - ln(|GRF|_B / |GRF|_F)`` (the lever arm is moment
    over force). Each log ratio has the paired delta-method variance
    ``v_F + v_B - 2 r sqrt(v_F v_B)``, ``v = SD^2 / (n m^2)`` with n = 20. The lever-arm effect
    takes the assumption of :func:`reference_inputs`: ``M = |GRF| d`` with ``|GRF|`` and ``d``
    independent across subjects, so ``ln M`` and ``ln |GRF|`` share the variance of ``ln |GRF|``
    and ``var(ln d) = var(ln M) - var(ln |GRF|)`` (their correlation is not reported; treating
    the moment and force ratios as independent instead would add the two variances).

    Parameters
    ----------
    r : float, optional
        Forward-backward correlation across subjects (none is reported); default
        :data:`retrosim.evidence.tables.DEFAULT_R`, the value the evidence effect sizes use.

    Returns
    -------
    dict
        ``{name: (mean, sd)}`` for :data:`DIRECTION_EFFECTS`.

    References
    ----------
    .. [4] Roos et al. 2012, J Biomech 45(9):1656-1660 (paired knee moments, ``|GRF|`` and angles).
    """
    if r is None:
        from retrosim.evidence.tables import DEFAULT_R

        r = DEFAULT_R
    r = float(check_range("r", r, -1.0, 1.0, "1 (correlation)", lo_inclusive=True))
    n = parameter("roos_n")
    flex, v_flex = _log_ratio("knee_flexion_at_peak_moment", n, r)
    mom, v_mom = _log_ratio("knee_moment_peak", n, r)
    grf, v_grf = _log_ratio("grf_at_peak_moment", n, r)
    return {
        "dir_knee_flexion": (flex, float(np.sqrt(v_flex))),
        "dir_knee_lever_arm": (mom - grf, float(np.sqrt(max(v_mom - v_grf, 0.0)))),
    }


def _truncated_normal(rng, mean, sd, lo, hi, n):
    x = rng.normal(mean, sd, n)
    bad = (x < lo) | (x > hi)
    while bad.any():  # redraw only the few outside; converges fast for |mean-lo| >> sd
        x[bad] = rng.normal(mean, sd, int(bad.sum()))
        bad = (x < lo) | (x > hi)
    return x


def sample_parameters(n_draws: int, rng: np.random.Generator, *, effects: dict | None = None
                      ) -> dict[str, np.ndarray]:  # fmt: skip
    """Draw the knee inputs: forward levels with their spread, backward = forward x exp(effect).

    - forward knee flexion at peak knee moment ~ Normal(44, 6) deg (Roos et al. 2012 [4]_),
      truncated to [0, 60] deg (range of the angle relations);
    - forward effective GRF lever arm ~ lognormal with the forward mean and SD of
      :func:`reference_inputs` (Roos's moment and ``|GRF|`` [4]_, reference body weight from Flynn
      & Soutas-Little [5]_);
    - backward ones: the forward draw times ``exp(dir_knee_flexion)`` and
      ``exp(dir_knee_lever_arm)`` (paired; backward flexion clipped to [0, 60] deg and the
      lever arm to :data:`LEVER_ARM_MAX_M`, which only wide prior draws reach).

    Forward angle and lever arm are drawn independently (their correlation is not reported).

    Parameters
    ----------
    n_draws : int
        Number of draws (>= 1).
    rng : numpy.random.Generator
        Source of randomness.
    effects : dict, optional
        Direction effects per draw (keys :data:`DIRECTION_EFFECTS`, arrays of shape
        ``(n_draws,)`` or scalars), e.g. calibration draws; default: drawn from
        :func:`roos_direction_effects`.

    Returns
    -------
    dict of str to numpy.ndarray
        Keys ``knee_flexion_deg_forward``, ``knee_flexion_deg_backward`` [deg],
        ``knee_lever_arm_m_forward``, ``knee_lever_arm_m_backward`` [m]; each shape (n_draws,).

    References
    ----------
    .. [4] Roos et al. 2012, J Biomech 45(9):1656-1660 (knee flexion, moment and ``|GRF|``).
    .. [5] Flynn & Soutas-Little 1995, PMID 7787851 (paired PFJ forces in N and BW).
    """
    if not isinstance(n_draws, int | np.integer) or n_draws < 1:
        raise InputError(f"expected a positive integer, got {n_draws!r}", argument="n_draws")
    if not isinstance(rng, np.random.Generator):
        raise InputError("expected a numpy.random.Generator", argument="rng")
    ref = reference_inputs()
    lo, hi = ANGLE_RANGE_DEG
    mean, sd = ref["forward"]["knee_flexion_deg"]
    theta_f = _truncated_normal(rng, mean, sd, lo, hi, n_draws)
    mean, sd = ref["forward"]["lever_arm_m"]
    s2 = np.log1p((sd / mean) ** 2)
    lever_f = rng.lognormal(np.log(mean) - s2 / 2, np.sqrt(s2), n_draws)
    if effects is None or any(k not in effects for k in DIRECTION_EFFECTS):
        roos = roos_direction_effects()
        effects = {k: rng.normal(m, s, n_draws) for k, (m, s) in roos.items()}
    d_flex = np.broadcast_to(np.asarray(effects["dir_knee_flexion"], float), (n_draws,))
    d_lever = np.broadcast_to(np.asarray(effects["dir_knee_lever_arm"], float), (n_draws,))
    return {
        "knee_flexion_deg_forward": theta_f,
        "knee_flexion_deg_backward": np.clip(theta_f * np.exp(d_flex), lo, hi),
        "knee_lever_arm_m_forward": lever_f,
        "knee_lever_arm_m_backward": np.minimum(lever_f * np.exp(d_lever), LEVER_ARM_MAX_M),
    }


def _point_parameters():
    ref = reference_inputs()
    roos = roos_direction_effects()
    theta_f = ref["forward"]["knee_flexion_deg"][0]
    lever_f = ref["forward"]["lever_arm_m"][0]
    return {
        "knee_flexion_deg_forward": np.asarray(theta_f),
        "knee_flexion_deg_backward": np.asarray(theta_f * np.exp(roos["dir_knee_flexion"][0])),
        "knee_lever_arm_m_forward": np.asarray(lever_f),
        "knee_lever_arm_m_backward": np.asarray(lever_f * np.exp(roos["dir_knee_lever_arm"][0])),
    }


_GAIT_KEYS = ("contact_time_s", "step_frequency_hz", "step_length_m", "vgrf_peak_n", "vgrf_peak_bw")

_NAN_NOTE = (
    "NaN where mode is 'walk': the direction-specific knee inputs (knee flexion and GRF lever arm "
    "at peak knee moment) were read for running only (Roos et al. 2012)"
)


def from_gait(
    gait: dict,
    *,
    mass_kg,
    direction,
    mode,
    speed_m_s,
    params: dict | None = None,
) -> dict[str, tuple[np.ndarray, str, str]]:
    """Knee loading per step and per km from the gait model's outputs.

    Parameters
    ----------
    gait : dict of str to array_like
        Output of the gait model, at least ``contact_time_s`` [s], ``step_frequency_hz`` [1/s],
        ``step_length_m`` [m], ``vgrf_peak_n`` [N], ``vgrf_peak_bw`` [BW], broadcastable to the
        grid (speed, mass, direction, mode, grade, draw); ``flight_time_s`` is not needed.
    mass_kg : array_like
        Body mass [kg], (0, 300], broadcastable to the grid.
    direction : array_like of str
        ``'forward'`` or ``'backward'``, broadcastable to the grid.
    mode : array_like of str
        ``'run'`` or ``'walk'``, broadcastable to the grid. Knee variables are NaN for walking.
    speed_m_s : array_like
        Speed [m/s], (0, 12]; used for validation only (the knee inputs were measured at
        2.8-3.4 m/s; outside that they are carried unchanged, see ``attrs``).
    params : dict of str to ndarray, optional
        From :func:`sample_parameters`, arrays whose last axis is the draw axis of the grid.
        Default: the published means (no draw axis).

    Returns
    -------
    dict of str to (numpy.ndarray, str, str)
        ``name -> (values, units, long_name)``; see the module docstring for the equations.
        Per-contact values concern one knee; per-km values multiply them by that knee's contacts
        per km (``(1000 / step length) / 2``).

    Raises
    ------
    InputError
        Missing gait keys, invalid mass, speed, direction, mode, or knee angles outside
        [0, 60] deg in ``params``.
    """
    missing = [k for k in _GAIT_KEYS if k not in gait]
    if missing:
        raise InputError(f"gait output lacks {missing}", argument="gait")
    mass = check_range("mass_kg", mass_kg, 0.0, 300.0, "kg")
    check_range("speed_m_s", speed_m_s, 0.0, 12.0, "m/s", hint="speed must be in m/s (km/h / 3.6)")
    direction = check_choice("direction", direction, DIRECTIONS)
    mode = check_choice("mode", mode, MODES)
    if params is None:
        params = _point_parameters()
    absent = [k for k in _PARAM_KEYS if k not in params]
    if absent:
        raise InputError(f"params lacks {absent} (use knee.sample_parameters)", argument="params")

    # --- small arrays: (direction x mode x draw) ingredients, cheap ---------------------------
    backward = direction == "backward"
    theta = np.where(
        backward, params["knee_flexion_deg_backward"], params["knee_flexion_deg_forward"]
    )
    lever = np.where(
        backward, params["knee_lever_arm_m_backward"], params["knee_lever_arm_m_forward"]
    )
    theta = _check_angle(theta, "params['knee_flexion_deg_*']")
    check_range("params['knee_lever_arm_m_*']", lever, 0.0, LEVER_ARM_MAX_M, "m")
    # the force chain is linear in |GRF|: evaluated per newton (per N m) with the public
    # functions on these small arrays, then scaled once on the grid below
    ma_q = quadriceps_moment_arm(theta)
    k = pfj_force_ratio(theta)
    area_mm2 = contact_area(theta)
    run_mask = np.where(mode == "walk", np.nan, 1.0)  # NaN for walking knee variables
    lever_run = knee_extensor_moment(1.0, lever) * run_mask  # M per N of |GRF| [m]
    inv_ma = quadriceps_force(1.0, theta) * run_mask  # F_Q per N m
    gain = pfj_force(1.0, theta) * run_mask  # F_PFJ per N m
    gain_area = pfj_stress(gain, theta)  # MPa per N m
    defined = (~backward) & (mode == "run")  # loading rate to an impact peak defined
    fwd_mask = np.where(defined, 1.0, np.nan)

    # --- grid arrays (one multiplication each where possible) -------------------------------
    weight_n = mass * G
    inv_weight = 1.0 / weight_n
    peak_n = np.asarray(gait["vgrf_peak_n"], dtype=float)
    peak_bw = np.asarray(gait["vgrf_peak_bw"], dtype=float)
    t_c = np.asarray(gait["contact_time_s"], dtype=float)
    f_step = np.asarray(gait["step_frequency_hz"], dtype=float)
    contacts = 500.0 / np.asarray(gait["step_length_m"], dtype=float)  # one knee, per km
    half_sine = (2.0 / np.pi) * t_c  # integral of a half-sine of unit peak over t_c [s]

    # products that span the grid (mass axis included) are split over threads by _kernels
    # (bitwise equal to the plain products)
    mul = _kernels.multiply
    moment = mul(peak_n, lever_run)
    f_pfj = mul(moment, gain)
    f_pfj_bw = mul(f_pfj, inv_weight)
    stress = mul(moment, gain_area)
    pfj_impulse = mul(f_pfj, half_sine)
    rise_rate = (2.0 * peak_bw / t_c) * run_mask
    # vertical impulse per contact from momentum balance over one step on level ground: the
    # vertical impulse of one step equals m g x step period (one contact per step) [7]
    vgrf_impulse = _kernels.divide(weight_n, f_step)
    # per km and leg: (m g / f) x (500 / L) = 500 m g / v, since L f = v (direction-independent)
    vgrf_impulse_km = weight_n * (500.0 / np.asarray(speed_m_s, dtype=float))

    out = {
        "knee_flexion_at_peak_moment_deg": (
            theta * run_mask,
            UNITS["angle"],
            "knee flexion at peak knee extensor moment (Roos et al. 2012)",
        ),
        "knee_lever_arm_m": (
            lever_run,
            UNITS["length"],
            "effective GRF lever arm about the knee at peak knee moment",
        ),
        "quadriceps_moment_arm_m": (
            ma_q * run_mask,
            UNITS["length"],
            "effective quadriceps moment arm ma_Q(theta) (van Eijden 1986 / Nunes 2018, read in code)",
        ),
        "pfj_force_ratio": (
            k * run_mask,
            UNITS["ratio"],
            "k(theta) = PFJ force / quadriceps force",
        ),
        "pfj_contact_area_mm2": (
            area_mm2 * run_mask,
            UNITS["contact_area"],
            "PFJ contact area, Besier et al. 2005 male means x 1.24 weight-bearing",
        ),
        "knee_ext_moment_nm": (moment, UNITS["moment"], "peak knee extensor moment per contact"),
        "quadriceps_force_n": (
            mul(moment, inv_ma),
            UNITS["force"],
            "peak quadriceps force per contact",
        ),
        "pfj_force_n": (
            f_pfj,
            UNITS["force"],
            "peak patellofemoral joint compressive force per contact",
        ),
        "pfj_force_bw": (f_pfj_bw, UNITS["force_bw"], "peak PFJ compressive force per contact"),
        "pfj_stress_mpa": (stress, UNITS["stress"], "peak PFJ stress per contact"),
        "pfj_impulse_ns": (
            pfj_impulse,
            UNITS["impulse"],
            "PFJ force-time integral per contact (half-sine time course over stance assumed)",
        ),
        "vgrf_impulse_ns": (
            vgrf_impulse,
            UNITS["impulse"],
            "vertical GRF impulse per contact (= body weight x step period, level ground)",
        ),
        "vgrf_rise_rate_bw_s": (
            rise_rate,
            UNITS["force_bw_rate"],
            "mean vGRF rise rate touchdown to peak of the half-sine model, 2 F_peak / t_c",
        ),
        "vgrf_loading_rate_bw_s": (
            rise_rate * fwd_mask,
            UNITS["force_bw_rate"],
            "vGRF loading rate (half-sine proxy, forward running); NaN for backward running: "
            "forefoot landing without an impact peak, where a loading rate to the impact peak "
            "is undefined",
        ),
        "loading_rate_defined": (
            defined,
            UNITS["ratio"],
            "True where vgrf_loading_rate_bw_s is defined (forward running)",
        ),
        "contacts_per_km_knee": (
            contacts,
            UNITS["per_km"],
            "foot contacts per km for one knee (steps / 2)",
        ),
        "pfj_force_per_km_bw": (
            mul(f_pfj_bw, contacts),
            UNITS["force_bw_per_km"],
            "cumulative peak PFJ force per km, one knee (peak per contact x contacts per km)",
        ),
        "pfj_stress_per_km_mpa": (
            mul(stress, contacts),
            UNITS["stress_per_km"],
            "cumulative peak PFJ stress per km, one knee (Willson et al. 2014 accounting)",
        ),
        "pfj_impulse_per_km_ns": (
            mul(pfj_impulse, contacts),
            UNITS["impulse_per_km"],
            "PFJ impulse per km, one knee",
        ),
        "vgrf_impulse_per_km_ns": (
            vgrf_impulse_km,
            UNITS["impulse_per_km"],
            "vertical GRF impulse per km, one leg (= 500 m g / v, any direction)",
        ),
        "vgrf_peak_per_km_bw": (
            peak_bw * contacts,
            UNITS["force_bw_per_km"],
            "cumulative peak vGRF per km, one leg",
        ),
    }
    if np.any(mode == "walk"):
        unmasked = {
            "vgrf_impulse_ns",
            "contacts_per_km_knee",
            "vgrf_impulse_per_km_ns",
            "vgrf_peak_per_km_bw",
            "loading_rate_defined",
        }
        out = {
            name: (val, units, long if name in unmasked else f"{long}; {_NAN_NOTE}")
            for name, (val, units, long) in out.items()
        }
    return out
