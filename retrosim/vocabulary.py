"""The project's vocabulary: one definition of every shared term and unit string.

Every module that names a direction, a mode of locomotion, a speed matching or a unit takes it
from here, so the evidence tables, the models, the trial schema and the outputs speak alike.
"""

from __future__ import annotations

#: Directions of locomotion, in the order outputs list them.
DIRECTIONS = ("forward", "backward")
#: Modes of locomotion the models and the trial schema know.
MODES = ("run", "walk")
#: Modes a published comparison may carry (some sources do not say which).
EVIDENCE_MODES = (*MODES, "unspecified")
#: How the two directions' speeds were set in a comparison.
SPEED_MATCHINGS = ("same", "self_selected", "matched_intensity")
#: Study designs of a published comparison.
DESIGNS = ("within", "between")
#: Surfaces of a published comparison.
SURFACES = ("treadmill", "overground", "underwater", "lbpp_treadmill", "unspecified")
#: Kinds of dispersion a source may report.
DISP_KINDS = ("sd", "se", "ci95", "unclear", "none")
#: Result-only statements of a comparison (backward relative to forward).
RESULT_DIRECTIONS = ("backward>forward", "backward<forward", "no_difference")

#: Unit strings, one spelling per unit (SI symbols, a space for a product, ``/`` before each
#: divisor).
UNITS = {
    "speed": "m/s",
    "mass": "kg",
    "length": "m",
    "time": "s",
    "frequency": "Hz",
    "force": "N",
    "force_bw": "BW",
    "force_bw_rate": "BW/s",
    "force_bw_per_km": "BW/km",
    "stiffness": "N/m",
    "impulse": "N s",
    "impulse_per_km": "N s/km",
    "moment": "N m",
    "moment_per_mass": "N m/kg",
    "moment_impulse_per_mass": "N m s/kg",
    "stress": "MPa",
    "stress_per_km": "MPa/km",
    "contact_area": "mm^2",
    "angle": "deg",
    "per_km": "1/km",
    "power_per_mass": "W/kg",
    "power": "W",
    "cost_per_mass_distance": "J/kg/m",
    "vo2": "mL/kg/min",
    "heart_rate": "bpm",
    "energy_rate_kcal": "kcal/min",
    "energy_distance_kcal": "kcal/km",
    "ratio": "1",
    "log_ratio": "ln(backward/forward)",
    "percent": "%",
    "grade": "%",
}
