"""``retrosim simulate``: evaluate the gait, energetics and knee models over a speed x mass grid."""

from __future__ import annotations

from ..errors import RetrosimError

HELP = "evaluate the gait, energetics and knee models over a speed x mass grid"


def register(subparsers):
    p = subparsers.add_parser("simulate", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    raise RetrosimError("'retrosim simulate' is not implemented yet")
