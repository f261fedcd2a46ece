"""Metabolic-cart data: breath-by-breath readers, units, outliers, steady state, energy.

Readers
-------
* ``csv`` - the plain layout documented in :data:`CSV_COLUMNS`: a time column
  (``time_s`` in seconds or ``time`` as ``hh:mm:ss``), VO2 and VCO2 with their unit in the
  column name (``vo2_ml_min``, ``vo2_l_min`` or ``vo2_ml_kg_min``; likewise ``vco2_...``) and
  optionally ``hr_bpm``.
* ``cosmed`` - a COSMED export saved as .xlsx (Quark/K5 software): subject fields in
  columns A-B, then a header row with ``t``, ``VO2``, ``VCO2``, ``HR`` (``HF`` in the German
  export) and a unit row below it (English or German labels).
* ``cortex`` - a CORTEX MetaSoft export saved as .xlsx: a header row with ``t``,
  ``V'O2 (STPD)``, ``V'CO2``, ``HF`` and a unit row (``hh:mm:ss.z``, ``l/min``).

Each reader returns a :class:`CartData` in one set of units (time [s], VO2 and VCO2
[mL/min], heart rate [beats/min]); the unit of every input column is read from the file
and converted with checks (:func:`to_ml_min`). An unknown layout or unit is an
:class:`~retrosim.errors.InputError` that says what was found and what was expected.

Processing
----------
* Breath outliers (:func:`flag_outliers`): a breath is removed when its VO2 departs from
  the centred rolling median of ``window`` breaths by more than ``k`` robust SDs, the
  departure taken relative to that median and the SD being 1.4826 x the median absolute
  relative departure over the file, at least 0.5 % (defaults 9 breaths, k = 4; a rule of this package,
  stated, not a published constant).
* Steady state (:func:`steady_state`): the last ``window_s`` seconds of each stage (default
  120 s). The stage is flagged as not steady when the least-squares VO2 slope over the
  window changes VO2 by more than ``max_drift`` (default 5 %) of the window mean over the
  window's length. A stage shorter than its window is an error.
* Energy (:func:`energy_w`): gross metabolic power from VO2 and VCO2 by one of
  :data:`ENERGY_EQUATIONS` (non-protein forms); the conversion assumes oxidative
  metabolism, so an RER outside the equation's range (above 1 for every equation here) is
  flagged: CO2 from bicarbonate buffering then inflates VCO2 [3]_. Net power subtracts the
  participant's resting stage.

References
----------
.. [1] F. Péronnet, D. Massicotte, "Table of nonprotein respiratory quotient: an update",
   Can J Sport Sci 16(1), 23-29, 1991. Coefficients 16.89 kJ/L O2 and 4.84 kJ/L CO2 read in
   public code (two independent code bases), and the table's RER range 0.7036-0.996 read
   in the R package PAutilities (internal ``peronnet`` table, which the equation
   reproduces); the original paper was not read.
.. [2] J. M. Brockway, "Derivation of formulae used to calculate energy expenditure in
   man", Human Nutrition: Clinical Nutrition, 1987. Non-protein coefficients 16.58 kJ/L O2
   and 4.51 kJ/L CO2 read in two public code bases (one other code base gives 3.869 and
   1.195 kcal, closer to Brouwer's formula; not used); the original paper was not read.
.. [3] J. B. de V. Weir, equation as used by :mod:`retrosim.models.energetics` (3.941 kcal/L O2,
   1.106 kcal/L CO2; read in secondary sources).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.errors import InputError
from retrosim.models.energetics import WEIR_CO2_KCAL_L, WEIR_O2_KCAL_L
from retrosim.units import J_PER_KCAL

__all__ = [
    "CSV_COLUMNS",
    "ENERGY_EQUATIONS",
    "CartData",
    "energy_w",
    "flag_outliers",
    "read_cart",
    "steady_state",
    "to_ml_min",
]

#: Energy equations: name -> (kJ per L O2, kJ per L CO2, RER range where valid, source).
ENERGY_EQUATIONS = {
    "peronnet1991": (
        16.89,
        4.84,
        (0.7036, 0.996),
        "Péronnet & Massicotte 1991, Can J Sport Sci 16(1):23-29",
    ),
    "brockway1987": (
        16.58,
        4.51,
        (0.7, 1.0),
        "Brockway 1987, Hum Nutr Clin Nutr (non-protein form)",
    ),
    "weir1949": (
        WEIR_O2_KCAL_L * J_PER_KCAL / 1000.0,
        WEIR_CO2_KCAL_L * J_PER_KCAL / 1000.0,
        (0.7, 1.0),
        "Weir 1949 (as in retrosim.models.energetics)",
    ),
}
DEFAULT_EQUATION = "peronnet1991"

#: Plain CSV cart layout: column -> meaning (units in the name).
CSV_COLUMNS = {
    "time_s": "breath time from the start of the file [s] (or 'time' as hh:mm:ss)",
    "vo2_ml_min": "oxygen uptake [mL/min] (or vo2_l_min [L/min], vo2_ml_kg_min [mL/kg/min])",
    "vco2_ml_min": "CO2 output [mL/min] (or vco2_l_min, vco2_ml_kg_min)",
    "hr_bpm": "heart rate [beats/min], optional",
    "marker": "event marker text, optional (stages may start or end at a marker)",
}

#: Plausible whole-body VO2 after unit conversion [mL/min]: outside, a unit mistake is
#: far more likely than a real value (plausibility limits of this package).
VO2_PLAUSIBLE_ML_MIN = (50.0, 8000.0)
#: Default outlier rule (see module docstring).
OUTLIER_WINDOW = 9
OUTLIER_K = 4.0
#: Smallest robust SD of the outlier rule (relative departure).
OUTLIER_MIN_SD = 0.005
#: Default steady-state window [s] and largest accepted drift over it (fraction of mean).
WINDOW_S = 120.0
MAX_DRIFT = 0.05
#: Fewest breaths accepted in a steady-state window.
MIN_BREATHS = 10

_UNIT_FACTORS = {  # unit text (lower case, spaces removed) -> (factor to mL/min, per kg)
    "ml/min": (1.0, False),
    "l/min": (1000.0, False),
    "ml/min/kg": (1.0, True),
    "ml/kg/min": (1.0, True),
    "ml/(min*kg)": (1.0, True),
    "(ml/min)/kg": (1.0, True),
    "ml.min-1": (1.0, False),
    "l.min-1": (1000.0, False),
}


@dataclass
class CartData:
    """Breath-by-breath data in retrosim's units.

    Attributes
    ----------
    time_s : ndarray
        Breath times from the start of the file [s].
    vo2_ml_min, vco2_ml_min : ndarray
        Oxygen uptake and CO2 output [mL/min].
    hr_bpm : ndarray
        Heart rate [beats/min] (NaN when absent).
    rows : ndarray
        Row of each breath for messages: the 1-based data row of a CSV file (header
        excluded, as in retrosim.trials.schema), the spreadsheet row of an .xlsx export.
    vendor : str
        Layout read (csv, cosmed, cortex).
    units : dict
        Unit of each input column as found in the file.
    mass_kg : float or None
        Body mass stored in the export, if any [kg].
    source : str
    markers : ndarray of str or None
        The file's event-marker column (``marker`` in the plain CSV, ``Marker`` in COSMED
        exports), "" where a breath has none.
    """

    time_s: np.ndarray
    vo2_ml_min: np.ndarray
    vco2_ml_min: np.ndarray
    hr_bpm: np.ndarray
    rows: np.ndarray
    vendor: str
    units: dict = field(default_factory=dict)
    mass_kg: float | None = None
    source: str = ""
    markers: np.ndarray | None = None

    def marker_time(self, label) -> float | None:
        """Time [s] of the first breath carrying ``label`` (case ignored), or None."""
        if self.markers is None:
            return None
        hit = np.flatnonzero(np.char.lower(self.markers.astype(str)) == str(label).lower())
        return float(self.time_s[hit[0]]) if hit.size else None

    @property
    def n_breaths(self) -> int:
        return int(self.time_s.size)


# ------------------------------------------------------------------------ units and time


def to_ml_min(values, unit, *, mass_kg=None, column="VO2", source=None):
    """Convert a VO2/VCO2 column to mL/min from the unit written in the file.

    Parameters
    ----------
    values : array_like
    unit : str
        As written, e.g. ``"ml/min"``, ``"L/min"``, ``"mL/kg/min"``, ``"(mL/min)/kg"``.
    mass_kg : float, optional
        Body mass [kg], needed for per-kg units.

    Raises
    ------
    InputError
        Unknown unit, or a per-kg unit without a body mass.
    """
    key = re.sub(r"\s+", "", str(unit)).lower().replace("·", ".").replace("⁻¹", "-1")
    if key not in _UNIT_FACTORS:
        raise InputError(
            f"unit {unit!r} of {column} is not understood; expected mL/min, L/min or mL/kg/min",
            file=source, column=column,
        )  # fmt: skip
    factor, per_kg = _UNIT_FACTORS[key]
    v = np.asarray(values, dtype=float) * factor
    if per_kg:
        if mass_kg is None or not np.isfinite(mass_kg):
            raise InputError(f"{column} is per kg ({unit}); a body mass is needed to convert "
                             "it to mL/min", file=source, column=column)  # fmt: skip
        v = v * float(mass_kg)
    return v


def _check_plausible(vo2, column, unit, source):
    med = float(np.nanmedian(vo2)) if np.isfinite(vo2).any() else float("nan")
    lo, hi = VO2_PLAUSIBLE_ML_MIN
    if not (lo <= med <= hi):
        hint = ""
        if med > hi:
            hint = " (values look like mL/min labelled as L/min?)"
        elif med < lo:
            hint = " (values look like L/min labelled as mL/min, or per-kg values?)"
        raise InputError(
            f"median {column} is {med:.4g} mL/min after converting from {unit!r}; expected "
            f"{lo:g}-{hi:g} mL/min for a person{hint}", file=source, column=column,
        )  # fmt: skip


def _parse_clock(values, column, rows, source):
    """Times as seconds from numbers, 'hh:mm:ss[.z|,z]' text, time or timedelta objects."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, (int, float, np.integer, np.floating)):
            out[i] = float(v)
        elif isinstance(v, _dt.time):
            out[i] = v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6
        elif isinstance(v, _dt.timedelta):
            out[i] = v.total_seconds()
        elif isinstance(v, _dt.datetime):
            out[i] = v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6
        else:
            s = str(v).strip().replace(",", ".")
            m = re.fullmatch(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)", s)
            if m:
                h = float(m.group(1) or 0.0)
                out[i] = h * 3600 + float(m.group(2)) * 60 + float(m.group(3))
            else:
                try:
                    out[i] = float(s)
                except ValueError:
                    raise InputError(
                        f"time {v!r} is not a time; expected seconds or hh:mm:ss",
                        file=source,
                        row=int(rows[i]),
                        column=column,
                    ) from None
    return out


def _check_time(t, rows, source, column="time"):
    bad = ~np.isfinite(t)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError("missing time; every breath needs a time [s]", file=source,
                         row=int(rows[i]), column=column)  # fmt: skip
    d = np.diff(t)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0)) + 1
        raise InputError(
            f"time is not increasing ({t[i - 1]:g} s then {t[i]:g} s); expected strictly "
            "increasing breath times", file=source, row=int(rows[i]), column=column,
        )  # fmt: skip


# ------------------------------------------------------------------------------ readers


def _read_csv(path, mass_kg):
    src = str(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # parser errors name the line
        raise InputError(f"could not be read as CSV ({exc})", file=src) from None
    df.columns = [c.strip() for c in df.columns]
    rows = np.arange(1, len(df) + 1)  # data rows, header excluded (as trial_schema)
    if len(df) == 0:
        raise InputError("the cart file has a header but no breaths", file=src)
    tcol = "time_s" if "time_s" in df.columns else "time" if "time" in df.columns else None
    if tcol is None:
        raise InputError(f"no time column; expected 'time_s' [s] or 'time' (hh:mm:ss); the "
                         f"file has {', '.join(df.columns[:12])}", file=src)  # fmt: skip
    t = _parse_clock(df[tcol].tolist(), tcol, rows, src)
    units, gas = {}, {}
    for gasname in ("vo2", "vco2"):
        found = [c for c in df.columns if c.lower().startswith(gasname + "_")]
        known = {f"{gasname}_ml_min": "mL/min", f"{gasname}_l_min": "L/min",
                 f"{gasname}_ml_kg_min": "mL/kg/min"}  # fmt: skip
        use = [c for c in found if c.lower() in known]
        if not use:
            raise InputError(
                f"no {gasname.upper()} column; expected one of {', '.join(known)} (unit in the "
                f"name); found {', '.join(found) or 'none'}", file=src,
            )  # fmt: skip
        c = use[0]
        vals = pd.to_numeric(df[c].str.strip().replace("", np.nan), errors="coerce")
        bad = vals.isna().to_numpy() & (df[c].str.strip() != "").to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{df[c].iloc[i]!r} is not a number; expected {known[c.lower()]}",
                             file=src, row=int(rows[i]), column=c)  # fmt: skip
        units[gasname] = known[c.lower()]
        gas[gasname] = to_ml_min(vals.to_numpy(float), known[c.lower()], mass_kg=mass_kg,
                                 column=c, source=src)  # fmt: skip
    hr = np.full(len(df), np.nan)
    if "hr_bpm" in df.columns:
        hr = pd.to_numeric(df["hr_bpm"].str.strip().replace("", np.nan), errors="coerce")
        hr = hr.to_numpy(float)
        units["hr"] = "beats/min"
    markers = df["marker"].str.strip().to_numpy(dtype=str) if "marker" in df.columns else None
    return CartData(t, gas["vo2"], gas["vco2"], hr, rows, "csv", units, None, src, markers)


def _xlsx_rows(path):
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError("reading .xlsx exports needs openpyxl (pip install openpyxl)",
                         file=str(path)) from exc  # fmt: skip
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError(f"could not be opened as an .xlsx workbook ({type(exc).__name__}: "
                         f"{exc})", file=str(path)) from None  # fmt: skip
    try:
        ws = wb.worksheets[0]
        return [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _norm(s):
    return str(s).strip().lower() if s is not None else ""


def _find_header(rows, test, max_rows=200):
    for i, r in enumerate(rows[:max_rows]):
        if test([_norm(c) for c in r]):
            return i
    return None


def _cosmed_signature(cells):
    return "t" in cells and "vo2" in cells and "vco2" in cells


def _cortex_signature(cells):
    return "t" in cells and any(c.startswith("v'o2") for c in cells)


def _column(header, names):
    for n in names:
        if n in header:
            return header.index(n)
    return None


def _sheet_to_cart(path, rows, h, vendor, cols, mass_kg):
    """Common part of the spreadsheet readers: header row ``h``, unit row ``h + 1``."""
    src = str(path)
    header = [_norm(c) for c in rows[h]]
    unitrow = rows[h + 1] if h + 1 < len(rows) else []
    ti, oi, ci, hi = (_column(header, cols[k]) for k in ("t", "vo2", "vco2", "hr"))
    for k, idx in (("t", ti), ("vo2", oi), ("vco2", ci)):
        if idx is None:
            raise InputError(f"the {vendor} header (spreadsheet row {h + 1}) has no "
                             f"{' / '.join(cols[k])} column", file=src)  # fmt: skip
    data, sheet_rows = [], []
    for j in range(h + 2, len(rows)):
        r = rows[j]
        if ti >= len(r) or r[ti] is None or (isinstance(r[ti], str) and not r[ti].strip()):
            continue
        data.append(r)
        sheet_rows.append(j + 1)
    if not data:
        raise InputError(f"the {vendor} export has a header but no breaths", file=src)
    sheet_rows = np.asarray(sheet_rows)

    def unit(i):
        return str(unitrow[i]).strip() if i < len(unitrow) and unitrow[i] is not None else ""

    def numbers(i, name):
        out = np.full(len(data), np.nan)
        for j, r in enumerate(data):
            v = r[i] if i < len(r) else None
            if v is None or (isinstance(v, str) and v.strip() in ("", "-", "---")):
                continue
            try:
                out[j] = float(str(v).replace(",", ".")) if isinstance(v, str) else float(v)
            except (TypeError, ValueError):
                raise InputError(
                    f"{v!r} is not a number; expected {unit(i) or 'a number'}",
                    file=src,
                    row=int(sheet_rows[j]),
                    column=name,
                ) from None
        return out

    t = _parse_clock([r[ti] for r in data], "t", sheet_rows, src)
    vo2u, vco2u = unit(oi), unit(ci)
    vo2 = to_ml_min(numbers(oi, header[oi]), vo2u, mass_kg=mass_kg, column=rows[h][oi],
                    source=src)  # fmt: skip
    vco2 = to_ml_min(numbers(ci, header[ci]), vco2u, mass_kg=mass_kg, column=rows[h][ci],
                     source=src)  # fmt: skip
    units = {"time": unit(ti), "vo2": vo2u, "vco2": vco2u}
    hr = np.full(len(data), np.nan)
    if hi is not None:
        hu = unit(hi).lower()
        if hu not in ("bpm", "1/min", "b/min", "beats/min", "/min", "min-1"):
            raise InputError(f"heart-rate unit {unit(hi)!r} not understood; expected bpm or "
                             "1/min", file=src, column=rows[h][hi])  # fmt: skip
        hr = numbers(hi, header[hi])
        hr[hr <= 0] = np.nan  # exports write 0 when no heart-rate belt was worn
        units["hr"] = unit(hi)
    mi = _column(header, cols.get("marker", []))
    markers = None
    if mi is not None:
        markers = np.array(["" if mi >= len(r) or r[mi] is None else str(r[mi]).strip()
                            for r in data], dtype=str)  # fmt: skip
    return CartData(t, vo2, vco2, hr, sheet_rows, vendor, units, None, src, markers)


def _meta_mass(rows, keys=("weight", "gewicht", "mass", "poids", "peso")):
    for r in rows[:40]:
        if not r or r[0] is None:
            continue
        k = _norm(r[0])
        if any(k.startswith(x) for x in keys) and len(r) > 1 and r[1] not in (None, ""):
            try:
                m = float(str(r[1]).replace(",", "."))
            except ValueError:
                continue
            unit = "lb" if "lb" in k else "kg"
            return m * 0.45359237 if unit == "lb" else m
    return None


def _header_or_fail(path, rows, signature, what):
    rows = rows if rows is not None else _xlsx_rows(path)
    h = _find_header(rows, signature)
    if h is None:
        raise InputError(f"not a {what} export: no header row with {_SIGNATURES[what]}",
                         file=str(path))  # fmt: skip
    return rows, h


_SIGNATURES = {"COSMED": "t, VO2 and VCO2", "CORTEX": "t and V'O2"}


def _read_cosmed(path, mass_kg, rows=None):
    rows, h = _header_or_fail(path, rows, _cosmed_signature, "COSMED")
    stored = _meta_mass(rows)
    cols = {"t": ["t"], "vo2": ["vo2"], "vco2": ["vco2"], "hr": ["hr", "hf"], "marker": ["marker"]}
    cart = _sheet_to_cart(path, rows, h, "cosmed", cols,
                          mass_kg if mass_kg is not None else stored)  # fmt: skip
    cart.mass_kg = stored
    return cart


def _read_cortex(path, mass_kg, rows=None):
    rows, h = _header_or_fail(path, rows, _cortex_signature, "CORTEX")
    header = [_norm(c) for c in rows[h]]
    vo2 = [c for c in header if c.startswith("v'o2") and "/" not in c]
    vco2 = [c for c in header if c.startswith("v'co2") and "/" not in c]
    cols = {"t": ["t"], "vo2": vo2[:1], "vco2": vco2[:1], "hr": ["hf", "hr"]}
    return _sheet_to_cart(path, rows, h, "cortex", cols, mass_kg)


_READERS = {"csv": _read_csv, "cosmed": _read_cosmed, "cortex": _read_cortex}


def read_cart(path, fmt="auto", *, mass_kg=None) -> CartData:
    """Read a breath-by-breath cart file into :class:`CartData` (time [s], gases [mL/min]).

    Parameters
    ----------
    path : str or path-like
    fmt : {"auto", "csv", "cosmed", "cortex"}
        ``auto`` picks ``csv`` for .csv/.txt and tells COSMED from CORTEX .xlsx exports by
        their header row.
    mass_kg : float, optional
        Body mass [kg] from the protocol, used for per-kg units.

    Raises
    ------
    InputError
        Unknown layout, unknown units, implausible values, non-increasing time.
    """
    path = Path(path)
    src = str(path)
    if fmt not in ("auto", *_READERS):
        raise InputError(f"unknown cart format {fmt!r}; expected auto, {', '.join(_READERS)}",
                         file=src)  # fmt: skip
    suffix = "".join(path.suffixes[-2:]).lower()
    if fmt == "auto":
        if suffix.endswith((".csv", ".txt", ".csv.gz")):
            fmt = "csv"
        elif suffix.endswith((".xlsx", ".xlsm")):
            rows = _xlsx_rows(path)
            if _find_header(rows, _cortex_signature) is not None:
                cart = _read_cortex(path, mass_kg, rows)
            elif _find_header(rows, _cosmed_signature) is not None:
                cart = _read_cosmed(path, mass_kg, rows)
            else:
                raise InputError(
                    "unknown vendor layout: no COSMED header (t, VO2, VCO2) and no CORTEX "
                    "header (t, V'O2 (STPD), V'CO2) in the first 200 rows; export the "
                    "breath-by-breath table, or convert it to the plain CSV layout "
                    f"({', '.join(CSV_COLUMNS)})", file=src,
                )  # fmt: skip
            return _finish(cart)
        else:
            raise InputError(
                f"unknown cart file type {path.suffix!r}; expected .csv (plain layout) or an "
                ".xlsx export from COSMED or CORTEX", file=src,
            )  # fmt: skip
    return _finish(_READERS[fmt](path, mass_kg))


def _finish(cart: CartData) -> CartData:
    _check_time(cart.time_s, cart.rows, cart.source)
    _check_plausible(cart.vo2_ml_min, "VO2", cart.units.get("vo2"), cart.source)
    for name, v in (("VO2", cart.vo2_ml_min), ("VCO2", cart.vco2_ml_min)):
        neg = v < 0
        if neg.any():
            i = int(np.argmax(neg))
            raise InputError(f"negative {name} ({v[i]:g} mL/min); expected values >= 0",
                             file=cart.source, row=int(cart.rows[i]), column=name)  # fmt: skip
    return cart


# --------------------------------------------------------------------------- processing


def flag_outliers(values, *, window=OUTLIER_WINDOW, k=OUTLIER_K) -> np.ndarray:
    """Breaths that depart from the rolling median by more than ``k`` robust SDs.

    Parameters
    ----------
    values : array_like
        VO2 per breath (any unit).
    window : int
        Breaths in the centred rolling median (odd; shrinks at the ends).
    k : float
        Threshold in robust SDs (1.4826 x median absolute relative departure over the
        series; departures are relative to the rolling median).

    Returns
    -------
    ndarray of bool
        True for an outlier breath. Missing values count as outliers.
    """
    x = pd.Series(np.asarray(values, dtype=float))
    med = x.rolling(int(window), center=True, min_periods=1).median().to_numpy()
    # relative departure: one rule for rest (~0.3 L/min) and running (~3 L/min) breaths
    with np.errstate(divide="ignore", invalid="ignore"):
        r = x.to_numpy() / med - 1.0
    ok = np.isfinite(r)
    if not ok.any():
        return np.ones(len(x), bool)
    # floor of 0.5 %: a (nearly) noise-free series still loses its artefact breaths
    s = max(1.4826 * np.median(np.abs(r[ok])), OUTLIER_MIN_SD)
    return ~ok | (np.abs(r) > k * s)


def steady_state(cart: CartData, start_s, end_s, *, window_s=WINDOW_S, max_drift=MAX_DRIFT,
                 outliers=None, label="stage") -> dict:  # fmt: skip
    """Mean VO2, VCO2, RER and heart rate over the last ``window_s`` seconds of a stage.

    Parameters
    ----------
    cart : CartData
    start_s, end_s : float
        Stage limits on the file's clock [s].
    window_s : float
        Length of the averaging window at the end of the stage [s].
    max_drift : float
        Largest accepted VO2 change over the window (fraction of the window mean) from the
        least-squares slope; a larger one flags the stage as not in steady state.
    outliers : ndarray of bool, optional
        Breaths to leave out (from :func:`flag_outliers` on the whole file).
    label : str
        Stage name for messages.

    Returns
    -------
    dict
        ``vo2_ml_min``, ``vco2_ml_min``, ``rer``, ``hr_bpm``, ``n_breaths``,
        ``n_outliers``, ``drift`` (fraction), ``steady`` (bool), ``window_start_s``,
        ``window_end_s``.

    Raises
    ------
    InputError
        The stage is shorter than the window, lies outside the recording, or holds fewer
        than :data:`MIN_BREATHS` valid breaths in its window.
    """
    t = cart.time_s
    if end_s - start_s < window_s:
        raise InputError(
            f"{label} lasts {end_s - start_s:g} s, shorter than the steady-state window of "
            f"{window_s:g} s; expected a stage of at least {window_s:g} s (or a shorter "
            "--window-s)", file=cart.source,
        )  # fmt: skip
    if end_s > t[-1] + 30.0 or start_s < t[0] - 30.0:
        raise InputError(
            f"{label} spans {start_s:g}-{end_s:g} s but the recording covers "
            f"{t[0]:g}-{t[-1]:g} s; expected the stage inside the recording (times in "
            "seconds from the start of the file)", file=cart.source,
        )  # fmt: skip
    w0 = end_s - window_s
    sel = (t >= w0) & (t <= end_s)
    out = np.zeros_like(sel) if outliers is None else np.asarray(outliers, bool)
    use = sel & ~out
    n = int(use.sum())
    if n < MIN_BREATHS:
        raise InputError(
            f"{label}: only {n} valid breaths in its window {w0:g}-{end_s:g} s; expected at "
            f"least {MIN_BREATHS}", file=cart.source,
        )  # fmt: skip
    vo2, vco2, tt = cart.vo2_ml_min[use], cart.vco2_ml_min[use], t[use]
    mean = float(vo2.mean())
    slope = float(np.polyfit(tt - tt.mean(), vo2, 1)[0]) if np.ptp(tt) > 0 else 0.0
    drift = slope * window_s / mean
    hr = cart.hr_bpm[use]
    return {
        "vo2_ml_min": mean,
        "vco2_ml_min": float(vco2.mean()),
        "rer": float(vco2.mean() / mean),
        "hr_bpm": float(np.nanmean(hr)) if np.isfinite(hr).any() else float("nan"),
        "n_breaths": n,
        "n_outliers": int((sel & out).sum()),
        "drift": float(drift),
        "steady": bool(abs(drift) <= max_drift),
        "window_start_s": float(w0),
        "window_end_s": float(end_s),
    }


def energy_w(vo2_ml_min, vco2_ml_min, equation=DEFAULT_EQUATION):
    """Gross metabolic power [W] from VO2 and VCO2 [mL/min] by a named equation.

    ``P = (a VO2 + b VCO2) / 60`` with ``a``, ``b`` in kJ per litre (per mL: J) from
    :data:`ENERGY_EQUATIONS`.

    Returns
    -------
    (power_w, rer_valid)
        Power [W] and whether the RER lies in the equation's valid range.
    """
    if equation not in ENERGY_EQUATIONS:
        raise InputError(f"unknown energy equation {equation!r}; expected one of "
                         f"{', '.join(ENERGY_EQUATIONS)}", argument="equation")  # fmt: skip
    a, b, (lo, hi), _ = ENERGY_EQUATIONS[equation]
    o2 = np.asarray(vo2_ml_min, dtype=float)
    co2 = np.asarray(vco2_ml_min, dtype=float)
    power = (a * o2 + b * co2) / 60.0  # kJ/L == J/mL; mL/min -> J/s
    rer = co2 / o2
    return power, (rer >= lo - 1e-9) & (rer <= hi + 1e-9)
