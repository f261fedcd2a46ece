"""``retrosim evidence``: summarise the published evidence and write the effect-size table."""

from __future__ import annotations

import logging
from pathlib import Path

HELP = "summarise the published evidence and write the effect-size table"

log = logging.getLogger(__name__)


def register(subparsers):
    p = subparsers.add_parser("evidence", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder with studies.csv and comparisons.csv (default: retrosim/data/literature)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="effect-size CSV to write (default: results/evidence/effect_sizes.csv)",
    )
    p.add_argument(
        "--r",
        type=float,
        default=None,
        help="forward-backward within-subject correlation for paired variances (default 0.5)",
    )
    p.add_argument(
        "--no-impute",
        action="store_true",
        help="drop rows without a reported dispersion instead of imputing it",
    )
    p.add_argument("--plain", action="store_true", help="plain text instead of rich tables")
    p.set_defaults(func=run)
    return p


def _summary_tables(data, effects):
    """Return (title, header, rows) tuples for the summary."""
    studies = data.drop_duplicates("study_key")
    indep = studies[studies["independent_report"]]
    overview = [
        ("reports (study_key)", str(len(studies))),
        ("independent studies (group_key)", str(indep["group_key"].nunique())),
        ("comparison rows", str(len(data))),
        ("numeric rows", str(int((data["result_only"] == "").sum()))),
        ("result-only rows", str(int((data["result_only"] != "").sum()))),
        ("effect sizes written", str(len(effects))),
        ("of which dispersion imputed", str(int(effects["dispersion_imputed"].sum()))),
    ]
    per_outcome = []
    for (fam, out), g in data.groupby(["outcome_family", "outcome"], sort=True):
        numeric = g[g["result_only"] == ""]
        speeds = g["speed_forward_m_s"].dropna()
        lo = g[["speed_forward_m_s", "speed_low_m_s"]].min(axis=1).dropna()
        hi = g[["speed_forward_m_s", "speed_high_m_s"]].max(axis=1).dropna()
        span = f"{lo.min():.2f}-{hi.max():.2f}" if len(lo) else "-"
        per_outcome.append(
            (
                fam,
                out,
                str(g["group_key"].nunique()),
                str(len(g)),
                str(len(numeric)),
                span,
                ",".join(sorted(set(g["mode"]))),
                str(len(speeds)),
            )
        )
    overview.append(("derived effect sizes (computed from another row)", str(_n_derived(effects))))
    return [
        ("Evidence dataset", ("item", "count"), overview),
        (
            "Rows per outcome (speeds in m/s)",
            ("family", "outcome", "studies", "rows", "numeric", "speeds", "modes", "point speeds"),
            per_outcome,
        ),
        (
            "Result-only rows by significance (independent reports; all rows in brackets)",
            ("family", "significant", "not significant", "direction only", "with a p value"),
            _significance_rows(data),
        ),
        (
            "Derived effect sizes",
            ("row", "from", "outcome", "forward", "backward", "B vs F %", "dispersion"),
            _derived_table(effects),
        ),
    ]


def _n_derived(effects):
    if "derived_from" not in effects.columns:
        return 0
    return int((effects["derived_from"].fillna("") != "").sum())


def _significance_rows(data):
    """Counts of result-only rows per family and significance class."""
    res = data[data["result_only"] != ""]
    if "result_significant" not in res.columns:
        return []
    rows = []
    for fam, g in res.groupby("outcome_family", sort=True):
        indep = g[g["independent_report"].astype(bool)]

        def count(mask_all, mask_ind):
            return f"{int(mask_ind.sum())} ({int(mask_all.sum())})"

        sig_all, sig_ind = g["result_significant"], indep["result_significant"]
        rows.append(
            (
                fam,
                count(sig_all.map(lambda v: v is True), sig_ind.map(lambda v: v is True)),
                count(sig_all.map(lambda v: v is False), sig_ind.map(lambda v: v is False)),
                count(sig_all.map(lambda v: v is None), sig_ind.map(lambda v: v is None)),
                count(g["result_p_value"].notna(), indep["result_p_value"].notna()),
            )
        )
    return rows


def _derived_table(effects):
    if not _n_derived(effects):
        return []
    der = effects[effects["derived_from"].fillna("") != ""]
    return [
        (
            x["row_id"],
            x["derived_from"],
            x["outcome"],
            f"{x['forward_mean']:.3f}",
            f"{x['backward_mean']:.3f}",
            f"{x['pct_change']:+.1f}",
            "imputed" if x["dispersion_imputed"] else "reported",
        )
        for _, x in der.iterrows()
    ]


def _print(tables, plain):
    if not plain:
        try:
            from rich.table import Table
        except ImportError:  # pragma: no cover
            plain = True
    if plain:
        for title, header, rows in tables:
            if not rows:
                continue
            print(title)
            widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
            for line in (header, *rows):
                print("  " + "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
            print()
        return
    from retrosim._console import console as make_console

    console = make_console()
    for title, header, rows in tables:
        if not rows:
            continue
        table = Table(title=title)
        for h in header:
            table.add_column(h)
        for line in rows:
            table.add_row(*line)
        console.print(table)


def run(args) -> int:
    from retrosim._io import atomic_path
    from retrosim.config import results_dir
    from retrosim.evidence import tables as evidence

    r = evidence.DEFAULT_R if args.r is None else args.r
    data = evidence.load(args.data)
    effects = evidence.effect_sizes(data, r=r, impute=not args.no_impute)
    out = args.out or results_dir() / "evidence" / "effect_sizes.csv"
    with atomic_path(out) as tmp:
        effects.to_csv(tmp, index=False)
    _print(_summary_tables(data, effects), args.plain)
    print(f"effect sizes (r = {r:g}, impute = {not args.no_impute}): {out}")
    return 0
