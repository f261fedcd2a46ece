"""The claims pipeline as one public function: pool the evidence, then judge every claim.

:func:`check_claims` is what ``retrosim claims`` runs (the command only prints its result), and
what a notebook calls::

    import retrosim
    check = retrosim.check_claims(seed=20240601)
    check.verdicts                      # one row per claim x reading
    print(check.summary())              # the verdict table
    check.write("results")              # claims.csv, posterior, PPC, ...

:func:`fit_evidence` is the one place where the claims' pooled model is set up (the pipeline
and the paper's studies both call it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported when the pipeline runs, so `retrosim --help` stays fast
    import pandas as pd


__all__ = ["ClaimsCheck", "check_claims", "fit_evidence"]

#: Default seed of the claims pipeline (the command line's ``--seed`` default).
DEFAULT_SEED = 20240601


def fit_evidence(
    effects,
    statements=None,
    *,
    seed=DEFAULT_SEED,
    numeric_only=False,
    draws=1000,
    tune=1000,
    chains=4,
    priors=None,
    robust=False,
    marginal=True,
    target_accept=0.95,
    gate="off",
    excluded_surfaces=None,
):
    """Build the meta-analysis design from the claims' evidence and fit it.

    Parameters
    ----------
    effects : pandas.DataFrame
        Numeric effect sizes, :func:`retrosim.meta.claims.analysis_rows` of
        :func:`retrosim.evidence.tables.effect_sizes`.
    statements : pandas.DataFrame, optional
        Direction-only statements (:func:`retrosim.evidence.tables.direction_statements`); they
        enter the likelihood (:func:`retrosim.evidence.directions.direction_rows`) unless
        ``numeric_only``, ``robust`` or ``marginal=False``.
    seed : int
        Seed of the sampler.
    gate : {"off", "warn", "raise"}
        Convergence gate of :func:`retrosim.meta.model.fit`; "off" here because the verdicts
        carry the gate's outcome themselves (an unconverged fit marks them unreliable).
    excluded_surfaces : sequence of str, optional
        Surfaces whose statements stay out; default
        :data:`retrosim.meta.claims.EXCLUDED_SURFACES` (none: underwater rows enter with the model's
        ``b_underwater``). Pass the same to
        :func:`retrosim.meta.claims.analysis_rows` for ``effects``.

    Returns
    -------
    retrosim.meta.model.MetaResult
    """
    from retrosim.evidence.directions import direction_rows
    from retrosim.meta import claims as cl
    from retrosim.meta import model as inf

    surfaces = cl.EXCLUDED_SURFACES if excluded_surfaces is None else tuple(excluded_surfaces)
    directions = None
    if statements is not None and len(statements) and not (numeric_only or robust or not marginal):
        st = cl.analysis_rows(statements, excluded_surfaces=surfaces)
        directions, _left_out = direction_rows(st, effects)
    return inf.fit(
        effects,
        priors=priors or inf.Priors(),
        robust=robust,
        marginal=marginal,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        gate=gate,
        target_accept=target_accept,
        directions=directions,
    )


@dataclasses.dataclass
class ClaimsCheck:
    """Result of :func:`check_claims`.

    Attributes
    ----------
    result : retrosim.meta.model.MetaResult
        The pooled meta-analysis fit.
    verdicts : pandas.DataFrame
        One row per claim x reading (:func:`retrosim.meta.claims.evaluate`): effect in percent
        (backward vs forward), intervals, probabilities, verdict and whether it is reliable.
    ppc_rows : pandas.DataFrame
        Posterior predictive check per effect size.
    ppc : dict
        Posterior predictive summary (share inside the 95 % interval, p-values of SD and range).
    extra : dict
        Sensitivity and leave-one-study-out refits when asked (``checks=True``).
    seed : int
        Seed used.
    """

    result: object
    verdicts: pd.DataFrame
    ppc_rows: pd.DataFrame
    ppc: dict
    statements: pd.DataFrame
    extra: dict = dataclasses.field(default_factory=dict)
    seed: int = DEFAULT_SEED

    @property
    def converged(self) -> bool:
        """Whether every fit behind the verdicts passed the convergence gate.

        The pooled meta-analysis, and the vote-counting fits when their verdicts are included
        (their rows are marked unreliable otherwise).
        """
        return bool(self.result.converged) and bool(self.verdicts["reliable"].astype(bool).all())

    @property
    def diagnostics(self):
        """Convergence diagnostics of the pooled fit."""
        return self.result.diagnostics

    def to_dataframe(self) -> pd.DataFrame:
        """The verdict table (a copy of :attr:`verdicts`)."""
        return self.verdicts.copy()

    def summary(self):
        """The verdict table as a :class:`retrosim.bayes.results.Summary` (text, HTML, frame).

        One row per claim x reading: the claimed range as read, the reference speed, the
        posterior median and 95 % interval of the mean effect [%], the 95 % interval for a new
        study [%], P(direction), P(in claimed range), studies and participants, the verdict.
        """
        import pandas as pd

        from retrosim.bayes.results import Summary

        v = self.verdicts
        table = pd.DataFrame(
            {
                "reading": v["reading"],
                "claimed": v["claimed"],
                "speed_m_s": v["speed_ref_m_s"],
                "median_pct": v["median_pct"],
                "ci_low_pct": v["ci_low_pct"],
                "ci_high_pct": v["ci_high_pct"],
                "pred_low_pct": v["pred_low_pct"],
                "pred_high_pct": v["pred_high_pct"],
                "p_direction": v["p_direction"],
                "p_in_range": v["p_in_range"],
                "n_studies": v["n_studies"],
                "verdict": [
                    w if ok else f"UNRELIABLE ({w})"
                    for w, ok in zip(v["verdict"], v["reliable"], strict=True)
                ],
            }
        )
        table.index = v["claim"].to_numpy()
        table.index.name = "claim"
        formats = {c: "{:+.0f}" for c in table.columns if c.endswith("_pct")}
        formats |= {"speed_m_s": "{:.2f}", "p_direction": "{:.2f}", "p_in_range": "{:.2f}"}
        formats["n_studies"] = "{:.0f}"
        return Summary(
            table,
            title="Claims on trial: backward vs forward running and walking",
            header=[f"pooled fit: {self.diagnostics}", f"seed {self.seed}"],
            notes=[
                "effects in % (backward vs forward): posterior median and 95 % interval of the "
                "mean effect; pred: 95 % interval for a new study",
            ],
            formats=formats,
        )

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def plot(self, ax=None):
        """Forest of the verdicts' mean effects with 95 % intervals [%]; returns the Axes.

        Draws on ``ax`` (a new :class:`matplotlib.figure.Figure` only when ``ax`` is None);
        never switches the matplotlib backend.
        """
        import numpy as np

        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(8, 0.3 * len(self.verdicts) + 1.2)).subplots()
        v = self.verdicts[np.isfinite(self.verdicts["median_pct"].astype(float))]
        y = np.arange(len(v))[::-1]
        ax.hlines(y, v["ci_low_pct"], v["ci_high_pct"], color="0.3")
        ax.plot(v["median_pct"], y, "o", color="C0")
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_yticks(y, [f"{c}: {r}" for c, r in zip(v["claim"], v["reading"], strict=True)])
        ax.set_xlabel("backward vs forward, mean effect [%] (95 % interval)")
        return ax

    def write(self, out) -> list[Path]:
        """Write ``claims.csv`` and the fit's outputs into folder ``out``; return the paths."""
        from retrosim.meta import claims as cl

        return cl.write_outputs(
            self.result, self.verdicts, self.ppc_rows, Path(out), extra=self.extra, seed=self.seed
        )


def check_claims(
    *,
    seed: int = DEFAULT_SEED,
    numeric_only: bool = False,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    tau_prior: str = "half_normal",
    robust: bool = False,
    marginal: bool = True,
    target_accept: float = 0.95,
    checks: bool = False,
    effects: pd.DataFrame | None = None,
    statements: pd.DataFrame | None = None,
    progress=None,
    votes: bool = True,
) -> ClaimsCheck:
    """Pool the published evidence and give every registered claim its verdicts.

    Parameters
    ----------
    seed : int
        Seed of the sampler and the posterior predictive draws.
    numeric_only : bool
        Leave the direction-only results out of the likelihood.
    draws, tune, chains : int
        Sampler settings (per chain).
    tau_prior : {"half_normal", "half_cauchy", "log_normal_tau2"}
        Between-study SD prior (:class:`retrosim.meta.model.Priors`).
    robust : bool
        Student-t study effects (numeric rows only).
    marginal : bool
        The marginal model (study effects integrated out); ``False`` samples them.
    target_accept : float
        NUTS target acceptance.
    checks : bool
        Also run prior and correlation sensitivity refits and leave-one-study-out refits.
    effects, statements : pandas.DataFrame, optional
        Evidence to use instead of the shipped dataset (numeric effect sizes and direction-only
        statements, as :func:`retrosim.evidence.tables.effect_sizes` and
        :func:`retrosim.evidence.tables.direction_statements` return them).
    progress : callable, optional
        Called with a short description before each stage (the command line shows it).
    votes : bool
        Also judge the claims answered by direction-only evidence (muscles, training, learning
        phase: :data:`retrosim.meta.claims.VOTE_CLAIMS`, :func:`retrosim.meta.votes.verdict_rows`),
        appended to :attr:`ClaimsCheck.verdicts` (two more fits).

    Returns
    -------
    ClaimsCheck

    Raises
    ------
    retrosim.errors.InputError
        If a sampler setting is not a positive integer.
    """
    from retrosim.errors import InputError
    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims as cl
    from retrosim.meta import model as inf

    say = progress or (lambda _text: None)
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(value) != value or value < 1:
            raise InputError(f"must be a positive integer, got {value}", argument=name)
    say("loading evidence")
    effects = cl.analysis_rows(evidence.effect_sizes() if effects is None else effects)
    statements = evidence.direction_statements() if statements is None else statements
    say(f"compiling and sampling the meta-analysis model ({len(effects)} effect sizes)")
    result = fit_evidence(
        effects,
        statements,
        seed=seed,
        numeric_only=numeric_only,
        priors=inf.Priors(tau_prior=tau_prior),
        robust=robust,
        marginal=marginal,
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
    )
    say("posterior predictive check and verdicts")
    verdicts = cl.evaluate(result, statements=statements)
    if votes:
        import pandas as pd

        from retrosim.meta import votes as vt

        say("direction-only families (muscles, training): vote models")
        # twice the draws: the vote models mix slower (retrosim.meta.votes.VOTE_DRAWS)
        extra_rows = vt.verdict_rows(seed=seed, draws=2 * draws, tune=tune, chains=chains)
        verdicts = pd.concat([verdicts, extra_rows], ignore_index=True)
    ppc_rows, ppc = inf.posterior_predictive_check(result, seed=seed)
    extra = {}
    if checks:
        say("sensitivity refits (r prior, prior scales)")
        extra["sensitivity"] = inf.sensitivity(result.design, seed=seed)
        say("leave-one-study-out refits")
        extra["loso"] = inf.leave_one_study_out(result, seed=seed)
    return ClaimsCheck(result, verdicts, ppc_rows, ppc, statements, extra, seed)
