"""``retrosim evidence``: summarise the published evidence and write the effect-size table."""

from __future__ import annotations

from ..errors import RetrosimError

HELP = "summarise the published evidence and write the effect-size table"


def register(subparsers):
    p = subparsers.add_parser("evidence", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    raise RetrosimError("'retrosim evidence' is not implemented yet")
