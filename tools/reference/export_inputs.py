"""Write the Python-side input tables for the R reference scripts.

Run from the repository root::

    .venv/bin/python tools/reference/export_inputs.py [--force]

Writes, under ``tests/data/reference/``:

``effects_snapshot.csv``
    The project's own effect-size table, ``claims.analysis_rows(evidence.effect_sizes())``
    (the rows the claims command uses), frozen so that the R references stay valid while
    the curated data change.
``synthetic_bayes.csv`` (+ ``synthetic_bayes.meta.json``)
    A well-identified synthetic three-level table (12 studies x 3 conditions) drawn from a
    fixed seed, for the Bayesian cross-check; the sidecar records the generating values.

Existing files are kept unless ``--force`` is given: the references in
``metafor_reference.json`` and ``brms_reference.json`` were computed from these exact
tables (their MD5 sums are stored there), so regenerating an input means rerunning both
R scripts too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "reference"
REL_OUT = Path("tests") / "data" / "reference"

SEED = 20261201
N_STUDIES = 12
N_CONDITIONS = 3
TRUE_MEAN = 0.20
TAU_STUDY = 0.10
TAU_CONDITION = 0.04
VI = 0.004


def effects_snapshot() -> pd.DataFrame:
    sys.path.insert(0, str(ROOT))
    from retrosim.evidence import tables as evidence
    from retrosim.meta import claims

    eff = claims.analysis_rows(evidence.effect_sizes())
    family = (
        eff["outcome_family"]
        .astype(str)
        .where(eff["outcome_family"] != "gait", "gait:" + eff["outcome"].astype(str))
    )
    out = pd.DataFrame(
        {
            "row_id": eff["row_id"].astype(str),
            "group_key": eff["group_key"].astype(str),
            "family": family,
        }
    )
    out["study"] = out["group_key"] + "|" + out["family"]
    out["condition"] = out["row_id"]
    out["yi"] = eff["yi"].astype(float)
    out["vi"] = eff["vi"].astype(float)
    out["sei"] = np.sqrt(out["vi"])
    out["mode"] = eff["mode"].astype(str)
    out["speed_m_s"] = eff["speed_m_s"].astype(float)
    if not out["row_id"].is_unique:
        raise SystemExit("row_id is not unique in the analysis rows")
    return out


def synthetic_bayes() -> tuple[pd.DataFrame, dict]:
    """yi = mean + u_study + w_condition + e, drawn in that order from one generator."""
    rng = np.random.default_rng(SEED)
    u = rng.normal(0.0, TAU_STUDY, size=N_STUDIES)
    w = rng.normal(0.0, TAU_CONDITION, size=(N_STUDIES, N_CONDITIONS))
    e = rng.normal(0.0, np.sqrt(VI), size=(N_STUDIES, N_CONDITIONS))
    yi = TRUE_MEAN + u[:, None] + w + e
    studies = [f"S{i + 1:02d}" for i in range(N_STUDIES)]
    rows = [
        {
            "study": s,
            "condition": f"{s}-c{j + 1}",
            "yi": float(yi[i, j]),
            "vi": VI,
            "sei": float(np.sqrt(VI)),
            "synthetic": True,
        }
        for i, s in enumerate(studies)
        for j in range(N_CONDITIONS)
    ]
    meta = {
        "generator": "numpy.random.default_rng(seed); draws in order: "
        "u_study ~ N(0, tau_study) [n_studies], w_condition ~ N(0, tau_condition) "
        "[n_studies x n_conditions], e ~ N(0, sqrt(vi)) [n_studies x n_conditions]; "
        "yi = true_mean + u + w + e",
        "seed": SEED,
        "numpy_version": np.__version__,
        "n_studies": N_STUDIES,
        "n_conditions_per_study": N_CONDITIONS,
        "true_mean": TRUE_MEAN,
        "tau_study": TAU_STUDY,
        "tau_condition": TAU_CONDITION,
        "vi": VI,
        "study_effects": [float(x) for x in u],
    }
    return pd.DataFrame(rows), meta


def _write(path: Path, writer, force: bool) -> None:
    rel = REL_OUT / path.name
    if path.exists() and not force:
        print(f"kept {rel} (exists; --force to rewrite)")
        return
    writer(path)
    print(f"wrote {rel}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="rewrite existing tables")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)

    # Floats are written with the shortest repr that round-trips (pandas default).
    _write(
        OUT / "effects_snapshot.csv",
        lambda p: effects_snapshot().to_csv(p, index=False, lineterminator="\n"),
        args.force,
    )
    syn, meta = synthetic_bayes()
    _write(
        OUT / "synthetic_bayes.csv",
        lambda p: syn.to_csv(p, index=False, lineterminator="\n"),
        args.force,
    )
    _write(
        OUT / "synthetic_bayes.meta.json",
        lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"),
        args.force,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
