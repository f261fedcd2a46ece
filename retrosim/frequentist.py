"""Frequentist random-effects meta-analysis: the cross-checks of the Bayesian model.

Effect size ``yi = ln(backward / forward)`` with sampling variance ``vi`` (see
:func:`retrosim.evidence.effect_sizes`).

* :func:`reml` — restricted maximum likelihood for the between-study variance tau², by Fisher
  scoring (the default of the R package metafor, ``rma(method="REML")`` [1]_), with optional
  moderators (meta-regression). Implemented here.
* :func:`dersimonian_laird` [2]_ and :func:`paule_mandel` [3]_ — through statsmodels
  ``statsmodels.stats.meta_analysis.combine_effects`` (``method_re="chi2"`` and ``"iterated"``).

References
----------
.. [1] W. Viechtbauer, "Conducting meta-analyses in R with the metafor package", Journal of
   Statistical Software 36(3), 1-48, 2010. doi:10.18637/jss.v036.i03
.. [2] R. DerSimonian, N. Laird, "Meta-analysis in clinical trials", Controlled Clinical Trials
   7(3), 177-188, 1986. doi:10.1016/0197-2456(86)90046-2
.. [3] R. C. Paule, J. Mandel, "Consensus values and weighting factors", Journal of Research of
   the National Bureau of Standards 87(5), 377-385, 1982. doi:10.6028/jres.087.022
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._checks import check_choice
from .errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "FrequentistResult",
    "dersimonian_laird",
    "frequentist",
    "paule_mandel",
    "reml",
]


@dataclass(frozen=True)
class FrequentistResult:
    """A random-effects (meta-regression) fit: coefficients, tau² and heterogeneity statistics.

    Attributes
    ----------
    method : str
        'REML', 'DL' or 'PM'.
    beta, se : numpy.ndarray
        Coefficients (ln ratio) and their standard errors (Wald, known tau²).
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

    @property
    def estimate(self) -> float:
        """The first coefficient (the pooled effect without moderators)."""
        return float(self.beta[0])

    def conf_int(self, level=0.95) -> np.ndarray:
        """Wald confidence intervals, shape (p, 2)."""
        z = stats.norm.ppf(0.5 + level / 2)
        return np.column_stack([self.beta - z * self.se, self.beta + z * self.se])

    def summary(self) -> str:
        """A statsmodels-like text table."""
        ci = self.conf_int()
        zval = self.beta / self.se
        pval = 2 * stats.norm.sf(np.abs(zval))
        lines = [
            f"Random-effects meta-analysis (k = {self.k}; tau² estimator: {self.method})",
            "=" * 74,
            f"tau²  {self.tau2:10.4f}"
            + (f"  (SE {self.se_tau2:.4f})" if np.isfinite(self.se_tau2) else ""),
            f"tau   {np.sqrt(self.tau2):10.4f}",
            f"I²    {self.i2:9.2f} %     H²  {self.h2:.2f}",
            f"Q({self.df_q}) = {self.q:.4f}, p = {stats.chi2.sf(self.q, self.df_q):.4g}",
            "-" * 74,
            f"{'':<14}{'coef':>10}{'se':>10}{'z':>10}{'p':>10}{'[0.025':>10}{'0.975]':>10}",
        ]
        for i, name in enumerate(self.names):
            lines.append(
                f"{name:<14}{self.beta[i]:10.4f}{self.se[i]:10.4f}{zval[i]:10.3f}"
                f"{pval[i]:10.4f}{ci[i, 0]:10.4f}{ci[i, 1]:10.4f}"
            )
        lines.append("=" * 74)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


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
    if yi.size <= X.shape[1]:
        raise InputError(
            f"need more effect sizes ({yi.size}) than coefficients ({X.shape[1]})", argument="yi"
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
    return beta, np.sqrt(np.diag(cov))


def reml(yi, vi, X=None, *, names=None, tol=1e-10, max_iter=200) -> FrequentistResult:
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
    """
    yi, vi, X = _check_yi_vi(yi, vi, X)
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
    w = 1.0 / (vi + tau2)
    xtw = X.T * w
    P = np.diag(w) - xtw.T @ np.linalg.solve(xtw @ X, xtw)
    se_tau2 = float(np.sqrt(2.0 / np.sum(P * P.T)))
    beta, se = _gls(yi, vi, X, tau2)
    q, df, i2, h2 = _heterogeneity(yi, vi, X, tau2)
    names = tuple(names) if names is not None else _default_names(X.shape[1])
    return FrequentistResult(
        "REML", beta, se, names, float(tau2), se_tau2, q, df, i2, h2, yi.size, it
    )


def _default_names(p):
    return ("intercept", *tuple(f"x{j}" for j in range(1, p)))


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
    return FrequentistResult(
        label,
        np.array([float(res.mean_effect_re)]),
        np.array([float(res.sd_eff_w_re)]),
        ("intercept",),
        tau2,
        float("nan"),
        q,
        df,
        i2,
        h2,
        yi.size,
    )


def dersimonian_laird(yi, vi) -> FrequentistResult:
    """DerSimonian–Laird random-effects estimate [2]_ via statsmodels ``combine_effects``."""
    return _combine(yi, vi, "chi2", "DL")


def paule_mandel(yi, vi) -> FrequentistResult:
    """Paule–Mandel random-effects estimate [3]_ via statsmodels ``combine_effects``."""
    return _combine(yi, vi, "iterated", "PM")


def frequentist(yi, vi, method="REML", X=None, names=None) -> FrequentistResult:
    """Dispatch to :func:`reml`, :func:`dersimonian_laird` or :func:`paule_mandel`."""
    check_choice("method", method, ("REML", "DL", "PM"))
    if method == "REML":
        return reml(yi, vi, X, names=names)
    if X is not None and np.asarray(X).ndim == 2 and np.asarray(X).shape[1] > 1:
        raise InputError("moderators are only supported with method='REML'", argument="X")
    return dersimonian_laird(yi, vi) if method == "DL" else paule_mandel(yi, vi)
