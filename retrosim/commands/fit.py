"""``retrosim fit``: fit the hierarchical model to your own lab trial data."""

from __future__ import annotations

from ..errors import RetrosimError

HELP = "fit the hierarchical model to your own lab trial data"


def register(subparsers):
    p = subparsers.add_parser("fit", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    raise RetrosimError("'retrosim fit' is not implemented yet")
