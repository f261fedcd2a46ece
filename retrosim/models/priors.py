"""Prior distributions of the models' parameters, and draws from them.

Every backward quantity of the models is the forward one times ``exp(direction effect)``; the
effects are log ratios ``ln(backward / forward)`` at the same speed. Their priors:

* ``dir_step_frequency`` and ``dir_contact_time`` from Cavagna et al. 2012's stiffnesses
  (:func:`retrosim.models.gait.prior_spec`, with the forward gait levels);
* ``dir_muscle_volume ~ N(0, 0.2)``, the walking effects ``walk_log_ratio`` and
  ``walk_log_slope ~ N(0, 0.5)`` each, the knee effects ``dir_knee_lever_arm`` and
  ``dir_knee_flexion ~ N(0, 0.5)`` and the optional speed slope of the lever-arm effect
  ``N(0, 0.2)`` per m/s. These widths are assumptions, stated here (the reasons are in
  :mod:`retrosim.bayes.calibration`, which updates these priors with the published ratios).

:class:`~retrosim.models.chain.RetroChain` draws its parameters from here unless it is given a
fitted posterior.
"""

from __future__ import annotations

import numpy as np

from retrosim.models import energetics as en
from retrosim.models import gait as ga

__all__ = ["EFFECTS", "PRIOR_SD", "SLOPE", "prior_draws", "priors"]

#: Prior SDs of the effects without a literature prior (assumptions, module docstring).
PRIOR_SD = {
    "dir_muscle_volume": 0.2,
    "walk_log_ratio": 0.5,
    "walk_log_slope": 0.5,
    "dir_knee_lever_arm": 0.5,
    "dir_knee_flexion": 0.5,
    "dir_knee_lever_arm_slope": 0.2,
}
#: The direction effects, in the order of every design and draw.
EFFECTS = ("dir_step_frequency", "dir_contact_time", "dir_muscle_volume", "walk_log_ratio",
           "walk_log_slope", "dir_knee_lever_arm", "dir_knee_flexion")  # fmt: skip
#: Optional speed slope of the knee lever-arm effect [per m/s] (sensitivity fit).
SLOPE = "dir_knee_lever_arm_slope"


def priors(*, slope=False):
    """Prior means and SDs of the direction effects: ``(names, mean, sd)``.

    Parameters
    ----------
    slope : bool
        Also the speed slope of the knee lever-arm effect (:data:`SLOPE`).

    Returns
    -------
    names : list of str
    mean, sd : numpy.ndarray
        Normal prior of each effect [ln ratio].
    """
    spec = ga.prior_spec()
    names = list(EFFECTS) + ([SLOPE] if slope else [])
    mean = np.array([spec[n][1] if n in ga.DIRECTION_EFFECTS else 0.0 for n in names])
    sd = np.array([spec[n][2] if n in ga.DIRECTION_EFFECTS else PRIOR_SD[n] for n in names])
    return names, mean, sd


def prior_draws(n_draws, rng) -> dict:
    """Parameter draws from the priors: gait levels and effects, energetics and knee effects.

    Parameters
    ----------
    n_draws : int
        Number of draws.
    rng : int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    dict of str -> numpy.ndarray
        One array of shape ``(n_draws,)`` (or a scalar for fixed values) per parameter, as
        :meth:`retrosim.models.chain.RetroChain.run` takes them.
    """
    rng = np.random.default_rng(rng)
    out = ga.sample_gait_parameters(n_draws, rng)
    out.update(en.direction_params_nominal())
    names, mean, sd = priors()
    for name, m, s in zip(names, mean, sd, strict=True):
        if name not in ga.DIRECTION_EFFECTS:
            out[name] = m + s * rng.standard_normal(int(n_draws))
    return out
