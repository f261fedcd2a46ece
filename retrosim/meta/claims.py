"""Popular claims about backward running, and their verdicts from the pooled evidence.

Each :class:`Claim` names an outcome family, a claimed direction and the numbers it states
(backward relative to forward, in %), its popular sources, and the *readings* under which it can
be checked (per minute or per km at the same speed, at self-selected speeds, knee load per step
or per km, running or walking). Everything a verdict depends on (the claimed range, the reading,
the speed at which it is read, the thresholds) is fixed in this registry before the data are
looked at. :func:`evaluate` turns a fitted :class:`retrosim.meta.model.MetaResult` into one row per
claim × reading; :func:`verdict_vs_speed` gives the same verdict along a speed grid.

Reading the claimed numbers
---------------------------
One rule for every claim: **a stated number stands for the values that round to it** at the
precision it is stated in (``Claim.precision_pct``; all registered claims state multiples of
10 %, so a stated number N stands for N ± 5 percentage points). A bound at zero is the claimed
direction itself and is not widened (an "up to" claim excludes no change). So

* "about 30 % less" reads −35 to −25 %;
* "20–30 % more" reads +15 to +35 % (each end rounds like a single number);
* "up to 30 % more" reads more than 0 and at most +35 %; "up to 80 % less" at least −85 % and
  less than 0;
* "30–80 % less" reads −85 to −25 %; "higher" (no number) reads any increase.

Readings
--------
* ``per_minute_same_speed`` — the pooled ln(backward/forward) at equal speed (energy per
  minute, heart rate).
* ``per_km_same_speed`` (energy) — at equal speed the time per km is equal, so the per-km ratio
  **equals** the per-minute ratio; the posterior is the same.
* ``per_minute_self_selected`` / ``per_km_self_selected`` (energy) — needs comparisons at
  self-selected speeds; per km additionally needs both speeds, since
  ln(per-km ratio) = ln(per-minute ratio) + ln(v_forward / v_backward).
* ``per_step_same_speed`` / ``per_step_self_selected`` (knee) — peak load per step.
* ``knee_per_km_same_speed`` (knee) — per step × steps per km; at equal speed the steps-per-km
  ratio equals the step-frequency ratio, so ln(per-km) = ln(per-step) + ln(step-frequency
  ratio), both from the same joint posterior.
* ``walk_per_minute_same_speed`` — the claim read for backward *walking* at a typical walking
  speed (not the claim as made, which is about running, but where most of the evidence is).
* ``impact_per_step_same_speed`` — the knee-impact claim on impact itself (impact peak, loading
  rate, tibial acceleration: family :data:`IMPACT_FAMILY`). No study in the evidence measures
  it, so it is *not testable with current evidence* until such data exist; the per-step and
  per-km readings of that claim use the closest measured proxy, the peak vertical ground
  reaction force (family ``vgrf``), and say so.

Calories
--------
"Calories" means **gross** energy expenditure: what a sports watch or a treadmill display
shows, resting metabolism included, per minute and per km (kcal/min, kcal/km). Per km at the
same speed is per minute divided by the same speed, so the two ratios are equal. Gross and net
(resting subtracted) ratios differ: adding the same resting rate to both directions makes a
ratio of gross costs **smaller** than the ratio of net costs. When the evidence codes
``energy_basis`` (gross / net / not_stated), :func:`analysis_rows` pools only gross rows as the
``energy`` family the calorie readings use; net rows and rows whose basis is not stated become
their own families (``energy_net``, ``energy_not_stated``) and never mix silently into a
calorie verdict. Without that column every energy row is pooled and the note says so.

Reference speeds
----------------
A verdict is read at a speed named in the registry (:data:`REFERENCE_SPEEDS`), never at the
mean speed of whatever studies are in a family:

* **running** (a typical recreational jogging speed): the preferred running speeds of
  free-living recreational runners, 2.74 m/s for women and 3.25 m/s for men (Selinger et al.
  2022 [1]_, values as reported by New Scientist [2]_); the reference is their midpoint, and the
  verdict is also given at both ends (``verdict_at_low_speed``, ``verdict_at_high_speed``);
* **walking**: the usual outdoor walking pace of healthy adults, 1.31 m/s (95 % CI
  1.27–1.35 m/s; Murtagh et al. 2020 [3]_, abstract).

For a self-selected-speed reading the reference is the forward speed. A family whose rows
share one speed has no speed moderator (the model switches it off), so its verdict is the same
at every speed (``speed_moderated = False``, and the note says so). A reference speed outside
the speeds reported in the family's rows is read along the fitted speed slope and marked
``speed_extrapolated``.

Verdicts
--------
With ``P_in`` = posterior probability that the effect lies in the claimed range, ``P_dir`` =
posterior probability of the claimed direction and ``[lo, hi]`` the 95 % equal-tailed interval
(all of the posterior the claim is judged on, see ``Claim.judged_on``), checked in this order:

* **not testable with current evidence** — no study reports the outcome under this reading
  (e.g. no self-selected-speed energy data, no impact data). No number is guessed.
* **supported** — ``P_in >= 0.5`` and ``P_dir >= 0.95``, from at least two independent studies
  (one study can make a claim at most *plausible*, however narrow its interval).
* **plausible** — ``P_in >= 0.25`` and ``P_dir >= 0.5`` (the claimed direction is at least as
  likely as not: an "up to 80 % less" claim is not plausible when the data point to more,
  merely because "up to" admits small effects).
* **contradicted** — ``P_in < 0.05``: the interval essentially excludes the claimed range.
* **inconclusive** — otherwise, when the interval overlaps the claimed range *and* holds
  clearly different effects: effects in the opposite direction by more than
  :data:`CLEAR_MARGIN_PCT` (10 percentage points; below −10 % for a claimed increase, above
  +10 % for a claimed decrease), or effects beyond the claimed range's far end (the end away
  from zero) by more than that margin. The evidence then cannot tell the claim from its
  opposite or from a much larger effect: not known, rather than wrong.
* **not supported** — otherwise: the claim is neither plausible nor excluded, and the
  interval holds no clearly different effect, so the evidence points to a smaller effect than
  claimed in the claimed direction.

The margin is one rounding unit of the claims' own precision beyond the range those numbers
already stand for (see above).

A verdict whose fit failed the convergence gate (R-hat > 1.01, bulk or tail ESS < 400, or any
divergence) keeps its word but is marked **unreliable** (``reliable = False``).

References
----------
.. [1] J. C. Selinger et al. (co-author list not read), "Running in the wild: Energetics
   explain ecological running speeds", Current Biology 32(10), 2309-2315.e3, 2022.
   doi:10.1016/j.cub.2022.03.076, PMID 35487220 (abstract read; the speed values were read in
   [2]_, the paper's results section could not be read).
.. [2] A. Wilkins, "People instinctively run at their most energy-efficient speed", New
   Scientist, 28 April 2022 (news report of [1]_: "from the outdoor runners ... women run at a
   speed of 2.74 metres per second while men run at 3.25 metres per second").
   https://www.newscientist.com/article/2318050-people-instinctively-run-at-their-most-energy-efficient-speed/
.. [3] E. M. Murtagh, J. L. Mair, E. Aguiar, C. Tudor-Locke, M. H. Murphy, "Outdoor walking
   speeds of apparently healthy adults: a systematic review and meta-analysis", Sports
   Medicine, issue 1, 125-141, 2020 (volume not read). doi:10.1007/s40279-020-01351-3, PMID
   33030707 (abstract: usual pace 1.31 m/s, 95 % CI 1.27-1.35, from 35 studies).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retrosim.meta.model import MODES, MetaResult, to_percent

__all__ = [
    "CLAIMS",
    "READINGS",
    "REFERENCE_SPEEDS",
    "VERDICTS",
    "VOTE_CLAIMS",
    "Claim",
    "Reading",
    "ReferenceSpeed",
    "Source",
    "analysis_rows",
    "analysis_statements",
    "article_citation",
    "article_sources",
    "evaluate",
    "judge_draws",
    "registry_table",
    "verdict",
    "verdict_vs_speed",
]

P_SUPPORTED = 0.5
P_DIRECTION_SUPPORTED = 0.95
P_PLAUSIBLE = 0.25
P_DIRECTION_PLAUSIBLE = 0.5
P_CONTRADICTED = 0.05
MIN_STUDIES_SUPPORTED = 2
#: Interval level of the "clearly different" check [%].
INTERVAL_PCT = 95
#: How far beyond the claimed range (or into the opposite direction) an effect must lie to be
#: "clearly different" from the claim [percentage points].
CLEAR_MARGIN_PCT = 10.0
#: Precision of the registered claims' numbers [percentage points]: each stands for ± half of it.
DEFAULT_PRECISION_PCT = 10.0

NOT_TESTABLE = "not testable with current evidence"
#: Every verdict word, from the strongest support to none.
VERDICTS = (
    "supported",
    "plausible",
    "not supported",
    "inconclusive",
    "contradicted",
    NOT_TESTABLE,
)

STEP_FREQUENCY_FAMILY = "gait:step_frequency_hz"
#: Analysis family of impact measures (impact peak, loading rate, tibial acceleration). No
#: outcome of the evidence vocabulary belongs to it yet, so its readings are not testable.
IMPACT_FAMILY = "impact"
ENERGY_FAMILY = "energy"
#: The energy basis the calorie readings use (see "Calories" in the module docstring).
CALORIE_BASIS = "gross"
JUDGED_ON = ("mean", "new_study")


@dataclass(frozen=True)
class ReferenceSpeed:
    """A typical speed of one mode, read in a cited source.

    Attributes
    ----------
    mode : {'run', 'walk'}
    speed_m_s : float
        The reference speed the verdict is read at [m/s].
    low_m_s, high_m_s : float
        The source's range around it [m/s] (``range_what`` says what it is); verdicts are also
        given at both ends.
    what, range_what, citation, doi, locator : str
        What the speed is, what the range is, the source, its DOI and where the numbers stand.
    """

    mode: str
    speed_m_s: float
    low_m_s: float
    high_m_s: float
    what: str
    range_what: str
    citation: str
    doi: str
    locator: str

    def __post_init__(self):
        if not (0 < self.low_m_s <= self.speed_m_s <= self.high_m_s):
            raise ValueError(f"reference speed {self.mode}: need 0 < low <= speed <= high [m/s]")


# Selinger et al. 2022 via New Scientist (module docstring [1], [2]): preferred speeds [m/s].
_RUN_WOMEN_M_S, _RUN_MEN_M_S = 2.74, 3.25
REFERENCE_SPEEDS = {
    "run": ReferenceSpeed(
        mode="run",
        speed_m_s=(_RUN_WOMEN_M_S + _RUN_MEN_M_S) / 2,
        low_m_s=_RUN_WOMEN_M_S,
        high_m_s=_RUN_MEN_M_S,
        what="typical jogging speed: midpoint of the preferred running speeds of free-living "
        "recreational women and men",
        range_what="women's and men's mean preferred speed",
        citation="Selinger et al. 2022, Current Biology 32(10):2309-2315.e3",
        doi="10.1016/j.cub.2022.03.076",
        locator="speeds as reported by New Scientist, 28 April 2022 (news report of the paper)",
    ),
    "walk": ReferenceSpeed(
        mode="walk",
        speed_m_s=1.31,
        low_m_s=1.27,
        high_m_s=1.35,
        what="typical walking speed: usual outdoor walking pace of healthy adults (meta-analysis)",
        range_what="95 % CI of the pooled mean",
        citation="Murtagh et al. 2020, Sports Medicine (1):125-141",
        doi="10.1007/s40279-020-01351-3",
        locator="abstract (usual pace)",
    ),
}


@dataclass(frozen=True)
class Reading:
    """How a claim is read: speed matching, arithmetic, and (optionally) mode and family.

    ``kind`` is ``'plain'`` (the pooled ratio), ``'per_km'`` (energy per km) or
    ``'knee_per_km'`` (per step × steps per km). ``mode`` and ``family`` default to the
    claim's; ``construct`` labels what is measured when it is a proxy.
    """

    key: str
    label: str
    matching: str
    kind: str = "plain"
    mode: str | None = None
    family: str | None = None
    construct: str = ""


READINGS = {
    r.key: r
    for r in (
        Reading("per_minute_same_speed", "running, per minute, same speed", "same"),
        Reading("per_km_same_speed", "running, per km, same speed", "same", "per_km"),
        Reading(
            "per_minute_self_selected", "running, per minute, self-selected speeds", "self_selected"
        ),
        Reading(
            "per_km_self_selected",
            "running, per km, self-selected speeds",
            "self_selected",
            "per_km",
        ),
        Reading(
            "walk_per_minute_same_speed", "walking, per minute, same speed", "same", mode="walk"
        ),
        Reading("per_step_same_speed", "running, per step, same speed", "same"),
        Reading(
            "per_step_self_selected", "running, per step, self-selected speeds", "self_selected"
        ),
        Reading("knee_per_km_same_speed", "running, per km, same speed", "same", "knee_per_km"),
        Reading(
            "knee_per_km_self_selected",
            "running, per km, self-selected speeds",
            "self_selected",
            "knee_per_km",
        ),
        Reading(
            "impact_per_step_same_speed",
            "running, impact peak or loading rate per step, same speed",
            "same",
            family=IMPACT_FAMILY,
            construct="impact (impact peak, loading rate, tibial acceleration)",
        ),
    )
}


@dataclass(frozen=True)
class Source:
    """Where a claim is made. ``url`` only for pages found with the project's search tools."""

    kind: str
    paraphrase: str
    url: str | None = None


@dataclass(frozen=True)
class Claim:
    """One popular claim.

    Attributes
    ----------
    key, text : str
        Identifier and the claim in our words.
    family : str
        Outcome family of :func:`retrosim.evidence.tables.effect_sizes` it is tested on.
    direction : int
        +1 backward higher than forward, -1 lower.
    stated_low_pct, stated_high_pct : float
        The numbers as the claim states them, as 100 (backward/forward - 1) [%]: "20-30 % more"
        is (20, 30), "about 30 % less" (-30, -30), "up to 80 % less" (-80, 0), "higher" (0,
        inf). :attr:`low_pct` and :attr:`high_pct` give the range they are read as (module
        docstring).
    mode : str
        'run', 'walk' or 'unspecified': the mode the claim is about (a reading may name another).
    readings : tuple of str
        Keys of :data:`READINGS`.
    judged_on : {'mean', 'new_study'}
        What the claim is about, and so which posterior its verdict uses: ``'mean'`` for a
        statement about backward running in general ("backward running burns 30 % more"),
        the pooled mean effect; ``'new_study'`` for a promise to a reader ("you will burn 30 %
        more"), the effect in a new study (prediction). Both are always reported.
    precision_pct : float
        Rounding unit of the stated numbers [percentage points] (10: they are multiples of 10).
    construct : str
        What the family measures when it is only a proxy of what the claim is about.
    """

    key: str
    text: str
    family: str
    direction: int
    stated_low_pct: float
    stated_high_pct: float
    mode: str
    readings: tuple
    sources: tuple = field(default_factory=tuple)
    measure_note: str = ""
    judged_on: str = "mean"
    precision_pct: float = DEFAULT_PRECISION_PCT
    construct: str = ""

    def __post_init__(self):
        if self.judged_on not in JUDGED_ON:
            raise ValueError(f"claim {self.key}: judged_on must be one of {JUDGED_ON}")
        if self.direction not in (-1, 1):
            raise ValueError(f"claim {self.key}: direction must be +1 or -1")
        if self.stated_low_pct > self.stated_high_pct:
            raise ValueError(f"claim {self.key}: stated_low_pct exceeds stated_high_pct")
        for x in (self.stated_low_pct, self.stated_high_pct):
            if np.isfinite(x) and not np.isclose(
                x / self.precision_pct, round(x / self.precision_pct)
            ):
                raise ValueError(
                    f"claim {self.key}: stated number {x:g} % is not a multiple of its "
                    f"precision {self.precision_pct:g} %"
                )
        unknown = set(self.readings) - set(READINGS)
        if unknown:
            raise ValueError(f"claim {self.key}: unknown readings {sorted(unknown)}")

    def _widen(self, x: float, outward: int) -> float:
        if x == 0 or not np.isfinite(x):  # the claimed direction itself, or an open end
            return x
        return x + outward * self.precision_pct / 2

    @property
    def low_pct(self) -> float:
        """Lower end of the claimed range as read (module docstring) [%]."""
        return self._widen(self.stated_low_pct, -1)

    @property
    def high_pct(self) -> float:
        """Upper end of the claimed range as read [%]."""
        return self._widen(self.stated_high_pct, +1)

    def range_text(self) -> str:
        """The range as read, e.g. '+15 to +35 %', '> +0 %', '-85 to < 0 %'."""
        lo, hi = self.low_pct, self.high_pct
        if np.isinf(hi):
            return f"> {lo:+g} %"
        if hi == 0:
            return f"{lo:+g} to < 0 %"
        if lo == 0:
            return f"> 0 to {hi:+g} %"
        return f"{lo:+g} to {hi:+g} %"

    def stated_text(self) -> str:
        """The numbers as stated, e.g. '20 to 30 % more', 'about 30 % less'."""
        word = "more" if self.direction > 0 else "less"
        lo, hi = sorted((abs(self.stated_low_pct), abs(self.stated_high_pct)))
        if np.isinf(hi):
            return "higher" if self.direction > 0 else "lower"
        if lo == hi:
            return f"about {hi:g} % {word}"
        if lo == 0:
            return f"up to {hi:g} % {word}"
        return f"{lo:g} to {hi:g} % {word}"

    def reading(self, key: str) -> Reading:
        return READINGS[key]

    def reading_mode(self, key: str) -> str:
        return READINGS[key].mode or self.mode

    def reading_family(self, key: str) -> str:
        return READINGS[key].family or self.family

    def reference_speed(self, key: str) -> ReferenceSpeed | None:
        """The registry's reference speed of one reading (None for mode 'unspecified')."""
        return REFERENCE_SPEEDS.get(self.reading_mode(key))


ENERGY_READINGS = (
    "per_minute_same_speed",
    "per_km_same_speed",
    "per_minute_self_selected",
    "per_km_self_selected",
    "walk_per_minute_same_speed",
)
KNEE_READINGS = (
    "per_step_same_speed",
    "knee_per_km_same_speed",
    "per_step_self_selected",
    "knee_per_km_self_selected",
)
_NYT = Source(
    "newspaper column (G. Reynolds, New York Times Magazine, 9 Dec 2012; repost read)",
    "running backward needed nearly 30 % more energy than forward at the same speed, with far "
    "less pounding",
    "http://operationbootcampblog.blogspot.com/2012/12/running-in-reverse.html",
)
_CALORIES = (
    "calories = gross energy expenditure (watch or treadmill display), per minute and per km"
)
CLAIMS = (
    Claim(
        key="energy_20_30",
        text="Backward running burns 20-30 % more calories than forward running at the same speed",
        family="energy",
        direction=+1,
        stated_low_pct=20.0,
        stated_high_pct=30.0,
        mode="run",
        readings=ENERGY_READINGS,
        sources=(
            Source(
                "radio-station wellness page (WEBE108, 2024)",
                "reverse running burns 20 to 30 % more calories than running forward",
                "https://www.webe108.com/2024/05/14/webe-wellness-reverse-running/",
            ),
        ),
        measure_note=_CALORIES,
    ),
    Claim(
        key="energy_up_to_30",
        text="Backward running burns up to 30 % more calories",
        family="energy",
        direction=+1,
        stated_low_pct=0.0,
        stated_high_pct=30.0,
        mode="run",
        readings=ENERGY_READINGS,
        sources=(
            Source(
                "popular-science magazine news item (New Scientist, 5 May 2001)",
                "running backwards takes 30 % more energy than forwards (on Wright & Weyand)",
                "https://www.newscientist.com/article/mg17022893-500-when-your-feet-hardly-touch-the-ground/",
            ),
            Source(
                "lifestyle magazine (Chatelaine)",
                "moving backwards burns 30 % more calories",
                "https://www.chatelaine.com/health/fitness/benefits-of-running-backwards/",
            ),
            _NYT,
        ),
        measure_note=_CALORIES,
    ),
    Claim(
        key="knee_stress_30",
        text="Backward running puts about 30 % less stress on the knees",
        family="pfj_force",
        direction=-1,
        stated_low_pct=-30.0,
        stated_high_pct=-30.0,
        mode="run",
        readings=KNEE_READINGS,
        sources=(
            Source(
                "blog summary of the NYT column (sportsgeezer, 2012)",
                "backward running needs 30 % more energy and is much easier on the knees",
                "http://sportsgeezer.com/2012/running-backwards-is-harder-but-softer/",
            ),
        ),
        measure_note="stress read as peak patellofemoral compressive force (contact area not "
        "reported)",
    ),
    Claim(
        key="knee_impact_80",
        text="Backward running reduces knee impact by up to 80 %",
        family="vgrf",
        direction=-1,
        stated_low_pct=-80.0,
        stated_high_pct=0.0,
        mode="run",
        readings=(*KNEE_READINGS, "impact_per_step_same_speed"),
        sources=(
            Source(
                "popular claim; no primary or press source located by the literature survey",
                "knee impact reduced by up to 80 %",
            ),
        ),
        measure_note="the claim is about impact (impact peak, loading rate, tibial "
        "acceleration), which no study in the evidence measures",
        construct="proxy: peak vertical ground reaction force, the closest measured quantity",
    ),
    Claim(
        key="heart_rate_higher",
        text="Heart rate is higher running backward than forward at the same pace",
        family="heart_rate",
        direction=+1,
        stated_low_pct=0.0,
        stated_high_pct=np.inf,
        mode="run",
        readings=(
            "per_minute_same_speed",
            "per_minute_self_selected",
            "walk_per_minute_same_speed",
        ),
        sources=(_NYT,),
    ),
    Claim(
        key="knee_stress_30_80",
        text="Backward running means 30-80 % less knee stress",
        family="pfj_force",
        direction=-1,
        stated_low_pct=-80.0,
        stated_high_pct=-30.0,
        mode="run",
        readings=KNEE_READINGS,
        sources=(
            Source(
                "combination of the '30 %' and 'up to 80 %' knee claims as repeated in "
                "popular articles",
                "30 to 80 % less stress on the knees",
            ),
        ),
        measure_note="stress read as peak patellofemoral compressive force",
    ),
)


# ----------------------------------------------------------------------------------------------
# Claims answered by direction-only evidence (muscles, training, learning phase; issue 17)
# ----------------------------------------------------------------------------------------------
#
# These claims name no number, so they are judged on the sign of a *standardised* effect delta
# (backward minus forward, or training minus control, in units of the between-person SD), pooled
# by :mod:`retrosim.meta.votes` from direction/significance statements. Their rules, stated
# before the data:
#
# * **supported**: P(claimed direction) >= 0.95 from at least two independent studies;
# * **plausible**: P >= 0.75 (or >= 0.95 from one study);
# * **inconclusive**: 0.25 < P < 0.75;
# * **not supported**: 0.05 < P <= 0.25;  **contradicted**: P <= 0.05;
# * **not testable with current evidence**: no usable row under the reading (no number guessed).
#
# Readings, stated before the data: muscle claims are about *running* (``emg_running``, the
# claim as made) and are also read for *walking* (``emg_walking``, where the EMG evidence is; not
# the claim as made); training claims are read for *trained* people (athletes and runners, whom
# the articles address: ``training_trained``) and *untrained* people (``training_untrained``),
# against a passive control (no training or usual activity). Every claim's article sources (file
# name and quoted sentence) come from ``retrosim/data/claims/claim_sources.csv``
# (:func:`article_sources`).

#: Thresholds of the direction-only verdicts (comment above).
P_VOTE_SUPPORTED = 0.95
P_VOTE_PLAUSIBLE = 0.75
P_VOTE_NOT_SUPPORTED = 0.25
#: Probability that one muscle group works harder than the other for a contradiction to be
#: answered in favour of one article ("the data favour A over B").
P_FAVOURS = 0.9
VOTE_READINGS = {
    "emg_running": "running, EMG amplitude backward vs forward",
    "emg_walking": "walking, EMG amplitude backward vs forward (not the claim as made)",
    "training_trained": "trained people (athletes, runners), backward training vs passive control",
    "training_untrained": "untrained people, backward training vs passive control",
    "habituation": "repeated sessions of backward locomotion",
    "none": "no measure in the evidence",
}


@dataclass(frozen=True)
class VoteClaim:
    """A claim judged on the sign of a standardised effect (comment above).

    ``kind`` is ``'direction'`` (P of the claimed sign of one target), ``'per_muscle'`` (one row
    per muscle with data), ``'contradiction'`` (which of two targets is larger), ``'bounded'``
    (a claim the data bound but cannot date or size) or ``'not_testable'``. ``target`` is a
    muscle group (:data:`retrosim.evidence.tables.EMG_MUSCLES`) or a training outcome class
    (:data:`retrosim.evidence.tables.OUTCOME_CLASSES`); ``targets`` the two sides of a
    contradiction.
    """

    key: str
    text: str
    family: str
    kind: str
    readings: tuple = ("none",)
    target: str = ""
    targets: tuple = ()
    direction: int = +1
    note: str = ""

    def __post_init__(self):
        if self.kind not in ("direction", "per_muscle", "contradiction", "bounded", "not_testable"):
            raise ValueError(f"claim {self.key}: unknown kind {self.kind!r}")
        unknown = set(self.readings) - set(VOTE_READINGS)
        if unknown:
            raise ValueError(f"claim {self.key}: unknown readings {sorted(unknown)}")


_EMG = ("emg_running", "emg_walking")
_TRAIN = ("training_trained", "training_untrained")


def _nt(key, text, note):
    return VoteClaim(key, text, "none", "not_testable", note=note)


VOTE_CLAIMS = (
    VoteClaim("muscles_work_harder", "Backward running works different muscles harder than "
              "forward running (per muscle: P that it is more active backward)", "emg",
              "per_muscle", _EMG),
    VoteClaim("muscle_quadriceps_backward", "Backward running works the quadriceps more",
              "emg", "direction", _EMG, target="quadriceps"),
    VoteClaim("muscle_posterior_chain_backward", "Backward running emphasises the glutes and "
              "hamstrings (posterior chain)", "emg", "direction", _EMG, target="posterior_chain",
              note="posterior chain read as gluteus maximus and hamstrings"),
    VoteClaim("muscle_calves_backward", "Backward running works the calves more", "emg",
              "direction", _EMG, target="calves"),
    VoteClaim("muscle_core_backward", "Backward running engages the core (lower back) more",
              "emg", "direction", _EMG, target="trunk_extensors",
              note="core read as the trunk extensors (erector spinae, multifidus, paraspinals); "
              "no abdominal EMG comparison in the evidence"),
    VoteClaim("muscle_focus_c1", "Contradiction C1: backward running shifts the focus to the "
              "quadriceps (000) versus it emphasises the glutes and hamstrings (001, 002)",
              "emg", "contradiction", _EMG, targets=("quadriceps", "posterior_chain")),
    VoteClaim("training_sprint_jump", "Backward training makes you faster and more powerful "
              "in forward running (sprint, jump, change of direction) than no such training",
              "training", "direction", _TRAIN, target="sprint_jump"),
    VoteClaim("training_running_economy", "Backward training makes forward running more "
              "economical", "training", "direction", _TRAIN, target="running_economy"),
    VoteClaim("training_balance", "Backward training improves balance", "training",
              "direction", _TRAIN, target="balance"),
    VoteClaim("training_aerobic_fitness", "Backward training improves aerobic fitness (heart, "
              "lungs)", "training", "direction", _TRAIN, target="aerobic_fitness"),
    VoteClaim("learning_phase_2_3_weeks", "The learning phase of backward running lasts 2-3 "
              "weeks with consistent practice", "habituation", "bounded", ("habituation",)),
    _nt("training_hamstring_strength", "Backward training strengthens the hamstrings and glutes",
        "no training study measured hamstring or gluteal strength (flexibility is not strength)"),
    _nt("training_deceleration", "Backward sprints improve deceleration and defensive footwork",
        "no study measured deceleration"),
    _nt("ankle_loading_lower", "Backward running puts less stress on the ankles",
        "no running ankle-load comparison; the walking plantar-pressure rows give no n and no "
        "significance"),
    _nt("perceived_exertion_higher", "Backward running feels harder (perceived exertion)",
        "no perceived-exertion outcome in the comparisons"),
    _nt("muscle_symmetry", "Backward running improves muscle symmetry", "no measure"),
    _nt("energy_balance_mechanism", "The extra energy cost comes from keeping balance",
        "no study tests the mechanism"),
    _nt("injury_prevention", "Backward running prevents injuries", "no injury-incidence study"),
    _nt("posture", "Backward running improves posture", "no posture outcome"),
    _nt("cognition", "Backward running makes the brain work harder", "no cognitive outcome"),
    _nt("training_dose", "5-10 minutes a few times a week is enough", "no dose-response study"),
    _nt("safety_falls", "Backward running raises the risk of falls", "no fall-incidence study"),
    _nt("training_plateaus", "Backward running breaks training plateaus", "no measure"),
)  # fmt: skip

CLAIM_SOURCES_FILE = "claims/claim_sources.csv"


def article_sources(key: str | None = None) -> pd.DataFrame:
    """The article sentences that make a registry claim (all rows when ``key`` is None).

    Columns of ``retrosim/data/claims/claim_sources.csv``: ``quote_id``, ``article_file``,
    ``article_title``, ``quote``, ``topic``, ``claimed_direction``, ``testable``,
    ``contradiction_group``, ``registry_claim``, ``notes``.

    Raises
    ------
    retrosim.errors.InputError
        If a row maps to a claim key that is not in the registry (file, row, column named).
    """
    from retrosim.config import DATA_DIR
    from retrosim.errors import InputError

    path = DATA_DIR / CLAIM_SOURCES_FILE
    cs = pd.read_csv(path, dtype=str, keep_default_na=False)
    known = {c.key for c in CLAIMS} | {c.key for c in VOTE_CLAIMS}
    for i, k in cs["registry_claim"].items():
        if k and k not in known:
            raise InputError(
                f"unknown registry claim {k!r}", file=path, row=int(i) + 1, column="registry_claim"
            )
    if key is None:
        return cs
    own = cs[cs["registry_claim"] == key]
    vc = {c.key: c for c in VOTE_CLAIMS}.get(key)
    if vc is not None and vc.kind == "contradiction":  # every sentence of the contradiction
        own = cs[cs["contradiction_group"].str.startswith("C1")]
    return own.reset_index(drop=True)


def article_citation(key: str) -> str:
    """``file: "quote"`` for every article sentence of a claim, joined by ``" | "``."""
    return " | ".join(f'{r.article_file}: "{r.quote}"' for r in article_sources(key).itertuples())


def registry_table(claims=CLAIMS) -> pd.DataFrame:
    """Every claim × reading with what it is read as, stated before any data are seen.

    Columns: ``claim``, ``reading_key``, ``reading``, ``family``, ``mode``, ``stated``,
    ``read_as`` (the claimed range as read), ``low_pct``, ``high_pct``, ``speed_ref_m_s``,
    ``speed_ref_low_m_s``, ``speed_ref_high_m_s``, ``speed_ref_source``, ``construct``.
    """
    rows = []
    for c in claims:
        for key in c.readings:
            ref = c.reference_speed(key)
            rows.append(
                {
                    "claim": c.key,
                    "reading_key": key,
                    "reading": READINGS[key].label,
                    "family": c.reading_family(key),
                    "mode": c.reading_mode(key),
                    "stated": c.stated_text(),
                    "read_as": c.range_text(),
                    "low_pct": c.low_pct,
                    "high_pct": c.high_pct,
                    "speed_ref_m_s": ref.speed_m_s if ref else np.nan,
                    "speed_ref_low_m_s": ref.low_m_s if ref else np.nan,
                    "speed_ref_high_m_s": ref.high_m_s if ref else np.nan,
                    "speed_ref_source": f"{ref.citation}, doi:{ref.doi} ({ref.locator})"
                    if ref
                    else "",
                    "construct": READINGS[key].construct or c.construct,
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Analysis rows
# ----------------------------------------------------------------------------------------------

#: Grade classes the claims are about: level locomotion (a grade not stated is taken as level,
#: the usual treadmill and track protocol). :func:`analysis_rows` keeps graded comparisons too
#: (the meta-regression's ``b_grade`` carries them to grade 0, where the claims are read; the
#: direction-only uphill results of Hooper 2004 need the GHK parameterisation of censored rows
#: of :class:`retrosim.meta.model.MarginalDensity`, without which NUTS diverged);
#: :func:`analysis_statements` (the statements' summary) still keeps these classes only.
LEVEL_GRADES = ("level", "not_stated")
#: Surfaces whose comparisons stay out of the analysis: none. Underwater rows (buoyancy and water
#: drag make it a different task from land locomotion) enter with their own shift of the ln
#: ratio, the meta-regression's ``b_underwater``, and every claim is read on land;
#: ``excluded_surfaces=("underwater",)`` leaves them out (the sensitivity analysis of
#: ``studies/direction_evidence.py``).
EXCLUDED_SURFACES: tuple[str, ...] = ()


def _split_energy_basis(df: pd.DataFrame) -> pd.DataFrame:
    """Energy rows not on the calorie basis become their own family (module docstring)."""
    if "energy_basis" not in df.columns:
        return df
    energy = df["outcome_family"].astype(str) == ENERGY_FAMILY
    basis = df["energy_basis"].astype(object).where(df["energy_basis"].notna(), "not_stated")
    basis = basis.astype(str).str.strip().replace("", "not_stated")
    other = energy & (basis != CALORIE_BASIS)
    df.loc[other, "outcome_family"] = ENERGY_FAMILY + "_" + basis[other]
    return df


def _analysis_filter(
    df: pd.DataFrame, *, level_only: bool = True, excluded_surfaces=EXCLUDED_SURFACES
) -> pd.DataFrame:
    """Level locomotion (unless ``level_only=False``) on land (unless ``excluded_surfaces``
    says otherwise), only the step frequency of the gait outcomes, energy bases apart."""
    if level_only and "grade_class" in df.columns:
        df = df[df["grade_class"].isin(LEVEL_GRADES)]
    if "surface" in df.columns:
        df = df[~df["surface"].isin(tuple(excluded_surfaces))]
    gait = df["outcome_family"] == "gait"
    keep = ~gait | (df["outcome"] == STEP_FREQUENCY_FAMILY.split(":", 1)[1])
    return _split_energy_basis(df[keep].reset_index(drop=True).copy())


def analysis_rows(effects: pd.DataFrame, *, excluded_surfaces=EXCLUDED_SURFACES) -> pd.DataFrame:
    """The effect sizes the claims model uses.

    Keeps one row per study, condition and outcome (``primary`` rows where the column exists:
    e.g. VO2 in mL/kg/min, not also VO2 in %VO2max of the same people) at every treadmill
    grade: uphill and downhill rows enter with their grade (``grade_pct``, or the midpoint
    and spread of ``grade_low_pct``..``grade_high_pct`` for a value averaged over grades such
    as Rasica 2020's), and the model's grade coefficient ``b_grade`` carries them to level
    ground, where every claim is read (:func:`evaluate` takes the effect at grade 0). Underwater
    rows (Masumoto 2007, 2009: direction-only reports) enter too, with the model's own shift
    ``b_underwater`` for them (buoyancy and water drag make underwater walking a different task
    from the land locomotion the claims describe), and the claims are read on land; rows on
    ``excluded_surfaces`` (default :data:`EXCLUDED_SURFACES`, none) stay out. From the gait
    family only the step frequency needed for per-km knee readings is kept. Where
    ``energy_basis`` exists, energy rows that are not gross move to the families
    ``energy_net`` / ``energy_not_stated``
    (module docstring, "Calories"). Applied to the direction statements as well
    (:func:`retrosim.meta.verdicts.fit_evidence`).
    """
    df = effects.copy()
    if "primary" in df.columns:
        df = df[df["primary"].astype(bool)]
    return _analysis_filter(df, level_only=False, excluded_surfaces=excluded_surfaces)


def analysis_statements(statements: pd.DataFrame | None) -> pd.DataFrame | None:
    """The direction statements of the analysis: the same filters as :func:`analysis_rows`
    (level locomotion on land, step frequency only from gait, energy bases apart)."""
    if statements is None or statements.empty:
        return statements
    return _analysis_filter(statements.copy())


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------


def _opposite(ci_low_pct, ci_high_pct, claim) -> bool:
    """The interval holds the opposite direction by more than :data:`CLEAR_MARGIN_PCT`."""
    m = CLEAR_MARGIN_PCT
    return bool(ci_low_pct < -m) if claim.direction > 0 else bool(ci_high_pct > m)


def _beyond(ci_low_pct, ci_high_pct, claim) -> bool:
    """The interval reaches beyond the claimed range's far end by more than the margin."""
    m = CLEAR_MARGIN_PCT
    if claim.direction > 0:
        return bool(np.isfinite(claim.high_pct) and ci_high_pct > claim.high_pct + m)
    return bool(np.isfinite(claim.low_pct) and ci_low_pct < claim.low_pct - m)


def clearly_different(ci_low_pct: float, ci_high_pct: float, claim: Claim) -> bool:
    """Whether the interval ``[ci_low_pct, ci_high_pct]`` [%] holds effects clearly different
    from the claim: in the opposite direction by more than :data:`CLEAR_MARGIN_PCT`, or beyond
    the claimed range's far end (away from zero) by more than that margin."""
    return _opposite(ci_low_pct, ci_high_pct, claim) or _beyond(ci_low_pct, ci_high_pct, claim)


def overlaps(ci_low_pct: float, ci_high_pct: float, claim: Claim) -> bool:
    """Whether the interval [%] overlaps the claimed range as read."""
    return bool(ci_low_pct <= claim.high_pct and ci_high_pct >= claim.low_pct)


def verdict(
    p_in: float,
    p_dir: float,
    n_studies: int = MIN_STUDIES_SUPPORTED,
    *,
    interval: tuple[float, float] | None = None,
    claim: Claim | None = None,
) -> str:
    """Verdict word from the documented thresholds (module docstring).

    ``interval`` (the 95 % interval on the % scale) and ``claim`` are needed to tell
    *inconclusive* from *not supported*; without them that class cannot be given.
    """
    if (
        p_in >= P_SUPPORTED
        and p_dir >= P_DIRECTION_SUPPORTED
        and n_studies >= MIN_STUDIES_SUPPORTED
    ):
        return "supported"
    if p_in >= P_PLAUSIBLE and p_dir >= P_DIRECTION_PLAUSIBLE:
        return "plausible"
    if p_in < P_CONTRADICTED:
        return "contradicted"
    if interval is not None and claim is not None:
        lo, hi = interval
        if overlaps(lo, hi, claim) and clearly_different(lo, hi, claim):
            return "inconclusive"
    return "not supported"


def _rows_for(frame, family, matching, mode):
    rows = frame[(frame["family"] == family) & (frame["speed_matching"] == matching)]
    if mode in ("run", "walk"):
        rows = rows[rows["mode"].isin([mode, "unspecified"])]
    return rows


def _counts(rows):
    n_studies = int(rows["study_key"].nunique())
    n_part = int(rows.groupby("group_key")["n"].max().fillna(0).sum()) if len(rows) else 0
    return n_studies, n_part


def reported_speeds(rows: pd.DataFrame) -> np.ndarray:
    """Speeds the rows report [m/s]: a forward speed, or the midpoint and ends of a reported
    range (never a speed the model filled in for a row that reports none)."""
    parts = []
    for col in ("speed_m_s", "speed_mid_m_s", "speed_low_m_s", "speed_high_m_s"):
        if col in rows.columns:
            parts.append(pd.to_numeric(rows[col], errors="coerce").to_numpy(float))
    if not parts:
        return np.array([])
    v = np.concatenate(parts)
    return v[np.isfinite(v)]


def _family_speed_span(frame, family):
    v = reported_speeds(frame[frame["family"] == family])
    return (float(v.min()), float(v.max())) if v.size else (np.nan, np.nan)


def _reading_draws(
    result: MetaResult,
    claim: Claim,
    reading: str,
    speed_m_s: float | None,
    *,
    new_study=False,
):
    """(draws of ln ratio or None, rows used, note) of one reading at one speed.

    ``new_study``: draws of the effect in a new study (prediction) instead of the mean effect.
    """
    effect = result.predictive_draws if new_study else result.effect_draws
    rd = READINGS[reading]
    matching, kind = rd.matching, rd.kind
    family, mode = claim.reading_family(reading), claim.reading_mode(reading)
    frame = result.design.frame
    if family not in result.design.families:
        if family == IMPACT_FAMILY:
            why = (
                "no study in the evidence reports impact peak, loading rate or tibial acceleration"
            )
        else:
            why = f"no {family} data"
        return None, frame.iloc[:0], why
    rows = _rows_for(frame, family, matching, mode)
    if rows.empty:
        return (
            None,
            rows,
            f"no {mode} {family} comparison at {matching.replace('_', '-')} speeds",
        )
    kw = {"mode": mode, "matching": matching, "speed_m_s": speed_m_s}
    draws = effect(family, **kw)
    note = ""
    if kind == "per_km" and matching == "same":
        note = "equal speed: per-km ratio = per-minute ratio"
    elif kind == "per_km":
        vb = rows.get("speed_backward_m_s", pd.Series(np.nan, index=rows.index)).astype(float)
        vf = pd.to_numeric(rows.get("speed_m_s", pd.Series(np.nan, index=rows.index)), "coerce")
        both = np.isfinite(vf) & np.isfinite(vb)
        if not both.any():
            return None, rows, "per km at self-selected speeds needs both speeds; not reported"
        draws = draws + float(np.mean(np.log(vf[both] / vb[both])))
        note = "per km = per minute x v_forward / v_backward (observed speeds)"
    elif kind == "knee_per_km":
        if matching != "same":
            return (
                None,
                rows,
                "per km at self-selected speeds needs step frequency and both speeds; not reported",
            )
        if STEP_FREQUENCY_FAMILY not in result.design.families:
            return None, rows, "per km needs step-frequency data; none"
        sf_rows = _rows_for(frame, STEP_FREQUENCY_FAMILY, matching, mode)
        if sf_rows.empty:
            return None, rows, "no same-speed step-frequency data"
        sf = effect(STEP_FREQUENCY_FAMILY, mode=mode, matching="same", speed_m_s=speed_m_s)
        draws = draws + sf
        rows = pd.concat([rows, sf_rows])
        note = "per step + step-frequency ratio (steps per km at equal speed)"
    return draws, rows, note


def _probabilities(pct: np.ndarray, claim: Claim) -> tuple[float, float]:
    """(P(claimed direction), P(claimed range)) of draws on the % scale."""
    p_dir = float(np.mean(pct * claim.direction > 0))
    inside = (pct >= claim.low_pct) & (pct <= claim.high_pct)
    if claim.low_pct == 0:  # "more": no change is not part of the claim
        inside &= pct > 0
    if claim.high_pct == 0:  # "less"
        inside &= pct < 0
    return p_dir, float(np.mean(inside))


def judge_draws(pct: np.ndarray, pct_new: np.ndarray | None, claim: Claim, n_studies: int) -> dict:
    """Probabilities, intervals and the verdict of one reading from its draws.

    Parameters
    ----------
    pct, pct_new : numpy.ndarray
        Draws of the mean effect and of the effect in a new study, 100 (backward/forward - 1)
        [%] (``pct_new`` None: the mean effect's draws stand in for both).
    claim : Claim
    n_studies : int
        Independent studies behind the reading.

    Returns
    -------
    dict
        ``median_pct``, ``ci_low_pct``, ``ci_high_pct``, ``pred_low_pct``, ``pred_high_pct``,
        ``p_direction``, ``p_in_range`` (of the posterior the claim is judged on),
        ``p_in_range_mean``, ``p_in_range_new_study``, ``verdict`` and ``verdict_basis``.
    """
    pct = np.asarray(pct, float)
    pct_new = pct if pct_new is None else np.asarray(pct_new, float)
    p_dir_mean, p_in_mean = _probabilities(pct, claim)
    p_dir_new, p_in_new = _probabilities(pct_new, claim)
    lo, med, hi = np.quantile(pct, [0.025, 0.5, 0.975])
    plo, phi = np.quantile(pct_new, [0.025, 0.975])
    if claim.judged_on == "mean":
        p_dir, p_in, interval = p_dir_mean, p_in_mean, (lo, hi)
    else:
        p_dir, p_in, interval = p_dir_new, p_in_new, (plo, phi)
    word = verdict(p_in, p_dir, n_studies, interval=interval, claim=claim)
    return {
        "median_pct": float(med),
        "ci_low_pct": float(lo),
        "ci_high_pct": float(hi),
        "pred_low_pct": float(plo),
        "pred_high_pct": float(phi),
        "p_direction": p_dir,
        "p_in_range": p_in,
        "p_in_range_mean": p_in_mean,
        "p_in_range_new_study": p_in_new,
        "verdict": word,
        "verdict_basis": _basis(word, p_in, p_dir, interval, claim, n_studies),
    }


def _basis(word, p_in, p_dir, interval, claim, n_studies) -> str:
    """Why the verdict is what it is, in one line."""
    lo, hi = interval
    iv = f"{INTERVAL_PCT} % interval {lo:+.0f} to {hi:+.0f} %"
    if word == "supported":
        return f"P(range) {p_in:.2f} >= {P_SUPPORTED}, P(direction) {p_dir:.2f} >= {P_DIRECTION_SUPPORTED}"
    if word == "plausible":
        extra = (
            f" (supported needs {MIN_STUDIES_SUPPORTED} studies)"
            if n_studies < MIN_STUDIES_SUPPORTED and p_in >= P_SUPPORTED
            else ""
        )
        return f"P(range) {p_in:.2f} >= {P_PLAUSIBLE}, P(direction) {p_dir:.2f}{extra}"
    if word == "contradicted":
        return f"P(range) {p_in:.2f} < {P_CONTRADICTED}: {iv} excludes the claimed range"
    if word == "inconclusive":
        what, m = [], CLEAR_MARGIN_PCT
        if _opposite(lo, hi, claim):
            what.append(f"the opposite direction beyond {m:g} %")
        if _beyond(lo, hi, claim):
            what.append(f"effects more than {m:g} points beyond the claimed range")
        return f"{iv} holds the claimed range and " + " and ".join(what)
    return f"P(range) {p_in:.2f}: {iv} lies mostly between no change and the claimed range"


def _speed_info(result, claim, reading, ref):
    """(speed moderated?, extrapolated?, note) of a reading at its reference speed."""
    family = claim.reading_family(reading)
    d = result.design
    if family not in d.families or ref is None:
        return False, False, ""
    families = [family]
    if READINGS[reading].kind == "knee_per_km" and STEP_FREQUENCY_FAMILY in d.families:
        families.append(STEP_FREQUENCY_FAMILY)
    moderated = any(bool(d.has_speed[d.families.index(f)]) for f in families)
    if not moderated:
        return False, False, "no speed moderator in this family: the same verdict at every speed"
    lo, hi = _family_speed_span(d.frame, family)
    extrap = not (lo - 1e-9 <= ref.speed_m_s <= hi + 1e-9)
    note = f"reported speeds {lo:.2f}-{hi:.2f} m/s"
    if extrap:
        note += f"; {ref.speed_m_s:.2f} m/s is an extrapolation along the fitted speed slope"
    return True, extrap, note


def _energy_note(result, claim, reading):
    if claim.reading_family(reading) != ENERGY_FAMILY:
        return ""
    frame = result.design.frame
    if "energy_basis" not in frame.columns:
        return "energy basis not coded in the evidence: gross and net rows pooled"
    return f"{CALORIE_BASIS} energy rows only (net and unstated bases pooled apart)"


def _proxy_note(result, claim, reading):
    construct = READINGS[reading].construct or claim.construct
    if not construct or READINGS[reading].family:
        return ""
    frame = result.design.frame
    rows = frame[frame["family"] == claim.reading_family(reading)]
    outcomes = ", ".join(sorted(set(rows["outcome"].astype(str)))) or "none"
    studies = ", ".join(sorted(set(rows["study_key"].astype(str)))) or "none"
    return f"{construct} ({outcomes}; {studies})"


def _evaluate_reading(result, claim, reading, speed_m_s, n_studies_rows=None):
    """Row of one claim × reading at one speed (no counts, notes or votes)."""
    draws, rows, note = _reading_draws(result, claim, reading, speed_m_s)
    if draws is None:
        return None, rows, note
    pred = _reading_draws(result, claim, reading, speed_m_s, new_study=True)[0]
    n_studies = _counts(rows)[0] if n_studies_rows is None else n_studies_rows
    return judge_draws(to_percent(draws), to_percent(pred), claim, n_studies), rows, note


_EMPTY = {
    "median_pct": np.nan,
    "ci_low_pct": np.nan,
    "ci_high_pct": np.nan,
    "pred_low_pct": np.nan,
    "pred_high_pct": np.nan,
    "p_direction": np.nan,
    "p_in_range": np.nan,
    "p_in_range_mean": np.nan,
    "p_in_range_new_study": np.nan,
    "verdict": NOT_TESTABLE,
    "verdict_basis": "",
}


def _direction_votes(statements: pd.DataFrame | None, claim: Claim, reading: str) -> str:
    st = analysis_statements(statements)
    if st is None or st.empty:
        return ""
    rd = READINGS[reading]
    mode = claim.reading_mode(reading)
    fam = st["outcome_family"] == claim.reading_family(reading)
    st = st[fam & (st["speed_matching"] == rd.matching)]
    if mode in ("run", "walk"):
        st = st[st["mode"].isin([mode, "unspecified"])]
    if st.empty:
        return ""
    c = st["direction"].value_counts()
    return f"{c.get('backward>forward', 0)}>/{c.get('no_difference', 0)}=/{c.get('backward<forward', 0)}<"


def _check_claims(claims):
    for c in claims:
        for key in c.readings:
            if c.reading_mode(key) not in MODES:
                raise ValueError(f"claim {c.key}: unknown mode {c.reading_mode(key)!r}")


def evaluate(
    result: MetaResult, claims=CLAIMS, *, statements: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per claim × reading with the effect, probabilities, support and verdict.

    Every reading is read at its registry reference speed (:data:`REFERENCE_SPEEDS`).

    Columns: ``claim``, ``reading``, ``reading_key``, ``mode``, ``family``, ``claimed`` (the
    range as read), ``stated`` (as stated), ``median_pct``, ``ci_low_pct``, ``ci_high_pct``
    (95 % equal-tailed interval of the mean effect), ``pred_low_pct``, ``pred_high_pct`` (95 %
    prediction interval: the effect in a new study), ``p_in_range_mean``,
    ``p_in_range_new_study``, ``judged_on`` (which of the two the verdict uses, see
    :class:`Claim`), ``p_direction``, ``p_in_range`` (of that one), ``n_studies``,
    ``n_participants``, ``speed_ref_m_s``, ``speed_ref_low_m_s``, ``speed_ref_high_m_s``,
    ``speed_ref_source``, ``speed_moderated``, ``speed_extrapolated``, ``verdict``,
    ``verdict_basis`` (why), ``verdict_at_low_speed``, ``verdict_at_high_speed`` (at the ends
    of the reference range), ``reliable``, ``construct``, ``note``, ``direction_votes``
    (result-only statements: backward>forward / no difference / backward<forward, from
    :func:`retrosim.evidence.tables.direction_statements`).
    """
    _check_claims(claims)
    out = []
    for c in claims:
        for reading in c.readings:
            rd = READINGS[reading]
            ref = c.reference_speed(reading)
            v_ref = ref.speed_m_s if ref else None
            judged, rows, note = _evaluate_reading(result, c, reading, v_ref)
            n_studies, n_part = _counts(rows) if len(rows) else (0, 0)
            moderated, extrap, speed_note = _speed_info(result, c, reading, ref)
            row = {
                "claim": c.key,
                "claim_text": c.text,
                "family": c.reading_family(reading),
                "mode": c.reading_mode(reading),
                "reading": rd.label,
                "reading_key": reading,
                "claimed": c.range_text(),
                "stated": c.stated_text(),
                "speed_ref_m_s": v_ref if v_ref is not None else np.nan,
                "speed_ref_low_m_s": ref.low_m_s if ref else np.nan,
                "speed_ref_high_m_s": ref.high_m_s if ref else np.nan,
                "speed_ref_source": f"{ref.citation} ({ref.locator})" if ref else "",
                "speed_moderated": moderated,
                "speed_extrapolated": extrap,
                "direction_votes": _direction_votes(statements, c, reading),
                "construct": rd.construct or c.construct,
                "n_studies": n_studies,
                "n_participants": n_part,
            }
            if judged is None:
                row.update(
                    _EMPTY,
                    verdict_at_low_speed=NOT_TESTABLE,
                    verdict_at_high_speed=NOT_TESTABLE,
                    reliable=True,
                    note="; ".join(x for x in (note, c.measure_note) if x),
                )
            else:
                ends = [
                    _evaluate_reading(result, c, reading, v, n_studies)[0]["verdict"]
                    if ref
                    else judged["verdict"]
                    for v in ((ref.low_m_s, ref.high_m_s) if ref else (None, None))
                ]
                notes = (
                    note,
                    _proxy_note(result, c, reading),
                    _energy_note(result, c, reading),
                    speed_note,
                    c.measure_note,
                )
                row.update(
                    judged,
                    verdict_at_low_speed=ends[0],
                    verdict_at_high_speed=ends[1],
                    reliable=bool(result.converged),
                    note="; ".join(x for x in notes if x),
                )
            row["judged_on"] = c.judged_on
            out.append(row)
    return pd.DataFrame(out)


def speed_grid(result: MetaResult, mode: str, claims=CLAIMS, step_m_s: float = 0.05) -> np.ndarray:
    """Speeds [m/s] spanning the evidence of one mode for the claims' families, and the
    reference range of that mode, in steps of ``step_m_s`` (the reference speed included)."""
    frame = result.design.frame
    fams = {c.reading_family(k) for c in claims for k in c.readings if c.reading_mode(k) == mode}
    rows = frame[frame["family"].isin(fams) & frame["mode"].isin([mode, "unspecified"])]
    v = reported_speeds(rows)
    ref = REFERENCE_SPEEDS[mode]
    lo = min([ref.low_m_s, *v]) if v.size else ref.low_m_s
    hi = max([ref.high_m_s, *v]) if v.size else ref.high_m_s
    lo, hi = np.floor(lo / step_m_s) * step_m_s, np.ceil(hi / step_m_s) * step_m_s
    grid = np.arange(lo, hi + step_m_s / 2, step_m_s)
    return np.unique(np.round(np.concatenate([grid, [ref.speed_m_s]]), 6))


def verdict_vs_speed(
    result: MetaResult, claims=CLAIMS, *, speeds: dict | None = None
) -> pd.DataFrame:
    """The verdict of every testable claim × reading as a function of speed.

    Parameters
    ----------
    result : MetaResult
    claims : sequence of Claim
    speeds : dict, optional
        ``{mode: array of speeds [m/s]}``; default :func:`speed_grid` per mode.

    Returns
    -------
    pandas.DataFrame
        One row per claim × reading × speed: ``claim``, ``reading_key``, ``mode``, ``family``,
        ``speed_m_s``, the columns of :func:`evaluate`'s probabilities, intervals and verdict,
        ``is_reference`` (the registry's reference speed), ``in_reference_range``,
        ``speed_moderated`` and ``extrapolated`` (outside the speeds the family's rows report,
        or any speed of a family with no reported speed).
    """
    _check_claims(claims)
    grids = speeds or {}
    out = []
    frame = result.design.frame
    for c in claims:
        for reading in c.readings:
            mode = c.reading_mode(reading)
            ref = c.reference_speed(reading)
            if ref is None:
                continue
            family = c.reading_family(reading)
            grid = np.asarray(grids.get(mode, speed_grid(result, mode, claims)), float)
            lo, hi = _family_speed_span(frame, family)
            moderated = _speed_info(result, c, reading, ref)[0]
            n_studies = None
            for v in grid:
                judged, rows, _ = _evaluate_reading(result, c, reading, float(v), n_studies)
                if judged is None:
                    break
                n_studies = _counts(rows)[0]
                out.append(
                    {
                        "claim": c.key,
                        "reading_key": reading,
                        "reading": READINGS[reading].label,
                        "mode": mode,
                        "family": family,
                        "speed_m_s": float(v),
                        **judged,
                        "n_studies": n_studies,
                        "is_reference": bool(np.isclose(v, ref.speed_m_s)),
                        "in_reference_range": bool(ref.low_m_s - 1e-9 <= v <= ref.high_m_s + 1e-9),
                        "speed_moderated": moderated,
                        "extrapolated": bool(not (lo - 1e-9 <= v <= hi + 1e-9)),
                        "judged_on": c.judged_on,
                        "reliable": bool(result.converged),
                    }
                )
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------
# Outputs: forest plots, NetCDF (DataTree) and CSV
# ----------------------------------------------------------------------------------------------


def forest_plot(result: MetaResult, family: str, path, verdict_rows: pd.DataFrame | None = None):
    """Forest plot of one family: each effect size with its 95 % interval (at the default r)
    and the pooled posterior mean effect at the family's mean speed (diamond), on the % scale."""
    # A Figure without pyplot: no backend switch, nothing left open in a notebook session.
    from matplotlib.figure import Figure

    from retrosim._io import atomic_path

    frame = result.design.frame
    rows = frame[(frame["family"] == family) & np.isfinite(frame["yi"].astype(float))]
    y = rows["yi"].to_numpy(float)
    se = np.sqrt(rows["vi"].to_numpy(float))
    labels = [
        f"{r.study_key}: {r.outcome} ({r['mode']}, {r.speed_matching.replace('_', '-')}"
        + (f", {r.speed_used_m_s:.2f} m/s" if np.isfinite(r.speed_used_m_s) else "")
        + ")"
        for _, r in rows.iterrows()
    ]
    pooled = {}
    for matching in ("same", "self_selected"):
        if (rows["speed_matching"] == matching).any():
            d = to_percent(result.effect_draws(family, mode="unspecified", matching=matching))
            pooled[matching] = np.quantile(d, [0.025, 0.5, 0.975])
    n = len(rows) + len(pooled)
    fig = Figure(figsize=(9, 1.2 + 0.38 * n))
    ax = fig.subplots()
    ypos = np.arange(n)[::-1]
    for i in range(len(rows)):
        lo, hi = to_percent(y[i] - 1.96 * se[i]), to_percent(y[i] + 1.96 * se[i])
        ax.plot([lo, hi], [ypos[i]] * 2, color="0.3", lw=1.2)
        ax.plot(to_percent(y[i]), ypos[i], "s", color="C0", ms=5)
    for j, (matching, (lo, med, hi)) in enumerate(pooled.items()):
        k = len(rows) + j
        yy = ypos[k]
        ax.fill([lo, med, hi, med], [yy, yy + 0.3, yy, yy - 0.3], color="C3", alpha=0.8)
        labels.append(f"pooled mean, {matching.replace('_', '-')} speed (posterior 95 %)")
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set_xlabel("backward vs forward [%]")
    ax.set_title(
        f"{family}: effect sizes and pooled posterior"
        + ("" if result.converged else " (UNRELIABLE fit)")
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path


def write_outputs(
    result: MetaResult,
    verdicts: pd.DataFrame,
    ppc_rows: pd.DataFrame,
    out,
    *,
    extra=None,
    seed=None,
):
    """Write ``claims.nc`` (DataTree: posterior, sample_stats, observed_data, verdicts,
    posterior_predictive_check), ``claims.csv`` and ``forest_<family>.png`` into ``out``."""
    from pathlib import Path

    import xarray as xr

    from retrosim._io import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    csv = out / "claims.csv"
    with atomic_path(csv) as tmp:
        verdicts.to_csv(tmp, index=False)
    paths.append(csv)
    tree = result.idata.copy()
    v = verdicts.copy()
    for col in v.columns:
        if v[col].dtype == object:
            v[col] = v[col].astype(str)
    for col in ("reliable", "speed_moderated", "speed_extrapolated"):
        if col in v.columns:
            v[col] = v[col].astype(int)
    vds = xr.Dataset.from_dataframe(v.reset_index(drop=True).rename_axis("verdict_row"))
    units = {
        "median_pct": "%",
        "ci_low_pct": "%",
        "ci_high_pct": "%",
        "pred_low_pct": "%",
        "pred_high_pct": "%",
        "speed_ref_m_s": "m/s",
        "speed_ref_low_m_s": "m/s",
        "speed_ref_high_m_s": "m/s",
        "p_direction": "1",
        "p_in_range": "1",
        "p_in_range_mean": "1",
        "p_in_range_new_study": "1",
    }
    for name, u in units.items():
        vds[name].attrs.update(units=u, long_name=name.replace("_", " "))
    tree["verdicts"] = xr.DataTree(vds)
    p = ppc_rows.copy()
    p["row_id"] = p["row_id"].astype(str)
    p["family"] = p["family"].astype(str)
    p["inside_95"] = p["inside_95"].astype(int)
    tree["posterior_predictive_check"] = xr.DataTree(
        xr.Dataset.from_dataframe(p.set_index("row_id"))
    )
    for name, df in (extra or {}).items():
        d = df.copy()
        for col in d.columns:
            if d[col].dtype == object:
                d[col] = d[col].astype(str)
            if d[col].dtype == bool:
                d[col] = d[col].astype(int)
        tree[name] = xr.DataTree(
            xr.Dataset.from_dataframe(d.reset_index(drop=True).rename_axis("k"))
        )
        extra_csv = out / f"claims_{name}.csv"
        with atomic_path(extra_csv) as tmp:
            df.to_csv(tmp, index=False)
        paths.append(extra_csv)
    pri = result.priors
    tree.attrs.update(
        title="retrosim claims: Bayesian meta-analysis of backward vs forward effect sizes",
        converged=int(result.converged),
        diagnostics=str(result.diagnostics),
        robust=int(result.robust),
        seed=-1 if seed is None else int(seed),
        priors=", ".join(
            f"{k}={v:g}" if not isinstance(v, str) else f"{k}={v}" for k, v in pri.__dict__.items()
        ),
    )
    for node in tree.subtree:
        for k, val in list(node.attrs.items()):
            if isinstance(val, dict | list | tuple | bool) or val is None:
                node.attrs[k] = str(val)
    nc = out / "claims.nc"
    with atomic_path(nc) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")
    paths.append(nc)
    for family in result.design.families:
        if family.startswith("gait:"):
            continue
        paths.append(forest_plot(result, family, out / f"forest_{family}.png", verdicts))
    return paths
