"""Popular claims about backward running, and their verdicts from the pooled evidence.

Each :class:`Claim` names an outcome family, a claimed direction and a claimed range on the
percent scale (backward relative to forward), its popular sources, and the *readings* under
which it can be checked (per minute or per km at the same speed, at self-selected speeds,
knee load per step or per km). :func:`evaluate` turns a fitted
:class:`retrosim.inference.MetaResult` into one row per claim × reading.

Readings
--------
* ``per_minute_same_speed`` — the pooled ln(backward/forward) at equal speed (energy per
  minute, heart rate).
* ``per_km_same_speed`` (energy) — at equal speed the time per km is equal, so the per-km ratio
  **equals** the per-minute ratio; the posterior is the same.
* ``per_minute_self_selected`` / ``per_km_self_selected`` (energy) — needs comparisons at
  self-selected speeds; per km additionally needs both speeds, since
  ln(per-km ratio) = ln(per-minute ratio) + ln(v_forward / v_backward).
* ``per_step_same_speed`` / ``per_step_self_selected`` (knee) — peak load per step.
* ``per_km_same_speed`` (knee) — per step × steps per km; at equal speed the steps-per-km ratio
  equals the step-frequency ratio, so ln(per-km) = ln(per-step) + ln(step-frequency ratio),
  both from the same joint posterior.

Verdict thresholds
------------------
With ``P_in`` = posterior probability that the effect lies in the claimed range and ``P_dir``
= posterior probability of the claimed direction:

* **not testable with current evidence** — no study reports the outcome under this reading
  (e.g. no self-selected-speed energy data). No number is guessed.
* **supported** — ``P_in >= 0.5`` and ``P_dir >= 0.95``, from at least two independent studies
  (one study can make a claim at most *plausible*, however narrow its interval).
* **plausible** — otherwise ``P_in >= 0.25`` and ``P_dir >= 0.5`` (the claimed direction is
  at least as likely as not: an "up to 80 % less" claim is not plausible when the data point to
  more, merely because "up to" admits small effects).
* **not supported** — ``P_in >= 0.05`` but not plausible.
* **contradicted** — ``P_in < 0.05``: the claimed range is essentially excluded.

Each claim states whether it is about the mean effect or about the effect in a new study
(``Claim.judged_on``); both intervals are reported for every reading.

A verdict whose fit failed the convergence gate (R-hat > 1.01, bulk or tail ESS < 400, or any
divergence) keeps its word but is marked **unreliable** (``reliable = False``).

"About X %" is read as X ± 5 percentage points; "up to X %" as any effect in the claimed
direction no larger than X %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .inference import MODES, MetaResult, to_percent

__all__ = [
    "CLAIMS",
    "READINGS",
    "Claim",
    "Source",
    "analysis_rows",
    "evaluate",
    "verdict",
]

P_SUPPORTED = 0.5
P_DIRECTION_SUPPORTED = 0.95
P_PLAUSIBLE = 0.25
P_DIRECTION_PLAUSIBLE = 0.5
P_CONTRADICTED = 0.05
MIN_STUDIES_SUPPORTED = 2

STEP_FREQUENCY_FAMILY = "gait:step_frequency_hz"
JUDGED_ON = ("mean", "new_study")

#: reading key -> (label, matching, kind)
READINGS = {
    "per_minute_same_speed": ("per minute, same speed", "same", "plain"),
    "per_km_same_speed": ("per km, same speed", "same", "per_km"),
    "per_minute_self_selected": ("per minute, self-selected speeds", "self_selected", "plain"),
    "per_km_self_selected": ("per km, self-selected speeds", "self_selected", "per_km"),
    "per_step_same_speed": ("per step, same speed", "same", "plain"),
    "per_step_self_selected": ("per step, self-selected speeds", "self_selected", "plain"),
    "knee_per_km_same_speed": ("per km, same speed", "same", "knee_per_km"),
    "knee_per_km_self_selected": ("per km, self-selected speeds", "self_selected", "knee_per_km"),
}


@dataclass(frozen=True)
class Source:
    """Where a claim is made. ``url`` only for pages found with the project's search tools."""

    kind: str
    paraphrase: str
    url: str | None = None


@dataclass(frozen=True)
class Claim:
    """One popular claim.

    Attributes
    ----------
    key, text : str
        Identifier and the claim in our words.
    family : str
        Outcome family of :func:`retrosim.evidence.effect_sizes` it is tested on.
    direction : int
        +1 backward higher than forward, -1 lower.
    low_pct, high_pct : float
        Claimed range of 100 (backward/forward - 1) [%]; ``inf`` for open ranges.
    mode : str
        'run', 'walk' or 'unspecified' (any mode: the average over run and walk).
    readings : tuple of str
        Keys of :data:`READINGS`.
    judged_on : {'mean', 'new_study'}
        What the claim is about, and so which posterior its verdict uses: ``'mean'`` for a
        statement about backward running in general ("backward running burns 30 % more"),
        the pooled mean effect; ``'new_study'`` for a promise to a reader ("you will burn 30 %
        more"), the effect in a new study (prediction). Both are always reported.
    """

    key: str
    text: str
    family: str
    direction: int
    low_pct: float
    high_pct: float
    mode: str
    readings: tuple
    sources: tuple = field(default_factory=tuple)
    measure_note: str = ""
    judged_on: str = "mean"

    def __post_init__(self):
        if self.judged_on not in JUDGED_ON:
            raise ValueError(f"claim {self.key}: judged_on must be one of {JUDGED_ON}")

    def range_text(self) -> str:
        lo, hi = self.low_pct, self.high_pct
        if np.isinf(hi):
            return f"> {lo:+g} %"
        if lo == 0 and self.direction < 0:
            return f"{lo:+g} to {hi:+g} %" if np.isfinite(lo) else f"< {hi:+g} %"
        return f"{lo:+g} to {hi:+g} %"


ENERGY_READINGS = (
    "per_minute_same_speed",
    "per_km_same_speed",
    "per_minute_self_selected",
    "per_km_self_selected",
)
KNEE_READINGS = (
    "per_step_same_speed",
    "knee_per_km_same_speed",
    "per_step_self_selected",
    "knee_per_km_self_selected",
)
_NYT = Source(
    "newspaper column (G. Reynolds, New York Times Magazine, 9 Dec 2012; repost read)",
    "running backward needed nearly 30 % more energy than forward at the same speed, with far "
    "less pounding",
    "http://operationbootcampblog.blogspot.com/2012/12/running-in-reverse.html",
)
CLAIMS = (
    Claim(
        "energy_20_30",
        "Backward running burns 20-30 % more calories than forward running at the same speed",
        "energy",
        +1,
        20.0,
        30.0,
        "run",
        ENERGY_READINGS,
        (
            Source(
                "radio-station wellness page (WEBE108, 2024)",
                "reverse running burns 20 to 30 % more calories than running forward",
                "https://www.webe108.com/2024/05/14/webe-wellness-reverse-running/",
            ),
        ),
    ),
    Claim(
        "energy_up_to_30",
        "Backward running burns up to 30 % more calories",
        "energy",
        +1,
        0.0,
        30.0,
        "run",
        ENERGY_READINGS,
        (
            Source(
                "popular-science magazine news item (New Scientist, 5 May 2001)",
                "running backwards takes 30 % more energy than forwards (on Wright & Weyand)",
                "https://www.newscientist.com/article/mg17022893-500-when-your-feet-hardly-touch-the-ground/",
            ),
            Source(
                "lifestyle magazine (Chatelaine)",
                "moving backwards burns 30 % more calories",
                "https://www.chatelaine.com/health/fitness/benefits-of-running-backwards/",
            ),
            _NYT,
        ),
    ),
    Claim(
        "knee_stress_30",
        "Backward running puts about 30 % less stress on the knees",
        "pfj_force",
        -1,
        -35.0,
        -25.0,
        "run",
        KNEE_READINGS,
        (
            Source(
                "blog summary of the NYT column (sportsgeezer, 2012)",
                "backward running needs 30 % more energy and is much easier on the knees",
                "http://sportsgeezer.com/2012/running-backwards-is-harder-but-softer/",
            ),
        ),
        "stress read as peak patellofemoral compressive force (contact area not reported)",
    ),
    Claim(
        "knee_impact_80",
        "Backward running reduces knee impact by up to 80 %",
        "vgrf",
        -1,
        -80.0,
        0.0,
        "run",
        KNEE_READINGS,
        (
            Source(
                "popular claim; no primary or press source located by the literature survey",
                "knee impact reduced by up to 80 %",
            ),
        ),
        "no impact-peak or loading-rate data: read on the only numeric ground-reaction-force "
        "comparison (|GRF| at peak knee moment)",
    ),
    Claim(
        "heart_rate_higher",
        "Heart rate is higher running backward than forward at the same pace",
        "heart_rate",
        +1,
        0.0,
        np.inf,
        "unspecified",
        ("per_minute_same_speed", "per_minute_self_selected"),
        (_NYT,),
        "any mode (walking and running comparisons pooled)",
    ),
    Claim(
        "knee_stress_30_80",
        "Backward running means 30-80 % less knee stress",
        "pfj_force",
        -1,
        -80.0,
        -30.0,
        "run",
        KNEE_READINGS,
        (
            Source(
                "combination of the '30 %' and 'up to 80 %' knee claims as repeated in "
                "popular articles",
                "30 to 80 % less stress on the knees",
            ),
        ),
        "stress read as peak patellofemoral compressive force",
    ),
)


#: Grade classes the claims are about: level locomotion (a grade not stated is taken as level,
#: the usual treadmill and track protocol).
LEVEL_GRADES = ("level", "not_stated")


def analysis_rows(effects: pd.DataFrame) -> pd.DataFrame:
    """The effect sizes the claims model uses.

    Keeps one row per study, condition and outcome (``primary`` rows where the column exists:
    e.g. VO2 in mL/kg/min, not also VO2 in %VO2max of the same people), only level
    locomotion (``grade_class`` in :data:`LEVEL_GRADES` where the column exists: every claim is
    about level running or walking, and the model has no grade term, so an average over uphill
    grades such as Rasica 2020's would pass for a level result) and, from the gait family, only
    the step frequency needed for per-km knee readings.
    """
    df = effects.copy()
    if "primary" in df.columns:
        df = df[df["primary"].astype(bool)]
    if "grade_class" in df.columns:
        df = df[df["grade_class"].isin(LEVEL_GRADES)]
    gait = df["outcome_family"] == "gait"
    keep = ~gait | (df["outcome"] == STEP_FREQUENCY_FAMILY.split(":", 1)[1])
    return df[keep].reset_index(drop=True)


def verdict(p_in: float, p_dir: float, n_studies: int = MIN_STUDIES_SUPPORTED) -> str:
    """Verdict word from the documented thresholds (module docstring)."""
    if (
        p_in >= P_SUPPORTED
        and p_dir >= P_DIRECTION_SUPPORTED
        and n_studies >= MIN_STUDIES_SUPPORTED
    ):
        return "supported"
    if p_in >= P_PLAUSIBLE and p_dir >= P_DIRECTION_PLAUSIBLE:
        return "plausible"
    if p_in >= P_CONTRADICTED:
        return "not supported"
    return "contradicted"


def _rows_for(frame, family, matching, mode):
    rows = frame[(frame["family"] == family) & (frame["speed_matching"] == matching)]
    if mode in ("run", "walk"):
        rows = rows[rows["mode"].isin([mode, "unspecified"])]
    return rows


def _counts(rows):
    n_studies = int(rows["study_key"].nunique())
    n_part = int(rows.groupby("group_key")["n"].max().fillna(0).sum()) if len(rows) else 0
    return n_studies, n_part


def _reading_draws(result: MetaResult, claim: Claim, reading: str, *, new_study=False):
    """(draws of ln ratio or None, rows used, reference speed, note).

    ``new_study``: draws of the effect in a new study (prediction) instead of the mean effect.
    """
    effect = result.predictive_draws if new_study else result.effect_draws
    _label, matching, kind = READINGS[reading]
    frame = result.design.frame
    if claim.family not in result.design.families:
        return None, frame.iloc[:0], np.nan, f"no {claim.family} data"
    rows = _rows_for(frame, claim.family, matching, claim.mode)
    if rows.empty:
        return (
            None,
            rows,
            np.nan,
            f"no {claim.family} comparison at {matching.replace('_', '-')} speeds",
        )
    speeds = rows["speed_used_m_s"].to_numpy(dtype=float)
    v_ref = float(np.nanmean(speeds)) if np.isfinite(speeds).any() else np.nan
    kw = {"mode": claim.mode, "matching": matching, "speed_m_s": None if np.isnan(v_ref) else v_ref}
    draws = effect(claim.family, **kw)
    note = ""
    if kind == "per_km" and matching == "same":
        note = "equal speed: per-km ratio = per-minute ratio"
    elif kind == "per_km":
        both = rows[
            np.isfinite(rows["speed_used_m_s"].astype(float))
            & np.isfinite(
                rows.get("speed_backward_m_s", pd.Series(np.nan, index=rows.index)).astype(float)
            )
        ]
        if both.empty:
            return (
                None,
                rows,
                v_ref,
                "per km at self-selected speeds needs both speeds; not reported",
            )
        draws = draws + float(np.mean(np.log(both["speed_used_m_s"] / both["speed_backward_m_s"])))
        note = "per km = per minute x v_forward / v_backward (observed speeds)"
    elif kind == "knee_per_km":
        if STEP_FREQUENCY_FAMILY not in result.design.families:
            return None, rows, v_ref, "per km needs step-frequency data; none"
        sf_rows = _rows_for(frame, STEP_FREQUENCY_FAMILY, matching, claim.mode)
        if sf_rows.empty or matching != "same":
            return (
                None,
                rows,
                v_ref,
                (
                    "per km at self-selected speeds needs step frequency and both speeds; not reported"
                    if matching != "same"
                    else "no same-speed step-frequency data"
                ),
            )
        draws = draws + effect(STEP_FREQUENCY_FAMILY, mode=claim.mode, matching="same")
        rows = pd.concat([rows, sf_rows])
        note = "per step + step-frequency ratio (steps per km at equal speed)"
    return draws, rows, v_ref, note


def _probabilities(pct: np.ndarray, claim: Claim) -> tuple[float, float]:
    """(P(claimed direction), P(claimed range)) of draws on the % scale."""
    p_dir = float(np.mean(pct * claim.direction > 0))
    p_in = float(np.mean((pct >= claim.low_pct) & (pct <= claim.high_pct)))
    if claim.direction < 0 and claim.high_pct == 0:
        p_in = float(np.mean((pct >= claim.low_pct) & (pct < 0)))
    if claim.direction > 0 and claim.low_pct == 0:
        p_in = float(np.mean((pct > 0) & (pct <= claim.high_pct)))
    return p_dir, p_in


def _direction_votes(statements: pd.DataFrame | None, claim: Claim, matching: str) -> str:
    if statements is None or statements.empty:
        return ""
    fam = statements["outcome_family"] == claim.family
    st = statements[fam & (statements["speed_matching"] == matching)]
    if "grade_class" in st.columns:
        st = st[st["grade_class"].isin(LEVEL_GRADES)]
    if claim.mode in ("run", "walk"):
        st = st[st["mode"].isin([claim.mode, "unspecified"])]
    if st.empty:
        return ""
    c = st["direction"].value_counts()
    return f"{c.get('backward>forward', 0)}>/{c.get('no_difference', 0)}=/{c.get('backward<forward', 0)}<"


def evaluate(
    result: MetaResult, claims=CLAIMS, *, statements: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per claim × reading with the effect, probabilities, support and verdict.

    Columns: ``claim``, ``reading``, ``claimed`` (range text), ``median_pct``, ``ci_low_pct``,
    ``ci_high_pct`` (95 % equal-tailed interval of the mean effect), ``pred_low_pct``,
    ``pred_high_pct`` (95 % prediction interval: the effect in a new study),
    ``p_in_range_mean``, ``p_in_range_new_study``, ``judged_on`` (which of the two the
    verdict uses, see :class:`Claim`), ``p_direction``, ``p_in_range`` (of that one),
    ``n_studies``,
    ``n_participants``, ``speed_ref_m_s``, ``verdict``, ``reliable``, ``note``,
    ``direction_votes`` (result-only statements: backward>forward / no difference /
    backward<forward, from :func:`retrosim.evidence.direction_statements`).
    """
    for c in claims:
        if c.mode not in MODES:
            raise ValueError(f"claim {c.key}: unknown mode {c.mode!r}")
    out = []
    for c in claims:
        for reading in c.readings:
            label, matching, _ = READINGS[reading]
            draws, rows, v_ref, note = _reading_draws(result, c, reading)
            n_studies, n_part = _counts(rows) if len(rows) else (0, 0)
            row = {
                "claim": c.key,
                "claim_text": c.text,
                "family": c.family,
                "reading": label,
                "reading_key": reading,
                "claimed": c.range_text(),
                "speed_ref_m_s": v_ref,
                "direction_votes": _direction_votes(statements, c, matching),
            }
            if draws is None:
                row.update(
                    median_pct=np.nan,
                    ci_low_pct=np.nan,
                    ci_high_pct=np.nan,
                    pred_low_pct=np.nan,
                    pred_high_pct=np.nan,
                    p_direction=np.nan,
                    p_in_range=np.nan,
                    p_in_range_mean=np.nan,
                    p_in_range_new_study=np.nan,
                    n_studies=n_studies,
                    n_participants=n_part,
                    verdict="not testable with current evidence",
                    reliable=True,
                    note=note or c.measure_note,
                )
            else:
                pred = _reading_draws(result, c, reading, new_study=True)[0]
                pct, pct_new = to_percent(draws), to_percent(pred)
                p_dir_mean, p_in_mean = _probabilities(pct, c)
                p_dir_new, p_in_new = _probabilities(pct_new, c)
                p_dir, p_in = (
                    (p_dir_mean, p_in_mean) if c.judged_on == "mean" else (p_dir_new, p_in_new)
                )
                lo, med, hi = np.quantile(pct, [0.025, 0.5, 0.975])
                plo, phi = np.quantile(pct_new, [0.025, 0.975])
                row.update(
                    median_pct=float(med),
                    ci_low_pct=float(lo),
                    ci_high_pct=float(hi),
                    pred_low_pct=float(plo),
                    pred_high_pct=float(phi),
                    p_direction=p_dir,
                    p_in_range=p_in,
                    p_in_range_mean=p_in_mean,
                    p_in_range_new_study=p_in_new,
                    n_studies=n_studies,
                    n_participants=n_part,
                    verdict=verdict(p_in, p_dir, n_studies),
                    reliable=bool(result.converged),
                    note="; ".join(x for x in (note, c.measure_note) if x),
                )
            row["judged_on"] = c.judged_on
            out.append(row)
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------
# Outputs: forest plots, NetCDF (DataTree) and CSV
# ----------------------------------------------------------------------------------------------


def forest_plot(result: MetaResult, family: str, path, verdict_rows: pd.DataFrame | None = None):
    """Forest plot of one family: each effect size with its 95 % interval (at the default r)
    and the pooled posterior mean effect at the family's mean speed (diamond), on the % scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._io import atomic_path

    frame = result.design.frame
    rows = frame[frame["family"] == family]
    y = rows["yi"].to_numpy(float)
    se = np.sqrt(rows["vi"].to_numpy(float))
    labels = [
        f"{r.study_key}: {r.outcome} ({r['mode']}, {r.speed_matching.replace('_', '-')}"
        + (f", {r.speed_used_m_s:.2f} m/s" if np.isfinite(r.speed_used_m_s) else "")
        + ")"
        for _, r in rows.iterrows()
    ]
    pooled = {}
    for matching in ("same", "self_selected"):
        if (rows["speed_matching"] == matching).any():
            d = to_percent(result.effect_draws(family, mode="unspecified", matching=matching))
            pooled[matching] = np.quantile(d, [0.025, 0.5, 0.975])
    n = len(rows) + len(pooled)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.38 * n))
    ypos = np.arange(n)[::-1]
    for i in range(len(rows)):
        lo, hi = to_percent(y[i] - 1.96 * se[i]), to_percent(y[i] + 1.96 * se[i])
        ax.plot([lo, hi], [ypos[i]] * 2, color="0.3", lw=1.2)
        ax.plot(to_percent(y[i]), ypos[i], "s", color="C0", ms=5)
    for j, (matching, (lo, med, hi)) in enumerate(pooled.items()):
        k = len(rows) + j
        yy = ypos[k]
        ax.fill([lo, med, hi, med], [yy, yy + 0.3, yy, yy - 0.3], color="C3", alpha=0.8)
        labels.append(f"pooled mean, {matching.replace('_', '-')} speed (posterior 95 %)")
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set_xlabel("backward vs forward [%]")
    ax.set_title(
        f"{family}: effect sizes and pooled posterior"
        + ("" if result.converged else " (UNRELIABLE fit)")
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def write_outputs(
    result: MetaResult,
    verdicts: pd.DataFrame,
    ppc_rows: pd.DataFrame,
    out,
    *,
    extra=None,
    seed=None,
):
    """Write ``claims.nc`` (DataTree: posterior, sample_stats, observed_data, verdicts,
    posterior_predictive_check), ``claims.csv`` and ``forest_<family>.png`` into ``out``."""
    from pathlib import Path

    import xarray as xr

    from ._io import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    csv = out / "claims.csv"
    with atomic_path(csv) as tmp:
        verdicts.to_csv(tmp, index=False)
    paths.append(csv)
    tree = result.idata.copy()
    v = verdicts.copy()
    for col in v.columns:
        if v[col].dtype == object:
            v[col] = v[col].astype(str)
    v["reliable"] = v["reliable"].astype(int)
    vds = xr.Dataset.from_dataframe(v.reset_index(drop=True).rename_axis("verdict_row"))
    units = {
        "median_pct": "%",
        "ci_low_pct": "%",
        "ci_high_pct": "%",
        "pred_low_pct": "%",
        "pred_high_pct": "%",
        "speed_ref_m_s": "m/s",
        "p_direction": "1",
        "p_in_range": "1",
        "p_in_range_mean": "1",
        "p_in_range_new_study": "1",
    }
    for name, u in units.items():
        vds[name].attrs.update(units=u, long_name=name.replace("_", " "))
    tree["verdicts"] = xr.DataTree(vds)
    p = ppc_rows.copy()
    p["row_id"] = p["row_id"].astype(str)
    p["family"] = p["family"].astype(str)
    p["inside_95"] = p["inside_95"].astype(int)
    tree["posterior_predictive_check"] = xr.DataTree(
        xr.Dataset.from_dataframe(p.set_index("row_id"))
    )
    for name, df in (extra or {}).items():
        d = df.copy()
        for col in d.columns:
            if d[col].dtype == object:
                d[col] = d[col].astype(str)
            if d[col].dtype == bool:
                d[col] = d[col].astype(int)
        tree[name] = xr.DataTree(
            xr.Dataset.from_dataframe(d.reset_index(drop=True).rename_axis("k"))
        )
        extra_csv = out / f"claims_{name}.csv"
        with atomic_path(extra_csv) as tmp:
            df.to_csv(tmp, index=False)
        paths.append(extra_csv)
    pri = result.priors
    tree.attrs.update(
        title="retrosim claims: Bayesian meta-analysis of backward vs forward effect sizes",
        converged=int(result.converged),
        diagnostics=str(result.diagnostics),
        robust=int(result.robust),
        seed=-1 if seed is None else int(seed),
        priors=", ".join(
            f"{k}={v:g}" if not isinstance(v, str) else f"{k}={v}" for k, v in pri.__dict__.items()
        ),
    )
    for node in tree.subtree:
        for k, val in list(node.attrs.items()):
            if isinstance(val, dict | list | tuple | bool) or val is None:
                node.attrs[k] = str(val)
    nc = out / "claims.nc"
    with atomic_path(nc) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")
    paths.append(nc)
    for family in result.design.families:
        if family.startswith("gait:"):
            continue
        paths.append(forest_plot(result, family, out / f"forest_{family}.png", verdicts))
    return paths
