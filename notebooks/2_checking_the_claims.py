# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Checking the claims: from published evidence to verdicts
#
# 1. load the curated dataset of published backward-versus-forward comparisons,
# 2. turn each comparison into a log response ratio with its sampling variance,
# 3. pool them with the Bayesian random-effects meta-regression (and frequentist cross-checks),
# 4. give each popular claim, under each reading, a verdict from documented thresholds.

# %%
import os

import numpy as np
import pandas as pd

from retrosim.meta import claims

from retrosim.evidence import tables as evidence

from retrosim.meta import model as inference

FAST = os.environ.get("RETROSIM_NOTEBOOK_FAST") == "1"  # the test suite runs a small version
DRAWS, TUNE, CHAINS = (300, 300, 2) if FAST else (1000, 1000, 4)

# %% [markdown]
# ## 1. The evidence
# Every row carries its source (citation key, DOI or PMID, where in the paper the number was read).

# %%
data = evidence.load()
print(data["study_key"].nunique(), "studies,", len(data), "comparisons")
data.groupby("outcome_family")["study_key"].nunique().rename("studies").to_frame()

# %% [markdown]
# ## 2. Effect sizes
# `yi = ln(backward / forward)`; paired designs need the forward–backward correlation `r`,
# which no study reports: the default is documented in `help(evidence)` and can be varied.

# %%
effects = claims.analysis_rows(evidence.effect_sizes())
cols = ["study_key", "outcome", "mode", "speed_m_s", "speed_matching", "yi", "vi", "dispersion_imputed"]
effects[cols].assign(pct=100 * (np.exp(effects["yi"]) - 1)).round(3)

# %% [markdown]
# How much does the assumed correlation matter for one study's variance?

# %%
for r in (0.2, 0.5, 0.8):
    e = evidence.effect_sizes(r=r)
    print(f"r = {r}: variance of the first paired row = {e['vi'].iloc[0]:.5f}")

# %% [markdown]
# ## 3. Pooling
# Frequentist cross-check first (REML, as in metafor; DerSimonian–Laird; Paule–Mandel), then the
# Bayesian meta-regression, which also models speed, mode and speed matching and gives the
# correlation a prior.

# %%
energy = effects[effects["outcome_family"] == "energy"]
for method in ("REML", "DL", "PM"):
    res = inference.frequentist(energy["yi"].to_numpy(), energy["vi"].to_numpy(), method=method)
    print(f"{method:5s} pooled energy effect: {100 * (np.exp(res.estimate) - 1):+.1f} %")

# %%
fit = inference.fit(effects, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=11, gate="warn")
fit.summary()  # printable (print(fit.summary())); numbers: fit.to_dataframe()

# %% [markdown]
# ## 4. Verdicts
# Thresholds (from `help(claims)`): *supported* if P(effect in the claimed range) ≥ 0.5 and the
# direction is ≥ 95 % certain; *plausible* if P(in range) ≥ 0.25; *contradicted* if below 0.05;
# otherwise *inconclusive* when the 95 % interval also holds clearly different effects (the
# opposite direction, or far beyond the claim), else *not supported*; *not testable* when no
# study measured that reading. Each reading is read at the registry's reference speed (a typical
# jogging or walking speed from a cited source, `claims.REFERENCE_SPEEDS`). A fit that fails the
# convergence gate marks its verdicts unreliable (expected for the short chains of fast mode).

# %%
verdicts = claims.evaluate(fit, statements=evidence.direction_statements())
verdicts[["claim", "reading", "claimed", "speed_ref_m_s", "median_pct", "ci_low_pct",
          "ci_high_pct", "p_in_range", "n_studies", "verdict", "reliable"]].round(2)

# %% [markdown]
# The command line does the same with more draws and writes `results/claims.nc` and
# `results/claims.csv`:
#
# ```bash
# retrosim claims
# ```

# %% [markdown]
# ## 5. Muscles, training and the learning phase (direction-only evidence)
# EMG and training studies report directions and significance, not means. `retrosim.meta.votes`
# turns each statement into the region of its t statistic and pools a *standardised* effect
# (backward minus forward, or training minus control, in between-person SD units) per muscle and
# per training outcome class. Every registry claim cites the article file and sentence that makes
# it (`claims.article_sources`). The fast mode of the test suite only lists the rows and the
# claims without data; a full run fits both models (about a minute each).

# %%
from retrosim.meta import votes

emg_design, training_design = votes.emg_design(), votes.training_design()
print(f"EMG: {emg_design.n_rows} usable rows, cells {emg_design.cells}")
print(f"training: {training_design.n_rows} usable rows, cells {training_design.cells}")
if FAST:
    vote_verdicts = votes.claim_verdicts(None, None)
else:
    emg_fit = votes.fit(emg_design, seed=12, draws=DRAWS, tune=TUNE, chains=CHAINS)
    training_fit = votes.fit(training_design, seed=13, draws=DRAWS, tune=TUNE, chains=CHAINS)
    print(emg_fit.diagnostics, training_fit.diagnostics, sep="\n")
    vote_verdicts = votes.claim_verdicts(emg_fit, training_fit)
vote_verdicts[["claim", "reading_key", "target", "delta_median", "p_direction", "n_studies",
               "verdict", "verdict_basis"]].round(2)

# %%
claims.article_sources("muscle_focus_c1")[["article_file", "quote"]]
