"""``retrosim claims``: pool the evidence and print a verdict for every popular claim."""

from __future__ import annotations

from ..errors import RetrosimError

HELP = "pool the evidence and print a verdict for every popular claim"


def register(subparsers):
    p = subparsers.add_parser("claims", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    raise RetrosimError("'retrosim claims' is not implemented yet")
