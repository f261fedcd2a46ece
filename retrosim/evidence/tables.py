"""Published backward-vs-forward evidence: the validated dataset and its effect sizes.

The data live in ``retrosim/data/literature/`` as two tidy CSV tables (see ``retrosim/data/README.md``):

``studies.csv``
    one row per report: keys (``study_key``, ``group_key`` for non-independent reports),
    ``citation_key`` into ``retrosim/data/references.bib``, DOI/PMID (or ``id_note`` saying why
    neither exists), and the population.
``comparisons.csv``
    one row per study x condition x outcome: design, n, mode, surface, grade, speeds,
    outcome and unit, forward and backward means with their dispersion, or a reported
    percentage change, or (``result_only``) a direction/significance statement only.
    A condition run at one treadmill grade gives ``grade_pct``; a value averaged over several
    grades gives the range in ``grade_low_pct``/``grade_high_pct`` instead (optional columns:
    a file without them loads as if they were empty). A result-only row codes the source's
    significance explicitly in ``result_p_relation``, ``result_p_value`` and
    ``result_significant`` ("Significance coding" below); energy rows say in ``energy_basis``
    whether the source's cost is gross or net (optional columns too).

Further families live in their own files of the same folder: ``emg.csv`` (muscle activity per
muscle) and ``ankle.csv`` (plantar pressure, ankle share of joint power) have the columns of
``comparisons.csv`` (:func:`load_family`; an EMG row's ``unit`` is its source's normalisation,
one of :data:`EMG_UNITS`); ``training.csv`` (backward-training programmes, pre/post with
controls, :func:`load_training`) and ``habituation.csv`` (repeated sessions,
:func:`load_habituation`) have their own columns (``retrosim/data/README.md``).

:func:`load` validates both tables (columns, types, units per outcome, plausible ranges,
unique keys, every row sourced) and returns the merged comparisons table.
:func:`effect_sizes` turns every numeric comparison into the log response ratio
``yi = ln(backward/forward)`` with its sampling variance ``vi``; :func:`to_xarray` gives the
same as an :class:`xarray.Dataset`; :func:`direction_statements` returns the result-only rows
of independent reports (a duplicating report adds no vote; see its docstring).

Significance coding
-------------------
Every result-only row states, as read in its source:

``result_p_relation``
    ``<``, ``<=``, ``=`` or ``>`` before the reported p value, empty when no p is reported;
``result_p_value``
    that p value (a number in (0, 1)), empty exactly when the relation is;
``result_significant``
    ``true`` when the source calls the backward-forward difference statistically significant
    (also "significant, p not given"), ``false`` for "no difference" or n.s., empty when the
    source gives a direction only (a tendency, a background statement).

:func:`load` checks that the three agree (at the 5 % level, :data:`ALPHA`): ``no_difference``
is never significant; a direction with ``p <``/``<=`` at most 0.05, or ``p =`` at most 0.05, is
significant; ``p > 0.05`` or ``p =`` above 0.05 is not. The columns are empty on numeric rows.

Energy basis
------------
``energy_basis`` (energy-family rows only): ``gross`` (the cost as measured, e.g. VO2 in
mL/kg/min with no resting or standing value subtracted; the default reading of a VO2 unless the
source says net), ``net`` (resting or standing subtracted, as the source states) or
``not_stated`` (a metabolic rate or cost of transport whose basis the source does not give). A
ratio of gross costs is closer to 1 than the ratio of the same net costs, so the two are kept
apart. Empty for other families.

Derived rows
------------
:func:`effect_sizes` adds rows computed from another row, never typed into the data. The peak
vertical ground reaction force of a running step follows from the peak upward acceleration
``a`` of the centre of mass (Newton's second law on the body's mass ``m``, vertical axis):
``F_max = m (g + a)``, so in body weights

    F/(m g) = 1 + a/g,   g = 9.80665 m/s^2 (standard gravity, :data:`retrosim.units.G`; 9.81)

(:func:`peak_force_bw_from_accel`). A ``com_peak_upward_accel_m_s2`` row with means (Cavagna et
al. 2012: 13.2 forward, 15.7 backward, averaged over 3-17 km/h) gives a ``vgrf_peak_bw`` row
with ``effect_from = 'derived_from_accel'`` and ``derived_from`` naming the source row. Its
variance follows by the delta method from the source's: ``1 + a/g`` is linear in ``a``, so
the squared coefficient of variation of each mean scales by ``(a / (g + a))^2`` and the
forward-backward correlation is unchanged,

    v_F' = v_F (a_F / (g + a_F))^2,   v_B' = v_B (a_B / (g + a_B))^2,
    vi' = v_F' + v_B' - 2 r sqrt(v_F' v_B').

An imputed source variance stays flagged (``dispersion_imputed``); with ``impute=False`` the
source and the derived row are both dropped.

Grade class
-----------
Both views carry ``grade_class``, derived from the grade columns so that a reading of level
locomotion can leave out graded conditions: ``level`` (grade 0, or a range 0 to 0),
``uphill`` (a grade above 0, or a range from >= 0 to above 0: e.g. an average over
0 to +25 %, which includes level but is not a level value), ``downhill`` (the mirror image),
``mixed`` (a range from below to above 0) and ``not_stated`` (no grade reported; most
treadmill abstracts do not state one).

Effect size and variance
------------------------
For means ``m_F, m_B`` with standard deviations ``s_F, s_B`` on ``n`` subjects measured in
both directions (within-subject design) the delta-method variance of
``yi = ln(m_B / m_F)`` is [1]_ [2]_

    vi = v_F + v_B - 2 r sqrt(v_F v_B),   v_F = s_F^2 / (n m_F^2),   v_B = s_B^2 / (n m_B^2)

with ``r`` the forward-backward correlation across subjects. Independent groups use their
own ``n_F, n_B`` and no covariance term [1]_. Rows that report only a percentage change
``p`` with a standard error ``se_p`` (both in %) give ``yi = ln(1 + p/100)`` and
``vi = (se_p/100)^2 / (1 + p/100)^2`` (delta method).

Dispersion conversions to SD: ``sd = se * sqrt(n)``; for a 95 % CI stored as its
half-width ``h``, ``sd = sqrt(n) * h / t_{0.975, n-1}`` [3]_. A ``+/-`` the source does not
label (``disp_kind = 'unclear'``) is treated as an SD and flagged in ``sd_converted_from``.

Correlation default
-------------------
No study in the dataset reports the forward-backward correlation. :data:`DEFAULT_R` = 0.5.
Justification: the only paired tests with enough information bound it from below. For
Roos et al. 2012 (n = 20, paired p < 0.01) the knee-moment comparison implies r > 0.52 and
the PFJ-force comparison r > 0.30 (:func:`correlation_lower_bound`). 0.5 sits at these
bounds, so it is on the conservative side (a larger r shrinks ``vi``). Vary it with
``effect_sizes(r=...)`` or ``retrosim evidence --r``.

Imputation (only in code, flagged, switchable off)
--------------------------------------------------
Rows with means but no dispersion get SDs from the pooled coefficient of variation
``CV = sqrt(mean(CV_i^2))`` of the rows with the same outcome that report one (direction
pooled, 'unclear' counted as SD); if no such row exists, from rows of the same
``outcome_family``. Rows with a percentage change but no dispersion get
``vi = mean(vi_j * n_j) / n`` over the numeric rows of the same family with known dispersion
(a pooled per-subject variance of the log ratio). ``dispersion_imputed`` flags those rows;
``impute=False`` drops them.

References
----------
.. [1] Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in
   experimental ecology. Ecology 80(4):1150-1156. (Cited for the log response ratio and its
   independent-groups variance; formula also implemented as measure "ROM" in metafor.)
.. [2] Bonett DG, Price RM (2020). Confidence intervals for ratios of means and medians.
   J Educ Behav Stat 45(6):750-770. doi:10.3102/1076998620934125. (Paired-samples log mean
   ratio standard error, as implemented in R ``vcmeta::se.meanratio.ps``; its documented
   example is reproduced in ``tests/test_evidence.py``.)
.. [3] Higgins JPT, Li T, Deeks JJ (eds.). Cochrane Handbook for Systematic Reviews of
   Interventions, chapter 6, section "Obtaining standard deviations from standard errors
   and confidence intervals for group means". (Conversion rules; not re-read here.)
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retrosim.config import DATA_DIR
from retrosim.errors import InputError
from retrosim.vocabulary import (
    DESIGNS,
    DISP_KINDS,
    RESULT_DIRECTIONS,
    SPEED_MATCHINGS,
    SURFACES,
)
from retrosim.vocabulary import EVIDENCE_MODES as MODES

log = logging.getLogger(__name__)

__all__ = [
    "ALPHA",
    "DEFAULT_R",
    "ENERGY_BASES",
    "OUTCOMES",
    "P_RELATIONS",
    "correlation_lower_bound",
    "direction_statements",
    "effect_sizes",
    "grade_class",
    "load",
    "load_family",
    "load_habituation",
    "load_references",
    "load_training",
    "peak_force_bw_from_accel",
    "sd_from_ci95",
    "sd_from_se",
    "to_xarray",
]

#: Default forward-backward within-subject correlation (see module docstring).
DEFAULT_R = 0.5

LITERATURE_DIR = DATA_DIR / "literature"


@dataclass(frozen=True)
class Outcome:
    """Vocabulary entry: family, unit as written in the CSV, plausible range, long name."""

    family: str
    unit: str
    lo: float
    hi: float
    long_name: str
    #: Further unit strings accepted for this outcome. Muscle activity (EMG) is normalised
    #: differently by each study (% of a maximal voluntary contraction, integrated EMG, or not
    #: stated), so the ``unit`` column of an EMG row says what its source says, one of
    #: :data:`EMG_UNITS`; only directions and significance of these rows are used, which do not
    #: depend on the normalisation.
    other_units: tuple = ()

    @property
    def units(self) -> tuple:
        """Every unit string accepted for the outcome (``unit`` first)."""
        return (self.unit, *self.other_units)


#: Accepted outcomes: family, unit, plausible range of a group mean, description.
OUTCOMES: dict[str, Outcome] = {
    "vo2_ml_kg_min": Outcome("energy", "mL/kg/min", 2, 90, "oxygen uptake"),
    "vo2_pct_vo2max": Outcome("energy", "%VO2max", 1, 120, "oxygen uptake, % of maximum"),
    "energy_cost_j_kg_m": Outcome("energy", "J/kg/m", 0.5, 20, "energy cost of transport"),
    "metabolic_rate_w_kg": Outcome("energy", "W/kg", 1, 60, "metabolic rate"),
    "hr_bpm": Outcome("heart_rate", "bpm", 40, 230, "heart rate"),
    "hr_pct_hrmax": Outcome("heart_rate", "%HRmax", 20, 110, "heart rate, % of maximum"),
    "pfj_force_bw": Outcome("pfj_force", "BW", 0, 20, "peak patellofemoral joint force"),
    "pfj_force_n": Outcome("pfj_force", "N", 0, 20000, "peak patellofemoral joint force"),
    "knee_compressive_force_bw": Outcome("knee_force", "BW", 0, 20, "peak knee compressive force"),
    "knee_ext_moment_nm": Outcome("knee_moment", "N m", 0, 600, "peak knee extensor moment"),
    "knee_flexion_moment_nm_kg": Outcome(
        "knee_moment", "N m/kg", 0, 10, "peak external knee flexion moment"
    ),
    "vgrf_peak_bw": Outcome("vgrf", "BW", 0.5, 6, "peak vertical ground reaction force"),
    "grf_magnitude_at_peak_moment_bw": Outcome(
        "vgrf", "BW", 0.5, 6, "ground reaction force magnitude at peak knee moment"
    ),
    "knee_adduction_moment_nm_kg": Outcome(
        "knee_adduction", "N m/kg", 0, 3, "external knee adduction moment"
    ),
    "knee_adduction_impulse_nms_kg": Outcome(
        "knee_adduction", "N m s/kg", 0, 2, "knee adduction angular impulse"
    ),
    "knee_flexion_at_peak_moment_deg": Outcome(
        "gait", "deg", 0, 120, "knee flexion angle at peak knee moment"
    ),
    "cop_at_peak_moment_pct_foot": Outcome(
        "gait", "% foot length", 0, 100, "centre of pressure on the foot at peak knee moment"
    ),
    "pfj_peak_timing_pct_stance": Outcome(
        "gait", "% stance", 0, 100, "timing of peak patellofemoral force"
    ),
    "contact_time_s": Outcome("gait", "s", 0.05, 2, "ground contact time"),
    "aerial_time_s": Outcome("gait", "s", 0, 0.5, "aerial (flight) time"),
    "step_frequency_hz": Outcome("gait", "Hz", 0.5, 5, "step frequency"),
    "vertical_stiffness_s2": Outcome("gait", "1/s^2", 10, 5000, "mass-specific vertical stiffness"),
    "com_peak_upward_accel_m_s2": Outcome(
        "gait", "m/s^2", 0, 50, "peak upward acceleration of the centre of mass"
    ),
    "active_muscle_volume_per_force": Outcome(
        "gait", "1", 0, 100, "active muscle volume per unit ground force"
    ),
}

#: EMG normalisations as the sources state them (the ``unit`` of an EMG row): percent of a
#: maximal voluntary (isometric) contraction, integrated EMG whose normalisation is not given,
#: or not stated at all.
EMG_UNITS = ("%MVC", "%MVIC", "iEMG (normalisation not stated)", "not stated")
#: Muscles with EMG comparisons (outcome ``emg_<muscle>``) and the group each belongs to.
EMG_MUSCLES = {
    "rectus_femoris": "quadriceps",
    "vastus_medialis": "quadriceps",
    "vastus_medialis_oblique": "quadriceps",
    "vastus_lateralis": "quadriceps",
    "biceps_femoris": "hamstrings",
    "medial_hamstrings": "hamstrings",
    "lateral_hamstrings": "hamstrings",
    "gluteus_maximus": "glutes",
    "medial_gastrocnemius": "calves",
    "lateral_gastrocnemius": "calves",
    "soleus": "calves",
    "tibialis_anterior": "tibialis_anterior",
    "paraspinal": "trunk_extensors",
    "erector_spinae": "trunk_extensors",
    "multifidus": "trunk_extensors",
}
for _m in EMG_MUSCLES:
    OUTCOMES[f"emg_{_m}"] = Outcome(
        "emg", EMG_UNITS[0], 0, 1e6, f"EMG amplitude, {_m.replace('_', ' ')}", EMG_UNITS[1:]
    )
OUTCOMES["plantar_peak_pressure_toe1"] = Outcome(
    "ankle", "kPa", 0, 5000, "peak plantar pressure under the first toe", ("not stated",)
)
OUTCOMES["plantar_max_pressure"] = Outcome(
    "ankle", "kPa", 0, 5000, "maximum plantar pressure", ("not stated",)
)
OUTCOMES["ankle_share_of_propulsive_power"] = Outcome(
    "ankle", "%", 0, 100, "ankle share of the propulsive joint power", ("not stated",)
)
#: Families kept in their own files (:data:`FAMILY_FILES`), never in ``comparisons.csv``.
FAMILY_FILES = {"emg": "emg.csv", "ankle": "ankle.csv"}
FAMILIES = tuple(sorted({o.family for o in OUTCOMES.values()}))

P_RELATIONS = ("<", "<=", "=", ">")
SIGNIFICANCE_FLAGS = ("true", "false")
ENERGY_BASES = ("gross", "net", "not_stated")
#: Significance level at which "significant" is read against a reported p (module docstring).
ALPHA = 0.05

SPEED_RANGE_M_S = (0.3, 8.0)
GRADE_RANGE_PCT = (-30.0, 45.0)

STUDY_COLUMNS = {
    "study_key": "key",
    "group_key": "key",
    "citation_key": "key",
    "doi": "str",
    "pmid": "str",
    "id_note": "str",
    "year": "int?",
    "population": "str",
    "n_female": "int?",
    "age_mean_y": "float?",
    "mass_mean_kg": "float?",
    "habituation": "str",
    "independent": "bool",
    "source_url": "str",
    "notes": "str",
}
COMPARISON_COLUMNS = {
    "row_id": "key",
    "study_key": "key",
    "citation_key": "key",
    "locator": "str",
    "source_url": "str",
    "verified": "bool",
    "primary": "bool",
    "design": "str",
    "n": "int?",
    "n_forward": "int?",
    "n_backward": "int?",
    "mode": "str",
    "surface": "str",
    "condition": "str",
    "grade_pct": "float?",
    "grade_low_pct": "float?",
    "grade_high_pct": "float?",
    "speed_forward_m_s": "float?",
    "speed_backward_m_s": "float?",
    "speed_low_m_s": "float?",
    "speed_high_m_s": "float?",
    "speed_as_reported": "str",
    "speed_matching": "str",
    "outcome": "str",
    "unit": "str",
    "forward_mean": "float?",
    "forward_disp": "float?",
    "backward_mean": "float?",
    "backward_disp": "float?",
    "disp_kind": "str",
    "correlation": "float?",
    "pct_change_reported": "float?",
    "pct_change_disp": "float?",
    "result_only": "str",
    "result_p_relation": "str",
    "result_p_value": "float?",
    "result_significant": "str",
    "energy_basis": "str",
    "notes": "str",
}
#: Comparison columns added after the first release: a file without them loads as if empty.
OPTIONAL_COMPARISON_COLUMNS = (
    "grade_low_pct",
    "grade_high_pct",
    "result_p_relation",
    "result_p_value",
    "result_significant",
    "energy_basis",
)
_SIGNIFICANCE_COLUMNS = ("result_p_relation", "result_p_value", "result_significant")
GRADE_CLASSES = ("level", "uphill", "downhill", "mixed", "not_stated")

_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")


# --------------------------------------------------------------------------- reading


def load_references(path) -> set[str]:
    """Return the set of entry keys in a BibTeX file."""
    path = Path(path)
    if not path.exists():
        raise InputError("references file not found", file=path)
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", text, flags=re.MULTILINE))


def _read_table(path: Path, spec: dict[str, str], optional=()) -> pd.DataFrame:
    """Read a CSV as strings, check its columns, and convert each column to its type.

    Columns in ``optional`` may be absent from the file; they are then read as empty.
    """
    if not path.exists():
        raise InputError("data file not found", file=path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    absent = [col for col in optional if col not in raw.columns]
    for col in absent:
        raw[col] = ""
    missing = [c for c in spec if c not in raw.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected columns: {', '.join(spec)}",
            file=path,
            column=missing[0],
        )
    unknown = [c for c in raw.columns if c not in spec]
    if unknown:
        raise InputError(f"unknown column(s) {', '.join(unknown)}", file=path, column=unknown[0])
    if not any(k in " ".join(raw.columns) for k in ("source", "citation", "synthetic")):
        raise InputError("header has no source/citation column", file=path)
    out = {}
    for col, kind in spec.items():
        values = raw[col].str.strip()
        out[col] = _convert(values, kind, path, col)
    table = pd.DataFrame(out)
    table.attrs["absent_optional"] = tuple(absent)
    return table


def _convert(values: pd.Series, kind: str, path: Path, col: str) -> pd.Series:
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind in ("str", "key"):
        if kind == "key":
            for i, v in enumerate(values):
                if v and not _KEY_RE.match(v):
                    raise InputError(
                        f"key {v!r} may only contain letters, digits, '_', '.', '-'",
                        file=path,
                        row=i + 1,
                        column=col,
                    )
        return values.astype(object)
    result = []
    for i, v in enumerate(values):
        if v == "":
            if not optional and kind != "bool":
                raise InputError("empty value", file=path, row=i + 1, column=col)
            result.append(np.nan if kind != "bool" else None)
            continue
        if kind == "bool":
            low = v.lower()
            if low not in ("true", "false"):
                raise InputError(
                    f"expected true or false, got {v!r}", file=path, row=i + 1, column=col
                )
            result.append(low == "true")
            continue
        try:
            x = float(v)
        except ValueError:
            raise InputError(
                f"expected a number, got {v!r}", file=path, row=i + 1, column=col
            ) from None
        if not math.isfinite(x):
            raise InputError(
                f"expected a finite number, got {v!r}", file=path, row=i + 1, column=col
            )
        if kind == "int":
            if x != int(x):
                raise InputError(
                    f"expected a whole number, got {v!r}", file=path, row=i + 1, column=col
                )
        result.append(x)
    if kind == "bool":
        for i, v in enumerate(result):
            if v is None:
                raise InputError("expected true or false, got ''", file=path, row=i + 1, column=col)
        return pd.Series(result, dtype=bool)
    if kind == "int":
        return pd.Series(result, dtype="Int64") if optional else pd.Series(result, dtype="int64")
    return pd.Series(result, dtype=float)


# --------------------------------------------------------------------------- validation


def _err(msg, path, i, col):
    return InputError(msg, file=path, row=int(i) + 1, column=col)


def _check_studies(st: pd.DataFrame, path: Path, bib_keys: set[str], bib_path: Path):
    for col in ("study_key", "group_key", "citation_key", "population", "source_url"):
        for i, v in st[col].items():
            if not v:
                raise _err("empty value; every study needs it", path, i, col)
    dup = st["study_key"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _err(f"duplicate study_key {st['study_key'][i]!r}", path, i, "study_key")
    for i, r in st.iterrows():
        if r["citation_key"] not in bib_keys:
            raise _err(
                f"citation_key {r['citation_key']!r} is not an entry of {bib_path.name}",
                path,
                i,
                "citation_key",
            )
        if r["doi"] and not _DOI_RE.match(r["doi"]):
            raise _err(f"DOI {r['doi']!r} does not look like 10.xxxx/...", path, i, "doi")
        if r["pmid"] and not r["pmid"].isdigit():
            raise _err(f"PMID {r['pmid']!r} must be digits", path, i, "pmid")
        if not r["doi"] and not r["pmid"] and not r["id_note"].lower().startswith("none"):
            raise _err(
                "no DOI or PMID: give one, or an id_note starting with 'none' and the reason",
                path,
                i,
                "id_note",
            )
        for col, lo, hi, unit in (
            ("age_mean_y", 5, 100, "years"),
            ("mass_mean_kg", 20, 200, "kg"),
            ("year", 1900, 2100, "year"),
        ):
            v = r[col]
            if pd.notna(v) and not lo <= v <= hi:
                raise _err(f"value {v:g} outside [{lo}, {hi}] {unit}", path, i, col)
        if pd.notna(r["n_female"]) and r["n_female"] < 0:
            raise _err("n_female must be >= 0", path, i, "n_female")
    groups = set(st["study_key"])
    for i, g in st["group_key"].items():
        if g not in groups:
            raise _err(f"group_key {g!r} is not a study_key", path, i, "group_key")


def _check_row_citation(r, path, i, studies, bib_keys, bib_path):
    """A row's study is in studies.csv, its citation key in the BibTeX file and the study's."""
    if r["study_key"] not in studies:
        raise _err(f"study_key {r['study_key']!r} not in studies.csv", path, i, "study_key")
    if r["citation_key"] not in bib_keys:
        raise _err(
            f"citation_key {r['citation_key']!r} is not an entry of {bib_path.name}",
            path,
            i,
            "citation_key",
        )
    if r["citation_key"] != studies[r["study_key"]]:
        raise _err(
            f"citation_key {r['citation_key']!r} differs from the study's "
            f"{studies[r['study_key']]!r}",
            path,
            i,
            "citation_key",
        )


def _check_range(value, lo, hi, unit, path, i, col, hint=None):
    if pd.notna(value) and not lo <= value <= hi:
        msg = f"value {value:g} outside the plausible range [{lo:g}, {hi:g}] {unit}"
        if hint:
            msg += f"; {hint}"
        raise _err(msg, path, i, col)


def _speed_hint(v):
    if v > 30:
        return "looks like m/min; convert to m/s (divide by 60)"
    return "looks like km/h; convert to m/s (divide by 3.6)"


def _check_comparisons(cp: pd.DataFrame, path: Path, st: pd.DataFrame, bib_keys, bib_path):
    studies = dict(zip(st["study_key"], st["citation_key"], strict=True))
    for col in ("row_id", "study_key", "citation_key", "locator", "source_url", "outcome", "unit"):
        for i, v in cp[col].items():
            if not v:
                what = "source" if col in ("citation_key", "locator", "source_url") else "value"
                raise _err(f"empty {what}; every row must say {col}", path, i, col)
    dup = cp["row_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _err(f"duplicate row_id {cp['row_id'][i]!r}", path, i, "row_id")
    content = [c for c in cp.columns if c not in ("row_id", "notes")]
    dup = cp.astype(str)[content].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _err("duplicate row: same content as an earlier row", path, i, "row_id")
    for i, r in cp.iterrows():
        _check_row_citation(r, path, i, studies, bib_keys, bib_path)
        for col, choices in (
            ("design", DESIGNS),
            ("mode", MODES),
            ("surface", SURFACES),
            ("speed_matching", SPEED_MATCHINGS),
            ("disp_kind", DISP_KINDS),
        ):
            if r[col] not in choices:
                raise _err(
                    f"unknown value {r[col]!r}; expected one of {', '.join(choices)}", path, i, col
                )
        if r["outcome"] not in OUTCOMES:
            raise _err(
                f"unknown outcome {r['outcome']!r}; expected one of {', '.join(OUTCOMES)}",
                path,
                i,
                "outcome",
            )
        spec = OUTCOMES[r["outcome"]]
        if r["unit"] not in spec.units:
            expects = " or ".join(repr(u) for u in spec.units)
            raise _err(
                f"unit {r['unit']!r} does not match outcome {r['outcome']!r} (expects {expects})",
                path,
                i,
                "unit",
            )
        for col in ("n", "n_forward", "n_backward"):
            if pd.notna(r[col]) and r[col] < 1:
                raise _err(f"sample size {r[col]} must be >= 1", path, i, col)
        for col in ("speed_forward_m_s", "speed_backward_m_s", "speed_low_m_s", "speed_high_m_s"):
            v = r[col]
            if pd.notna(v) and not SPEED_RANGE_M_S[0] <= v <= SPEED_RANGE_M_S[1]:
                _check_range(v, *SPEED_RANGE_M_S, "m/s", path, i, col, hint=_speed_hint(v))
        if pd.notna(r["speed_low_m_s"]) and pd.notna(r["speed_high_m_s"]):
            if r["speed_low_m_s"] > r["speed_high_m_s"]:
                raise _err("speed_low_m_s exceeds speed_high_m_s", path, i, "speed_low_m_s")
        for col in ("grade_pct", "grade_low_pct", "grade_high_pct"):
            _check_range(r[col], *GRADE_RANGE_PCT, "%", path, i, col)
        _check_grade_range(r, path, i)
        _check_range(r["correlation"], -1, 1, "(correlation)", path, i, "correlation")
        for col in ("forward_mean", "backward_mean"):
            _check_range(r[col], spec.lo, spec.hi, spec.unit, path, i, col)
        for col in ("forward_disp", "backward_disp", "pct_change_disp"):
            if pd.notna(r[col]) and r[col] < 0:
                raise _err(f"dispersion {r[col]:g} must be >= 0", path, i, col)
        _check_range(r["pct_change_reported"], -99, 1000, "%", path, i, "pct_change_reported")
        _check_row_kind(r, path, i)
        absent = cp.attrs.get("absent_optional", ())
        if not set(_SIGNIFICANCE_COLUMNS) & set(absent):
            _check_significance(r, path, i)
        if "energy_basis" not in absent:
            _check_energy_basis(r, spec, path, i)


def _check_significance(r, path, i):
    """The explicit significance columns of a row (module docstring, "Significance coding")."""
    rel, p, sig = r["result_p_relation"], r["result_p_value"], r["result_significant"]
    if not r["result_only"]:
        for col, filled in (
            ("result_p_relation", rel != ""),
            ("result_p_value", pd.notna(p)),
            ("result_significant", sig != ""),
        ):
            if filled:
                raise _err(
                    f"{col} belongs to result-only rows; expected empty on a numeric row",
                    path,
                    i,
                    col,
                )
        return
    if rel not in ("", *P_RELATIONS):
        raise _err(
            f"unknown p relation {rel!r}; expected one of {', '.join(P_RELATIONS)} or empty "
            "(no p reported)",
            path,
            i,
            "result_p_relation",
        )
    if sig not in ("", *SIGNIFICANCE_FLAGS):
        raise _err(
            f"expected true, false or empty (significance not stated), got {sig!r}",
            path,
            i,
            "result_significant",
        )
    if (rel == "") != pd.isna(p):
        col = "result_p_value" if rel else "result_p_relation"
        raise _err(
            "give result_p_relation and result_p_value together, or neither (no p reported)",
            path,
            i,
            col,
        )
    if pd.notna(p) and not 0 < p < 1:
        raise _err(f"p value {p:g} outside (0, 1)", path, i, "result_p_value")
    direction = r["result_only"].split(";")[0].strip()
    if pd.isna(p):
        expected = None
    elif rel in ("<", "<="):
        expected = "true" if p <= ALPHA else None
    elif rel == "=":
        expected = "true" if p <= ALPHA else "false"
    else:  # '>'
        expected = "false" if p >= ALPHA else None
    if direction == "no_difference":
        if expected == "true":
            raise _err(
                f"no_difference with p {rel} {p:g} contradicts itself: a 'no difference' "
                f"result needs p above {ALPHA:g}",
                path,
                i,
                "result_p_value",
            )
        expected = "false"
    if expected is not None and sig != expected:
        if direction == "no_difference":
            why = "a no_difference row is not significant"
        else:
            why = f"p {rel} {p:g} at the {ALPHA:g} level"
        raise _err(
            f"{why}: expected result_significant = {expected}, got {sig or 'empty'!r}",
            path,
            i,
            "result_significant",
        )
    if sig == "true" and rel in ("<", "<=", "=") and p > ALPHA:
        raise _err(
            f"significant with p {rel} {p:g}: expected p at most {ALPHA:g}",
            path,
            i,
            "result_significant",
        )


def _check_energy_basis(r, spec, path, i):
    basis = r["energy_basis"]
    if spec.family == "energy":
        if basis not in ENERGY_BASES:
            raise _err(
                f"energy rows need energy_basis, one of {', '.join(ENERGY_BASES)}; got {basis!r}",
                path,
                i,
                "energy_basis",
            )
    elif basis:
        raise _err(
            f"energy_basis is for energy-family rows only; {r['outcome']!r} is "
            f"{spec.family!r}: expected empty",
            path,
            i,
            "energy_basis",
        )


def _check_grade_range(r, path, i):
    lo, hi = r["grade_low_pct"], r["grade_high_pct"]
    if pd.isna(lo) != pd.isna(hi):
        col = "grade_high_pct" if pd.isna(hi) else "grade_low_pct"
        raise _err("give both grade_low_pct and grade_high_pct or neither", path, i, col)
    if pd.notna(lo):
        if lo > hi:
            raise _err("grade_low_pct exceeds grade_high_pct", path, i, "grade_low_pct")
        if pd.notna(r["grade_pct"]):
            raise _err(
                "give either grade_pct (one grade) or the grade range, not both",
                path,
                i,
                "grade_pct",
            )


def grade_class(grade_pct, grade_low_pct=np.nan, grade_high_pct=np.nan) -> np.ndarray:
    """Classify conditions by treadmill grade (module docstring, "Grade class").

    Parameters
    ----------
    grade_pct, grade_low_pct, grade_high_pct : float or array-like
        One grade [%], or the ends of the range of grades a value is averaged over [%];
        NaN where not reported.

    Returns
    -------
    numpy.ndarray of str
        ``level``, ``uphill``, ``downhill``, ``mixed`` or ``not_stated`` per condition.
    """
    g, lo, hi = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (grade_pct, grade_low_pct, grade_high_pct))
    )
    lo = np.where(np.isfinite(g), g, lo)
    hi = np.where(np.isfinite(g), g, hi)
    known = np.isfinite(lo) & np.isfinite(hi)
    with np.errstate(invalid="ignore"):
        out = np.select(
            [~known, (lo == 0) & (hi == 0), lo >= 0, hi <= 0],
            ["not_stated", "level", "uphill", "downhill"],
            default="mixed",
        )
    return out.astype(str)


def _check_row_kind(r, path, i):
    has_means = pd.notna(r["forward_mean"]) or pd.notna(r["backward_mean"])
    has_pct = pd.notna(r["pct_change_reported"])
    has_disp = any(pd.notna(r[c]) for c in ("forward_disp", "backward_disp", "pct_change_disp"))
    if r["result_only"]:
        if has_means or has_pct or has_disp:
            raise _err(
                "a result_only row must leave the numeric columns empty", path, i, "result_only"
            )
        direction = r["result_only"].split(";")[0].strip()
        if direction not in RESULT_DIRECTIONS:
            raise _err(
                f"result_only must start with one of {', '.join(RESULT_DIRECTIONS)}; got {direction!r}",
                path,
                i,
                "result_only",
            )
        return
    if has_means and has_pct:
        raise _err(
            "give either both means or a reported % change, not both",
            path,
            i,
            "pct_change_reported",
        )
    if has_means:
        for col in ("forward_mean", "backward_mean"):
            if pd.isna(r[col]):
                raise _err("numeric rows need both forward_mean and backward_mean", path, i, col)
            if r[col] <= 0:
                raise _err("means must be > 0 for a log response ratio", path, i, col)
        if r["design"] == "within" and pd.isna(r["n"]):
            raise _err("numeric within-subject rows need n", path, i, "n")
        if r["design"] == "between" and (pd.isna(r["n_forward"]) or pd.isna(r["n_backward"])):
            raise _err("between-group rows need n_forward and n_backward", path, i, "n_forward")
        n_disp = sum(pd.notna(r[c]) for c in ("forward_disp", "backward_disp"))
        if n_disp == 1:
            raise _err("give both dispersions or neither", path, i, "forward_disp")
        if (n_disp == 2) != (r["disp_kind"] != "none"):
            raise _err(
                "disp_kind must be 'none' exactly when no dispersion is given", path, i, "disp_kind"
            )
    elif has_pct:
        if pd.isna(r["n"]):
            raise _err("rows with a reported % change need n", path, i, "n")
        if pd.notna(r["pct_change_disp"]) == (r["disp_kind"] == "none"):
            raise _err(
                "disp_kind must be 'none' exactly when pct_change_disp is empty",
                path,
                i,
                "disp_kind",
            )
    else:
        raise _err(
            "row has neither means, a reported % change, nor a result_only statement",
            path,
            i,
            "result_only",
        )


def load(path=None, *, references=None) -> pd.DataFrame:
    """Load and validate the published comparisons.

    Parameters
    ----------
    path : path-like, optional
        Folder holding ``studies.csv`` and ``comparisons.csv`` (default
        ``retrosim/data/literature``).
    references : path-like, optional
        BibTeX file the ``citation_key`` values must be in (default ``references.bib``
        in the parent of ``path``).

    Returns
    -------
    pandas.DataFrame
        One row per study x condition x outcome, with the study columns merged in and
        ``outcome_family`` and ``grade_class`` (:func:`grade_class`) added;
        ``result_significant`` holds True, False or None (not stated). Index: ``row_id``
        values in file order (also a column).

    Raises
    ------
    retrosim.errors.InputError
        Naming the file, the 1-based data row and the column of the first problem.
    """
    return _load_comparison_file(path, references, "comparisons.csv", None)


def load_family(family: str, path=None, *, references=None) -> pd.DataFrame:
    """Load and validate a family kept in its own file (:data:`FAMILY_FILES`).

    Muscle activity (``emg``, ``emg.csv``) and ankle loading (``ankle``, ``ankle.csv``) have the
    columns of ``comparisons.csv`` and the same checks (:func:`load`), against the same
    ``studies.csv`` and BibTeX file; every row must belong to ``family``. They are kept apart so
    that the families of the energy, heart-rate and knee claims keep their own rows.

    Parameters
    ----------
    family : {'emg', 'ankle'}
    path, references : path-like, optional
        As in :func:`load`.

    Returns
    -------
    pandas.DataFrame
        As :func:`load`; :func:`direction_statements` accepts it.

    Raises
    ------
    retrosim.errors.InputError
        Unknown family, or the file, 1-based row and column of the first problem.
    """
    if family not in FAMILY_FILES:
        raise InputError(
            f"unknown family {family!r}; expected one of {', '.join(FAMILY_FILES)}",
            argument="family",
        )
    return _load_comparison_file(path, references, FAMILY_FILES[family], family)


def _load_comparison_file(path, references, name, family):
    folder = Path(path) if path is not None else LITERATURE_DIR
    bib = Path(references) if references is not None else folder.parent / "references.bib"
    bib_keys = load_references(bib)
    st_path, cp_path = folder / "studies.csv", folder / name
    st = _read_table(st_path, STUDY_COLUMNS)
    _check_studies(st, st_path, bib_keys, bib)
    cp = _read_table(cp_path, COMPARISON_COLUMNS, OPTIONAL_COMPARISON_COLUMNS)
    _check_comparisons(cp, cp_path, st, bib_keys, bib)
    for i, o in cp["outcome"].items():
        fam = OUTCOMES[o].family
        if family is None and fam in FAMILY_FILES:
            raise _err(
                f"outcome {o!r} is family {fam!r}, kept in {FAMILY_FILES[fam]}",
                cp_path,
                i,
                "outcome",
            )
        if family is not None and fam != family:
            raise _err(
                f"outcome {o!r} is family {fam!r}; {name} holds family {family!r} only",
                cp_path,
                i,
                "outcome",
            )
    st_cols = st.drop(columns=["citation_key", "source_url", "notes"]).rename(
        columns={"independent": "independent_report"}
    )
    df = cp.merge(st_cols, on="study_key", how="left", validate="many_to_one")
    df["outcome_family"] = df["outcome"].map(lambda o: OUTCOMES[o].family)
    df["grade_class"] = grade_class(df["grade_pct"], df["grade_low_pct"], df["grade_high_pct"])
    df["result_significant"] = _significance_flags(df["result_significant"])
    df["n"] = df["n"].astype("Int64")
    df.index = pd.Index(df["row_id"], name="row")
    return df


def _significance_flags(values) -> pd.Series:
    """``true``/``false``/empty (or booleans) as an object column of True, False and None."""
    table = {"true": True, "false": False, "": None}

    def one(v):
        if v is None or isinstance(v, bool | np.bool_):
            return None if v is None else bool(v)
        if isinstance(v, float) and math.isnan(v):
            return None
        return table[str(v).strip().lower()]

    return pd.Series([one(v) for v in values], index=values.index, dtype=object)


# --------------------------------------------------------------------------- effect sizes


def sd_from_se(se, n):
    """Standard deviation from a standard error of the mean: ``sd = se * sqrt(n)``."""
    return np.asarray(se, dtype=float) * np.sqrt(np.asarray(n, dtype=float))


def sd_from_ci95(half_width, n):
    """Standard deviation from the half-width of a t-based 95 % CI of a mean.

    ``sd = sqrt(n) * h / t_{0.975, n-1}`` (for large n, t -> 1.96).
    """
    from scipy import stats

    n = np.asarray(n, dtype=float)
    return np.sqrt(n) * np.asarray(half_width, dtype=float) / stats.t.ppf(0.975, n - 1)


def correlation_lower_bound(m_f, sd_f, m_b, sd_b, n, p_upper):
    """Smallest forward-backward correlation consistent with a paired t-test ``p < p_upper``.

    The paired t statistic is ``|m_B - m_F| / (sd_d / sqrt(n))`` with
    ``sd_d^2 = sd_F^2 + sd_B^2 - 2 r sd_F sd_B``; requiring it to exceed the two-sided
    critical value gives ``r > (sd_F^2 + sd_B^2 - sd_d,max^2) / (2 sd_F sd_B)``.
    """
    from scipy import stats

    t_crit = stats.t.ppf(1 - p_upper / 2, n - 1)
    sd_d_max = abs(m_b - m_f) * math.sqrt(n) / t_crit
    return (sd_f**2 + sd_b**2 - sd_d_max**2) / (2 * sd_f * sd_b)


def _to_sd(disp, kind, n):
    if kind in ("sd", "unclear"):
        return disp
    if kind == "se":
        return float(sd_from_se(disp, n))
    if kind == "ci95":
        return float(sd_from_ci95(disp, n))
    return np.nan


def effect_sizes(data=None, *, r=DEFAULT_R, impute=True, outcome_family=None) -> pd.DataFrame:
    """Log response ratios ``ln(backward/forward)`` with sampling variances.

    Parameters
    ----------
    data : DataFrame, optional
        Output of :func:`load` (default: ``load()``).
    r : float
        Forward-backward within-subject correlation used when a row reports none,
        in [-1, 1]. Default :data:`DEFAULT_R`.
    impute : bool
        Impute missing dispersions (module docstring); if False those rows are dropped.
    outcome_family : str or sequence of str, optional
        Keep only these families.

    Returns
    -------
    pandas.DataFrame
        One row per numeric comparison with ``yi``, ``vi``, ``pct_change``,
        ``v_forward``, ``v_backward``, ``sd_converted_from``, ``dispersion_imputed``,
        ``energy_basis``, ``derived_from`` (the source row of a derived row, module
        docstring "Derived rows"; empty otherwise) and the moderators (speeds in m/s, grade
        in % or its range, ``grade_class``, mode, n, design, ...). Derived rows follow the
        rows read from the data.
    """
    from retrosim._checks import check_range

    r = float(check_range("r", r, -1, 1, "(correlation)", lo_inclusive=True))
    df = _with_grade_columns(load() if data is None else data)
    fams = None
    if outcome_family is not None:
        fams = [outcome_family] if isinstance(outcome_family, str) else list(outcome_family)
        for f in fams:
            if f not in FAMILIES:
                raise InputError(
                    f"unknown family {f!r}; expected one of {', '.join(FAMILIES)}",
                    argument="outcome_family",
                )
    df = df[df["result_only"] == ""]
    rows = []
    for _, x in df.iterrows():
        rows.append(_one_effect(x, r))
    out = pd.DataFrame(rows, columns=_EFFECT_COLUMNS)
    if out.empty:
        return out
    # Imputation pools donors of the same outcome or family only, so computing every family
    # and filtering afterwards gives the filtered rows the same values; a derived row may
    # belong to another family than its source.
    out = _impute(out, r) if impute else out[~out["needs_imputation"]].copy()
    out = out.drop(columns=["needs_imputation", "cv_forward", "cv_backward"])
    derived = _derived_rows(out)
    if len(derived):
        out = pd.concat([out, derived], ignore_index=True)
    out["dispersion_imputed"] = out["dispersion_imputed"].astype(bool)
    if fams is not None:
        out = out[out["outcome_family"].isin(fams)]
    return out.reset_index(drop=True)


def peak_force_bw_from_accel(accel_m_s2):
    """Peak vertical ground reaction force [BW] from the peak upward COM acceleration.

    ``F/(m g) = 1 + a/g`` with ``g`` = :data:`retrosim.units.G` (module docstring,
    "Derived rows").

    Parameters
    ----------
    accel_m_s2 : float or array-like
        Peak upward acceleration of the centre of mass [m/s^2].

    Returns
    -------
    numpy.ndarray or float
        Peak vertical force in body weights [BW].
    """
    from retrosim.units import G

    return 1.0 + np.asarray(accel_m_s2, dtype=float) / G


def _derived_rows(out: pd.DataFrame) -> pd.DataFrame:
    """Rows computed from other rows (module docstring, "Derived rows"): the peak vertical
    force of every peak-upward-acceleration row with means."""
    from retrosim.units import G

    rows = []
    for _, x in out.iterrows():
        if x["outcome"] != "com_peak_upward_accel_m_s2" or x["effect_from"] != "means":
            continue
        outcome = "vgrf_peak_bw"
        a_f, a_b = float(x["forward_mean"]), float(x["backward_mean"])
        f_f, f_b = float(peak_force_bw_from_accel(a_f)), float(peak_force_bw_from_accel(a_b))
        # F/(m g) = 1 + a/g is linear in a: the CV of each mean scales by a / (g + a)
        v_f = x["v_forward"] * (a_f / (G + a_f)) ** 2
        v_b = x["v_backward"] * (a_b / (G + a_b)) ** 2
        vi = _paired_vi(v_f, v_b, x["r"]) if x["design"] == "within" else v_f + v_b
        row = x.to_dict()
        row.update(
            row_id=f"{x['row_id']}_vgrf_derived",
            outcome=outcome,
            outcome_family=OUTCOMES[outcome].family,
            forward_mean=f_f,
            backward_mean=f_b,
            yi=math.log(f_b / f_f),
            pct_change=100.0 * (f_b / f_f - 1.0),
            v_forward=v_f,
            v_backward=v_b,
            vi=vi,
            effect_from="derived_from_accel",
            sd_converted_from=f"derived_from_accel:{x['sd_converted_from']}",
            energy_basis="",
            derived_from=x["row_id"],
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=out.columns)


def _with_grade_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` with the optional columns (grade range, significance, energy basis)
    and ``grade_class``, for frames built before those columns existed."""
    df = df.copy()
    for col in OPTIONAL_COMPARISON_COLUMNS:
        if col not in df.columns:
            kind = COMPARISON_COLUMNS[col]
            df[col] = np.nan if kind == "float?" else ("" if col != "result_significant" else None)
    if "grade_class" not in df.columns:
        df["grade_class"] = grade_class(df["grade_pct"], df["grade_low_pct"], df["grade_high_pct"])
    return df


_EFFECT_COLUMNS = [
    "row_id",
    "study_key",
    "group_key",
    "citation_key",
    "outcome",
    "outcome_family",
    "primary",
    "independent_report",
    "verified",
    "mode",
    "surface",
    "condition",
    "speed_m_s",
    "speed_backward_m_s",
    "speed_mid_m_s",
    "speed_low_m_s",
    "speed_high_m_s",
    "speed_matching",
    "grade_pct",
    "grade_low_pct",
    "grade_high_pct",
    "grade_class",
    "n",
    "design",
    "forward_mean",
    "backward_mean",
    "yi",
    "vi",
    "pct_change",
    "v_forward",
    "v_backward",
    "r",
    "effect_from",
    "sd_converted_from",
    "dispersion_imputed",
    "energy_basis",
    "derived_from",
    "needs_imputation",
    "cv_forward",
    "cv_backward",
]


def _paired_vi(v_f, v_b, r):
    return v_f + v_b - 2.0 * r * np.sqrt(v_f * v_b)


def _one_effect(x, r_default):
    n = float(x["n"]) if pd.notna(x["n"]) else np.nan
    r = float(x["correlation"]) if pd.notna(x["correlation"]) else r_default
    speed = x["speed_forward_m_s"]
    mid = speed
    if pd.isna(mid) and pd.notna(x["speed_low_m_s"]) and pd.notna(x["speed_high_m_s"]):
        mid = 0.5 * (x["speed_low_m_s"] + x["speed_high_m_s"])
    base = {
        "row_id": x["row_id"],
        "study_key": x["study_key"],
        "group_key": x["group_key"],
        "citation_key": x["citation_key"],
        "outcome": x["outcome"],
        "outcome_family": x["outcome_family"],
        "primary": bool(x["primary"]),
        "independent_report": bool(x["independent_report"]),
        "verified": bool(x["verified"]),
        "mode": x["mode"],
        "surface": x["surface"],
        "condition": x["condition"],
        "speed_m_s": speed,
        "speed_backward_m_s": x["speed_backward_m_s"],
        "speed_mid_m_s": mid,
        "speed_low_m_s": x["speed_low_m_s"],
        "speed_high_m_s": x["speed_high_m_s"],
        "speed_matching": x["speed_matching"],
        "grade_pct": x["grade_pct"],
        "grade_low_pct": x["grade_low_pct"],
        "grade_high_pct": x["grade_high_pct"],
        "grade_class": x["grade_class"],
        "n": n,
        "design": x["design"],
        "forward_mean": x["forward_mean"],
        "backward_mean": x["backward_mean"],
        "r": r if x["design"] == "within" else np.nan,
        "dispersion_imputed": False,
        "energy_basis": x["energy_basis"],
        "derived_from": "",
        "cv_forward": np.nan,
        "cv_backward": np.nan,
    }
    kind = x["disp_kind"]
    if pd.notna(x["pct_change_reported"]):
        ratio = 1.0 + x["pct_change_reported"] / 100.0
        base.update(
            yi=math.log(ratio),
            pct_change=x["pct_change_reported"],
            effect_from="pct_change",
            v_forward=np.nan,
            v_backward=np.nan,
            sd_converted_from=kind if kind != "none" else "",
        )
        if kind == "none":
            base.update(vi=np.nan, needs_imputation=True)
        else:
            se_pct = x["pct_change_disp"] if kind == "se" else np.nan
            if kind in ("sd", "unclear"):
                se_pct = x["pct_change_disp"] / math.sqrt(n)
            elif kind == "ci95":
                se_pct = float(sd_from_ci95(x["pct_change_disp"], n)) / math.sqrt(n)
            base.update(vi=(se_pct / 100.0) ** 2 / ratio**2, needs_imputation=False)
        return base
    m_f, m_b = x["forward_mean"], x["backward_mean"]
    base.update(
        yi=math.log(m_b / m_f),
        pct_change=100.0 * (m_b / m_f - 1.0),
        effect_from="means",
    )
    if x["design"] == "within":
        n_f = n_b = n
    else:
        n_f, n_b = float(x["n_forward"]), float(x["n_backward"])
        base["n"] = n_f + n_b
    if kind == "none":
        base.update(
            vi=np.nan, v_forward=np.nan, v_backward=np.nan, sd_converted_from="",
            needs_imputation=True,
        )  # fmt: skip
        return base
    sd_f = _to_sd(x["forward_disp"], kind, n_f)
    sd_b = _to_sd(x["backward_disp"], kind, n_b)
    v_f = sd_f**2 / (n_f * m_f**2)
    v_b = sd_b**2 / (n_b * m_b**2)
    vi = _paired_vi(v_f, v_b, r) if x["design"] == "within" else v_f + v_b
    base.update(
        vi=vi,
        v_forward=v_f,
        v_backward=v_b,
        sd_converted_from=kind,
        needs_imputation=False,
        cv_forward=sd_f / m_f,
        cv_backward=sd_b / m_b,
    )
    return base


def _impute(out: pd.DataFrame, r_default: float) -> pd.DataFrame:
    out = out.copy()
    known = out[~out["needs_imputation"]]
    means_known = known[known["effect_from"] == "means"]
    for idx, x in out[out["needs_imputation"]].iterrows():
        if x["effect_from"] == "means":
            pool = means_known[means_known["outcome"] == x["outcome"]]
            source = "outcome"
            if pool.empty:
                pool = means_known[means_known["outcome_family"] == x["outcome_family"]]
                source = "family"
            if pool.empty:
                log.warning("cannot impute dispersion for %s: no donor rows", x["row_id"])
                out.loc[idx, "vi"] = np.nan
                continue
            cv2 = np.concatenate([pool["cv_forward"].to_numpy(), pool["cv_backward"].to_numpy()])
            cv = math.sqrt(float(np.mean(cv2**2)))
            n_f = n_b = x["n"]
            if x["design"] == "between":
                n_f = n_b = x["n"] / 2.0  # conservative split when group sizes are unknown
            v_f, v_b = cv**2 / n_f, cv**2 / n_b
            r = x["r"] if x["design"] == "within" else np.nan
            vi = _paired_vi(v_f, v_b, r) if x["design"] == "within" else v_f + v_b
            out.loc[idx, ["vi", "v_forward", "v_backward"]] = [vi, v_f, v_b]
            out.loc[idx, "sd_converted_from"] = f"imputed_cv_{source}"
        else:
            pool = known[(known["outcome_family"] == x["outcome_family"]) & known["n"].notna()]
            if pool.empty:
                log.warning("cannot impute variance for %s: no donor rows", x["row_id"])
                out.loc[idx, "vi"] = np.nan
                continue
            per_subject = float(np.mean(pool["vi"] * pool["n"]))
            out.loc[idx, "vi"] = per_subject / x["n"]
            out.loc[idx, "sd_converted_from"] = "imputed_family_vi"
        out.loc[idx, "dispersion_imputed"] = True
    dropped = out["vi"].isna()
    if dropped.any():
        out = out[~dropped]
    return out


# --------------------------------------------------------------------------- other views


def direction_statements(data=None, *, independent_only=True) -> pd.DataFrame:
    """The result-only rows with their direction and significance text parsed.

    Counting these rows gives direction votes, so by default a report the data mark as not
    independent (``independent = false`` in ``studies.csv``: a duplicated abstract or
    reused results, e.g. Adesola & Azeez repeating Flynn 1994, Lee & Lee 2016 repeating
    Hooper 2004) is left out: it never adds a second vote for the results of the report it
    duplicates. Those rows stay in :func:`load` for traceability.

    Parameters
    ----------
    data : DataFrame, optional
        Output of :func:`load` (default: ``load()``).
    independent_only : bool
        Drop the rows of non-independent reports (default). ``False`` returns every
        result-only row, e.g. to count the rows of the dataset; the column
        ``independent_report`` then tells them apart.

    Returns
    -------
    pandas.DataFrame
        Columns ``row_id, study_key, group_key, independent_report, outcome,
        outcome_family, mode, surface, condition, speed_forward_m_s, speed_matching,
        grade_pct, n, direction, detail, verified, grade_low_pct, grade_high_pct,
        grade_class, speed_backward_m_s, speed_low_m_s, speed_high_m_s, primary, design,
        citation_key, result_p_relation, result_p_value, result_significant,
        energy_basis``. ``direction`` is one of ``backward>forward``, ``backward<forward``,
        ``no_difference``; ``detail`` is the free text after it. The significance columns are
        the explicit coding of the source (module docstring, "Significance coding"):
        ``result_p_relation`` in ``<, <=, =, >`` or empty, ``result_p_value`` a float or NaN,
        ``result_significant`` True, False or None (not stated). Speeds in m/s (NaN when not
        reported); ``energy_basis`` is set for energy-family rows.
    """
    df = _with_grade_columns(load() if data is None else data)
    res = df[df["result_only"] != ""].copy()
    if independent_only:
        dropped = res.loc[~res["independent_report"].astype(bool), "row_id"]
        if len(dropped):
            log.info("direction statements: left out non-independent %s", ", ".join(dropped))
        res = res[res["independent_report"].astype(bool)]
    parts = res["result_only"].str.split(";", n=1)
    res["direction"] = parts.str[0].str.strip()
    res["detail"] = parts.str[1].fillna("").str.strip()
    cols = [
        "row_id",
        "study_key",
        "group_key",
        "independent_report",
        "outcome",
        "outcome_family",
        "mode",
        "surface",
        "condition",
        "speed_forward_m_s",
        "speed_matching",
        "grade_pct",
        "n",
        "direction",
        "detail",
        "verified",
        "grade_low_pct",
        "grade_high_pct",
        "grade_class",
        "speed_backward_m_s",
        "speed_low_m_s",
        "speed_high_m_s",
        "primary",
        "design",
        "citation_key",
        "result_p_relation",
        "result_p_value",
        "result_significant",
        "energy_basis",
    ]
    out = res[cols].reset_index(drop=True)
    out["result_significant"] = _significance_flags(out["result_significant"])
    return out


_XR_ATTRS = {
    "yi": ("1", "log response ratio ln(backward/forward)"),
    "vi": ("1", "sampling variance of the log response ratio"),
    "pct_change": ("%", "percent change backward vs forward, 100*(B/F - 1)"),
    "v_forward": ("1", "squared coefficient of variation of the forward mean"),
    "v_backward": ("1", "squared coefficient of variation of the backward mean"),
    "r": ("1", "forward-backward correlation used"),
    "n": ("1", "number of subjects"),
    "speed_m_s": ("m/s", "forward speed"),
    "speed_backward_m_s": ("m/s", "backward speed"),
    "speed_mid_m_s": ("m/s", "forward speed, or midpoint of the reported range"),
    "speed_low_m_s": ("m/s", "lowest speed of a reported range"),
    "speed_high_m_s": ("m/s", "highest speed of a reported range"),
    "grade_pct": ("%", "treadmill grade"),
    "grade_low_pct": ("%", "lowest treadmill grade of a value averaged over grades"),
    "grade_high_pct": ("%", "highest treadmill grade of a value averaged over grades"),
    "forward_mean": ("outcome unit", "forward mean"),
    "backward_mean": ("outcome unit", "backward mean"),
    "dispersion_imputed": ("1", "dispersion imputed (True) or reported (False)"),
}


def to_xarray(effects):
    """Effect sizes as an :class:`xarray.Dataset` along dimension ``comparison``.

    Numeric columns become data variables with ``units`` and ``long_name`` attributes;
    text columns (study, outcome, mode, ...) become coordinates.
    """
    import xarray as xr

    from retrosim.units import set_attrs

    eff = effects.reset_index(drop=True)
    ds = xr.Dataset(coords={"comparison": ("comparison", eff["row_id"].to_numpy(dtype=str))})
    set_attrs(ds["comparison"], "1", "comparison (row_id)")
    for col in eff.columns:
        if col == "row_id":
            continue
        if col in _XR_ATTRS:
            values = eff[col].to_numpy(dtype=bool if col == "dispersion_imputed" else float)
            ds[col] = ("comparison", values)
            set_attrs(ds[col], *_XR_ATTRS[col])
        else:
            ds = ds.assign_coords({col: ("comparison", eff[col].astype(str).to_numpy())})
            set_attrs(ds[col], "1", col.replace("_", " "))
    return ds


# --------------------------------------------------------------------------- training, habituation

#: Columns of ``training.csv`` (one row per study x outcome of a backward-training programme).
TRAINING_COLUMNS = {
    "row_id": "key",
    "study_key": "key",
    "citation_key": "key",
    "locator": "str",
    "source_url": "str",
    "verified": "bool",
    "design": "str",
    "population": "str",
    "population_class": "str",
    "intervention": "str",
    "training_mode": "str",
    "control": "str",
    "control_kind": "str",
    "outcome": "str",
    "outcome_class": "str",
    "unit": "str",
    "n_train": "int?",
    "n_control": "int?",
    "train_pre_mean": "float?",
    "train_pre_sd": "float?",
    "train_post_mean": "float?",
    "train_post_sd": "float?",
    "control_pre_mean": "float?",
    "control_pre_sd": "float?",
    "control_post_mean": "float?",
    "control_post_sd": "float?",
    "disp_kind": "str",
    "pct_change_train_reported": "float?",
    "pct_change_control_reported": "float?",
    "result_only": "str",
    "result_p_relation": "str",
    "result_p_value": "float?",
    "result_significant": "str",
    "higher_is_better": "str",
    "notes": "str",
}
TRAINING_DESIGNS = ("rct", "controlled", "uncontrolled")
#: ``passive``: no training or usual activity/care; ``active_forward``: the same dose of forward
#: walking or running; ``none``: no control group.
CONTROL_KINDS = ("passive", "active_forward", "none")
POPULATION_CLASSES = ("trained", "untrained", "clinical")
TRAINING_MODES = ("run", "walk", "run_walk")
OUTCOME_CLASSES = (
    "sprint_jump",
    "running_economy",
    "backward_economy",
    "aerobic_fitness",
    "anaerobic",
    "leg_stiffness",
    "body_composition",
    "balance",
    "gait",
    "flexibility",
    "proprioception",
    "pain_function",
)
#: First word of ``result_only`` in ``training.csv``: a between-group result against the control
#: (``*_vs_control``) or a pre/post result in the training group only (``*_within``).
TRAINING_RESULTS = (
    "improved_vs_control",
    "no_difference_vs_control",
    "worse_vs_control",
    "improved_within",
    "no_change_within",
    "worse_within",
)
_NULL_RESULTS = ("no_difference_vs_control", "no_change_within")

#: Columns of ``habituation.csv`` (one row per study x outcome x session of repeated exposure).
HABITUATION_COLUMNS = {
    "row_id": "key",
    "study_key": "key",
    "citation_key": "key",
    "locator": "str",
    "source_url": "str",
    "verified": "bool",
    "mode": "str",
    "outcome": "str",
    "unit": "str",
    "session": "str",
    "days_from_first": "int?",
    "n": "int?",
    "mean": "float?",
    "disp": "float?",
    "disp_kind": "str",
    "notes": "str",
}


def _read_sourced(path, references, name, columns, required=()):
    """Read table ``name`` of the literature folder and check every row's source columns."""
    folder = Path(path) if path is not None else LITERATURE_DIR
    bib = Path(references) if references is not None else folder.parent / "references.bib"
    bib_keys = load_references(bib)
    st_path = folder / "studies.csv"
    st = _read_table(st_path, STUDY_COLUMNS)
    _check_studies(st, st_path, bib_keys, bib)
    file = folder / name
    df = _read_table(file, columns)
    keys = ("row_id", "study_key", "citation_key", "locator", "source_url", "outcome")
    _check_sources(df, file, st, bib_keys, bib, (*keys, *required))
    return file, df


def _check_sources(df, path, st, bib_keys, bib, required):
    studies = dict(zip(st["study_key"], st["citation_key"], strict=True))
    for col in required:
        for i, v in df[col].items():
            if not v:
                raise _err(f"empty value; every row must say {col}", path, i, col)
    dup = df["row_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _err(f"duplicate row_id {df['row_id'][i]!r}", path, i, "row_id")
    for i, r in df.iterrows():
        _check_row_citation(r, path, i, studies, bib_keys, bib)


def _check_choice(value, choices, path, i, col):
    if value not in choices:
        raise _err(f"unknown value {value!r}; expected one of {', '.join(choices)}", path, i, col)


def load_training(path=None, *, references=None) -> pd.DataFrame:
    """Load and validate ``training.csv``: backward-training programmes, pre/post, with controls.

    One row per study x outcome. ``design`` is ``rct`` (randomised, as the source says),
    ``controlled`` (a control group, allocation not randomised or not stated) or
    ``uncontrolled``; ``control_kind`` (:data:`CONTROL_KINDS`) says what the control did;
    ``outcome_class`` (:data:`OUTCOME_CLASSES`) groups outcomes for the pooled model;
    ``population_class`` is ``trained`` (athletes, runners), ``untrained`` or ``clinical``.
    ``result_only`` starts with one of :data:`TRAINING_RESULTS` ("improved" read in the
    outcome's better direction, ``higher_is_better``), then ``;`` and the source's words; the
    significance columns are coded as in ``comparisons.csv`` (module docstring). Means and SDs
    are empty where the source gives none (every row of the shipped file).

    Parameters
    ----------
    path : path-like, optional
        Folder holding ``training.csv`` and ``studies.csv`` (default ``retrosim/data/literature``).
    references : path-like, optional
        BibTeX file (default ``references.bib`` in the parent of ``path``).

    Returns
    -------
    pandas.DataFrame
        The rows with typed columns plus ``result`` (the first word of ``result_only``),
        ``vs_control`` (a between-group result) and ``result_significant`` as True/False/None.

    Raises
    ------
    retrosim.errors.InputError
        Naming the file, the 1-based data row and the column of the first problem.
    """
    tp, df = _read_sourced(path, references, "training.csv", TRAINING_COLUMNS, ("result_only",))
    for i, r in df.iterrows():
        _check_choice(r["design"], TRAINING_DESIGNS, tp, i, "design")
        _check_choice(r["control_kind"], CONTROL_KINDS, tp, i, "control_kind")
        _check_choice(r["population_class"], POPULATION_CLASSES, tp, i, "population_class")
        _check_choice(r["training_mode"], TRAINING_MODES, tp, i, "training_mode")
        _check_choice(r["outcome_class"], OUTCOME_CLASSES, tp, i, "outcome_class")
        _check_choice(r["higher_is_better"], ("true", "false", ""), tp, i, "higher_is_better")
        _check_choice(r["disp_kind"], ("", *DISP_KINDS), tp, i, "disp_kind")
        for col in ("n_train", "n_control"):
            if pd.notna(r[col]) and r[col] < 1:
                raise _err(f"group size {r[col]} must be >= 1", tp, i, col)
        result = r["result_only"].split(";")[0].strip()
        _check_choice(result, TRAINING_RESULTS, tp, i, "result_only")
        uncontrolled = r["design"] == "uncontrolled"
        if uncontrolled != (r["control_kind"] == "none"):
            raise _err(
                "control_kind 'none' exactly when the design is uncontrolled", tp, i, "control_kind"
            )
        if uncontrolled and result.endswith("_vs_control"):
            raise _err("an uncontrolled study has no result vs control", tp, i, "result_only")
        if uncontrolled and pd.notna(r["n_control"]):
            raise _err("an uncontrolled study has no control group size", tp, i, "n_control")
        _check_training_significance(r, result, tp, i)
        for col in ("pct_change_train_reported", "pct_change_control_reported"):
            _check_range(r[col], -99, 1000, "%", tp, i, col)
    df["result"] = df["result_only"].str.split(";").str[0].str.strip()
    df["vs_control"] = df["result"].str.endswith("_vs_control")
    df["result_significant"] = _significance_flags(df["result_significant"])
    df.index = pd.Index(df["row_id"], name="row")
    return df


def _check_training_significance(r, result, path, i):
    rel, p, sig = r["result_p_relation"], r["result_p_value"], r["result_significant"]
    _check_choice(rel, ("", *P_RELATIONS), path, i, "result_p_relation")
    _check_choice(sig, ("", *SIGNIFICANCE_FLAGS), path, i, "result_significant")
    if (rel == "") != pd.isna(p):
        raise _err(
            "give result_p_relation and result_p_value together, or neither (no p reported)",
            path,
            i,
            "result_p_value" if rel else "result_p_relation",
        )
    if pd.notna(p) and not 0 < p < 1:
        raise _err(f"p value {p:g} outside (0, 1)", path, i, "result_p_value")
    if result in _NULL_RESULTS and sig == "true":
        raise _err(f"{result} is not significant: expected result_significant false or empty",
                   path, i, "result_significant")  # fmt: skip
    if sig == "true" and rel in ("<", "<=", "=") and p > ALPHA:
        raise _err(f"significant with p {rel} {p:g}: expected p at most {ALPHA:g}",
                   path, i, "result_significant")  # fmt: skip
    if sig == "false" and rel in ("<", "<=") and p <= ALPHA:
        raise _err(f"not significant with p {rel} {p:g}: expected result_significant true",
                   path, i, "result_significant")  # fmt: skip


def load_habituation(path=None, *, references=None) -> pd.DataFrame:
    """Load and validate ``habituation.csv``: outcomes over repeated sessions of backward locomotion.

    One row per study x outcome x session (``session`` as the source names it, e.g. "baseline",
    "week 4"; ``days_from_first`` only where the source gives it), with the group mean and its
    dispersion (``disp_kind`` as in ``comparisons.csv``; ``unclear`` for an unlabelled +/-).

    Returns
    -------
    pandas.DataFrame
        Typed rows indexed by ``row_id``.

    Raises
    ------
    retrosim.errors.InputError
        Naming the file, the 1-based data row and the column of the first problem.
    """
    hp, df = _read_sourced(
        path, references, "habituation.csv", HABITUATION_COLUMNS, ("unit", "session")
    )
    for i, r in df.iterrows():
        _check_choice(r["mode"], MODES, hp, i, "mode")
        _check_choice(r["disp_kind"], DISP_KINDS, hp, i, "disp_kind")
        if pd.notna(r["n"]) and r["n"] < 1:
            raise _err(f"sample size {r['n']} must be >= 1", hp, i, "n")
        if pd.notna(r["days_from_first"]) and r["days_from_first"] < 0:
            raise _err("days_from_first must be >= 0 [days]", hp, i, "days_from_first")
        for col in ("mean", "disp"):
            if pd.notna(r[col]) and r[col] < 0:
                raise _err(f"{col} {r[col]:g} must be >= 0 ({r['unit']})", hp, i, col)
        if pd.notna(r["disp"]) == (r["disp_kind"] == "none"):
            raise _err("disp_kind must be 'none' exactly when disp is empty", hp, i, "disp_kind")
    df.index = pd.Index(df["row_id"], name="row")
    return df
