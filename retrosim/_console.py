"""A rich console that does not truncate tables when output is piped or logged."""

from __future__ import annotations

import sys


def console(min_width: int = 140):
    """Return a ``rich.console.Console``; wide enough for tables when not on a terminal."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=min_width, soft_wrap=False)
