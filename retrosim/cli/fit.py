"""``retrosim fit``: fit the hierarchical model to your own lab trial data."""

from __future__ import annotations

import logging

from retrosim.errors import InputError

HELP = "fit the hierarchical model to your own lab trial data"
log = logging.getLogger(__name__)


def register(subparsers):
    p = subparsers.add_parser("fit", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument("trials", nargs="?", help="trial CSV file (long format; see --schema)")
    p.add_argument("--schema", action="store_true", help="print the trial file format and exit")
    p.add_argument(
        "--outcome", default="vo2_ml_kg_min", help="outcome column (default vo2_ml_kg_min)"
    )
    p.add_argument("--out", default=None, help="output folder (default results/fit)")
    p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--prior-direction",
        nargs=2,
        type=float,
        metavar=("MEAN", "SD"),
        help="prior of the population log backward/forward ratio, e.g. the meta-analysis "
        "posterior (default 0 0.5)",
    )
    p.add_argument(
        "--parameterization",
        choices=("auto", "centered", "noncentered"),
        default="auto",
        help="participant effects parameterization (default auto)",
    )
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="write results even if the convergence gate fails (marked unreliable)",
    )
    p.add_argument("--max-rows", type=int, default=None, help="row limit of the input file")
    p.add_argument("--max-bytes", type=int, default=None, help="size limit of the input [bytes]")
    p.set_defaults(func=run)
    return p


def _print_schema():
    from rich.table import Table

    from retrosim._console import console
    from retrosim.trials.schema import schema_table

    tab = schema_table()
    table = Table(title="retrosim trial file format (CSV, UTF-8, comma-separated, long format)")
    for c in tab.columns:
        table.add_column(c)
    for _, row in tab.iterrows():
        table.add_row(*[str(v) for v in row])
    con = console()
    con.print(table)
    con.print(
        "One row per trial. Required: participant_id, direction, mode, speed_m_s, mass_kg and "
        "at least one outcome column. Rows are counted from 1 after the header."
    )


def run(args) -> int:
    if args.schema:
        _print_schema()
        return 0
    if not args.trials:
        raise InputError("give a trial CSV file (or --schema to see the format)", argument="trials")
    from retrosim.config import results_dir
    from retrosim.trials import schema as trial_schema

    kwargs = {}
    if args.max_rows is not None:
        kwargs["max_rows"] = args.max_rows
    if args.max_bytes is not None:
        kwargs["max_bytes"] = args.max_bytes
    # validate first: bad input stops here, before any heavy import or output
    data = trial_schema.read_trials(args.trials, **kwargs)
    trial_schema.validate_trials(data, outcome=args.outcome)

    from retrosim.trials.fit import fit_trials
    from retrosim.trials.report import write_outputs

    out = args.out or (results_dir(create=False) / "fit")
    fit = fit_trials(
        data,
        outcome=args.outcome,
        prior_direction=args.prior_direction,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        gate="warn" if args.allow_unconverged else "raise",
        parameterization=args.parameterization,
    )
    claims = fit.claim_verdicts()
    written = write_outputs(fit, out, claims=claims)
    print(fit.summary())
    testable = claims[claims["verdict"] != "not testable with these data"]
    if len(testable):
        cols = ["claim", "reading", "mode", "change_pct_median", "p_in_range", "verdict"]
        shown = testable[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}")
    else:
        shown = "(no registered claim concerns this outcome)"
    print("\nclaims on these data (one lab = one study; see claims.csv):\n" + shown)
    print(f"\nwrote {len(written)} files to {out}: " + ", ".join(p.name for p in written))
    if not fit.diagnostics_.passed:
        # reached only with --allow-unconverged (otherwise the fit raised, exit code 3)
        print("WARNING: the convergence gate failed; results are unreliable")
    return 0
