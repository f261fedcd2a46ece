"""The protocol sheet: which stretch of which raw file was which condition.

A lab folder holds raw files (metabolic-cart exports, force recordings) and one
**protocol sheet** ``protocol.csv`` (UTF-8, comma-separated, one header line) with one row
per **stage**: one participant doing one condition (or resting) between two times of the
recording. :data:`PROTOCOL_SCHEMA` publishes every column (name, kind, units, accepted
range, meaning); ``retrosim ingest --schema`` prints it. :func:`read_protocol` reads and
checks a sheet and raises one :class:`~retrosim.errors.InputError` listing every problem
(row, column, what was expected).

Times are seconds from the start of the named file (``start_s``/``end_s`` on the cart
file's clock, or ``start_marker``/``end_marker``: a label of the cart file's marker column, ``force_start_s``/``force_end_s`` on the force file's clock; a force file
without them is taken as one stage). File names are relative to the folder holding the
sheet. Rows are numbered from 1 after the header (row 1 is line 2 of the file), as in
:mod:`retrosim.trials.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.trials import schema as ts

__all__ = [
    "CART_FORMATS",
    "FORCE_FORMATS",
    "PROTOCOL_SCHEMA",
    "STAGE_TYPES",
    "Stage",
    "protocol_schema_table",
    "read_protocol",
]

#: Stage kinds: a locomotion condition, or a resting measurement (for net energy).
STAGE_TYPES = ("exercise", "rest")
#: Metabolic-cart file layouts understood (``auto`` guesses from the file).
CART_FORMATS = ("auto", "csv", "cosmed", "cortex")
#: Force file layouts understood.
FORCE_FORMATS = ("auto", "csv", "c3d")
#: Default name of the protocol sheet inside a lab folder.
PROTOCOL_NAME = "protocol.csv"


def _col(kind, units, lo, hi, description, *, required=False, **extra):
    return dict(kind=kind, units=units, lo=lo, hi=hi, required=required,
                description=description, **extra)  # fmt: skip


#: Protocol columns: name -> specification (``lo`` exclusive for reals, inclusive for
#: integers and times). Ranges are plausibility limits of this package, as in
#: :data:`retrosim.trials.schema.SCHEMA`.
PROTOCOL_SCHEMA: dict[str, dict] = {
    "participant_id": _col("label", "", None, None, "participant identifier", required=True),
    "mass_kg": _col("real", "kg", 20.0, 250.0, "body mass on the day", required=True),
    "stage": _col(
        "label", "", None, None, "stage name, unique per participant and session", required=True
    ),
    "stage_type": _col(
        "choice",
        "",
        None,
        None,
        "exercise (default) or rest",
        choices=STAGE_TYPES,
        default="exercise",
    ),
    "direction": _col(
        "choice", "", None, None, "forward or backward (exercise stages)", choices=ts.DIRECTIONS
    ),
    "mode": _col("choice", "", None, None, "run or walk (exercise stages)", choices=ts.MODES),
    "speed_m_s": _col("real", "m/s", 0.0, 10.0, "treadmill or overground speed (exercise)"),
    "grade_pct": _col("real", "%", -45.0, 45.0, "treadmill grade, 0 if absent", default=0.0),
    "trial": _col("integer", "", 1, 10_000, "repeat number within a condition (auto if absent)"),
    "session": _col("integer", "", 1, 10_000, "testing session, 1 if absent", default=1),
    "start_s": _col(
        "time", "s", 0.0, 1e6, "stage start on the cart file's clock (or start_marker)"
    ),
    "end_s": _col("time", "s", 0.0, 1e6, "stage end on the cart file's clock (or end_marker)"),
    "start_marker": _col("label", "", None, None, "marker in the cart file that starts the stage"),
    "end_marker": _col("label", "", None, None, "marker in the cart file that ends the stage"),
    "cart_file": _col("path", "", None, None, "metabolic-cart export (relative path)"),
    "cart_format": _col(
        "choice",
        "",
        None,
        None,
        "cart layout: " + ", ".join(CART_FORMATS),
        choices=CART_FORMATS,
        default="auto",
    ),
    "force_file": _col("path", "", None, None, "force recording of the stage (relative path)"),
    "force_format": _col(
        "choice",
        "",
        None,
        None,
        "force layout: " + ", ".join(FORCE_FORMATS),
        choices=FORCE_FORMATS,
        default="auto",
    ),
    "force_rate_hz": _col(
        "real", "Hz", 10.0, 100_000.0, "sampling rate of a CSV force file without a time column"
    ),
    "force_start_s": _col("time", "s", 0.0, 1e6, "stage start on the force file's clock"),
    "force_end_s": _col("time", "s", 0.0, 1e6, "stage end on the force file's clock"),
    "sex": ts.SCHEMA["sex"] | {"required": False},
    "age_y": ts.SCHEMA["age_y"] | {"required": False},
    "habituation_sessions": ts.SCHEMA["habituation_sessions"] | {"required": False},
    "synthetic": ts.SCHEMA["synthetic"] | {"required": False},
}

#: Columns an exercise stage must fill.
EXERCISE_REQUIRED = ("direction", "mode", "speed_m_s")


@dataclass
class Stage:
    """One checked protocol row.

    Attributes
    ----------
    row : int
        1-based data row of the protocol sheet.
    participant_id, stage, stage_type : str
    mass_kg : float
        Body mass [kg].
    direction, mode : str or None
    speed_m_s, grade_pct : float
        Speed [m/s], grade [%].
    session, trial : int or None
    start_s, end_s : float
        Window on the cart file's clock [s].
    start_marker, end_marker : str or None
        Cart-file markers that give the window instead of the times.
    cart_file, force_file : pathlib.Path or None
    cart_format, force_format : str
    force_rate_hz, force_start_s, force_end_s : float or None
    extra : dict
        Pass-through columns (sex, age_y, habituation_sessions, synthetic).
    """

    row: int
    participant_id: str
    stage: str
    stage_type: str
    mass_kg: float
    direction: str | None
    mode: str | None
    speed_m_s: float
    grade_pct: float
    session: int
    trial: int | None
    start_s: float
    end_s: float
    cart_file: Path | None
    cart_format: str
    force_file: Path | None
    force_format: str
    force_rate_hz: float | None
    force_start_s: float | None
    force_end_s: float | None
    extra: dict = field(default_factory=dict)
    start_marker: str | None = None
    end_marker: str | None = None

    @property
    def label(self) -> str:
        """How messages name the stage: participant, stage, protocol row."""
        return f"participant {self.participant_id!r} stage {self.stage!r} (protocol row {self.row})"


def protocol_schema_table() -> pd.DataFrame:
    """The protocol schema as a table, as printed by ``retrosim ingest --schema``."""
    rows = []
    for name, spec in PROTOCOL_SCHEMA.items():
        if spec["kind"] == "choice":
            accepted = " | ".join(spec["choices"])
        elif spec["kind"] in ("label", "path"):
            accepted = "any text" if spec["kind"] == "label" else "file in the folder"
        else:
            lo_br = "(" if spec["kind"] == "real" else "["
            accepted = f"{lo_br}{spec['lo']:g}, {spec['hi']:g}]"
        req = "yes" if spec["required"] else ("exercise" if name in EXERCISE_REQUIRED else "no")
        rows.append({"column": name, "required": req, "type": spec["kind"],
                     "units": spec["units"], "accepted": accepted,
                     "meaning": spec["description"]})  # fmt: skip
    return pd.DataFrame(rows)


def _problem(problems, message, column=None, rows=()):
    problems.append(ts.Problem("protocol", message, column, tuple(rows)))


def read_protocol(path, *, folder=None) -> list[Stage]:
    """Read and check a protocol sheet; return its stages in file order.

    Every problem (unknown column, missing or out-of-range cell, an end before its start,
    overlapping stages on one cart file, a file that does not exist, a duplicated stage)
    is collected first and raised as one :class:`~retrosim.errors.InputError`.

    Parameters
    ----------
    path : str or path-like
        The sheet (CSV).
    folder : path-like, optional
        Folder the file names are relative to (default: the sheet's folder).

    Returns
    -------
    list of Stage
    """
    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    raw = ts.read_trials(path)  # same file-level checks (encoding, delimiter, ragged rows)
    src = str(path)
    problems: list[ts.Problem] = []
    unknown = [c for c in raw.columns if c not in PROTOCOL_SCHEMA]
    for c in unknown:
        guess = ts.suggest_name(c, PROTOCOL_SCHEMA)
        _problem(problems, f"unknown column {c!r}" + (f" (did you mean {guess!r}?)" if guess else
                 "; see retrosim ingest --schema"), c)  # fmt: skip
    for c, spec in PROTOCOL_SCHEMA.items():
        if spec["required"] and c not in raw.columns:
            _problem(problems, f"required column {c!r} is missing ({spec['description']})", c)
    if problems:
        ts.raise_problems(problems, src)
    index = raw.index
    cols: dict[str, np.ndarray] = {}
    for name, spec in PROTOCOL_SCHEMA.items():
        if name not in raw.columns:
            continue
        s = raw[name]
        missing = ts.missing_mask(s)
        if spec["kind"] in ("real", "integer", "time"):
            num, _, text = ts.parse_numeric(s)
            if text.any():
                _problem(problems, f"expected a number in {spec['units'] or 'no unit'}, found "
                         f"{ts.format_examples(s[text])}", name, ts.rows_where(text, index))  # fmt: skip
            ok = np.isfinite(num)
            lo, hi = spec["lo"], spec["hi"]
            if spec["kind"] == "real":
                bad = ok & ((num <= lo) | (num > hi))
                br = f"({lo:g}, {hi:g}]"
            else:
                bad = ok & ((num < lo) | (num > hi))
                br = f"[{lo:g}, {hi:g}]"
            if spec["kind"] == "integer":
                bad |= ok & (num != np.round(num))
            if bad.any():
                _problem(problems, f"values {ts.format_examples(num[bad])} outside {br} "
                         f"{spec['units']}".rstrip(), name, ts.rows_where(bad, index))  # fmt: skip
            cols[name] = num
        elif spec["kind"] == "choice":
            text = s.astype(str).str.strip().str.lower()
            bad = ~missing & ~text.isin(spec["choices"]).to_numpy()
            if bad.any():
                _problem(problems, f"expected {' or '.join(spec['choices'])}, found "
                         f"{ts.format_examples(s[bad])}", name, ts.rows_where(bad, index))  # fmt: skip
            cols[name] = np.where(missing, None, text.to_numpy(dtype=object))
        else:
            cols[name] = np.where(missing, None, s.astype(str).str.strip().to_numpy(dtype=object))
        if spec["required"] and missing.any():
            _problem(problems, f"missing value ({spec['description']})", name,
                     ts.rows_where(missing, index))  # fmt: skip
    n = len(raw)

    def get(name, default=None):
        return cols.get(name, np.full(n, default, dtype=object))

    stype = np.array([v or "exercise" for v in get("stage_type")], dtype=object)
    exercise = stype == "exercise"
    for name in EXERCISE_REQUIRED:
        vals = get(name)
        miss = exercise & np.array([v is None or (isinstance(v, float) and np.isnan(v))
                                    for v in vals])  # fmt: skip
        if miss.any():
            _problem(problems, f"an exercise stage needs {name} "
                     f"({PROTOCOL_SCHEMA[name]['description']})", name,
                     ts.rows_where(miss, index))  # fmt: skip
    start = np.asarray(get("start_s", np.nan), dtype=float)
    end = np.asarray(get("end_s", np.nan), dtype=float)
    smark, emark = get("start_marker"), get("end_marker")
    for name, t, mk in (("start", start, smark), ("end", end, emark)):
        has_m = np.array([m is not None for m in mk])
        both = np.isfinite(t) & has_m
        if both.any():
            _problem(problems, f"give {name}_s or {name}_marker, not both", f"{name}_s",
                     ts.rows_where(both, index))  # fmt: skip
        neither = ~np.isfinite(t) & ~has_m
        if f"{name}_s" in raw.columns:  # a cell that is text was reported above
            neither &= ~ts.parse_numeric(raw[f"{name}_s"])[2]
        if neither.any():
            _problem(problems, f"missing stage {name}: give {name}_s [s] or {name}_marker",
                     f"{name}_s", ts.rows_where(neither, index))  # fmt: skip
    back = np.isfinite(start) & np.isfinite(end) & (end <= start)
    if back.any():
        _problem(problems, "end_s is not after start_s; expected end_s > start_s [s]", "end_s",
                 ts.rows_where(back, index))  # fmt: skip
    fs = np.asarray(get("force_start_s", np.nan), dtype=float)
    fe = np.asarray(get("force_end_s", np.nan), dtype=float)
    half = np.isfinite(fs) ^ np.isfinite(fe)
    if half.any():
        _problem(problems, "give both force_start_s and force_end_s, or neither", "force_end_s",
                 ts.rows_where(half, index))  # fmt: skip
    fback = np.isfinite(fs) & np.isfinite(fe) & (fe <= fs)
    if fback.any():
        _problem(problems, "force_end_s is not after force_start_s", "force_end_s",
                 ts.rows_where(fback, index))  # fmt: skip
    cart = get("cart_file")
    force = get("force_file")
    none = np.array([c is None and f is None for c, f in zip(cart, force, strict=True)])
    if none.any():
        _problem(problems, "the row names no raw file; give cart_file and/or force_file",
                 "cart_file", ts.rows_where(none, index))  # fmt: skip
    for name, files in (("cart_file", cart), ("force_file", force)):
        for i, f in enumerate(files):
            if f is None:
                continue
            p = folder / f
            if Path(f).is_absolute() or ".." in Path(f).parts:
                _problem(problems, f"{f!r}: give a path inside the lab folder", name, (index[i],))
            elif not p.is_file():
                _problem(problems, f"file {f!r} does not exist in {folder}", name, (index[i],))
    pid, stage = get("participant_id"), get("stage")
    session = np.asarray(get("session", np.nan), dtype=float)
    sess = np.where(np.isfinite(session), session, 1.0)
    key = pd.DataFrame({"p": pid, "s": stage, "k": sess})
    dup = key.duplicated(keep=False).to_numpy() & key.notna().all(axis=1).to_numpy()
    if dup.any():
        _problem(problems, "stage name repeats for this participant and session; each stage "
                 "needs its own name", "stage", ts.rows_where(dup, index))  # fmt: skip
    rest = stype == "rest"
    for p in pd.unique(pid[rest]):
        r = rest & (pid == p)
        for k in np.unique(sess[r]):
            both = r & (sess == k)
            if both.sum() > 1:
                _problem(problems, f"participant {p!r} has {both.sum()} rest stages in session "
                         f"{k:g}; give at most one", "stage_type",
                         ts.rows_where(both, index))  # fmt: skip
    # overlapping windows on one cart file
    ok = np.isfinite(start) & np.isfinite(end) & ~back
    frame = pd.DataFrame({"f": cart, "a": start, "b": end, "row": index, "st": stage})
    frame = frame[ok & np.array([c is not None for c in cart])]
    for _, g in frame.sort_values(["f", "a"]).groupby("f", sort=False):
        a, b, r, st = g["a"].to_numpy(), g["b"].to_numpy(), g["row"].to_numpy(), g["st"].to_numpy()
        for j in range(1, len(g)):
            if a[j] < b[j - 1]:
                _problem(problems, f"stage {st[j]!r} ({a[j]:g}-{b[j]:g} s) overlaps stage "
                         f"{st[j - 1]!r} ({a[j - 1]:g}-{b[j - 1]:g} s) on the same cart file; "
                         "expected stages that do not overlap", "start_s",
                         (int(r[j - 1]), int(r[j])))  # fmt: skip
    if problems:
        ts.raise_problems(problems, src, "the protocol sheet")
    grade = np.asarray(get("grade_pct", np.nan), dtype=float)
    stages = []
    for i in range(n):
        extra = {}
        for name in ("sex", "age_y", "habituation_sessions", "synthetic"):
            if name in cols:
                v = cols[name][i]
                if v is not None and not (isinstance(v, float) and np.isnan(v)):
                    extra[name] = v
        rate = get("force_rate_hz", np.nan)[i]
        trial = get("trial", np.nan)[i]
        stages.append(Stage(
            row=int(index[i]),
            participant_id=str(pid[i]),
            stage=str(stage[i]),
            stage_type=str(stype[i]),
            mass_kg=float(cols["mass_kg"][i]),
            direction=get("direction")[i],
            mode=get("mode")[i],
            speed_m_s=float(get("speed_m_s", np.nan)[i]) if exercise[i] else float("nan"),
            grade_pct=float(grade[i]) if np.isfinite(grade[i]) else 0.0,
            session=int(sess[i]),
            trial=None if not np.isfinite(float(trial)) else int(trial),
            start_s=float(start[i]),
            end_s=float(end[i]),
            cart_file=folder / cart[i] if cart[i] is not None else None,
            cart_format=get("cart_format")[i] or "auto",
            force_file=folder / force[i] if force[i] is not None else None,
            force_format=get("force_format")[i] or "auto",
            force_rate_hz=None if not np.isfinite(float(rate)) else float(rate),
            force_start_s=None if not np.isfinite(fs[i]) else float(fs[i]),
            force_end_s=None if not np.isfinite(fe[i]) else float(fe[i]),
            extra=extra,
            start_marker=smark[i],
            end_marker=emark[i],
        ))  # fmt: skip
    return stages
