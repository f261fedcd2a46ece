"""Direction-only results ("backward > forward, p < 0.05", "no difference") as likelihood terms.

Most reports of backward versus forward locomotion give no means, only a direction and a
significance class. Such a statement is information about the study's effect ``theta_i``: the
study's own estimate ``y_i = ln(backward/forward)``, which it did not report, fell in a region
of the real line fixed by its test. This module turns a statement into that region; the
Bayesian meta-regression (:mod:`retrosim.meta.model`) then treats ``y_i`` as an interval-censored
observation (data augmentation: ``y_i`` is sampled inside its region with the numeric rows'
joint normal likelihood), which is the exact likelihood ``P(reported class | theta_i)`` of the
vote-counting estimators in the tradition of Hedges & Olkin [1]_ and Bushman & Wang [2]_,
extended to a random-effects meta-regression.

The region
----------
A paired test of ``n`` people rejects "no difference" at level ``p`` when the t statistic
``t = y / se`` exceeds ``c(p) = t_{n-1, 1 - p/2}`` in absolute value (two-sided). With ``se``
the standard error of ``y`` (below), a statement maps to bounds on ``t``:

=======================================  ==============================================
statement                                region of ``t``
=======================================  ==============================================
B > F, p < P (or p <= P)                 ``t > c(P)``
B > F, p = P                             ``t = c(P)`` (a point: the statistic is known)
B > F, significant, p not given          ``t > c(0.05)``
B > F, p > P (direction, n.s.)           ``0 < t < c(P)``
B > F, significance not stated           ``t > 0``
no difference (p > P, or not given)      ``|t| < c(P)`` (``P`` = 0.05 when not given)
no difference, p = P (sign not given)    ``|t| < c(0.05)`` (a superset: the sign of the
                                         known ``|t|`` is not reported)
B < F, ...                               the mirror images
=======================================  ==============================================

The standard error
------------------
``se_i² = sigma_f²(r) / n_i``, with ``sigma_f`` the between-person SD of the ln ratio (the SD of
each person's ln(backward/forward)) in analysis family ``f``. It is pooled from the family's
numeric rows with reported dispersion, exactly as the imputation of
:func:`retrosim.evidence.tables.effect_sizes` pools a per-subject variance: ``sigma_f²(r) =
mean_j n_j v_j(r)``, where ``v_j(r) = v_forward + v_backward - 2 r sqrt(v_forward v_backward)``
for paired rows (so ``sigma_f²`` moves with the sampled forward-backward correlation ``r``) and
``v_j = vi`` otherwise. Hence ``sigma_f²(r) = P_f - r Q_f`` (:func:`donor_variance_terms`). A
family without such rows borrows from the evidence's outcome family, then from all rows (and
says so). The sample SD of a study is replaced by the population ``sigma_f``, the usual
approximation of vote counting with a known variance [2]_; using the t rather than the normal
critical value keeps the thresholds of small studies (n = 4 to 10 here) where their tests put
them.

A result is never counted twice: rows of reports the data mark as not independent are left out
by :func:`retrosim.evidence.tables.direction_statements`, and :func:`direction_rows` leaves out a
statement when the same study cluster already reports a number in the same analysis family (its
numbers supersede its summary sentence) or when the report gives no sample size. A family with
no numeric row at all (knee adduction moment, knee compressive force) is left out too: its
between-person SD would be borrowed from other outcomes and its effect size identified only by
signs, and such families (no claim uses them) made NUTS diverge through their heterogeneity.

References
----------
.. [1] L. V. Hedges, I. Olkin, *Statistical Methods for Meta-Analysis*, Academic Press, 1985,
   chapter 3 (vote-counting methods; estimating an effect size from the proportion of positive
   or significant results).
.. [2] B. J. Bushman, M. C. Wang, "Vote-counting procedures in meta-analysis", in H. Cooper,
   L. V. Hedges, J. C. Valentine (eds.), *The Handbook of Research Synthesis and
   Meta-Analysis*, 2nd ed., Russell Sage Foundation, 2009, chapter 11.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from scipy import stats

from retrosim.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "ALPHA_DEFAULT",
    "DIRECTION_CODES",
    "critical_t",
    "direction_rows",
    "donor_variance_terms",
    "t_bounds",
]

#: Significance level assumed when a source says "significant" or "no difference" without a p.
ALPHA_DEFAULT = 0.05
DIRECTION_CODES = {"backward>forward": 1, "backward<forward": -1, "no_difference": 0}


def critical_t(p, n) -> float:
    """Two-sided critical value ``t_{n-1, 1-p/2}`` of a paired t test of ``n`` people [1]."""
    p, n = float(p), float(n)
    if not (0.0 < p < 1.0):
        raise InputError(f"p value must be in (0, 1), got {p!r}", argument="p")
    if not n >= 2:
        raise InputError(f"a paired test needs n >= 2 people, got {n!r}", argument="n")
    return float(stats.t.ppf(1.0 - p / 2.0, n - 1.0))


def _blank(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x).strip() in ("", "nan")


def _flag(x):
    """true / false / None (not stated) from a CSV cell."""
    if _blank(x):
        return None
    if isinstance(x, bool | np.bool_):
        return bool(x)
    s = str(x).strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise InputError(f"expected true, false or empty, got {x!r}", column="result_significant")


def t_bounds(direction, n, *, p_relation=None, p_value=None, significant=None):
    """Region ``(t_lo, t_hi)`` of the t statistic implied by a statement (module table).

    Parameters
    ----------
    direction : {'backward>forward', 'backward<forward', 'no_difference'}
    n : float
        People in the paired comparison.
    p_relation : {'<', '<=', '=', '>'} or None
    p_value : float or None
    significant : bool or None
        Whether the source calls the difference statistically significant (None: not stated).

    Returns
    -------
    tuple of float
        ``(t_lo, t_hi)`` with ``-inf``/``inf`` for an open side; ``t_lo == t_hi`` for a
        reported exact p (a known statistic).
    """
    if direction not in DIRECTION_CODES:
        raise InputError(
            f"unknown direction {direction!r}; expected one of {', '.join(DIRECTION_CODES)}",
            column="direction",
        )
    rel = None if _blank(p_relation) else str(p_relation).strip()
    if rel not in (None, "<", "<=", "=", ">"):
        raise InputError(f"p relation {rel!r}: expected <, <=, =, > or empty", column="p_relation")
    p = None if _blank(p_value) else float(p_value)
    if (rel is None) != (p is None):
        raise InputError("a p relation needs a p value and vice versa", column="p_value")
    sig = _flag(significant)
    sign = DIRECTION_CODES[direction]
    if sign == 0:
        level = p if rel == ">" else ALPHA_DEFAULT
        c = critical_t(level, n)
        return -c, c
    if rel in ("<", "<="):
        lo, hi = critical_t(p, n), math.inf
    elif rel == "=":
        lo = hi = critical_t(p, n)
    elif rel == ">":
        lo, hi = 0.0, critical_t(p, n)
    elif sig is True:
        lo, hi = critical_t(ALPHA_DEFAULT, n), math.inf
    elif sig is False:
        lo, hi = 0.0, critical_t(ALPHA_DEFAULT, n)
    else:
        lo, hi = 0.0, math.inf
    return (lo, hi) if sign > 0 else (-hi, -lo)


def _parse_detail(detail: str):
    """(relation, p, significant) from a statement's free text, for evidence tables that
    predate the explicit ``result_p_relation`` / ``result_p_value`` / ``result_significant``
    columns."""
    import re

    m = re.search(r"\bp\s*(<=|≤|<|=|>)\s*(0?\.\d+)", detail, flags=re.IGNORECASE)
    rel = p = None
    if m:
        rel = {"≤": "<="}.get(m.group(1), m.group(1))
        p = float(m.group(2))
    low = detail.lower()
    if "not significant" in low or "n.s." in low:
        sig = False
    elif "significant" in low and "only" not in low:
        sig = True
    elif rel in ("<", "<=") and p is not None and p <= ALPHA_DEFAULT:
        sig = True
    else:
        sig = None
    if "only at" in low:  # e.g. "significant only at the fast speed": the p is not this row's
        rel = p = None
    return rel, p, sig


def donor_variance_terms(frame: pd.DataFrame, family_col: str = "family") -> pd.DataFrame:
    """``P`` and ``Q`` of ``sigma²(r) = P - r Q`` per analysis family (module docstring).

    ``frame`` holds numeric effect-size rows with ``n``, ``vi``, ``design`` and, where known,
    ``v_forward``, ``v_backward`` and ``dispersion_imputed``. Rows with an imputed dispersion or
    without ``n`` are no donors. Returns one row per family with columns ``P``, ``Q``,
    ``n_donors`` and ``donors`` (the row ids), for the families that have donors.
    """
    df = frame.copy()
    ok = df["n"].notna() & np.isfinite(df["vi"].astype(float))
    if "dispersion_imputed" in df.columns:
        ok &= ~df["dispersion_imputed"].fillna(False).astype(bool)
    df = df[ok]
    vf = df.get("v_forward", pd.Series(np.nan, index=df.index)).astype(float)
    vb = df.get("v_backward", pd.Series(np.nan, index=df.index)).astype(float)
    paired = (df["design"] == "within") & np.isfinite(vf) & np.isfinite(vb) & (vf > 0) & (vb > 0)
    n = df["n"].astype(float)
    df = df.assign(
        _P=np.where(paired, n * (vf + vb), n * df["vi"].astype(float)),
        _Q=np.where(paired, 2.0 * n * np.sqrt(np.where(paired, vf * vb, 0.0)), 0.0),
    )
    out = df.groupby(family_col).agg(
        P=("_P", "mean"), Q=("_Q", "mean"), n_donors=("_P", "size"), donors=("row_id", list)
    )
    return out


def direction_rows(
    statements: pd.DataFrame, effects: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Statements ready for the meta-regression, and the ones left out with the reason.

    Parameters
    ----------
    statements : pandas.DataFrame
        :func:`retrosim.evidence.tables.direction_statements` (independent reports only), possibly
        filtered to the analysis (e.g. by :func:`retrosim.meta.claims.analysis_rows`).
    effects : pandas.DataFrame, optional
        The numeric rows of the same analysis; a statement of a study cluster that already has a
        numeric row in the same analysis family is left out (never counted twice).

    Returns
    -------
    (rows, excluded)
        ``rows`` has the columns :meth:`retrosim.meta.model.MetaDesign.from_frame` needs
        (``yi``/``vi`` empty) plus ``row_kind = 'direction'``, ``t_lo``, ``t_hi``, ``direction``,
        ``p_relation``, ``p_value``, ``significant``; ``excluded`` has ``row_id`` and ``reason``.
    """
    st = statements.reset_index(drop=True).copy()
    if "speed_m_s" not in st.columns:
        st["speed_m_s"] = st.get("speed_forward_m_s", np.nan)
    fam = st["outcome_family"].astype(str)
    st["family"] = fam.where(fam != "gait", "gait:" + st["outcome"].astype(str))
    numeric_keys, numeric_families = set(), None
    if effects is not None and len(effects):
        ef = effects["outcome_family"].astype(str)
        efam = ef.where(ef != "gait", "gait:" + effects["outcome"].astype(str))
        numeric_keys = set(zip(effects["group_key"].astype(str), efam, strict=True))
        numeric_families = set(efam)
    rows, excluded = [], []
    for _, x in st.iterrows():
        rid = x["row_id"]
        if pd.isna(x.get("n")) or float(x["n"]) < 2:
            excluded.append((rid, "sample size not reported"))
            continue
        if numeric_families is not None and x["family"] not in numeric_families:
            excluded.append((rid, "no numeric row in this family to scale its standard error"))
            continue
        if (str(x["group_key"]), x["family"]) in numeric_keys:
            excluded.append((rid, "the study reports a number in this family (not counted twice)"))
            continue
        if "result_p_relation" in st.columns:
            rel, p, sig = x["result_p_relation"], x["result_p_value"], x["result_significant"]
        else:
            rel, p, sig = _parse_detail(str(x.get("detail", "")))
        try:
            lo, hi = t_bounds(
                x["direction"], float(x["n"]), p_relation=rel, p_value=p, significant=sig
            )
        except InputError as err:
            raise InputError(f"direction statement {rid}: {err}") from None
        rows.append(
            {
                **{k: x[k] for k in x.index if k not in ("family",)},
                "n": float(x["n"]),
                "yi": np.nan,
                "vi": np.nan,
                "row_kind": "direction",
                "t_lo": lo,
                "t_hi": hi,
                "p_relation": "" if _blank(rel) else str(rel),
                "p_value": np.nan if _blank(p) else float(p),
                "significant": _flag(sig),
                "design": x.get("design", "within") if not _blank(x.get("design")) else "within",
            }
        )
    out = pd.DataFrame(rows)
    exc = pd.DataFrame(excluded, columns=["row_id", "reason"])
    for rid, why in excluded:
        log.info("direction statement %s left out: %s", rid, why)
    return out, exc
