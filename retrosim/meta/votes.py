"""Pooling direction-only results on a standardised effect: muscle activity and training.

Most EMG and training reports give no means, only "backward > forward, p < 0.05", "no
difference" or "improved more than the control group". Such a statement bounds the study's test
statistic, and the distribution of that statistic given a *standardised* effect is known, so the
statements carry information on the effect (vote counting, Hedges & Olkin [1]_ ch. 3; Bushman &
Wang [2]_). This module pools them in a small Bayesian model.

The standardised effect
-----------------------
``delta`` is the mean difference in units of the between-person SD of that difference: for a
paired comparison of ``n`` people (EMG backward vs forward), the mean of each person's backward
minus forward value over the SD of those differences; for a two-group comparison (training vs
control, ``n1`` and ``n2`` people), the difference of the groups' mean changes over their common
SD, in the better direction of the outcome. It is scale-free, so EMG rows normalised differently
(%MVC, iEMG, not stated) measure the same ``delta``.

Likelihood
----------
With ``h = n`` (paired, ``df = n - 1``) or ``h = n1 n2 / (n1 + n2)`` (two groups,
``df = n1 + n2 - 2``) the t statistic is noncentral t, ``T ~ nct(df, delta_i sqrt(h))``. A row's
true effect varies around its cell's effect, ``delta_i ~ N(delta_c, tau_study^2)``; integrating
it out, ``T = (sqrt(1 + h tau_study^2) Z + delta_c sqrt(h)) / S`` with ``Z ~ N(0, 1)`` and
``S = sqrt(V / df)``, ``V ~ chi^2_df``. Hence

    P(a < T < b) = E_S[ Phi((b S - nc) / sc) - Phi((a S - nc) / sc) ],
    nc = delta_c sqrt(h),  sc = sqrt(1 + h tau_study^2),

and for a reported exact p (a known ``|t|``) the density ``E_S[S phi((t S - nc)/sc) / sc]``. The
expectation over ``S`` is a generalised Gauss-Laguerre rule with :data:`N_NODES` nodes (the
weight ``x^(df/2 - 1) e^-x`` of ``V = 2x``), which matches
:func:`scipy.stats.nct` for ``tau_study = 0`` to about 1e-5 relative (tests). The region ``(a, b)`` of each statement comes from
:func:`retrosim.evidence.directions.t_bounds` (the two-sided critical values of the source's
test): "B > F, p < 0.05" is ``T > t_{df, 0.975}``, "no difference" ``|T| < t_{df, 0.975}``, "higher,
significance not stated" ``T > 0``. A two-group statement uses ``df + 1`` as the ``n`` of
``t_bounds`` so that its critical values have ``df = n1 + n2 - 2``.

Model
-----
Cells are muscle x mode (EMG) or outcome class x control kind (training); each cell's effect is
partially pooled towards its group's mean (mode, or control kind)::

    mu_g ~ N(0, MU_SD^2)                    group mean of delta
    tau_cell ~ HalfNormal(TAU_CELL_SD)      spread of the cells around it
    z_c ~ N(0, 1),  delta_c = mu_g(c) + tau_cell z_c
    tau_study ~ HalfNormal(TAU_STUDY_SD)    study-to-study spread within a cell (integrated out)

Priors (:class:`VotePriors`): ``MU_SD = 1`` (a standardised effect of 1 is large for paired EMG
or training effects; 95 % of the prior within +-2), ``TAU_CELL_SD = 0.5``, ``TAU_STUDY_SD = 0.5``;
:func:`prior_predictive` gives the share of significant results they imply. The posterior is
sampled with :func:`retrosim.bayes.sampling.sample` (NUTS, convergence gate R-hat <= 1.01, ESS >=
400, no divergences) and validated by simulation-based calibration (:func:`run_sbc_replicate`,
``studies/sbc_votes.py``).

Which rows enter
----------------
A row needs a sample size (``n``; ``n_train`` and ``n_control``): a statement without one bounds
no statistic and is left out (listed, with the reason). Underwater EMG is left out
(:data:`VOTE_EXCLUDED_SURFACES`): buoyancy and water drag change the task, and unlike the claims'
meta-regression (whose ``b_underwater`` shifts underwater rows) the vote model has no surface
term, so an underwater vote would pass for land evidence. A training
row enters only as a between-group result (``*_vs_control``); pre/post results of the training
group alone say nothing about training *versus* control. Several outcomes of one study in one
cell are one vote (the first in file order; the others are listed as left out), since they share
the same people.

References
----------
.. [1] L. V. Hedges, I. Olkin, *Statistical Methods for Meta-Analysis*, Academic Press, 1985,
   chapter 3 (vote-counting methods).
.. [2] B. J. Bushman, M. C. Wang, "Vote-counting procedures in meta-analysis", in H. Cooper,
   L. V. Hedges, J. C. Valentine (eds.), *The Handbook of Research Synthesis and Meta-Analysis*,
   2nd ed., Russell Sage Foundation, 2009, chapter 11 (first edition: Bushman 1994; Bushman &
   Wang 1996, Psychological Methods 1(1):66-80, on combining vote counts and effect sizes).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from retrosim.evidence.directions import t_bounds
from retrosim.evidence.tables import EMG_MUSCLES

log = logging.getLogger(__name__)

__all__ = [
    "N_NODES",
    "VoteDesign",
    "VotePriors",
    "VoteResult",
    "claim_verdicts",
    "emg_design",
    "fit",
    "log_likelihood_draws",
    "prior_predictive",
    "reference_posterior",
    "region_logprob",
    "run_sbc_replicate",
    "simulate_regions",
    "training_design",
]

#: Gauss-Laguerre nodes of the expectation over the t statistic's denominator.
N_NODES = 48
#: Upper end standing for +infinity in a one-sided region (no t statistic comes near it).
T_BIG = 1.0e3
ALPHA = 0.05
#: Surfaces whose EMG statements stay out of the vote model (module docstring).
VOTE_EXCLUDED_SURFACES = ("underwater",)
#: Level of the reported equal-tailed posterior intervals [%].
INTERVAL_PCT = 95
#: Muscle groups of the claims: the posterior chain is gluteus maximus and the hamstrings.
TARGET_GROUPS = {
    "quadriceps": ("quadriceps",),
    "hamstrings": ("hamstrings",),
    "glutes": ("glutes",),
    "posterior_chain": ("glutes", "hamstrings"),
    "calves": ("calves",),
    "tibialis_anterior": ("tibialis_anterior",),
    "trunk_extensors": ("trunk_extensors",),
}


@dataclass(frozen=True)
class VotePriors:
    """Prior scales of the vote model (module docstring): normal SD of the group means and
    half-normal scales of the between-cell and between-study SDs [units of delta]."""

    mu_sd: float = 1.0
    tau_cell_sd: float = 0.5
    tau_study_sd: float = 0.5


# ----------------------------------------------------------------------------------------------
# Likelihood
# ----------------------------------------------------------------------------------------------


def _nodes(df: float, k: int = N_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``S = sqrt(V/df)`` and log weights of ``E[f(S)]`` for ``V ~ chi^2_df``."""
    x, w = special.roots_genlaguerre(k, df / 2.0 - 1.0)
    if not np.all(np.isfinite(w)):
        from retrosim.errors import InputError

        raise InputError(f"{df:g} degrees of freedom: too many for the quadrature", argument="df")
    keep = w > 0
    return np.sqrt(2.0 * x[keep] / df), np.log(w[keep]) - special.gammaln(df / 2.0)


def _log_terms(a, b, s, lw, nc, sc, point):
    """Per-node log terms of :func:`region_logprob`; ``nc`` and ``sc`` broadcast against the
    nodes ``s`` (last axis). The region in log space, ``log(sf(a') - sf(b'))``, keeps the far
    tails (a difference of cdfs underflows there)."""
    if point:
        return lw + np.log(s / sc) + stats.norm.logpdf((a * s - nc) / sc)
    up_a = stats.norm.logsf((a * s - nc) / sc)
    up_b = stats.norm.logsf((b * s - nc) / sc)
    return lw + up_a + np.log(-np.expm1(np.minimum(up_b - up_a, -1e-300)))


def region_logprob(a, b, df, nc, sc=1.0, *, point=False) -> float:
    """log P(a < T < b) (or log density at ``T = a`` when ``point``) by quadrature.

    ``T = (sc Z + nc) / S`` as in the module docstring; with ``sc = 1`` this is the noncentral t
    distribution ``nct(df, nc)`` of :mod:`scipy.stats`. ``a``/``b`` may be infinite.
    """
    s, lw = _nodes(float(df))
    return float(special.logsumexp(_log_terms(a, b, s, lw, nc, sc, point)))


# ----------------------------------------------------------------------------------------------
# Design
# ----------------------------------------------------------------------------------------------


@dataclass
class VoteDesign:
    """Rows of direction statements mapped to cells, ready for the model.

    Row arrays (length R): ``cell`` (index), ``h`` (effective n), ``df``, ``sign`` (+1: the
    region is of ``T``, -1: of ``-T``), ``a``, ``b`` (region of ``sign T``), ``point`` (an exact
    p: ``sign T = a``). ``cells`` names the cells, ``cell_group`` their group index, ``groups``
    the group names. ``rows`` is the table the rows came from, ``excluded`` the rows left out.
    """

    family: str
    cells: list
    cell_group: np.ndarray
    groups: list
    cell: np.ndarray
    h: np.ndarray
    df: np.ndarray
    sign: np.ndarray
    a: np.ndarray
    b: np.ndarray
    point: np.ndarray
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_rows(self) -> int:
        return len(self.cell)

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """``S`` nodes and log weights per row, shape (R, K)."""
        pairs = [_nodes(float(d)) for d in self.df]
        k = min(len(p[0]) for p in pairs)
        return np.stack([p[0][:k] for p in pairs]), np.stack([p[1][:k] for p in pairs])

    def with_regions(self, sign, a, b, point=None) -> VoteDesign:
        """The same rows with other regions (simulation-based calibration)."""
        import dataclasses

        pt = np.zeros(self.n_rows, bool) if point is None else np.asarray(point, bool)
        return dataclasses.replace(
            self, sign=np.asarray(sign, float), a=np.asarray(a, float),
            b=np.asarray(b, float), point=pt,
        )  # fmt: skip


def _region(direction, n_for_t, rel, p, sig):
    """(sign, a, b, point) of a statement: :func:`t_bounds` folded to one side when one-sided."""
    lo, hi = t_bounds(direction, n_for_t, p_relation=rel, p_value=p, significant=sig)
    if lo == hi:  # exact p: a known statistic
        return (1.0, lo, lo, True) if lo >= 0 else (-1.0, -lo, -lo, True)
    if math.isinf(hi):
        return 1.0, lo, T_BIG, False
    if math.isinf(lo):
        return -1.0, -hi, T_BIG, False
    return 1.0, lo, hi, False


def _blank(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x).strip() == ""


def _build(family, table, cells, cell_group, groups, excluded) -> VoteDesign:
    r = table.reset_index(drop=True)
    regs = [
        _region(x["direction"], x["n_for_t"], x["rel"], x["p"], x["sig"]) for _, x in r.iterrows()
    ]
    sign, a, b, point = (np.array(v) for v in zip(*regs, strict=True)) if regs else ([],) * 4
    return VoteDesign(
        family=family,
        cells=cells,
        cell_group=np.asarray(cell_group, int),
        groups=groups,
        cell=r["cell_index"].to_numpy(int),
        h=r["h"].to_numpy(float),
        df=r["df"].to_numpy(float),
        sign=np.asarray(sign, float),
        a=np.asarray(a, float),
        b=np.asarray(b, float),
        point=np.asarray(point, bool),
        rows=r,
        excluded=pd.DataFrame(excluded, columns=["row_id", "reason"]),
    )


def _one_vote_per_cell(df, key_cols, excluded):
    first = ~df.duplicated(key_cols, keep="first")
    for rid in df.loc[~first, "row_id"]:
        excluded.append((rid, "another outcome of the same study in this cell (one vote)"))
    return df[first]


def emg_design(statements: pd.DataFrame | None = None) -> VoteDesign:
    """Design of the EMG family: one cell per muscle x mode, grouped by mode.

    ``statements`` defaults to
    ``direction_statements(load_family('emg'))`` (independent reports only).
    """
    from retrosim.evidence import tables

    st = (
        tables.direction_statements(tables.load_family("emg")) if statements is None else statements
    )
    excluded, keep = [], []
    for _, x in st.iterrows():
        if pd.isna(x["n"]) or float(x["n"]) < 2:
            excluded.append((x["row_id"], "sample size not reported"))
        elif x["surface"] in VOTE_EXCLUDED_SURFACES:
            excluded.append((x["row_id"], f"surface {x['surface']} (buoyancy and drag)"))
        elif x["mode"] not in ("walk", "run"):
            excluded.append((x["row_id"], f"mode {x['mode']} not stated as walking or running"))
        else:
            keep.append(x)
    df = pd.DataFrame(keep)
    df["muscle"] = df["outcome"].str.removeprefix("emg_")
    df = _one_vote_per_cell(df, ["group_key", "muscle", "mode"], excluded)
    groups = [g for g in ("walk", "run") if g in set(df["mode"])]
    cells = sorted(set(zip(df["muscle"], df["mode"], strict=True)), key=lambda c: (c[1], c[0]))
    index = {c: i for i, c in enumerate(cells)}
    df["cell_index"] = [index[c] for c in zip(df["muscle"], df["mode"], strict=True)]
    df["h"] = df["n"].astype(float)
    df["df"] = df["h"] - 1.0
    df["n_for_t"] = df["h"]
    df["rel"], df["p"] = df["result_p_relation"], df["result_p_value"]
    df["sig"] = df["result_significant"]
    names = [f"{m}:{mode}" for m, mode in cells]
    return _build("emg", df, names, [groups.index(c[1]) for c in cells], groups, excluded)


_TRAINING_DIRECTIONS = {
    "improved_vs_control": "backward>forward",
    "no_difference_vs_control": "no_difference",
    "worse_vs_control": "backward<forward",
}


def training_design(training: pd.DataFrame | None = None) -> VoteDesign:
    """Design of the training family: one cell per outcome class x control kind.

    Only between-group results with both group sizes enter (module docstring); "improved"
    (in the outcome's better direction) is a positive ``delta``.
    """
    from retrosim.evidence import tables

    tr = tables.load_training() if training is None else training
    excluded, keep = [], []
    for _, x in tr.iterrows():
        if not str(x["result"]).endswith("_vs_control"):
            excluded.append((x["row_id"], "pre/post in the training group only (no contrast)"))
        elif pd.isna(x["n_train"]) or pd.isna(x["n_control"]):
            excluded.append((x["row_id"], "group sizes not reported"))
        else:
            keep.append(x)
    df = pd.DataFrame(keep).reset_index(drop=True)
    df = _one_vote_per_cell(df, ["study_key", "outcome_class", "control_kind"], excluded)
    n1, n2 = df["n_train"].astype(float), df["n_control"].astype(float)
    df["h"] = n1 * n2 / (n1 + n2)
    df["df"] = n1 + n2 - 2.0
    df["n_for_t"] = df["df"] + 1.0  # t_bounds uses n - 1 degrees of freedom
    df["direction"] = df["result"].map(_TRAINING_DIRECTIONS)
    df["rel"], df["p"] = df["result_p_relation"], df["result_p_value"]
    df["sig"] = df["result_significant"]
    groups = [g for g in ("passive", "active_forward") if g in set(df["control_kind"])]
    cells = sorted(
        set(zip(df["outcome_class"], df["control_kind"], strict=True)), key=lambda c: (c[1], c[0])
    )
    index = {c: i for i, c in enumerate(cells)}
    df["cell_index"] = [index[c] for c in zip(df["outcome_class"], df["control_kind"], strict=True)]
    names = [f"{k}:{c}" for k, c in cells]
    return _build("training", df, names, [groups.index(c[1]) for c in cells], groups, excluded)


# ----------------------------------------------------------------------------------------------
# Model and fit
# ----------------------------------------------------------------------------------------------


def build_model(design: VoteDesign, priors: VotePriors | None = None):
    """PyMC model of the module docstring; regions are ``pm.Data`` (``sign``, ``a``, ``b``)."""
    import pymc as pm
    import pytensor.tensor as pt

    pri = priors or VotePriors()
    s_nodes, lw = design.nodes()
    interval = ~design.point
    iv, ip = np.flatnonzero(interval), np.flatnonzero(design.point)
    coords = {"cell": design.cells, "group": design.groups}
    with pm.Model(coords=coords) as model:
        sign = pm.Data("sign", design.sign[iv])
        a = pm.Data("a", design.a[iv])
        b = pm.Data("b", design.b[iv])
        mu = pm.Normal("mu", 0.0, pri.mu_sd, dims="group")
        tau_cell = pm.HalfNormal("tau_cell", pri.tau_cell_sd)
        tau_study = pm.HalfNormal("tau_study", pri.tau_study_sd)
        z = pm.Normal("z", 0.0, 1.0, dims="cell")
        delta = pm.Deterministic("delta", mu[design.cell_group] + tau_cell * z, dims="cell")
        h = design.h
        nc = delta[design.cell] * np.sqrt(h)
        sc = pt.sqrt(1.0 + h * tau_study**2)

        def log_phi_c(x):  # log(1 - Phi(x)), stable in the upper tail
            return pm.logcdf(pm.Normal.dist(0.0, 1.0), -x)

        if len(iv):
            S, LW = s_nodes[iv], lw[iv]
            m = (sign * nc[iv])[:, None]
            sci = sc[iv][:, None]
            upper_a = log_phi_c((a[:, None] * S - m) / sci)
            upper_b = log_phi_c((b[:, None] * S - m) / sci)
            terms = LW + pm.math.logdiffexp(upper_a, upper_b)
            pm.Potential("votes", pm.math.logsumexp(terms, axis=1).sum())
        if len(ip):
            S, LW = s_nodes[ip], lw[ip]
            t = (design.sign[ip] * design.a[ip])[:, None]
            scp = sc[ip][:, None]
            zz = (t * S - nc[ip][:, None]) / scp
            terms = LW + pt.log(S) - pt.log(scp) - 0.5 * zz**2 - 0.5 * np.log(2 * np.pi)
            pm.Potential("exact_p", pm.math.logsumexp(terms, axis=1).sum())
    return model


GATE_VARS = ("mu", "tau_cell", "tau_study", "delta")


@dataclass
class VoteResult:
    """A fitted vote model: the posterior, its diagnostics and the design."""

    design: VoteDesign
    idata: object
    diagnostics: object
    priors: VotePriors

    @property
    def converged(self) -> bool:
        return bool(self.diagnostics.passed)

    def draws(self, name) -> np.ndarray:
        """Posterior draws of ``name`` stacked over chains, shape (draws, ...)."""
        x = self.idata["posterior"][name].values
        return x.reshape(-1, *x.shape[2:])

    def cell_draws(self, cell: str) -> np.ndarray:
        return self.draws("delta")[:, self.design.cells.index(cell)]


#: Draws per chain and NUTS target acceptance of a vote fit. The between-cell SD's posterior
#: reaches down to zero, where the step size must shrink: at 1000 draws and 0.95, one of six
#: seeds missed tail ESS 400 (399) on the EMG design, and at 2000 draws and 0.95 one of six had
#: a divergence; at 2000 draws and 0.99, 8 of 8 seeds passed the gate (min tail ESS 984).
VOTE_DRAWS, VOTE_TARGET_ACCEPT = 2000, 0.99


def fit(design, *, priors=None, seed, draws=VOTE_DRAWS, tune=1000, chains=4, gate="raise",
        target_accept=VOTE_TARGET_ACCEPT, compiled=None) -> VoteResult:  # fmt: skip
    """Sample the vote model through :func:`retrosim.bayes.sampling.sample` (convergence gate).

    ``gate="raise"`` (the package's default) raises :class:`retrosim.errors.ConvergenceError`
    for a posterior that fails the gate; ``"warn"`` returns it, marked by ``converged``.
    """
    from retrosim.bayes.sampling import sample

    pri = priors or VotePriors()
    model = build_model(design, pri)
    idata, diag = sample(
        model, draws=draws, tune=tune, chains=chains, seed=seed, var_names=list(GATE_VARS),
        gate=gate, target_accept=target_accept, compiled=compiled,
    )  # fmt: skip
    return VoteResult(design, idata, diag, pri)


# ----------------------------------------------------------------------------------------------
# Simulation: prior predictive and simulation-based calibration
# ----------------------------------------------------------------------------------------------


def draw_prior(design: VoteDesign, priors: VotePriors | None, rng) -> dict:
    """One draw of every parameter from the prior."""
    pri = priors or VotePriors()
    mu = rng.normal(0.0, pri.mu_sd, len(design.groups))
    tau_cell = abs(rng.normal(0.0, pri.tau_cell_sd))
    tau_study = abs(rng.normal(0.0, pri.tau_study_sd))
    z = rng.normal(0.0, 1.0, len(design.cells))
    delta = mu[design.cell_group] + tau_cell * z
    return {"mu": mu, "tau_cell": tau_cell, "tau_study": tau_study, "z": z, "delta": delta}


def simulate_t(design: VoteDesign, params: dict, rng) -> np.ndarray:
    """t statistics of every row given the parameters (row effects drawn around the cells)."""
    d_i = params["delta"][design.cell] + params["tau_study"] * rng.normal(size=design.n_rows)
    return stats.nct.rvs(design.df, d_i * np.sqrt(design.h), random_state=rng)


def simulate_regions(design: VoteDesign, t: np.ndarray, alpha: float = ALPHA):
    """The statements a two-sided test at ``alpha`` reports for statistics ``t``:
    significant up (``T > c``), significant down (``-T > c``) or no difference (``|T| < c``)."""
    c = stats.t.ppf(1.0 - alpha / 2.0, design.df)
    sign = np.where(t < -c, -1.0, 1.0)
    sig = np.abs(t) > c
    a = np.where(sig, c, -c)
    b = np.where(sig, T_BIG, c)
    return sign, a, b


def prior_predictive(design: VoteDesign, priors=None, *, n_draws=4000, seed) -> pd.DataFrame:
    """Prior predictive shares of the three reported classes per row, and the observed class.

    Columns ``row_id``, ``p_up``, ``p_none``, ``p_down`` (significant higher, no difference,
    significant lower at 5 %), ``observed`` (``up``/``none``/``down``/``other`` for statements
    that are not one of the three, e.g. a direction without significance).
    """
    rng = np.random.default_rng(seed)
    c = stats.t.ppf(1.0 - ALPHA / 2.0, design.df)
    counts = np.zeros((design.n_rows, 3))
    for _ in range(n_draws):
        t = simulate_t(design, draw_prior(design, priors, rng), rng)
        counts[:, 0] += t > c
        counts[:, 1] += np.abs(t) <= c
        counts[:, 2] += t < -c
    c = stats.t.ppf(1.0 - ALPHA / 2.0, design.df)
    obs = []
    for s, a, b, pt_, ci in zip(design.sign, design.a, design.b, design.point, c, strict=True):
        if (pt_ and a > ci) or (not pt_ and b >= T_BIG and a >= ci - 1e-9):
            obs.append("up" if s > 0 else "down")
        elif (pt_ and a <= ci) or np.isclose(a, -b):
            obs.append("none")
        else:
            obs.append("other")
    p = counts / n_draws
    return pd.DataFrame(
        {
            "row_id": design.rows["row_id"].to_numpy(),
            "p_up": p[:, 0],
            "p_none": p[:, 1],
            "p_down": p[:, 2],
            "observed": obs,
        }
    )


def log_likelihood_draws(design: VoteDesign, params: dict) -> np.ndarray:
    """Log likelihood of the design's statements for many parameter draws at once.

    ``params`` holds ``delta`` (N, C) and ``tau_study`` (N,); returns (N,). The same
    likelihood as the PyMC model of :func:`build_model` (module docstring), evaluated in numpy
    for draws that did not come from NUTS (:func:`reference_posterior`).
    """
    s_nodes, lw = design.nodes()
    delta = np.atleast_2d(params["delta"])
    ts = np.atleast_1d(params["tau_study"])
    out = np.zeros(delta.shape[0])
    for i in range(design.n_rows):
        nc = (design.sign[i] * delta[:, design.cell[i]] * math.sqrt(design.h[i]))[:, None]
        sc = np.sqrt(1.0 + design.h[i] * ts**2)[:, None]
        terms = _log_terms(design.a[i], design.b[i], s_nodes[i], lw[i], nc, sc, design.point[i])
        out += special.logsumexp(terms, axis=1)
    return out


def reference_posterior(design: VoteDesign, *, n_draws=40_000, seed, priors=None) -> dict:
    """The posterior by importance sampling from the prior: a reference free of MCMC.

    Draws ``n_draws`` parameter sets from the priors (:func:`draw_prior`'s distributions) and
    weights them by :func:`log_likelihood_draws`. With few statements per design the
    posterior stays close enough to the prior for this to be accurate (``ess``, the
    importance sampling's effective sample size, says how close); simulation-based calibration
    uses it to tell a sampler's error from the chance of the simulated data sets
    (:func:`run_sbc_replicate`).

    Returns the draws (``mu`` (N, G), ``tau_cell``, ``tau_study`` (N,), ``delta`` (N, C)),
    their normalised ``weights`` and ``ess``.
    """
    pri = priors or VotePriors()
    rng = np.random.default_rng(seed)
    n_g, n_c = len(design.groups), len(design.cells)
    mu = rng.normal(0.0, pri.mu_sd, (n_draws, n_g))
    tau_cell = np.abs(rng.normal(0.0, pri.tau_cell_sd, n_draws))
    tau_study = np.abs(rng.normal(0.0, pri.tau_study_sd, n_draws))
    z = rng.normal(0.0, 1.0, (n_draws, n_c))
    delta = mu[:, design.cell_group] + tau_cell[:, None] * z
    ll = log_likelihood_draws(design, {"delta": delta, "tau_study": tau_study})
    w = np.exp(ll - ll.max())
    w /= w.sum()
    return {"mu": mu, "tau_cell": tau_cell, "tau_study": tau_study, "delta": delta,
            "weights": w, "ess": float(1.0 / np.sum(w**2))}  # fmt: skip


SBC_PARAMS = ("mu", "tau_cell", "tau_study", "delta")


def sbc_base(design: VoteDesign) -> VoteDesign:
    """The design's rows with simulated-statement structure (no exact-p rows), for SBC."""
    n = design.n_rows
    c = stats.t.ppf(1.0 - ALPHA / 2.0, design.df)
    return design.with_regions(np.ones(n), -c, c)


def run_sbc_replicate(design: VoteDesign, seed: int, *, priors=None, draws=500, tune=500,
                      chains=2, n_ranks=99, compiled=None, reference_draws=0) -> dict:  # fmt: skip
    """One SBC replicate (Talts et al. 2018): draw parameters from the prior, simulate the
    reported classes of every row, fit, and return the rank of each true value among
    ``n_ranks`` thinned posterior draws (``rank_<param>[i]``), with the diagnostics.

    With ``reference_draws``, also the posterior probability below each true value under
    :func:`reference_posterior` of the same simulated data (``ref_<param>[i]``, in [0, 1]) and
    that reference's effective sample size (``ref_ess``): NUTS ranks that follow the reference
    quantiles show that the sampler reproduces the posterior, whatever the ranks' uniformity
    test says about the draw of data sets."""
    rng = np.random.default_rng(seed)
    truth = draw_prior(design, priors, rng)
    sim = design.with_regions(*simulate_regions(design, simulate_t(design, truth, rng)))
    if compiled is not None:  # same rows and structure: only the regions change
        compiled = compiled.with_data(sign=sim.sign, a=sim.a, b=sim.b)
    res = fit(sim, priors=priors, seed=seed, draws=draws, tune=tune, chains=chains, gate="off",
              compiled=compiled)  # fmt: skip
    out = {"seed": seed, "n_ranks": n_ranks, "passed": res.converged,
           "max_rhat": res.diagnostics.max_rhat, "divergences": res.diagnostics.n_divergences,
           "min_ess_bulk": res.diagnostics.min_ess_bulk}  # fmt: skip
    ref = (
        reference_posterior(sim, n_draws=reference_draws, seed=seed + 1_000_003, priors=priors)
        if reference_draws
        else None
    )
    if ref is not None:
        out["ref_ess"] = ref["ess"]
    for name in SBC_PARAMS:
        post = res.draws(name)
        idx = np.linspace(0, len(post) - 1, n_ranks).round().astype(int)
        thin = post[idx]
        true = np.atleast_1d(truth[name])
        thin = thin.reshape(n_ranks, -1)
        for j in range(true.size):
            label = name if true.size == 1 else f"{name}[{j}]"
            out[f"rank_{label}"] = int((thin[:, j] < true[j]).sum())
            if ref is not None:
                x = ref[name].reshape(len(ref["weights"]), -1)[:, j]
                out[f"ref_{label}"] = float(np.sum(ref["weights"] * (x < true[j])))
    return out


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------


def _word(p: float, n_studies: int) -> str:
    from retrosim.meta import claims as cl

    if p >= cl.P_VOTE_SUPPORTED:
        return "supported" if n_studies >= cl.MIN_STUDIES_SUPPORTED else "plausible"
    if p >= cl.P_VOTE_PLAUSIBLE:
        return "plausible"
    if p <= 1.0 - cl.P_VOTE_SUPPORTED:
        return "contradicted"
    if p <= cl.P_VOTE_NOT_SUPPORTED:
        return "not supported"
    return "inconclusive"


def _row(claim, reading, **kw) -> dict:
    from retrosim.meta import claims as cl

    base = {
        "claim": claim.key,
        "claim_text": claim.text,
        "family": claim.family,
        "mode": {"emg_running": "run", "emg_walking": "walk"}.get(reading, "unspecified"),
        "reading": cl.VOTE_READINGS[reading],
        "reading_key": reading,
        "claimed": "backward > forward" if claim.family == "emg" else "better than control",
        "stated": "direction only",
        "speed_ref_m_s": np.nan,
        "speed_ref_low_m_s": np.nan,
        "speed_ref_high_m_s": np.nan,
        "speed_ref_source": "",
        "speed_moderated": False,
        "speed_extrapolated": False,
        "direction_votes": "",
        "construct": "standardised effect delta (SD units), from direction-only results",
        "n_studies": 0,
        "n_participants": 0,
        **{
            k: np.nan
            for k in (
                "median_pct",
                "ci_low_pct",
                "ci_high_pct",
                "pred_low_pct",
                "pred_high_pct",
                "p_in_range",
                "p_in_range_mean",
                "p_in_range_new_study",
            )
        },
        "p_direction": np.nan,
        "delta_median": np.nan,
        "delta_low": np.nan,
        "delta_high": np.nan,
        "verdict": cl.NOT_TESTABLE,
        "verdict_basis": "",
        "verdict_at_low_speed": "",
        "verdict_at_high_speed": "",
        "reliable": True,
        "note": claim.note,
        "judged_on": "mean",
        "studies": "",
        "article_sources": cl.article_citation(claim.key),
    }
    base.update(kw)
    return base


def _votes(rows: pd.DataFrame) -> str:
    d = rows["direction"].value_counts()
    return f"{d.get('backward>forward', 0)}>/{d.get('no_difference', 0)}=/{d.get('backward<forward', 0)}<"


def _summ(x: np.ndarray, direction: int = 1) -> dict:
    tail = (1.0 - INTERVAL_PCT / 100.0) / 2.0
    q = np.quantile(x, [tail, 0.5, 1.0 - tail])
    return {"delta_low": q[0], "delta_median": q[1], "delta_high": q[2],
            "p_direction": float(np.mean(direction * x > 0))}  # fmt: skip


def _group_cells(design: VoteDesign, target: str, mode: str) -> list[str]:
    groups = TARGET_GROUPS[target]
    return [c for c in design.cells
            if c.endswith(f":{mode}") and EMG_MUSCLES[c.split(":")[0]] in groups]  # fmt: skip


def _rows_of(design: VoteDesign, cells: list[str]) -> pd.DataFrame:
    idx = [design.cells.index(c) for c in cells]
    return design.rows[design.rows["cell_index"].isin(idx)]


def _evidence(rows: pd.DataFrame, n_col="n") -> dict:
    keys = rows["group_key"] if "group_key" in rows else rows["study_key"]
    n = rows.drop_duplicates("study_key")[n_col].astype(float).sum() if len(rows) else 0
    return {"n_studies": int(keys.nunique()), "n_participants": int(n),
            "studies": ", ".join(sorted(set(rows["study_key"])))}  # fmt: skip


def _emg_rows(claim, res: VoteResult | None) -> list[dict]:
    out = []
    for reading in claim.readings:
        mode = "run" if reading == "emg_running" else "walk"
        d = res.design if res is not None else None
        if claim.kind == "per_muscle":
            cells = [c for c in d.cells if c.endswith(f":{mode}")] if d else []
            if not cells:
                out.append(_row(claim, reading, verdict_basis=f"no {mode} EMG comparison"))
            for c in cells:
                rows = _rows_of(d, [c])
                s = _summ(res.cell_draws(c))
                ev = _evidence(rows)
                out.append(_row(
                    claim, reading, target=c.split(":")[0], **s, **ev,
                    direction_votes=_votes(rows), verdict=_word(s["p_direction"], ev["n_studies"]),
                    verdict_basis=f"P(more active backward) = {s['p_direction']:.2f}",
                    reliable=res.converged,
                ))  # fmt: skip
            continue
        targets = claim.targets or (claim.target,)
        cells = {t: (_group_cells(d, t, mode) if d else []) for t in targets}
        absent = [t for t in targets if not cells[t]]
        if claim.kind == "direction":
            if absent:
                out.append(_row(claim, reading, target=claim.target,
                                verdict_basis=f"no {mode} EMG row of the {claim.target}"))  # fmt: skip
                continue
            x = np.mean([res.cell_draws(c) for c in cells[claim.target]], axis=0)
            rows = _rows_of(d, cells[claim.target])
            s, ev = _summ(x), _evidence(rows)
            word = _word(s["p_direction"], ev["n_studies"])
            out.append(_row(claim, reading, target=claim.target, **s, **ev, verdict=word,
                            direction_votes=_votes(rows), reliable=res.converged,
                            verdict_basis=f"P(backward > forward) = {s['p_direction']:.2f}, mean "
                            f"of the muscles with data ({', '.join(cells[claim.target])})"))  # fmt: skip
            continue
        out.append(_contradiction_row(claim, reading, res, cells, mode))
    return out


def _contradiction_row(claim, reading, res, cells, mode) -> dict:
    from retrosim.meta import claims as cl

    quad, post = claim.targets
    glute_note = ("no gluteus maximus EMG comparison in the evidence: the posterior chain is "
                  "represented by the hamstrings only")  # fmt: skip
    if res is None or not cells[quad] or not cells[post]:
        miss = [t for t in claim.targets if res is None or not cells[t]]
        return _row(claim, reading, verdict_basis=f"not testable: no {mode} EMG row of the "
                    f"{' or the '.join(miss)}; {glute_note}")  # fmt: skip
    xq = np.mean([res.cell_draws(c) for c in cells[quad]], axis=0)
    xp = np.mean([res.cell_draws(c) for c in cells[post]], axis=0)
    p_quad = float(np.mean(xq > xp))
    if p_quad >= cl.P_FAVOURS:
        answer, word = (
            "the data favour 000 (quadriceps) over 001/002 (posterior chain)",
            "plausible",
        )
    elif p_quad <= 1.0 - cl.P_FAVOURS:
        answer, word = (
            "the data favour 001/002 (posterior chain) over 000 (quadriceps)",
            "plausible",
        )
    else:
        answer, word = "the data favour neither 000 (quadriceps) nor 001/002 (posterior chain)", "inconclusive"  # fmt: skip
    rows = _rows_of(res.design, cells[quad] + cells[post])
    s = _summ(xq - xp)
    return _row(claim, reading, **s, **_evidence(rows), verdict=word, reliable=res.converged,
                direction_votes=_votes(rows), claimed="quadriceps vs posterior chain",
                verdict_basis=f"{answer}: P(quadriceps delta > posterior-chain delta) = "
                f"{p_quad:.2f}; {glute_note}")  # fmt: skip


def _training_rows(claim, res: VoteResult | None, training: pd.DataFrame) -> list[dict]:
    out = []
    for reading in claim.readings:
        pop = "trained" if reading == "training_trained" else "untrained"
        cell = f"{claim.target}:passive"
        d = res.design if res is not None else None
        rows = (
            d.rows[d.rows["cell_index"] == d.cells.index(cell)] if d and cell in d.cells else None
        )
        bound = training[(training["outcome_class"] == claim.target)
                         & (training["population_class"] == pop)]  # fmt: skip
        if rows is None or rows.empty or not (rows["population_class"] == pop).all():
            why = (f"no {pop} study against a passive control with group sizes"
                   if rows is None or rows.empty or not (rows["population_class"] == pop).any()
                   else f"the cell pools {pop} and other populations")  # fmt: skip
            if len(bound):
                why += "; rows of this class and population: " + ", ".join(
                    f"{r.row_id} ({r.result}, {r.design})" for r in bound.itertuples()
                )
            out.append(_row(claim, reading, target=claim.target, verdict_basis=why))
            continue
        s = _summ(res.cell_draws(cell))
        ev = _evidence(rows.assign(n=rows["n_train"] + rows["n_control"]))
        d_votes = rows["direction"].value_counts()
        out.append(_row(
            claim, reading, target=claim.target, **s, **ev, reliable=res.converged,
            verdict=_word(s["p_direction"], ev["n_studies"]),
            direction_votes=f"{d_votes.get('backward>forward', 0)} better/"
            f"{d_votes.get('no_difference', 0)} no difference/{d_votes.get('backward<forward', 0)} worse",
            verdict_basis=f"P(training better than passive control) = {s['p_direction']:.2f}",
        ))  # fmt: skip
    return out


def _learning_row(claim, habituation: pd.DataFrame) -> dict:
    h = habituation
    ids = ", ".join(sorted(set(h["study_key"])))
    sessions = ", ".join(sorted(set(h["session"])))
    return _row(
        claim, "habituation", studies=ids, n_studies=h["study_key"].nunique(),
        n_participants=int(h.drop_duplicates("study_key")["n"].sum()),
        verdict_basis=(
            "bounded, not dated: the only habituation study reports sessions "
            f"({sessions}); its outcomes fell from baseline to week 4, the intermediate weeks are "
            "not reported, so a learning phase of 2-3 weeks can be neither confirmed nor excluded"
        ),
    )  # fmt: skip


def claim_verdicts(emg: VoteResult | None, training: VoteResult | None, *,
                   training_table=None, habituation=None) -> pd.DataFrame:  # fmt: skip
    """One row per vote claim x reading (and per muscle), in the columns of
    :func:`retrosim.meta.claims.evaluate` plus ``target``, ``delta_median``, ``delta_low``,
    ``delta_high`` (95 % interval of the standardised effect), ``studies`` and
    ``article_sources`` (article file and quoted sentence of every source)."""
    from retrosim.evidence import tables
    from retrosim.meta import claims as cl

    tr = tables.load_training() if training_table is None else training_table
    hb = tables.load_habituation() if habituation is None else habituation
    out = []
    for c in cl.VOTE_CLAIMS:
        if c.family == "emg":
            out += _emg_rows(c, emg)
        elif c.family == "training":
            out += _training_rows(c, training, tr)
        elif c.kind == "bounded":
            out.append(_learning_row(c, hb))
        else:
            out.append(_row(c, "none", verdict_basis=c.note))
    return pd.DataFrame(out)


def fit_all(*, seed, draws=VOTE_DRAWS, tune=1000, chains=4, gate="warn"
            ) -> tuple[VoteResult, VoteResult]:  # fmt: skip
    """Fit the EMG and training vote models on the shipped evidence.

    ``gate="warn"``: a fit that fails the gate is returned and its verdict rows are marked
    unreliable (the claims pipeline then exits non-zero).
    """
    emg = fit(emg_design(), seed=seed, draws=draws, tune=tune, chains=chains, gate=gate)
    tr = fit(training_design(), seed=seed + 1, draws=draws, tune=tune, chains=chains, gate=gate)
    return emg, tr


def verdict_rows(*, seed, draws=VOTE_DRAWS, tune=1000, chains=4) -> pd.DataFrame:
    """The one call of the claims pipeline: fit both vote models and return their verdict rows
    (:func:`claim_verdicts`)."""
    emg, tr = fit_all(seed=seed, draws=draws, tune=tune, chains=chains)
    return claim_verdicts(emg, tr)
