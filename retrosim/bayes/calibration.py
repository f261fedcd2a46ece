"""Calibration of the backward/forward direction effects on the published ratios.

Every backward quantity of the models is the forward one times ``exp(direction effect)``
(paired): the effects below are log ratios ``ln(backward / forward)`` at the same speed,

=======================  ==================================================  ===============
effect                   enters                                              module
=======================  ==================================================  ===============
``dir_step_frequency``   running step frequency                              :mod:`.gait`
``dir_contact_time``     running contact time                                :mod:`.gait`
``dir_muscle_volume``    running active muscle volume, times ``h(v)``        :mod:`.energetics`
``walk_log_ratio``,      walking net metabolic rate at 1.34 m/s and its      :mod:`.energetics`
``walk_log_slope``       change per m/s
``dir_knee_lever_arm``   GRF lever arm about the knee at peak moment         :mod:`.knee`
``dir_knee_flexion``     knee flexion at peak moment                         :mod:`.knee`
=======================  ==================================================  ===============

What is fitted to what
----------------------
Data: the rows of :func:`retrosim.evidence.tables.effect_sizes` whose outcome a model predicts
(energy, step frequency, peak vertical force, knee moment, knee angle, ...), selected by their
properties (outcome, mode, speed matching, grade class, primary, independence), never by
position. Each row gives ``y_i = ln(backward/forward)`` with sampling variance ``v_i``. At the
same speed every fitted quantity is *linear* in the effects, ``y_i ~ x_i . theta``::

    energy, running         -dir_contact_time + h(v) dir_muscle_volume     (Wright & Weyand 2001)
    energy, walking         walk_log_ratio + walk_log_slope (v - 1.34)
    step frequency          dir_step_frequency
    peak vertical force     -dir_step_frequency - dir_contact_time        (sine wave, F ~ 1/(f t_c))
    knee extensor moment    -dir_step_frequency - dir_contact_time + dir_knee_lever_arm
    knee flexion            dir_knee_flexion

(a ground reaction force at peak knee moment counts as a peak vertical force: the knee
model's assumption). Energy rows are compared on the **net** scale: a gross VO2 ratio becomes
``ln((B - R)/(F - R))`` with the source's own means and the ACSM resting VO2 ``R`` = 3.5
mL/kg/min (an assumption about the sample), its variance by the delta method; a ratio whose
basis the source does not state is read as net, with half the gross-net difference as extra
variance. A running row without a speed is evaluated at the mean of ``h`` over the validated
range, with the variance of ``h`` there times the prior variance of ``dir_muscle_volume`` as
extra variance.

Model::

    y_i ~ Normal(x_i . theta, v_i + e_i + tau_f(i)^2)
    theta_k ~ Normal(m_k, s_k)          (priors below)
    tau_energy, tau_mechanics ~ HalfNormal(0.2)

``tau_energy`` is the between-study SD of energy ratios, ``tau_mechanics`` that of every
mechanical ratio (gait, force, knee), shared because the knee has a single study. Given the two
SDs the posterior of ``theta`` is Gaussian in closed form; the SDs are integrated on a grid
(:data:`TAU_GRID`, the approach of exact random-effects meta-analysis), so the posterior is
exact up to the grid: no MCMC, no convergence question, milliseconds per fit, which is what
makes the leave-one-study-out checks of :func:`predictive_checks` cheap.

Priors: ``dir_step_frequency`` and ``dir_contact_time`` from Cavagna et al. 2012's stiffnesses
(:func:`retrosim.models.gait.prior_spec`); ``dir_muscle_volume ~ N(0, 0.2)`` (Wright & Weyand's +10 %
is kept out: it comes from the same four runners as their +35 % metabolic difference, which is
fitted, and serves as a hold-out check instead); the walking effects ``N(0, 0.5)`` each; the
knee effects ``N(0, 0.5)`` (Roos et al. 2012's paired ratios are data, not priors). These widths
are assumptions, stated here.

What is not fitted
------------------
* rows named in ``retrosim/data/parameters/holdout.csv`` (true hold-outs, with the reason);
* comparisons at different speeds in the two directions (predicted, never fitted);
* quantities that are predicted but not used: aerial time (depends on the forward levels),
  PFJ force (Roos's PFJ force is computed from the knee moment that is fitted; using both
  would count Roos twice) and muscle volume per unit force;
* graded conditions (no grade term), re-expressions (``primary = false``), reports that are not
  independent, and rows without a variance.

:func:`calibration_table` lists every modelled row with its status and the reason.

References
----------
.. [1] Wright S, Weyand PG. J Exp Biol 2001;204:1805-1815.
.. [2] Cavagna GA, Legramandi MA, La Torre A. J Exp Biol 2012;215:75-84.
   doi:10.1242/jeb.057562
.. [3] Hreljac A, Imamura R, Escamilla RF, Casebolt J, Sison M. Preferred and
   energetically optimal transition speeds during backward human locomotion. J Sports
   Sci Med 2005;4:446-454 (abstract: EOTS 1.85 +- 0.09 m/s; used to assign a mode to rows
   that do not state one).
.. [4] Roos PE, Barton N, van Deursen RWM. J Biomech 2012;45(9):1656-1660.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging

import numpy as np

from retrosim.bayes.results import PosteriorResults
from retrosim.config import DATA_DIR
from retrosim.errors import InputError
from retrosim.models import energetics as en
from retrosim.models import gait as ga
from retrosim.models import knee as kn
from retrosim.models.priors import EFFECTS, PRIOR_SD, SLOPE, prior_draws, priors

log = logging.getLogger(__name__)

MODEL_VERSION = "calibration-v2"
#: Backward energetically optimal walk-run transition speed [m/s] (Hreljac 2005 [3]_).
WALK_RUN_SPLIT_M_S = 1.85
WALK_REF_SPEED_M_S = en.direction_params_nominal()["walk_ref_speed_m_s"]
WALK_PRIOR = {"walk_log_ratio": (0.0, PRIOR_SD["walk_log_ratio"]),
              "walk_log_slope": (0.0, PRIOR_SD["walk_log_slope"])}  # fmt: skip
TAU_PRIOR_SD = 0.2
#: Grid of each between-study SD (log-ratio scale); HalfNormal(0.2) has 6e-5 of its mass above.
TAU_GRID = np.linspace(0.0, 0.8, 81)
TAUS = ("tau_energy", "tau_mechanics")
FITTED = EFFECTS + TAUS
#: Outcome -> quantity the models predict (other outcomes are not modelled).
QUANTITY = {
    "vo2_ml_kg_min": "energy",
    "vo2_pct_vo2max": "energy",
    "energy_cost_j_kg_m": "energy",
    "metabolic_rate_w_kg": "energy",
    "step_frequency_hz": "step_frequency",
    "contact_time_s": "contact_time",
    "aerial_time_s": "aerial_time",
    "vgrf_peak_bw": "peak_vgrf",
    "grf_magnitude_at_peak_moment_bw": "peak_vgrf",
    "knee_ext_moment_nm": "knee_moment",
    "knee_flexion_at_peak_moment_deg": "knee_flexion",
    "pfj_force_bw": "pfj_force",
    "pfj_force_n": "pfj_force",
    "active_muscle_volume_per_force": "muscle_volume",
}
#: Quantity -> between-study SD it shares.
TAU_OF = {"energy": "tau_energy"}
#: Quantities predicted but never fitted (module docstring, "What is not fitted").
NOT_FITTED = {
    "aerial_time": "aerial time depends on the forward levels (not a ratio of direction effects "
    "alone); predicted as a check",
    "pfj_force": "PFJ force is computed from the knee moment (fitted) with the angle relations; "
    "fitting both would count the same subjects twice; predicted as a check",
    "muscle_volume": "muscle volume per unit force is predicted as a check of the fitted volume "
    "term, never fitted",
}
#: Running speed used for a row without one [m/s]: centre of the validated range.
RUN_SPEED_FILL_M_S = 0.5 * sum(ga.RUN_VALID_M_S)
HOLDOUT_FILE = DATA_DIR / "parameters" / "holdout.csv"
REQUIRED = ("row_id", "study_key", "outcome", "yi", "vi", "speed_m_s", "mode")


# --------------------------------------------------------------------------- hold-outs
@functools.lru_cache(maxsize=1)
def load_holdout():
    """Rows kept out of every fit (``retrosim/data/parameters/holdout.csv``: ``row_id, reason``)."""
    import pandas as pd

    try:
        df = pd.read_csv(HOLDOUT_FILE, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError("hold-out list not found", file=HOLDOUT_FILE) from None
    for col in ("row_id", "reason"):
        if col not in df.columns:
            raise InputError(f"missing column {col!r}", file=HOLDOUT_FILE, column=col)
    for i, r in df.iterrows():
        if not r["row_id"].strip() or not r["reason"].strip():
            raise InputError("every hold-out needs a row_id and a reason", file=HOLDOUT_FILE,
                             row=int(i) + 1)  # fmt: skip
    if df["row_id"].duplicated().any():
        dup = df.loc[df["row_id"].duplicated(), "row_id"].iloc[0]
        raise InputError(f"row_id {dup!r} listed twice", file=HOLDOUT_FILE, column="row_id")
    return df.copy()


# --------------------------------------------------------------------------- design
def knee_reference_speed():
    """Speed of the knee inputs [m/s]: middle of Roos et al.'s range (press release, knee.csv)."""
    return 0.5 * (kn.parameter("speed_low") + kn.parameter("speed_high"))


def design_row(quantity, mode, speed_m_s, *, slope=False):
    """Coefficients ``x`` with ``ln(backward/forward) = dot(x, theta)`` at one speed (same in both
    directions), in the order of :func:`priors`; None if the quantity is not linear in theta.
    """
    names = priors(slope=slope)[0]
    x = dict.fromkeys(names, 0.0)
    v = float(speed_m_s)
    if quantity == "energy" and mode == "walk":
        x["walk_log_ratio"], x["walk_log_slope"] = 1.0, v - WALK_REF_SPEED_M_S
    elif mode != "run":
        return None
    elif quantity == "energy":
        x["dir_contact_time"], x["dir_muscle_volume"] = -1.0, float(en.volume_term(v))
    elif quantity == "step_frequency":
        x["dir_step_frequency"] = 1.0
    elif quantity == "contact_time":
        x["dir_contact_time"] = 1.0
    elif quantity == "peak_vgrf":
        x["dir_step_frequency"] = x["dir_contact_time"] = -1.0
    elif quantity == "knee_moment":
        x["dir_step_frequency"] = x["dir_contact_time"] = -1.0
        x["dir_knee_lever_arm"] = 1.0
        if slope:
            x[SLOPE] = v - knee_reference_speed()
    elif quantity == "knee_flexion":
        x["dir_knee_flexion"] = 1.0
    elif quantity == "muscle_volume":
        x["dir_muscle_volume"] = float(en.volume_term(v))
    else:
        return None
    return np.array([x[n] for n in names])


# --------------------------------------------------------------------------- data
def _col(df, name, default):
    return df[name] if name in df.columns else default


def _resting(unit, speed_m_s):
    """Resting metabolism in the row's unit (ACSM 3.5 mL/kg/min), NaN if not convertible."""
    r = en.RESTING_VO2_ML_KG_MIN
    if unit == "mL/kg/min":
        return r
    if unit == "W/kg":
        return float(en.vo2_to_w_kg(r))
    if unit == "J/kg/m" and np.isfinite(speed_m_s) and speed_m_s > 0:
        return float(en.vo2_to_w_kg(r)) / speed_m_s
    return np.nan


def _net(row, mode, speed):
    """(y_net, v_net, extra_var, note) of an energy row (module docstring)."""
    y, v = float(row["yi"]), float(row["vi"])
    outcome = row["outcome"]
    basis = str(row.get("energy_basis", "") or "")
    if basis in ("", "nan"):
        basis = "gross" if outcome == "vo2_ml_kg_min" else "not_stated"
    unit = {"vo2_ml_kg_min": "mL/kg/min", "metabolic_rate_w_kg": "W/kg",
            "energy_cost_j_kg_m": "J/kg/m"}.get(outcome, "")  # fmt: skip
    if basis == "net" or not unit:
        return y, v, 0.0, f"basis {basis}: used as reported"
    rest = _resting(unit, speed)
    f_m, b_m = float(row.get("forward_mean", np.nan)), float(row.get("backward_mean", np.nan))
    level = "the source's means"
    if not (np.isfinite(f_m) and np.isfinite(b_m)):
        if not np.isfinite(speed) or mode not in ("run", "walk"):
            return y, v, 0.0, f"basis {basis}: used as reported (no level to convert)"
        # forward gross level from the ACSM equation at the row's speed (in mL/kg/min)
        f_m = float(en.acsm(speed, mode))
        rest, b_m = en.RESTING_VO2_ML_KG_MIN, f_m * np.exp(y)
        level = "the ACSM forward level"
    if not (np.isfinite(rest) and f_m > rest and b_m > rest):
        return y, v, 0.0, f"basis {basis}: used as reported (not convertible)"
    y_net = float(np.log((b_m - rest) / (f_m - rest)))
    v_f, v_b = float(row.get("v_forward", np.nan)), float(row.get("v_backward", np.nan))
    g_f, g_b = f_m / (f_m - rest), b_m / (b_m - rest)
    r = float(row.get("r", np.nan))
    if np.isfinite(v_f) and np.isfinite(v_b) and np.isfinite(r):
        vf, vb = v_f * g_f**2, v_b * g_b**2
        v_net = vf + vb - 2.0 * r * np.sqrt(vf * vb)
    else:  # only vi known: scale it by the mean squared gain of the two means
        v_net = v * 0.5 * (g_f**2 + g_b**2)
    if basis == "gross":
        return y_net, float(v_net), 0.0, f"gross converted to net with {level}"
    # not stated: read as net, half the gross-net difference as extra variance
    return y, v, float(((y_net - y) / 2.0) ** 2), f"basis not stated: read as net ({level})"


def _status(r, quantity, mode, holdout):
    same = str(r.get("speed_matching", "same") or "same") == "same"
    vf, vb = float(r["speed_m_s"]), float(r.get("speed_backward_m_s", np.nan))
    if not bool(r.get("primary", True)):
        return "excluded", "re-expression of another row of the same subjects (primary = false)"
    if not bool(r.get("independent_report", True)):
        return "excluded", "not an independent report"
    grade = str(r.get("grade_class", "not_stated") or "not_stated")
    if grade not in ("level", "not_stated"):
        return "excluded", f"graded condition ({grade}): the direction effects have no grade term"
    if mode == "":
        return "excluded", "mode not stated and no speed to assign one"
    if mode == "walk" and quantity != "energy":
        return "excluded", "no walking model of this quantity's direction effect"
    if not (np.isfinite(float(r["yi"])) and np.isfinite(float(r["vi"]))):
        return "excluded", "no effect size or variance"
    if mode == "walk" and not np.isfinite(vf):
        return "excluded", "walking rows need a speed"
    if r["row_id"] in holdout:
        return "holdout", holdout[r["row_id"]]
    if not same:
        if np.isfinite(vf) and np.isfinite(vb):
            return "holdout", ("speeds differ between directions: predicted at both speeds, "
                               "never fitted (the calibration uses same-speed ratios)")  # fmt: skip
        return "excluded", "speeds differ between directions and are not reported"
    if quantity in NOT_FITTED:
        return "check", NOT_FITTED[quantity]
    return "fit", ""


def calibration_table(effects=None, *, holdout=None, include_rows=(), slope=False):
    """Every modelled comparison with its status, model-scale value and design row.

    Parameters
    ----------
    effects : pandas.DataFrame, optional
        Effect sizes shaped like :func:`retrosim.evidence.tables.effect_sizes` (default: that call,
        all families). Rows are selected by their properties, so new rows simply join.
    holdout : pandas.DataFrame, optional
        ``row_id, reason`` of the rows kept out of every fit (default :func:`load_holdout`).
    include_rows : sequence of str
        Row ids to fit although listed as hold-outs (sensitivity fits).
    slope : bool
        Add the speed slope of the knee lever-arm effect to the design.

    Returns
    -------
    pandas.DataFrame
        One row per modelled comparison: ``row_id, study_key, outcome, quantity, tau,
        mode_used, speed_used, speed_backward_used, speed_known (reported), speed_mid_known
        (midpoint of a reported range), published_yi, y, v,
        extra_var, conversion, status, reason`` and the design columns ``x_<effect>``.
    """
    import pandas as pd

    if effects is None:
        from retrosim.evidence import tables as evidence

        effects = evidence.effect_sizes()
    df = pd.DataFrame(effects).copy()
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"effect table lacks columns {missing}", argument="effects")
    hold = load_holdout() if holdout is None else pd.DataFrame(holdout)
    hold = {k: v for k, v in zip(hold["row_id"], hold["reason"], strict=True)
            if k not in set(include_rows)}  # fmt: skip
    names = priors(slope=slope)[0]
    lo, hi = ga.RUN_VALID_M_S
    grid = np.linspace(lo, hi, 201)
    h = en.volume_term(grid)
    rows = []
    for _, r in df.iterrows():
        quantity = QUANTITY.get(r["outcome"])
        if quantity is None:
            continue
        r = r.copy()
        speed = pd.to_numeric(r["speed_m_s"], errors="coerce")
        mid = pd.to_numeric(r.get("speed_mid_m_s", np.nan), errors="coerce")
        known = bool(np.isfinite(speed))
        mid_known = bool(not known and np.isfinite(mid))
        if mid_known:
            speed = mid
        r["speed_m_s"] = float(speed) if np.isfinite(speed) else np.nan
        vb = pd.to_numeric(r.get("speed_backward_m_s", np.nan), errors="coerce")
        mode = str(r["mode"]).lower()
        mode = "walk" if mode.startswith("walk") else "run" if mode.startswith("run") else ""
        if mode == "" and np.isfinite(speed):
            mode = "walk" if speed < WALK_RUN_SPLIT_M_S else "run"
        status, reason = _status(r, quantity, mode, hold)
        v_used = float(speed) if np.isfinite(speed) else RUN_SPEED_FILL_M_S
        vb_used = float(vb) if np.isfinite(vb) else v_used
        y, v, extra, conversion = float(r["yi"]), float(r["vi"]), 0.0, ""
        if quantity == "energy" and status != "excluded":
            y, v, extra, conversion = _net(r, mode, float(speed))
        x = design_row(quantity, mode, v_used, slope=slope) if mode else None
        if x is not None and quantity in ("energy", "muscle_volume") and mode == "run" \
                and not np.isfinite(speed):  # fmt: skip
            # speed unknown: mean volume shape over the validated range, its spread as variance
            j = names.index("dir_muscle_volume")
            x[j] = float(h.mean())
            extra += float(h.var()) * PRIOR_SD["dir_muscle_volume"] ** 2
        if x is None and status == "fit":
            status, reason = "excluded", "quantity not linear in the direction effects"
        row = {
            "row_id": r["row_id"], "study_key": r["study_key"], "outcome": r["outcome"],
            "quantity": quantity, "tau": TAU_OF.get(quantity, "tau_mechanics"),
            "mode_used": mode, "speed_used": v_used, "speed_backward_used": vb_used,
            "speed_known": known, "speed_mid_known": mid_known,
            "speed_matching": str(r.get("speed_matching", "same")),
            "published_yi": float(r["yi"]), "y": y, "v": v, "extra_var": extra,
            "conversion": conversion, "status": status, "reason": reason,
            "dispersion_imputed": bool(r.get("dispersion_imputed", False)),
            "forward_mean": float(pd.to_numeric(r.get("forward_mean", np.nan), errors="coerce")),
        }  # fmt: skip
        for k, n in enumerate(names):
            row[f"x_{n}"] = np.nan if x is None else float(x[k])
        rows.append(row)
    return pd.DataFrame(rows)


def table_hash(table) -> str:
    """Hash of the fitted rows, priors and model version (cache key of a posterior)."""
    fit = table[table["status"] == "fit"]
    xcols = [c for c in fit.columns if c.startswith("x_")]
    names, mean, sd = priors(slope=len(xcols) > len(EFFECTS))
    payload = {
        "rows": fit[["row_id", "y", "v", "extra_var", "tau", *xcols]].round(12).astype(str)
        .to_numpy().tolist(),
        "priors": [names, mean.round(12).tolist(), sd.round(12).tolist()],
        "tau": TAU_PRIOR_SD, "grid": [float(TAU_GRID[0]), float(TAU_GRID[-1]), len(TAU_GRID)],
        "version": MODEL_VERSION,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- exact posterior
@dataclasses.dataclass
class ExactPosterior:
    """Posterior of the effects: Gaussian given the two between-study SDs, SDs on a grid.

    ``weights[j, k]`` is the posterior mass of ``(TAU_GRID[j], TAU_GRID[k])`` for
    (``tau_energy``, ``tau_mechanics``); ``mean[j, k]`` and ``chol[j, k]`` (Cholesky factor of
    the covariance) the Gaussian of ``theta`` there.
    """

    names: list
    weights: np.ndarray
    mean: np.ndarray
    chol: np.ndarray
    n_rows: int
    studies: tuple

    def draw(self, n, rng):
        """``n`` joint draws: dict of arrays for every effect and both between-study SDs."""
        rng = np.random.default_rng(rng)
        g = len(TAU_GRID)
        flat = rng.choice(self.weights.size, size=int(n), p=self.weights.ravel())
        j, k = np.divmod(flat, g)
        z = rng.standard_normal((int(n), len(self.names)))
        theta = self.mean[j, k] + np.einsum("nij,nj->ni", self.chol[j, k], z)
        step = TAU_GRID[1] - TAU_GRID[0]
        jitter = rng.uniform(-0.5, 0.5, (2, int(n))) * step  # spread within a grid cell
        out = {name: theta[:, i] for i, name in enumerate(self.names)}
        out["tau_energy"] = np.abs(TAU_GRID[j] + jitter[0])
        out["tau_mechanics"] = np.abs(TAU_GRID[k] + jitter[1])
        return out

    def tau_mass_at_edge(self):
        """Posterior mass on the largest grid value of either SD (should be negligible)."""
        return float(self.weights[-1, :].sum() + self.weights[:, -1].sum())


def _halfnormal_logpdf(x, sd):
    return -0.5 * (x / sd) ** 2


def exact_posterior(table, *, slope=False, fixed_tau=None, tau_prior_sd=TAU_PRIOR_SD
                    ) -> ExactPosterior:  # fmt: skip
    """Exact posterior of the effects given the ``status == "fit"`` rows of ``table``.

    ``fixed_tau`` (a diagnostic, not the model) puts all prior mass of both between-study SDs
    on the grid value nearest to it, e.g. 0 for a common-effect fit; ``tau_prior_sd`` changes
    the scale of their half-normal prior (sensitivity).
    """
    names, m0, s0 = priors(slope=slope)
    fit = table[table["status"] == "fit"]
    g = len(TAU_GRID)
    p = len(names)
    lw = _halfnormal_logpdf(TAU_GRID, float(tau_prior_sd))
    if fixed_tau is not None:
        lw = np.full(g, -np.inf)
        lw[int(np.argmin(np.abs(TAU_GRID - float(fixed_tau))))] = 0.0
    prior_w = lw[:, None] + lw[None, :]
    if fit.empty:
        w = np.exp(prior_w - prior_w.max())
        chol = np.broadcast_to(np.diag(s0), (g, g, p, p)).copy()
        return ExactPosterior(names, w / w.sum(), np.broadcast_to(m0, (g, g, p)).copy(), chol,
                              0, ())  # fmt: skip
    X = fit[[f"x_{n}" for n in names]].to_numpy(float)
    y = fit["y"].to_numpy(float)
    base = fit["v"].to_numpy(float) + fit["extra_var"].to_numpy(float)
    is_e = (fit["tau"] == "tau_energy").to_numpy()
    te, tm = np.meshgrid(TAU_GRID, TAU_GRID, indexing="ij")  # (g, g)
    d = base + np.where(is_e, te[..., None] ** 2, tm[..., None] ** 2)  # (g, g, n)
    # posterior of theta given the SDs (normal-normal, precision form)
    prec = np.diag(1.0 / s0**2) + np.einsum("ni,jkn,nl->jkil", X, 1.0 / d, X)
    rhs = m0 / s0**2 + np.einsum("ni,jkn->jki", X, y / d)
    mean = np.linalg.solve(prec, rhs[..., None])[..., 0]
    cov = np.linalg.inv(prec)
    chol = np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    # marginal likelihood of y given the SDs, y ~ N(X m0, X S0 X' + D), in the p-dimensional
    # precision form (determinant lemma and Woodbury): cheap for any number of rows
    r0 = y - X @ m0
    b = np.einsum("ni,jkn->jki", X, r0 / d)
    logdet = (
        np.log(d).sum(-1)
        + 2.0 * np.log(s0).sum()
        + 2.0 * np.log(np.diagonal(np.linalg.cholesky(prec), axis1=-2, axis2=-1)).sum(-1)
    )
    quad = (r0**2 / d).sum(-1) - np.einsum(
        "jki,jki->jk", b, np.linalg.solve(prec, b[..., None])[..., 0]
    )
    loglik = -0.5 * (logdet + quad)
    lw2 = prior_w + loglik
    w = np.exp(lw2 - lw2.max())
    post = ExactPosterior(names, w / w.sum(), mean, chol, len(fit),
                          tuple(sorted(set(fit["study_key"]))))  # fmt: skip
    if post.tau_mass_at_edge() > 1e-3:
        log.warning("calibration: %.3g of the posterior mass of a between-study SD sits at the "
                    "grid edge %.2f", post.tau_mass_at_edge(), TAU_GRID[-1])  # fmt: skip
    return post


_FIT_CACHE: dict = {}
#: Seed of the shared calibration posterior: the draws :func:`posterior_draws` (and so
#: ``RetroChain(posterior=shared_posterior())``) use when no posterior is passed.
POSTERIOR_SEED = 20261121


class CalibrationResult(PosteriorResults):
    """The calibration posterior, in the results API of :mod:`retrosim.bayes.results`.

    ``summary()``, ``to_dataframe()``, ``to_netcdf(path)``, ``plot(ax=None)`` and
    ``diagnostics`` work as for every fit; R-hat and ESS describe independent draws of an exact
    posterior (no MCMC, no convergence question), so the summary prints the exactness note
    instead of a gate outcome.

    Attributes
    ----------
    posterior : xarray.Dataset
        Variables :data:`FITTED` (and the slope if fitted) on dimension ``sample``; attributes
        ``diagnostics``, ``converged`` (1: exact), ``cache_key``, ``n_rows``, ``studies``,
        ``model_version``.
    chains : int
        The draws are shown to ArviZ as ``chains`` chains of equal length (``idata``).
    """

    _summary_title = "Calibration of the backward/forward direction effects (ln ratio)"
    _summary_columns = ("mean", "sd", "lo", "median", "hi")

    def __init__(self, posterior, *, chains=1):
        self.posterior = posterior
        self.chains = int(chains)

    @property
    def attrs(self) -> dict:
        """Attributes of :attr:`posterior` (diagnostics note, cache key, rows, studies)."""
        return self.posterior.attrs

    @property
    def var_names(self) -> tuple:
        return tuple(self.posterior.data_vars)

    def to_dataset(self):
        """The posterior draws as an :class:`xarray.Dataset` on dimension ``sample`` (a copy)."""
        return self.posterior.copy(deep=True)

    @property
    def idata(self):
        """The draws as a DataTree with a ``posterior`` group (``chain``, ``draw``)."""
        import xarray as xr

        n = self.posterior.sizes["sample"]
        chains = self.chains if n % self.chains == 0 else 1
        post = xr.Dataset(
            {k: (("chain", "draw"), np.asarray(da.values).reshape(chains, n // chains), da.attrs)
             for k, da in self.posterior.data_vars.items()},
            attrs=dict(self.posterior.attrs),
        )  # fmt: skip
        return xr.DataTree.from_dict({"posterior": post})

    @property
    def diagnostics(self):
        """R-hat and ESS of the draws as data (:class:`retrosim.bayes.sampling.Diagnostics`)."""
        from retrosim.bayes.sampling import diagnose

        return diagnose(self.idata, sampler="exact (no MCMC)")

    def _diagnostics_line(self) -> str:
        return f"posterior: {self.attrs.get('diagnostics', '')}"

    def _summary_header(self) -> list[str]:
        a = self.attrs
        return [f"fitted rows: {a.get('n_rows', '')}   studies: {a.get('studies', '')}",
                f"model: {a.get('model_version', '')}   draws: {self.posterior.sizes['sample']}"]  # fmt: skip

    def __str__(self) -> str:
        return self.summary().as_text()

    #: How :class:`~retrosim.models.chain.RetroChain` labels draws from this posterior.
    description = "calibration posterior"

    def draws(self, n_draws, rng) -> dict:
        """Model parameter draws with the direction effects from this posterior.

        What :class:`~retrosim.models.chain.RetroChain` calls when given this result
        (``RetroChain(posterior=result)``); see :func:`posterior_draws`.
        """
        return posterior_draws(n_draws, rng, posterior=self)


def shared_posterior() -> CalibrationResult:
    """The calibration posterior of the shipped evidence with :data:`POSTERIOR_SEED`.

    Exact and fast (about a second), kept in memory for the session; nothing is written to
    disk. ``RetroChain(posterior=shared_posterior())`` is the calibrated model chain.
    """
    log.info("calibrating the direction effects on the shipped evidence "
             "(retrosim.bayes.calibration.fit, seed %d; kept in memory)", POSTERIOR_SEED)  # fmt: skip
    return fit(seed=POSTERIOR_SEED)


def fit(effects=None, *, draws=1000, tune=1000, chains=4, seed, gate="raise",
        cache=True, exclude_rows=(), include_rows=(), knee_speed_slope=False,
        fixed_tau=None, tau_prior_sd=TAU_PRIOR_SD):  # fmt: skip
    """Calibrate and return ``draws * chains`` posterior draws as a :class:`CalibrationResult`.

    The posterior is exact (module docstring); ``tune`` and ``gate`` are accepted for
    compatibility with sampler-based fits and have no effect (there is no convergence to gate).
    ``cache`` keeps the result in memory for the session (keyed by :func:`table_hash` and the
    arguments).

    Parameters
    ----------
    effects : pandas.DataFrame, optional
        Effect sizes (default :func:`retrosim.evidence.tables.effect_sizes`).
    draws, chains : int
        Number of draws is their product.
    seed : int
        Seed of the draws (required, as for every fit; :data:`POSTERIOR_SEED` is the seed of
        the shared calibration posterior).
    exclude_rows : sequence of str
        Row ids left out of this fit (leave-one-out checks).
    include_rows : sequence of str
        Hold-out row ids fitted in this fit (sensitivity).
    knee_speed_slope : bool
        Fit a speed slope of the knee lever-arm effect (sensitivity).
    fixed_tau : float, optional
        Fix both between-study SDs (diagnostic; see :func:`exact_posterior`).
    tau_prior_sd : float
        Scale of the half-normal prior of the between-study SDs (default 0.2).

    Returns
    -------
    CalibrationResult
        Its ``posterior`` (or ``to_dataset()``) is the :class:`xarray.Dataset` of the draws:
        variables :data:`FITTED` (and the slope if fitted) on dimension ``sample``; attributes
        ``diagnostics``, ``converged`` (1: exact), ``cache_key``, ``n_rows``, ``studies``.
    """
    import xarray as xr

    if seed is None:
        raise InputError("a seed is required for reproducible draws", argument="seed")
    table = calibration_table(effects, include_rows=include_rows, slope=knee_speed_slope)
    if len(exclude_rows):
        out = table["row_id"].isin(list(exclude_rows)) & (table["status"] == "fit")
        table.loc[out, "status"] = "left_out"
    n = int(draws) * int(chains)
    key = f"{table_hash(table)}-n{n}-s{seed}-t{fixed_tau}-p{tau_prior_sd}"
    if cache and key in _FIT_CACHE:
        return CalibrationResult(_FIT_CACHE[key].copy(deep=True), chains=chains)
    post = exact_posterior(
        table, slope=knee_speed_slope, fixed_tau=fixed_tau, tau_prior_sd=tau_prior_sd
    )
    d = post.draw(n, np.random.default_rng(seed))
    ds = xr.Dataset({k: ("sample", np.asarray(v, float)) for k, v in d.items()})
    for k in ds.data_vars:
        ds[k].attrs.update(units="1", long_name=f"posterior of {k} (log ratio backward/forward)"
                           if k.startswith(("dir_", "walk_")) else f"posterior of {k}")  # fmt: skip
    ds.attrs.update(
        diagnostics=(f"exact posterior: Gaussian given the between-study SDs, SDs on a "
                     f"{len(TAU_GRID)} x {len(TAU_GRID)} grid; mass at grid edge "
                     f"{post.tau_mass_at_edge():.2g}; no MCMC"),
        converged=1, cache_key=key, n_rows=post.n_rows, studies=",".join(post.studies),
        model_version=MODEL_VERSION,
    )  # fmt: skip
    if cache:
        _FIT_CACHE[key] = ds.copy(deep=True)
    return CalibrationResult(ds, chains=chains)


def _posterior_dataset(posterior):
    """The Dataset of draws of a :class:`CalibrationResult` (or of a Dataset itself)."""
    return posterior.posterior if isinstance(posterior, CalibrationResult) else posterior


# --------------------------------------------------------------------------- draws
def posterior_draws(n_draws, rng, *, effects=None, posterior=None) -> dict:
    """Parameter draws with the direction effects from the calibration posterior.

    ``posterior`` is a :class:`CalibrationResult` (or its Dataset); by default the fit of
    ``effects`` with :data:`POSTERIOR_SEED`.

    Forward levels (contact-time and cadence scales, cadence exponent) and effects that are
    not calibrated (backward walking step-frequency ratio) come from their priors; the effects
    are resampled jointly (one posterior sample per draw, so their correlations are kept).
    """
    rng = np.random.default_rng(rng)
    post = fit(effects, seed=POSTERIOR_SEED) if posterior is None else posterior
    post = _posterior_dataset(post)
    out = prior_draws(n_draws, rng)
    idx = rng.integers(0, post.sizes["sample"], int(n_draws))
    for k in post.data_vars:
        if k not in TAUS:
            out[k] = np.asarray(post[k].values)[idx]
    return out


def predict_log_ratio(posterior, speed_m_s, mode, *, new_study=True, rng):
    """Posterior (predictive) draws of ln(backward/forward) net metabolic rate, same speed.

    ``posterior`` is a :class:`CalibrationResult` (or its Dataset). With ``new_study`` the
    between-study SD of energy ratios is added (a new study's value), drawn with ``rng``
    (seed or Generator, required).
    """
    posterior = _posterior_dataset(posterior)
    p = {k: np.asarray(posterior[k].values) for k in posterior.data_vars}
    v = float(speed_m_s)
    if mode == "run":
        mu = np.log(en.running_direction_ratio(v, p))
    else:
        mu = p["walk_log_ratio"] + p["walk_log_slope"] * (v - WALK_REF_SPEED_M_S)
    if new_study:
        mu = mu + p["tau_energy"] * np.random.default_rng(rng).standard_normal(mu.shape)
    return mu


# --------------------------------------------------------------------------- model predictions
def model_log_ratio(row, params, rng):
    """The models' ln(backward/forward) for one comparison, per parameter draw.

    Evaluates the gait, energetics and knee functions themselves (not the linear design),
    at the row's forward and backward speeds, so comparisons at different speeds and
    non-linear quantities (aerial time, PFJ force) are predicted too.

    Parameters
    ----------
    row : mapping
        A row of :func:`calibration_table`.
    params : dict
        Parameter draws (:func:`posterior_draws` / :func:`prior_draws`), arrays ``(n,)``.
    rng : numpy.random.Generator
        For the forward knee levels.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, on the scale of ``row["y"]`` (net for energy).
    """
    q, mode = row["quantity"], row["mode_used"]
    vf, vb = float(row["speed_used"]), float(row["speed_backward_used"])
    p = {**en.direction_params_nominal(), **params}
    n = max(np.size(v) for v in p.values())
    if q == "energy":
        per_km = row["outcome"] == "energy_cost_j_kg_m"
        if mode == "walk":  # ACSM net walking cost is proportional to speed
            lr = np.log(vb / vf) + np.log(en.walking_direction_ratio(vb, p))
        else:
            gf = ga.spring_mass_running(vf, 1.0, None, "forward", params=p, _check=False)
            gb = ga.spring_mass_running(vb, 1.0, None, "backward", params=p, _check=False)
            c = en.kram_taylor_coefficient()
            ef = en.kram_taylor(gf["contact_time_s"], vf, coefficient_m=c, params=p)
            vol = en.running_volume_ratio(vb, p)
            eb = en.kram_taylor(gb["contact_time_s"], vb, volume_ratio=vol, coefficient_m=c,
                                params=p)  # fmt: skip
            lr = np.log(eb / ef)
        return np.broadcast_to(lr + (np.log(vf / vb) if per_km else 0.0), (n,)).astype(float)
    if q == "muscle_volume":
        return np.broadcast_to(en.volume_term(vb) * p["dir_muscle_volume"], (n,)).astype(float)
    gf = ga.spring_mass_running(vf, 70.0, None, "forward", params=p, _check=False)
    gb = ga.spring_mass_running(vb, 70.0, None, "backward", params=p, _check=False)
    key = {"step_frequency": "step_frequency_hz", "contact_time": "contact_time_s",
           "aerial_time": "flight_time_s", "peak_vgrf": "vgrf_peak_bw"}.get(q)  # fmt: skip
    if key is not None:
        return np.broadcast_to(np.log(gb[key] / gf[key]), (n,)).astype(float)
    effects = {k: p[k] for k in kn.DIRECTION_EFFECTS if k in p}
    if SLOPE in p:  # sensitivity fit: the lever-arm effect changes with speed
        effects["dir_knee_lever_arm"] = (np.asarray(p["dir_knee_lever_arm"])
                                         + p[SLOPE] * (vb - knee_reference_speed()))  # fmt: skip
    kp = kn.sample_parameters(int(n), rng, effects=effects or None)
    if q == "knee_flexion":
        return np.log(kp["knee_flexion_deg_backward"] / kp["knee_flexion_deg_forward"])
    out = {}
    for d, g, v in (("forward", gf, vf), ("backward", gb, vb)):
        k = kn.from_gait(g, mass_kg=70.0, direction=d, mode="run", speed_m_s=v, params=kp)
        out[d] = k["knee_ext_moment_nm" if q == "knee_moment" else "pfj_force_bw"][0]
    return np.log(out["backward"] / out["forward"])


def to_published_ratio(row, model_log):
    """Model-scale log ratio(s) of an energy row back on the published scale, as ratios."""
    r = np.exp(np.asarray(model_log, float))
    if row["quantity"] != "energy" or not str(row["conversion"]).startswith("gross"):
        return r
    f = row["forward_mean"]
    rest = _resting({"vo2_ml_kg_min": "mL/kg/min", "metabolic_rate_w_kg": "W/kg",
                     "energy_cost_j_kg_m": "J/kg/m"}[row["outcome"]], row["speed_used"])  # fmt: skip
    if "ACSM" in str(row["conversion"]):
        f = float(en.acsm(row["speed_used"], row["mode_used"]))
        rest = en.RESTING_VO2_ML_KG_MIN
    return ((f - rest) * r + rest) / f


# --------------------------------------------------------------------------- predictive checks
#: Families a comparison counts in (quantity -> family of the validation summary).
CHECK_FAMILY = {"energy": "energy", "knee_moment": "knee", "pfj_force": "knee",
                "step_frequency": "gait", "contact_time": "gait", "aerial_time": "gait",
                "knee_flexion": "gait", "peak_vgrf": "vgrf", "muscle_volume": "energy_mechanism"}  # fmt: skip


def _predict(row, post, n_draws, rng):
    """Predictive draws of a comparison's published value (model scale) and their summary."""
    draws = post.draw(n_draws, rng)
    params = prior_draws(n_draws, rng)
    params.update({k: v for k, v in draws.items() if k not in TAUS})
    mu = model_log_ratio(row, params, rng)
    tau = draws[row["tau"]]
    sd = np.sqrt(tau**2 + row["v"] + row["extra_var"])
    pred = mu + sd * rng.standard_normal(n_draws)
    y = row["y"]
    q = np.quantile(pred, [0.025, 0.25, 0.5, 0.75, 0.975])
    pub = to_published_ratio(row, q)
    published = float(np.exp(row["published_yi"]))
    return {
        "pit": float(np.mean(pred <= y)),
        "inside_50": bool(q[1] <= y <= q[3]),
        "inside_95": bool(q[0] <= y <= q[4]),
        "published_ratio": published,
        "predicted_ratio": float(pub[2]),
        "predicted_lo95": float(pub[0]), "predicted_lo50": float(pub[1]),
        "predicted_hi50": float(pub[3]), "predicted_hi95": float(pub[4]),
        "mean_ratio": float(to_published_ratio(row, np.median(mu))),
        "abs_error": float(abs(pub[2] - published)),
    }  # fmt: skip


def predictive_checks(effects=None, *, n_draws=4000, seed, holdout=None):
    """Predictive checks of every modelled comparison that can fail.

    * ``loso``: each study's comparisons predicted by a fit without any row of that study;
    * ``loco``: each fitted comparison of a study with several conditions in one family,
      predicted by a fit without that comparison only;
    * ``holdout``: hold-outs (never fitted) predicted by the main fit.

    A prediction is the predictive distribution of the *published* value: the model's ratio
    under the posterior plus the between-study SD of its family and the comparison's own
    sampling variance. Its PIT is the predictive probability below the published value;
    ``inside_50``/``inside_95`` whether the published value lies in the central 50 %/95 %
    predictive interval; ``abs_error`` the absolute difference of the predicted median ratio
    and the published ratio. ``primary`` marks the one prediction per comparison that is out
    of sample (LOSO for fitted rows and for checks of a study with fitted rows, the main fit
    for hold-outs and checks of studies without fitted rows).

    Returns
    -------
    pandas.DataFrame
        One row per (comparison, check).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    table = calibration_table(effects, holdout=holdout)
    main = exact_posterior(table)
    rows = []

    def add(r, kind, post, primary):
        rec = {
            k: r[k]
            for k in (
                "row_id",
                "study_key",
                "outcome",
                "quantity",
                "mode_used",
                "speed_used",
                "speed_backward_used",
                "speed_known",
                "speed_mid_known",
                "speed_matching",
                "status",
                "reason",
                "dispersion_imputed",
            )
        }
        rec.update(check=kind, family=CHECK_FAMILY[r["quantity"]], primary=primary,
                   published_lo95=float(np.exp(r["published_yi"] - 1.96 * np.sqrt(r["v"]))),
                   published_hi95=float(np.exp(r["published_yi"] + 1.96 * np.sqrt(r["v"]))),
                   n_fit_rows=post.n_rows)  # fmt: skip
        rec.update(_predict(r, post, n_draws, rng))
        rows.append(rec)

    usable = table[table["status"].isin(["fit", "check", "holdout"])]
    fit_studies = set(table.loc[table["status"] == "fit", "study_key"])
    for study in sorted(fit_studies):
        t = table.copy()
        t.loc[(t["study_key"] == study) & (t["status"] == "fit"), "status"] = "left_out"
        post = exact_posterior(t)
        for _, r in usable[(usable["study_key"] == study)
                           & usable["status"].isin(["fit", "check"])].iterrows():  # fmt: skip
            add(r, "loso", post, True)
    fitted = table[table["status"] == "fit"]
    for _, grp in fitted.groupby(["study_key", fitted["quantity"].map(CHECK_FAMILY)]):
        if len(grp) < 2:
            continue
        for _, r in grp.iterrows():
            t = table.copy()
            t.loc[t["row_id"] == r["row_id"], "status"] = "left_out"
            add(r, "loco", exact_posterior(t), False)
    for _, r in usable[usable["status"] == "holdout"].iterrows():
        add(r, "holdout", main, True)
    for _, r in usable[(usable["status"] == "check")
                       & ~usable["study_key"].isin(fit_studies)].iterrows():  # fmt: skip
        add(r, "check", main, True)
    return pd.DataFrame(rows)
