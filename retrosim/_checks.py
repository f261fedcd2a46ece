"""Argument checks shared by the model functions.

Each check raises :class:`retrosim.errors.InputError` naming the argument, the accepted
range with units, and the first offending value, instead of letting NaNs or negative
values travel into numpy or PyMC.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from retrosim.errors import InputError


def check_range(name, value, lo, hi, units, *, lo_inclusive=False, hint=None):
    """Return ``value`` as a float array after checking ``lo < value <= hi`` (finite).

    Parameters
    ----------
    name : str
        Argument name shown in the error.
    value : array_like
        Values to check.
    lo, hi : float
        Accepted range (``lo`` exclusive unless ``lo_inclusive``; ``hi`` inclusive).
    units : str
        Units shown in the error, e.g. ``"m/s"``.
    hint : str, optional
        Extra sentence, e.g. a likely unit mistake.
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"expected numbers in [{units}], got {value!r}", argument=name) from None
    bad = ~np.isfinite(arr) | (arr > hi) | ((arr < lo) if lo_inclusive else (arr <= lo))
    if np.any(bad):
        first = arr[bad].flat[0] if arr.ndim else float(arr)
        bracket = "[" if lo_inclusive else "("
        msg = f"value {first:g} is outside the accepted range {bracket}{lo:g}, {hi:g}] {units}"
        if hint:
            msg += f"; {hint}"
        raise InputError(msg, argument=name)
    return arr


def check_choice(name, value, choices: Iterable[str]):
    """Check that every element of ``value`` is one of ``choices``; return it as an array."""
    choices = tuple(choices)
    arr = np.asarray(value)
    flat = np.atleast_1d(arr).ravel()
    for item in flat:
        if item not in choices:
            raise InputError(
                f"unknown value {item!r}; expected one of {', '.join(map(repr, choices))}",
                argument=name,
            )
    return arr
