"""The lab-trial data format and its validation.

A trial file is a **long-format** table (CSV, UTF-8, comma-separated, one header line) with
one row per trial: one participant, one direction, one mode, one speed. :data:`SCHEMA`
publishes every column as data (name, kind, units, accepted range, meaning);
``retrosim fit --schema`` prints it. :func:`read_trials` reads a file and
:func:`validate_trials` checks a table; both find **every** problem at once and raise one
:class:`~retrosim.errors.InputError` whose message lists them (plain words, with row and
column) and whose ``problems`` attribute holds them as :class:`Problem` objects.

Rows are numbered as :class:`~retrosim.errors.InputError` documents: the 1-based data row
(header excluded), so "row 1" is line 2 of the file. For a DataFrame the row is the index
label.

Accepted ranges are plausibility limits chosen for this package (not published constants):
they catch unit mistakes and typing errors, and are stated in :data:`SCHEMA` and in every
message. Unit-mistake hints are heuristics on the column's median (for example a running
speed median above 6 m/s is far more likely km/h than m/s).
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.errors import InputError
from retrosim.vocabulary import DIRECTIONS, MODES

log = logging.getLogger(__name__)

__all__ = [
    "DIRECTIONS",
    "MAX_BYTES",
    "MAX_ROWS",
    "MIN_PARTICIPANTS",
    "MODES",
    "OUTCOMES",
    "SCHEMA",
    "Problem",
    "format_examples",
    "missing_mask",
    "parse_numeric",
    "raise_problems",
    "read_trials",
    "rows_where",
    "schema_table",
    "suggest_name",
    "validate_trials",
]

#: Largest file read, in bytes (a clear error above; raise with ``max_bytes=``).
MAX_BYTES = 64 * 1024 * 1024
#: Largest number of data rows accepted (raise with ``max_rows=``).
MAX_ROWS = 200_000
#: Fewest participants a hierarchical fit accepts.
MIN_PARTICIPANTS = 3
#: At most this many problems are spelled out in an error message (all are in ``.problems``).
MAX_LISTED = 40


def _col(kind, units, lo, hi, description, *, required=False, role="covariate", **extra):
    return dict(
        kind=kind,
        units=units,
        lo=lo,
        hi=hi,
        required=required,
        role=role,
        description=description,
        **extra,
    )


#: The published trial schema: column name -> specification. ``lo``/``hi`` are the accepted
#: range (``lo`` exclusive for real numbers, inclusive for integers; ``hi`` inclusive).
SCHEMA: dict[str, dict] = {
    "participant_id": _col(
        "label", "", None, None, "participant identifier (any text)", required=True, role="id"
    ),
    "direction": _col(
        "choice", "", None, None, "forward or backward", required=True, choices=DIRECTIONS
    ),
    "mode": _col("choice", "", None, None, "run or walk", required=True, choices=MODES),
    "speed_m_s": _col("real", "m/s", 0.0, 10.0, "treadmill or overground speed", required=True),
    "mass_kg": _col("real", "kg", 20.0, 250.0, "body mass on the day", required=True),
    "grade_pct": _col("real", "%", -45.0, 45.0, "treadmill grade, 0 if absent", default=0.0),
    "trial": _col("integer", "", 1, 10_000, "repeat number within a condition (auto if absent)"),
    "session": _col("integer", "", 1, 10_000, "testing session number, 1 if absent", default=1),
    "sex": _col(
        "choice",
        "",
        None,
        None,
        "female, male, other or unknown",
        choices=("female", "male", "other", "unknown"),
    ),
    "age_y": _col("real", "years", 4.0, 110.0, "age"),
    "habituation_sessions": _col(
        "integer", "sessions", 0, 1000, "sessions of backward practice before testing"
    ),
    "synthetic": _col(
        "choice", "", None, None, "true if the row is simulated", choices=("true", "false")
    ),
    # outcome columns: units in the names
    "vo2_ml_kg_min": _col(
        "real", "mL/kg/min", 2.0, 100.0, "steady-state oxygen uptake", role="outcome"
    ),
    "energy_w": _col("real", "W", 20.0, 5000.0, "gross metabolic power", role="outcome"),
    "energy_w_kg": _col("real", "W/kg", 0.5, 60.0, "gross metabolic power per kg", role="outcome"),
    "cost_j_kg_m": _col("real", "J/kg/m", 0.3, 20.0, "energy cost of transport", role="outcome"),
    "hr_bpm": _col("real", "beats/min", 30.0, 230.0, "steady-state heart rate", role="outcome"),
    "pfj_force_bw": _col(
        "real", "body weights", 0.0, 20.0, "peak patellofemoral joint force", role="outcome"
    ),
    "pfj_stress_mpa": _col(
        "real", "MPa", 0.0, 40.0, "peak patellofemoral joint stress", role="outcome"
    ),
    "knee_moment_nm": _col("real", "N m", 0.0, 800.0, "peak knee extensor moment", role="outcome"),
    "knee_moment_nm_kg": _col(
        "real", "N m/kg", 0.0, 10.0, "peak knee extensor moment per kg", role="outcome"
    ),
    "grf_bw": _col(
        "real", "body weights", 0.0, 10.0, "peak vertical ground reaction force", role="outcome"
    ),
    # gait and impact measures from force recordings (retrosim ingest): stage means per step
    "contact_time_s": _col("real", "s", 0.0, 2.0, "foot contact time", role="outcome"),
    "flight_time_s": _col("real", "s", 0.0, 1.0, "flight time between contacts", role="outcome"),
    "step_frequency_hz": _col("real", "Hz", 0.0, 6.0, "step frequency", role="outcome"),
    "impact_peak_bw": _col(
        "real", "body weights", 0.0, 10.0, "vertical impact peak (blank: none)", role="outcome"
    ),
    "loading_rate_avg_bw_s": _col(
        "real", "BW/s", 0.0, 1000.0, "average vertical loading rate (20-80 %)", role="outcome"
    ),
    "loading_rate_inst_bw_s": _col(
        "real", "BW/s", 0.0, 2000.0, "instantaneous vertical loading rate", role="outcome"
    ),
    "impulse_bw_s_step": _col(
        "real", "BW s", 0.0, 5.0, "vertical impulse per step", role="outcome"
    ),
    "impulse_bw_s_km": _col(
        "real", "BW s/km", 0.0, 5000.0, "vertical impulse per km", role="outcome"
    ),
}

#: Names of the outcome columns.
OUTCOMES = tuple(k for k, v in SCHEMA.items() if v["role"] == "outcome")
REQUIRED = tuple(k for k, v in SCHEMA.items() if v["required"])

#: Column names in other units that people often use, with the fix to suggest.
_WRONG_UNIT_NAMES = {
    "speed_kmh": "convert km/h to m/s (divide by 3.6) and name the column 'speed_m_s'",
    "speed_km_h": "convert km/h to m/s (divide by 3.6) and name the column 'speed_m_s'",
    "speed_mph": "convert mph to m/s and name the column 'speed_m_s'",
    "mass_lb": "convert pounds to kg and name the column 'mass_kg'",
    "mass_lbs": "convert pounds to kg and name the column 'mass_kg'",
    "weight_lb": "convert pounds to kg and name the column 'mass_kg'",
    "vo2_l_min": "convert L/min to mL/kg/min (x 1000 / mass_kg) and name it 'vo2_ml_kg_min'",
    "vo2_ml_min": "convert mL/min to mL/kg/min (/ mass_kg) and name it 'vo2_ml_kg_min'",
    "energy_kcal_min": "convert kcal/min to W and name the column 'energy_w'",
    "grade": "give the grade in percent and name the column 'grade_pct'",
}

#: Heuristic unit-mistake hints: column -> list of (test on median, message).
_UNIT_HINTS = {
    "mass_kg": [(lambda m: m > 130.0, "the values look like pounds, not kilograms")],
    "vo2_ml_kg_min": [
        (lambda m: m < 6.0, "the values look like L/min; mL/kg/min = 1000 x L/min / mass_kg"),
        (lambda m: m > 200.0, "the values look like mL/min; mL/kg/min = mL/min / mass_kg"),
    ],
    "energy_w": [(lambda m: m < 30.0, "the values look like W/kg; use column 'energy_w_kg'")],
    "knee_moment_nm": [
        (lambda m: m < 6.0, "the values look like N m/kg; use column 'knee_moment_nm_kg'")
    ],
    "pfj_force_bw": [(lambda m: m > 50.0, "the values look like newtons, not body weights")],
    "grf_bw": [(lambda m: m > 50.0, "the values look like newtons, not body weights")],
    "hr_bpm": [(lambda m: m < 4.0, "the values look like beats per second, not per minute")],
}

#: Walking above this speed [m/s] is flagged as a likely km/h value (plausibility limit).
WALK_SPEED_MAX_M_S = 3.0
#: A running-speed median above this [m/s] is flagged as likely km/h (plausibility limit).
RUN_SPEED_MEDIAN_MAX_M_S = 6.0

_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none", "-", "--", "?"}
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
_SEX_ALIASES = {"f": "female", "m": "male", "woman": "female", "man": "male"}


@dataclass(frozen=True)
class Problem:
    """One problem found in a trial table.

    Attributes
    ----------
    kind : str
        Short machine-readable category, e.g. ``"unit"``, ``"range"``, ``"text"``,
        ``"missing"``, ``"duplicate"``, ``"label"``, ``"column"``, ``"design"``, ``"file"``.
    message : str
        What is wrong and what was expected, in plain words with units.
    column : str or None
    rows : tuple
        Data rows concerned (1-based, header excluded; index labels for a DataFrame).
    """

    kind: str
    message: str
    column: str | None = None
    rows: tuple = ()

    def __str__(self) -> str:
        where = []
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:8])
            more = f" and {len(self.rows) - 8} more" if len(self.rows) > 8 else ""
            where.append(f"{'row' if len(self.rows) == 1 else 'rows'} {shown}{more}")
        if self.column:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


def raise_problems(problems, source, what="the trial data"):
    """Raise one :class:`~retrosim.errors.InputError` listing every :class:`Problem`.

    The message lists at most :data:`MAX_LISTED` problems; the exception's ``problems``
    attribute holds them all, and ``column``/``row`` those of the first one.
    """
    n = len(problems)
    lines = [f"  - {p}" for p in problems[:MAX_LISTED]]
    if n > MAX_LISTED:
        lines.append(f"  ... and {n - MAX_LISTED} more problems")
    head = f"{n} problem{'s' if n != 1 else ''} found in {what}"
    exc = InputError(head + ":\n" + "\n".join(lines), file=source)
    exc.problems = list(problems)
    first = problems[0]
    exc.column = first.column
    exc.row = first.rows[0] if len(first.rows) == 1 else None
    raise exc


def schema_table() -> pd.DataFrame:
    """The schema as a table (one row per column), as printed by ``retrosim fit --schema``."""
    rows = []
    for name, spec in SCHEMA.items():
        if spec["kind"] == "choice":
            accepted = " | ".join(spec["choices"])
        elif spec["kind"] == "label":
            accepted = "any text"
        else:
            lo_br = "[" if spec["kind"] == "integer" else "("
            accepted = f"{lo_br}{spec['lo']:g}, {spec['hi']:g}]"
        rows.append(
            {
                "column": name,
                "role": spec["role"],
                "required": "yes" if spec["required"] else "no",
                "type": spec["kind"],
                "units": spec["units"],
                "accepted": accepted,
                "meaning": spec["description"],
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- reading


def read_trials(path, *, max_bytes=MAX_BYTES, max_rows=MAX_ROWS) -> pd.DataFrame:
    """Read a trial CSV into a table of raw text cells, checking the file itself.

    File-level problems (missing, empty, too large, not UTF-8, wrong delimiter, ragged rows,
    repeated column names) raise :class:`~retrosim.errors.InputError` at once; the cell
    checks happen in :func:`validate_trials`.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int
        Size limit [bytes].
    max_rows : int
        Row limit (data rows).

    Returns
    -------
    pandas.DataFrame
        Every cell as text, index = 1-based data row.
    """
    path = Path(path)
    src = str(path)

    def fail(msg):
        raise_problems([Problem("file", msg)], src)

    if not path.exists():
        fail("file not found")
    if path.is_dir():
        fail("is a folder, expected a CSV file")
    size = path.stat().st_size
    if size == 0:
        fail("the file is empty (0 bytes); expected a header line and one row per trial")
    if size > max_bytes:
        fail(
            f"the file is {size / 2**20:.1f} MB, above the limit of {max_bytes / 2**20:.0f} MB; "
            "split it, or pass a larger max_bytes if you really mean to fit it"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        fail(
            f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); "
            "re-save it as 'CSV UTF-8' (it looks like Latin-1 or Windows-1252 text)"
        )
    if "\x00" in text:
        fail("the file contains NUL bytes: it is a binary file (e.g. .xlsx), not a CSV text file")
    if not text.strip():
        fail("the file has no content (only blank space); expected a header and data rows")
    header_line = text.lstrip("\r\n").splitlines()[0]
    if "," not in header_line:
        for name, delim in (("semicolons", ";"), ("tabs", "\t"), ("'|' characters", "|")):
            if delim in header_line:
                fail(
                    f"the columns are separated by {name}, but retrosim expects commas; "
                    "re-save the file as comma-separated CSV"
                )
        if header_line.strip().lower() not in SCHEMA:
            fail(
                f"the header '{header_line[:60]}' has only one column; expected comma-separated "
                f"columns such as {', '.join(REQUIRED)}"
            )
    header = next(csv.reader([header_line]))
    header = [h.strip() for h in header]
    seen, dup = set(), []
    for h in header:
        if h in seen:
            dup.append(h)
        seen.add(h)
    if dup:
        fail(f"column name(s) {', '.join(map(repr, sorted(set(dup))))} appear more than once")
    if any(h == "" for h in header):
        fail("the header has an empty column name (a stray comma?)")
    try:
        df = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        fail(f"the rows do not line up with the header ({exc}); check for stray commas")
    except Exception as exc:  # csv module errors, etc.
        fail(f"could not be read as CSV ({type(exc).__name__}: {exc})")
    df.columns = [c.strip() for c in df.columns]
    if len(df) == 0:
        fail("the file has a header but no data rows")
    if len(df) > max_rows:
        fail(
            f"the file has {len(df):,} data rows, above the limit of {max_rows:,}; "
            "split it, or pass a larger max_rows if you really mean to fit it"
        )
    df.index = pd.RangeIndex(1, len(df) + 1)
    df.attrs["source"] = src
    return df


# -------------------------------------------------------------------------- validation


def rows_where(mask, index):
    """Row labels of ``index`` where the boolean ``mask`` is true, as a tuple."""
    return tuple(index[np.asarray(mask, dtype=bool)].tolist())


def missing_mask(values: pd.Series) -> np.ndarray:
    """True where a value is missing: NaN/None or a missing-value word ("", "NA", "-", ...)."""
    isna = values.isna().to_numpy()
    text = values.astype(str).str.strip().str.lower()
    return isna | text.isin(_MISSING_TEXT).to_numpy()


def parse_numeric(values: pd.Series):
    """Parse a column as numbers: (floats with NaN where missing or text, missing mask, text mask).

    Text marks entries that are present but not a finite number (e.g. ``"3,5"`` or ``"fast"``).
    """
    missing = missing_mask(values)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.astype(float).to_numpy()
        missing = missing | ~np.isfinite(num)
        return np.where(missing, np.nan, num), missing, np.zeros(len(values), bool)
    s = values.astype(str).str.strip()
    num = pd.to_numeric(s.where(~missing, None), errors="coerce").to_numpy(dtype=float, copy=True)
    inf = np.isinf(num)
    text = ~missing & (np.isnan(num) | inf)
    num[text | missing] = np.nan
    return num, missing, text


def format_examples(values, limit=3):
    """The first ``limit`` distinct values, quoted, for an error message."""
    uniq = list(dict.fromkeys(str(v) for v in values))
    shown = ", ".join(repr(v) for v in uniq[:limit])
    return shown + (", ..." if len(uniq) > limit else "")


def _check_numeric(name, spec, raw, index, problems, *, allow_missing):
    num, missing, text = parse_numeric(raw)
    units = f" [{spec['units']}]" if spec["units"] else ""
    if text.any():
        problems.append(
            Problem(
                "text",
                f"expected numbers{units}, found text {format_examples(raw[text])}",
                name,
                rows_where(text, index),
            )
        )
    if missing.any() and not allow_missing:
        problems.append(
            Problem(
                "missing",
                f"missing or NaN value; a number{units} is required",
                name,
                rows_where(missing, index),
            )
        )
    ok = ~np.isnan(num)
    lo, hi = spec["lo"], spec["hi"]
    hint = None
    if ok.sum() >= 1:
        median = float(np.median(num[ok]))
        for test, message in _UNIT_HINTS.get(name, []):
            if test(median):
                hint = message
                problems.append(
                    Problem(
                        "unit",
                        f"likely unit mistake: median {median:g}, expected {spec['units']}; "
                        f"{message}",
                        name,
                    )
                )
    if spec["kind"] == "integer":
        bad_int = ok & (np.abs(num - np.round(num)) > 1e-9)
        if bad_int.any():
            problems.append(
                Problem(
                    "range",
                    f"expected whole numbers, found {format_examples(num[bad_int])}",
                    name,
                    rows_where(bad_int, index),
                )
            )
        out = ok & ((num < lo) | (num > hi))
        bracket = "["
    else:
        out = ok & ((num <= lo) | (num > hi))
        bracket = "("
    if out.any() and hint is None:
        problems.append(
            Problem(
                "range",
                f"value(s) {format_examples(num[out])} outside the accepted range "
                f"{bracket}{lo:g}, {hi:g}]{units}",
                name,
                rows_where(out, index),
            )
        )
    return num


def suggest_name(word, candidates, cutoff=0.6):
    """Closest of ``candidates`` to ``word`` (difflib ratio >= ``cutoff``), or ``None``."""
    match = difflib.get_close_matches(str(word).lower(), list(candidates), n=1, cutoff=cutoff)
    return match[0] if match else None


def _check_choice(name, spec, raw, index, problems, *, allow_missing):
    missing = missing_mask(raw)
    s = raw.astype(str).str.strip().str.lower()
    if name == "sex":
        s = s.replace(_SEX_ALIASES)
    if name == "synthetic":
        s = s.where(~s.isin(_TRUE), "true").where(~s.isin(_FALSE), "false")
    choices = spec["choices"]
    unknown = ~missing & ~s.isin(choices).to_numpy()
    if missing.any() and not allow_missing:
        problems.append(
            Problem(
                "missing",
                f"missing label; expected one of {', '.join(choices)}",
                name,
                rows_where(missing, index),
            )
        )
    for label in dict.fromkeys(s[unknown]):
        mask = unknown & (s == label).to_numpy()
        original = raw[mask].iloc[0]
        guess = suggest_name(label, choices)
        msg = f"unknown label {original!r}; expected one of {', '.join(choices)}"
        if guess:
            msg += f" (did you mean {guess!r}?)"
        problems.append(Problem("label", msg, name, rows_where(mask, index)))
    return s.where(~missing & ~unknown, None)


def _check_columns(columns, outcome, problems):
    cols = list(columns)
    known = set(SCHEMA)
    unknown = [c for c in cols if c not in known]
    for c in unknown:
        key = c.strip().lower()
        if key in _WRONG_UNIT_NAMES:
            problems.append(
                Problem("column", f"column in other units: {_WRONG_UNIT_NAMES[key]}", c)
            )
            continue
        if key in known:
            problems.append(Problem("column", f"write the column name in lower case: {key!r}", c))
            continue
        guess = suggest_name(key, [k for k in SCHEMA if k not in cols], cutoff=0.75)
        if guess:
            problems.append(Problem("column", f"unknown column (did you mean {guess!r}?)", c))
        else:
            log.info("ignoring column %r (not part of the trial schema)", c)
    for req in REQUIRED:
        if req not in cols:
            problems.append(
                Problem(
                    "column",
                    f"required column missing ({SCHEMA[req]['description']}"
                    + (f", in {SCHEMA[req]['units']}" if SCHEMA[req]["units"] else "")
                    + ")",
                    req,
                )
            )
    present = [c for c in cols if c in OUTCOMES]
    if not present:
        problems.append(
            Problem("column", "no outcome column; expected at least one of " + ", ".join(OUTCOMES))
        )
    if outcome is not None and outcome not in cols:
        if outcome not in OUTCOMES:
            guess = suggest_name(outcome, OUTCOMES)
            msg = f"unknown outcome {outcome!r}; outcomes are {', '.join(OUTCOMES)}"
            if guess:
                msg += f" (did you mean {guess!r}?)"
        else:
            msg = f"outcome {outcome!r} is not a column of the file"
            if present:
                msg += f"; the file has {', '.join(present)}"
        problems.append(Problem("column", msg, outcome))


def validate_trials(data, *, outcome=None, source=None) -> pd.DataFrame:
    """Check a trial table against :data:`SCHEMA` and return it cleaned and typed.

    Every problem is collected first; if there is any, one
    :class:`~retrosim.errors.InputError` lists them all (``exc.problems``).

    Parameters
    ----------
    data : pandas.DataFrame or str or path-like
        The table, or a CSV path (read with :func:`read_trials`).
    outcome : str, optional
        The outcome to be fitted: it must be present and complete. Other outcome columns may
        have blank cells; their filled cells are still checked.
    source : str, optional
        Name used in messages (defaults to the file path).

    Returns
    -------
    pandas.DataFrame
        Canonical columns with proper dtypes; ``grade_pct`` (0) and ``session`` (1) filled in
        when absent, ``trial`` numbered within each condition when absent.
    """
    if isinstance(data, (str, Path)):
        data = read_trials(data)
    if not isinstance(data, pd.DataFrame):
        raise InputError(
            f"expected a pandas DataFrame or a CSV path, got {type(data).__name__}",
            argument="data",
        )
    source = source or data.attrs.get("source")
    problems: list[Problem] = []
    if data.shape[0] == 0:
        raise_problems([Problem("file", "the table has no rows")], source)
    df = data.copy()
    df.columns = [str(c).strip() for c in df.columns]
    _check_columns(df.columns, outcome, problems)
    index = df.index
    out = pd.DataFrame(index=index)
    for name, spec in SCHEMA.items():
        if name not in df.columns:
            continue
        raw = df[name]
        allow_missing = not (spec["required"] or name == outcome)
        if spec["role"] == "outcome" and outcome is None:
            allow_missing = False
        if spec["kind"] in ("real", "integer"):
            out[name] = _check_numeric(
                name, spec, raw, index, problems, allow_missing=allow_missing
            )
        elif spec["kind"] == "choice":
            out[name] = _check_choice(name, spec, raw, index, problems, allow_missing=allow_missing)
        else:  # label
            missing = missing_mask(raw)
            if missing.any():
                problems.append(
                    Problem("missing", "missing participant id", name, rows_where(missing, index))
                )
            out[name] = raw.astype(str).str.strip().where(~missing, None)
    if "speed_m_s" in out and "mode" in out:
        _check_speed_units(out, index, problems)
    _check_design(out, index, problems)
    if problems:
        raise_problems(problems, source)
    clean = _finish(out)
    clean.attrs["source"] = source or "DataFrame"
    return clean


def _check_speed_units(out, index, problems):
    speed = out["speed_m_s"].to_numpy(dtype=float)
    mode = out["mode"].to_numpy()
    walk = (mode == "walk") & (speed > WALK_SPEED_MAX_M_S) & (speed <= SCHEMA["speed_m_s"]["hi"])
    if walk.any():
        problems.append(
            Problem(
                "unit",
                f"walking speeds {format_examples(speed[walk])} m/s are above "
                f"{WALK_SPEED_MAX_M_S:g} m/s: likely km/h (m/s = km/h / 3.6)",
                "speed_m_s",
                rows_where(walk, index),
            )
        )
    run = (mode == "run") & np.isfinite(speed)
    if run.any() and np.median(speed[run]) > RUN_SPEED_MEDIAN_MAX_M_S:
        # a unit mistake explains the out-of-range values better than a range message
        problems[:] = [p for p in problems if not (p.column == "speed_m_s" and p.kind == "range")]
        problems.append(
            Problem(
                "unit",
                f"likely unit mistake: running speeds have median {np.median(speed[run]):g}, "
                "which looks like km/h; expected m/s (m/s = km/h / 3.6)",
                "speed_m_s",
            )
        )


def _check_design(out, index, problems):
    need = {"participant_id", "direction", "speed_m_s", "mode"}
    if not need <= set(out.columns):
        return
    pid = out["participant_id"]
    valid = pid.notna() & out["direction"].notna()
    n_part = pid[valid].nunique()
    if n_part < MIN_PARTICIPANTS:
        problems.append(
            Problem(
                "design",
                f"only {n_part} participant(s); a hierarchical fit needs at least "
                f"{MIN_PARTICIPANTS} participants, each measured forward and backward",
                "participant_id",
            )
        )
    dirs = out.loc[valid].groupby("participant_id")["direction"].agg(lambda s: set(s))
    for p, d in dirs.items():
        if len(d) < 2:
            rows = rows_where((pid == p).to_numpy() & valid.to_numpy(), index)
            problems.append(
                Problem(
                    "design",
                    f"participant {p!r} has only {next(iter(d))} trials; each participant "
                    "needs both forward and backward trials",
                    "direction",
                    rows,
                )
            )
    key = [
        c
        for c in (
            "participant_id",
            "direction",
            "mode",
            "speed_m_s",
            "grade_pct",
            "session",
            "trial",
        )
        if c in out.columns
    ]
    if "trial" in out.columns:
        dup = out.duplicated(subset=key, keep=False).to_numpy()
        what = "duplicated trial: same participant, direction, mode, speed, session and trial"
    else:
        dup = out.duplicated(keep=False).to_numpy()
        what = "duplicated row: every value repeats another row (add a 'trial' column for repeats)"
    dup = dup & out[key].notna().all(axis=1).to_numpy()
    if dup.any():
        groups = out.loc[dup].groupby(key, dropna=False).groups
        for rows in groups.values():
            problems.append(Problem("duplicate", what, None, tuple(rows.tolist())))


def _finish(out: pd.DataFrame) -> pd.DataFrame:
    df = out.copy()
    if "grade_pct" not in df:
        df["grade_pct"] = 0.0
    df["grade_pct"] = df["grade_pct"].fillna(0.0)
    if "session" not in df:
        df["session"] = 1
    df["session"] = df["session"].fillna(1).astype(int)
    cond = ["participant_id", "direction", "mode", "speed_m_s", "grade_pct", "session"]
    if "trial" not in df:
        df["trial"] = df.groupby(cond).cumcount() + 1
    df["trial"] = df["trial"].astype(int)
    if "habituation_sessions" in df:
        df["habituation_sessions"] = df["habituation_sessions"].astype("Int64")
    if "synthetic" in df:
        df["synthetic"] = df["synthetic"].map({"true": True, "false": False}).astype("boolean")
    df["participant_id"] = df["participant_id"].astype(str)
    df["direction"] = pd.Categorical(df["direction"], categories=DIRECTIONS)
    df["mode"] = pd.Categorical(df["mode"], categories=MODES)
    ordered = [c for c in SCHEMA if c in df.columns]
    return df[ordered]
