"""``retrosim claims``: pool the evidence and print a verdict for every popular claim."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from retrosim.meta.verdicts import DEFAULT_SEED

HELP = "pool the evidence and print a verdict for every popular claim"

log = logging.getLogger(__name__)

VERDICT_STYLE = {
    "supported": "bold green",
    "plausible": "green",
    "not supported": "yellow",
    "inconclusive": "magenta",
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
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    p.add_argument(
        "--target-accept", type=float, default=0.95, help="NUTS target acceptance (default 0.95)"
    )
    p.add_argument(
        "--tau-prior",
        choices=("half_normal", "half_cauchy", "log_normal_tau2"),
        default="half_normal",
        help="between-study SD prior (default half_normal; see retrosim.meta.model.Priors)",
    )
    p.add_argument(
        "--robust",
        action="store_true",
        help="Student-t study effects (numeric rows only: implies --numeric-only)",
    )
    p.add_argument(
        "--numeric-only",
        action="store_true",
        help="leave the direction-only results out of the likelihood (the earlier analysis)",
    )
    p.add_argument(
        "--no-votes",
        action="store_true",
        help="leave out the direction-only families judged by vote counting (muscle activity, "
        "training effects, learning phase); faster",
    )
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
        ("claim", {"max_width": 26}),
        ("reading", {"max_width": 22}),
        ("claimed (read as)", {"justify": "right", "max_width": 10}),
        ("speed m/s", {"justify": "right", "no_wrap": True}),
        ("mean effect %", {"justify": "right", "no_wrap": True}),
        ("new study %", {"justify": "right", "no_wrap": True}),
        ("P(dir)", {"justify": "right"}),
        ("P(range)", {"justify": "right"}),
        ("studies/n", {"justify": "right"}),
        ("verdict", {"no_wrap": True}),
        ("votes >/=/<", {"justify": "right", "no_wrap": True}),
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
        short = "not testable" if word.startswith("not testable") else word
        shown = f"[{style}]{short}[/]" if style else short
        if not r["reliable"]:
            shown = f"[bold red]UNRELIABLE[/] ({short})"
        speed = "—"
        if np.isfinite(r["speed_ref_m_s"]):
            speed = f"{r['speed_ref_m_s']:.2f}"
            if np.isfinite(r["median_pct"]) and not r["speed_moderated"]:
                speed += " any"
            elif np.isfinite(r["median_pct"]) and r["speed_extrapolated"]:
                speed += " ext"
        target = r.get("target")
        reading = r["reading"] + (f" [{target}]" if isinstance(target, str) and target else "")
        t.add_row(
            text,
            reading,
            r["claimed"],
            speed,
            eff,
            new,
            pdir,
            pin,
            f"{r['n_studies']}/{r['n_participants']}",
            shown,
            r["direction_votes"] or "",
        )
    return t


def _legend(claims_module) -> str:
    """What the table's reading rules, speeds and flags mean (printed below it)."""
    cl = claims_module
    lines = [
        "not testable = not testable with current evidence (no study measured this reading)",
        "claimed ranges: a stated number stands for the values that round to it "
        f"(± {cl.DEFAULT_PRECISION_PCT / 2:g} points: '20-30 %' reads +15 to +35 %, "
        "'about 30 %' 25 to 35 %); calories = gross energy (watch/treadmill), per minute and per km",
        "speed: the registry's reference speed of the reading; 'any' = no speed moderator in "
        "the family (the same verdict at every speed); 'ext' = beyond the speeds the family's "
        "studies report",
    ]
    for ref in cl.REFERENCE_SPEEDS.values():
        lines.append(
            f"  {ref.mode}: {ref.speed_m_s:.2f} m/s ({ref.low_m_s:.2f}-{ref.high_m_s:.2f}: "
            f"{ref.range_what}), {ref.what}; {ref.citation}, doi:{ref.doi}, {ref.locator}"
        )
    lines.append(
        "inconclusive: the 95 % interval overlaps the claimed range and holds effects of the "
        f"opposite direction beyond {cl.CLEAR_MARGIN_PCT:g} % or more than "
        f"{cl.CLEAR_MARGIN_PCT:g} points beyond the claimed range"
    )
    return "\n".join(lines)


def run(args) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from retrosim._console import console
    from retrosim.config import results_dir
    from retrosim.errors import EXIT_CONVERGENCE
    from retrosim.meta import claims as cl
    from retrosim.meta.verdicts import check_claims

    for noisy in ("pytensor", "pymc", "numba", "arviz", "matplotlib", "h5py", "nutpie"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
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
        check = check_claims(
            seed=args.seed,
            numeric_only=args.numeric_only,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            tau_prior=args.tau_prior,
            robust=args.robust,
            marginal=not args.sampled_effects,
            target_accept=args.target_accept,
            checks=args.checks,
            votes=not args.no_votes,
            progress=lambda text: prog.update(task, description=text),
        )
        prog.update(task, description="writing results")
        paths = check.write(out)
    ppc = check.ppc
    con.print(_table(check.verdicts, check.diagnostics))
    con.print(_legend(cl), highlight=False)
    con.print(
        f"posterior predictive check: {ppc['share_inside_95']:.0%} of {ppc['n_rows']} effect sizes inside "
        f"their 95 % predictive interval; p(SD) = {ppc['p_sd']:.2f}, p(range) = {ppc['p_range']:.2f}"
    )
    con.print("wrote: " + ", ".join(str(p) for p in paths))
    con.print(f"elapsed {time.perf_counter() - t0:.1f} s")
    if not check.converged:
        if not check.result.converged:
            msg = "the meta-analysis fit FAILED the convergence gate: " + "; ".join(
                check.diagnostics.problems()
            )
        else:
            msg = "a vote-counting fit FAILED the convergence gate (its rows are UNRELIABLE)"
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
