"""Figures, NetCDF and the per-fit report of a :class:`retrosim.trials.fit.TrialFit`.

:func:`write_outputs` renders everything into a temporary folder beside the output folder
and moves the files into place only when all of them were written, so a failed fit or a
failed figure leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.bayes.results import PosteriorResults
from retrosim.trials.schema import SCHEMA

log = logging.getLogger(__name__)

__all__ = ["plot_fit", "read_fit", "render_report", "write_outputs"]

#: Files written by :func:`write_outputs`.
OUTPUT_FILES = (
    "fit.nc",
    "summary.csv",
    "ratio.csv",
    "participant_ratio.csv",
    "claims.csv",
    "report.md",
    "ratio.png",
    "ppc.png",
    "prior_update.png",
)


def write_netcdf(tree, path):
    """Write a DataTree atomically as NetCDF4 (groups kept), through h5netcdf."""
    from retrosim._io import NETCDF_ENGINE, atomic_path

    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o644)
        tree.to_netcdf(tmp, engine=NETCDF_ENGINE)
    return Path(path)


def read_fit(path):
    """Read a fit written by :meth:`TrialFit.to_netcdf` back as a DataTree."""
    import xarray as xr

    from retrosim._io import NETCDF_ENGINE

    return xr.open_datatree(Path(path), engine=NETCDF_ENGINE).load()


# ------------------------------------------------------------------------- figures


def plot_fit(fit, kind="ratio", ax=None):
    """One figure of a fitted :class:`~retrosim.trials.fit.TrialFit`.

    Parameters
    ----------
    fit : retrosim.trials.fit.TrialFit
    kind : {"ratio", "ppc", "prior_update", "parameters"}
        Backward/forward ratio by speed, posterior predictive check, prior and posterior
        of the population direction effect, or the parameters' medians and 90 % intervals
        (:meth:`retrosim.bayes.results.PosteriorResults.plot`).
    ax : matplotlib.axes.Axes, optional
        Where to draw. By default a new :class:`matplotlib.figure.Figure` (6 x 4 in) made
        without pyplot, so the matplotlib backend is never touched (``ax.figure`` displays
        in Jupyter and has ``savefig``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    kinds = ("ratio", "ppc", "prior_update", "parameters")
    if kind not in kinds:
        from retrosim.errors import InputError

        raise InputError(
            f"unknown plot {kind!r}; expected {', '.join(map(repr, kinds))}", argument="kind"
        )
    if ax is None:
        from matplotlib.figure import Figure

        n_par = sum(n in fit.idata["posterior"] for n in fit.var_names)
        height = 1.0 + 0.28 * n_par if kind == "parameters" else 4.0
        ax = Figure(figsize=(6.0, height), layout="constrained").add_subplot()
    if kind == "ratio":
        _plot_ratio(fit, ax)
    elif kind == "ppc":
        _plot_ppc(fit, ax)
    elif kind == "prior_update":
        _plot_prior(fit, ax)
    else:
        PosteriorResults.plot(fit, ax=ax)
    return ax


def observed_ratios(fit) -> pd.DataFrame:
    """Per participant and speed: mean backward / mean forward outcome (raw data)."""
    df = fit.data_
    g = df.groupby(["participant_id", "mode", "speed_m_s", "direction"], observed=True)[fit.outcome]
    wide = g.mean().unstack("direction")
    wide = wide.dropna()
    return (wide["backward"] / wide["forward"]).rename("ratio").reset_index()


def _plot_ratio(fit, ax):
    obs = observed_ratios(fit)
    pr = fit.participant_ratio_
    for i, (mode, speeds) in enumerate(fit.conditions_):
        color = f"C{i}"
        grid = np.linspace(speeds.min(), speeds.max(), 50) if speeds.size > 1 else speeds
        r = fit.ratio_at(grid, mode=mode)
        for _, sub in pr[pr["mode"] == mode].groupby("participant_id"):
            ax.plot(sub["speed_m_s"], sub["ratio_median"], color="0.75", lw=0.8, zorder=1)
        o = obs[obs["mode"] == mode]
        ax.scatter(o["speed_m_s"], o["ratio"], s=10, color="0.45", zorder=2,
                   label="observed, per participant" if i == 0 else None)  # fmt: skip
        ax.fill_between(grid, r["ratio_q5"], r["ratio_q95"], color=color, alpha=0.3, zorder=3,
                        label=f"{mode}: population, 90% interval")  # fmt: skip
        ax.plot(grid, r["ratio_median"], color=color, lw=2, zorder=4, marker="o" if
                grid.size == 1 else None, label=f"{mode}: population median")  # fmt: skip
    ax.axhline(1.0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("speed [m/s]")
    ax.set_ylabel(f"backward / forward {fit.outcome}")
    ax.set_title(f"Backward/forward ratio of {fit.outcome} (grey: participants)")
    ax.legend(fontsize=8, frameon=False)


def _plot_ppc(fit, ax):
    y = fit.design_.y
    rep = fit.posterior_predictive_
    bins = np.linspace(min(y.min(), np.quantile(rep, 0.001)), max(y.max(), np.quantile(rep, 0.999)),
                       40)  # fmt: skip
    for i in range(min(40, rep.shape[0])):
        h, _ = np.histogram(rep[i], bins=bins, density=True)
        ax.stairs(h, bins, color="C0", alpha=0.15, lw=0.8)
    h, _ = np.histogram(y, bins=bins, density=True)
    ax.stairs(h, bins, color="k", lw=1.8, label="observed")
    ax.plot([], [], color="C0", alpha=0.5, label="posterior predictive replicates")
    ax.set_xlabel(f"log {fit.outcome} [log {SCHEMA[fit.outcome]['units']}]")
    ax.set_ylabel("density")
    ax.set_title("Posterior predictive check")
    ax.legend(fontsize=8, frameon=False)


def _plot_prior(fit, ax):
    from scipy import stats

    pu = fit.prior_update_
    x = fit.posterior_draws_["beta_direction"]
    lo = min(pu["prior_mean"] - 3 * pu["prior_sd"], x.min())
    hi = max(pu["prior_mean"] + 3 * pu["prior_sd"], x.max())
    grid = np.linspace(lo, hi, 400)
    ax.plot(grid, stats.norm.pdf(grid, pu["prior_mean"], pu["prior_sd"]), color="0.4", ls="--",
            label="prior")  # fmt: skip
    ax.hist(x, bins=60, density=True, color="C1", alpha=0.6, label="posterior (lab data)")
    ax.set_xlabel(f"log backward/forward ratio ({fit.modes_[0]}) at {fit.speed_ref_m_s_:g} m/s")
    ax.set_ylabel("density")
    ax.set_title("Population direction effect: prior and posterior")
    ax.legend(fontsize=8, frameon=False)


# -------------------------------------------------------------------------- report


def _md_table(df: pd.DataFrame, floatfmt="{:.3g}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v)
                 for v in row]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(fit, claims: pd.DataFrame | None = None, figures=("ratio.png", "ppc.png",
                  "prior_update.png")) -> str:  # fmt: skip
    """The Markdown report of a fit."""
    d = fit.diagnostics_
    units = SCHEMA[fit.outcome]["units"]
    synthetic = "synthetic" in fit.data_ and bool(fit.data_["synthetic"].fillna(False).any())
    pu = fit.prior_update_
    parts = [
        f"# Backward vs forward: {fit.outcome} [{units}]",
        "",
        f"Source: `{fit.data_.attrs.get('source', 'DataFrame')}` - {fit.n_obs_} trials, "
        f"{fit.n_participants_} participants, speeds "
        f"{', '.join(f'{s:g}' for s in sorted(fit.data_['speed_m_s'].unique()))} m/s, "
        f"modes {', '.join(sorted(fit.data_['mode'].astype(str).unique()))}.",
    ]
    if synthetic:
        parts += ["", "**These data are labelled synthetic (simulated, not measured).**"]
    status = "passed" if d.passed else "**FAILED - results unreliable**"
    parts += [
        "",
        f"Convergence gate {status}: {d}.",
        f"Parameterization: {fit.parameterization_}; reference speed {fit.speed_ref_m_s_:g} m/s, "
        f"reference mass {fit.mass_ref_kg_:g} kg.",
        "",
        "## Backward/forward ratio by speed (population)",
        "",
        _md_table(fit.ratio_),
        "",
        "![ratio](ratio.png)",
        "",
        "## Per participant: median ratio [90% interval] by speed (m/s)",
        "",
        _md_table(_participant_wide(fit.participant_ratio_)),
        "",
        "## Parameters (log scale)",
        "",
        _md_table(fit.summary().to_dataframe().reset_index()),
        "",
        "## Updating the evidence",
        "",
        f"Prior for the population log ratio ({fit.modes_[0]}) at {pu['speed_ref_m_s']:g} m/s: "
        f"N({pu['prior_mean']:.3f}, {pu['prior_sd']:.3f}) (ratio {pu['prior_ratio']:.3f}). "
        f"Posterior: mean {pu['posterior_mean']:.3f}, sd {pu['posterior_sd']:.3f} "
        f"(ratio {pu['posterior_ratio_median']:.3f}); the lab data moved the mean by "
        f"{pu['shift_in_prior_sd']:+.2f} prior SDs and shrank the SD by "
        f"{100 * pu['sd_reduction']:.0f}%.",
        "",
        "![prior update](prior_update.png)",
        "",
        "## Model checks",
        "",
        f"Posterior predictive ({fit.ppc_['n_draws']} draws): 90% predictive intervals "
        f"contain {100 * fit.ppc_['coverage_90']:.1f}% of the observations; Bayesian p-values "
        + ", ".join(f"{k} {v:.2f}" for k, v in fit.ppc_["p_values"].items())
        + " (values near 0 or 1 flag misfit).",
        "",
        "![ppc](ppc.png)",
        "",
        _loo_text(fit),
        "",
    ]
    if claims is not None and len(claims):
        parts += ["## Claims on these data", "", _md_table(claims), ""]
    parts += [
        "## Model",
        "",
        "log outcome = intercept + participant intercept + (direction effect + participant "
        "direction effect) x direction (+1/2 backward, -1/2 forward) + speed + direction x speed "
        "(+ walk and direction x walk, + log body mass, + grade when they vary) + trial noise. See "
        "`help(retrosim.trials.fit)` for priors.",
        "",
    ]
    return "\n".join(parts)


def _participant_wide(pr: pd.DataFrame) -> pd.DataFrame:
    cell = pr.assign(
        cell=[f"{m:.3f} [{a:.3f}, {b:.3f}]" for m, a, b in
              zip(pr["ratio_median"], pr["ratio_q5"], pr["ratio_q95"], strict=True)]
    )  # fmt: skip
    wide = cell.pivot(index="participant_id", columns=["mode", "speed_m_s"], values="cell")
    wide = wide.fillna("")
    wide.columns = [f"{m} {v:g}" for m, v in wide.columns]
    return wide.reset_index()


def _loo_text(fit):
    if fit.loo_ is None:
        return fit.loo_note_
    loo = fit.loo_
    k = np.asarray(getattr(loo, "pareto_k", np.array([])))
    bad = int((k > 0.7).sum()) if k.size else 0
    return (
        f"{fit.loo_note_}: elpd_loo {float(loo.elpd):.1f} (SE {float(loo.se):.1f}), "
        f"p_loo {float(loo.p):.1f}; {bad} observations with Pareto k > 0.7."
    )


def write_outputs(fit, out_dir, *, claims=None) -> list[Path]:
    """Write NetCDF, CSV tables, figures and the report into ``out_dir`` atomically.

    Everything is rendered into a temporary folder first; files are moved into ``out_dir``
    only once all of them exist. Figures are drawn without pyplot (no backend switch).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write_netcdf(fit.to_datatree(), tmp / "fit.nc")
        fit.summary().to_dataframe().to_csv(tmp / "summary.csv")
        fit.ratio_.to_csv(tmp / "ratio.csv", index=False)
        fit.participant_ratio_.to_csv(tmp / "participant_ratio.csv", index=False)
        if claims is None:
            claims = fit.claim_verdicts()
        claims.to_csv(tmp / "claims.csv", index=False)
        for kind in ("ratio", "ppc", "prior_update"):
            plot_fit(fit, kind).figure.savefig(tmp / f"{kind}.png", dpi=120)
        (tmp / "report.md").write_text(render_report(fit, claims), encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in OUTPUT_FILES:
            os.replace(tmp / name, out_dir / name)
            written.append(out_dir / name)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
