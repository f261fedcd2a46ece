"""Meta-analysis of backward/forward effect sizes: frequentist cross-checks and a Bayesian model.

Effect size: ``yi = ln(backward / forward)`` of one outcome in one condition of one study, with
sampling variance ``vi`` (see :func:`retrosim.evidence.tables.effect_sizes`). Percent scale:
``100 (exp(y) - 1)``.

Frequentist cross-checks (REML, DerSimonian–Laird, Paule–Mandel) live in
:mod:`retrosim.meta.frequentist` and are re-exported here.

Bayesian random-effects meta-regression
---------------------------------------
:func:`build_model` / :func:`fit` (sampled with nutpie; PyMC NUTS as fallback). For row ``i``
(one condition, e.g. one speed, of study cluster ``s`` in analysis family ``f``)::

    y_i     = theta_i + e_i,   e_i ~ Normal(0, v_i(r))    (sampling error; rows may be masked)
    theta_i = alpha_f + b_speed_f (speed_i - c_f) + b_mode_f m_i + b_match_f,k [matching_i = k]
              + b_grade_f g_i + b_underwater_f h_i + u_s + w_i
    u_s ~ Normal(0, tau_study_f²)   (study effect; Student-t with ``robust=True``)
    w_i ~ Normal(0, tau_cond_f²)    (condition-within-study effect)
    v_i(r)  = v_forward + v_backward - 2 r sqrt(v_forward v_backward)   paired (within) rows
            = vi                                                        other rows
    r ~ Beta(r_a, r_b)                                   (forward-backward correlation)

**Everything Gaussian is integrated out exactly.** Given the SDs and ``r``, the rows of one
family are jointly normal, ``y_f ~ N(0, Sigma_f + X_f diag(s²) X_f')`` with ``Sigma_f``
block-diagonal by cluster (``diag(v + tau_cond²) + tau_study² 11'``) and ``s`` the prior SDs of
the coefficients. NUTS therefore samples only ``tau_study``, ``tau_cond`` (one each per
family) and ``r``: 2F + 1 dimensions without the funnel that sampled study effects had when a
family has one to five studies (the earlier model, kept as ``marginal=False``, needed
target_accept 0.99 and still diverged on some machines). The coefficients, the study effects
``u_s`` (``study_effect``) and the condition effects ``w_i`` (``condition_effect``) are then
drawn from their exact conditional normals, one draw per posterior draw
(:func:`conditional_draws`), so every quantity of the earlier model is still reported.

``m_i`` is +1/2 for running, -1/2 for
walking and 0 when the mode is unspecified; ``c_f`` is the mean speed of family ``f`` (a
missing speed takes the reported range midpoint, else ``c_f``); ``k`` is 'self_selected' or
'matched_intensity' (same-speed rows are the reference). A moderator whose column does not vary
within a family is switched off for that family (its coefficient then only carries its prior
and never enters ``theta``). Study clusters are the evidence's ``group_key`` (independence
clusters) crossed with the family, so a study's energy result and its knee result get separate
random effects; conditions (speeds, outcomes) are nested in clusters.

The effect in a **new study** (:meth:`MetaResult.predictive_draws`) adds a new study effect and
a new condition effect to the mean effect: the Bayesian prediction interval.

Priors (defaults of :class:`Priors`, all on the ln-ratio scale) and why:

* ``alpha_f ~ Normal(0, 0.5)``: 95 % prior range exp(±0.98) = 0.375–2.66, i.e. -62 % to +166 %;
  every backward/forward difference in the literature leads the evidence was curated from
  (between -46 % and +35 %) lies inside one prior SD, so the prior is weak but excludes
  absurd ten-fold ratios.
* ``b_speed_f ~ Normal(0, 0.25)`` per m/s: a 1 m/s change of speed is not expected to change the
  backward/forward ratio by more than about ±50 % (2 SD).
* ``b_mode_f, b_match_f ~ Normal(0, 0.5)``: the same weak scale as ``alpha``.
* ``b_grade_f ~ Normal(0, 0.02)`` per % of treadmill grade ``g_i`` (0 = level; a grade not
  stated is taken as level, a value averaged over grades enters at the range's midpoint with its
  uniform variance): a 10 % grade is not expected to change the ratio by more than about ±40 %
  (2 SD). Uphill comparisons (Hooper 2004, Chaloupka 1997, Kale 2014, Rasica 2020) thereby inform the level
  effect through the family's intercept at grade 0 instead of being dropped or passing for level.
* ``b_underwater_f ~ Normal(0, 0.5)`` for ``h_i = 1`` on rows walked or run underwater (the
  evidence's ``surface``), 0 on land: buoyancy and water drag change the task, so an underwater
  comparison is allowed a shift of the ln ratio on the same weak scale as ``alpha`` (95 % prior
  range -62 % to +166 %) instead of passing for land evidence or being dropped. It is on in
  every family with an underwater row, so a family with underwater rows alone leaves its land
  intercept ``alpha_f`` to its prior. The rows then inform the land effect through the
  parameters all rows of a family share (``tau_study``, ``tau_cond``, ``r``), and ``alpha`` as
  far as the data pin ``b_underwater``: direction-only rows can, when their significance
  classes bound the effect tightly (``studies/direction_evidence.py`` reports the posterior SD
  of ``b_underwater`` against the prior's per family). Every claim is read on land (``h = 0``).
* ``tau_study_f ~ HalfNormal(0.25)``, ``tau_cond_f ~ HalfNormal(0.1)``: between-study SD of the
  ln ratio up to about 0.5 (±65 %) is allowed; conditions within a study (same people, same
  lab) are expected to scatter less. With few studies this prior dominates the posterior of
  ``tau_study``, so :func:`sensitivity` also refits with HalfNormal(0.125) and (0.5), a
  HalfCauchy(0.25) and the empirically informed log-normal prior of Turner et al. [2]_
  (``Priors.tau_prior``; the families Röver et al. [3]_ discuss as weakly informative).
* ``r ~ Beta(5, 2)`` (mean 0.71, central 95 % about 0.36–0.96, computed from the Beta quantiles):
  the same people measured forward and backward are positively correlated, but no study in the
  evidence reports the correlation or the SD of the differences, so ``r`` is a prior, not a
  fixed guess; :func:`sensitivity` refits with Beta(2, 5), Beta(2, 2) and Beta(8, 2).
* robust option: ``nu ~ Gamma(2, 0.1)`` degrees of freedom of the study effects (mean 20; mass
  on heavy tails below 5 is about 9 %).

:func:`prior_predictive_summary` reports what these priors imply for the effect and for the
observed ln ratios, on the ln-ratio and % scales.

Model checking: :func:`posterior_predictive_check`, :func:`leave_one_study_out`,
:func:`sensitivity`, simulation-based calibration (:func:`run_sbc_replicate`,
:func:`sbc_uniformity`; Talts et al. [1]_) and parameter recovery (tests).

References
----------
.. [1] S. Talts, M. Betancourt, D. Simpson, A. Vehtari, A. Gelman, "Validating Bayesian inference
   algorithms with simulation-based calibration", arXiv:1804.06788, 2018.
.. [2] R. M. Turner, D. Jackson, Y. Wei, S. G. Thompson, J. P. T. Higgins, "Predictive
   distributions for between-study heterogeneity and simple methods for their application in
   Bayesian meta-analysis", Statistics in Medicine 34(6), 984-998, 2015. doi:10.1002/sim.6381
.. [3] C. Röver, R. Bender, S. Dias, C. H. Schmid, H. Schmidli, S. Sturtz, S. Weber, T. Friede,
   "On weakly informative prior distributions for the heterogeneity parameter in Bayesian
   random-effects meta-analysis", Research Synthesis Methods 12(4), 448-474, 2021.
   doi:10.1002/jrsm.1475
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from retrosim._checks import check_choice
from retrosim.bayes.results import PosteriorResults
from retrosim.errors import InputError
from retrosim.meta.frequentist import (
    FrequentistResult,
    dersimonian_laird,
    frequentist,
    paule_mandel,
    reml,
)
from retrosim.vocabulary import EVIDENCE_MODES as MODES
from retrosim.vocabulary import SPEED_MATCHINGS

log = logging.getLogger(__name__)

__all__ = [
    "FrequentistResult",
    "MetaDesign",
    "MetaResult",
    "Priors",
    "build_model",
    "dersimonian_laird",
    "fit",
    "frequentist",
    "leave_one_study_out",
    "paule_mandel",
    "posterior_predictive_check",
    "prior_predictive_summary",
    "reml",
    "run_sbc_replicate",
    "sbc_uniformity",
    "sensitivity",
    "simulate_effect_sizes",
    "to_percent",
]

#: Coefficients of each family, in the column order of ``MetaDesign.data()["X_row"]``.
COEF_NAMES = (
    "alpha",
    "b_speed",
    "b_mode",
    "b_match_self_selected",
    "b_match_matched_intensity",
    "b_grade",
    "b_underwater",
)
N_COEF = len(COEF_NAMES)
MODE_CODE = {"run": 0.5, "walk": -0.5, "unspecified": 0.0}
#: The ``surface`` of rows that get the ``b_underwater`` shift (module docstring).
UNDERWATER = "underwater"
REQUIRED_COLUMNS = (
    "row_id",
    "study_key",
    "group_key",
    "outcome",
    "outcome_family",
    "mode",
    "speed_m_s",
    "speed_matching",
    "n",
    "design",
    "yi",
    "vi",
)


def to_percent(y):
    """Convert ln(backward/forward) to percent difference, ``100 (exp(y) - 1)``."""
    return 100.0 * np.expm1(np.asarray(y, dtype=float))


# ----------------------------------------------------------------------------------------------
# Bayesian model: data design
# ----------------------------------------------------------------------------------------------


#: Heterogeneity priors of ``tau_study`` (see :class:`Priors`).
TAU_PRIORS = ("half_normal", "half_cauchy", "log_normal_tau2")


@dataclass(frozen=True)
class Priors:
    """Prior scales of the Bayesian meta-regression (ln-ratio scale; see the module docstring).

    ``tau_prior`` chooses the family of the between-study SD prior: ``"half_normal"`` and
    ``"half_cauchy"`` with scale ``tau_study_sd`` [ln ratio], or ``"log_normal_tau2"``,
    ln(tau²) ~ Normal(``tau2_lognormal_mu``, ``tau2_lognormal_sigma``²), i.e.
    tau ~ LogNormal(mu / 2, sigma / 2). The default log-normal parameters (-2.56, 1.74) are the
    "marginal" predictive distribution of Turner et al. (2015; Statistics in Medicine 34:984,
    p. 993; the values the R package bayesmeta's ``TurnerEtAlPrior()`` returns), derived from
    Cochrane meta-analyses of log odds ratios: an empirically informed but borrowed scale,
    used here as a sensitivity case (see the module docstring).
    """

    alpha_sd: float = 0.5
    speed_sd: float = 0.25
    mode_sd: float = 0.5
    match_sd: float = 0.5
    tau_study_sd: float = 0.25
    tau_cond_sd: float = 0.1
    r_a: float = 5.0
    r_b: float = 2.0
    tau_prior: str = "half_normal"
    tau2_lognormal_mu: float = -2.56
    tau2_lognormal_sigma: float = 1.74
    grade_sd: float = 0.02
    underwater_sd: float = 0.5

    def __post_init__(self):
        check_choice("tau_prior", self.tau_prior, TAU_PRIORS)

    @classmethod
    def flat(cls) -> Priors:
        """Flat-ish priors (SD 10 on coefficients, HalfNormal(2) on SDs) for checks against REML."""
        return cls(10.0, 10.0, 10.0, 10.0, 2.0, 2.0, 5.0, 2.0, grade_sd=10.0, underwater_sd=10.0)

    def scaled(self, factor: float) -> Priors:
        """All scale parameters multiplied by ``factor`` (the r prior unchanged)."""
        return replace(
            self,
            alpha_sd=self.alpha_sd * factor,
            speed_sd=self.speed_sd * factor,
            mode_sd=self.mode_sd * factor,
            match_sd=self.match_sd * factor,
            tau_study_sd=self.tau_study_sd * factor,
            tau_cond_sd=self.tau_cond_sd * factor,
            grade_sd=self.grade_sd * factor,
            underwater_sd=self.underwater_sd * factor,
        )

    @property
    def coef_sd(self) -> np.ndarray:
        """Prior SDs of the coefficients of each family, in ``X_row`` column order."""
        return np.array(
            [
                self.alpha_sd,
                self.speed_sd,
                self.mode_sd,
                self.match_sd,
                self.match_sd,
                self.grade_sd,
                self.underwater_sd,
            ]
        )

    def data(self) -> dict:
        """Numeric prior parameters as ``pm.Data`` values (``tau_prior`` shapes the graph)."""
        return {
            f"prior_{k}": np.asarray(float(v))
            for k, v in self.__dict__.items()
            if not isinstance(v, str)
        }

    def describe_tau(self) -> str:
        """The between-study SD prior in words, e.g. ``HalfNormal(0.25)``."""
        if self.tau_prior == "half_normal":
            return f"HalfNormal({self.tau_study_sd:g})"
        if self.tau_prior == "half_cauchy":
            return f"HalfCauchy({self.tau_study_sd:g})"
        return f"ln tau² ~ Normal({self.tau2_lognormal_mu:g}, {self.tau2_lognormal_sigma:g}²)"


@dataclass
class MetaDesign:
    """Arrays of the Bayesian model, built from an effect-size table by :meth:`from_frame`.

    ``family`` is the analysis family: the evidence's ``outcome_family``, except that each
    ``gait`` outcome (step length, cadence, ...) is its own family.
    """

    frame: pd.DataFrame
    families: tuple
    clusters: tuple
    y: np.ndarray
    v_fixed: np.ndarray
    v_forward: np.ndarray
    v_backward: np.ndarray
    paired: np.ndarray
    family_idx: np.ndarray
    cluster_idx: np.ndarray
    cluster_family: np.ndarray
    speed_c: np.ndarray
    mode_code: np.ndarray
    match: np.ndarray  # (n, 2): self_selected, matched_intensity indicators
    speed_centre: np.ndarray
    has_speed: np.ndarray
    has_mode: np.ndarray
    has_match: np.ndarray  # (F, 2)
    mask: np.ndarray = field(default=None)
    use_cond: float = 1.0
    #: direction-only rows (their ``y`` is latent, censored to ``t_lo < y / se < t_hi``)
    latent: np.ndarray = field(default=None)
    t_lo: np.ndarray = field(default=None)
    t_hi: np.ndarray = field(default=None)
    inv_n: np.ndarray = field(default=None)  # 1 / n of direction rows [1/person]
    speed_var: np.ndarray = field(default=None)  # variance of an unreported speed [m²/s²]
    sigma2_P: np.ndarray = field(default=None)  # sigma_f²(r) = P_f - r Q_f (per family)
    sigma2_Q: np.ndarray = field(default=None)
    grade: np.ndarray = field(default=None)  # treadmill grade [%] (0: level or not stated)
    grade_var: np.ndarray = field(default=None)  # variance of a grade given as a range [%²]
    has_grade: np.ndarray = field(default=None)  # (F,)
    underwater: np.ndarray = field(default=None)  # 1 on rows walked or run underwater, else 0
    has_underwater: np.ndarray = field(default=None)  # (F,)

    def __post_init__(self):
        n, F = self.y.size, len(self.families)
        if self.mask is None:
            self.mask = np.ones_like(self.y)
        defaults = {
            "latent": np.zeros(n, bool),
            "t_lo": np.full(n, -np.inf),
            "t_hi": np.full(n, np.inf),
            "inv_n": np.zeros(n),
            "speed_var": np.zeros(n),
            "sigma2_P": np.zeros(F),
            "sigma2_Q": np.zeros(F),
            "grade": np.zeros(n),
            "grade_var": np.zeros(n),
            "has_grade": np.zeros(F),
            "underwater": np.zeros(n),
            "has_underwater": np.zeros(F),
        }
        for name, val in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, val)

    @property
    def n_latent(self) -> int:
        """Number of direction-only rows."""
        return int(np.sum(self.latent))

    def sigma2(self, r):
        """Between-person variance of the ln ratio per family at correlation ``r`` (..., F)."""
        r = np.asarray(r, float)[..., None]
        return np.maximum(self.sigma2_P - r * self.sigma2_Q, 1e-12)

    def speed_extra_variance(self, priors: Priors) -> np.ndarray:
        """Variance an unreported or ranged speed or grade adds to a row's effect (n,) [ln
        ratio²]: ``speed_sd² var(speed) + grade_sd² var(grade)``, the coefficients' prior
        variances times the covariate's (a conservative first-order term: the posteriors of
        ``b_speed`` and ``b_grade`` are narrower than their priors)."""
        return (
            self.has_speed[self.family_idx] * priors.speed_sd**2 * self.speed_var
            + self.has_grade[self.family_idx] * priors.grade_sd**2 * self.grade_var
        )

    def row_variance(self, r) -> np.ndarray:
        """Sampling variance of every row's ``y`` at ``r`` (..., n): paired rows at ``r``,
        fixed rows ``vi``, direction rows ``sigma_f²(r) / n``."""
        r_ = np.asarray(r, float)[..., None]
        v_pair = (
            self.v_forward + self.v_backward - 2.0 * r_ * np.sqrt(self.v_forward * self.v_backward)
        )
        v = self.paired * v_pair + (1.0 - self.paired) * np.where(self.latent, 0.0, self.v_fixed)
        if self.latent.any():
            s2 = self.sigma2(r)[..., self.family_idx] * self.inv_n
            v = np.where(self.latent, s2, v)
        return np.maximum(v, 1e-12)

    @property
    def n_rows(self) -> int:
        return int(self.y.size)

    @property
    def shape_key(self) -> tuple:
        return (self.n_rows, len(self.clusters), len(self.families))

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, *, nested: bool = True, directions: pd.DataFrame | None = None
    ) -> MetaDesign:
        """Build the design from a :func:`retrosim.evidence.tables.effect_sizes` table.

        Parameters
        ----------
        df : pandas.DataFrame
            Needs the columns of ``REQUIRED_COLUMNS``; ``v_forward``/``v_backward`` are used for
            paired (``design == 'within'``) rows when present and finite.
        nested : bool
            Include the condition-within-cluster random effect (``tau_cond``).
        directions : pandas.DataFrame, optional
            Direction-only rows from :func:`retrosim.evidence.directions.direction_rows`
            (``t_lo``, ``t_hi``, ``n``): appended as interval-censored rows whose ``y`` is
            latent, with standard error ``sigma_f(r) / sqrt(n)`` pooled from the family's
            numeric rows (see :mod:`retrosim.evidence.directions`).

        Speeds: a reported speed is used as is; a reported range (``speed_low_m_s``,
        ``speed_high_m_s``) gives its midpoint and the variance of a uniform distribution over
        it; an unreported speed gets the midpoint and uniform variance of the span of the
        speeds reported in ``df`` (with ``directions``) for the same mode (both modes for an
        unspecified one). That variance enters each row's effect as ``speed_sd² var(speed)``
        (:meth:`speed_extra_variance`) in families with a speed moderator, instead of placing
        the row at the family's mean speed with no extra uncertainty.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"effect-size table lacks columns {missing}", argument="df")
        df = df.reset_index(drop=True).copy()
        if df.empty:
            raise InputError("effect-size table has no rows", argument="df")
        df["row_kind"] = "numeric"
        for col in ("yi", "vi"):
            vals = df[col].to_numpy(dtype=float)
            bad = ~np.isfinite(vals) | ((vals <= 0) if col == "vi" else False)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"non-finite or invalid value {vals[i]!r} (ln-ratio units)",
                    row=df.loc[i, "row_id"],
                    column=col,
                )
        if directions is not None and len(directions):
            need = [c for c in ("t_lo", "t_hi", "n", *REQUIRED_COLUMNS[:9]) if c not in directions]
            if need:
                raise InputError(f"direction rows lack columns {need}", argument="directions")
            dr = directions.reset_index(drop=True).copy()
            dr["row_kind"] = "direction"
            dr["yi"] = np.nan
            dr["vi"] = np.nan
            df = pd.concat([df, dr], ignore_index=True, sort=False)
        latent = (df["row_kind"] == "direction").to_numpy()
        check_choice("mode", df["mode"].to_numpy(), MODES)
        check_choice("speed_matching", df["speed_matching"].to_numpy(), SPEED_MATCHINGS)
        fam = df["outcome_family"].astype(str)
        is_gait = fam == "gait"
        fam = fam.where(~is_gait, "gait:" + df["outcome"].astype(str))
        df["family"] = fam
        families = tuple(sorted(fam.unique()))
        f_idx = np.array([families.index(f) for f in fam])
        cl = df["group_key"].astype(str) + "|" + fam
        clusters = tuple(dict.fromkeys(cl))
        c_idx = np.array([clusters.index(c) for c in cl])
        # each cluster's family from its first row (a group key may itself contain "|")
        cluster_family = np.array(
            [f_idx[np.flatnonzero(c_idx == k)[0]] for k in range(len(clusters))]
        )
        speed, speed_var = _row_speeds(df)
        reported = np.isfinite(df["speed_m_s"].to_numpy(dtype=float)) | (speed_var > 0)
        df["speed_used_m_s"] = speed
        df["speed_var_m2_s2"] = speed_var
        F = len(families)
        centre = np.zeros(F)
        has_speed = np.zeros(F)
        has_mode = np.zeros(F)
        has_match = np.zeros((F, 2))
        mode = df["mode"].to_numpy()
        matching = df["speed_matching"].to_numpy()
        match = np.column_stack(
            [(matching == "self_selected"), (matching == "matched_intensity")]
        ).astype(float)
        for j in range(F):
            rows = f_idx == j
            sp = speed[rows & reported]
            centre[j] = sp.mean() if sp.size else 0.0
            has_speed[j] = float(np.unique(np.round(sp, 6)).size >= 2)
            modes = set(mode[rows])
            has_mode[j] = float({"run", "walk"} <= modes)
            for k in range(2):
                has_match[j, k] = float(0 < match[rows, k].sum() < rows.sum())
        speed_c = np.where(np.isfinite(speed), speed - centre[f_idx], 0.0)
        speed_var = np.where(np.isfinite(speed), speed_var, 0.0)
        grade, grade_var = _row_grades(df)
        df["grade_used_pct"] = grade
        has_grade = np.array(
            [float(np.unique(np.round(grade[f_idx == j], 6)).size >= 2) for j in range(F)]
        )
        # on in every family with an underwater row (module docstring), even one without land rows
        surface = df["surface"].astype(str) if "surface" in df.columns else pd.Series("", df.index)
        underwater = (surface == UNDERWATER).to_numpy(dtype=float)
        has_underwater = np.array([float(underwater[f_idx == j].any()) for j in range(F)])
        mode_code = np.array([MODE_CODE[m] for m in mode])
        vi = df["vi"].to_numpy(dtype=float)
        if {"v_forward", "v_backward"} <= set(df.columns):
            vf = df["v_forward"].to_numpy(dtype=float)
            vb = df["v_backward"].to_numpy(dtype=float)
        else:
            vf = vb = np.full_like(vi, np.nan)
        paired = (
            (df["design"].to_numpy() == "within")
            & np.isfinite(vf)
            & np.isfinite(vb)
            & (np.nan_to_num(vf) > 0)
            & (np.nan_to_num(vb) > 0)
            & ~latent
        )
        P, Q, donor_note = _sigma2_terms(df, families, latent)
        df["sigma_donors"] = [donor_note[f] if k else "" for f, k in zip(fam, latent, strict=True)]
        n_arr = df["n"].to_numpy(dtype=float)
        return cls(
            frame=df,
            families=families,
            clusters=clusters,
            y=np.where(latent, 0.0, df["yi"].to_numpy(dtype=float)),
            v_fixed=np.where(latent, 1.0, vi),
            v_forward=np.where(paired, vf, 0.0),
            v_backward=np.where(paired, vb, 0.0),
            paired=paired.astype(float),
            family_idx=f_idx,
            cluster_idx=c_idx,
            cluster_family=cluster_family,
            speed_c=speed_c,
            mode_code=mode_code,
            match=match,
            speed_centre=centre,
            has_speed=has_speed,
            has_mode=has_mode,
            has_match=has_match,
            use_cond=1.0 if nested else 0.0,
            latent=latent,
            t_lo=np.where(latent, df.get("t_lo", np.nan), -np.inf).astype(float),
            t_hi=np.where(latent, df.get("t_hi", np.nan), np.inf).astype(float),
            inv_n=np.where(latent, 1.0 / np.where(latent, n_arr, 1.0), 0.0),
            speed_var=speed_var,
            sigma2_P=P,
            sigma2_Q=Q,
            grade=grade,
            grade_var=grade_var,
            has_grade=has_grade,
            underwater=underwater,
            has_underwater=has_underwater,
        )

    def data(self) -> dict:
        """Values of the model's ``pm.Data`` containers (row covariates with switched-off moderators zeroed)."""
        hs = self.has_speed[self.family_idx]
        hm = self.has_mode[self.family_idx]
        hx = self.has_match[self.family_idx]
        hg = self.has_grade[self.family_idx]
        hu = self.has_underwater[self.family_idx]
        X_row = np.column_stack(
            [
                np.ones(self.n_rows),
                hs * self.speed_c,
                hm * self.mode_code,
                hx[:, 0] * self.match[:, 0],
                hx[:, 1] * self.match[:, 1],
                hg * self.grade,
                hu * self.underwater,
            ]
        )
        return {
            "y": self.y,
            "v_fixed": self.v_fixed,
            "v_forward": self.v_forward,
            "v_backward": self.v_backward,
            "paired": self.paired,
            "family_idx": self.family_idx.astype("int64"),
            "cluster_idx": self.cluster_idx.astype("int64"),
            "cluster_family": self.cluster_family.astype("int64"),
            "X_row": X_row,
            "mask": self.mask.astype(float),
            "use_cond": np.asarray(float(self.use_cond)),
            **self.onehots(),
            "XX_row": (X_row[:, :, None] * X_row[:, None, :]).reshape(self.n_rows, -1),
            # variances of ranged or unreported speeds and grades (times the prior variances of
            # their coefficients in the graph: see speed_extra_variance)
            "speed_var_row": hs * self.speed_var,
            "grade_var_row": hg * self.grade_var,
        }

    def onehots(self) -> dict:
        """Row-to-cluster ``G`` (n, C), row-to-family ``H`` (n, F) and cluster-to-family ``K``
        (C, F) indicator matrices: the per-cluster and per-family sums of the marginal
        likelihood are matrix products with them."""
        C, F = len(self.clusters), len(self.families)
        return {
            "G": np.eye(C)[self.cluster_idx],
            "H": np.eye(F)[self.family_idx],
            "K": np.eye(F)[self.cluster_family],
        }


def _row_grades(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Grade [%] and its variance [%²] of every row: a reported grade as is, a range (a value
    averaged over grades, e.g. 0 to +25 %) as its midpoint with the variance of a uniform
    distribution over it, and no grade as level (0: the usual treadmill and track protocol;
    the claims are about level locomotion)."""
    n = len(df)

    def col(name):
        return df[name].to_numpy(dtype=float) if name in df.columns else np.full(n, np.nan)

    g, lo, hi = col("grade_pct"), col("grade_low_pct"), col("grade_high_pct")
    ranged = ~np.isfinite(g) & np.isfinite(lo) & np.isfinite(hi)
    grade = np.where(np.isfinite(g), g, np.where(ranged, 0.5 * (lo + hi), 0.0))
    var = np.where(ranged, (hi - lo) ** 2 / 12.0, 0.0)
    return grade, var


def _row_speeds(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Speed [m/s] and its variance [m²/s²] of every row (see :meth:`MetaDesign.from_frame`)."""
    n = len(df)
    speed = df["speed_m_s"].to_numpy(dtype=float).copy()
    var = np.zeros(n)
    lo = df["speed_low_m_s"].to_numpy(dtype=float) if "speed_low_m_s" in df else np.full(n, np.nan)
    hi = (
        df["speed_high_m_s"].to_numpy(dtype=float) if "speed_high_m_s" in df else np.full(n, np.nan)
    )
    ranged = ~np.isfinite(speed) & np.isfinite(lo) & np.isfinite(hi)
    speed[ranged] = 0.5 * (lo[ranged] + hi[ranged])
    var[ranged] = (hi[ranged] - lo[ranged]) ** 2 / 12.0
    if "speed_mid_m_s" in df.columns:  # tables without the range columns
        mid = df["speed_mid_m_s"].to_numpy(dtype=float)
        speed = np.where(np.isfinite(speed), speed, mid)
    mode = df["mode"].to_numpy()
    known = np.isfinite(speed).copy()
    for i in np.flatnonzero(~known):
        modes = ("run", "walk") if mode[i] == "unspecified" else (mode[i],)
        sel = known & np.isin(mode, modes)
        if not sel.any():
            sel = known
        if not sel.any():
            continue
        a, b = float(np.min(speed[sel])), float(np.max(speed[sel]))
        speed[i] = 0.5 * (a + b)
        var[i] = (b - a) ** 2 / 12.0
    return speed, var


def _sigma2_terms(df: pd.DataFrame, families: tuple, latent: np.ndarray):
    """``P_f, Q_f`` of ``sigma_f²(r)`` for the families with direction rows, with a note of the
    donor rows (same analysis family, else the same evidence outcome family, else all)."""
    from retrosim.evidence.directions import donor_variance_terms

    F = len(families)
    P, Q = np.zeros(F), np.zeros(F)
    notes = {}
    if not latent.any():
        return P, Q, notes
    num = df[~latent]
    by_family = donor_variance_terms(num, "family")
    by_outcome = donor_variance_terms(num, "outcome_family")
    pooled = donor_variance_terms(num.assign(_all="all"), "_all")
    for j, f in enumerate(families):
        rows = df[(df["family"] == f) & latent]
        if rows.empty:
            continue
        ofam = str(rows["outcome_family"].iloc[0])
        if f in by_family.index:
            src, how = by_family.loc[f], "same family"
        elif ofam in by_outcome.index:
            src, how = by_outcome.loc[ofam], f"outcome family {ofam}"
        elif len(pooled):
            src, how = pooled.iloc[0], "all numeric rows"
        else:
            raise InputError(
                f"direction rows of family {f!r} need numeric rows with a reported dispersion "
                "to scale their standard error; none in the table",
                argument="directions",
            )
        P[j], Q[j] = float(src["P"]), float(src["Q"])
        notes[f] = f"{how}: {', '.join(map(str, src['donors']))}"
    return P, Q, notes


# ----------------------------------------------------------------------------------------------
# Bayesian model: PyMC graph, compiled-model cache, sampling
# ----------------------------------------------------------------------------------------------


def build_model(
    design: MetaDesign,
    priors: Priors | None = None,
    *,
    robust: bool = False,
    marginal: bool = True,
):
    """Build the PyMC random-effects meta-regression (see the module docstring).

    Parameters
    ----------
    design : MetaDesign
    priors : Priors, optional
    robust : bool
        Student-t study effects (a scale mixture of normals: one variance factor per cluster).
    marginal : bool
        ``True`` (default): coefficients, study effects and condition effects integrated out
        exactly; NUTS samples only the SDs and ``r``. ``False``: the earlier model with sampled
        study effects (reference for validation).

    Every data array and every prior scale is a ``pm.Data`` container, so one compiled model
    serves refits with new data of the same shape, masked studies (leave-one-out) and other
    prior scales (sensitivity, SBC) without recompiling.
    """
    priors = priors or Priors()
    if not marginal:
        return _build_sampled_model(design, priors, robust=robust)
    return _build_marginal_model(design, priors, robust=robust)


def _coords(design: MetaDesign) -> dict:
    return {
        "family": list(design.families),
        "cluster": list(design.clusters),
        "row": [str(r) for r in design.frame["row_id"]],
        "matching": ["self_selected", "matched_intensity"],
        "coef": list(COEF_NAMES),
    }


def _tau_study_prior(pm, priors: Priors, P: dict):
    """The between-study SD prior chosen by ``priors.tau_prior``."""
    if priors.tau_prior == "half_normal":
        return pm.HalfNormal("tau_study", P["prior_tau_study_sd"], dims="family")
    if priors.tau_prior == "half_cauchy":
        return pm.HalfCauchy("tau_study", P["prior_tau_study_sd"], dims="family")
    return pm.LogNormal(
        "tau_study",
        mu=P["prior_tau2_lognormal_mu"] / 2.0,
        sigma=P["prior_tau2_lognormal_sigma"] / 2.0,
        dims="family",
    )


def _build_marginal_model(design: MetaDesign, priors: Priors, *, robust: bool):
    """Marginal likelihood with coefficients, study and condition effects integrated out.

    For family ``f`` with rows ``y_f`` the model is ``y_f ~ N(X_f beta_f, Sigma_f)`` with
    ``beta_f ~ N(0, diag(s²))`` and ``Sigma_f`` block-diagonal by study cluster,
    ``D_c + t_c² 11'`` (``D`` diagonal: sampling variance at ``r`` plus ``tau_cond²``,
    ``t_c = tau_study`` times the cluster's Student-t variance factor when robust).
    Integrating ``beta`` out gives, with ``A = X'Sigma^-1 X + diag(1/s²)`` and
    ``b = X'Sigma^-1 y``::

        log p(y_f) = -1/2 [y'Sigma^-1 y - b'A^-1 b + log|Sigma| + log|A| + sum log s²
                           + n_f log 2 pi]

    ``Sigma^-1`` is applied cluster by cluster through Sherman–Morrison:
    ``a'Sigma^-1 b = sum w a b - sum_c g_c (sum w a)(sum w b)`` with ``w = mask / d`` and
    ``g_c = t_c² / (1 + t_c² sum_c w)``; ``log|Sigma| = sum log d + sum_c log(1 + t_c² sum_c w)``.
    Masked rows drop out exactly (a masked family contributes 0). The k x k systems
    (k = ``N_COEF``) are solved through their Cholesky factors, batched over families.
    """
    import pymc as pm
    import pytensor.tensor as pt

    d = design.data()
    with pm.Model(coords=_coords(design)) as model:
        D = {name: pm.Data(name, val) for name, val in d.items()}
        P = {name: pm.Data(name, val) for name, val in priors.data().items()}
        tau_study = _tau_study_prior(pm, priors, P)
        tau_cond = pm.HalfNormal("tau_cond", P["prior_tau_cond_sd"], dims="family")
        r = pm.Beta("r", P["prior_r_a"], P["prior_r_b"])
        t2 = tau_study[D["cluster_family"]] ** 2
        if robust:
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
            lam = pm.InverseGamma("lam", alpha=nu / 2.0, beta=nu / 2.0, dims="cluster")
            t2 = t2 * lam
        coef_sd = pt.stack(
            [
                P["prior_alpha_sd"],
                P["prior_speed_sd"],
                P["prior_mode_sd"],
                P["prior_match_sd"],
                P["prior_match_sd"],
                P["prior_grade_sd"],
                P["prior_underwater_sd"],
            ]
        )
        extra = (
            P["prior_speed_sd"] ** 2 * D["speed_var_row"]
            + P["prior_grade_sd"] ** 2 * D["grade_var_row"]
        )
        loglik = _marginal_loglik_pt(pt, D, tau_cond, r, t2, coef_sd, extra)
        pm.Potential("loglik", pt.sum(loglik))
    return model


def _marginal_loglik_pt(pt, D, tau_cond, r, t2, coef_sd, extra=0.0):
    """Per-family log marginal likelihood (PyTensor; numpy mirror :func:`marginal_loglik`)."""
    X, y, w_mask = D["X_row"], D["y"], D["mask"]
    G, H, K = D["G"], D["H"], D["K"]
    v_pair = D["v_forward"] + D["v_backward"] - 2.0 * r * pt.sqrt(D["v_forward"] * D["v_backward"])
    v = D["paired"] * v_pair + (1.0 - D["paired"]) * D["v_fixed"]
    dvar = pt.maximum(v, 1e-12) + extra + D["use_cond"] * tau_cond[D["family_idx"]] ** 2
    w = w_mask / dvar
    S = pt.dot(w, G)
    Sy = pt.dot(w * y, G)
    k = N_COEF
    SX = pt.dot(G.T, w[:, None] * X)  # (C, k)
    g = t2 / (1.0 + t2 * S)
    F = H.shape[1]
    yy = pt.dot(w * y * y, H) - pt.dot(g * Sy * Sy, K)
    Xy = pt.dot(H.T, (w * y)[:, None] * X) - pt.dot(K.T, (g * Sy)[:, None] * SX)
    SXo = (SX[:, :, None] * SX[:, None, :]).reshape((SX.shape[0], k * k))
    XX = pt.dot(H.T, w[:, None] * D["XX_row"]) - pt.dot(K.T, g[:, None] * SXo)
    A = XX.reshape((F, k, k)) + pt.diag(1.0 / coef_sd**2)[None, :, :]
    L = pt.linalg.cholesky(A)
    z = pt.linalg.solve_triangular(L, Xy[:, :, None], lower=True)
    quad = pt.sum(z**2, axis=(1, 2))
    logdet_A = 2.0 * pt.sum(pt.log(pt.diagonal(L, axis1=1, axis2=2)), axis=1)
    logdet_S = pt.dot(w_mask * pt.log(dvar), H) + pt.dot(pt.log1p(t2 * S), K)
    n_f = pt.dot(w_mask, H)
    return -0.5 * (
        yy - quad + logdet_S + logdet_A + pt.sum(pt.log(coef_sd**2)) + n_f * np.log(2 * np.pi)
    )


def _build_sampled_model(design: MetaDesign, priors: Priors, *, robust: bool):
    """The earlier parameterisation: study effects sampled (non-centred ``z_study``).

    Kept as the reference the marginal model is validated against (tests, benchmark); it
    has the funnel in ``tau_study`` that the marginal model removes.
    """
    import pymc as pm
    import pytensor.tensor as pt

    coords = {
        "family": list(design.families),
        "cluster": list(design.clusters),
        "row": [str(r) for r in design.frame["row_id"]],
        "matching": ["self_selected", "matched_intensity"],
    }
    d = design.data()
    with pm.Model(coords=coords) as model:
        D = {name: pm.Data(name, val) for name, val in d.items()}
        P = {name: pm.Data(name, val) for name, val in priors.data().items()}
        alpha = pm.Normal("alpha", 0.0, P["prior_alpha_sd"], dims="family")
        b_speed = pm.Normal("b_speed", 0.0, P["prior_speed_sd"], dims="family")
        b_mode = pm.Normal("b_mode", 0.0, P["prior_mode_sd"], dims="family")
        b_match = pm.Normal("b_match", 0.0, P["prior_match_sd"], dims=("family", "matching"))
        b_grade = pm.Normal("b_grade", 0.0, P["prior_grade_sd"], dims="family")
        b_underwater = pm.Normal("b_underwater", 0.0, P["prior_underwater_sd"], dims="family")
        tau_study = _tau_study_prior(pm, priors, P)
        tau_cond = pm.HalfNormal("tau_cond", P["prior_tau_cond_sd"], dims="family")
        r = pm.Beta("r", P["prior_r_a"], P["prior_r_b"])
        if robust:
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
            z_study = pm.StudentT("z_study", nu=nu, mu=0.0, sigma=1.0, dims="cluster")
        else:
            z_study = pm.Normal("z_study", 0.0, 1.0, dims="cluster")
        # one gather per row for all coefficients and both SDs (cheap to compile and to run)
        coef = pt.stack(
            [alpha, b_speed, b_mode, b_match[:, 0], b_match[:, 1], b_grade, b_underwater], axis=1
        )
        sds = pt.stack([tau_study, tau_cond], axis=1)[D["family_idx"]]
        theta = (
            pt.sum(coef[D["family_idx"]] * D["X_row"], axis=1)
            + sds[:, 0] * z_study[D["cluster_idx"]]
        )
        tau_cond_row = sds[:, 1]
        v_pair = (
            D["v_forward"] + D["v_backward"] - 2.0 * r * pt.sqrt(D["v_forward"] * D["v_backward"])
        )
        v = D["paired"] * v_pair + (1.0 - D["paired"]) * D["v_fixed"]
        # condition-within-cluster effects integrated out analytically: N(0, tau_cond²)
        extra = (
            P["prior_speed_sd"] ** 2 * D["speed_var_row"]
            + P["prior_grade_sd"] ** 2 * D["grade_var_row"]
        )
        sd = pt.sqrt(pt.maximum(v, 1e-12) + extra + D["use_cond"] * tau_cond_row**2)
        # normal log-density up to its constant
        logp = -0.5 * ((D["y"] - theta) / sd) ** 2 - pt.log(sd)
        pm.Potential("loglik", pt.sum(D["mask"] * logp))
    return model


_COMPILED: dict = {}
#: Parameters the convergence gate checks. In the marginal model NUTS samples the SDs and
#: ``r``; the coefficients are exact conditional draws given each of those draws, so their
#: R-hat and ESS inherit the chains' mixing and are gated too.
GATE_VARS = (
    "alpha",
    "b_speed",
    "b_mode",
    "b_match",
    "b_grade",
    "b_underwater",
    "tau_study",
    "tau_cond",
    "r",
)
#: What NUTS itself samples in the marginal model (robust adds ``nu`` and ``lam``).
SAMPLED_VARS = ("tau_study", "tau_cond", "r")


def _compiled(design: MetaDesign, priors: Priors, robust: bool, marginal: bool):
    """nutpie-compiled model for this design shape and prior family (cached per process)."""
    from retrosim.bayes.sampling import compile_model

    key = (
        design.shape_key,
        robust,
        marginal,
        priors.tau_prior,
        design.families,
        design.clusters,
    )
    if key not in _COMPILED:
        model = build_model(design, priors, robust=robust, marginal=marginal)
        _COMPILED[key] = compile_model(model)
    return _COMPILED[key]


def _sample(
    design,
    priors,
    *,
    robust,
    draws,
    tune,
    chains,
    seed,
    sampler,
    gate,
    progress,
    marginal=True,
    target_accept=None,
    adaptation="diag",
):
    """Sample the posterior; nutpie through the compiled-model cache, or PyMC NUTS.

    Both paths go through :func:`retrosim.bayes.sampling.sample`; the nutpie path passes a cached
    compiled model with this design's data, so refits (sensitivity, LOSO, SBC) skip
    compilation. The marginal model's coefficients, study and condition effects are then
    drawn exactly from their conditional normals (:func:`conditional_draws`), and the gate
    (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences) is applied to ``GATE_VARS``.
    """
    import xarray as xr

    from retrosim.bayes.sampling import apply_gate, diagnose, sample

    check_choice("sampler", sampler, ("nutpie", "pymc"))
    check_choice("gate", gate, ("raise", "warn", "off"))
    priors = priors or Priors()
    if design.n_latent and (sampler != "nutpie" or not marginal or robust):
        raise InputError(
            "direction-only rows are sampled with the marginal model and nutpie only "
            f"(got sampler={sampler!r}, marginal={marginal}, robust={robust}); leave them out "
            "with directions=None for the other variants",
            argument="design",
        )
    compiled = None
    if sampler == "nutpie" and marginal and not robust:
        compiled = MarginalDensity(design, priors).nutpie_model(design)
    elif sampler == "nutpie":
        compiled = _compiled(design, priors, robust, marginal)
        known = {var.name for var in compiled.shared_var_keys}
        updates = {**design.data(), **priors.data()}
        # nutpie drops data the graph does not use (e.g. cluster_idx in the marginal model)
        compiled = compiled.with_data(**{k: v for k, v in updates.items() if k in known})
    sampled = list(SAMPLED_VARS) + (["nu"] if robust else [])
    if design.n_latent:
        sampled.append("direction_yi")
    idata, raw = sample(
        lambda: build_model(design, priors, robust=robust, marginal=marginal),
        compiled=compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
        var_names=sampled,
        gate="off",
        progress=progress,
        target_accept=target_accept,
        nutpie_kwargs={"adaptation": adaptation} if adaptation != "diag" else None,
        # the numba density is called from Python: 2 chain threads only contend for the
        # GIL (measured: 2.96 s on 1 core vs 6.4 s on 2 for the claims fit)
        cores=1 if compiled is not None and _is_pyfunc(compiled) else None,
    )
    post = idata["posterior"].to_dataset()
    if marginal:
        flat = {k: _stack(post[k].values) for k in post.data_vars}
        if design.n_latent:
            lat = np.flatnonzero(design.latent & (design.mask > 0))
            y = np.broadcast_to(design.y, (flat["r"].shape[0], design.n_rows)).copy()
            y[:, lat] = flat.pop("direction_yi")
            flat["y"] = y
            post["direction_yi"].attrs.update(
                units="1",
                long_name="latent ln(backward/forward) of a direction-only result",
            )
        rng = np.random.default_rng([int(seed), 7])
        extra = conditional_draws(design, priors, flat, rng)
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        dims = {
            "alpha": ("family",),
            "b_speed": ("family",),
            "b_mode": ("family",),
            "b_match": ("family", "matching"),
            "b_grade": ("family",),
            "b_underwater": ("family",),
            "study_effect": ("cluster",),
            "condition_effect": ("row",),
        }
        attrs = {
            "study_effect": {"units": "1", "long_name": "study-cluster effect [ln ratio]"},
            "condition_effect": {"units": "1", "long_name": "condition effect [ln ratio]"},
        }
        for name, dd in dims.items():
            arr = extra[name].reshape((n_chain, n_draw, *extra[name].shape[1:]))
            post[name] = xr.DataArray(arr, dims=("chain", "draw", *dd), attrs=attrs.get(name, {}))
        post = post.assign_coords(
            row=[str(r) for r in design.frame["row_id"]],
            matching=["self_selected", "matched_intensity"],
        )
    else:
        tau = post["tau_study"].values[..., design.cluster_family]
        post["study_effect"] = xr.DataArray(
            tau * post["z_study"].values, dims=("chain", "draw", "cluster")
        )
    idata["posterior"] = xr.DataTree(post)
    gated = list(GATE_VARS) + (["nu"] if robust else [])
    diag = diagnose(idata, gated, sampler=raw.sampler)
    apply_gate(idata, diag, gate)
    return idata, diag


def _is_pyfunc(compiled) -> bool:
    """Whether ``compiled`` is a nutpie model whose log density is called from Python."""
    from nutpie.compiled_pyfunc import PyFuncModel

    return isinstance(compiled, PyFuncModel)


def _stack(arr) -> np.ndarray:
    """(chain, draw, ...) -> (chain*draw, ...)."""
    arr = np.asarray(arr)
    return arr.reshape((-1, *arr.shape[2:]))


def marginal_terms(
    design: MetaDesign, tau_study, tau_cond, r, lam=None, *, y=None, priors=None
) -> dict:
    """Sufficient statistics of the marginal likelihood for parameter values (numpy).

    Vectorised over any leading axes of the parameters (e.g. posterior draws): ``tau_study``
    and ``tau_cond`` (..., F), ``r`` (...), ``lam`` (..., C) or None; ``y`` (..., n) replaces the
    design's ``y`` (the draws of the direction rows' latent values). Returns the arrays of
    :func:`_build_marginal_model`'s docstring: ``w``, ``dvar``, ``S``, ``g`` (per cluster),
    ``yy`` (..., F), ``Xy`` (..., F, k), ``XX`` (..., F, k, k) (k = ``N_COEF``),
    ``logdet_sigma`` (..., F).
    ``v`` includes the variance of unreported speeds (:meth:`MetaDesign.speed_extra_variance`).
    """
    d = design.data()
    X, m = d["X_row"], d["mask"]
    y = d["y"] if y is None else np.asarray(y, float)
    G, H, K = d["G"], d["H"], d["K"]
    tau_study = np.asarray(tau_study, float)
    tau_cond = np.asarray(tau_cond, float)
    v = design.row_variance(r) + design.speed_extra_variance(priors or Priors())
    dvar = v + d["use_cond"] * tau_cond[..., design.family_idx] ** 2
    w = m / dvar
    t2 = tau_study[..., design.cluster_family] ** 2
    if lam is not None:
        t2 = t2 * np.asarray(lam, float)
    S = w @ G
    Sy = (w * y) @ G
    SX = np.einsum("...n,nk,nc->...ck", w, X, G, optimize=True)
    g = t2 / (1.0 + t2 * S)
    yy = (w * y * y) @ H - (g * Sy * Sy) @ K
    # optimize=True: contract pairwise (about 3x faster for 4000 draws than one nested loop)
    Xy = np.einsum("...n,nk,nf->...fk", w * y, X, H, optimize=True) - np.einsum(
        "...c,...ck,cf->...fk", g * Sy, SX, K, optimize=True
    )
    XX = np.einsum("...n,nk,nl,nf->...fkl", w, X, X, H, optimize=True) - np.einsum(
        "...c,...ck,...cl,cf->...fkl", g, SX, SX, K, optimize=True
    )
    logdet = (m * np.log(dvar)) @ H + np.log1p(t2 * S) @ K
    return {
        "v": v,
        "dvar": dvar,
        "w": w,
        "t2": t2,
        "S": S,
        "g": g,
        "yy": yy,
        "Xy": Xy,
        "XX": XX,
        "logdet_sigma": logdet,
        "n_obs": m @ H,
    }


def marginal_loglik(
    design: MetaDesign, priors: Priors, tau_study, tau_cond, r, lam=None, *, y=None
):
    """Log marginal likelihood per family [nats], coefficients and random effects integrated
    out (numpy mirror of the PyMC model; vectorised over leading axes). ``y`` as in
    :func:`marginal_terms`: the direction rows' latent values (their density only; the
    Jacobian of their standard-error scaling is :class:`MarginalDensity`'s)."""
    t = marginal_terms(design, tau_study, tau_cond, r, lam, y=y, priors=priors)
    s2 = (priors or Priors()).coef_sd ** 2
    A = t["XX"] + np.diag(1.0 / s2)
    L = np.linalg.cholesky(A)
    z = np.linalg.solve(L, t["Xy"][..., None])[..., 0]
    quad = np.sum(z**2, axis=-1)
    logdet_A = 2.0 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * (
        t["yy"]
        - quad
        + t["logdet_sigma"]
        + logdet_A
        + np.sum(np.log(s2))
        + t["n_obs"] * np.log(2 * np.pi)
    )


_KERNEL = []


def _marginal_kernel():
    """The numba-compiled log density and gradient of :class:`MarginalDensity` (compiled on
    first use and cached on disk by numba; a few seconds once per installation)."""
    if _KERNEL:
        return _KERNEL[0]
    import numba

    @numba.njit(cache=True, nogil=True)
    def chol_lower(V):
        """Lower Cholesky factor of ``V``; all zeros when a pivot is not positive."""
        m = V.shape[0]
        L = np.zeros((m, m))
        for j in range(m):
            d = V[j, j]
            for k in range(j):
                d -= L[j, k] * L[j, k]
            if not d > 0.0:
                return np.zeros((m, m))
            L[j, j] = np.sqrt(d)
            for i in range(j + 1, m):
                t = V[i, j]
                for k in range(j):
                    t -= L[i, k] * L[j, k]
                L[i, j] = t / L[j, j]
        return L

    @numba.njit(cache=True, nogil=True)
    def tri_inverse(L):
        """Inverse of a lower-triangular matrix."""
        m = L.shape[0]
        Li = np.zeros((m, m))
        for j in range(m):
            Li[j, j] = 1.0 / L[j, j]
            for i in range(j + 1, m):
                t = 0.0
                for k in range(j, i):
                    t -= L[i, k] * Li[k, j]
                Li[i, j] = t / L[i, i]
        return Li

    # Few arguments (numba's per-call unboxing costs about 1 us per argument) and nogil, so
    # nutpie's two chain threads evaluate it in parallel.
    @numba.njit(cache=True, nogil=True)
    def kernel(z, rows, mats, half_n_log2pi, scal, want_grad):
        y, v_fixed, paired = rows[0], rows[1], rows[2]
        vf, vb, sqrt_fb, valid = rows[3], rows[4], rows[5], rows[6]
        B, XSX = mats[0], mats[1]
        use_cond, prior_code, s_scale, ln_mu = scal[0], int(scal[1]), scal[2], scal[3]
        ln_sd, c_sd, r_a, r_b, const = scal[4], scal[5], scal[6], scal[7], scal[8]
        F, n = y.shape
        grad = np.zeros(2 * F + 1)
        ll_f = np.zeros(F)
        # V^-1 y and diag(a a' - V^-1) per packed row: the gradient with respect to a row's y
        # and its variance (direction rows' latent values and their r-dependent variance)
        a_out = np.zeros((F, n))
        m_out = np.zeros((F, n))
        # z = (ln tau_total, logit share, logit r) -> x = (ln tau_study, ln tau_cond, logit r);
        # tau_study = tau_total sqrt(share), tau_cond = tau_total sqrt(1 - share)
        x = np.empty(2 * F + 1)
        share = np.empty(F)
        for f in range(F):
            share[f] = 1.0 / (1.0 + np.exp(-z[F + f]))
            x[f] = z[f] - 0.5 * np.log1p(np.exp(-z[F + f]))
            x[F + f] = z[f] - 0.5 * np.log1p(np.exp(z[F + f]))
        x[2 * F] = z[2 * F]
        # Outside ln SD in [-40, 12] (SD up to 1.6e5 ln-ratio units) or |logit r| > 40 the
        # density is negligible and the covariance numerically singular: reject the point.
        for k in range(2 * F + 1):
            if not np.isfinite(x[k]) or x[k] < -40.0 or x[k] > (40.0 if k == 2 * F else 12.0):
                return -np.inf, grad, ll_f, a_out, m_out
        r = 1.0 / (1.0 + np.exp(-x[2 * F]))
        lp = const + r_a * np.log(r) + r_b * np.log1p(-r)
        grad[2 * F] = r_a * (1.0 - r) - r_b * r
        gr = 0.0
        for f in range(F):
            ts, tc = np.exp(x[f]), np.exp(x[F + f])
            # priors (log-scale Jacobians included)
            if prior_code == 0:
                q = ts * ts / (s_scale * s_scale)
                lp += -0.5 * q + x[f]
                grad[f] = 1.0 - q
            elif prior_code == 1:
                q = ts * ts / (s_scale * s_scale)
                lp += -np.log1p(q) + x[f]
                grad[f] = 1.0 - 2.0 * q / (1.0 + q)
            else:
                z = (x[f] - ln_mu) / ln_sd
                lp += -0.5 * z * z
                grad[f] = -z / ln_sd
            qc = tc * tc / (c_sd * c_sd)
            lp += -0.5 * qc + x[F + f]
            grad[F + f] = 1.0 - qc
            # marginal covariance of the family's m observed rows (rows are packed first)
            m = 0
            for i in range(n):
                if valid[f, i] > 0:
                    m += 1
            if m == 0:
                continue
            V = np.empty((m, m))
            for i in range(m):
                for j in range(m):
                    V[i, j] = XSX[f, i, j] + ts * ts * B[f, i, j]
                v = paired[f, i] * (vf[f, i] + vb[f, i] - 2.0 * r * sqrt_fb[f, i])
                v += (1.0 - paired[f, i]) * v_fixed[f, i]
                V[i, i] += max(v, 1e-12) + use_cond * tc * tc
            # Cholesky factor and inverse by hand: the matrices are tiny, so LAPACK's call
            # overhead would dominate; a non-positive pivot rejects the point
            L = chol_lower(V)
            if L[0, 0] == 0.0:
                return -np.inf, np.zeros(2 * F + 1), ll_f, a_out, m_out
            Li = tri_inverse(L)
            Vinv = np.zeros((m, m))
            for i in range(m):
                for j in range(i + 1):
                    t = 0.0
                    for k in range(i, m):
                        t += Li[k, i] * Li[k, j]
                    Vinv[i, j] = t
                    Vinv[j, i] = t
            a = np.zeros(m)
            for i in range(m):
                t = 0.0
                for j in range(m):
                    t += Vinv[i, j] * y[f, j]
                a[i] = t
            ll = -half_n_log2pi[f]
            for i in range(m):
                ll -= 0.5 * y[f, i] * a[i] + np.log(L[i, i])
            ll_f[f] = ll
            lp += ll
            if want_grad:
                gs = 0.0
                gc = 0.0
                for i in range(m):
                    for j in range(m):
                        gs += (a[i] * a[j] - Vinv[i, j]) * B[f, i, j]
                    mii = a[i] * a[i] - Vinv[i, i]
                    a_out[f, i] = a[i]
                    m_out[f, i] = mii
                    gc += mii
                    gr += mii * (-2.0 * sqrt_fb[f, i] * paired[f, i])
                grad[f] += ts * ts * gs
                grad[F + f] += use_cond * tc * tc * gc
        grad[2 * F] += 0.5 * gr * r * (1.0 - r)
        # chain rule back to z (the Jacobian of x(z) is the constant 1/2: nothing to add to lp)
        gz = np.empty(2 * F + 1)
        for f in range(F):
            gz[f] = grad[f] + grad[F + f]
            gz[F + f] = 0.5 * (1.0 - share[f]) * grad[f] - 0.5 * share[f] * grad[F + f]
        gz[2 * F] = grad[2 * F]
        return lp, gz, ll_f, a_out, m_out

    _KERNEL.extend([kernel, chol_lower, tri_inverse])
    return kernel


_GHK = []


def _ghk_kernel():
    """The numba log density of :class:`MarginalDensity` with direction rows, their latent
    values in the sequential-conditional (GHK) parameterisation (see the class docstring).

    Not cached on disk: it calls scipy's ``log_ndtr`` and ``ndtri_exp`` through function
    pointers, which numba cannot cache (a few seconds of compilation once per process)."""
    if _GHK:
        return _GHK[0]
    import ctypes

    import numba
    from numba.extending import get_cython_function_address

    kernel = _marginal_kernel()
    chol_lower, tri_inverse = _KERNEL[1], _KERNEL[2]
    f8 = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)
    # log Phi(x) and Phi^-1(exp(q)): accurate far into both tails (Phi^-1 of a probability
    # below 1e-300 where the bounds of a significant result lie many SDs out)
    log_ndtr = f8(
        get_cython_function_address("scipy.special.cython_special", "__pyx_fuse_1log_ndtr")
    )
    ndtri_exp = f8(get_cython_function_address("scipy.special.cython_special", "ndtri_exp"))
    half_log_2pi = 0.5 * np.log(2.0 * np.pi)

    @numba.njit(nogil=True)
    def log_interval(a, b):
        """log(Phi(b) - Phi(a)) for a < b, from the tail where both are small."""
        if a > 0.0:
            la, lb = log_ndtr(-a), log_ndtr(-b)
            return la + np.log1p(-np.exp(lb - la))
        la, lb = log_ndtr(a), log_ndtr(b)
        return lb + np.log1p(-np.exp(la - lb))

    @numba.njit(nogil=True)
    def logaddexp(a, b):
        if a == -np.inf:
            return b
        if b == -np.inf:
            return a
        m = max(a, b)
        return m + np.log(np.exp(a - m) + np.exp(b - m))

    @numba.njit(nogil=True)
    def family(V, nobs, y, dy_dr, lo, hi, dlo_dr, dhi_dr, u, dv_dr, B, ts2, tc2u):
        """One family: log p(observed rows) + log P(latent rows in their regions | u) and
        its gradient with respect to ln tau_study, ln tau_cond, r and u; latent y values."""
        N = V.shape[0]
        K = N - nobs
        L = chol_lower(V)
        if N and L[0, 0] == 0.0:
            return -np.inf, 0.0, 0.0, 0.0, np.zeros(K), np.zeros(K)
        e = np.zeros(N)
        ll = -nobs * half_log_2pi
        for i in range(nobs):
            s = y[i]
            for k in range(i):
                s -= L[i, k] * e[k]
            e[i] = s / L[i, i]
            ll += -0.5 * e[i] * e[i] - np.log(L[i, i])
        al = np.zeros(K)
        be = np.zeros(K)
        lP = np.zeros(K)
        pp = np.zeros(K)
        ys = np.zeros(K)
        for j in range(K):
            i = nobs + j
            c = 0.0
            for k in range(i):
                c += L[i, k] * e[k]
            a = (lo[j] - c) / L[i, i] if np.isfinite(lo[j]) else -np.inf
            b = (hi[j] - c) / L[i, i] if np.isfinite(hi[j]) else np.inf
            if not a < b or a > 37.0 or b < -37.0:
                return -np.inf, 0.0, 0.0, 0.0, np.zeros(K), np.zeros(K)
            lp_ = log_interval(a, b)
            uj = u[j]
            if not np.isfinite(uj) or abs(uj) > 700.0:
                return -np.inf, 0.0, 0.0, 0.0, np.zeros(K), np.zeros(K)
            # log p and log(1 - p) of p = logistic(u), stable for any u
            lp1 = -np.log1p(np.exp(-uj)) if uj > 0.0 else uj - np.log1p(np.exp(uj))
            lq1 = -uj + lp1
            if a > 0.0:  # upper tail: Phi^-1 of the complement
                ei = -ndtri_exp(logaddexp(log_ndtr(-b), lq1 + lp_))
            else:
                ei = ndtri_exp(logaddexp(log_ndtr(a), lp1 + lp_))
            ei = min(max(ei, a), b)
            e[i] = ei
            ys[j] = c + L[i, i] * ei
            al[j], be[j], lP[j], pp[j] = a, b, lp_, np.exp(lp1)
            ll += lp_ + lp1 + lq1
        # reverse pass: adjoints of e, L, y and of the bounds
        eb = np.zeros(N)
        Lb = np.zeros((N, N))
        gu = np.zeros(K)
        g_r = 0.0
        for j in range(K - 1, -1, -1):
            i = nobs + j
            a, b, p, ei = al[j], be[j], pp[j], e[i]
            fa = np.exp(-0.5 * a * a - half_log_2pi - lP[j]) if np.isfinite(a) else 0.0
            fb = np.exp(-0.5 * b * b - half_log_2pi - lP[j]) if np.isfinite(b) else 0.0
            de_da = (1.0 - p) * np.exp(-0.5 * (a * a - ei * ei)) if np.isfinite(a) else 0.0
            de_db = p * np.exp(-0.5 * (b * b - ei * ei)) if np.isfinite(b) else 0.0
            de_dp = np.exp(lP[j] + 0.5 * ei * ei + half_log_2pi)
            abar = -fa + eb[i] * de_da
            bbar = fb + eb[i] * de_db
            gu[j] = eb[i] * de_dp * p * (1.0 - p) + (1.0 - 2.0 * p)
            lii = L[i, i]
            cbar = 0.0
            if np.isfinite(a):
                g_r += abar / lii * dlo_dr[j]
                cbar -= abar / lii
                Lb[i, i] -= abar * a / lii
            if np.isfinite(b):
                g_r += bbar / lii * dhi_dr[j]
                cbar -= bbar / lii
                Lb[i, i] -= bbar * b / lii
            for k in range(i):
                Lb[i, k] += cbar * e[k]
                eb[k] += cbar * L[i, k]
        for i in range(nobs - 1, -1, -1):
            eb[i] -= e[i]
            sb = eb[i] / L[i, i]
            Lb[i, i] -= eb[i] * e[i] / L[i, i] + 1.0 / L[i, i]
            g_r += sb * dy_dr[i]
            for k in range(i):
                Lb[i, k] -= sb * e[k]
                eb[k] -= sb * L[i, k]
        # Cholesky adjoint (Murray 2016, eq. 10): S = L^-T Phi(L' Lbar) L^-1, symmetrised;
        # Phi keeps the lower triangle and halves the diagonal
        Pm = np.zeros((N, N))
        for i in range(N):
            for j in range(i + 1):
                t = 0.0
                for k in range(i, N):
                    t += L[k, i] * Lb[k, j]
                Pm[i, j] = 0.5 * t if i == j else t
        Li = tri_inverse(L)
        T = np.zeros((N, N))  # Phi(.) L^-1
        for i in range(N):
            for j in range(i + 1):
                t = 0.0
                for k in range(j, i + 1):
                    t += Pm[i, k] * Li[k, j]
                T[i, j] = t
        S = np.zeros((N, N))  # L^-T T
        for i in range(N):
            for j in range(N):
                t = 0.0
                for k in range(max(i, j), N):
                    t += Li[k, i] * T[k, j]
                S[i, j] = t
        g_ts = 0.0
        g_tc = 0.0
        for i in range(N):
            for j in range(N):
                gij = 0.5 * (S[i, j] + S[j, i])
                g_ts += gij * B[i, j]
            gii = S[i, i]
            g_tc += gii
            g_r += gii * dv_dr[i]
        return ll, 2.0 * ts2 * g_ts, 2.0 * tc2u * g_tc, g_r, gu, ys

    @numba.njit(nogil=True)
    def density(
        x, nb, rows, mats, half_n_log2pi, scal, lat_i, lat_d, pq, order, nobs_f, nall_f, latpos
    ):
        F = pq.shape[1]
        m_lat = lat_i.shape[1]
        use_cond = scal[0]
        grad = np.zeros(x.size)
        ys_all = np.zeros(m_lat)
        r = 1.0 / (1.0 + np.exp(-x[nb - 1]))
        rows2 = rows.copy()
        for f in range(F):
            if nall_f[f] > 0:
                for k in range(rows.shape[2]):
                    rows2[6, f, k] = 0.0
        lp, gz, ll, _a, _m = kernel(x[:nb], rows2, mats, half_n_log2pi, scal, True)
        if not np.isfinite(lp):
            return -np.inf, grad, ll, ys_all
        for i in range(nb):
            grad[i] = gz[i]
        for f in range(F):
            N, nob = nall_f[f], nobs_f[f]
            if N == 0:
                continue
            K = N - nob
            share = 1.0 / (1.0 + np.exp(-x[F + f]))
            ts2 = np.exp(2.0 * x[f] - np.log1p(np.exp(-x[F + f])))
            tc2 = np.exp(2.0 * x[f] - np.log1p(np.exp(x[F + f])))
            V = np.empty((N, N))
            Bm = np.empty((N, N))
            y = np.zeros(N)
            dy_dr = np.zeros(N)
            dv_dr = np.zeros(N)
            lo = np.zeros(K)
            hi = np.zeros(K)
            dlo = np.zeros(K)
            dhi = np.zeros(K)
            u = np.zeros(K)
            for a in range(N):
                ka = order[f, a]
                for b in range(N):
                    kb = order[f, b]
                    Bm[a, b] = mats[0, f, ka, kb]
                    V[a, b] = mats[1, f, ka, kb] + ts2 * Bm[a, b]
                j = latpos[f, a]
                if j < 0:
                    pr = rows[2, f, ka]
                    v = pr * (rows[3, f, ka] + rows[4, f, ka] - 2.0 * r * rows[5, f, ka])
                    v += (1.0 - pr) * rows[1, f, ka]
                    dv = -2.0 * pr * rows[5, f, ka]
                    y[a] = rows[0, f, ka]
                else:
                    inv_n = lat_d[2, j]
                    s2 = max(pq[0, f] - r * pq[1, f], 1e-12) * inv_n
                    ds2 = -pq[1, f] * inv_n
                    se = np.sqrt(s2)
                    dse = ds2 / (2.0 * se)
                    v, dv = s2, ds2
                    if lat_i[2, j] == 0:  # an exact p: a known t, y = t se
                        y[a] = lat_d[0, j] * se
                        dy_dr[a] = lat_d[0, j] * dse
                        ys_all[j] = y[a]
                        lp += np.log(se)  # the density of t, not of y
                        grad[nb - 1] += ds2 / (2.0 * s2) * r * (1.0 - r)
                    else:
                        jj = a - nob
                        tl, th = lat_d[0, j], lat_d[1, j]
                        lo[jj] = tl * se if np.isfinite(tl) else -np.inf
                        dlo[jj] = tl * dse if np.isfinite(tl) else 0.0
                        hi[jj] = th * se if np.isfinite(th) else np.inf
                        dhi[jj] = th * dse if np.isfinite(th) else 0.0
                        u[jj] = x[nb + lat_i[3, j]]
                V[a, a] += max(v, 1e-12) + use_cond * tc2
                dv_dr[a] = dv
            llf, gts, gtc, gr, gu, ys = family(
                V, nob, y, dy_dr, lo, hi, dlo, dhi, u, dv_dr, Bm, ts2, use_cond * tc2
            )
            if not np.isfinite(llf):
                return -np.inf, np.zeros(x.size), ll, ys_all
            lp += llf
            ll[f] = llf
            grad[f] += gts + gtc
            grad[F + f] += 0.5 * (1.0 - share) * gts - 0.5 * share * gtc
            grad[nb - 1] += gr * r * (1.0 - r)
            for a in range(nob, N):
                j = latpos[f, a]
                grad[nb + lat_i[3, j]] += gu[a - nob]
                ys_all[j] = ys[a - nob]
        return lp, grad, ll, ys_all

    _GHK.append(density)
    return density


class MarginalDensity:
    """Log posterior density of the marginal model and its gradient, in numpy.

    The unconstrained parameter vector is ``z = (ln tau_total (F), logit share (F), logit r,
    u (K))`` with ``tau_study = tau_total sqrt(share)`` and ``tau_cond = tau_total sqrt(1 -
    share)``: where a family has one row per study only the total ``tau_study² + tau_cond²`` is
    identified, a curved ridge in (ln tau_study, ln tau_cond) that caused rare divergences;
    in ``z`` it is straight along ``share``. The map from ``z`` to (ln tau_study, ln tau_cond)
    has the constant Jacobian 1/2, so the priors stay as stated on ``tau_study``,
    ``tau_cond``. For each family the marginal covariance of its observed rows is formed
    densely, ``V = diag(d) + tau_study² B + X diag(s²) X'`` (``B`` joins rows of one study
    cluster), and

    ``log p(y_f) = -1/2 y'V^-1 y - 1/2 log|V| - n_f/2 log 2 pi``,
    ``d log p / d theta = 1/2 tr[(a a' - V^-1) dV/d theta]``, ``a = V^-1 y``.

    Direction-only rows (:mod:`retrosim.evidence.directions`) have a latent ``y_i`` known to lie
    in ``(t_lo se_i, t_hi se_i)`` with ``se_i² = sigma_f²(r) / n_i``; a row with an exact p has a
    known ``y_i = t_i se_i`` and counts as observed (with the Jacobian ``se_i`` of the density of
    ``t``). A family with censored rows is evaluated in the sequential-conditional (GHK)
    parameterisation of Geweke, Hajivassiliou and Keane [1]_ (the "truncated multivariate
    normal" transform used for multivariate probit models in Stan): with ``V = L L'`` ordered
    observed rows first, ``e = L^-1 y`` for the observed rows and, for each censored row ``i``
    in turn, ``c_i = sum_k<i L_ik e_k``, standardised bounds ``a_i = (lo_i - c_i) / L_ii``,
    ``b_i = (hi_i - c_i) / L_ii``, and ``e_i = Phi^-1(Phi(a_i) + p_i (Phi(b_i) - Phi(a_i)))``
    with ``p_i = logistic(u_i)``. The density in ``u`` is

    ``log N(y_obs; 0, V_obs) + sum_i [log(Phi(b_i) - Phi(a_i)) + log p_i + log(1 - p_i)]``,

    whose integral over ``u`` is exactly ``p(y_obs) P(censored rows in their regions | y_obs)``:
    the likelihood of the reported classes with the coefficients (``b_grade`` among them), the
    study and the condition effects integrated out. Each ``u_i`` is a standard logistic
    variable apart from the weight ``Phi(b_i) - Phi(a_i)``, so the latent coordinates no longer
    scale with the heterogeneity or with the coefficients' prior (the earlier transforms,
    ``y = t se`` with ``t`` logistic or softplus in ``u``, made a ridge with ``b_grade`` and the
    study effect when one study reported several uphill grades by direction only, and NUTS
    diverged). The latent ``y_i = c_i + L_ii e_i`` are returned as ``direction_yi``. The
    gradient is the reverse pass through the recursion and the Cholesky factor (Murray [2]_).

    Each family's observed rows are packed first in arrays padded to the largest family. This
    is the same likelihood as the PyMC graph of :func:`build_model` and as
    :func:`marginal_loglik` (tests compare the three), written as one small numba kernel so
    that nutpie samples it without compiling the PyMC graph (about a minute with numba).

    References
    ----------
    .. [1] K. E. Train, *Discrete Choice Methods with Simulation*, 2nd ed., Cambridge University
       Press, 2009, chapter 5 (probit; the GHK simulator of Geweke, Hajivassiliou and Keane).
    .. [2] I. Murray, "Differentiation of the Cholesky decomposition", arXiv:1602.07527, 2016.
    """

    def __init__(self, design: MetaDesign, priors: Priors):
        d = design.data()
        self.priors = priors
        self.F = F = len(design.families)
        valid = d["mask"] > 0
        rows = [np.flatnonzero((design.family_idx == j) & valid) for j in range(F)]
        nmax = max(1, max(len(r) for r in rows))
        ok = np.zeros((F, nmax))
        idx = np.zeros((F, nmax), dtype=int)
        for j, r in enumerate(rows):
            ok[j, : len(r)] = 1.0
            idx[j, : len(r)] = r
        vf, vb = d["v_forward"][idx] * ok, d["v_backward"][idx] * ok
        clu = design.cluster_idx[idx]
        X = d["X_row"][idx] * ok[..., None]
        self.use_cond = float(d["use_cond"])
        # the kernel's arguments, packed (see _marginal_kernel): per-row arrays, matrices, scalars
        self._rows = np.ascontiguousarray(
            np.stack(
                [
                    d["y"][idx] * ok,
                    np.where(ok > 0, d["v_fixed"][idx], 1.0),
                    d["paired"][idx] * ok,
                    vf,
                    vb,
                    np.sqrt(vf * vb),
                    ok,
                ]
            )
        )
        same_cluster = (clu[:, :, None] == clu[:, None, :]) * ok[:, :, None] * ok[:, None, :]
        xsx = np.einsum("fik,k,fjk->fij", X, priors.coef_sd**2, X)
        # an unreported speed's variance is part of the row's effect: constant in the parameters
        extra = design.speed_extra_variance(priors)[idx] * ok
        xsx = xsx + extra[:, :, None] * np.eye(nmax)[None]
        self._mats = np.ascontiguousarray(np.stack([same_cluster, xsx]).astype(float))
        self._half_n_log2pi = 0.5 * ok.sum(axis=1) * np.log(2 * np.pi)
        self._scal = np.array(
            [self.use_cond, *self._prior_args(), self._prior_constants()], dtype=float
        )
        # direction rows: packed positions, bounds, 1/n and how each t is parameterised
        lat = np.flatnonzero(design.latent & valid)
        pos = {int(i): (f, k) for f in range(F) for k, i in enumerate(idx[f]) if ok[f, k] > 0}
        self._lat_rows = lat
        self._lat_f = np.array([pos[int(i)][0] for i in lat], dtype=int)
        self._lat_k = np.array([pos[int(i)][1] for i in lat], dtype=int)
        lo, hi = design.t_lo[lat], design.t_hi[lat]
        self._lat_lo, self._lat_hi = lo, hi
        self._lat_inv_n = design.inv_n[lat]
        kind = np.where(
            lo == hi,
            0,
            np.where(np.isfinite(lo) & np.isfinite(hi), 1, np.where(np.isfinite(lo), 2, 3)),
        )
        self._lat_kind = kind
        self._free = np.flatnonzero(kind != 0)
        self.K = int(self._free.size)
        self._P, self._Q = design.sigma2_P, design.sigma2_Q
        self._row_ids = [str(r) for r in design.frame["row_id"].to_numpy()[lat]]
        u_idx = np.full(lat.size, -1)
        u_idx[self._free] = np.arange(self.K)
        self._lat_i = np.ascontiguousarray(
            np.stack([self._lat_f, self._lat_k, kind, u_idx]).astype(np.int64)
        )
        # each family with direction rows in the sequential order of the GHK parameterisation:
        # numeric rows and exact-p rows (observed) first, then the censored rows
        self._order = np.zeros((F, nmax), dtype=np.int64)
        self._latpos = np.full((F, nmax), -1, dtype=np.int64)
        self._nobs = np.zeros(F, dtype=np.int64)
        self._nall = np.zeros(F, dtype=np.int64)
        lat_at = {
            (int(f), int(k)): j
            for j, (f, k) in enumerate(zip(self._lat_f, self._lat_k, strict=True))
        }
        for f in range(F):
            ks = [k for k in range(nmax) if ok[f, k] > 0]
            obs = [k for k in ks if lat_at.get((f, k)) is None or kind[lat_at[(f, k)]] == 0]
            cens = [k for k in ks if k not in obs]
            has_dir = any((f, k) in lat_at for k in ks)
            self._nall[f] = len(ks) if has_dir else 0
            self._nobs[f] = len(obs) if has_dir else 0
            for a, k in enumerate(obs + cens):
                self._order[f, a] = k
                self._latpos[f, a] = lat_at.get((f, k), -1)
        self._lat_d = np.ascontiguousarray(np.stack([lo, hi, self._lat_inv_n]).astype(float))
        self._pq = np.ascontiguousarray(np.stack([self._P, self._Q]).astype(float))

    @property
    def ndim(self) -> int:
        return 2 * self.F + 1 + self.K

    @property
    def n_direction_rows(self) -> int:
        """Direction rows in the likelihood (free and point-valued)."""
        return int(self._lat_rows.size)

    def split(self, z):
        """Constrained values ``(tau_study, tau_cond, r)`` of an unconstrained vector."""
        z = np.asarray(z, float)
        F = self.F
        total, w = np.exp(z[..., :F]), z[..., F : 2 * F]
        share = 1.0 / (1.0 + np.exp(-w))
        return (
            total * np.sqrt(share),
            total * np.sqrt(1.0 - share),
            1.0 / (1.0 + np.exp(-z[..., 2 * F])),
        )

    @staticmethod
    def unconstrained(tau_study, tau_cond, r) -> np.ndarray:
        """The unconstrained vector of ``(tau_study, tau_cond, r)`` (inverse of :meth:`split`;
        a design with direction rows appends their ``u``)."""
        ts, tc = np.asarray(tau_study, float), np.asarray(tau_cond, float)
        return np.concatenate(
            [0.5 * np.log(ts**2 + tc**2), 2.0 * (np.log(ts) - np.log(tc)), [np.log(r / (1.0 - r))]]
        )

    def _prior_args(self):
        pr = self.priors
        return (
            TAU_PRIORS.index(pr.tau_prior),
            float(pr.tau_study_sd),
            float(pr.tau2_lognormal_mu) / 2.0,
            float(pr.tau2_lognormal_sigma) / 2.0,
            float(pr.tau_cond_sd),
            float(pr.r_a),
            float(pr.r_b),
        )

    def _prior_constants(self):
        """Normalising constant of the priors (so the density is a proper log posterior up to
        the evidence, which tests compare with scipy)."""
        from math import lgamma, log, pi, sqrt

        pr, F = self.priors, self.F
        if pr.tau_prior == "half_normal":
            c_s = F * log(2.0 / (pr.tau_study_sd * sqrt(2 * pi)))
        elif pr.tau_prior == "half_cauchy":
            c_s = F * log(2.0 / (pi * pr.tau_study_sd))
        else:
            c_s = -F * log(pr.tau2_lognormal_sigma / 2.0 * sqrt(2 * pi))
        c_c = F * log(2.0 / (pr.tau_cond_sd * sqrt(2 * pi)))
        c_r = -(lgamma(pr.r_a) + lgamma(pr.r_b) - lgamma(pr.r_a + pr.r_b))
        return c_s + c_c + c_r

    def _kernel(self, x, rows=None, want_grad=True):
        return _marginal_kernel()(
            np.ascontiguousarray(x, dtype=np.float64),
            self._rows if rows is None else rows,
            self._mats,
            self._half_n_log2pi,
            self._scal,
            want_grad,
        )

    def loglik(self, ts, tc, r, u=None):
        """Log marginal likelihood per family [nats] at ``tau_study``, ``tau_cond`` (F,), ``r``
        (and the direction rows' ``u``)."""
        x = self.unconstrained(ts, tc, r)
        if self.K:
            x = np.concatenate([x, np.zeros(self.K) if u is None else np.asarray(u, float)])
        return self._evaluate(x, want_grad=False)[2]

    def _evaluate(self, x, want_grad=True):
        """(lp, gradient, per-family log likelihood); direction rows handled here."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if not self._lat_rows.size:
            lp, gz, ll, _a, _m = self._kernel(x, want_grad=want_grad)
            return lp, gz, ll
        lp, grad, ll, _y = self._ghk(x)
        return float(lp), grad, ll

    def _ghk(self, x):
        return _ghk_kernel()(
            np.ascontiguousarray(x, dtype=np.float64), 2 * self.F + 1, self._rows, self._mats,
            self._half_n_log2pi, self._scal, self._lat_i, self._lat_d, self._pq, self._order,
            self._nobs, self._nall, self._latpos,
        )  # fmt: skip

    def _evaluate_numpy(self, x):
        """Log density of :meth:`_evaluate` at ``x`` written out in numpy and scipy, without the
        gradient: the dense covariance of each family with direction rows, its Cholesky factor
        and the sequential conditional regions row by row (a cross-check of the kernel)."""
        from scipy import linalg, special

        x = np.asarray(x, float)
        nb = 2 * self.F + 1
        ts, tc, r = self.split(x[:nb])
        rows = self._rows.copy()
        has_lat = self._nall > 0
        rows[6][has_lat] = 0.0
        lp = float(self._kernel(x[:nb], rows=rows, want_grad=False)[0])
        ys = np.zeros(self._lat_rows.size)
        for f in np.flatnonzero(has_lat):
            N, nob = int(self._nall[f]), int(self._nobs[f])
            ks = self._order[f, :N]
            js = self._latpos[f, :N]
            R = self._rows[:, f, ks]
            v = R[2] * (R[3] + R[4] - 2 * r * R[5]) + (1 - R[2]) * R[1]
            y = R[0].copy()
            lo, hi = np.full(N, np.nan), np.full(N, np.nan)
            for a, j in enumerate(js):
                if j < 0:
                    continue
                s2 = max(self._P[f] - r * self._Q[f], 1e-12) * self._lat_inv_n[j]
                se = np.sqrt(s2)
                v[a] = s2
                lo[a], hi[a] = self._lat_lo[j] * se, self._lat_hi[j] * se
                if self._lat_kind[j] == 0:
                    y[a] = ys[j] = lo[a]
                    lp += np.log(se)
            V = self._mats[1, f][np.ix_(ks, ks)] + ts[f] ** 2 * self._mats[0, f][np.ix_(ks, ks)]
            V += np.diag(v + self.use_cond * tc[f] ** 2)
            L = linalg.cholesky(V, lower=True)
            e = np.zeros(N)
            e[:nob] = linalg.solve_triangular(L[:nob, :nob], y[:nob], lower=True)
            lp += float(np.sum(stats.norm.logpdf(e[:nob])) - np.sum(np.log(np.diag(L)[:nob])))
            for a in range(nob, N):
                j = js[a]
                c = L[a, :a] @ e[:a]
                lo_a, hi_a = (lo[a] - c) / L[a, a], (hi[a] - c) / L[a, a]
                p = special.expit(x[nb + self._lat_i[3, j]])
                mass = special.ndtr(hi_a) - special.ndtr(lo_a)
                e[a] = special.ndtri(special.ndtr(lo_a) + p * mass)
                ys[j] = c + L[a, a] * e[a]
                lp += np.log(mass) + np.log(p) + np.log1p(-p)
        return lp, ys

    def logp_grad(self, x):
        """Log posterior density (priors normalised; Jacobians of the log and logit transforms
        included) and its gradient at the unconstrained ``x``."""
        lp, grad, _ = self._evaluate(x)
        return float(lp), grad

    def nutpie_model(self, design: MetaDesign):
        """This density as a nutpie model (``nutpie.compiled_pyfunc.from_pyfunc``)."""
        from nutpie.compiled_pyfunc import from_pyfunc

        F, K, n_lat = self.F, self.K, self.n_direction_rows

        def make_logp():
            def logp(x, **_):
                val, grad = self.logp_grad(x)
                if not np.isfinite(val):
                    return -np.inf, np.zeros_like(grad)
                return val, grad

            return logp

        def make_expand(seed1, seed2, chain):
            def expand(x, **_):
                ts, tc, r = self.split(x)
                out = {"tau_study": ts, "tau_cond": tc, "r": np.asarray(r)}
                if n_lat:
                    out["direction_yi"] = self._ghk(x)[3]
                return out

            return expand

        def initial_point(seed):
            rng = np.random.default_rng(seed)
            x0 = np.concatenate(
                [np.full(F, np.log(0.1)), np.zeros(F), [np.log(0.7 / 0.3)], np.zeros(K)]
            )
            return x0 + rng.uniform(-0.5, 0.5, x0.size)

        names = ["tau_study", "tau_cond", "r"]
        shapes = [(F,), (F,), ()]
        dims = {"tau_study": ("family",), "tau_cond": ("family",)}
        coords = {"family": list(design.families)}
        if n_lat:
            names.append("direction_yi")
            shapes.append((n_lat,))
            dims["direction_yi"] = ("direction_row",)
            coords["direction_row"] = self._row_ids
        return from_pyfunc(
            ndim=self.ndim,
            make_logp_fn=make_logp,
            make_expand_fn=make_expand,
            make_initial_point_fn=initial_point,
            expanded_dtypes=[np.dtype("float64")] * len(names),
            expanded_shapes=shapes,
            expanded_names=names,
            coords=coords,
            dims=dims,
        )


def conditional_draws(design: MetaDesign, priors: Priors, params: dict, rng) -> dict:
    """Exact draws of the integrated-out quantities given draws of the SDs and ``r``.

    For each draw: ``beta_f | y ~ N(A^-1 b, A^-1)`` (per family), then each cluster's study
    effect ``u_c | beta, y ~ N(g_c sum w e, g_c)`` with residuals ``e = y - X beta``, then each
    row's condition effect ``| beta, u, y ~ N(k (e - u), k v)``, ``k = tau_cond² / (v +
    tau_cond²)`` (masked rows and clusters: their prior). Returns ``alpha``, ``b_speed``,
    ``b_mode`` (N, F), ``b_match`` (N, F, 2), ``study_effect`` (N, C), ``condition_effect``
    (N, n).
    """
    rng = np.random.default_rng(rng)
    lam = params.get("lam")
    y = params.get("y")
    t = marginal_terms(
        design, params["tau_study"], params["tau_cond"], params["r"], lam, y=y, priors=priors
    )
    s2 = priors.coef_sd**2
    A = t["XX"] + np.diag(1.0 / s2)
    L = np.linalg.cholesky(A)
    mean = np.linalg.solve(A, t["Xy"][..., None])[..., 0]
    eps = rng.standard_normal(mean.shape)
    beta = mean + np.linalg.solve(np.swapaxes(L, -1, -2), eps[..., None])[..., 0]
    d = design.data()
    X = d["X_row"]
    e = (d["y"] if y is None else y) - np.sum(beta[..., design.family_idx, :] * X, axis=-1)
    G = d["G"]
    g = t["g"]
    u = g * ((t["w"] * e) @ G) + np.sqrt(g) * rng.standard_normal(g.shape)
    tc2 = d["use_cond"] * np.asarray(params["tau_cond"])[..., design.family_idx] ** 2
    k = tc2 / (t["v"] + tc2)
    m = d["mask"]
    cmean = m * k * (e - u[..., design.cluster_idx])
    cvar = m * k * t["v"] + (1.0 - m) * tc2
    cond = cmean + np.sqrt(cvar) * rng.standard_normal(cmean.shape)
    return {
        "alpha": beta[..., 0],
        "b_speed": beta[..., 1],
        "b_mode": beta[..., 2],
        "b_match": beta[..., 3:5],
        "b_grade": beta[..., 5],
        "b_underwater": beta[..., 6],
        "study_effect": u,
        "condition_effect": cond,
    }


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass
class MetaResult(PosteriorResults):
    """A Bayesian meta-analysis fit.

    Speaks the results API of :class:`retrosim.bayes.results.PosteriorResults`:
    ``summary()`` (a printable :class:`~retrosim.bayes.results.Summary` of ``var_names``:
    mean, sd, 2.5/50/97.5 % quantiles, R-hat, bulk and tail ESS from :func:`arviz.summary`),
    ``to_dataframe()``, ``to_netcdf(path)``, ``plot(ax=None)`` and ``diagnostics``.

    Attributes
    ----------
    idata : xarray.DataTree
        ``posterior``, ``sample_stats`` and ``observed_data`` groups.
    diagnostics : retrosim.bayes.sampling.Diagnostics
        The convergence gate's outcome, with per-parameter R-hat and ESS as data.
    design : MetaDesign
    priors : Priors
    robust : bool
    marginal : bool
    seed : int
        Seed of the fit; also the default seed of :meth:`predictive_draws`.
    """

    _summary_title = "Bayesian random-effects meta-regression of ln(backward/forward)"

    idata: object
    diagnostics: object
    design: MetaDesign
    priors: Priors
    robust: bool = False
    marginal: bool = True
    seed: int = field(kw_only=True)

    @property
    def var_names(self) -> tuple:
        """Parameters of the summary, the plot and the gate (:data:`GATE_VARS`, robust: ``nu``)."""
        return tuple(GATE_VARS) + (("nu",) if self.robust else ())

    @property
    def converged(self) -> bool:
        return bool(self.diagnostics.passed)

    def draws(self, name) -> np.ndarray:
        """Posterior draws of ``name`` stacked over chains: shape (n_draws, ...)."""
        da = self.idata["posterior"][name]
        arr = np.asarray(da.values)
        return arr.reshape((-1, *arr.shape[2:]))

    def family_index(self, family) -> int:
        if family not in self.design.families:
            raise InputError(
                f"unknown family {family!r}; fitted families: {', '.join(self.design.families)}",
                argument="family",
            )
        return self.design.families.index(family)

    def effect_draws(
        self,
        family,
        *,
        mode="run",
        matching="same",
        speed_m_s=None,
        grade_pct=0.0,
        underwater=False,
    ) -> np.ndarray:
        """Draws of the mean ln(backward/forward) for one family, mode, speed, matching, grade
        and surface.

        The speed defaults to the family's mean speed, the grade to level (0 %), the surface to
        land (``underwater=True`` adds ``b_underwater``); modes, matchings, grades and surfaces
        without data in the family contribute nothing (their coefficients are switched off,
        see the module docstring).
        """
        check_choice("mode", mode, MODES)
        check_choice("matching", matching, SPEED_MATCHINGS)
        j = self.family_index(family)
        d = self.design
        eff = self.draws("alpha")[:, j].copy()
        if speed_m_s is not None and d.has_speed[j]:
            eff += self.draws("b_speed")[:, j] * (float(speed_m_s) - d.speed_centre[j])
        if d.has_mode[j]:
            eff += self.draws("b_mode")[:, j] * MODE_CODE[mode]
        if matching != "same":
            k = SPEED_MATCHINGS.index(matching) - 1
            if d.has_match[j, k]:
                eff += self.draws("b_match")[:, j, k]
        if grade_pct and d.has_grade[j]:
            eff += self.draws("b_grade")[:, j] * float(grade_pct)
        if underwater and d.has_underwater[j]:
            eff += self.draws("b_underwater")[:, j]
        return eff

    def predictive_draws(
        self, family, *, mode="run", matching="same", speed_m_s=None, seed=None, grade_pct=0.0
    ) -> np.ndarray:
        """Draws of ln(backward/forward) in a **new study** (one new condition of it).

        The mean effect of :meth:`effect_draws` plus a new study effect ``N(0, tau_study²)``
        and a new condition effect ``N(0, tau_cond²)`` per posterior draw: the Bayesian
        prediction interval. ``seed`` defaults to the fit's seed (reproducible).
        """
        j = self.family_index(family)
        mean = self.effect_draws(
            family, mode=mode, matching=matching, speed_m_s=speed_m_s, grade_pct=grade_pct
        )
        rng = np.random.default_rng([int(self.seed if seed is None else seed), 11, j])
        sd = np.sqrt(
            self.draws("tau_study")[:, j] ** 2
            + self.design.use_cond * self.draws("tau_cond")[:, j] ** 2
        )
        return mean + sd * rng.standard_normal(mean.shape)

    def _summary_header(self) -> list[str]:
        d = self.design
        return [
            f"rows (conditions): {d.n_rows:<6} clusters (studies x family): {len(d.clusters):<5}"
            f" families: {len(d.families)}",
            f"likelihood of study effects: {'Student-t' if self.robust else 'normal'}   "
            f"r prior: Beta({self.priors.r_a:g}, {self.priors.r_b:g})   "
            f"tau_study prior: {self.priors.describe_tau()}",
        ]

    def __str__(self) -> str:
        return self.summary().as_text()


def fit(
    effects,
    *,
    priors: Priors | None = None,
    robust: bool = False,
    nested: bool = True,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed,
    sampler: str = "nutpie",
    gate: str = "raise",
    progress: bool = False,
    target_accept: float = 0.95,
    marginal: bool = True,
    directions: pd.DataFrame | None = None,
    adaptation: str = "diag",
) -> MetaResult:
    """Fit the Bayesian meta-regression to an effect-size table (or a :class:`MetaDesign`).

    Parameters
    ----------
    effects : pandas.DataFrame or MetaDesign
        Output of :func:`retrosim.evidence.tables.effect_sizes` (or the same shape).
    priors : Priors, optional
    robust : bool
        Student-t study effects.
    nested : bool
        Condition-within-study random effects.
    draws, tune, chains : int
    seed : int
        Required (every fit in retrosim takes an explicit seed; none has a default).
    sampler : {'nutpie', 'pymc'}
    gate : {'raise', 'warn', 'off'}
        Convergence gate behaviour: ``'raise'`` (the default of every library fit) raises
        :class:`retrosim.errors.ConvergenceError`; ``'warn'`` logs and returns the fit (the
        command line passes it for ``--allow-unconverged``); ``'off'`` for refits whose
        convergence is reported instead (sensitivity, LOSO, SBC). The diagnostics are always
        kept on the result.
    target_accept : float
        NUTS target acceptance (0.95). Measured on the claims evidence with the half-Cauchy
        heterogeneity prior (the heaviest tail of the sensitivity variants): 2 of 20 seeds
        gave one divergent transition at 0.9, none of 20 at 0.95. The sampled-effects
        reference model (``marginal=False``) needed 0.99 and still diverged on some machines.
    marginal : bool
        Integrate coefficients and random effects out (default); ``False`` fits the earlier
        sampled-study-effects model, kept as a reference for validation.
    directions : pandas.DataFrame, optional
        Direction-only results as interval-censored rows
        (:func:`retrosim.evidence.directions.direction_rows`; see :meth:`MetaDesign.from_frame`).
        Needs the marginal model and nutpie.
    adaptation : {'diag', 'low_rank'}
        nutpie's mass-matrix adaptation. ``'low_rank'`` adapts the correlations of the direction
        rows' latent values with each other (they share the family's integrated-out mean):
        on the SBC design with direction rows it doubled the bulk ESS per second.
    """
    if seed is None:
        raise InputError("a seed is required for reproducible sampling", argument="seed")
    design = (
        effects
        if isinstance(effects, MetaDesign)
        else MetaDesign.from_frame(effects, nested=nested, directions=directions)
    )
    priors = priors or Priors()
    idata, diag = _sample(
        design,
        priors,
        robust=robust,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
        gate=gate,
        progress=progress,
        marginal=marginal,
        target_accept=target_accept,
        adaptation=adaptation,
    )
    _attach_observed(idata, design)
    return MetaResult(idata, diag, design, priors, robust, marginal=marginal, seed=int(seed))


def _attach_observed(idata, design):
    import xarray as xr

    rows = [str(r) for r in design.frame["row_id"]]
    ds = xr.Dataset(
        {
            "yi": ("row", design.y, {"units": "1", "long_name": "ln(backward/forward)"}),
            "vi": (
                "row",
                design.v_fixed,
                {"units": "1", "long_name": "sampling variance at default r"},
            ),
            "family": ("row", np.asarray(design.families, dtype=str)[design.family_idx]),
            "cluster": ("row", np.asarray(design.clusters, dtype=str)[design.cluster_idx]),
        },
        coords={"row": rows},
    )
    idata["observed_data"] = xr.DataTree(ds)


# ----------------------------------------------------------------------------------------------
# Simulation (tests, SBC, benchmark)
# ----------------------------------------------------------------------------------------------


def simulate_effect_sizes(
    seed,
    *,
    n_studies=8,
    speeds_m_s=(2.5, 3.5),
    families=("energy",),
    alpha=None,
    b_speed=None,
    tau_study=None,
    tau_cond=None,
    r=0.7,
    n_per_study=12,
    cv=0.15,
    modes=("run",),
) -> tuple[pd.DataFrame, dict]:
    """Simulate a **synthetic** effect-size table with the columns of ``effect_sizes``.

    Each study measures every family at every speed, forward and backward in the same
    ``n_per_study`` people; per-person coefficient of variation ``cv`` gives
    ``v_forward = v_backward = cv² / n`` (ln scale), and the observed ln ratio is drawn with the
    paired variance at correlation ``r``. Returns the table and the true parameters.
    """
    rng = np.random.default_rng(seed)
    F = len(families)
    alpha = np.zeros(F) + (0.25 if alpha is None else np.asarray(alpha, float))
    b_speed = np.zeros(F) + (0.05 if b_speed is None else np.asarray(b_speed, float))
    tau_study = np.zeros(F) + (0.08 if tau_study is None else np.asarray(tau_study, float))
    tau_cond = np.zeros(F) + (0.03 if tau_cond is None else np.asarray(tau_cond, float))
    speeds = np.asarray(speeds_m_s, float)
    centre = speeds.mean()
    rows = []
    for s in range(n_studies):
        mode = modes[s % len(modes)]
        for j, famname in enumerate(families):
            u = tau_study[j] * rng.standard_normal()
            for sp in speeds:
                theta = (
                    alpha[j] + b_speed[j] * (sp - centre) + u + tau_cond[j] * rng.standard_normal()
                )
                vf = vb = cv**2 / n_per_study
                v = vf + vb - 2 * r * np.sqrt(vf * vb)
                y = theta + np.sqrt(v) * rng.standard_normal()
                rows.append(
                    {
                        "row_id": f"sim{s}_{famname}_{sp:g}",
                        "study_key": f"study{s}",
                        "group_key": f"study{s}",
                        "outcome": famname,
                        "outcome_family": famname,
                        "mode": mode,
                        "speed_m_s": sp,
                        "speed_backward_m_s": sp,
                        "speed_matching": "same",
                        "grade_pct": 0.0,
                        "n": n_per_study,
                        "design": "within",
                        "yi": y,
                        "vi": vf + vb - 2 * 0.5 * np.sqrt(vf * vb),
                        "pct_change": 100 * np.expm1(y),
                        "v_forward": vf,
                        "v_backward": vb,
                        "dispersion_imputed": False,
                        "synthetic": True,
                    }
                )
    truth = {
        "alpha": alpha,
        "b_speed": b_speed,
        "tau_study": tau_study,
        "tau_cond": tau_cond,
        "r": r,
    }
    return pd.DataFrame(rows), truth


# ----------------------------------------------------------------------------------------------
# Prior draws (prior predictive checks and SBC share them)
# ----------------------------------------------------------------------------------------------


def draw_prior(design: MetaDesign, priors: Priors | None = None, rng=None, *, robust=False) -> dict:
    """One draw of every parameter and of ``y`` from the model's prior (numpy mirror of
    :func:`build_model`; SBC checks that the two agree)."""
    priors = priors or Priors()
    rng = np.random.default_rng(rng)
    F, C = len(design.families), len(design.clusters)
    p = {
        "alpha": rng.normal(0.0, priors.alpha_sd, F),
        "b_speed": rng.normal(0.0, priors.speed_sd, F),
        "b_mode": rng.normal(0.0, priors.mode_sd, F),
        "b_match": rng.normal(0.0, priors.match_sd, (F, 2)),
        "b_grade": rng.normal(0.0, priors.grade_sd, F),
        "tau_study": _draw_tau_study(priors, rng, F),
        "tau_cond": np.abs(rng.normal(0.0, priors.tau_cond_sd, F)),
        "r": rng.beta(priors.r_a, priors.r_b),
    }
    if robust:
        p["nu"] = rng.gamma(2.0, 1.0 / 0.1)
        z = rng.standard_t(p["nu"], C)
    else:
        z = rng.standard_normal(C)
    p["study_effect"] = p["tau_study"][design.cluster_family] * z
    eps = rng.standard_normal(design.n_rows)
    # drawn last, so designs without underwater rows keep the draws they had before it existed
    p["b_underwater"] = rng.normal(0.0, priors.underwater_sd, F)
    theta, sd = _theta_sd(design, p, priors)
    p["y"] = theta + sd * eps
    return p


def _draw_tau_study(priors: Priors, rng, size) -> np.ndarray:
    """Prior draws of the between-study SD for ``priors.tau_prior``."""
    if priors.tau_prior == "half_normal":
        return np.abs(rng.normal(0.0, priors.tau_study_sd, size))
    if priors.tau_prior == "half_cauchy":
        return np.abs(priors.tau_study_sd * rng.standard_cauchy(size))
    return np.exp(rng.normal(priors.tau2_lognormal_mu / 2, priors.tau2_lognormal_sigma / 2, size))


def _theta_sd(design: MetaDesign, p: dict, priors: Priors | None = None):
    """Row means and SDs of ``y`` for parameter values ``p`` (arrays with a leading draw axis
    allowed): sampling variance (direction rows: ``sigma_f²(r) / n``), the variance of an
    unreported speed and the condition effect."""
    d = design.data()
    fam, clu, X = d["family_idx"], d["cluster_idx"], d["X_row"]
    alpha = np.asarray(p["alpha"])
    coef = np.stack(
        [
            alpha,
            np.asarray(p["b_speed"]),
            np.asarray(p["b_mode"]),
            np.asarray(p["b_match"])[..., 0],
            np.asarray(p["b_match"])[..., 1],
            np.asarray(p["b_grade"]),
            np.asarray(p["b_underwater"]),
        ],
        axis=-1,
    )  # (..., F, N_COEF)
    theta = np.sum(coef[..., fam, :] * X, axis=-1)
    theta = theta + np.asarray(p["study_effect"])[..., clu]
    v = design.row_variance(p["r"]) + design.speed_extra_variance(priors or Priors())
    sd = np.sqrt(v + d["use_cond"] * np.asarray(p["tau_cond"])[..., fam] ** 2)
    return theta, sd


def prior_predictive_summary(
    design, priors: Priors | None = None, *, draws=2000, seed
) -> pd.DataFrame:
    """What the priors imply, on the ln-ratio and % scales.

    For each family: quantiles of the mean effect at the family's mean speed (``alpha``) and of
    the observed ln ratios ``y`` (all rows of the family pooled), plus the prior probability of
    an implausible ``|effect|`` > 100 %.
    """
    design = design if isinstance(design, MetaDesign) else MetaDesign.from_frame(design)
    rng = np.random.default_rng(seed)
    sims = [draw_prior(design, priors, rng) for _ in range(int(draws))]
    alpha = np.array([s["alpha"] for s in sims])
    y = np.array([s["y"] for s in sims])
    qs = [0.025, 0.25, 0.5, 0.75, 0.975]
    rows = []
    for j, famname in enumerate(design.families):
        rows_f = design.family_idx == j
        for quantity, vals in (("mean effect", alpha[:, j]), ("observed y", y[:, rows_f].ravel())):
            for scale, v in (("ln ratio", vals), ("%", to_percent(vals))):
                q = np.quantile(v, qs)
                rows.append(
                    {
                        "family": famname,
                        "quantity": quantity,
                        "scale": scale,
                        **{
                            f"q{int(100 * x * 10) / 10:g}": val
                            for x, val in zip(qs, q, strict=True)
                        },
                        "p_abs_pct_gt_100": float(np.mean(np.abs(to_percent(vals)) > 100)),
                    }
                )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Model checking
# ----------------------------------------------------------------------------------------------


def _posterior_params(result: MetaResult) -> dict:
    names = [*GATE_VARS, "study_effect"]
    return {n: result.draws(n) for n in names}


def posterior_predictive_check(
    result: MetaResult, *, seed, max_draws=1000
) -> tuple[pd.DataFrame, dict]:
    """Posterior predictive check of every row.

    Returns a per-row table (observed y, predictive median and 95 % interval, the predictive
    p-value P(y_rep <= y)) and a summary: the share of rows inside their 95 % predictive
    interval (expected about 0.95) and Bayesian p-values of the SD and range of y.
    """
    rng = np.random.default_rng(seed)
    p = _posterior_params(result)
    n = p["alpha"].shape[0]
    take = rng.choice(n, size=min(n, int(max_draws)), replace=False)
    p = {k: v[take] for k, v in p.items()}
    design = result.design
    theta, sd = _theta_sd(design, p, result.priors)
    yrep = theta + sd * rng.standard_normal(theta.shape)
    y = np.where(design.latent, np.nan, design.y)
    mask = (design.mask > 0) & ~design.latent
    lo, med, hi = np.quantile(yrep, [0.025, 0.5, 0.975], axis=0)
    ppp = np.mean(yrep <= design.y, axis=0)
    # direction rows: how probable the reported class is under the fit (t_rep in its region)
    se = np.sqrt(design.sigma2(p["r"])[..., design.family_idx] * design.inv_n)
    t_rep = yrep / np.where(design.latent, se, 1.0)
    p_class = np.mean((t_rep >= design.t_lo) & (t_rep <= design.t_hi), axis=0)
    point = design.latent & (design.t_lo == design.t_hi)
    if point.any():  # an exact p: two-sided predictive p-value of the known statistic
        q = np.mean(t_rep <= design.t_lo, axis=0)
        p_class = np.where(point, 2.0 * np.minimum(q, 1.0 - q), p_class)
    rows = pd.DataFrame(
        {
            "row_id": design.frame["row_id"].to_numpy(),
            "family": np.asarray(design.families)[design.family_idx],
            "row_kind": np.where(design.latent, "direction", "numeric"),
            "y": y,
            "yrep_median": med,
            "yrep_2.5%": lo,
            "yrep_97.5%": hi,
            "p_value": np.where(design.latent, np.nan, ppp),
            "inside_95": (y >= lo) & (y <= hi),
            "p_reported_class": np.where(design.latent, p_class, np.nan),
        }
    )
    ym, yr = y[mask], yrep[:, mask]
    summary = {
        "n_rows": int(mask.sum()),
        "share_inside_95": float(rows["inside_95"][mask].mean()),
        "p_sd": float(np.mean(yr.std(axis=1) >= ym.std())),
        "p_range": float(np.mean(np.ptp(yr, axis=1) >= np.ptp(ym))),
        "n_extreme_rows": int(np.sum((ppp[mask] < 0.01) | (ppp[mask] > 0.99))),
        "n_direction_rows": int(np.sum(design.latent & (design.mask > 0))),
        "n_direction_rows_p_class_lt_0.05": int(
            np.sum(design.latent & (design.mask > 0) & (p_class < 0.05))
        ),
    }
    return rows, summary


def _family_effect_summary(result: MetaResult, *, predictive: bool = False) -> dict:
    """Per family: (median, 2.5 %, 97.5 %) of the mean effect [%] (and, with ``predictive``,
    2.5 % and 97.5 % of the effect in a new study)."""
    out = {}
    for famname in result.design.families:
        e = to_percent(result.effect_draws(famname))
        out[famname] = (float(np.median(e)), *np.quantile(e, [0.025, 0.975]))
        if predictive:
            p = to_percent(result.predictive_draws(famname))
            out[famname] = (*out[famname], *np.quantile(p, [0.025, 0.975]))
    return out


def leave_one_study_out(
    result: MetaResult, *, draws=1000, tune=1000, chains=4, seed
) -> pd.DataFrame:
    """Refit without each study (all its rows masked out) and report the change of every
    family's mean effect [%] (same compiled model; nutpie only)."""
    design = result.design
    full = _family_effect_summary(result)
    keys = design.frame["group_key"].astype(str).to_numpy()
    out = []
    for i, key in enumerate(dict.fromkeys(keys)):
        masked = replace(design, mask=np.where(keys == key, 0.0, design.mask))
        families_hit = set(np.asarray(design.families)[design.family_idx[keys == key]])
        res = fit(
            masked,
            priors=result.priors,
            robust=result.robust,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=int(seed) + i,
            gate="off",
        )
        loo = _family_effect_summary(res)
        for famname in sorted(families_hit):
            # a family left with no rows only shows its prior: report it as such
            left = int(np.sum(masked.mask[design.family_idx == design.families.index(famname)]))
            out.append(
                {
                    "left_out": key,
                    "family": famname,
                    "rows_left": left,
                    "median_pct_full": full[famname][0],
                    "median_pct_without": loo[famname][0] if left else np.nan,
                    "shift_pct_points": (loo[famname][0] - full[famname][0]) if left else np.nan,
                    "ci_low_without": loo[famname][1] if left else np.nan,
                    "ci_high_without": loo[famname][2] if left else np.nan,
                    "converged": res.converged,
                }
            )
    return pd.DataFrame(out)


#: Heterogeneity-prior variants: with one to five studies per family the prior of
#: ``tau_study`` dominates its posterior (see the module docstring for the sources).
HETEROGENEITY_VARIANTS = {
    "tau ~ HalfNormal(0.25) (default)": Priors(),
    "tau ~ HalfNormal(0.125)": replace(Priors(), tau_study_sd=0.125),
    "tau ~ HalfNormal(0.5)": replace(Priors(), tau_study_sd=0.5),
    "tau ~ HalfCauchy(0.25)": replace(Priors(), tau_prior="half_cauchy"),
    "ln tau² ~ N(-2.56, 1.74²) (Turner 2015)": replace(Priors(), tau_prior="log_normal_tau2"),
}

SENSITIVITY_VARIANTS = {
    "default": Priors(),
    **{k: v for k, v in HETEROGENEITY_VARIANTS.items() if "(default)" not in k},
    "r ~ Beta(2, 5)": replace(Priors(), r_a=2.0, r_b=5.0),
    "r ~ Beta(2, 2)": replace(Priors(), r_a=2.0, r_b=2.0),
    "r ~ Beta(8, 2)": replace(Priors(), r_a=8.0, r_b=2.0),
    "prior scales x0.5": Priors().scaled(0.5),
    "prior scales x2": Priors().scaled(2.0),
    "flat-ish": Priors.flat(),
}


def sensitivity(
    effects,
    *,
    variants=None,
    draws=1000,
    tune=1000,
    chains=4,
    seed,
    robust_variant=False,
    return_fits=False,
):
    """Refit under other priors and report every family's effect [%] per variant.

    Variants (:data:`SENSITIVITY_VARIANTS`): the heterogeneity prior (half-normal scales,
    half-Cauchy, Turner et al.'s log-normal), the ``r`` prior, all prior scales halved or
    doubled, flat-ish. Each row gives the mean effect (median and 95 % interval), the 95 %
    prediction interval for a new study, the posterior median of ``tau_study`` and whether the
    refit passed the convergence gate. ``robust_variant`` adds Student-t study effects.
    With ``return_fits`` also returns ``{variant: MetaResult}`` (e.g. for verdicts per variant).
    """
    design = effects if isinstance(effects, MetaDesign) else MetaDesign.from_frame(effects)
    variants = dict(variants or SENSITIVITY_VARIANTS)
    runs = [(name, pri, False) for name, pri in variants.items()]
    if robust_variant:
        runs.append(("Student-t study effects", Priors(), True))
    out = []
    fits = {}
    for i, (name, pri, robust) in enumerate(runs):
        res = fit(
            design,
            priors=pri,
            robust=robust,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=int(seed) + i,
            gate="off",
        )
        fits[name] = res
        r = res.draws("r")
        tau = res.draws("tau_study")
        summary = _family_effect_summary(res, predictive=True)
        for famname, (med, lo, hi, plo, phi) in summary.items():
            out.append(
                {
                    "variant": name,
                    "tau_prior": pri.describe_tau(),
                    "family": famname,
                    "median_pct": med,
                    "ci_low_pct": lo,
                    "ci_high_pct": hi,
                    "pred_low_pct": plo,
                    "pred_high_pct": phi,
                    "tau_study_median": float(np.median(tau[:, res.family_index(famname)])),
                    "r_median": float(np.median(r)),
                    "converged": res.converged,
                    "diagnostics": str(res.diagnostics),
                }
            )
    table = pd.DataFrame(out)
    return (table, fits) if return_fits else table


# ----------------------------------------------------------------------------------------------
# Simulation-based calibration
# ----------------------------------------------------------------------------------------------

SBC_PARAMS = ("alpha", "b_speed", "tau_study", "tau_cond", "r")


def sbc_design(
    *, directions: bool = False, graded: bool = False, underwater: bool = False
) -> MetaDesign:
    """The fixed design of the SBC study: 10 synthetic studies x 2 speeds, one family, paired.

    ``directions=True`` adds 10 more synthetic studies (n = 12, 2 speeds) that report only a
    direction and significance class (their bounds are set per replicate from the simulated
    data by :func:`censor_direction_rows`). ``graded=True`` puts rows on uphill grades as the
    claims' evidence has them: two of the numeric studies at 5 % and half of the direction
    studies at 5 % (first speed) and 10 % (second speed), several grades of one study reported
    by direction only as in Hooper et al. 2004 (synthetic; the grade coefficient ``b_grade``
    is then ranked too). ``underwater=True`` (with ``directions``) puts two of the direction
    studies underwater at both speeds, reported by direction only as Masumoto et al. 2007 and
    2009 are (synthetic; ``b_underwater`` is then ranked too)."""
    df, _ = simulate_effect_sizes(0, n_studies=10, speeds_m_s=(2.5, 3.5), families=("energy",))
    if graded:
        study = df["study_key"].str.removeprefix("study").astype(int)
        df["grade_pct"] = np.where(study % 5 == 4, 5.0, 0.0)
    if not directions:
        return MetaDesign.from_frame(df)
    dr, _ = simulate_effect_sizes(1, n_studies=10, speeds_m_s=(2.5, 3.5), families=("energy",))
    if graded:
        study = dr["study_key"].str.removeprefix("study").astype(int)
        dr["grade_pct"] = np.where(study % 2 == 1, np.where(dr["speed_m_s"] < 3.0, 5.0, 10.0), 0.0)
    if underwater:
        study = dr["study_key"].str.removeprefix("study").astype(int)
        dr["surface"] = np.where(study % 4 == 2, UNDERWATER, "treadmill")
        df["surface"] = "treadmill"
    dr = dr.assign(
        row_id="dir_" + dr["row_id"],
        study_key="dir_" + dr["study_key"],
        group_key="dir_" + dr["group_key"],
        t_lo=-np.inf,
        t_hi=np.inf,
    ).drop(columns=["yi", "vi", "v_forward", "v_backward"])
    return MetaDesign.from_frame(df, directions=dr)


def censor_direction_rows(design: MetaDesign, y, r, *, alpha=0.05) -> MetaDesign:
    """The design with its direction rows' bounds set from simulated ``y`` (synthetic data):
    each row reports the class a two-sided paired t test at level ``alpha`` gives for
    ``t = y / se(r)`` (significantly positive, significantly negative or no difference)."""
    from retrosim.evidence.directions import critical_t

    lat = design.latent
    se = np.sqrt(design.sigma2(r)[design.family_idx] * design.inv_n)
    n = np.where(lat, 1.0 / np.where(lat, design.inv_n, 1.0), np.nan)
    crit = np.array([critical_t(alpha, k) if np.isfinite(k) else np.nan for k in n])
    t = np.asarray(y, float) / np.where(lat, se, 1.0)
    lo = np.where(t > crit, crit, np.where(t < -crit, -np.inf, -crit))
    hi = np.where(t > crit, np.inf, np.where(t < -crit, -crit, crit))
    return replace(
        design,
        y=np.where(lat, 0.0, y),
        t_lo=np.where(lat, lo, -np.inf),
        t_hi=np.where(lat, hi, np.inf),
    )


def run_sbc_replicate(
    seed,
    *,
    draws=100,
    tune=200,
    chains=2,
    thin=2,
    priors=None,
    directions=False,
    graded=False,
    underwater=False,
) -> dict:
    """One SBC replicate: draw parameters and data from the prior, fit, rank the truth.

    Independent of every other replicate (its own seed, a per-process compiled model), so many
    replicates can run as separate tasks. Returns the ranks (0..L with L = chains*draws/thin)
    of each parameter in ``SBC_PARAMS`` and the fit's diagnostics. ``directions=True`` uses
    :func:`sbc_design` with direction-only studies, whose reported classes come from the
    simulated data (:func:`censor_direction_rows`); ``graded=True`` the design with uphill rows
    (:func:`sbc_design`), ranking ``b_grade`` as well; ``underwater=True`` the design with
    underwater direction studies, ranking ``b_underwater`` as well.
    """
    priors = priors or Priors()
    design = sbc_design(directions=directions, graded=graded, underwater=underwater)
    rng = np.random.default_rng([int(seed), 20240])
    truth = draw_prior(design, priors, rng)
    if directions:
        sim = censor_direction_rows(design, truth["y"], truth["r"])
    else:
        sim = replace(design, y=truth["y"])
    res = fit(
        sim,
        priors=priors,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=int(seed),
        gate="off",
        adaptation="low_rank" if directions else "diag",
    )
    out = {"seed": int(seed)}
    ranked = (
        SBC_PARAMS + (("b_grade",) if graded else ()) + (("b_underwater",) if underwater else ())
    )
    for name in ranked:
        post = res.draws(name)[::thin]
        t = np.asarray(truth[name]).ravel()[0]
        post = post.reshape(post.shape[0], -1)[:, 0]
        out[f"rank_{name}"] = int(np.sum(post < t))
        out[f"true_{name}"] = float(t)
    out["n_ranks"] = int(post.shape[0])
    if directions:
        lat = sim.latent
        out["n_direction_significant"] = int(
            np.sum(lat & (np.isinf(sim.t_hi) | np.isinf(sim.t_lo)))
        )
        out["n_direction_rows"] = int(np.sum(lat))
    d = res.diagnostics
    out.update(max_rhat=d.max_rhat, min_ess_bulk=d.min_ess_bulk, divergences=d.n_divergences)
    return out


def sbc_uniformity(ranks: pd.DataFrame, *, n_bins=None) -> pd.DataFrame:
    """Chi-square test of rank uniformity per parameter (Talts et al. [1]_).

    ``ranks`` has ``rank_<param>`` columns and ``n_ranks`` (L); ranks take L + 1 values, binned
    into ``n_bins`` equal-width bins (default: about 5 replicates per bin, at most 20).

    References
    ----------
    .. [1] S. Talts, M. Betancourt, D. Simpson, A. Vehtari, A. Gelman, "Validating Bayesian inference
       algorithms with simulation-based calibration", arXiv:1804.06788, 2018.
    """
    L = int(ranks["n_ranks"].iloc[0])
    n = len(ranks)
    n_bins = n_bins or int(np.clip(n // 5, 2, 20))
    rows = []
    for col in [c for c in ranks.columns if c.startswith("rank_")]:
        u = (ranks[col].to_numpy() + 0.5) / (L + 1)
        counts = np.histogram(u, bins=n_bins, range=(0, 1))[0]
        chi2, p = stats.chisquare(counts)
        ks = stats.kstest(u, "uniform")
        rows.append(
            {
                "parameter": col.removeprefix("rank_"),
                "n": n,
                "bins": n_bins,
                "chi2": float(chi2),
                "p_chi2": float(p),
                "p_ks": float(ks.pvalue),
                "mean_u": float(u.mean()),
            }
        )
    return pd.DataFrame(rows)
