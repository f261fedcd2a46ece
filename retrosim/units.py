"""Physical constants, unit conversions and xarray unit attributes.

SI inside the package: m/s, kg, N, W, J. The unit strings of outputs are
:data:`retrosim.vocabulary.UNITS`; the conversion of oxygen uptake to energy (Weir) is in
:mod:`retrosim.models.energetics`.
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


def set_attrs(da, units, long_name, **extra):
    """Attach ``units`` and ``long_name`` (and any extra attributes) to an xarray object in place."""
    da.attrs.update(units=units, long_name=long_name, **extra)
    return da
