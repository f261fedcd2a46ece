"""The ``retrosim`` command line.

Exit codes (:data:`retrosim.errors.EXIT_CODES`): 0 success, 1 internal failure (any
unexpected error), 2 bad usage or bad input (:class:`~retrosim.errors.InputError`), 3 a fit
refused by the convergence gate (:class:`~retrosim.errors.ConvergenceError`). Errors are
printed as one readable message; ``--debug`` shows the traceback.

Each subcommand lives in ``retrosim/cli/<name>.py`` and exposes
``register(subparsers)``; heavy imports (PyMC, plotting) happen inside its ``run``
so that ``retrosim --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from retrosim._version import __version__
from retrosim.errors import (
    EXIT_CODES,
    EXIT_INPUT,
    EXIT_INTERNAL,
    ConvergenceError,
    InputError,
    RetrosimError,
)

#: Subcommands, in the order ``--help`` lists them.
COMMANDS = ("simulate", "evidence", "claims", "fit", "ingest")

log = logging.getLogger("retrosim")

#: How the one-line error message names each kind of RetrosimError (default "error").
_KINDS = ((InputError, "input error"), (ConvergenceError, "fit refused"))


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit with code 2 and one readable line."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"retrosim: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="retrosim",
        description=(
            "Models and evidence for backward (retro) versus forward running and walking: "
            "energy cost, knee loading, and verdicts on popular claims."
        ),
        epilog="exit codes: " + ", ".join(f"{code} {what}" for code, what in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"retrosim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"retrosim.cli.{name}")
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("retrosim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        code = exc.exit_code if isinstance(exc, RetrosimError) else EXIT_INTERNAL
        kind = next((k for cls, k in _KINDS if isinstance(exc, cls)), "error")
        text = str(exc) if isinstance(exc, RetrosimError) else f"{type(exc).__name__}: {exc}"
        print(f"retrosim: {kind}: {text}", file=sys.stderr)
        if not isinstance(exc, RetrosimError):
            print(
                "retrosim: this is a bug in retrosim; rerun with --debug for the traceback",
                file=sys.stderr,
            )
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
