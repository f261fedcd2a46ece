"""Unit conversions and xarray unit attributes.

SI inside the package: m/s, kg, N, W, J. Conversions to the units people ask about
(kcal, km/h, mL O2) live here and nowhere else.
"""

from __future__ import annotations

import numpy as np

#: Thermochemical calorie [J/kcal].
J_PER_KCAL = 4184.0
#: Standard gravity [m/s^2].
G = 9.80665


def kmh_to_m_s(speed_kmh):
    """Convert km/h to m/s."""
    return np.asarray(speed_kmh, dtype=float) / 3.6


def m_s_to_kmh(speed_m_s):
    """Convert m/s to km/h."""
    return np.asarray(speed_m_s, dtype=float) * 3.6


def j_to_kcal(energy_j):
    """Convert J to kcal (thermochemical)."""
    return np.asarray(energy_j, dtype=float) / J_PER_KCAL


def kcal_to_j(energy_kcal):
    """Convert kcal to J (thermochemical)."""
    return np.asarray(energy_kcal, dtype=float) * J_PER_KCAL


def set_attrs(da, units, long_name, **extra):
    """Attach ``units`` and ``long_name`` (and any extra attributes) to an xarray object in place."""
    da.attrs.update(units=units, long_name=long_name, **extra)
    return da
