"""``retrosim claims``: pool the evidence and print a verdict for every popular claim."""

from __future__ import annotations

import logging
import time
from pathlib import Path

HELP = "pool the evidence and print a verdict for every popular claim"

log = logging.getLogger(__name__)

VERDICT_STYLE = {
    "supported": "bold green",
    "plausible": "green",
    "not supported": "yellow",
    "contradicted": "bold red",
    "not testable with current evidence": "dim",
}


def register(subparsers):
    p = subparsers.add_parser("claims", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument(
        "--draws", type=int, default=1000, help="posterior draws per chain (default 1000)"
    )
    p.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument("--seed", type=int, default=20240601, help="random seed (default 20240601)")
    p.add_argument(
        "--target-accept", type=float, default=0.95, help="NUTS target acceptance (default 0.95)"
    )
    p.add_argument(
        "--tau-prior",
        choices=("half_normal", "half_cauchy", "log_normal_tau2"),
        default="half_normal",
        help="between-study SD prior (default half_normal; see retrosim.inference.Priors)",
    )
    p.add_argument("--robust", action="store_true", help="Student-t study effects")
    p.add_argument(
        "--sampled-effects",
        action="store_true",
        help="fit the earlier model with sampled study effects instead of the marginal one "
        "(slower, may diverge; for comparison only, with --target-accept 0.99)",
    )
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="exit 0 even if the fit failed the convergence gate (verdicts stay marked unreliable)",
    )
    p.add_argument(
        "--checks",
        action="store_true",
        help="also run prior/r sensitivity and leave-one-study-out refits (slower)",
    )
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/)")
    p.set_defaults(func=run)
    return p


def _table(verdicts, diagnostics):
    import numpy as np
    from rich.table import Table

    t = Table(
        title=(
            "Claims on trial: backward vs forward (posterior median [95 % interval] of the mean"
            " effect; 95 % prediction interval for a new study)"
        ),
        caption=f"fit: {diagnostics}",
        show_lines=False,
    )
    for col, kw in (
        ("claim", {"max_width": 34}),
        ("reading", {}),
        ("claimed", {"justify": "right"}),
        ("mean effect %", {"justify": "right"}),
        ("new study %", {"justify": "right"}),
        ("P(dir)", {"justify": "right"}),
        ("P(range)", {"justify": "right"}),
        ("studies/n", {"justify": "right"}),
        ("verdict", {}),
        ("votes >/=/<", {"justify": "right"}),
    ):
        t.add_column(col, **kw)
    last = None
    for _, r in verdicts.iterrows():
        text = r["claim_text"] if r["claim"] != last else ""
        if r["claim"] != last and last is not None:
            t.add_section()
        last = r["claim"]
        if np.isfinite(r["median_pct"]):
            eff = f"{r['median_pct']:+.0f} [{r['ci_low_pct']:+.0f}, {r['ci_high_pct']:+.0f}]"
            new = f"[{r['pred_low_pct']:+.0f}, {r['pred_high_pct']:+.0f}]"
            pdir, pin = f"{r['p_direction']:.2f}", f"{r['p_in_range']:.2f}"
        else:
            eff, new, pdir, pin = "—", "—", "—", "—"
        word = r["verdict"]
        style = VERDICT_STYLE.get(word, "")
        shown = f"[{style}]{word}[/]" if style else word
        if not r["reliable"]:
            shown = f"[bold red]UNRELIABLE[/] ({word})"
        t.add_row(
            text,
            r["reading"],
            r["claimed"],
            eff,
            new,
            pdir,
            pin,
            f"{r['n_studies']}/{r['n_participants']}",
            shown,
            r["direction_votes"] or "",
        )
    return t


def run(args) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .. import claims as cl
    from .. import evidence
    from .. import inference as inf
    from .._console import console
    from ..errors import EXIT_CONVERGENCE, InputError
    from ..paths import results_dir

    for noisy in ("pytensor", "pymc", "numba", "arviz", "matplotlib", "h5py", "nutpie"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    for name in ("draws", "tune", "chains"):
        if getattr(args, name) < 1:
            raise InputError(
                f"must be a positive integer, got {getattr(args, name)}", argument=f"--{name}"
            )
    out = Path(args.out) if args.out is not None else results_dir()
    con = console()
    t0 = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    ) as prog:
        task = prog.add_task("loading evidence", total=None)
        effects = cl.analysis_rows(evidence.effect_sizes())
        statements = evidence.direction_statements()
        prog.update(
            task,
            description=f"compiling and sampling the meta-analysis model ({len(effects)} effect sizes)",
        )
        result = inf.fit(
            effects,
            priors=inf.Priors(tau_prior=args.tau_prior),
            robust=args.robust,
            marginal=not args.sampled_effects,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
            gate="off",
            target_accept=args.target_accept,
        )
        prog.update(task, description="posterior predictive check and verdicts")
        verdicts = cl.evaluate(result, statements=statements)
        ppc_rows, ppc = inf.posterior_predictive_check(result, seed=args.seed)
        extra = {}
        if args.checks:
            prog.update(task, description="sensitivity refits (r prior, prior scales)")
            extra["sensitivity"] = inf.sensitivity(result.design, seed=args.seed)
            prog.update(task, description="leave-one-study-out refits")
            extra["loso"] = inf.leave_one_study_out(result, seed=args.seed)
        prog.update(task, description="writing results")
        paths = cl.write_outputs(result, verdicts, ppc_rows, out, extra=extra, seed=args.seed)
    con.print(_table(verdicts, result.diagnostics))
    con.print(
        f"posterior predictive check: {ppc['share_inside_95']:.0%} of {ppc['n_rows']} effect sizes inside "
        f"their 95 % predictive interval; p(SD) = {ppc['p_sd']:.2f}, p(range) = {ppc['p_range']:.2f}"
    )
    con.print("wrote: " + ", ".join(str(p) for p in paths))
    con.print(f"elapsed {time.perf_counter() - t0:.1f} s")
    if not result.converged:
        msg = "the meta-analysis fit FAILED the convergence gate: " + "; ".join(
            result.diagnostics.problems()
        )
        if args.allow_unconverged:
            con.print(
                f"[bold red]warning:[/] {msg} (verdicts marked unreliable; --allow-unconverged given)"
            )
            return 0
        con.print(
            f"[bold red]error:[/] {msg}; verdicts are unreliable. Rerun with more --draws/--tune, "
            "or pass --allow-unconverged to accept."
        )
        return EXIT_CONVERGENCE
    return 0
