"""A lab folder in, a trial table, a QC report and figures out (atomically).

:func:`process_folder` reads and checks everything and computes every stage without
writing anything; :func:`write_results` then writes the output folder in one move (built
beside it and renamed into place), so bad input leaves no output at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim._version import __version__
from retrosim.errors import InputError
from retrosim.ingest import cart as _cart
from retrosim.ingest import force as _force
from retrosim.ingest import report as _report
from retrosim.ingest import table as _table
from retrosim.ingest.protocol import PROTOCOL_NAME, Stage, read_protocol

__all__ = [
    "IngestOptions",
    "IngestResult",
    "check_output_folder",
    "ingest_folder",
    "process_folder",
    "write_results",
]

#: Marker file of an ingest output folder (an existing one may be replaced).
MARKER = "ingest.json"


@dataclass
class IngestOptions:
    """Processing settings (defaults in :mod:`retrosim.ingest.cart` and ``.force``).

    Attributes
    ----------
    window_s : float
        Steady-state window at the end of each stage [s].
    max_drift : float
        Largest VO2 drift over the window (fraction) before a stage is flagged.
    outlier_window : int
        Breaths in the rolling median of the outlier rule.
    outlier_k : float
        Outlier threshold [robust SDs].
    equation : str
        Energy equation, a key of :data:`retrosim.ingest.cart.ENERGY_EQUATIONS`.
    cutoff_hz : float
        Force low-pass cut-off [Hz].
    threshold_n, threshold_bw : float or None
        Contact threshold [N] or [body weights] (default 30 N).
    figures : bool
        Draw the QC figures.
    """

    window_s: float = _cart.WINDOW_S
    max_drift: float = _cart.MAX_DRIFT
    outlier_window: int = _cart.OUTLIER_WINDOW
    outlier_k: float = _cart.OUTLIER_K
    equation: str = _cart.DEFAULT_EQUATION
    cutoff_hz: float = _force.CUTOFF_HZ
    threshold_n: float | None = None
    threshold_bw: float | None = None
    figures: bool = True

    def check(self):
        if not self.window_s > 0:
            raise InputError(f"expected a positive window, got {self.window_s:g} s",
                             argument="window_s")  # fmt: skip
        if self.equation not in _cart.ENERGY_EQUATIONS:
            raise InputError(
                f"unknown energy equation {self.equation!r}; expected one of "
                f"{', '.join(_cart.ENERGY_EQUATIONS)}",
                argument="equation",
            )
        if not self.outlier_k > 0 or int(self.outlier_window) < 3:
            raise InputError("outlier rule needs k > 0 and a window of at least 3 breaths",
                             argument="outlier_k")  # fmt: skip
        if self.threshold_n is not None and self.threshold_bw is not None:
            raise InputError("give the contact threshold in N or in BW, not both",
                             argument="threshold")  # fmt: skip


@dataclass
class IngestResult:
    """Everything an ingest computed (nothing written yet).

    Attributes
    ----------
    trials : pandas.DataFrame
        The trial table (``retrosim fit`` format).
    stages : pandas.DataFrame
        One row per protocol stage with every intermediate value and flag.
    steps : dict
        Per-contact tables, keyed by (participant_id, stage).
    warnings : list of str
        Design warnings for ``retrosim fit``.
    """

    trials: pd.DataFrame
    stages: pd.DataFrame
    steps: dict
    warnings: list
    options: IngestOptions
    folder: Path
    inputs: list = field(default_factory=list)
    carts: dict = field(default_factory=dict)


def _with_stage(exc: InputError, stage: Stage, what: str) -> InputError:
    """The same error, saying which stage used the file."""
    new = InputError(f"{exc.message} ({what} of {stage.label})", file=exc.file, row=exc.row,
                     column=exc.column, argument=exc.argument)  # fmt: skip
    new.problems = getattr(exc, "problems", [])
    return new


def _window(c, st: Stage):
    """Stage limits [s], from the protocol times or the cart file's markers."""
    out = []
    for name, t, mk in (("start", st.start_s, st.start_marker), ("end", st.end_s, st.end_marker)):
        if mk is None:
            out.append(t)
            continue
        if c.markers is None:
            raise InputError(f"{st.label} names {name}_marker {mk!r} but the cart file has no "
                             "marker column; expected a 'marker' column (plain CSV) or a "
                             "COSMED 'Marker' column, or give the time in "
                             f"{name}_s", file=c.source)  # fmt: skip
        tm = c.marker_time(mk)
        if tm is None:
            found = sorted({m for m in c.markers if m})[:8]
            raise InputError(f"{st.label}: marker {mk!r} is not in the cart file; its markers "
                             f"are {', '.join(map(repr, found)) or 'none'}",
                             file=c.source)  # fmt: skip
        out.append(tm)
    if not out[1] > out[0]:
        raise InputError(f"{st.label}: the stage ends ({out[1]:g} s) before it starts "
                         f"({out[0]:g} s); expected the end after the start",
                         file=c.source)  # fmt: skip
    return out[0], out[1]


def process_folder(folder, *, protocol=None, options=None) -> IngestResult:
    """Read a lab folder and compute every stage; write nothing.

    Parameters
    ----------
    folder : path-like
        The lab folder (holding ``protocol.csv`` unless ``protocol`` names another sheet).
    protocol : path-like, optional
        The protocol sheet (default ``<folder>/protocol.csv``).
    options : IngestOptions, optional

    Raises
    ------
    InputError
        Any problem of the protocol, the raw files or the computed values, naming the file,
        the row or stage, and what was expected.
    """
    opts = options or IngestOptions()
    opts.check()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder; expected a lab folder with protocol.csv and the raw "
                         "files", file=str(folder))  # fmt: skip
    sheet = Path(protocol) if protocol is not None else folder / PROTOCOL_NAME
    if not sheet.is_file():
        raise InputError(f"no protocol sheet {sheet.name!r} in the folder; expected one row "
                         "per stage (retrosim ingest --schema)", file=str(sheet))  # fmt: skip
    stages = read_protocol(sheet, folder=folder)
    carts: dict = {}
    rows, steps, inputs = [], {}, {sheet}
    for st in stages:
        rec = {"label": st.label, "participant_id": st.participant_id, "stage": st.stage,
               "stage_type": st.stage_type, "direction": st.direction, "mode": st.mode,
               "speed_m_s": st.speed_m_s, "grade_pct": st.grade_pct, "session": st.session,
               "trial": st.trial, "mass_kg": st.mass_kg, "start_s": st.start_s,
               "end_s": st.end_s,
               "cart_file": str(st.cart_file) if st.cart_file is not None else None,
               "force_file": str(st.force_file) if st.force_file is not None else None,
               **st.extra}  # fmt: skip
        flags = []
        if st.cart_file is not None:
            inputs.add(st.cart_file)
            key = (st.cart_file, st.cart_format)
            if key not in carts:
                try:
                    c = _cart.read_cart(st.cart_file, st.cart_format, mass_kg=st.mass_kg)
                except InputError as exc:
                    raise _with_stage(exc, st, "cart file") from None
                out = _cart.flag_outliers(c.vo2_ml_min, window=opts.outlier_window,
                                          k=opts.outlier_k)  # fmt: skip
                carts[key] = (c, out)
            c, out = carts[key]
            start, end = _window(c, st)
            rec["start_s"], rec["end_s"] = start, end
            ss = _cart.steady_state(c, start, end, window_s=opts.window_s,
                                    max_drift=opts.max_drift, outliers=out,
                                    label=st.label)  # fmt: skip
            power, valid = _cart.energy_w(ss["vo2_ml_min"], ss["vco2_ml_min"], opts.equation)
            rec.update(ss)
            rec["energy_w"] = float(power)
            rec["rer_valid"] = bool(valid)
            if not ss["steady"]:
                flags.append(f"not in steady state: VO2 drifts {100 * ss['drift']:+.1f} % over "
                             f"the {opts.window_s:g} s window (limit "
                             f"{100 * opts.max_drift:g} %)")  # fmt: skip
            if not valid:
                lo, hi = _cart.ENERGY_EQUATIONS[opts.equation][2]
                flags.append(f"RER {ss['rer']:.3f} outside {lo:g}-{hi:g}: the energy "
                             "conversion assumes oxidative metabolism, so the energy is left "
                             "out of trials.csv")  # fmt: skip
            if c.mass_kg is not None and abs(c.mass_kg - st.mass_kg) > 0.05 * st.mass_kg:
                flags.append(
                    f"the cart export stores a body mass of {c.mass_kg:g} kg, the "
                    f"protocol {st.mass_kg:g} kg (the protocol's is used)"
                )
        if st.force_file is not None:
            inputs.add(st.force_file)
            if st.stage_type == "rest":
                raise InputError(f"{st.label} is a rest stage with a force file; expected "
                                 "force files on running stages only", file=str(sheet),
                                 row=st.row, column="force_file")  # fmt: skip
            if st.mode == "walk":
                raise InputError(f"{st.label}: walking has no flight phase, so contacts "
                                 "cannot be separated in a summed vertical force; give force "
                                 "files for running stages only", file=str(sheet),
                                 row=st.row, column="force_file")  # fmt: skip
            try:
                fd = _force.read_force(st.force_file, st.force_format, rate_hz=st.force_rate_hz)
            except InputError as exc:
                raise _with_stage(exc, st, "force file") from None
            if st.force_start_s is not None:
                t = fd.time_s
                if st.force_end_s > t[-1] + 1.0 / fd.rate_hz or st.force_start_s < t[0]:
                    raise InputError(
                        f"{st.label}: force window {st.force_start_s:g}-{st.force_end_s:g} s "
                        f"lies outside the recording ({t[0]:g}-{t[-1]:g} s)",
                        file=str(st.force_file),
                    )  # fmt: skip
                fd = fd.window(st.force_start_s, st.force_end_s)
            sm = _force.step_measures(fd, st.mass_kg, cutoff_hz=opts.cutoff_hz,
                                      threshold_n=opts.threshold_n,
                                      threshold_bw=opts.threshold_bw,
                                      label=st.label)  # fmt: skip
            steps[(st.participant_id, st.stage)] = sm
            m = _force.stage_measures(sm, st.speed_m_s)
            rec.update(m)
            rec["threshold_n"] = sm.attrs["threshold_n"]
            rec["force_offset_n"] = sm.attrs["offset_n"]
            rec["force_notes"] = "; ".join(fd.notes)
            if np.isnan(m["impact_peak_bw"]):
                flags.append(f"no impact peak in {m['n_contacts'] - m['n_impact_peaks']} of "
                             f"{m['n_contacts']} contacts (none reported, and the loading "
                             "rates use the peak force)")  # fmt: skip
        rec["flags"] = "; ".join(flags)
        rows.append(rec)
    df = pd.DataFrame(rows)
    for c in ("vo2_ml_min", "energy_w", "rer_valid"):
        if c not in df:
            df[c] = np.nan
    df["net_energy_w"] = _table.net_energy(df)
    trials = _table.to_trial_table(df)
    warnings = _table.validate_for_fit(trials)
    return IngestResult(trials, df, steps, warnings, opts, folder, sorted(inputs), carts)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_output_folder(out: Path):
    """Refuse ``out`` unless it is new, empty, or an earlier ingest output (InputError)."""
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", argument="out")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError(
            f"{out} is a folder that holds other files; give a new or empty "
            "folder (an earlier ingest output is replaced)",
            argument="out",
        )


def write_results(result: IngestResult, out) -> list[Path]:
    """Write trials.csv, stages.csv, steps.csv, qc.md, figures/ and ingest.json atomically.

    The folder is built beside ``out`` and renamed into place; an earlier ingest output
    in ``out`` is replaced, any other non-empty folder is refused.
    """
    out = Path(out)
    check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        names = _write_into(result, tmp, out)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "x")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [out / n for n in names]


def _write_into(res: IngestResult, d: Path, out: Path) -> list[str]:
    opts = res.options
    names = ["trials.csv", "stages.csv"]
    res.trials.to_csv(d / "trials.csv", index=False, float_format="%.6g")
    res.stages.to_csv(d / "stages.csv", index=False, float_format="%.6g")
    if res.steps:
        frames = []
        for k, s in res.steps.items():
            f = s.assign(participant_id=k[0], stage=k[1])
            f.attrs = {}  # the filtered signal stays out of the table
            frames.append(f)
        allsteps = pd.concat(frames, ignore_index=True)
        cols = ["participant_id", "stage"] + [c for c in allsteps if c not in
                                              ("participant_id", "stage")]  # fmt: skip
        allsteps[cols].to_csv(d / "steps.csv", index=False, float_format="%.6g")
        names.append("steps.csv")
    figs = []
    if opts.figures:
        (d / "figures").mkdir()
        for (path, _fmt), (c, outl) in res.carts.items():
            mine = res.stages[res.stages["cart_file"] == str(path)]
            pid = ", ".join(sorted(set(mine["participant_id"])))
            name = f"figures/cart_{Path(path).name.split('.')[0]}.png"
            fig = _report.cart_figure(c, outl, mine, f"{Path(path).name} ({pid})")
            fig.savefig(d / name, dpi=110)
            figs.append(name)
        for (pid, stage), sm in res.steps.items():
            name = f"figures/force_{pid}_{stage}.png".replace(" ", "_")
            fig = _report.force_figure(sm, f"{pid} {stage}: vertical force, first 3 s")
            fig.savefig(d / name, dpi=110)
            figs.append(name)
        names += figs
    eq = _cart.ENERGY_EQUATIONS[opts.equation]
    settings = {
        "steady-state window": f"last {opts.window_s:g} s of each stage; flagged when VO2 "
        f"drifts more than {100 * opts.max_drift:g} % over it",
        "breath outliers": f"departure from the {opts.outlier_window}-breath rolling median "
        f"above {opts.outlier_k:g} robust SDs (relative), removed",
        "energy": f"{opts.equation}: {eq[0]:.4g} kJ/L O2 + {eq[1]:.4g} kJ/L CO2 ({eq[3]}); "
        f"valid for RER {eq[2][0]:g}-{eq[2][1]:g}",
        "force filter": f"Butterworth low-pass, order {_force.FILTER_ORDER}, forward-backward, "
        f"{opts.cutoff_hz:g} Hz",
        "contact threshold": (f"{opts.threshold_bw:g} body weights" if opts.threshold_bw
                              else f"{opts.threshold_n or _force.THRESHOLD_N:g} N"),
        "retrosim": __version__,
    }  # fmt: skip
    synthetic = "synthetic" in res.stages and (res.stages["synthetic"] == "true").any()
    qc = _report.qc_markdown(res.stages, settings, res.warnings, figs, bool(synthetic))
    (d / "qc.md").write_text(qc, encoding="utf-8")
    names.append("qc.md")
    meta = {
        "retrosim": __version__,
        "folder": str(res.folder),
        "options": asdict(opts),
        "inputs": {
            str(Path(p).relative_to(res.folder))
            if Path(p).is_relative_to(res.folder)
            else str(p): _sha256(p)
            for p in res.inputs
        },
        "n_stages": len(res.stages),
        "n_trials": len(res.trials),
        "warnings": res.warnings,
        "synthetic": bool(synthetic),
    }
    (d / MARKER).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    names.append(MARKER)
    return names


def ingest_folder(folder, out, *, protocol=None, options=None) -> IngestResult:
    """Process a lab folder and write the outputs (see :func:`process_folder`)."""
    check_output_folder(Path(out))
    res = process_folder(folder, protocol=protocol, options=options)
    write_results(res, out)
    return res
