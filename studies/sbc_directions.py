"""Simulation-based calibration of the meta-analysis model with direction-only studies.

The SBC design of ``studies/sbc_meta.py`` (10 synthetic studies x 2 speeds reporting numbers)
plus 10 synthetic studies x 2 speeds that report only a direction and significance class
(``retrosim.meta.model.sbc_design(directions=True, graded=True, underwater=True)``: two numeric
studies at a 5 % grade, half of the direction studies at 5 % and 10 %, as the claims' evidence has
uphill rows, and two direction studies underwater, as Masumoto 2007 and 2009 are; ``b_grade`` and
``b_underwater`` are ranked too). Each replicate draws every parameter and
every study's ln ratio from the prior, turns the direction studies' ln ratios into the class a
two-sided paired t test at 5 % reports (``retrosim.meta.model.censor_direction_rows``), fits the
model (the latent ln ratios sampled inside their classes; nutpie with low-rank mass-matrix
adaptation) and ranks the true value among the thinned draws (Talts et al. 2018,
arXiv:1804.06788). The data are synthetic, generated from the stated priors.

Writes ``results/sbc_directions/ranks.csv``, ``uniformity.csv``, ``rank_histograms.png`` and
``results/values/sbc_directions.json``.

Usage: ``python studies/sbc_directions.py [--n 200] [--seed 5000] [--draws 400] [--tune 300]
[--thin 4]`` (the defaults: 200 replicates, about 3.4 s each on one core; ``make paper`` runs the
lighter ``ARGS``).
"""

from __future__ import annotations

import argparse
import functools
import sys

import _common
import numpy as np

INPUTS = ["retrosim.meta.model", "retrosim.evidence.directions", "studies/sbc_meta.py"]
OUTPUTS = [
    "results/sbc_directions/ranks.csv",
    "results/sbc_directions/uniformity.csv",
    "results/sbc_directions/rank_histograms.png",
    "results/values/sbc_directions.json",
]
TIMEOUT_S = 3600
#: The paper's run: 200 replicates of 2 chains x 200 draws (ranks of 200 thinned draws), about
#: 4 s each on one core.
ARGS = ["--n", "200", "--draws", "200", "--thin", "2"]

N_DEFAULT, SEED_DEFAULT = 200, 5000
DRAWS, TUNE, THIN = 400, 300, 4


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=N_DEFAULT, help="number of simulated datasets")
    ap.add_argument(
        "--seed", type=int, default=SEED_DEFAULT, help="first seed (replicate i: seed + i)"
    )
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--tune", type=int, default=TUNE)
    ap.add_argument("--thin", type=int, default=THIN, help="keep every THIN-th draw for the ranks")
    ap.add_argument(
        "--level-only",
        action="store_true",
        help="the design without uphill rows (the claims' analysis before graded rows entered)",
    )
    ap.add_argument(
        "--land-only",
        action="store_true",
        help="the design without underwater rows (the claims' analysis before they entered)",
    )
    args = ap.parse_args(argv)
    log = _common.setup("sbc_directions")
    import pandas as pd
    from sbc_meta import write_outputs

    from retrosim.meta.model import run_sbc_replicate

    out = _common.RESULTS / "sbc_directions"
    out.mkdir(parents=True, exist_ok=True)
    seeds = [args.seed + i for i in range(args.n)]
    replicate = functools.partial(
        run_sbc_replicate,
        draws=args.draws,
        tune=args.tune,
        thin=args.thin,
        directions=True,
        graded=not args.level_only,
        underwater=not args.land_only,
    )
    rows = [replicate(s) for s in _common.progress(seeds, len(seeds), "SBC replicates")]
    ranks = pd.DataFrame(rows)
    write_outputs(
        ranks,
        out,
        "sbc_directions",
        args,
        log,
        title="SBC with direction-only studies",
        extra={
            "alpha_pct": 5,
            "band_pct": 99,
            "tune": args.tune,
            "graded": not args.level_only,
            "underwater": not args.land_only,
            "median_share_significant": float(
                np.median(ranks["n_direction_significant"] / ranks["n_direction_rows"])
            ),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
