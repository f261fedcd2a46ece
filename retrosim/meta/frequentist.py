"""Frequentist random-effects meta-analysis: the cross-checks of the Bayesian model.

Effect size ``yi = ln(backward / forward)`` with sampling variance ``vi`` (see
:func:`retrosim.evidence.tables.effect_sizes`).

* :func:`reml` — restricted maximum likelihood for the between-study variance tau², by Fisher
  scoring (the default of the R package metafor, ``rma(method="REML")`` [1]_), with optional
  moderators (meta-regression). Implemented here.
* :func:`dersimonian_laird` [2]_ and :func:`paule_mandel` [3]_ — through statsmodels
  ``statsmodels.stats.meta_analysis.combine_effects`` (``method_re="chi2"`` and ``"iterated"``).
* Inference for any of these fits (:meth:`FrequentistResult.conf_int`,
  :meth:`FrequentistResult.summary_frame`, :func:`predict`): Wald (normal), Hartung–Knapp–
  Sidik–Jonkman [4]_ [5]_ [6]_ and its modification that never falls below the Wald
  interval [7]_ [8]_; prediction intervals for the effect in a new study [9]_.
* :func:`reml_multilevel` — conditions nested in studies, two variance components, REML
  (metafor ``rma.mv(yi, vi, random = ~ 1 | study/condition)`` [1]_ [10]_).
* Small-study diagnostics: :func:`egger_test` [11]_, :func:`pet`, :func:`peese` and
  :func:`pet_peese` [12]_, :func:`funnel_plot` [13]_. Each reports ``k`` and whether the test
  is ``underpowered`` (fewer than 10 effect sizes [13]_).

References
----------
.. [1] W. Viechtbauer, "Conducting meta-analyses in R with the metafor package", Journal of
   Statistical Software 36(3), 1-48, 2010. doi:10.18637/jss.v036.i03
.. [2] R. DerSimonian, N. Laird, "Meta-analysis in clinical trials", Controlled Clinical Trials
   7(3), 177-188, 1986. doi:10.1016/0197-2456(86)90046-2
.. [3] R. C. Paule, J. Mandel, "Consensus values and weighting factors", Journal of Research of
   the National Bureau of Standards 87(5), 377-385, 1982. doi:10.6028/jres.087.022
.. [4] J. Hartung, G. Knapp, "A refined method for the meta-analysis of controlled clinical
   trials with binary outcome", Statistics in Medicine 20(24), 3875-3889, 2001.
   doi:10.1002/sim.1009
.. [5] K. Sidik, J. N. Jonkman, "A simple confidence interval for meta-analysis", Statistics
   in Medicine 21(21), 3153-3159, 2002. doi:10.1002/sim.1262
.. [6] J. IntHout, J. P. A. Ioannidis, G. F. Borm, "The Hartung-Knapp-Sidik-Jonkman method for
   random effects meta-analysis is straightforward and considerably outperforms the standard
   DerSimonian-Laird method", BMC Medical Research Methodology 14, 25, 2014.
   doi:10.1186/1471-2288-14-25
.. [7] G. Knapp, J. Hartung, "Improved tests for a random effects meta-regression with a single
   covariate", Statistics in Medicine 22(17), 2693-2710, 2003. doi:10.1002/sim.1482
.. [8] C. Röver, G. Knapp, T. Friede, "Hartung-Knapp-Sidik-Jonkman approach and its
   modification for random-effects meta-analysis with few studies", BMC Medical Research
   Methodology 15, 99, 2015. doi:10.1186/s12874-015-0091-1
.. [9] J. P. T. Higgins, S. G. Thompson, D. J. Spiegelhalter, "A re-evaluation of random-effects
   meta-analysis", Journal of the Royal Statistical Society A 172(1), 137-159, 2009.
   doi:10.1111/j.1467-985X.2008.00552.x
.. [10] S. Konstantopoulos, "Fixed effects and variance components estimation in three-level
   meta-analysis", Research Synthesis Methods 2(1), 61-76, 2011. doi:10.1002/jrsm.35
.. [11] M. Egger, G. Davey Smith, M. Schneider, C. Minder, "Bias in meta-analysis detected by a
   simple, graphical test", BMJ 315(7109), 629-634, 1997. doi:10.1136/bmj.315.7109.629
.. [12] T. D. Stanley, H. Doucouliagos, "Meta-regression approximations to reduce publication
   selection bias", Research Synthesis Methods 5(1), 60-78, 2014. doi:10.1002/jrsm.1095
.. [13] J. A. C. Sterne, A. J. Sutton, J. P. A. Ioannidis, et al., "Recommendations for
   examining and interpreting funnel plot asymmetry in meta-analyses of randomised controlled
   trials", BMJ 343, d4002, 2011. doi:10.1136/bmj.d4002
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

from retrosim._checks import check_choice
from retrosim.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "INTERVAL_METHODS",
    "MIN_K_SMALL_STUDY",
    "FrequentistResult",
    "MultilevelResult",
    "PetPeeseResult",
    "RegressionTest",
    "WLSFit",
    "dersimonian_laird",
    "egger_test",
    "frequentist",
    "funnel_plot",
    "paule_mandel",
    "peese",
    "pet",
    "pet_peese",
    "predict",
    "reml",
    "reml_multilevel",
]

#: Interval methods of :meth:`FrequentistResult.conf_int` and :func:`predict`; metafor's names
#: for them (``test=`` of ``rma``) are accepted as aliases.
INTERVAL_METHODS = ("wald", "hksj", "hksj_modified")
_ALIASES = {"z": "wald", "knha": "hksj", "adhoc": "hksj_modified"}
#: Fewer effect sizes than this and a funnel-plot asymmetry test is underpowered: Sterne et al.
#: (2011) [13]_ recommend such tests only with at least 10 studies.
MIN_K_SMALL_STUDY = 10


def _interval_method(method):
    method = _ALIASES.get(method, method)
    check_choice("method", method, INTERVAL_METHODS)
    return method


def _check_level(level):
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise InputError(f"expected a number in (0, 1), got {level!r}", argument="level") from None
    if not 0.0 < level < 1.0:
        raise InputError(
            f"confidence level {level:g} is outside (0, 1); e.g. 0.95 for 95 %", argument="level"
        )
    return level


class _Coefficients:
    """Accessors shared by the fit results (``beta`` is the coefficient vector)."""

    beta: np.ndarray

    @property
    def estimate(self) -> float:
        """The first coefficient (the pooled effect without moderators) [ln ratio]."""
        return float(self.beta[0])

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return int(np.size(self.beta))


@dataclass(frozen=True)
class FrequentistResult(_Coefficients):
    """A random-effects (meta-regression) fit: coefficients, tau² and heterogeneity statistics.

    Attributes
    ----------
    method : str
        'REML', 'DL', 'PM', or 'fixed' (tau² given to :func:`reml`).
    beta, se : numpy.ndarray
        Coefficients [ln ratio] and their standard errors (Wald, known tau²) [ln ratio].
    names : tuple of str
    tau2, se_tau2 : float
        Between-study variance [ln-ratio²] and its standard error (REML: inverse Fisher
        information; NaN for DL/PM).
    q, df_q : float, int
        Cochran's Q (residual heterogeneity with moderators) and its degrees of freedom.
    i2, h2 : float
        I² [%] and H² computed as metafor does, from tau² and the "typical" sampling variance.
    k : int
        Number of effect sizes.
    iterations : int
        Fisher-scoring iterations (REML).
    hksj_scale : float
        The Hartung–Knapp–Sidik–Jonkman factor ``q = sum w_i (y_i - x_i b)² / (k - p)`` with
        ``w = 1 / (vi + tau²)`` [dimensionless]; it multiplies the Wald covariance. Set to 0
        when the weighted residual sum of squares is below machine epsilon (all ``yi`` equal),
        as metafor does.
    vcov : numpy.ndarray
        Wald covariance of ``beta`` (p, p) [ln-ratio²]; ``diag(se²)`` when not given.
    loglik : float
        Restricted log-likelihood at the estimate (REML; metafor's convention, which includes
        the ``+ log det(X'X) / 2`` constant), NaN for DL/PM.
    """

    method: str
    beta: np.ndarray
    se: np.ndarray
    names: tuple
    tau2: float
    se_tau2: float
    q: float
    df_q: int
    i2: float
    h2: float
    k: int
    iterations: int = 0
    hksj_scale: float = float("nan")
    vcov: np.ndarray | None = None
    loglik: float = float("nan")

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom ``k - p`` of the t distribution used by HKSJ."""
        return self.k - self.p

    def _vcov(self) -> np.ndarray:
        if self.vcov is not None:
            return np.asarray(self.vcov, dtype=float)
        return np.diag(np.asarray(self.se, dtype=float) ** 2)

    def variance_factor(self, method="wald") -> float:
        """Factor on the Wald covariance: 1 (Wald), ``q`` (HKSJ) or ``max(1, q)`` (modified).

        The modified ("ad hoc") version of Knapp & Hartung (2003) [7]_, recommended for few
        studies by Röver, Knapp & Friede (2015) [8]_, keeps the HKSJ t quantile but never lets the
        standard error fall below the Wald one, so its interval is never narrower than Wald's.

        References
        ----------
        .. [7] G. Knapp, J. Hartung, "Improved tests for a random effects meta-regression with a single
           covariate", Statistics in Medicine 22(17), 2693-2710, 2003. doi:10.1002/sim.1482
        .. [8] C. Röver, G. Knapp, T. Friede, "Hartung-Knapp-Sidik-Jonkman approach and its
           modification for random-effects meta-analysis with few studies", BMC Medical Research
           Methodology 15, 99, 2015. doi:10.1186/s12874-015-0091-1
        """
        method = _interval_method(method)
        if method == "wald":
            return 1.0
        q = self.hksj_scale
        if not np.isfinite(q):
            raise InputError(
                f"this {self.method} result carries no HKSJ factor (built without one)",
                argument="method",
            )
        return float(max(1.0, q)) if method == "hksj_modified" else float(q)

    def bse(self, method="wald") -> np.ndarray:
        """Standard errors of ``beta`` under ``method`` [ln ratio]."""
        return np.sqrt(np.diag(self._vcov()) * self.variance_factor(method))

    def _crit(self, level, method, df=None):
        level = _check_level(level)
        if _interval_method(method) == "wald" and df is None:
            return float(stats.norm.ppf(0.5 + level / 2))
        df = self.df_resid if df is None else df
        return float(stats.t.ppf(0.5 + level / 2, df))

    def conf_int(self, level=0.95, method="wald") -> np.ndarray:
        """Confidence intervals of the coefficients, shape (p, 2) [ln ratio].

        Parameters
        ----------
        level : float
            Coverage, e.g. 0.95.
        method : {'wald', 'hksj', 'hksj_modified'}
            'wald': ``b ± z se``. 'hksj': ``b ± t(k-p) sqrt(q) se`` (Hartung & Knapp 2001 [4]_,
            Sidik & Jonkman 2002 [5]_; metafor ``test="knha"``). 'hksj_modified': as 'hksj'
            with ``q`` replaced by ``max(1, q)`` (Knapp & Hartung 2003 [7]_; metafor
            ``test="adhoc"``). metafor's names 'z', 'knha', 'adhoc' are accepted too.

        References
        ----------
        .. [4] J. Hartung, G. Knapp, "A refined method for the meta-analysis of controlled clinical
           trials with binary outcome", Statistics in Medicine 20(24), 3875-3889, 2001.
           doi:10.1002/sim.1009
        .. [5] K. Sidik, J. N. Jonkman, "A simple confidence interval for meta-analysis", Statistics
           in Medicine 21(21), 3153-3159, 2002. doi:10.1002/sim.1262
        .. [7] G. Knapp, J. Hartung, "Improved tests for a random effects meta-regression with a single
           covariate", Statistics in Medicine 22(17), 2693-2710, 2003. doi:10.1002/sim.1482
        """
        se = self.bse(method)
        crit = self._crit(level, method)
        return np.column_stack([self.beta - crit * se, self.beta + crit * se])

    def summary_frame(self, level=0.95, method="wald"):
        """Coefficient table (statsmodels ``CombineResults.summary_frame`` style).

        Returns
        -------
        pandas.DataFrame
            Indexed by coefficient name, columns ``coef`` [ln ratio], ``se`` [ln ratio],
            ``statistic`` (z or t), ``df`` (inf for Wald), ``p_value``, ``ci_low``, ``ci_upp``
            [ln ratio]; ``attrs`` hold ``method``, ``level``, ``tau2`` and ``k``.
        """
        import pandas as pd

        method = _interval_method(method)
        se = self.bse(method)
        stat = self.beta / se
        if method == "wald":
            df = np.inf
            pval = 2 * stats.norm.sf(np.abs(stat))
        else:
            df = float(self.df_resid)
            pval = 2 * stats.t.sf(np.abs(stat), df)
        ci = self.conf_int(level, method)
        frame = pd.DataFrame(
            {
                "coef": self.beta,
                "se": se,
                "statistic": stat,
                "df": df,
                "p_value": pval,
                "ci_low": ci[:, 0],
                "ci_upp": ci[:, 1],
            },
            index=pd.Index(list(self.names), name="coefficient"),
        )
        frame.attrs.update(
            {"method": method, "level": level, "tau2": self.tau2, "k": self.k, "fit": self.method}
        )
        return frame

    def prediction_interval(self, level=0.95, method="wald", x=None, pi_type="default"):
        """Interval for the true effect in a new study, ``b ± crit sqrt(se² + tau²)`` [ln ratio].

        See :func:`predict`; returns ``[lower, upper]`` (shape (2,), or (m, 2) for an (m, p)
        ``x``).
        """
        pred = predict(self, x=x, level=level, method=method, pi_type=pi_type)
        out = pred[["pi_lb", "pi_ub"]].to_numpy()
        x_arr = None if x is None else np.asarray(x, dtype=float)
        return out[0] if x_arr is None or x_arr.ndim < 2 else out

    def to_dataframe(self, level=0.95, method="wald"):
        """The coefficient table as numbers (:meth:`summary_frame`)."""
        return self.summary_frame(level, method)

    def summary(self, method="wald", level=0.95):
        """A statsmodels-like :class:`~retrosim.bayes.results.Summary` (Wald by default;
        ``method`` as in :meth:`conf_int`): ``print`` it, display it in Jupyter, or take its
        numbers with ``to_dataframe()``."""
        frame = self.summary_frame(level, method)
        header = [
            f"tau²  {self.tau2:10.4f}"
            + (f"  (SE {self.se_tau2:.4f})" if np.isfinite(self.se_tau2) else ""),
            f"tau   {np.sqrt(self.tau2):10.4f}",
            f"I²    {self.i2:9.2f} %     H²  {self.h2:.2f}",
            f"Q({self.df_q}) = {self.q:.4f}, p = {stats.chi2.sf(self.q, self.df_q):.4g}",
        ]
        if frame.attrs["method"] != "wald":
            header.append(
                f"{frame.attrs['method']}: t({self.df_resid}), "
                f"variance factor {self.variance_factor(method):.4f}"
            )
        return _coefficient_summary(
            frame,
            f"Random-effects meta-analysis (k = {self.k}; tau² estimator: {self.method})",
            header,
            "z" if frame.attrs["method"] == "wald" else "t",
            level,
        )

    def __str__(self) -> str:
        return self.summary().as_text()


def _coefficient_summary(frame, title, header, label, level):
    """The :class:`~retrosim.bayes.results.Summary` of a coefficient table."""
    from retrosim.bayes.results import Summary

    tail = (1.0 - level) / 2.0
    cols = ["coef", "se", "statistic", "p_value", "ci_low", "ci_upp"]
    return Summary(
        frame[cols],
        title=title,
        header=header,
        formats={c: "{:.4f}" for c in cols if c != "statistic"},
        labels={
            "statistic": label,
            "p_value": "p",
            "ci_low": f"[{tail:g}",
            "ci_upp": f"{1 - tail:g}]",
        },
    )


def _new_x(p, x, names):
    """Rows of the design for :func:`predict`, shape (m, p)."""
    if x is None:
        if p > 1:
            raise InputError(
                f"the fit has {p} coefficients ({', '.join(names)}); give the moderator values "
                "of the new study as x (including the intercept column)",
                argument="x",
            )
        return np.ones((1, 1))
    x = np.asarray(x, dtype=float)
    x = np.atleast_1d(x)[None, :] if x.ndim <= 1 else x
    if x.ndim != 2 or x.shape[1] != p or not np.all(np.isfinite(x)):
        raise InputError(
            f"expected finite moderator rows of length {p} (one per coefficient), got shape "
            f"{np.shape(x)}",
            argument="x",
        )
    return x


def predict(result, x=None, level=0.95, method="wald", pi_type="default"):
    """Pooled prediction with its confidence and prediction interval, as metafor ``predict()``.

    ``pred = x b``; confidence interval ``pred ± crit se``; prediction interval for the true
    effect in a new study (Higgins, Thompson & Spiegelhalter 2009 [9]_)
    ``pred ± crit sqrt(se² + tau²)``, where ``se`` is the standard error under ``method`` and
    ``crit`` is the normal quantile for 'wald' and the t(k - p) quantile for 'hksj' and
    'hksj_modified' — metafor's convention (``predict.rma`` with ``test="knha"`` / ``"adhoc"``
    uses t with k - p df and the scaled ``se`` for both intervals). For a
    :class:`MultilevelResult` ``tau²`` is the sum of the two variance components and only
    'wald' is available.

    Parameters
    ----------
    result : FrequentistResult or MultilevelResult
    x : array_like, optional
        Moderator values of the new study, (p,) or (m, p) including the intercept column;
        required when the fit has moderators.
    level : float
        Coverage of both intervals.
    method : {'wald', 'hksj', 'hksj_modified'}
    pi_type : {'default', 'riley'}
        'riley': the prediction interval uses t with k - p - 1 df (k - 2 without moderators,
        as Higgins et al. 2009 [9]_ propose; metafor ``pi.type="Riley"``) whatever ``method``.

    Returns
    -------
    pandas.DataFrame
        Columns ``pred``, ``se``, ``ci_lb``, ``ci_ub``, ``pi_lb``, ``pi_ub`` [ln ratio], one row
        per row of ``x``.

    References
    ----------
    .. [9] J. P. T. Higgins, S. G. Thompson, D. J. Spiegelhalter, "A re-evaluation of random-effects
       meta-analysis", Journal of the Royal Statistical Society A 172(1), 137-159, 2009.
       doi:10.1111/j.1467-985X.2008.00552.x
    """
    import pandas as pd

    method = _interval_method(method)
    check_choice("pi_type", pi_type, ("default", "riley"))
    if isinstance(result, MultilevelResult):
        if method != "wald":
            raise InputError("the multilevel fit has Wald (z) inference only", argument="method")
        heterogeneity = result.sigma2_study + result.sigma2_condition
        vcov, scale = result.vcov, 1.0
    elif isinstance(result, FrequentistResult):
        heterogeneity = result.tau2
        vcov, scale = result._vcov(), result.variance_factor(method)
    else:
        raise InputError(
            f"expected a FrequentistResult or MultilevelResult, got {type(result).__name__}",
            argument="result",
        )
    xn = _new_x(result.p, x, result.names)
    pred = xn @ result.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", xn, vcov, xn) * scale)
    if method == "wald":
        crit = float(stats.norm.ppf(0.5 + _check_level(level) / 2))
    else:
        crit = float(stats.t.ppf(0.5 + _check_level(level) / 2, result.k - result.p))
    pi_crit = crit
    if pi_type == "riley":
        pi_crit = float(stats.t.ppf(0.5 + level / 2, max(result.k - result.p - 1, 1)))
    pi_se = np.sqrt(se**2 + heterogeneity)
    return pd.DataFrame(
        {
            "pred": pred,
            "se": se,
            "ci_lb": pred - crit * se,
            "ci_ub": pred + crit * se,
            "pi_lb": pred - pi_crit * pi_se,
            "pi_ub": pred + pi_crit * pi_se,
        }
    )


def _check_yi_vi(yi, vi, X=None):
    yi = np.asarray(yi, dtype=float).ravel()
    vi = np.asarray(vi, dtype=float).ravel()
    if yi.shape != vi.shape:
        raise InputError(f"yi has {yi.size} values but vi has {vi.size}", argument="vi")
    if not np.all(np.isfinite(yi)):
        raise InputError("yi must be finite ln ratios", argument="yi")
    if not np.all(np.isfinite(vi) & (vi > 0)):
        raise InputError("vi must be finite positive variances [ln-ratio²]", argument="vi")
    if X is None:
        X = np.ones((yi.size, 1))
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != yi.size:
        raise InputError(f"X has {X.shape[0]} rows, expected {yi.size}", argument="X")
    if not np.all(np.isfinite(X)):
        raise InputError("X must be finite", argument="X")
    if yi.size <= X.shape[1]:
        raise InputError(
            f"need more effect sizes ({yi.size}) than coefficients ({X.shape[1]})", argument="yi"
        )
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError(
            f"X (shape {X.shape}) is not of full column rank: a moderator is constant or a "
            "combination of the others",
            argument="X",
        )
    return yi, vi, X


def _heterogeneity(yi, vi, X, tau2):
    """Q_E, its df, and metafor's I², H² for a given tau²."""
    k, p = X.shape
    w = 1.0 / vi
    xtw = X.T * w
    b_fe = np.linalg.solve(xtw @ X, xtw @ yi)
    q = float(np.sum(w * (yi - X @ b_fe) ** 2))
    p_fe = np.diag(w) - xtw.T @ np.linalg.solve(xtw @ X, xtw)
    s2 = (k - p) / np.trace(p_fe)  # "typical" within-study variance (metafor)
    i2 = 100.0 * tau2 / (tau2 + s2)
    h2 = (tau2 + s2) / s2
    return q, k - p, float(i2), float(h2)


def _gls(yi, vi, X, tau2):
    w = 1.0 / (vi + tau2)
    xtw = X.T * w
    cov = np.linalg.inv(xtw @ X)
    beta = cov @ (xtw @ yi)
    return beta, cov


def _hksj_scale(yi, vi, X, tau2, beta):
    """``sum w (y - X b)² / (k - p)``, w = 1/(vi + tau²); 0 below machine epsilon (metafor)."""
    k, p = X.shape
    rss = float(np.sum((yi - X @ beta) ** 2 / (vi + tau2)))
    return 0.0 if rss <= np.finfo(float).eps else rss / (k - p)


def _reml_loglik(yi, vi, X, tau2, beta):
    """Restricted log-likelihood, metafor's form (with ``+ log det(X'X) / 2``)."""
    k, p = X.shape
    w = 1.0 / (vi + tau2)
    rss = float(np.sum(w * (yi - X @ beta) ** 2))
    return float(
        -0.5 * (k - p) * np.log(2 * np.pi)
        + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        - 0.5 * np.sum(np.log(vi + tau2))
        - 0.5 * np.linalg.slogdet((X.T * w) @ X)[1]
        - 0.5 * rss
    )


def reml(yi, vi, X=None, *, names=None, tol=1e-10, max_iter=200, tau2=None) -> FrequentistResult:
    """REML estimate of tau² by Fisher scoring, with optional moderators ``X``.

    Score and expected information of the restricted log-likelihood (Viechtbauer 2005, as used
    by metafor [1]_)::

        P = W - W X (X' W X)^-1 X' W,   W = diag(1 / (vi + tau²))
        dl/dtau² = (y' P P y - tr P) / 2,   I(tau²) = tr(P P) / 2

    The step ``(y'PPy - tr P) / tr(PP)`` is halved until tau² stays >= 0; iteration starts at
    the DerSimonian–Laird value. ``se_tau2 = sqrt(2 / tr(PP))``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes [ln ratio] and sampling variances [ln-ratio²].
    X : array_like, optional
        Design matrix (k, p) including the intercept column; default intercept only.
    names : sequence of str, optional
        Coefficient names.
    tol : float
        Convergence: change of tau² below ``tol`` [ln-ratio²].
    max_iter : int
    tau2 : float, optional
        Fix tau² at this value [ln-ratio²] instead of estimating it (metafor ``rma(tau2=)``);
        the result's ``method`` is then 'fixed' and ``se_tau2`` NaN.

    Returns
    -------
    FrequentistResult
        With the HKSJ factor, so ``conf_int(method="hksj")`` and :func:`predict` work.

    References
    ----------
    .. [1] W. Viechtbauer, "Conducting meta-analyses in R with the metafor package", Journal of
       Statistical Software 36(3), 1-48, 2010. doi:10.18637/jss.v036.i03
    """
    yi, vi, X = _check_yi_vi(yi, vi, X)
    if tau2 is not None:
        return _fit_at_tau2(yi, vi, X, _check_variance("tau2", tau2), names, "fixed", 0)
    tau2 = max(_dl_tau2(yi, vi, X), 0.0)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (iteration count is reported)
        w = 1.0 / (vi + tau2)
        xtw = X.T * w
        P = np.diag(w) - xtw.T @ np.linalg.solve(xtw @ X, xtw)
        Py = P @ yi
        PP_tr = float(np.sum(P * P.T))
        step = (float(Py @ Py) - float(np.trace(P))) / PP_tr
        new = tau2 + step
        while new < 0:
            step /= 2
            new = tau2 + step
            if abs(step) < tol:
                new = 0.0
                break
        done = abs(new - tau2) < tol
        tau2 = new
        if done:
            break
    else:
        log.warning("REML did not converge in %d iterations", max_iter)
    return _fit_at_tau2(yi, vi, X, tau2, names, "REML", it)


def _check_variance(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a variance [ln-ratio²], got {value!r}", argument=name) from None
    if not (np.isfinite(value) and value >= 0):
        raise InputError(f"variance {value:g} must be finite and >= 0 [ln-ratio²]", argument=name)
    return value


def _fit_at_tau2(yi, vi, X, tau2, names, method, iterations):
    """GLS coefficients, heterogeneity statistics, HKSJ factor and REML log-likelihood at tau²."""
    w = 1.0 / (vi + tau2)
    xtw = X.T * w
    P = np.diag(w) - xtw.T @ np.linalg.solve(xtw @ X, xtw)
    se_tau2 = float(np.sqrt(2.0 / np.sum(P * P.T))) if method == "REML" else float("nan")
    beta, cov = _gls(yi, vi, X, tau2)
    q, df, i2, h2 = _heterogeneity(yi, vi, X, tau2)
    return FrequentistResult(
        method,
        beta,
        np.sqrt(np.diag(cov)),
        _names(names, X.shape[1]),
        float(tau2),
        se_tau2,
        q,
        df,
        i2,
        h2,
        yi.size,
        iterations,
        hksj_scale=_hksj_scale(yi, vi, X, tau2, beta),
        vcov=cov,
        loglik=_reml_loglik(yi, vi, X, tau2, beta),
    )


def _names(names, p):
    if names is None:
        return ("intercept", *tuple(f"x{j}" for j in range(1, p)))
    names = tuple(str(n) for n in names)
    if len(names) != p:
        raise InputError(f"got {len(names)} names for {p} coefficients", argument="names")
    return names


def _dl_tau2(yi, vi, X):
    """DerSimonian–Laird (method of moments) tau² with moderators (metafor's 'DL')."""
    k, p = X.shape
    w = 1.0 / vi
    xtw = X.T * w
    P = np.diag(w) - xtw.T @ np.linalg.solve(xtw @ X, xtw)
    q = float(yi @ P @ yi)
    return max(0.0, (q - (k - p)) / float(np.trace(P)))


def _combine(yi, vi, method_re, label):
    from statsmodels.stats.meta_analysis import combine_effects

    yi, vi, X = _check_yi_vi(yi, vi)
    kwds = {"atol": 1e-10, "maxiter": 500} if method_re == "iterated" else {}
    res = combine_effects(yi, vi, method_re=method_re, **kwds)
    tau2 = float(res.tau2)
    q, df, i2, h2 = _heterogeneity(yi, vi, X, tau2)
    beta = np.array([float(res.mean_effect_re)])
    se = np.array([float(res.sd_eff_w_re)])
    return FrequentistResult(
        label,
        beta,
        se,
        ("intercept",),
        tau2,
        float("nan"),
        q,
        df,
        i2,
        h2,
        yi.size,
        hksj_scale=_hksj_scale(yi, vi, X, tau2, beta),
        vcov=np.diag(se**2),
    )


def dersimonian_laird(yi, vi) -> FrequentistResult:
    """DerSimonian–Laird random-effects estimate [2]_ via statsmodels ``combine_effects``.

    References
    ----------
    .. [2] R. DerSimonian, N. Laird, "Meta-analysis in clinical trials", Controlled Clinical Trials
       7(3), 177-188, 1986. doi:10.1016/0197-2456(86)90046-2
    """
    return _combine(yi, vi, "chi2", "DL")


def paule_mandel(yi, vi) -> FrequentistResult:
    """Paule–Mandel random-effects estimate [3]_ via statsmodels ``combine_effects``.

    References
    ----------
    .. [3] R. C. Paule, J. Mandel, "Consensus values and weighting factors", Journal of Research of
       the National Bureau of Standards 87(5), 377-385, 1982. doi:10.6028/jres.087.022
    """
    return _combine(yi, vi, "iterated", "PM")


def frequentist(yi, vi, method="REML", X=None, names=None) -> FrequentistResult:
    """Dispatch to :func:`reml`, :func:`dersimonian_laird` or :func:`paule_mandel`."""
    check_choice("method", method, ("REML", "DL", "PM"))
    if method == "REML":
        return reml(yi, vi, X, names=names)
    if X is not None and np.asarray(X).ndim == 2 and np.asarray(X).shape[1] > 1:
        raise InputError("moderators are only supported with method='REML'", argument="X")
    return dersimonian_laird(yi, vi) if method == "DL" else paule_mandel(yi, vi)


# --------------------------------------------------------------------------- multilevel REML


@dataclass(frozen=True)
class MultilevelResult(_Coefficients):
    """REML fit of conditions nested in studies (metafor ``rma.mv(random = ~1 | study/condition)``).

    Attributes
    ----------
    beta, se : numpy.ndarray
        Coefficients [ln ratio] and Wald standard errors [ln ratio].
    vcov : numpy.ndarray
        Covariance of ``beta`` (p, p) [ln-ratio²].
    names : tuple of str
    sigma2_study, sigma2_condition : float
        Between-study and between-condition-within-study variances [ln-ratio²].
    loglik : float
        Restricted log-likelihood at the estimate, metafor's form (``+ log det(X'X) / 2``).
    k, n_studies : int
        Effect sizes (conditions) and studies.
    identified : bool
        False when every study has one condition: the likelihood then depends only on
        ``sigma2_study + sigma2_condition``, which is split equally (see
        :func:`reml_multilevel`).
    iterations : int
    converged : bool
    note : str
        Why a component was fixed or split, else empty.
    """

    beta: np.ndarray
    se: np.ndarray
    vcov: np.ndarray
    names: tuple
    sigma2_study: float
    sigma2_condition: float
    loglik: float
    k: int
    n_studies: int
    identified: bool
    iterations: int
    converged: bool
    note: str = ""

    @property
    def sigma2(self) -> np.ndarray:
        """``[sigma2_study, sigma2_condition]`` in metafor's order [ln-ratio²]."""
        return np.array([self.sigma2_study, self.sigma2_condition])

    def conf_int(self, level=0.95) -> np.ndarray:
        """Wald confidence intervals of the coefficients, shape (p, 2) [ln ratio]."""
        z = float(stats.norm.ppf(0.5 + _check_level(level) / 2))
        return np.column_stack([self.beta - z * self.se, self.beta + z * self.se])

    def summary_frame(self, level=0.95):
        """Coefficient table: ``coef``, ``se``, ``statistic`` (z), ``p_value``, ``ci_low``,
        ``ci_upp`` [ln ratio], indexed by coefficient name."""
        import pandas as pd

        ci = self.conf_int(level)
        z = self.beta / self.se
        return pd.DataFrame(
            {
                "coef": self.beta,
                "se": self.se,
                "statistic": z,
                "df": np.inf,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
                "ci_low": ci[:, 0],
                "ci_upp": ci[:, 1],
            },
            index=pd.Index(list(self.names), name="coefficient"),
        )

    def to_dataframe(self, level=0.95):
        """The coefficient table as numbers (:meth:`summary_frame`)."""
        return self.summary_frame(level)

    def summary(self, level=0.95):
        """The fit as a printable :class:`~retrosim.bayes.results.Summary` (Wald intervals)."""
        header = [
            f"sigma² study      {self.sigma2_study:10.4f}",
            f"sigma² condition  {self.sigma2_condition:10.4f}",
            f"studies {self.n_studies}, REML iterations {self.iterations}, "
            f"converged {self.converged}, identified {self.identified}",
        ] + ([self.note] if self.note else [])
        title = f"Multilevel random-effects meta-analysis (k = {self.k} conditions)"
        return _coefficient_summary(self.summary_frame(level), title, header, "z", level)

    def __str__(self) -> str:
        return self.summary().as_text()

    def prediction_interval(self, level=0.95, x=None, pi_type="default"):
        """``b ± z sqrt(se² + sigma2_study + sigma2_condition)`` [ln ratio] (metafor
        ``predict.rma.mv`` without an inner G structure); see :func:`predict`."""
        pred = predict(self, x=x, level=level, pi_type=pi_type)
        out = pred[["pi_lb", "pi_ub"]].to_numpy()
        x_arr = None if x is None else np.asarray(x, dtype=float)
        return out[0] if x_arr is None or x_arr.ndim < 2 else out


class _NestedREML:
    """Restricted likelihood, score and expected information of the two-component model.

    Marginal covariance of study block ``i``: ``V_i = diag(v + c) + s 1 1'`` (``s`` between
    studies, ``c`` between conditions). With ``d = 1 / (v + c)``, ``S_i = sum_i d`` and
    ``a_i = s / (1 + s S_i)`` the Sherman–Morrison formula gives
    ``V_i^-1 = diag(d) - a_i d d'`` and ``log det V_i = sum log(v + c) + log(1 + s S_i)``, so
    every quantity below is a sum over rows or over studies: O(k p²) per evaluation, no k×k
    matrix. With ``P = V^-1 - V^-1 X A^-1 X' V^-1`` (``A = X' V^-1 X``) and the derivatives
    ``dV/dc = I``, ``dV/ds = Z Z'`` (``Z`` the study indicator)::

        score_j = (y' P V_j P y - tr(P V_j)) / 2,   info_jl = tr(P V_j P V_l) / 2
    """

    def __init__(self, yi, vi, X, groups, n_groups):
        self.y, self.v, self.X, self.g = yi, vi, X, groups
        k, p = X.shape
        self.Z = sparse.csr_matrix(
            (np.ones(k), (np.arange(k), groups)), shape=(k, n_groups)
        ).tocsc()
        self.const = -0.5 * (k - p) * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(X.T @ X)[1]

    def _gsum(self, a):
        return self.Z.T @ a

    def evaluate(self, s, c, info=True):
        y, v, X, g = self.y, self.v, self.X, self.g
        p = X.shape[1]
        d = 1.0 / (v + c)
        S = self._gsum(d)
        a = s / (1.0 + s * S)

        def vinv(M):
            dm = d[:, None] * M
            return dm - (a[:, None] * self._gsum(dm))[g] * d[:, None]

        VM = vinv(np.column_stack([X, y]))
        VX, Vy = VM[:, :p], VM[:, p]
        A = X.T @ VX
        A_inv = np.linalg.inv(A)
        beta = A_inv @ (X.T @ Vy)
        Pr = Vy - VX @ beta
        rss = float((y - X @ beta) @ Pr)
        logdet_v = float(np.sum(np.log(v + c)) + np.sum(np.log1p(s * S)))
        ll = self.const - 0.5 * logdet_v - 0.5 * np.linalg.slogdet(A)[1] - 0.5 * rss
        out = {"ll": float(ll), "beta": beta, "vcov": A_inv}
        if not info:
            return out
        h = S / (1.0 + s * S)  # Z' V^-1 Z (diagonal)
        Sd2 = self._gsum(d**2)
        tr_vinv = float(np.sum(d) - np.sum(a * Sd2))
        VtV = VX.T @ VX
        C1 = A_inv @ VtV
        B = self._gsum(VX)  # Z' V^-1 X
        BtB = B.T @ B
        C2 = A_inv @ BtB
        tr_p = tr_vinv - np.trace(C1)
        tr_zpz = float(np.sum(h) - np.trace(C2))
        zPr = self._gsum(Pr)
        score = 0.5 * np.array([zPr @ zPr - tr_zpz, Pr @ Pr - tr_p])
        # tr(P P)
        tr_vinv2 = float(np.sum(d**2) - 2 * np.sum(a * self._gsum(d**3)) + np.sum(a**2 * Sd2**2))
        tr_pp = tr_vinv2 - 2 * np.trace(A_inv @ (VX.T @ vinv(VX))) + np.trace(C1 @ C1)
        # ||Z' P Z||_F²
        diag_bab = np.sum((B @ A_inv) * B, axis=1)
        zpz2 = float(np.sum(h**2) - 2 * np.sum(h * diag_bab) + np.trace(C2 @ C2))
        # ||P Z||_F²; V^-1 Z has the entry e = d / (1 + s S) in each row's study column
        e = d / (1.0 + s * S[g])
        Cm = self._gsum(e[:, None] * VX)
        pz2 = float(np.sum(e**2) - 2 * np.trace(A_inv @ (B.T @ Cm)) + np.trace(C2 @ C1))
        out["score"] = score
        out["info"] = 0.5 * np.array([[zpz2, pz2], [pz2, tr_pp]])
        return out


def _study_codes(study, k):
    import pandas as pd

    study = np.asarray(study, dtype=object).ravel()
    if study.size != k:
        raise InputError(f"study has {study.size} labels but yi has {k} values", argument="study")
    codes, uniques = pd.factorize(pd.Series(study), use_na_sentinel=True)
    if np.any(codes < 0):
        raise InputError(
            f"study label missing in row {int(np.flatnonzero(codes < 0)[0]) + 1}",
            argument="study",
        )
    return codes.astype(np.intp), len(uniques)


def reml_multilevel(
    yi, vi, study, X=None, *, names=None, tol=1e-10, max_iter=500, sigma2=None
) -> MultilevelResult:
    """REML fit of a three-level model: effect sizes (conditions) nested in studies.

    ``y = X b + u_study + u_condition + e`` with ``u_study ~ N(0, sigma2_study)`` shared by the
    rows of a study, ``u_condition ~ N(0, sigma2_condition)`` per row and ``e ~ N(0, vi)``:
    the model of metafor ``rma.mv(yi, vi, random = ~ 1 | study/condition)`` with one
    condition per row [1]_ [10]_. The marginal covariance of a study block is
    ``diag(vi + sigma2_condition) + sigma2_study 1 1'``, inverted block-wise by
    Sherman–Morrison (no k×k matrix is formed).

    The restricted log-likelihood (metafor's form, including ``+ log det(X'X) / 2``) is
    maximised by Fisher scoring over ``(sigma2_study, sigma2_condition) >= 0`` with exact score
    and expected information, step halving when the likelihood does not increase, and a
    component fixed at 0 while it sits on the boundary with a non-positive score (metafor,
    which optimises log-variances, reports such a component as a value below ``1e-10``,
    rounded to 0 when under ``10 machine epsilon``). The starting value is metafor's: half of
    ``max(0.002, var(y - X b_FE) - 1 / mean(1 / vi))`` for each component.

    Edge cases (documented choices):

    * every study has one condition: the two components are not separately identified (the
      likelihood depends only on their sum); the sum is the univariate REML tau² and it is
      split equally, which is what metafor's optimiser does from its equal starting values.
      ``identified`` is False.
    * a single study: ``sigma2_study`` is fixed at 0, as metafor does for a one-level factor.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes [ln ratio] and sampling variances [ln-ratio²], one row per condition.
    study : array_like
        Study label of each row (any hashable values).
    X : array_like, optional
        Design matrix (k, p) including the intercept column; default intercept only.
    names : sequence of str, optional
    tol : float
        Convergence: largest change of a component below ``tol * mean(vi)``.
    max_iter : int
    sigma2 : (float, float), optional
        Fix ``(sigma2_study, sigma2_condition)`` [ln-ratio²] instead of estimating them
        (metafor ``rma.mv(sigma2=)``); ``note`` then says so.

    Returns
    -------
    MultilevelResult

    References
    ----------
    .. [1] W. Viechtbauer, "Conducting meta-analyses in R with the metafor package", Journal of
       Statistical Software 36(3), 1-48, 2010. doi:10.18637/jss.v036.i03
    .. [10] S. Konstantopoulos, "Fixed effects and variance components estimation in three-level
       meta-analysis", Research Synthesis Methods 2(1), 61-76, 2011. doi:10.1002/jrsm.35
    """
    yi, vi, X = _check_yi_vi(yi, vi, X)
    k, p = X.shape
    groups, m = _study_codes(study, k)
    names = _names(names, p)
    model = _NestedREML(yi, vi, X, groups, m)
    w = 1.0 / vi
    b_fe = np.linalg.solve((X.T * w) @ X, (X.T * w) @ yi)
    total = max(0.002, float(np.var(yi - X @ b_fe, ddof=1)) - 1.0 / float(np.mean(w)))
    note = ""
    if sigma2 is not None:
        if np.size(sigma2) != 2:
            raise InputError(
                "expected two variances (sigma2_study, sigma2_condition) [ln-ratio²]",
                argument="sigma2",
            )
        theta = np.array([_check_variance("sigma2", v) for v in np.ravel(sigma2)])
        it, converged, note = 0, True, "variance components fixed (given)"
    elif m == k or m == 1:
        # Only the condition component is estimable (for m == k the two coincide).
        theta, it, converged = _fisher_scoring(
            model, np.array([0.0, total]), np.array([True, False]), tol * np.mean(vi), max_iter
        )
        if m == k:
            theta = np.array([theta[1] / 2, theta[1] / 2])
            note = (
                "every study has one condition: sigma2_study and sigma2_condition are not "
                "separately identified; their sum (the univariate REML tau²) is split equally"
            )
        else:
            note = "one study: sigma2_study fixed at 0"
    else:
        theta, it, converged = _fisher_scoring(
            model, np.array([total / 2, total / 2]), np.zeros(2, bool), tol * np.mean(vi), max_iter
        )
    ev = model.evaluate(*theta, info=False)
    vcov = ev["vcov"]
    return MultilevelResult(
        ev["beta"],
        np.sqrt(np.diag(vcov)),
        vcov,
        names,
        float(theta[0]),
        float(theta[1]),
        ev["ll"],
        k,
        m,
        m != k,
        it,
        converged,
        note,
    )


def _fisher_scoring(model, theta, fixed, tol, max_iter):
    """Projected Fisher scoring of ``(sigma2_study, sigma2_condition) >= 0``.

    ``fixed`` components keep their starting value. A component on the boundary with a
    non-positive score is held at 0 for that step; steps are halved until the restricted
    log-likelihood does not decrease. Returns ``(theta, iterations, converged)``; values below
    10 machine epsilon are set to 0.
    """
    ev = model.evaluate(*theta)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (iteration count is reported)
        score, info = ev["score"], ev["info"]
        free = ~fixed & ~((theta <= 0) & (score <= 0))
        step = np.zeros(2)
        if free.any():
            sub = info[np.ix_(free, free)]
            step[free] = np.linalg.lstsq(sub, score[free], rcond=None)[0]
        lam = 1.0
        while True:
            new = np.maximum(theta + lam * step, 0.0)
            ev_new = model.evaluate(*new)
            if ev_new["ll"] >= ev["ll"] - 1e-12 * (1 + abs(ev["ll"])) or lam < 1e-8:
                break
            lam /= 2
        change = float(np.max(np.abs(new - theta)))
        theta, ev = new, ev_new
        if change < tol:
            converged = True
            break
    if not converged:
        log.warning("multilevel REML did not converge in %d iterations", max_iter)
    return np.where(theta <= 10 * np.finfo(float).eps, 0.0, theta), it, converged


# --------------------------------------------------------------------------- small-study effects


@dataclass(frozen=True)
class RegressionTest:
    """Egger's regression test for funnel-plot asymmetry.

    Attributes
    ----------
    model : str
        'lm' (weighted least squares, multiplicative dispersion) or 'rma' (REML
        meta-regression on ``sei``).
    k : int
        Effect sizes.
    slope, se_slope : float
        Coefficient of ``sei`` (the asymmetry term) [dimensionless] and its standard error.
    statistic, df, p_value : float
        t (k - 2 df) for 'lm' and for 'rma' with HKSJ; z (``df`` inf) for 'rma' with Wald.
        Two-sided p of the slope.
    limit_estimate, limit_se, ci_low, ci_upp : float
        Intercept: the effect as ``sei -> 0`` [ln ratio], its SE and CI.
    tau2 : float
        Residual between-study variance of the 'rma' model [ln-ratio²]; NaN for 'lm'.
    underpowered : bool
        ``k < MIN_K_SMALL_STUDY`` (10; Sterne et al. 2011 [13]_).
    level : float

    References
    ----------
    .. [13] J. A. C. Sterne, A. J. Sutton, J. P. A. Ioannidis, et al., "Recommendations for
       examining and interpreting funnel plot asymmetry in meta-analyses of randomised controlled
       trials", BMJ 343, d4002, 2011. doi:10.1136/bmj.d4002
    """

    model: str
    k: int
    slope: float
    se_slope: float
    statistic: float
    df: float
    p_value: float
    limit_estimate: float
    limit_se: float
    ci_low: float
    ci_upp: float
    tau2: float
    underpowered: bool
    level: float


@dataclass(frozen=True)
class WLSFit:
    """PET or PEESE: weighted least squares ``yi ~ 1 + z``, weights ``1 / vi``.

    ``z`` is ``sei`` (PET) or ``vi`` (PEESE). Standard errors use the residual dispersion
    ``sum w r² / (k - 2)`` as R ``lm(weights = 1 / vi)`` does; tests are t with k - 2 df.

    Attributes
    ----------
    name : str
        'PET' or 'PEESE'.
    k : int
    intercept, se_intercept, t_intercept, p_intercept : float
        Effect as the standard error goes to 0 [ln ratio], its SE [ln ratio], t and two-sided p.
    ci_low, ci_upp : float
        t interval of the intercept [ln ratio].
    slope, se_slope, p_slope : float
        Coefficient of ``z`` ([dimensionless] for PET, [1 / ln ratio] for PEESE).
    df : int
        k - 2.
    dispersion : float
        Residual dispersion ``sum w r² / (k - 2)`` [dimensionless].
    underpowered : bool
        ``k < MIN_K_SMALL_STUDY``.
    level : float
    """

    name: str
    k: int
    intercept: float
    se_intercept: float
    t_intercept: float
    p_intercept: float
    ci_low: float
    ci_upp: float
    slope: float
    se_slope: float
    p_slope: float
    df: int
    dispersion: float
    underpowered: bool
    level: float


@dataclass(frozen=True)
class PetPeeseResult:
    """Conditional PET-PEESE estimate (Stanley & Doucouliagos 2014 [12]_).

    Attributes
    ----------
    pet, peese : WLSFit
    chosen : str
        'PEESE' if PET's intercept test rejects zero at ``alpha``, else 'PET'.
    estimate, se, ci_low, ci_upp, p_value : float
        The chosen model's intercept [ln ratio], SE, CI and p.
    alpha : float
        ``1 - level``.
    alternative : str
        'two-sided', 'greater' or 'less': the PET test used for the choice.
    rule : str
        The rule, in words.
    k : int
    underpowered : bool

    References
    ----------
    .. [12] T. D. Stanley, H. Doucouliagos, "Meta-regression approximations to reduce publication
       selection bias", Research Synthesis Methods 5(1), 60-78, 2014. doi:10.1002/jrsm.1095
    """

    pet: WLSFit
    peese: WLSFit
    chosen: str
    estimate: float
    se: float
    ci_low: float
    ci_upp: float
    p_value: float
    alpha: float
    alternative: str
    rule: str
    k: int
    underpowered: bool


def _check_small_study(yi, vi, what):
    yi, vi, _ = _check_yi_vi(yi, vi)
    if yi.size < 3:
        raise InputError(
            f"{what} needs at least 3 effect sizes (two coefficients and one residual degree "
            f"of freedom), got k = {yi.size}; with fewer than {MIN_K_SMALL_STUDY} it is "
            "underpowered anyway",
            argument="yi",
        )
    if np.ptp(vi) <= 1e-12 * np.max(vi):
        raise InputError(
            f"{what} needs effect sizes of different precision; all vi are equal "
            f"({vi[0]:g} ln-ratio²)",
            argument="vi",
        )
    return yi, vi


def _wls(yi, vi, z, name, level):
    """Weighted least squares of ``yi`` on ``[1, z]`` with weights ``1 / vi`` (R ``lm``)."""
    level = _check_level(level)
    k = yi.size
    X = np.column_stack([np.ones(k), z])
    w = 1.0 / vi
    xtw = X.T * w
    bread = np.linalg.inv(xtw @ X)
    beta = bread @ (xtw @ yi)
    resid = yi - X @ beta
    df = k - 2
    dispersion = float(np.sum(w * resid**2) / df)
    se = np.sqrt(np.diag(bread) * dispersion)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    pval = 2 * stats.t.sf(np.abs(t), df)
    crit = float(stats.t.ppf(0.5 + level / 2, df))
    return WLSFit(
        name,
        k,
        float(beta[0]),
        float(se[0]),
        float(t[0]),
        float(pval[0]),
        float(beta[0] - crit * se[0]),
        float(beta[0] + crit * se[0]),
        float(beta[1]),
        float(se[1]),
        float(pval[1]),
        df,
        dispersion,
        k < MIN_K_SMALL_STUDY,
        level,
    )


def pet(yi, vi, level=0.95) -> WLSFit:
    """Precision-effect test: WLS ``yi ~ sei``, weights ``1 / vi`` (Stanley & Doucouliagos [12]_).

    The intercept estimates the effect of a study with standard error 0; as R
    ``lm(yi ~ sei, weights = 1/vi)``. Needs k >= 3; ``underpowered`` when k < 10.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes [ln ratio] and sampling variances [ln-ratio²].
    level : float
        Coverage of the intercept's t interval.

    References
    ----------
    .. [12] T. D. Stanley, H. Doucouliagos, "Meta-regression approximations to reduce publication
       selection bias", Research Synthesis Methods 5(1), 60-78, 2014. doi:10.1002/jrsm.1095
    """
    yi, vi = _check_small_study(yi, vi, "PET")
    return _wls(yi, vi, np.sqrt(vi), "PET", level)


def peese(yi, vi, level=0.95) -> WLSFit:
    """Precision-effect estimate with standard error: WLS ``yi ~ vi``, weights ``1 / vi`` [12]_.

    As R ``lm(yi ~ vi, weights = 1/vi)``; the intercept is the effect at ``vi = 0``
    [ln ratio]. Needs k >= 3; ``underpowered`` when k < 10.

    References
    ----------
    .. [12] T. D. Stanley, H. Doucouliagos, "Meta-regression approximations to reduce publication
       selection bias", Research Synthesis Methods 5(1), 60-78, 2014. doi:10.1002/jrsm.1095
    """
    yi, vi = _check_small_study(yi, vi, "PEESE")
    return _wls(yi, vi, vi, "PEESE", level)


def pet_peese(yi, vi, level=0.95, alternative="two-sided") -> PetPeeseResult:
    """Conditional PET-PEESE estimate (Stanley & Doucouliagos 2014 [12]_).

    Rule used here: test PET's intercept against 0 with its t test (k - 2 df) at
    ``alpha = 1 - level``; if it rejects, report PEESE's intercept (a genuine effect is
    likely, and PEESE is less biased then), otherwise PET's. ``alternative`` chooses a
    two-sided test (default) or a one-sided one in the expected direction ('greater' /
    'less'); the choice is recorded in ``rule``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes [ln ratio] and sampling variances [ln-ratio²].
    level : float
        Coverage of the intervals; ``1 - level`` is the test level of the rule.
    alternative : {'two-sided', 'greater', 'less'}

    References
    ----------
    .. [12] T. D. Stanley, H. Doucouliagos, "Meta-regression approximations to reduce publication
       selection bias", Research Synthesis Methods 5(1), 60-78, 2014. doi:10.1002/jrsm.1095
    """
    check_choice("alternative", alternative, ("two-sided", "greater", "less"))
    fit_pet = pet(yi, vi, level)
    fit_peese = peese(yi, vi, level)
    alpha = round(1.0 - fit_pet.level, 12)
    t, df = fit_pet.t_intercept, fit_pet.df
    if alternative == "two-sided":
        p_rule = fit_pet.p_intercept
    elif alternative == "greater":
        p_rule = float(stats.t.sf(t, df))
    else:
        p_rule = float(stats.t.cdf(t, df))
    chosen = fit_peese if p_rule < alpha else fit_pet
    rule = (
        f"PEESE if PET's intercept differs from 0 ({alternative} t test, {df} df, "
        f"p < {alpha:g}), else PET; PET p = {p_rule:.4g}"
    )
    return PetPeeseResult(
        fit_pet,
        fit_peese,
        chosen.name,
        chosen.intercept,
        chosen.se_intercept,
        chosen.ci_low,
        chosen.ci_upp,
        chosen.p_intercept,
        alpha,
        alternative,
        rule,
        fit_pet.k,
        fit_pet.underpowered,
    )


def egger_test(yi, vi, model="lm", level=0.95, method="wald") -> RegressionTest:
    """Egger's regression test of funnel-plot asymmetry, as metafor ``regtest()`` [11]_.

    Classical form: regress ``yi / sei`` on ``1 / sei``; its intercept is the slope of the
    equivalent weighted regression ``yi ~ sei`` with weights ``1 / vi``, which is what is
    fitted and tested here.

    * ``model="lm"``: weighted least squares with multiplicative dispersion, t test with
      k - 2 df (metafor ``regtest(model="lm")``, Egger et al. 1997).
    * ``model="rma"``: REML meta-regression ``yi ~ sei`` with additive tau² (metafor's
      default ``regtest(model="rma")``), Wald z test of the slope, or HKSJ t test with
      ``method="hksj"``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes [ln ratio] and sampling variances [ln-ratio²]; k >= 3.
    model : {'lm', 'rma'}
    level : float
        Coverage of the limit-estimate interval.
    method : {'wald', 'hksj', 'hksj_modified'}
        Inference of the 'rma' model.

    Returns
    -------
    RegressionTest
        ``underpowered`` is True for k < 10: Sterne et al. (2011) [13]_ recommend these tests
        only with at least 10 studies.

    References
    ----------
    .. [11] M. Egger, G. Davey Smith, M. Schneider, C. Minder, "Bias in meta-analysis detected by a
       simple, graphical test", BMJ 315(7109), 629-634, 1997. doi:10.1136/bmj.315.7109.629
    .. [13] J. A. C. Sterne, A. J. Sutton, J. P. A. Ioannidis, et al., "Recommendations for
       examining and interpreting funnel plot asymmetry in meta-analyses of randomised controlled
       trials", BMJ 343, d4002, 2011. doi:10.1136/bmj.d4002
    """
    check_choice("model", model, ("lm", "rma"))
    level = _check_level(level)
    yi, vi = _check_small_study(yi, vi, "Egger's test")
    sei = np.sqrt(vi)
    if model == "lm":
        fit = _wls(yi, vi, sei, "Egger", level)
        return RegressionTest(
            "lm",
            fit.k,
            fit.slope,
            fit.se_slope,
            fit.slope / fit.se_slope,
            float(fit.df),
            fit.p_slope,
            fit.intercept,
            fit.se_intercept,
            fit.ci_low,
            fit.ci_upp,
            float("nan"),
            fit.underpowered,
            level,
        )
    fit = reml(yi, vi, np.column_stack([np.ones_like(yi), sei]), names=["intrcpt", "sei"])
    frame = fit.summary_frame(level, method)
    slope, icpt = frame.loc["sei"], frame.loc["intrcpt"]
    return RegressionTest(
        "rma",
        fit.k,
        float(slope.coef),
        float(slope.se),
        float(slope.statistic),
        float(slope.df),
        float(slope.p_value),
        float(icpt.coef),
        float(icpt.se),
        float(icpt.ci_low),
        float(icpt.ci_upp),
        fit.tau2,
        fit.k < MIN_K_SMALL_STUDY,
        level,
    )


def _place_labels(ax, x, y, labels):
    """Annotate points, trying four offsets per label and keeping the first that overlaps no
    marker and no earlier label and stays inside the axes (greedy; else the first offset)."""
    candidates = [((4, 2), "left", "bottom"), ((-4, 2), "right", "bottom")]
    candidates += [((4, -2), "left", "top"), ((-4, -2), "right", "top")]
    from matplotlib.transforms import Bbox

    get = getattr(ax.figure.canvas, "get_renderer", None)  # Agg canvases; else a bare Figure
    renderer = get() if get is not None else ax.figure._get_renderer()
    inside = ax.get_window_extent(renderer)
    r = 2.5 * ax.figure.dpi / 72  # marker radius [pixels]
    pts = ax.transData.transform(np.column_stack([x, y]))
    placed = [Bbox([[px - r, py - r], [px + r, py + r]]) for px, py in pts]
    for xv, yv, text in zip(x, y, labels, strict=True):
        chosen = None
        for offset, ha, va in candidates:
            ann = ax.annotate(
                str(text),
                (xv, yv),
                xytext=offset,
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=5,
            )
            box = ann.get_window_extent(renderer)
            ok = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
            ok = ok and box.y1 <= inside.y1 and not any(box.overlaps(b) for b in placed)
            if ok or chosen is None:
                if chosen is not None:
                    chosen[0].remove()
                chosen = (ann, box)
                if ok:
                    break
            else:
                ann.remove()
        placed.append(chosen[1])


def funnel_plot(
    yi,
    vi,
    ax=None,
    *,
    estimate=None,
    levels=(0.95, 0.99),
    se_max=None,
    color="0.15",
    marker="o",
    labels=None,
):
    """Funnel plot: effect sizes against their standard error, with pseudo-confidence contours.

    The vertical axis (standard error) is inverted so precise studies are at the top
    (Sterne et al. 2011 [13]_). Around ``estimate`` the lines ``estimate ± z_level se`` show
    where effect sizes would fall (with probability ``level``) if they scattered by sampling
    error alone; the innermost region is shaded.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes [ln ratio] and sampling variances [ln-ratio²].
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made (pyplot imported only then) when omitted.
    estimate : float, optional
        Centre of the contours [ln ratio]; default the REML pooled estimate (the single
        effect size when k = 1).
    levels : sequence of float
        Coverages of the pseudo-confidence contours.
    se_max : float, optional
        Largest standard error shown; default 1.1 times the largest.
    color, marker : str
        Style of the effect-size markers.
    labels : sequence of str, optional
        Annotate each point.

    Returns
    -------
    matplotlib.axes.Axes

    References
    ----------
    .. [13] J. A. C. Sterne, A. J. Sutton, J. P. A. Ioannidis, et al., "Recommendations for
       examining and interpreting funnel plot asymmetry in meta-analyses of randomised controlled
       trials", BMJ 343, d4002, 2011. doi:10.1136/bmj.d4002
    """
    if np.size(yi) == 1:
        yi_arr, vi_arr, _ = _check_yi_vi(np.repeat(yi, 2), np.repeat(vi, 2))
        yi_arr, vi_arr = yi_arr[:1], vi_arr[:1]
    else:
        yi_arr, vi_arr, _ = _check_yi_vi(yi, vi)
    levels = [_check_level(lv) for lv in np.atleast_1d(levels)]
    if labels is not None and len(labels) != yi_arr.size:
        raise InputError(f"got {len(labels)} labels for {yi_arr.size} points", argument="labels")
    if estimate is None:
        estimate = reml(yi_arr, vi_arr).estimate if yi_arr.size > 1 else float(yi_arr[0])
    se = np.sqrt(vi_arr)
    top = float(se_max) if se_max is not None else 1.1 * float(se.max())
    if not top > 0:
        raise InputError(f"se_max must be positive, got {se_max!r} [ln ratio]", argument="se_max")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    grid = np.linspace(0.0, top, 50)
    styles = ["--", ":", "-."]
    for j, lv in enumerate(sorted(levels)):
        z = float(stats.norm.ppf(0.5 + lv / 2))
        lo, hi = estimate - z * grid, estimate + z * grid
        if j == 0:
            ax.fill_betweenx(grid, lo, hi, color="0.92", lw=0, zorder=0)
        ls = styles[j % len(styles)]
        ax.plot(lo, grid, ls=ls, color="0.45", lw=0.8, label=f"{100 * lv:g} % pseudo-CI")
        ax.plot(hi, grid, ls=ls, color="0.45", lw=0.8)
    ax.axvline(estimate, color="0.3", lw=0.8)
    ax.plot(yi_arr, se, ls="none", marker=marker, color=color, ms=4, zorder=3)
    ax.margins(x=0.1)
    ax.set_ylim(top, 0.0)
    ax.set_xlabel("ln(backward / forward)")
    ax.set_ylabel("standard error")
    if labels is not None:  # last, so the label boxes are measured in the final data limits
        _place_labels(ax, yi_arr, se, labels)
    return ax
