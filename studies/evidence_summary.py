"""Table 1: the evidence dataset by outcome family (studies, comparisons, participants, speeds)."""

from __future__ import annotations

import _common

INPUTS = ["retrosim/data/literature", "retrosim/data/references.bib", "retrosim.evidence.tables"]
OUTPUTS = ["results/tables/evidence_summary.csv", "results/values/evidence_summary.json"]

FAMILY_LABELS = {
    "energy": "Energy (VO2, cost, rate)",
    "heart_rate": "Heart rate",
    "pfj_force": "Patellofemoral force",
    "knee_force": "Knee compressive force",
    "knee_moment": "Knee extensor moment",
    "vgrf": "Ground reaction force",
    "knee_adduction": "Knee adduction moment",
    "gait": "Gait variables",
}


def _speed_range(df):
    lo = df[["speed_m_s", "speed_backward_m_s"]].min(axis=None)
    hi = df[["speed_m_s", "speed_backward_m_s"]].max(axis=None)
    if lo != lo:  # NaN: no speed reported
        return "not reported"
    return f"{lo:.1f}–{hi:.1f}" if hi > lo else f"{lo:.1f}"


def main() -> None:
    log = _common.setup("evidence_summary")
    import pandas as pd

    from retrosim.evidence import tables as evidence

    data = evidence.load()
    effects = evidence.effect_sizes()
    # every result-only row of the dataset (the claims count independent reports only)
    statements = evidence.direction_statements(independent_only=False)
    rows = []
    values = {"families": {}}
    for family in [f for f in FAMILY_LABELS if f in set(data["outcome_family"])]:
        d = data[data["outcome_family"] == family]
        e = effects[effects["outcome_family"] == family]
        per_study_n = d.groupby("study_key")["n"].max()
        rows.append(
            {
                "Outcome family": FAMILY_LABELS[family],
                "Studies": d["study_key"].nunique(),
                "Comparisons": len(d),
                "With effect size": len(e),
                "Imputed dispersion": int(e["dispersion_imputed"].sum()),
                "Participants": int(per_study_n.sum()),
                "Speeds (m/s)": _speed_range(e),
            }
        )
        values["families"][family] = {
            "studies": d["study_key"].nunique(),
            "rows": len(d),
            "effects": len(e),
            "participants": int(per_study_n.sum()),
        }
    table = pd.DataFrame(rows)
    _common.write_table(table, "evidence_summary")
    studies = data.drop_duplicates("study_key")
    values.update(
        n_studies=data["study_key"].nunique(),
        n_groups=data["group_key"].nunique(),
        n_rows=len(data),
        n_effects=len(effects),
        n_imputed=int(effects["dispersion_imputed"].sum()),
        n_result_only=len(statements),
        n_not_independent=int((~studies["independent_report"].astype(bool)).sum()),
        n_unverified=int((~data["verified"].astype(bool)).sum()),
        default_r=evidence.DEFAULT_R,
        citation_keys=sorted(studies["citation_key"].dropna().astype(str).unique()),
        year_min=int(studies["year"].min()),
        year_max=int(studies["year"].max()),
    )
    log.info(
        "%d studies, %d comparisons, %d effect sizes", values["n_studies"], len(data), len(effects)
    )
    _common.write_values("evidence_summary", values)


if __name__ == "__main__":
    main()
