"""Compose gait, energetics (and knee) models over a condition grid (pvlib ModelChain spirit).

:class:`RetroChain` evaluates the models over speed x mass x direction x mode x grade x
draw and returns an :class:`xarray.Dataset`. The work is done by the pure function
:func:`evaluate`, which takes 1-D coordinate arrays and a parameter dict and returns
numpy arrays; it can be applied to any chunk of the grid independently (e.g. by Dask:
split the speed or mass coordinate, keep the others whole).

Broadcasting, not loops: every array has the canonical axis order :data:`DIMS`, with
length-1 axes where a quantity does not depend on a dimension (per-kg energetics do not
depend on mass, gait does not depend on grade, ...). In the Dataset such variables
simply lack that dimension, so memory grows with each variable's own dimensions and
at most linearly with the grid. ``broadcast=True`` materialises every variable on the
full grid.

Parameters per draw come from the literature priors (:func:`retrosim.models.priors.prior_draws`,
the default), or from a fitted posterior given as ``RetroChain(posterior=...)`` (anything with a
``draws(n_draws, rng)`` method, e.g. the calibration result of
:func:`retrosim.bayes.calibration.fit`), or are passed to :meth:`RetroChain.run` as ``params``.
The models never fit anything themselves.
"""

from __future__ import annotations

import logging

import numpy as np

from retrosim._checks import check_choice, check_range
from retrosim.errors import InputError
from retrosim.models import _kernels, priors
from retrosim.models import energetics as en
from retrosim.models import gait as ga
from retrosim.units import G
from retrosim.vocabulary import UNITS

log = logging.getLogger(__name__)

DIMS = ("speed", "mass", "direction", "mode", "grade", "draw")
COORD_ATTRS = {
    "speed": (UNITS["speed"], "speed"),
    "mass": (UNITS["mass"], "body mass"),
    "direction": (UNITS["ratio"], "direction of travel"),
    "mode": (UNITS["ratio"], "gait mode (run or walk)"),
    "grade": (UNITS["ratio"], "treadmill grade as a decimal fraction (0.05 = 5 %)"),
    "draw": (UNITS["ratio"], "posterior (or prior) draw"),
    "model": (UNITS["ratio"], "energetics model"),
}
#: Gait outputs that scale with body mass.
_GAIT_MASS = ("vgrf_peak_n", "vertical_stiffness_n_m", "leg_stiffness_n_m")
#: Energetics models that apply to each mode (:data:`retrosim.models.energetics.MODE_MODELS`).
MODE_MODELS = en.MODE_MODELS


def _axis(values, dim):
    shape = [1] * len(DIMS)
    shape[DIMS.index(dim)] = len(values)
    return np.asarray(values).reshape(shape)


def evaluate(speed_m_s, mass_kg, direction, mode, grade, params, *, models=en.MODELS,
             rer=en.DEFAULT_RER, leg_length_m=None):  # fmt: skip
    """Evaluate gait and energetics on one (chunk of a) grid; pure and vectorised.

    Parameters
    ----------
    speed_m_s, mass_kg, grade : 1-D array_like
        Coordinates [m/s], [kg], [decimal grade]; assumed already checked.
    direction, mode : sequence of str
        Coordinates (``"forward"``/``"backward"``; ``"run"``/``"walk"``).
    params : dict
        Gait + direction parameters; array entries have shape ``(n_draws,)``.
    models : sequence of str
        Energetics models (subset of :data:`retrosim.models.energetics.MODELS`).
    rer : float
        Respiratory exchange ratio for the Weir conversion.
    leg_length_m : float, optional
        Leg length [m]; default from ``gait.csv``.

    Returns
    -------
    gait : dict of ndarray
        Gait outputs with axes :data:`DIMS` (length 1 where independent).
    energy : dict of ndarray
        Energy outputs with axes ``("model",) + DIMS``.
    """
    params = {**en.direction_params_nominal(), **params}
    p = {k: (_axis(v, "draw") if np.ndim(v) == 1 else v) for k, v in params.items()}
    v = _axis(np.asarray(speed_m_s, float), "speed")
    m = _axis(np.asarray(mass_kg, float), "mass")
    i = _axis(np.asarray(grade, float), "grade")
    dirs = _axis(np.asarray(direction), "direction")
    back = dirs == "backward"
    leg = p["leg_length_default_m"] if leg_length_m is None else leg_length_m

    # Everything is computed per kg on the reduced grid (no mass axis; at most two gait
    # models, not a loop over conditions); body mass enters once per output, at the end.
    gait_parts, energy_parts = [], []
    for md in mode:
        g, nets = _mode_per_kg(md, v, i, dirs, back, leg, p, models, rer)
        gait_parts.append(g)
        energy_parts.append(nets)

    gait_out = {}
    for key in ga.GAIT_OUTPUTS:
        per_kg = _stack_modes([g[key] for g in gait_parts])
        gait_out[key] = _kernels.multiply(per_kg, m) if key in _GAIT_MASS else per_kg

    # net rate [W/kg] per (model, mode): NaN where a model does not apply to a mode
    known = [a.shape for nets in energy_parts for a in nets if a is not None]
    shape = _with_modes(np.broadcast_shapes(*known), len(mode))
    net = np.full((len(models), *shape), np.nan)
    for j, nets in enumerate(energy_parts):
        for k, a in enumerate(nets):
            if a is not None:
                net[(k, *_mode_slice(j))] = a
    energy_out = en.energy_outputs(net, v[None], m[None], rer)
    return gait_out, energy_out


_MODE_AXIS = DIMS.index("mode")


def _mode_slice(j):
    return (slice(None),) * _MODE_AXIS + (slice(j, j + 1),)


def _with_modes(shape, n_modes):
    shape = list(shape)
    shape[_MODE_AXIS] = n_modes
    return tuple(shape)


def _stack_modes(arrs):
    """Concatenate per-mode arrays (mode axis of length 1) along the mode axis."""
    arrs = [np.asarray(a, float) for a in arrs]
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    out = np.empty(_with_modes(shape, len(arrs)))
    for j, a in enumerate(arrs):
        out[_mode_slice(j)] = a
    return out


def _mode_per_kg(md, v, i, dirs, back, leg, p, models, rer):
    """Gait outputs at 1 kg and the net rate of each model [W/kg] (None: N/A) for one mode."""
    if md == "run":
        g = ga.spring_mass_running(v, 1.0, leg, dirs, params=p, _check=False)
        # backward/forward net ratio: contact-time ratio x speed-dependent muscle-volume term
        vol_b = en.running_volume_ratio(v, p)
        ratio = np.where(back, en.running_direction_ratio(v, p), 1.0)
        possible = None  # every speed can be run
    else:
        g = ga.inverted_pendulum_walking(v, 1.0, leg, dirs, params=p, _check=False)
        ratio = np.where(back, en.walking_direction_ratio(v, p), 1.0)
        possible = v**2 <= G * leg
    nets = []
    for model in models:
        if model not in MODE_MODELS[md]:
            nets.append(None)
            continue
        if model == "kram_taylor":
            # mechanistic: backward uses the backward contact time and muscle volume
            vol = np.where(back, vol_b, 1.0)
            net = en.kram_taylor(g["contact_time_s"], v, volume_ratio=vol,
                                 coefficient_m=en.kram_taylor_coefficient(rer), params=p)  # fmt: skip
            net = np.where(i == 0.0, net, np.nan)
        else:
            net = en.forward_net_rate(model, v, md, i, params=p, rer=rer) * ratio
        nets.append(net if possible is None else np.where(possible, net, np.nan))
    return g, nets


class RetroChain:
    """Evaluate the retrosim models over a condition grid.

    Parameters
    ----------
    models : sequence of str
        Energetics models (default all of :data:`retrosim.models.energetics.MODELS`).
    posterior : object, optional
        ``None`` (default): draw the direction effects from their literature priors
        (:func:`retrosim.models.priors.prior_draws`); no fit. Otherwise a fitted posterior with
        a ``draws(n_draws, rng) -> dict`` method and a ``description``, e.g.
        ``retrosim.bayes.calibration.shared_posterior()`` (the calibration on the shipped
        evidence). Ignored when :meth:`run` gets ``params``.
    rer : float
        Respiratory exchange ratio for VO2 -> energy (Weir).
    leg_length_m : float, optional
        Leg length [m] (default 0.53 x 1.72 m, see ``retrosim/data/parameters/gait.csv``).
    knee : bool
        Add the knee variables of :func:`retrosim.models.knee.from_gait`.

    Examples
    --------
    >>> from retrosim.bayes.calibration import shared_posterior  # doctest: +SKIP
    >>> chain = RetroChain(posterior=shared_posterior())  # doctest: +SKIP
    >>> ds = chain.run([2.5, 3.0], [70.0], n_draws=100, seed=1)  # doctest: +SKIP
    """

    def __init__(self, models=en.MODELS, *, posterior=None, rer=en.DEFAULT_RER,
                 leg_length_m=None, knee=True):  # fmt: skip
        self.models = tuple(str(m) for m in np.atleast_1d(check_choice("models", models,
                                                                       en.MODELS)))  # fmt: skip
        if posterior is not None and not callable(getattr(posterior, "draws", None)):
            raise InputError("posterior must have a draws(n_draws, rng) method (e.g. "
                             "retrosim.bayes.calibration.fit(...)), got "
                             f"{type(posterior).__name__}", argument="posterior")  # fmt: skip
        self.posterior = posterior
        self.rer = float(en.kcal_per_litre_o2(rer) and rer)
        self.leg_length_m = None if leg_length_m is None else float(
            ga.check_leg_length(leg_length_m))  # fmt: skip
        self.knee = knee

    @property
    def calibrated(self) -> bool:
        """Whether the direction effects come from a fitted posterior."""
        return self.posterior is not None

    @property
    def parameter_source(self) -> str:
        """Where the parameter draws come from (stored in the output's attributes)."""
        if self.posterior is None:
            return "literature priors"
        return str(getattr(self.posterior, "description", type(self.posterior).__name__))

    def parameters(self, n_draws, rng):
        """Per-draw parameter dict (posterior or prior draws, see ``posterior``)."""
        if self.posterior is not None:
            return self.posterior.draws(n_draws, rng)
        return priors.prior_draws(n_draws, rng)

    def run(self, speed_m_s, mass_kg, direction=("forward", "backward"), mode=("run",),
            grade=(0.0,), *, n_draws=200, seed=0, params=None, broadcast=False):  # fmt: skip
        """Evaluate the grid and return an :class:`xarray.Dataset`.

        Parameters
        ----------
        speed_m_s : array_like
            Speeds [m/s]; running up to ``gait.RUN_SPEED_MAX_M_S``; walking above Froude 1
            gives NaN with a warning.
        mass_kg : array_like
            Body masses [kg].
        direction, mode : sequence of str
        grade : array_like
            Decimal grades.
        n_draws : int
            Parameter draws (posterior or prior).
        seed : int or numpy.random.Generator
        params : dict, optional
            Use these parameters instead of drawing (arrays of shape (n_draws,)).
        broadcast : bool
            Materialise every variable on the full grid.
        """
        import xarray as xr

        speed = np.atleast_1d(ga.check_speed(speed_m_s, "run")).astype(float)
        mass = np.atleast_1d(ga.check_mass(mass_kg)).astype(float)
        grade = np.atleast_1d(
            check_range("grade", grade, -0.5, 0.5, "1 (decimal grade)", lo_inclusive=True)
        ).astype(float)
        direction = [str(d) for d in np.atleast_1d(check_choice("direction", direction,
                                                                ga.DIRECTIONS))]  # fmt: skip
        mode = [str(d) for d in np.atleast_1d(check_choice("mode", mode, ga.MODES))]
        if mode == ["walk"]:  # walking only: an impossible walking speed is an input error
            ga.check_speed(speed, "walk", self.leg_length_m)
        for name, vals in (("direction", direction), ("mode", mode)):
            if len(set(vals)) != len(vals):
                raise InputError(f"repeated values {vals}", argument=name)
        rng = np.random.default_rng(seed)
        if params is None:
            n_draws = int(check_range("n_draws", n_draws, 0, 1e7, "draws"))
            params = self.parameters(n_draws, rng)
        else:
            n_draws = max((np.size(v) for v in params.values() if np.ndim(v) == 1), default=1)
        gait_out, energy_out = evaluate(speed, mass, direction, mode, grade, params,
                                        models=self.models, rer=self.rer,
                                        leg_length_m=self.leg_length_m)  # fmt: skip
        coords = {"speed": speed, "mass": mass, "direction": direction, "mode": mode,
                  "grade": grade, "draw": np.arange(n_draws), "model": list(self.models)}  # fmt: skip
        sizes = {d: len(coords[d]) for d in coords}
        # Collect every variable first and build the Dataset once: adding them one by one
        # re-aligns the whole Dataset each time (that cost more than evaluating the models).
        variables = {}

        def add(name, arr, dims, units, long_name, **attrs):
            arr = np.asarray(arr)
            keep = [k for k, d in enumerate(dims) if arr.shape[k] == sizes[d] or broadcast]
            if broadcast:
                arr = np.broadcast_to(arr, tuple(sizes[d] for d in dims)).copy()
            else:
                arr = arr.reshape([arr.shape[k] for k in keep])
            variables[name] = xr.Variable([dims[k] for k in keep], arr,
                                          {"units": units, "long_name": long_name, **attrs})  # fmt: skip

        for name, arr in gait_out.items():
            units, long_name = ga.GAIT_OUTPUTS[name]
            add(name, arr, DIMS, units, long_name)
        for name, arr in energy_out.items():
            units, long_name, _ = en.ENERGY_OUTPUTS[name]
            add(name, arr, ("model", *DIMS), units, long_name)
        warnings = self._warnings(speed, mode)
        if self.knee:
            self._add_knee(gait_out, speed, mass, direction, mode, n_draws, rng, add, params)
        ds = xr.Dataset(variables, coords=coords)
        for d, (units, long_name) in COORD_ATTRS.items():
            ds[d].attrs.update(units=units, long_name=long_name)
        ds.attrs.update(
            title="retrosim gait and energetics grid",
            calibrated=int(self.calibrated),
            rer=self.rer,
            parameter_source=self.parameter_source,
            warnings="; ".join(warnings),
            note=(
                "variables lack a dimension they do not depend on (e.g. per-kg energetics "
                "have no mass dimension); NaN where a model does not apply to a mode, grade "
                "or speed (walking above Froude number 1)"
            ),
        )
        return ds

    def _warnings(self, speed, mode):
        out = [w for md in mode if (w := ga.validity(speed, md))]
        for model in self.models:
            for md in mode:
                if model in MODE_MODELS[md] and (w := en.speed_warning(model, md, speed)):
                    out.append(w)
        leg = self.leg_length_m or ga.nominal_parameters()["leg_length_default_m"]
        if "walk" in mode and np.any(speed**2 > G * leg):
            out.append(f"walk: speeds above sqrt(g L) = {np.sqrt(G * leg):.2f} m/s are NaN")
        return out

    def _add_knee(self, gait_out, speed, mass, direction, mode, n_draws, rng, add, params):
        from retrosim.models import knee

        # backward knee inputs = forward x exp(direction effect) with the effects of the same
        # draws as the gait and energetics (paired); Roos's own estimates if params lack them
        effects = {k: params[k] for k in knee.DIRECTION_EFFECTS if k in params}
        kparams = knee.sample_parameters(n_draws, rng, effects=effects or None)
        out = knee.from_gait(
            gait_out, mass_kg=_axis(mass, "mass"),
            direction=_axis(np.asarray(direction), "direction"),
            mode=_axis(np.asarray(mode), "mode"), speed_m_s=_axis(speed, "speed"),
            params=kparams,
        )  # fmt: skip
        for name, (arr, units, long_name) in out.items():
            arr = np.asarray(arr)
            arr = arr.reshape((1,) * (len(DIMS) - arr.ndim) + arr.shape)
            add(name, arr, DIMS, units, long_name, source="retrosim.models.knee.from_gait")
