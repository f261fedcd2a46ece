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
# # From raw lab files to the backward/forward verdict
#
# A lab does not have one summary row per trial: it has breath-by-breath exports from a
# metabolic cart, force recordings from an instrumented treadmill, and a protocol sheet
# saying which stretch of which file was which condition. This notebook starts there, on the
# **synthetic** lab folder shipped in `retrosim/data/examples/lab_raw/` (simulated by
# `retrosim.ingest.synthetic` from stated settings, with the truth stored beside it; not
# real people):
#
# 1. the folder and its protocol sheet,
# 2. a breath-by-breath trace and a force trace,
# 3. `retrosim ingest`: steady states, energy, foot contacts, impact measures, QC,
# 4. what a mistake in the files looks like,
# 5. the ingested measures against the simulated truth,
# 6. `retrosim fit` on the trial table it wrote: the direction effect on VO2, and on impact.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import retrosim
from retrosim.errors import InputError
from retrosim.ingest import cart, force, process_folder, protocol_schema_table, write_results
from retrosim.config import DATA_DIR, notebook_fast, results_dir
from retrosim.trials.fit import fit_trials

FAST = notebook_fast()  # the test suite runs a small version
DRAWS, TUNE, CHAINS = (300, 300, 2) if FAST else (1000, 1000, 4)
OUT = results_dir() / "lab_from_raw"
FOLDER = DATA_DIR / "examples" / "lab_raw"
print("retrosim", retrosim.__version__, "| fast mode" if FAST else "")

# %% [markdown]
# ## 1. The folder
# One protocol row per stage: participant, body mass, condition, the stage's start and end on
# the cart file's clock, and the files. `retrosim ingest --schema` prints the format.

# %%
protocol_schema_table().head(14)

# %%
sheet = pd.read_csv(FOLDER / "protocol.csv")
sheet.head(6)

# %% [markdown]
# ## 2. Raw signals
# Breath-by-breath VO2 of one participant (rest, then four running stages), and the first
# seconds of one stage's vertical force at 1000 Hz.

# %%
c = cart.read_cart(FOLDER / "cart" / "P01.csv")
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(c.time_s / 60, c.vo2_ml_min, ".", ms=2)
ax.set(xlabel="time [min]", ylabel="VO2 [mL/min]", title="P01, breath by breath")
plt.show()

# %%
row = sheet[sheet["force_file"].notna()].iloc[0]
f = force.read_force(FOLDER / row["force_file"], rate_hz=row["force_rate_hz"])
fig, ax = plt.subplots(figsize=(9, 2.5))
ax.plot(f.time_s[:2000], f.fz_n[:2000], lw=0.7)
ax.set(xlabel="time [s]", ylabel="vertical force [N]", title=row["stage"])
plt.show()

# %% [markdown]
# ## 3. Ingest
# For every stage: breath outliers removed (rolling median rule), the mean of the last 2 min
# with a drift check, gross energy by Péronnet & Massicotte (flagged if RER is outside the
# table), net energy minus the rest stage; the force is filtered, contacts found with a 30 N
# threshold, and per-step measures averaged. Nothing is written until everything passed.

# %%
res = process_folder(FOLDER)
written = write_results(res, OUT)
print(f"wrote {len(written)} files to {OUT}")
res.stages[["participant_id", "stage", "vo2_ml_min", "rer", "energy_w", "net_energy_w",
            "contact_time_s", "impact_peak_bw", "loading_rate_avg_bw_s", "flags"]].head(6)

# %%
res.trials.head()

# %%
print((OUT / "qc.md").read_text()[:1500])

# %% [markdown]
# ## 4. A mistake in the files
# Here the cart file is saved with VO2 in L/min but the column still says mL/min. The ingest
# stops with one message naming the file, the column and what was expected, and writes
# nothing.

# %%
import shutil
import tempfile

with tempfile.TemporaryDirectory() as tmp:
    broken = Path(tmp) / "lab"
    shutil.copytree(FOLDER, broken)
    df = pd.read_csv(broken / "cart" / "P02.csv")
    df["vo2_ml_min"] = df["vo2_ml_min"] / 1000
    df.to_csv(broken / "cart" / "P02.csv", index=False)
    try:
        process_folder(broken)
    except InputError as err:
        print(err)

# %% [markdown]
# ## 5. Against the truth
# The synthetic folder stores the simulated steady-state VO2 and the true mean of each force
# measure; the differences below are the ingest's errors on these data.

# %%
truth = json.loads((FOLDER / "truth.json").read_text())
t = {(s["participant_id"], s["stage"]): s for s in truth["stages"]}
rows = []
for r in res.stages.itertuples():
    tr = t[(r.participant_id, r.stage)]
    d = {"stage": f"{r.participant_id} {r.stage}", "vo2_error_pct": 100 * (r.vo2_ml_min /
         tr["vo2_ml_min"] - 1)}  # fmt: skip
    if tr.get("force"):
        ft = tr["force"]
        d["contact_time_error_ms"] = 1000 * (r.contact_time_s - ft["contact_time_s"])
        d["peak_error_pct"] = 100 * (r.grf_bw / ft["grf_bw"] - 1)
        d["avlr_error_pct"] = 100 * (r.loading_rate_avg_bw_s / ft["loading_rate_avg_bw_s"] - 1)
    rows.append(d)
errors = pd.DataFrame(rows)
errors.drop(columns="stage").abs().max()

# %% [markdown]
# ## 6. Fit
# The trial table goes straight into the hierarchical model (the simulator's population
# backward/forward VO2 ratio is in `truth.json`). The same call with
# `outcome="loading_rate_avg_bw_s"` fits the measure behind "less impact" claims; here we only
# look at the per-participant backward/forward ratios of the impact measures (backward
# landings in these data have no impact peak at all, so that one has no ratio).

# %%
trials = pd.read_csv(OUT / "trials.csv")
fit = fit_trials(trials, outcome="vo2_ml_kg_min", draws=DRAWS, tune=TUNE, chains=CHAINS,
                 seed=2026, gate="warn" if FAST else "raise")  # fmt: skip
print(fit.ratio_)
print("true ratio:", truth["population_backward_forward_vo2_ratio"])

# %%
cols = ["loading_rate_avg_bw_s", "loading_rate_inst_bw_s", "grf_bw", "impulse_bw_s_km"]
means = trials.groupby(["participant_id", "speed_m_s", "direction"])[cols].mean().unstack()
ratios = pd.DataFrame({c: means[(c, "backward")] / means[(c, "forward")] for c in cols})
ratios.describe().loc[["mean", "min", "max"]]
