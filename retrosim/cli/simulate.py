"""``retrosim simulate``: evaluate the gait, energetics and knee models over a speed x mass grid."""

from __future__ import annotations

import logging

from retrosim.errors import InputError

HELP = "evaluate the gait, energetics and knee models over a speed x mass grid"
log = logging.getLogger(__name__)


def register(subparsers):
    p = subparsers.add_parser("simulate", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument(
        "--speed",
        default="1:5:0.25",
        help="speeds [m/s]: start:stop:step (inclusive) or a comma list (default 1:5:0.25)",
    )
    p.add_argument(
        "--mass",
        default="50:110:10",
        help="body masses [kg]: start:stop:step or a comma list (default 50:110:10)",
    )
    p.add_argument("--direction", default="forward,backward", help="comma list (default both)")
    p.add_argument("--mode", default="run", help="run, walk or run,walk (default run)")
    p.add_argument(
        "--grade",
        default="0",
        help="treadmill grades as decimals (0.05 = 5 %%), range or list (default 0)",
    )
    p.add_argument("--draws", type=int, default=200, help="parameter draws (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--uncalibrated",
        action="store_true",
        help="draw parameters from the literature priors instead of the posterior",
    )
    p.add_argument("--out", default=None, help="NetCDF output (default results/simulate.nc)")
    p.add_argument(
        "--chunks",
        default=None,
        help="evaluate lazily block by block with Dask and stream to --out (.nc or .zarr) "
        "without holding the grid in memory: 'auto' or e.g. speed=10,mass=50",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="with --chunks: 'threads' (default), or a Dask scheduler address tcp://host:port "
        "(default from RETROSIM_SCHEDULER if set)",
    )
    p.set_defaults(func=run)  # fmt: skip
    return p


def parse_values(text, option, units):
    """Parse ``start:stop:step`` (inclusive) or ``a,b,c`` into a float array.

    Raises InputError naming ``option`` on anything else.
    """
    import numpy as np

    text = str(text).strip()
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise InputError(
                    f"expected start:stop:step with step > 0 and stop >= start [{units}], "
                    f"got {text!r}", argument=option)  # fmt: skip
            n = int(np.floor((stop - start) / step + 1e-9)) + 1
            if n > 100_000:
                raise InputError(f"{n} values is too many (max 100000)", argument=option)
            return start + step * np.arange(n)
        return np.array([float(x) for x in text.split(",") if x.strip()])
    except ValueError:
        raise InputError(
            f"expected start:stop:step or a comma list of numbers [{units}], got {text!r}",
            argument=option,
        ) from None


def _words(text):
    return [w.strip() for w in str(text).split(",") if w.strip()]


def run(args) -> int:
    import numpy as np

    from retrosim._io import NETCDF_ENGINE, atomic_path
    from retrosim.config import results_dir
    from retrosim.models.chain import RetroChain

    speed = parse_values(args.speed, "--speed", "m/s")
    mass = parse_values(args.mass, "--mass", "kg")
    grade = parse_values(args.grade, "--grade", "decimal grade")
    if args.draws < 1:
        raise InputError(
            f"expected a positive number of draws, got {args.draws}", argument="--draws"
        )
    posterior = None
    if not args.uncalibrated:
        from retrosim.bayes.calibration import shared_posterior

        posterior = shared_posterior()
    chain = RetroChain(posterior=posterior)
    out = args.out or (results_dir() / "simulate.nc")
    chunked = args.chunks is not None or args.scheduler is not None
    try:
        if chunked:  # Dask: built lazily, evaluated block by block, streamed to `out`
            from retrosim.distributed import open_output, parse_chunks, simulate_chunked

            simulate_chunked(speed, mass, _words(args.direction), _words(args.mode), grade,
                             n_draws=args.draws, seed=args.seed, chain=chain,
                             chunks=parse_chunks(args.chunks), out=out,
                             scheduler=args.scheduler)  # fmt: skip
        else:
            ds = chain.run(speed, mass, _words(args.direction), _words(args.mode), grade,
                           n_draws=args.draws, seed=args.seed)  # fmt: skip
    except InputError as exc:  # name the command-line option, not the Python argument
        opt = {"speed_m_s": "--speed", "mass_kg": "--mass", "n_draws": "--draws"}.get(
            exc.argument, f"--{exc.argument}")  # fmt: skip
        raise InputError(exc.message, argument=opt) from None
    if chunked:
        with open_output(out) as ds:  # the table needs one mass and grade: load only those
            mid = ds.mass.values[len(ds.mass) // 2 : len(ds.mass) // 2 + 1]
            _print_table(ds[["gross_kcal_km"]].sel(mass=mid, grade=ds.grade[:1]).load(), np)
        print(f"wrote {out}")
        return 0
    with atomic_path(out) as tmp:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE)
    log.info("wrote %s (%s)", out, ", ".join(f"{k}={v}" for k, v in ds.sizes.items()))
    _print_table(ds, np)
    print(f"wrote {out}")
    return 0


def _print_table(ds, np):
    from rich.console import Console
    from rich.table import Table

    primary = {"run": "kram_taylor", "walk": "acsm"}
    mass = float(ds.mass.values[len(ds.mass) // 2])
    grade = float(ds.grade.values[0])
    table = Table(title=f"gross kcal/km at {mass:g} kg, grade {grade:g} (median over draws)")
    for col in ("mode", "model", "speed m/s", "forward", "backward", "difference"):
        table.add_column(col, justify="right")
    both = {"forward", "backward"} <= set(ds.direction.values.tolist())
    speeds = ds.speed.values
    show = speeds[
        np.unique(np.linspace(0, len(speeds) - 1, min(len(speeds), 9)).round().astype(int))
    ]
    for mode in ds.mode.values.tolist():
        model = primary[mode]
        if model not in ds.model.values.tolist():
            model = str(ds.model.values[0])
        sel = ds["gross_kcal_km"].sel(model=model, mode=mode, grade=grade).sel(mass=mass)
        for v in show:
            vals = sel.sel(speed=v)
            f = (
                float(vals.sel(direction="forward").median())
                if "forward" in ds.direction
                else np.nan
            )
            b = (
                float(vals.sel(direction="backward").median())
                if "backward" in ds.direction
                else np.nan
            )
            diff = f"{(b / f - 1) * 100:+.1f} %" if both and np.isfinite(b / f) else "—"
            table.add_row(mode, model, f"{v:g}", f"{f:.0f}", f"{b:.0f}", diff)
    Console().print(table)
