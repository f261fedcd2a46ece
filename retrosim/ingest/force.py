"""Vertical ground reaction force: readers, checks, filtering, foot contacts, measures.

Readers
-------
* ``csv`` - plain CSV with the vertical force in newtons: one ``fz_n`` column, or several
  ``fz..._n`` columns (``fz1_n``, ``fz_left_n``, ...) that are summed (split-belt treadmill,
  several plates); ``fz_kn`` columns are converted. An optional ``time_s`` column gives the
  sample times; without it the sampling rate must be given (``force_rate_hz`` in the
  protocol): a missing rate is an error, never a guess.
* ``c3d`` - through ezc3d [1]_: the force platforms' calibrated forces
  (``extract_forceplat_data=True``) in the unit the file states (N; kN converted), the
  vertical components summed over platforms, at the analog rate.

Checks (each an :class:`~retrosim.errors.InputError`): a flat channel (no variation); a
saturated channel (the maximum repeats over more than :data:`SATURATION_RUN` consecutive
samples, the flat top of a clipped amplifier); a zero offset: the median force during
flight phases departs from zero by more than :data:`OFFSET_TOL_BW` body weights (re-zero
the plate). Smaller offsets and slow drift are removed by subtracting a baseline
interpolated through the flight phases.

Processing (all stated choices of this package, not published constants)
------------------------------------------------------------------------
* Low-pass filter: Butterworth, 4th order, run forward and backward (zero lag), cut-off
  :data:`CUTOFF_HZ` (60 Hz by default).
* Contacts: the filtered force above a threshold (:data:`THRESHOLD_N` = 30 N by default, or
  a fraction of body weight, ``threshold_bw``) for at least :data:`MIN_CONTACT_S`. Each
  boundary is then found on the unfiltered force (baseline removed), because the filter
  rounds a sharp touchdown and moves its crossing earlier: the threshold crossing
  (linearly interpolated between samples) extrapolated linearly to zero force along the
  line through the threshold and twice-threshold crossings, so that the contact time does
  not shrink with the threshold.
* Per contact: contact time; flight time to the next contact; step time (onset to next
  onset); peak vertical force; the impact peak, the first local maximum before 40 % of
  stance that is followed, before the (higher) active peak, by a dip of at least
  :data:`IMPACT_PROMINENCE_BW` body weights (none otherwise: forefoot landings, typical of
  backward running, often have no impact peak, and none is invented); the average vertical loading rate, 60 % of
  the reference force over the time from its 20 % to its 80 % crossing, and the
  instantaneous loading rate, the largest sample-to-sample slope in that interval, the
  reference force being the impact peak where one exists and otherwise the peak force; and
  the vertical impulse (integral of the force over the contact).
* Per stage: means over the contacts wholly inside the stage; step frequency = 1 / mean
  step time; impulse per km = impulse per step x steps per km (1000 x step frequency /
  speed).

References
----------
.. [1] B. Michaud, M. Begon, "ezc3d: An easy C3D file I/O cross-platform solution for C++,
   Python and MATLAB", Journal of Open Source Software 6(58), 2911, 2021.
   doi:10.21105/joss.02911
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.errors import InputError
from retrosim.units import G

__all__ = [
    "ForceData",
    "contacts",
    "lowpass",
    "read_force",
    "stage_measures",
    "step_measures",
]

#: Default low-pass cut-off [Hz] and filter order (applied forward and backward).
CUTOFF_HZ = 60.0
FILTER_ORDER = 4
#: Default contact threshold [N].
THRESHOLD_N = 30.0
#: Shortest contact kept [s] (shorter ones are noise spikes).
MIN_CONTACT_S = 0.05
#: Largest zero offset accepted during flight [body weights] before it is an error.
OFFSET_TOL_BW = 0.05
#: A run of more than this many samples at the maximum is taken as saturation.
SATURATION_RUN = 5
#: Smallest dip after an impact peak, before the active peak [body weights].
IMPACT_PROMINENCE_BW = 0.05
#: Impact peaks must come before this fraction of stance.
IMPACT_MAX_STANCE = 0.4


@dataclass
class ForceData:
    """Vertical force in newtons, uniformly sampled.

    Attributes
    ----------
    fz_n : ndarray
        Vertical ground reaction force [N] (summed over channels/platforms).
    rate_hz : float
        Sampling rate [Hz].
    t0_s : float
        Time of the first sample on the file's clock [s].
    source : str
    kind : str
        ``csv`` or ``c3d``.
    channels : list of str
        What was summed.
    notes : list of str
        What the reader did (sign flip, unit conversion).
    """

    fz_n: np.ndarray
    rate_hz: float
    t0_s: float = 0.0
    source: str = ""
    kind: str = "csv"
    channels: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def time_s(self) -> np.ndarray:
        return self.t0_s + np.arange(self.fz_n.size) / self.rate_hz

    def window(self, start_s=None, end_s=None) -> ForceData:
        """The part between two times on the file's clock [s]."""
        t = self.time_s
        lo = 0 if start_s is None else int(np.searchsorted(t, start_s))
        hi = t.size if end_s is None else int(np.searchsorted(t, end_s, side="right"))
        return ForceData(self.fz_n[lo:hi], self.rate_hz, float(t[lo]) if hi > lo else 0.0,
                         self.source, self.kind, self.channels, self.notes)  # fmt: skip


# ------------------------------------------------------------------------------ readers


def _read_csv(path, rate_hz):
    src = str(path)
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except Exception as exc:
        raise InputError(f"could not be read as CSV ({exc})", file=src) from None
    df.columns = [str(c).strip() for c in df.columns]
    fz = [c for c in df.columns if c.lower().startswith("fz") and c.lower().endswith(("_n", "_kn"))]
    if not fz:
        raise InputError(
            "no vertical force column; expected 'fz_n' [N] (or several 'fz..._n' columns to "
            f"sum); the file has {', '.join(df.columns[:12])}", file=src,
        )  # fmt: skip
    total = np.zeros(len(df))
    for c in fz:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{df[c].iloc[i]!r} is not a number; expected newtons",
                             file=src, row=i + 1, column=c)  # fmt: skip
        total += v * (1000.0 if c.lower().endswith("_kn") else 1.0)
    if len(df) < 10:
        raise InputError(f"only {len(df)} samples; expected a force recording", file=src)
    t0 = 0.0
    if "time_s" in df.columns:
        t = pd.to_numeric(df["time_s"], errors="coerce").to_numpy(float)
        d = np.diff(t)
        if not np.isfinite(t).all() or (d <= 0).any():
            i = int(np.argmax(~np.isfinite(t))) if not np.isfinite(t).all() else int(
                np.argmax(d <= 0)) + 1  # fmt: skip
            raise InputError("time_s is not strictly increasing; expected sample times [s]",
                             file=src, row=i + 1, column="time_s")  # fmt: skip
        rate = 1.0 / float(np.median(d))
        if np.max(np.abs(d - 1.0 / rate)) > 0.01 / rate:
            raise InputError("time_s is not uniformly sampled (gaps or jitter above 1 % of the "
                             "sample interval); expected a constant sampling rate", file=src,
                             column="time_s")  # fmt: skip
        if rate_hz is not None and abs(rate - rate_hz) > 0.001 * rate_hz:
            raise InputError(f"time_s implies {rate:.6g} Hz but the protocol says "
                             f"force_rate_hz = {rate_hz:g} Hz", file=src,
                             column="time_s")  # fmt: skip
        t0 = float(t[0])
    elif rate_hz is None:
        raise InputError(
            "missing sampling rate: the force file has no time_s column and the protocol "
            "gives no force_rate_hz; expected the rate in Hz (never guessed)", file=src,
        )  # fmt: skip
    else:
        rate = float(rate_hz)
    return ForceData(total, rate, t0, src, "csv", fz, [])


def _read_c3d(path):
    src = str(path)
    try:
        import ezc3d
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError("reading C3D files needs ezc3d (pip install ezc3d)", file=src) from exc
    try:
        c = ezc3d.c3d(str(path), extract_forceplat_data=True)
    except Exception as exc:
        raise InputError(f"could not be read as C3D ({type(exc).__name__}: {exc})",
                         file=src) from None  # fmt: skip
    platforms = c["data"]["platform"]
    if not platforms:
        raise InputError("the C3D file has no force platform (FORCE_PLATFORM:USED = 0); "
                         "expected force-platform channels", file=src)  # fmt: skip
    rate = float(np.asarray(c["parameters"]["ANALOG"]["RATE"]["value"]).ravel()[0])
    total = None
    notes, chans = [], []
    for i, pf in enumerate(platforms):
        unit = str(pf.get("unit_force", "")).strip()
        scale = {"N": 1.0, "kN": 1000.0}.get(unit)
        if scale is None:
            raise InputError(f"force platform {i + 1} gives forces in {unit!r}; expected N or kN",
                             file=src)  # fmt: skip
        fz = np.asarray(pf["force"], float)[2] * scale
        total = fz if total is None else total + fz
        chans.append(f"platform {i + 1} Fz [{unit}]")
    if abs(np.min(total)) > abs(np.max(total)):
        # some systems store the force on the plate (downwards) rather than the reaction
        total = -total
        notes.append("vertical force sign flipped (the file stores it negative)")
    first = c["header"]["points"]["first_frame"]
    prate = float(c["header"]["points"]["frame_rate"] or 0.0)
    t0 = first / prate if prate > 0 else 0.0
    return ForceData(total, rate, t0, src, "c3d", chans, notes)


def read_force(path, fmt="auto", *, rate_hz=None) -> ForceData:
    """Read a vertical force recording (CSV or C3D) into :class:`ForceData` [N].

    Parameters
    ----------
    path : str or path-like
    fmt : {"auto", "csv", "c3d"}
    rate_hz : float, optional
        Sampling rate [Hz]; required for a CSV file without ``time_s``.
    """
    path = Path(path)
    if fmt == "auto":
        low = path.name.lower()
        fmt = (
            "c3d"
            if low.endswith(".c3d")
            else "csv"
            if low.endswith((".csv", ".csv.gz", ".txt"))
            else None
        )
        if fmt is None:
            raise InputError(f"unknown force file type {path.suffix!r}; expected .csv (fz_n "
                             "columns) or .c3d", file=str(path))  # fmt: skip
    if fmt == "csv":
        return _read_csv(path, rate_hz)
    if fmt == "c3d":
        return _read_c3d(path)
    raise InputError(f"unknown force format {fmt!r}; expected auto, csv or c3d", file=str(path))


# --------------------------------------------------------------------------- processing


@functools.lru_cache(maxsize=32)
def _butter(order, cutoff_hz, rate_hz):
    from scipy import signal

    return signal.butter(order, cutoff_hz, fs=rate_hz, output="sos")


def lowpass(x, rate_hz, cutoff_hz=CUTOFF_HZ, order=FILTER_ORDER):
    """Zero-lag Butterworth low-pass (forward-backward second-order sections)."""
    from scipy import signal

    if not 0 < cutoff_hz < rate_hz / 2:
        raise InputError(f"cut-off {cutoff_hz:g} Hz must lie below half the sampling rate "
                         f"({rate_hz / 2:g} Hz)", argument="cutoff_hz")  # fmt: skip
    sos = _butter(int(order), float(cutoff_hz), float(rate_hz))
    return signal.sosfiltfilt(sos, np.asarray(x, float))


def _crossings(above):
    """Start and end indices (end exclusive) of runs of True."""
    a = np.concatenate(([False], above, [False]))
    d = np.diff(a.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def check_channel(force: ForceData, mass_kg, *, label="stage", threshold_n=THRESHOLD_N):
    """Raise for a flat, saturated or offset channel; return the baseline offset [N]."""
    x = force.fz_n
    src = force.source
    if x.size < 10 or np.ptp(x) < 1e-6:
        raise InputError(f"{label}: the vertical force is flat ({x[:1].tolist()} N throughout); "
                         "expected a live force channel", file=src)  # fmt: skip
    top = np.max(x)
    at_top = np.isclose(x, top, rtol=0, atol=1e-9 * max(1.0, abs(top)))
    s, e = _crossings(at_top)
    longest = int((e - s).max()) if s.size else 0
    if longest > SATURATION_RUN and top > 2 * threshold_n:
        i = int(s[np.argmax(e - s)])
        raise InputError(
            f"{label}: the force channel looks saturated: {longest} consecutive samples at its "
            f"maximum {top:.6g} N from sample {i} ({force.t0_s + i / force.rate_hz:.3f} s); "
            "expected no clipping (lower the amplifier gain)", file=src,
        )  # fmt: skip
    low = x < threshold_n
    bw = mass_kg * G
    med = float(np.median(x[low])) if low.any() else float("nan")
    if not low.any() or abs(med) > OFFSET_TOL_BW * bw:
        shown = "never falls below the threshold" if not low.any() else f"is {med:.1f} N"
        raise InputError(
            f"{label}: the force during flight phases {shown}; expected about 0 N (within "
            f"{OFFSET_TOL_BW:g} body weights = {OFFSET_TOL_BW * bw:.0f} N): a zero offset, "
            "re-zero the plate before recording (or the stage is walking, with no flight)",
            file=src,
        )  # fmt: skip
    return med


def _baseline(x, threshold_n, rate_hz):
    """Baseline through the flight phases (median of each), interpolated over time."""
    low = x < threshold_n
    s, e = _crossings(low)
    keep = (e - s) >= max(3, int(0.02 * rate_hz))
    s, e = s[keep], e[keep]
    if s.size == 0:
        return np.zeros_like(x)
    centres = (s + e - 1) / 2.0
    levels = np.array([np.median(x[a:b]) for a, b in zip(s, e, strict=True)])
    return np.interp(np.arange(x.size), centres, levels)


def _interp_cross(x, i, level):
    """Fractional index where x crosses ``level`` between samples i-1 and i."""
    a, b = x[i - 1], x[i]
    return (i - 1) + (level - a) / (b - a) if b != a else float(i)


def _edge(x, k, step, level):
    """Fractional index where ``x`` first reaches ``level`` walking from ``k`` by ``step``."""
    n = x.size
    while 0 <= k < n and x[k] < level:
        k += step
    if not 0 <= k - step < n or not 0 <= k < n:
        return float("nan")
    a, b = x[k - step], x[k]
    frac = (level - a) / (b - a) if b != a else 0.0
    return (k - step) + step * frac


def contacts(fz_n, rate_hz, *, threshold_n=THRESHOLD_N, min_contact_s=MIN_CONTACT_S,
             raw_n=None):  # fmt: skip
    """Foot contacts in a filtered, baseline-corrected vertical force.

    Parameters
    ----------
    fz_n : array_like
        Filtered, baseline-corrected vertical force [N] (finds the contacts).
    raw_n : array_like, optional
        The same force unfiltered (baseline-corrected): boundaries are refined on it, as a
        low-pass filter rounds a sharp touchdown and moves its threshold crossing earlier.

    Returns
    -------
    (onset_s, offset_s, i0, i1)
        Contact boundaries extrapolated to zero force [s from the first sample], and the
        sample index range of each contact (above threshold, end exclusive).
    """
    x = np.asarray(fz_n, float)
    r = x if raw_n is None else np.asarray(raw_n, float)
    s, e = _crossings(x >= threshold_n)
    # contacts cut by the ends of the record are not whole
    keep = (s > 0) & (e < x.size) & ((e - s) / rate_hz >= min_contact_s)
    s, e = s[keep], e[keep]
    on, off = np.empty(s.size), np.empty(s.size)
    thr2 = 2.0 * threshold_n
    back = max(2, int(0.01 * rate_hz))  # start the search 10 ms before the filtered crossing
    for j, (a, b) in enumerate(zip(s, e, strict=True)):
        k0 = max(a - back, 1)
        c1, c2 = _edge(r, k0, 1, threshold_n), _edge(r, k0, 1, thr2)
        on[j] = c1 - (c2 - c1) if c2 > c1 else c1
        k1 = min(b - 1 + back, r.size - 2)
        d1, d2 = _edge(r, k1, -1, threshold_n), _edge(r, k1, -1, thr2)
        off[j] = d1 + (d1 - d2) if d1 > d2 else d1
    ok = np.isfinite(on) & np.isfinite(off) & (off > on)
    return on[ok] / rate_hz, off[ok] / rate_hz, s[ok], e[ok]


def _impact_peak(c, ipk, dip, onset_offset, max_samples):
    """First local maximum before the active peak and 40 % of stance followed by a dip.

    ``c`` is the contact's force (samples above threshold), ``ipk`` the index of its
    maximum, ``dip`` the smallest drop [N] to the following minimum (before ``ipk``).
    """
    d = np.diff(c[: ipk + 1])
    loc = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0)) + 1
    for k in loc:
        if k + onset_offset > max_samples:
            break
        if c[k] - c[k : ipk + 1].min() >= dip:
            return float(c[k])
    return float("nan")


def step_measures(force: ForceData, mass_kg, *, cutoff_hz=CUTOFF_HZ, threshold_n=None,
                  threshold_bw=None, label="stage") -> pd.DataFrame:  # fmt: skip
    """Per-contact measures of one stage's force (see the module docstring).

    Parameters
    ----------
    force : ForceData
        The stage's stretch of the recording.
    mass_kg : float
        Body mass [kg] (body weight = m g).
    cutoff_hz : float
        Low-pass cut-off [Hz].
    threshold_n, threshold_bw : float, optional
        Contact threshold in newtons or in body weights (one of them; default 30 N).

    Returns
    -------
    pandas.DataFrame
        One row per whole contact: ``onset_s``, ``offset_s`` (file clock), ``contact_time_s``,
        ``flight_time_s``, ``step_time_s`` (NaN for the last), ``peak_n``, ``impact_peak_n``
        (NaN when there is none), ``loading_rate_avg_n_s``, ``loading_rate_inst_n_s``,
        ``impulse_n_s``, and the same forces in body weights (``_bw``). ``attrs`` hold the
        threshold [N], the cut-off, the baseline offset and the filtered signal.
    """
    bw = float(mass_kg) * G
    if threshold_n is not None and threshold_bw is not None:
        raise InputError("give the contact threshold in N or in BW, not both",
                         argument="threshold")  # fmt: skip
    thr = float(threshold_bw) * bw if threshold_bw is not None else (
        THRESHOLD_N if threshold_n is None else float(threshold_n))  # fmt: skip
    if not thr > 0:
        raise InputError(f"contact threshold must be positive, got {thr:g} N",
                         argument="threshold")  # fmt: skip
    rate = force.rate_hz
    offset = check_channel(force, mass_kg, label=label, threshold_n=thr)
    y = lowpass(force.fz_n, rate, cutoff_hz)
    base = _baseline(y, thr, rate)
    y = y - base
    on, off, i0, i1 = contacts(y, rate, threshold_n=thr, raw_n=force.fz_n - base)
    if on.size < 2:
        raise InputError(
            f"{label}: {on.size} whole foot contact(s) found with a {thr:.0f} N threshold; "
            "expected a running recording with flight phases (two or more contacts)",
            file=force.source,
        )  # fmt: skip
    dt = 1.0 / rate
    rows = []
    for j in range(on.size):
        a, b = int(i0[j]), int(i1[j])
        # whole contact: from the last sample at or below 0 before onset to the first after
        lo = max(int(np.floor(on[j] * rate)), 0)
        hi = min(int(np.ceil(off[j] * rate)) + 1, y.size)
        seg = np.clip(y[lo:hi], 0.0, None)
        impulse = float(np.sum((seg[1:] + seg[:-1]) * 0.5) * dt)
        c = y[a:b]
        ipk = int(np.argmax(c))
        peak = float(c[ipk])
        tc = off[j] - on[j]
        impact = _impact_peak(c, ipk, IMPACT_PROMINENCE_BW * bw, (on[j] * rate) - a,
                              IMPACT_MAX_STANCE * tc * rate)  # fmt: skip
        ref = impact if np.isfinite(impact) else peak
        r20 = np.flatnonzero(c >= 0.2 * ref)
        r80 = np.flatnonzero(c >= 0.8 * ref)
        if r20.size and r80.size and r20[0] > 0 and r80[0] > 0:
            k20, k80 = a + r20[0], a + r80[0]
            t20 = _interp_cross(y, k20, 0.2 * ref) * dt
            t80 = _interp_cross(y, k80, 0.8 * ref) * dt
            avlr = 0.6 * ref / (t80 - t20) if t80 > t20 else np.nan
            grad = np.diff(y[k20 - 1 : k80 + 1]) * rate
            ilr = float(grad.max()) if grad.size else np.nan
        else:
            avlr = ilr = np.nan
        rows.append({
            "onset_s": force.t0_s + on[j],
            "offset_s": force.t0_s + off[j],
            "contact_time_s": tc,
            "peak_n": peak,
            "impact_peak_n": impact,
            "loading_rate_avg_n_s": avlr,
            "loading_rate_inst_n_s": ilr,
            "impulse_n_s": impulse,
        })  # fmt: skip
    df = pd.DataFrame(rows)
    nxt = df["onset_s"].shift(-1)
    df["flight_time_s"] = nxt - df["offset_s"]
    df["step_time_s"] = nxt - df["onset_s"]
    for c in ("peak", "impact_peak", "loading_rate_avg", "loading_rate_inst", "impulse"):
        unit = "n_s" if c == "impulse" else "n_s" if c.startswith("loading") else "n"
        df[f"{c}_{'bw_s' if unit == 'n_s' else 'bw'}"] = df[f"{c}_{unit}"] / bw
    df.attrs.update(threshold_n=thr, cutoff_hz=cutoff_hz, offset_n=offset, filtered_n=y,
                    rate_hz=rate, t0_s=force.t0_s)  # fmt: skip
    return df


def stage_measures(steps: pd.DataFrame, speed_m_s) -> dict:
    """Stage means of :func:`step_measures` in trial-table units.

    Returns
    -------
    dict
        ``contact_time_s``, ``flight_time_s``, ``step_frequency_hz``, ``grf_bw`` (peak
        vertical force), ``impact_peak_bw`` (NaN when fewer than half the contacts have
        one), ``loading_rate_avg_bw_s``, ``loading_rate_inst_bw_s``, ``impulse_bw_s_step``,
        ``impulse_bw_s_km``, ``n_contacts``, ``n_impact_peaks``.
    """
    step_t = steps["step_time_s"].dropna()
    freq = 1.0 / float(step_t.mean()) if len(step_t) else np.nan
    n_imp = int(steps["impact_peak_bw"].notna().sum())
    has_impact = n_imp >= 0.5 * len(steps)
    flight = steps["flight_time_s"].dropna()
    impulse = float(steps["impulse_bw_s"].mean())
    return {
        "contact_time_s": float(steps["contact_time_s"].mean()),
        "flight_time_s": float(flight.mean()) if len(flight) else np.nan,
        "step_frequency_hz": freq,
        "grf_bw": float(steps["peak_bw"].mean()),
        "impact_peak_bw": float(steps["impact_peak_bw"].mean()) if has_impact else np.nan,
        "loading_rate_avg_bw_s": float(steps["loading_rate_avg_bw_s"].mean()),
        "loading_rate_inst_bw_s": float(steps["loading_rate_inst_bw_s"].mean()),
        "impulse_bw_s_step": impulse,
        "impulse_bw_s_km": impulse * 1000.0 * freq / float(speed_m_s),
        "n_contacts": len(steps),
        "n_impact_peaks": n_imp,
    }
