"""Posterior sampling with a convergence gate.

One entry point, :func:`sample`, used by every Bayesian model in retrosim (energetics
calibration, meta-analysis, lab-trial fits). It samples with nutpie (compiled through
numba) and falls back to PyMC's own NUTS when nutpie is unavailable or fails to compile,
then computes the diagnostics that decide whether a posterior may be reported:

* rank-normalised split R-hat <= 1.01,
* bulk and tail effective sample size >= 400,
* zero divergent transitions,

following Vehtari et al. (2021) [1]_.

Conventions of every fit in retrosim (meta-analysis, calibration, lab trials):

* ``seed`` is a required keyword argument: no fitting or checking function has a default
  seed, so every posterior names the seed it came from (``RetroChain``'s calibrated draws use
  the documented :data:`retrosim.bayes.calibration.POSTERIOR_SEED`);
* ``gate="raise"`` is the default: a posterior that fails the gate raises
  :class:`retrosim.errors.ConvergenceError`. ``"warn"`` (log and return; the command line
  passes it when asked to allow unconverged fits) and ``"off"`` (refits whose convergence is
  reported in their tables) are chosen explicitly;
* results speak the API of :mod:`retrosim.bayes.results` (``summary()``, ``to_dataframe()``,
  ``to_netcdf()``, ``plot(ax=None)``, ``diagnostics``).

References
----------
.. [1] A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner, "Rank-normalization,
   folding, and localization: an improved R-hat for assessing convergence of MCMC",
   Bayesian Analysis 16(2), 667-718, 2021. doi:10.1214/20-BA1221
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, dataclass, field, replace

import arviz as az
import numpy as np

from retrosim.errors import ConvergenceError, InputError

log = logging.getLogger(__name__)

RHAT_MAX = 1.01
ESS_MIN = 400
#: Per-parameter diagnostics kept on :attr:`Diagnostics.per_variable`.
DIAGNOSTIC_NAMES = ("r_hat", "ess_bulk", "ess_tail")


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of one posterior, and whether it passed the gate."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    n_divergences: int
    n_draws: int
    sampler: str
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    worst: dict = field(default_factory=dict)
    #: Per-parameter ``r_hat``, ``ess_bulk`` and ``ess_tail`` (ArviZ's values) on dimension
    #: ``diagnostic``: the data behind the minima above (None if not computed).
    per_variable: object = field(default=None, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return (
            bool(np.isfinite(self.max_rhat))
            and self.max_rhat <= self.rhat_max
            and self.min_ess_bulk >= self.ess_min
            and self.min_ess_tail >= self.ess_min
            and self.n_divergences == 0
        )

    def problems(self) -> list[str]:
        """Plain-language list of the failed criteria (empty when passed)."""
        out = []
        if not (np.isfinite(self.max_rhat) and self.max_rhat <= self.rhat_max):
            out.append(f"R-hat {self.max_rhat:.3f} > {self.rhat_max}")
        if self.min_ess_bulk < self.ess_min:
            out.append(f"bulk ESS {self.min_ess_bulk:.0f} < {self.ess_min:.0f}")
        if self.min_ess_tail < self.ess_min:
            out.append(f"tail ESS {self.min_ess_tail:.0f} < {self.ess_min:.0f}")
        if self.n_divergences:
            out.append(f"{self.n_divergences} divergent transitions")
        return out

    def as_dict(self) -> dict:
        """The gate's numbers and outcome as a flat dictionary (no per-parameter values)."""
        d = asdict(replace(self, per_variable=None))
        d.pop("per_variable")
        d["passed"] = self.passed
        return d

    def to_dataset(self):
        """Per-parameter R-hat and bulk/tail ESS as an :class:`xarray.Dataset` (dimension
        ``diagnostic``), with the gate's outcome, divergences and thresholds as attributes."""
        import xarray as xr

        ds = xr.Dataset() if self.per_variable is None else self.per_variable.copy()
        flat = {k: v for k, v in self.as_dict().items() if k != "worst"}
        ds.attrs.update({k: int(v) if isinstance(v, bool) else v for k, v in flat.items()})
        return ds

    def to_dataframe(self):
        """One row per scalar parameter (labelled as :func:`arviz.summary` labels them):
        ``r_hat``, ``ess_bulk``, ``ess_tail`` and whether that parameter meets the R-hat and
        ESS thresholds. The divergences and the overall outcome are in :meth:`as_dict`."""
        import pandas as pd

        rows = {}
        ds = self.per_variable
        for name in [] if ds is None else ds.data_vars:
            da = ds[name]
            dims = [d for d in da.dims if d != "diagnostic"]
            vals = np.asarray(da.transpose("diagnostic", *dims).values, float).reshape(3, -1)
            coords = [da[d].values if d in da.coords else np.arange(da.sizes[d]) for d in dims]
            for j, idx in enumerate(itertools.product(*coords)):
                label = name + (f"[{', '.join(map(str, idx))}]" if idx else "")
                rows[label] = dict(zip(DIAGNOSTIC_NAMES, vals[:, j], strict=True))
        tab = pd.DataFrame.from_dict(rows, orient="index", columns=list(DIAGNOSTIC_NAMES))
        tab.index.name = "parameter"
        tab["rhat_ok"] = tab["r_hat"] <= self.rhat_max
        tab["ess_ok"] = (tab["ess_bulk"] >= self.ess_min) & (tab["ess_tail"] >= self.ess_min)
        return tab

    def __str__(self) -> str:
        status = "passed" if self.passed else "FAILED: " + "; ".join(self.problems())
        return (
            f"max R-hat {self.max_rhat:.3f}, min bulk ESS {self.min_ess_bulk:.0f}, "
            f"min tail ESS {self.min_ess_tail:.0f}, divergences {self.n_divergences} "
            f"({self.sampler}, {self.n_draws} draws) — {status}"
        )


def _min_over_vars(ds):
    """Return (min value, variable name) over every element of every variable."""
    best, name = np.inf, None
    for var, da in ds.data_vars.items():
        vals = np.asarray(da.values, dtype=float)
        if vals.size and np.nanmin(vals) < best:
            best, name = float(np.nanmin(vals)), var
    return best, name


def diagnose(idata, var_names=None, *, rhat_max=RHAT_MAX, ess_min=ESS_MIN, sampler="?"):
    """Compute the convergence diagnostics of ``idata`` (a DataTree with a posterior group).

    Parameters
    ----------
    idata : xarray.DataTree
        Sampling result with ``posterior`` and ``sample_stats`` groups.
    var_names : list of str, optional
        Variables to check (default: all posterior variables).
    rhat_max, ess_min : float
        Thresholds of the gate.
    """
    import xarray as xr

    post = idata["posterior"].to_dataset()
    if var_names is not None:
        post = post[list(var_names)]
    # a stuck chain (zero variance) makes ArviZ divide by zero: R-hat is then inf or NaN, which
    # the gate reports as a failure, so numpy's division warnings say nothing more
    with np.errstate(divide="ignore", invalid="ignore"):
        rhat = az.rhat(post)
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")
    neg_rhat, rhat_var = _min_over_vars(-rhat)
    bulk, bulk_var = _min_over_vars(ess_bulk)
    tail, tail_var = _min_over_vars(ess_tail)
    n_div = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        n_div = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    n_draws = int(post.sizes.get("chain", 1) * post.sizes.get("draw", 0))
    per_var = xr.concat([rhat, ess_bulk, ess_tail], dim="diagnostic", coords="minimal")
    per_var = per_var.assign_coords(diagnostic=list(DIAGNOSTIC_NAMES))
    return Diagnostics(
        max_rhat=-neg_rhat,
        min_ess_bulk=bulk,
        min_ess_tail=tail,
        n_divergences=n_div,
        n_draws=n_draws,
        sampler=sampler,
        rhat_max=rhat_max,
        ess_min=ess_min,
        worst={"rhat": rhat_var, "ess_bulk": bulk_var, "ess_tail": tail_var},
        per_variable=per_var,
    )


def sample(
    model,
    *,
    draws=1000,
    tune=1000,
    chains=4,
    seed,
    sampler="nutpie",
    var_names=None,
    gate="raise",
    progress=False,
    target_accept=None,
    rhat_max=RHAT_MAX,
    ess_min=ESS_MIN,
    compiled=None,
    nutpie_kwargs=None,
    cores=None,
):
    """Sample ``model`` and apply the convergence gate.

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains : int
        Posterior draws per chain, tuning steps per chain, number of chains.
    seed : int or numpy.random.Generator
        Required: every posterior in retrosim is reproducible.
    sampler : {"nutpie", "pymc"}
        ``"nutpie"`` (default) falls back to PyMC's NUTS with a warning if nutpie fails.
    var_names : list of str, optional
        Variables the gate checks (default: all free and deterministic variables).
    gate : {"raise", "warn", "off"}
        What to do when the gate fails: raise :class:`ConvergenceError`, log a warning,
        or nothing. The diagnostics are returned in every case.
    progress : bool
        Show the sampler's progress display.
    target_accept : float, optional
        NUTS target acceptance (PyMC sampler) / ``target_accept`` passed to nutpie.
    compiled : nutpie.CompiledModel, optional
        A model already compiled by nutpie (for example with new data through
        ``with_data``), so that repeated fits skip compilation. ``model`` is still used
        by the PyMC fallback.
    nutpie_kwargs : dict, optional
        Extra keyword arguments for ``nutpie.sample`` (e.g. ``adaptation``).
    cores : int, optional
        Chains run in parallel (default ``min(chains, 2)``). A model whose log density is a
        Python function (``nutpie.compiled_pyfunc``) is fastest on 1: its chains share the GIL.

    Returns
    -------
    idata : xarray.DataTree
        With ``posterior``, ``sample_stats`` and a ``diagnostics`` attribute dictionary on
        the posterior group.
    diagnostics : Diagnostics
    """
    if sampler not in ("nutpie", "pymc"):
        raise InputError(
            f"unknown sampler {sampler!r}; expected 'nutpie' or 'pymc'", argument="sampler"
        )
    if gate not in ("raise", "warn", "off"):
        raise InputError(
            f"unknown gate {gate!r}; expected 'raise', 'warn' or 'off'", argument="gate"
        )
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**31 - 1))
    if seed is None:
        raise InputError("a seed is required for reproducible sampling", argument="seed")
    seed = int(seed)

    used = sampler
    idata = None
    if sampler == "nutpie":
        try:
            import nutpie

            if compiled is None:
                compiled = compile_model(_built(model))
            kwargs = dict(nutpie_kwargs or {})
            if target_accept is not None:
                kwargs["target_accept"] = target_accept
            idata = nutpie.sample(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores or min(chains, 2),
                seed=seed,
                progress_bar=progress,
                save_warmup=False,
                **kwargs,
            )
        except Exception as exc:  # fallback is documented behaviour
            log.warning(
                "nutpie failed (%s: %s); falling back to PyMC NUTS", type(exc).__name__, exc
            )
            used = "pymc"
    if idata is None:
        import pymc as pm

        model = _built(model)
        with model, strict_numerics():
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=1,
                random_seed=seed,
                progressbar=progress,
                nuts_sampler="pymc",
                target_accept=target_accept or 0.8,
                compute_convergence_checks=False,
            )
        used = "pymc"
    diag = diagnose(idata, var_names, rhat_max=rhat_max, ess_min=ess_min, sampler=used)
    apply_gate(idata, diag, gate)
    return idata, diag


def strict_numerics():
    """Context in which PyTensor compiles without LLVM fast-math.

    PyTensor's numba backend compiles with fast-math by default (``numba__fastmath``), which
    lets LLVM reorder floating-point sums differently in a freshly compiled model and one
    loaded from its on-disk cache: the same seed then gave posteriors differing in the last
    bits (and, after many NUTS steps, far more) between processes. Every compilation in
    retrosim goes through this context so that a seed means the same draws on any run.
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def compile_model(model):
    """``nutpie.compile_pymc_model(model)`` under :func:`strict_numerics`."""
    import nutpie

    with strict_numerics():
        return nutpie.compile_pymc_model(model)


def _built(model):
    """The model itself, or what its factory builds."""
    import pymc as pm

    return model if isinstance(model, pm.Model) or not callable(model) else model()


def apply_gate(idata, diag, gate="raise"):
    """Record ``diag`` on the posterior group and raise/warn per ``gate`` if it failed."""
    idata["posterior"].attrs["diagnostics"] = str(diag)
    idata["posterior"].attrs["converged"] = int(diag.passed)
    if not diag.passed:
        msg = "posterior failed the convergence gate: " + "; ".join(diag.problems())
        if gate == "raise":
            raise ConvergenceError(msg, diag)
        if gate == "warn":
            log.warning(msg)
