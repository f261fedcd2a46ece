"""The published evidence: tables of backward-versus-forward comparisons and their effect sizes.

:mod:`retrosim.evidence.tables` reads and checks the shipped tables (``retrosim/data/literature``)
and computes effect sizes; :mod:`retrosim.evidence.directions` turns direction-only results into
bounds on a test statistic for the meta-analysis likelihood.
"""

from retrosim.evidence.tables import (
    FAMILIES,
    OUTCOMES,
    direction_statements,
    effect_sizes,
    load,
    load_references,
    to_xarray,
)

__all__ = [
    "FAMILIES",
    "OUTCOMES",
    "direction_statements",
    "effect_sizes",
    "load",
    "load_references",
    "to_xarray",
]
