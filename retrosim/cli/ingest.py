"""``retrosim ingest``: raw lab files (cart exports, force recordings) to the trial table."""

from __future__ import annotations

HELP = "turn a lab folder of raw cart and force files into the trial table, with QC"


def register(subparsers):
    p = subparsers.add_parser("ingest", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument("folder", nargs="?", help="lab folder holding protocol.csv and the raw files")
    p.add_argument("--out", help="output folder (default results/ingest)")
    p.add_argument("--schema", action="store_true", help="print the protocol sheet format")
    p.add_argument("--protocol", help="protocol sheet (default <folder>/protocol.csv)")
    p.add_argument(
        "--window-s",
        type=float,
        default=None,
        help="steady-state window at the end of each stage [s] (default 120)",
    )
    p.add_argument(
        "--max-drift",
        type=float,
        default=None,
        help="largest VO2 drift over the window, fraction (default 0.05)",
    )
    p.add_argument(
        "--outlier-k",
        type=float,
        default=None,
        help="breath outlier threshold in robust SDs (default 4)",
    )
    p.add_argument(
        "--equation",
        default=None,
        help="energy equation: peronnet1991 (default), brockway1987, weir1949",
    )
    p.add_argument(
        "--cutoff-hz", type=float, default=None, help="force low-pass cut-off [Hz] (default 60)"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--threshold-n", type=float, default=None, help="contact threshold [N] (default 30)"
    )
    g.add_argument(
        "--threshold-bw", type=float, default=None, help="contact threshold [body weights]"
    )
    p.add_argument("--no-figures", action="store_true", help="skip the QC figures")
    p.set_defaults(func=run)
    return p


def _print_schema():
    from rich.table import Table

    from retrosim._console import console
    from retrosim.ingest.cart import CSV_COLUMNS
    from retrosim.ingest.protocol import protocol_schema_table

    sheet = protocol_schema_table()
    plain = [{"column": k, "meaning": v} for k, v in CSV_COLUMNS.items()]
    con = console()
    for title, rows in (
        ("retrosim protocol sheet (protocol.csv: CSV, UTF-8, one row per stage)",
         sheet.to_dict("records")),
        ("plain CSV cart layout (cart_format csv)", plain),
    ):  # fmt: skip
        table = Table(title=title)
        for c in rows[0]:
            table.add_column(c)
        for r in rows:
            table.add_row(*map(str, r.values()))
        con.print(table)
    con.print(
        "Vendor exports: COSMED and CORTEX breath-by-breath tables saved as .xlsx. Force files: "
        "CSV with fz_n [N] (force_rate_hz, or a time_s column) or C3D with force platforms."
    )


def run(args) -> int:
    if args.schema:
        _print_schema()
        return 0
    from retrosim.errors import InputError

    if not args.folder:
        raise InputError("give a lab folder (or --schema to see the format)", argument="folder")
    from retrosim.config import results_dir
    from retrosim.ingest import IngestOptions, process_folder, write_results

    kw = {k: v for k, v in {
        "window_s": args.window_s, "max_drift": args.max_drift, "outlier_k": args.outlier_k,
        "equation": args.equation, "cutoff_hz": args.cutoff_hz,
        "threshold_n": args.threshold_n, "threshold_bw": args.threshold_bw,
    }.items() if v is not None}  # fmt: skip
    opts = IngestOptions(figures=not args.no_figures, **kw)
    out = args.out or (results_dir(create=False) / "ingest")
    from pathlib import Path

    from retrosim.ingest.pipeline import check_output_folder

    check_output_folder(Path(out))  # refuse a foreign folder before the work
    res = process_folder(args.folder, protocol=args.protocol, options=opts)
    written = write_results(res, out)
    n_flag = int((res.stages["flags"] != "").sum())
    print(f"{len(res.stages)} stages, {len(res.trials)} trials; {n_flag} stage(s) flagged "
          f"(see qc.md)")  # fmt: skip
    for w in res.warnings:
        print(f"note for retrosim fit: {w}")
    print(f"wrote {len(written)} files to {out}; next: retrosim fit {Path(out) / 'trials.csv'}")
    return 0
