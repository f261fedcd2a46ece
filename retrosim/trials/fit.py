"""Fit your own lab trials: a hierarchical model of backward versus forward locomotion.

:func:`fit_trials` validates a long-format trial table (:mod:`retrosim.trials.schema`),
fits a hierarchical model on the log scale with PyMC, samples it with nutpie through
:func:`retrosim.bayes.sampling.sample` (convergence gate), and returns a :class:`TrialFit`:
backward/forward ratios by speed (population and per participant), a summary table,
posterior predictive checks, PSIS-LOO, plots, NetCDF export, an update of the published
direction effect, and the verdict of the energy and heart-rate claims on these data.

The model
---------
For trial :math:`i` of participant :math:`p` with outcome :math:`y_i > 0`:

.. math::

    \\log y_i &= \\alpha + u_p + (\\beta_d + v_p)\\,d_i + \\beta_s s_i + \\beta_{ds} d_i s_i
                + \\beta_w w_i + \\beta_{dw} d_i w_i + \\beta_m m_i + \\beta_g g_i
                + \\varepsilon_i \\\\
    u_p &= \\sigma_u z_{u,p},\\quad v_p = \\sigma_v z_{v,p},\\quad z \\sim N(0, 1)
          \\quad\\text{(non-centred form; or centred, see ``parameterization``)} \\\\
    \\varepsilon_i &\\sim N(0, \\sigma_e)

with :math:`d_i = +1/2` backward and :math:`-1/2` forward (so :math:`\\alpha` is the mean of
both directions and :math:`\\beta_d` is the log backward/forward ratio at the reference speed,
for running when both modes occur),
:math:`s_i` speed minus the reference speed [m/s] (the mean speed of the data),
:math:`w_i = 1` for walking (only when both modes occur; :math:`\\beta_{dw}` then lets the
direction effect differ between walking and running), :math:`m_i = \\log(\\text{mass}/
\\text{reference mass})` (only when mass varies; :math:`\\beta_m` is an elasticity) and
:math:`g_i` the grade as a fraction (only when it varies). The backward/forward ratio at speed
:math:`v` is :math:`\\exp(\\beta_d + \\beta_{ds}(v - v_\\text{ref}))` for the population and
:math:`\\exp(\\beta_d + v_p + \\beta_{ds}(v - v_\\text{ref}))` for participant :math:`p`.

Priors (weakly informative on the log scale; a ratio of 2 is :math:`\\log 2 = 0.69`):
:math:`\\alpha \\sim N(\\bar y, 1)` (centred on the mean log outcome),
:math:`\\beta_d \\sim N(0, 0.5)` (95 % prior mass on ratios 0.38-2.7) or the published
meta-analysis posterior given as ``prior_direction=(mean, sd)``,
:math:`\\beta_s \\sim N(0, 1)` per m/s, :math:`\\beta_{ds} \\sim N(0, 0.5)` per m/s,
:math:`\\beta_w \\sim N(0, 1)`, :math:`\\beta_{dw} \\sim N(0, 0.5)`, :math:`\\beta_m \\sim N(0, 1)`,
:math:`\\beta_g \\sim N(0, 5)`,
:math:`\\sigma_u \\sim HN(0.5)`, :math:`\\sigma_v \\sim HN(0.25)`, :math:`\\sigma_e \\sim HN(0.25)`.
:meth:`TrialFit.prior_predictive_summary` reports the outcome range these priors imply.

References
----------
.. [1] A. Gelman, J. Hill, "Data Analysis Using Regression and Multilevel/Hierarchical
   Models", Cambridge University Press, 2007. doi:10.1017/CBO9780511790942
.. [2] A. Vehtari, A. Gelman, J. Gabry, "Practical Bayesian model evaluation using
   leave-one-out cross-validation and WAIC", Statistics and Computing 27, 1413-1432, 2017.
   doi:10.1007/s11222-016-9696-4
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrosim.bayes.results import PosteriorResults
from retrosim.errors import InputError
from retrosim.trials.schema import OUTCOMES, SCHEMA, suggest_name, validate_trials

log = logging.getLogger(__name__)

__all__ = [
    "PARAMS",
    "Design",
    "TrialFit",
    "build_model",
    "choose_parameterization",
    "direction_prior_from_meta",
    "fit_trials",
    "make_design",
    "mixedlm_crosscheck",
    "simulate_trials",
]

#: Model parameters, as named in the posterior, with their meaning.
PARAMS = {
    "intercept": "log outcome, mean of both directions, at the reference speed and mass",
    "beta_direction": "log backward/forward ratio at the reference speed",
    "beta_speed": "change of log outcome per m/s",
    "beta_direction_speed": "change of the log backward/forward ratio per m/s",
    "beta_walk": "log walk/run ratio",
    "beta_direction_walk": "change of the log backward/forward ratio, walking vs running",
    "beta_log_mass": "elasticity of the outcome with body mass",
    "beta_grade": "change of log outcome per unit grade (fraction)",
    "sigma_participant": "SD of participant intercepts (log scale)",
    "sigma_participant_direction": "SD of participant direction effects (log scale)",
    "sigma_trial": "trial-to-trial SD (log scale)",
}

#: Prior SDs of the slopes (log scale; per m/s, per unit, elasticity, per unit grade).
SLOPE_PRIOR_SD = {
    "beta_speed": 1.0,
    "beta_direction_speed": 0.5,
    "beta_walk": 1.0,
    "beta_direction_walk": 0.5,
    "beta_log_mass": 1.0,
    "beta_grade": 5.0,
}
#: Default prior of the population direction effect (mean, sd) on the ln-ratio scale.
DEFAULT_DIRECTION_PRIOR = (0.0, 0.5)
#: LOO is computed when rows x retained draws stays below this many log-likelihood values.
LOO_MAX_VALUES = 20_000_000
#: Draws used for posterior predictive replicates.
PPC_DRAWS = 200


# ------------------------------------------------------------------------------ design


@dataclass
class Design:
    """Design of a trial table on the model's scale (built by :func:`make_design`).

    Attributes
    ----------
    y : numpy.ndarray
        Log outcome per trial [log of the outcome's units].
    d : numpy.ndarray
        Direction code, +1/2 backward and -1/2 forward.
    s : numpy.ndarray
        Speed minus ``speed_ref`` [m/s].
    walk : numpy.ndarray or None
        1 for walking trials; ``None`` unless both modes occur.
    log_mass : numpy.ndarray or None
        log(mass / ``mass_ref``) per trial; only when mass varies within a participant.
    mass_participant : numpy.ndarray or None
        log(mass / ``mass_ref``) per participant; when mass varies only between participants.
    grade : numpy.ndarray or None
        Grade as a fraction; only when it varies.
    pidx : numpy.ndarray
        Participant index of each trial (into ``participants``).
    participants : list of str
        Participant ids, sorted.
    speed_ref : float
        Reference speed [m/s] (the mean speed, rounded to 0.01 m/s).
    mass_ref : float
        Reference mass [kg] (the geometric mean mass, rounded to 0.1 kg).
    outcome : str
        Outcome column.
    """

    y: np.ndarray
    d: np.ndarray
    s: np.ndarray
    walk: np.ndarray | None
    log_mass: np.ndarray | None
    mass_participant: np.ndarray | None
    grade: np.ndarray | None
    pidx: np.ndarray
    participants: list
    speed_ref: float
    mass_ref: float
    outcome: str

    def columns(self):
        """Slope covariates by parameter name (only those that vary in these data)."""
        cols = {"beta_speed": self.s, "beta_direction_speed": self.d * self.s}
        if self.walk is not None:
            cols["beta_walk"] = self.walk
            cols["beta_direction_walk"] = self.d * self.walk
        if self.log_mass is not None:
            cols["beta_log_mass"] = self.log_mass
        if self.grade is not None:
            cols["beta_grade"] = self.grade
        return cols


def make_design(df: pd.DataFrame, outcome: str) -> Design:
    """The :class:`Design` of a validated trial table (rows with the outcome present).

    Raises
    ------
    retrosim.errors.InputError
        When an outcome value is not positive (the model works on the log scale).
    """
    y = df[outcome].to_numpy(dtype=float)
    if np.any(y <= 0):
        rows = df.index[y <= 0].tolist()
        raise InputError(
            f"the model works on the log scale and needs positive values; found "
            f"{y[y <= 0][:3].tolist()} (rows {rows[:8]})",
            column=outcome,
        )
    speed = df["speed_m_s"].to_numpy(dtype=float)
    speed_ref = float(np.round(speed.mean(), 2))
    mass = df["mass_kg"].to_numpy(dtype=float)
    mass_ref = float(np.round(np.exp(np.log(mass).mean()), 1))
    modes = df["mode"].astype(str).to_numpy()
    grade = df["grade_pct"].to_numpy(dtype=float) / 100.0
    codes, parts = pd.factorize(df["participant_id"].astype(str), sort=True)
    log_mass = np.log(mass / mass_ref)
    # mass constant within every participant -> a participant-level covariate
    mass_part = pd.Series(log_mass).groupby(codes).mean().to_numpy()
    varies_within = bool(np.any(np.abs(log_mass - mass_part[codes]) > 1e-9))
    return Design(
        y=np.log(y),
        d=np.where(df["direction"].astype(str).to_numpy() == "backward", 0.5, -0.5),
        s=speed - speed_ref,
        walk=(modes == "walk").astype(float) if len(set(modes)) > 1 else None,
        log_mass=log_mass if varies_within else None,
        mass_participant=mass_part if (np.ptp(log_mass) > 1e-9 and not varies_within) else None,
        grade=grade if np.ptp(grade) > 1e-12 else None,
        pidx=codes.astype(int),
        participants=list(parts),
        speed_ref=speed_ref,
        mass_ref=mass_ref,
        outcome=outcome,
    )


def choose_parameterization(choice, design) -> dict:
    """Centred or non-centred form for each participant effect.

    ``"auto"`` applies the usual rule: centre an effect when the data pin each participant's
    value down better than the spread between participants (here: its per-participant
    standard error, from a pilot least-squares fit, is below half the between-participant
    SD of the pilot estimates), otherwise non-centre.
    """
    if choice not in ("auto", "centered", "noncentered"):
        raise InputError(
            f"unknown parameterization {choice!r}; expected 'auto', 'centered' or 'noncentered'",
            argument="parameterization",
        )
    if choice != "auto":
        return {"participant": choice, "participant_direction": choice}
    # pilot: per participant x direction cell means after removing the fixed speed terms
    X = np.column_stack([np.ones_like(design.y), *design.columns().values()])
    resid = design.y - X @ np.linalg.lstsq(X, design.y, rcond=None)[0]
    frame = pd.DataFrame({"r": resid, "p": design.pidx, "d": design.d})
    cells = frame.groupby(["p", "d"])["r"].agg(["mean", "var", "count"])
    means = cells["mean"].unstack("d")
    counts = cells["count"].unstack("d")
    out = {}
    if means.shape[1] < 2 or means.isna().any().any() or cells["var"].isna().all():
        # no replicate trials within a cell: the noise cannot be told apart, non-centre
        return {"participant": "noncentered", "participant_direction": "noncentered"}
    sigma_e = float(np.sqrt(np.nanmean(cells["var"])))
    est = {
        "participant": means.mean(axis=1),
        "participant_direction": means.iloc[:, 1] - means.iloc[:, 0],
    }
    se = {
        "participant": 0.5 * sigma_e * np.sqrt((1 / counts).sum(axis=1)),
        "participant_direction": sigma_e * np.sqrt((1 / counts).sum(axis=1)),
    }
    for name in est:
        spread = float(np.std(est[name], ddof=1)) if len(est[name]) > 1 else 0.0
        out[name] = "centered" if float(np.median(se[name])) < 0.5 * spread else "noncentered"
    return out


def _check_prior(prior_direction):
    if prior_direction is None:
        return DEFAULT_DIRECTION_PRIOR
    try:
        mean, sd = (float(x) for x in prior_direction)
    except (TypeError, ValueError):
        raise InputError(
            "expected (mean, sd) of the log backward/forward ratio, e.g. (0.26, 0.05)",
            argument="prior_direction",
        ) from None
    if not (np.isfinite(mean) and abs(mean) < 3 and np.isfinite(sd) and 0 < sd <= 5):
        raise InputError(
            f"got mean {mean:g}, sd {sd:g}; expected |mean| < 3 and 0 < sd <= 5 on the "
            "ln-ratio scale (a ratio of 1.3 is ln 1.3 = 0.26)",
            argument="prior_direction",
        )
    return mean, sd


def build_model(design: Design, prior_direction=None, centered=(False, False)):
    """The PyMC model of :mod:`retrosim.trials.fit` (see the module docstring).

    ``centered`` is a bool or a pair (participant intercepts, participant direction effects):
    centred (drawn directly around their mean) or non-centred (scaled standard normals).
    """
    import pymc as pm

    c_u, c_v = (centered, centered) if isinstance(centered, bool) else centered

    prior_mean, prior_sd = _check_prior(prior_direction)
    coords = {"participant": design.participants, "obs": np.arange(design.y.size)}
    with pm.Model(coords=coords) as model:
        # data containers, so a compiled model can be reused on new data of the same shape
        y = pm.Data("y_data", design.y, dims="obs")
        y_mean = pm.Data("y_mean", float(design.y.mean()))
        pidx = pm.Data("participant_index", design.pidx, dims="obs")
        d = pm.Data("direction_code", design.d, dims="obs")
        intercept = pm.Normal("intercept", y_mean, 1.0)
        beta_d = pm.Normal("beta_direction", prior_mean, prior_sd)
        sigma_u = pm.HalfNormal("sigma_participant", 0.5)
        sigma_v = pm.HalfNormal("sigma_participant_direction", 0.25)
        sigma_e = pm.HalfNormal("sigma_trial", 0.25)
        a_mean = intercept
        if design.mass_participant is not None:
            m = pm.Data("log_mass_participant", design.mass_participant, dims="participant")
            beta_m = pm.Normal("beta_log_mass", 0.0, SLOPE_PRIOR_SD["beta_log_mass"])
            a_mean = intercept + beta_m * m
        if c_u:  # hierarchical centring: participant means drawn directly
            a = pm.Normal("a_participant", a_mean, sigma_u, dims="participant")
            pm.Deterministic("u_participant", a - a_mean, dims="participant")
        else:
            z_u = pm.Normal("z_participant", 0.0, 1.0, dims="participant")
            u = pm.Deterministic("u_participant", sigma_u * z_u, dims="participant")
            a = a_mean + u
        if c_v:
            b = pm.Normal("b_participant_direction", beta_d, sigma_v, dims="participant")
            pm.Deterministic("v_participant_direction", b - beta_d, dims="participant")
        else:
            z_v = pm.Normal("z_participant_direction", 0.0, 1.0, dims="participant")
            v = pm.Deterministic("v_participant_direction", sigma_v * z_v, dims="participant")
            b = beta_d + v
        mu = a[pidx] + b[pidx] * d
        for name, x in design.columns().items():
            xd = pm.Data(f"x_{name}", x, dims="obs")
            mu = mu + pm.Normal(name, 0.0, SLOPE_PRIOR_SD[name]) * xd
        pm.Normal("log_y", mu, sigma_e, observed=y, dims="obs")
    return model


def _data_updates(design: Design) -> dict:
    """Values of the model's data containers for ``design`` (names as in :func:`build_model`)."""
    upd = {
        "y_data": design.y,
        "y_mean": np.asarray(design.y.mean()),
        "participant_index": design.pidx,
        "direction_code": design.d,
    }
    if design.mass_participant is not None:
        upd["log_mass_participant"] = design.mass_participant
    for name, x in design.columns().items():
        upd[f"x_{name}"] = x
    return upd


def _compiled_for(cache: dict, model, design: Design, centered, prior):
    """The nutpie model compiled once per design shape in ``cache``, fed ``design``'s data."""
    from retrosim.bayes.sampling import compile_model

    # the prior is a constant of the graph and participant names are its coordinates
    key = (design.y.size, tuple(design.participants), design.mass_participant is not None,
           tuple(design.columns()), tuple(centered), tuple(prior))  # fmt: skip
    if key not in cache:
        cache[key] = compile_model(model)
    return cache[key].with_data(**_data_updates(design))


def _mu_draws(post: dict, design: Design, rows=slice(None)):
    """Linear predictor for the given draws (leading axis) and rows."""
    p = design.pidx[rows]
    d = design.d[rows]
    u = post["u_participant"][:, p]
    v = post["v_participant_direction"][:, p]
    mu = post["intercept"][:, None] + u + (post["beta_direction"][:, None] + v) * d
    if design.mass_participant is not None:
        mu = mu + post["beta_log_mass"][:, None] * design.mass_participant[p]
    for name, x in design.columns().items():
        mu = mu + post[name][:, None] * x[rows]
    return mu


# ------------------------------------------------------------------------------- fit


class TrialFit(PosteriorResults):
    """Hierarchical backward/forward model of lab trials (scikit-learn style).

    Speaks the results API of :class:`retrosim.bayes.results.PosteriorResults`: ``summary()``
    (a printable :class:`~retrosim.bayes.results.Summary` of the parameters of :data:`PARAMS`
    with their meaning, 90 % intervals), ``to_dataframe()``, ``to_netcdf(path)``,
    ``plot(kind, ax=None)`` and ``diagnostics``.

    Parameters
    ----------
    outcome : str
        Outcome column, one of :data:`retrosim.trials.schema.OUTCOMES`.
    prior_direction : (float, float), optional
        Prior (mean, sd) of the population log backward/forward ratio at the reference speed,
        e.g. the meta-analysis posterior from :mod:`retrosim.meta.model`. Default (0, 0.5).
    draws, tune, chains : int
        Sampler settings (per chain).
    seed : int
        Required (an error names it when missing): every posterior is reproducible.
    gate : {"raise", "warn", "off"}
        Convergence gate (see :func:`retrosim.bayes.sampling.sample`): by default a fit that
        fails it raises :class:`~retrosim.errors.ConvergenceError`.
    sampler : {"nutpie", "pymc"}
    target_accept : float
        NUTS target acceptance. 0.95 by default: in the coverage study
        (``studies/trial_coverage.py``) 0.8 left a few divergent transitions in about 4 % of
        simulated data sets (small participant direction SD), 0.95 none on those data sets.
    parameterization : {"auto", "centered", "noncentered"}
        Participant effects drawn directly (centred) or as scaled standard normals
        (non-centred). ``"auto"`` decides per effect (intercepts, direction effects) from a
        pilot least-squares fit: centred when the data pin each participant down (the
        non-centred form then mixes poorly), else non-centred.
    compile_cache : dict, optional
        Reuse compiled nutpie models across fits: a model is compiled once per design
        (participants, rows, covariates, parameterization, prior) and fed each new table
        through ``with_data``. For simulation studies that refit many tables of one design
        (``studies/trial_coverage.py``); pass the same empty dict to every fit. The sampler's
        starting points stay those of the first table compiled for the design (PyMC's
        initial-point function is not fed the new data), so a reused model's draws are from
        the same posterior as a fresh compile's but not the same numbers. ``None`` (default)
        compiles afresh.

    Attributes
    ----------
    data_ : pandas.DataFrame
        Validated trials.
    idata_ : xarray.DataTree
        Posterior, sample stats, observed data, and (when affordable) log-likelihood.
    diagnostics_ : retrosim.bayes.sampling.Diagnostics
    parameterization_ : dict
        Form used for ``participant`` and ``participant_direction`` effects.
    ratio_ : pandas.DataFrame
        Population backward/forward ratio at each speed in the data (median, 5 %, 95 %).
    participant_ratio_ : pandas.DataFrame
        The same per participant.
    ppc_ : dict
        Posterior predictive checks.
    posterior_predictive_ : numpy.ndarray
        The replicates behind ``ppc_``: log outcome [log of the outcome's units], shape
        (``ppc_["n_draws"]``, observations), in the row order of ``data_``.
    posterior_draws_ : dict of numpy.ndarray
        Every posterior variable with chains and draws stacked into a leading sample axis
        (``chain * n_draw + draw``).
    modes_ : list of str
        Modes in the data (``"run"`` before ``"walk"``).
    conditions_ : list of (str, numpy.ndarray)
        (mode, sorted speeds [m/s] of that mode's trials) for every mode in the data.
    design_ : Design
        The model's design (log outcome, codes, reference speed and mass).
    loo_ : object or None
        :func:`arviz_stats.loo` result, or ``None`` when skipped (``loo_note_`` says why).
    prior_update_ : dict
        Prior and posterior of the population direction effect.
    """

    _summary_columns = ("mean", "sd", "lo", "median", "hi", "r_hat", "ess_bulk", "ess_tail")
    #: Probability of the parameters' central interval (as the ratio tables: 5 % to 95 %).
    ci_prob = 0.9

    def __init__(
        self,
        outcome="vo2_ml_kg_min",
        *,
        prior_direction=None,
        draws=1000,
        tune=1000,
        chains=4,
        seed=None,
        gate="raise",
        sampler="nutpie",
        target_accept=0.95,
        parameterization="auto",
        compile_cache=None,
    ):
        self.parameterization = parameterization
        self.compile_cache = compile_cache
        self.outcome = outcome
        self.prior_direction = prior_direction
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.seed = seed
        self.gate = gate
        self.sampler = sampler
        self.target_accept = target_accept

    # -- fitting -------------------------------------------------------------------
    def fit(self, data, *, source=None):
        """Validate ``data`` (DataFrame or CSV path), sample, and compute the results."""
        from retrosim.bayes.sampling import sample

        if self.outcome not in OUTCOMES:
            guess = suggest_name(self.outcome, OUTCOMES)
            raise InputError(
                f"unknown outcome {self.outcome!r}; expected one of {', '.join(OUTCOMES)}"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                argument="outcome",
            )
        for name in ("draws", "tune", "chains"):
            val = getattr(self, name)
            if not isinstance(val, (int, np.integer)) or val < 1:
                raise InputError(f"expected a positive integer, got {val!r}", argument=name)
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise InputError(
                f"expected an integer seed (every fit is reproducible), got {self.seed!r}",
                argument="seed",
            )
        self.prior_ = _check_prior(self.prior_direction)
        df = validate_trials(data, outcome=self.outcome, source=source)
        df = df[df[self.outcome].notna()]
        design = make_design(df, self.outcome)
        self.parameterization_ = choose_parameterization(self.parameterization, design)
        centered = tuple(v == "centered" for v in self.parameterization_.values())
        model = build_model(design, self.prior_direction, centered=centered)
        compiled = None
        if self.compile_cache is not None and self.sampler == "nutpie":
            compiled = _compiled_for(self.compile_cache, model, design, centered, self.prior_)
        var_names = [v.name for v in model.free_RVs]
        idata, diag = sample(
            model,
            compiled=compiled,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            seed=self.seed,
            sampler=self.sampler,
            var_names=var_names,
            gate=self.gate,
            target_accept=self.target_accept,
        )
        self.data_ = df
        self.design_ = design
        self.idata_ = idata
        self.diagnostics_ = diag
        self.n_participants_ = len(design.participants)
        self.n_obs_ = int(design.y.size)
        self.speed_ref_m_s_ = design.speed_ref
        self.mass_ref_kg_ = design.mass_ref
        self.modes_ = self._modes()
        self.conditions_ = self._conditions()
        self.posterior_draws_ = self._flat_posterior()
        self.ratio_, self.participant_ratio_ = self._ratios()
        self._add_observed(idata)
        self.ppc_, self.posterior_predictive_ = self._ppc()
        self.loo_, self.loo_note_ = self._loo()
        self.prior_update_ = self._prior_update()
        return self

    def _flat_posterior(self):
        post = self.idata_["posterior"].to_dataset()
        out = {}
        for name in post.data_vars:
            da = post[name]
            extra = [d for d in da.dims if d not in ("chain", "draw")]
            da = da.stack(sample=("chain", "draw")).transpose("sample", *extra)
            out[name] = np.asarray(da.values, dtype=float)
        return out

    def _modes(self):
        return [m for m in ("run", "walk") if m in set(self.data_["mode"].astype(str))]

    def log_ratio_draws(self, speed_m_s, *, mode="run", participant=False):
        """Posterior draws of the log backward/forward ratio at the given speeds.

        Parameters
        ----------
        speed_m_s : array_like
            Speeds [m/s].
        mode : {"run", "walk"}
            The walking direction effect is added for ``"walk"`` when both modes occur.
        participant : bool
            Per participant (population effect plus the participant's direction effect)
            instead of the population.

        Returns
        -------
        numpy.ndarray
            Shape (draws, speeds), or (draws, participants, speeds) with ``participant``;
            draws are the chains stacked in order (``chain * n_draw + draw``).
        """
        self._check_fitted()
        post = self.posterior_draws_
        s = np.asarray(speed_m_s, float) - self.speed_ref_m_s_
        base = post["beta_direction"][:, None] + post["beta_direction_speed"][:, None] * s
        if mode == "walk" and "beta_direction_walk" in post:
            base = base + post["beta_direction_walk"][:, None]
        if not participant:
            return base
        v = post["v_participant_direction"]
        return base[:, None, :] + v[:, :, None]

    def _check_mode(self, mode):
        modes = self.modes_
        if mode is None:
            if len(modes) > 1:
                raise InputError("the data have run and walk trials; say which", argument="mode")
            return modes[0]
        if mode not in modes:
            raise InputError(f"no {mode!r} trials; the data have {', '.join(modes)}",
                             argument="mode")  # fmt: skip
        return mode

    def ratio_at(self, speed_m_s, *, mode=None, prob=0.9):
        """Population backward/forward ratio at the given speeds [m/s] (median and interval).

        ``mode`` ("run" or "walk") is needed only when the data contain both.
        """
        self._check_fitted()
        mode = self._check_mode(mode)
        speeds = np.atleast_1d(np.asarray(speed_m_s, dtype=float))
        r = np.exp(self.log_ratio_draws(speeds, mode=mode))
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        return pd.DataFrame(
            {
                "mode": mode,
                "speed_m_s": speeds,
                "ratio_median": np.median(r, 0),
                f"ratio_q{lo * 100:g}": np.quantile(r, lo, 0),
                f"ratio_q{hi * 100:g}": np.quantile(r, hi, 0),
                "p_backward_higher": (r > 1).mean(0),
            }
        )

    def _conditions(self):
        """(mode, sorted speeds of that mode) for every mode in the data."""
        modes = self.data_["mode"].astype(str)
        return [(m, np.sort(self.data_.loc[modes == m, "speed_m_s"].unique()))
                for m in self.modes_]  # fmt: skip

    def _ratios(self):
        pops, rows = [], []
        modes = self.data_["mode"].astype(str)
        for mode, speeds in self.conditions_:
            pops.append(self.ratio_at(speeds, mode=mode))
            r = np.exp(self.log_ratio_draws(speeds, participant=True, mode=mode))
            for j, p in enumerate(self.design_.participants):
                mine = set(self.data_.loc[(self.data_["participant_id"] == p) & (modes == mode),
                                          "speed_m_s"])  # fmt: skip
                for k, sp in enumerate(speeds):
                    if sp not in mine:
                        continue
                    x = r[:, j, k]
                    rows.append(
                        {
                            "participant_id": p,
                            "mode": mode,
                            "speed_m_s": sp,
                            "ratio_median": np.median(x),
                            "ratio_q5": np.quantile(x, 0.05),
                            "ratio_q95": np.quantile(x, 0.95),
                        }
                    )
        return pd.concat(pops, ignore_index=True), pd.DataFrame(rows)

    def _add_observed(self, idata):
        import xarray as xr

        obs = xr.Dataset(
            {"log_y": ("obs", self.design_.y)},
            coords={"obs": np.arange(self.design_.y.size)},
        )
        obs["log_y"].attrs.update(
            units=f"log({SCHEMA[self.outcome]['units']})", long_name=f"log {self.outcome}"
        )
        idata["observed_data"] = xr.DataTree(obs)

    def _ppc(self):
        """Posterior predictive checks on a thinned set of draws (numpy, no recompilation)."""
        rng = np.random.default_rng(self.seed + 1)
        n_samp = self.posterior_draws_["intercept"].shape[0]
        take = rng.choice(n_samp, size=min(PPC_DRAWS, n_samp), replace=False)
        sub = {k: v[take] for k, v in self.posterior_draws_.items()}
        mu = _mu_draws(sub, self.design_)
        rep = mu + sub["sigma_trial"][:, None] * rng.standard_normal(mu.shape)
        y = self.design_.y
        back = self.design_.d > 0

        def stats(a):
            return {
                "mean": a.mean(-1),
                "sd": a.std(-1),
                "min": a.min(-1),
                "max": a.max(-1),
                "backward_minus_forward": a[..., back].mean(-1) - a[..., ~back].mean(-1),
            }

        obs_s, rep_s = stats(y), stats(rep)
        p_values = {k: float((rep_s[k] >= obs_s[k]).mean()) for k in obs_s}
        lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
        coverage = float(((y >= lo) & (y <= hi)).mean())
        checks = {
            "n_draws": len(take),
            "p_values": p_values,
            "observed": {k: float(v) for k, v in obs_s.items()},
            "coverage_90": coverage,
        }
        return checks, rep

    def _loo(self):
        import arviz_stats
        import xarray as xr
        from scipy import stats

        n_obs = self.design_.y.size
        post = self.idata_["posterior"]
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        thin = 1
        while n_obs * n_chain * (n_draw // thin) > LOO_MAX_VALUES and n_draw // thin > 100:
            thin *= 2
        if n_obs * n_chain * (n_draw // thin) > LOO_MAX_VALUES or n_chain * (n_draw // thin) < 400:
            note = (
                f"LOO skipped: {n_obs:,} rows would need more than {LOO_MAX_VALUES:,} "
                "log-likelihood values with at least 400 draws"
            )
            log.info(note)
            return None, note
        idx = np.arange(0, n_draw, thin)
        flat = {
            k: v.reshape(n_chain, n_draw, *v.shape[1:])[:, idx].reshape(-1, *v.shape[1:])
            for k, v in self.posterior_draws_.items()
        }
        # _post is stacked (chain, draw) in C order: sample = chain * n_draw + draw
        mu = _mu_draws(flat, self.design_)
        ll = stats.norm.logpdf(self.design_.y, mu, flat["sigma_trial"][:, None])
        ll = ll.reshape(n_chain, idx.size, n_obs)
        self.idata_["log_likelihood"] = xr.DataTree(
            xr.Dataset(
                {"log_y": (("chain", "draw", "obs"), ll)},
                coords={"chain": np.arange(n_chain), "draw": idx, "obs": np.arange(n_obs)},
            )
        )
        if thin > 1:
            sub = self.idata_.copy()
            sub["posterior"] = xr.DataTree(post.to_dataset().isel(draw=idx))
        else:
            sub = self.idata_
        try:
            res = arviz_stats.loo(sub, var_name="log_y", pointwise=True)
        except Exception as exc:  # LOO is a report item, not a reason to fail the fit
            note = f"LOO failed: {type(exc).__name__}: {exc}"
            log.warning(note)
            return None, note
        note = "PSIS-LOO on the log scale" + (f" (every {thin}th draw)" if thin > 1 else "")
        return res, note

    def _prior_update(self):
        x = self.posterior_draws_["beta_direction"]
        m0, s0 = self.prior_
        m1, s1 = float(x.mean()), float(x.std(ddof=1))
        return {
            "prior_mean": m0,
            "prior_sd": s0,
            "posterior_mean": m1,
            "posterior_sd": s1,
            "prior_ratio": float(np.exp(m0)),
            "posterior_ratio_median": float(np.exp(np.median(x))),
            "shift_in_prior_sd": (m1 - m0) / s0,
            "sd_reduction": 1.0 - s1 / s0,
            "speed_ref_m_s": self.speed_ref_m_s_,
        }

    # -- results ------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "idata_"):
            raise InputError("this TrialFit is not fitted yet; call .fit(data) first")

    # -- the results API (retrosim.bayes.results.PosteriorResults) ------------------
    @property
    def idata(self):
        """The posterior as :class:`xarray.DataTree` (``idata_``; the results API's name)."""
        self._check_fitted()
        return self.idata_

    @property
    def diagnostics(self):
        """Convergence gate outcome (``diagnostics_``; the results API's name)."""
        self._check_fitted()
        return self.diagnostics_

    @property
    def var_names(self) -> tuple:
        """Parameters of the summary and the parameter plot (those of :data:`PARAMS` fitted)."""
        return tuple(PARAMS)

    @property
    def _summary_title(self) -> str:
        return f"Hierarchical log-scale model of {self.outcome} [{SCHEMA[self.outcome]['units']}]"

    def _summary_header(self) -> list[str]:
        return [
            f"observations {self.n_obs_}, participants {self.n_participants_}, "
            f"reference speed {self.speed_ref_m_s_:g} m/s, reference mass {self.mass_ref_kg_:g} kg"
        ]

    def _diagnostics_line(self) -> str:
        return f"sampler {self.diagnostics_.sampler}: {self.diagnostics_}"

    def _summary_notes(self) -> list[str]:
        ratio = self.ratio_.to_string(index=False, float_format=lambda v: f"{v:.3f}")
        return ["", "backward/forward ratio (population):", *ratio.splitlines()]

    def _decorate_table(self, table: pd.DataFrame) -> pd.DataFrame:
        return table.assign(meaning=[PARAMS[n] for n in table.index])

    def to_dataframe(self, var_names=None) -> pd.DataFrame:
        """Parameter table: :func:`arviz.summary` numbers (90 % interval) and each meaning."""
        self._check_fitted()
        return super().to_dataframe(var_names)

    def summary(self, var_names=None):
        """Printable parameter summary (:class:`~retrosim.bayes.results.Summary`).

        ``summary().to_dataframe()`` gives the printed columns as numbers: ``mean``, ``sd``,
        ``eti90_lb``, ``median``, ``eti90_ub``, ``r_hat``, ``ess_bulk``, ``ess_tail``,
        ``meaning``, one row per parameter of :data:`PARAMS`; the header names the data and
        the convergence gate, the notes give the population ratio by speed.
        """
        self._check_fitted()
        return super().summary(var_names)

    def __repr__(self):
        state = "fitted" if hasattr(self, "idata_") else "not fitted"
        return f"TrialFit(outcome={self.outcome!r}, {state})"

    def prior_predictive_summary(self, n=500):
        """Quantiles of the outcome [its units] implied by the priors alone."""
        self._check_fitted()
        rng = np.random.default_rng(self.seed + 2)
        design = self.design_
        m0, s0 = self.prior_
        n_p = len(design.participants)
        post = {
            "intercept": rng.normal(design.y.mean(), 1.0, n),
            "beta_direction": rng.normal(m0, s0, n),
            "sigma_participant": np.abs(rng.normal(0, 0.5, n)),
            "sigma_participant_direction": np.abs(rng.normal(0, 0.25, n)),
        }
        post["u_participant"] = post["sigma_participant"][:, None] * rng.standard_normal((n, n_p))
        post["v_participant_direction"] = post["sigma_participant_direction"][:, None] * (
            rng.standard_normal((n, n_p))
        )
        if design.mass_participant is not None:
            post["beta_log_mass"] = rng.normal(0, 1.0, n)
        sds = SLOPE_PRIOR_SD
        for name in design.columns():
            post[name] = rng.normal(0, sds[name], n)
        mu = _mu_draws(post, design)
        y = np.exp(mu + np.abs(rng.normal(0, 0.25, n))[:, None] * rng.standard_normal(mu.shape))
        q = np.quantile(y, [0.05, 0.5, 0.95])
        return {"q5": q[0], "q50": q[1], "q95": q[2], "units": SCHEMA[self.outcome]["units"]}

    def claim_verdicts(self) -> pd.DataFrame:
        """Verdict of each registered claim that this outcome can speak to."""
        self._check_fitted()
        from retrosim.trials.claims import evaluate_claims

        return evaluate_claims(self)

    def plot(self, kind="ratio", ax=None):
        """Draw ``kind`` on ``ax`` (a new figure without pyplot when None); returns the Axes.

        ``"ratio"`` (backward/forward ratio by speed), ``"ppc"`` (posterior predictive check),
        ``"prior_update"`` (prior and posterior of the direction effect) or ``"parameters"``
        (medians and 90 % intervals of the summary's parameters). The matplotlib backend is
        never changed (see :func:`retrosim.trials.report.plot_fit`).
        """
        self._check_fitted()
        from retrosim.trials.report import plot_fit

        return plot_fit(self, kind, ax=ax)

    def to_datatree(self):
        """Posterior and results as one :class:`xarray.DataTree` with units attributes."""
        import xarray as xr

        from retrosim.units import set_attrs

        self._check_fitted()
        tree = self.idata_.copy()
        post = self.idata_["posterior"]
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        conds = self.conditions_
        r = np.concatenate([self.log_ratio_draws(sp, mode=m) for m, sp in conds], axis=1)
        rp = np.concatenate(
            [self.log_ratio_draws(sp, participant=True, mode=m) for m, sp in conds], axis=2
        )
        coords = {
            "speed": ("condition", np.concatenate([sp for _, sp in conds])),
            "mode": ("condition", np.concatenate([[m] * len(sp) for m, sp in conds])),
        }
        ratio = xr.DataArray(
            np.exp(r).reshape(n_chain, n_draw, -1),
            dims=("chain", "draw", "condition"),
            coords=coords,
            name="ratio",
        )
        set_attrs(ratio, "1", "backward/forward ratio of " + self.outcome)
        set_attrs(ratio["speed"], "m/s", "speed")
        set_attrs(ratio["mode"], "1", "locomotion mode")
        pratio = xr.DataArray(
            np.exp(rp).reshape(n_chain, n_draw, rp.shape[1], -1),
            dims=("chain", "draw", "participant", "condition"),
            coords={**coords, "participant": self.design_.participants},
        )
        set_attrs(pratio, "1", "backward/forward ratio per participant of " + self.outcome)
        res = xr.Dataset({"ratio": ratio, "participant_ratio": pratio})
        res.attrs.update(
            outcome=self.outcome,
            units=SCHEMA[self.outcome]["units"],
            speed_ref_m_s=self.speed_ref_m_s_,
            mass_ref_kg=self.mass_ref_kg_,
            prior_direction_mean=self.prior_[0],
            prior_direction_sd=self.prior_[1],
            diagnostics=str(self.diagnostics_),
            converged=int(self.diagnostics_.passed),
            loo=self.loo_note_,
        )
        tree["ratio"] = xr.DataTree(res)
        data = self.data_.reset_index(names="row").copy()
        for c in data.columns:
            if isinstance(data[c].dtype, pd.CategoricalDtype) or data[c].dtype == object:
                data[c] = data[c].astype(str)
            elif str(data[c].dtype) in ("Int64", "boolean"):
                data[c] = data[c].astype(float)
        ds = xr.Dataset.from_dataframe(data.set_index("row"))
        for c in ds.data_vars:
            spec = SCHEMA.get(c)
            if spec:
                set_attrs(ds[c], spec["units"] or "1", spec["description"])
        tree["trials"] = xr.DataTree(ds)
        return tree

    def to_netcdf(self, path):
        """Write :meth:`to_datatree` to ``path`` atomically.

        NetCDF4 groups through h5netcdf when h5py is installed; otherwise (the pinned
        environment has no h5py) flattened NetCDF3, read back by
        :func:`retrosim.trials.report.read_fit`.
        """
        from retrosim.trials.report import write_netcdf

        return write_netcdf(self.to_datatree(), path)


def fit_trials(data, outcome="vo2_ml_kg_min", *, source=None, **options) -> TrialFit:
    """Validate lab trials and fit the hierarchical backward/forward model.

    Parameters
    ----------
    data : pandas.DataFrame or str or path-like
        Long-format trials (see :data:`retrosim.trials.schema.SCHEMA`).
    outcome : str
        Outcome column, e.g. ``"vo2_ml_kg_min"``, ``"energy_w"``, ``"hr_bpm"``.
    **options
        ``prior_direction`` (mean, sd) of the population log backward/forward ratio, e.g.
        the published meta-analysis posterior; ``draws``, ``tune``, ``chains``, ``seed``,
        ``gate``, ``sampler``, ``target_accept``, ``parameterization``, ``compile_cache``:
        see :class:`TrialFit` (``seed`` is required).

    Returns
    -------
    TrialFit

    Raises
    ------
    retrosim.errors.InputError
        Listing every problem of the data at once.
    retrosim.errors.ConvergenceError
        When ``gate="raise"`` and the posterior fails the convergence gate.
    """
    import inspect

    known = set(inspect.signature(TrialFit).parameters) - {"outcome"}
    for name in options:
        if name not in known:
            raise InputError(f"unknown option; accepted: {', '.join(sorted(known))}", argument=name)
    return TrialFit(outcome, **options).fit(data, source=source)


def direction_prior_from_meta(
    result, family="energy", *, mode="run", speed_m_s=None, predictive=True, seed=0
) -> tuple[float, float]:
    """(mean, sd) of the ln backward/forward ratio from a meta-analysis, for ``prior_direction``.

    Parameters
    ----------
    result : retrosim.meta.model.MetaResult
        Fitted meta-analysis (anything with ``effect_draws(family, mode=, matching=,
        speed_m_s=)`` and ``draws(name)`` works).
    family : str
        Outcome family of the meta-analysis matching the lab outcome (e.g. ``"energy"``).
    mode : {"run", "walk"}
    speed_m_s : float, optional
        Speed [m/s] at which to read the effect; use the lab fit's reference speed.
    predictive : bool
        Add the between-study spread (``tau_study`` of the family): a new lab is a new study,
        so its population effect varies around the pooled mean by tau. ``False`` uses the
        pooled mean only (tighter, and overconfident for a single lab).
    seed : int
        Seed of the normal draws that add the between-study spread.

    Returns
    -------
    (float, float)
        Mean and SD on the ln-ratio scale.
    """
    eff = np.asarray(result.effect_draws(family, mode=mode, matching="same",
                                         speed_m_s=speed_m_s), dtype=float)  # fmt: skip
    if predictive:
        j = result.family_index(family)
        tau = np.asarray(result.draws("tau_study"), dtype=float)[:, j]
        eff = eff + tau * np.random.default_rng(seed).standard_normal(eff.shape)
    return float(eff.mean()), float(eff.std(ddof=1))


# ------------------------------------------------------------------ cross-check


def mixedlm_crosscheck(data, outcome="vo2_ml_kg_min") -> pd.DataFrame:
    """Fit the same fixed effects by REML with statsmodels MixedLM (frequentist check).

    Random intercept and random direction effect per participant (correlated, as MixedLM
    estimates them), same coding and reference values as :class:`TrialFit`.

    Returns
    -------
    pandas.DataFrame
        Index: parameter names of :data:`PARAMS` (fixed effects and sigma_trial);
        columns ``estimate``, ``se``.
    """
    import statsmodels.formula.api as smf

    df = validate_trials(data, outcome=outcome)
    df = df[df[outcome].notna()]
    design = make_design(df, outcome)
    frame = pd.DataFrame({"log_y": design.y, "d": design.d, "group": design.pidx})
    if design.mass_participant is not None:
        frame["beta_log_mass"] = design.mass_participant[design.pidx]
    terms = ["beta_log_mass"] if design.mass_participant is not None else []
    for name, x in design.columns().items():
        frame[name] = x
        terms.append(name)
    formula = "log_y ~ d + " + " + ".join(terms)
    model = smf.mixedlm(formula, frame, groups=frame["group"], re_formula="~d")
    import warnings

    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # a boundary fit (random-slope variance at zero) is expected for small labs; the
        # cross-check reports the estimate either way
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = model.fit(reml=True, method=["lbfgs", "powell"])
    rename = {"Intercept": "intercept", "d": "beta_direction"}
    est = res.fe_params.rename(index=rename)
    se = res.bse_fe.rename(index=rename)
    out = pd.DataFrame({"estimate": est, "se": se})
    out.loc["sigma_trial"] = [float(np.sqrt(res.scale)), np.nan]
    return out


# --------------------------------------------------------------------- simulation


def simulate_trials(
    *,
    n_participants=12,
    speeds_m_s=(2.0, 2.5, 3.0, 3.5),
    n_trials=2,
    mode="run",
    outcome="vo2_ml_kg_min",
    params=None,
    seed,
) -> tuple[pd.DataFrame, dict]:
    """Simulate trials from the model's own generative structure (for recovery checks).

    Parameters
    ----------
    params : dict, optional
        Values for :data:`PARAMS` keys (``intercept``, ``beta_direction``, ``beta_speed``,
        ``beta_direction_speed``, ``beta_log_mass``, ``sigma_participant``,
        ``sigma_participant_direction``, ``sigma_trial``) plus ``speed_ref_m_s`` and
        ``mass_ref_kg``. Defaults are illustrative synthetic values, not published ones.
    seed : int
        Required.

    Returns
    -------
    trials : pandas.DataFrame
        Valid trial table with a ``synthetic`` column set to true.
    truth : dict
        The parameters used.
    """
    rng = np.random.default_rng(seed)
    truth = {
        "intercept": np.log(35.0),
        "beta_direction": np.log(1.3),
        "beta_speed": 0.25,
        "beta_direction_speed": 0.05,
        "beta_log_mass": 0.0,
        "sigma_participant": 0.10,
        "sigma_participant_direction": 0.05,
        "sigma_trial": 0.04,
        "speed_ref_m_s": float(np.round(np.mean(speeds_m_s), 2)),
        "mass_ref_kg": 70.0,
    }
    truth.update(params or {})
    speeds = np.asarray(speeds_m_s, float)
    pid = [f"P{i + 1:02d}" for i in range(n_participants)]
    mass = np.round(rng.normal(truth["mass_ref_kg"], 8.0, n_participants).clip(45, 110), 1)
    u = rng.normal(0, truth["sigma_participant"], n_participants)
    v = rng.normal(0, truth["sigma_participant_direction"], n_participants)
    rows = []
    for i, p in enumerate(pid):
        for direction, d in (("forward", -0.5), ("backward", 0.5)):
            for sp in speeds:
                for t in range(1, n_trials + 1):
                    s = sp - truth["speed_ref_m_s"]
                    mu = (
                        truth["intercept"]
                        + u[i]
                        + (truth["beta_direction"] + v[i]) * d
                        + truth["beta_speed"] * s
                        + truth["beta_direction_speed"] * d * s
                        + truth["beta_log_mass"] * np.log(mass[i] / truth["mass_ref_kg"])
                    )
                    y = np.exp(mu + rng.normal(0, truth["sigma_trial"]))
                    rows.append(
                        {
                            "participant_id": p,
                            "direction": direction,
                            "mode": mode,
                            "speed_m_s": sp,
                            "mass_kg": mass[i],
                            "trial": t,
                            "session": 1,
                            outcome: y,
                            "synthetic": "true",
                        }
                    )
    return pd.DataFrame(rows), {k: float(v) for k, v in truth.items()}
