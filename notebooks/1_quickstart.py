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
# # Quickstart: simulate backward and forward running over a grid
#
# `retrosim.models.chain.RetroChain` composes the gait, energetics and knee models and evaluates them
# over speed × body mass × direction × mode × grade × parameter draw. The result is an
# `xarray.Dataset` with named dimensions and units on every variable.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import retrosim
from retrosim.bayes import calibration
from retrosim.models.chain import RetroChain

FAST = os.environ.get("RETROSIM_NOTEBOOK_FAST") == "1"  # the test suite runs a small version
N_DRAWS = 50 if FAST else 500
# Calibrated draws take the direction effects from their posterior given the published
# evidence (exact, under a second); the literature priors alone are wider.
CALIBRATED = not FAST
print("retrosim", retrosim.__version__)

# %%
# A fitted posterior is passed explicitly: the models never fit anything themselves.
posterior = calibration.shared_posterior() if CALIBRATED else None
chain = RetroChain(posterior=posterior)
ds = chain.run(
    speed_m_s=np.arange(2.0, 4.51, 0.25),
    mass_kg=[60.0, 80.0],
    direction=("forward", "backward"),
    mode=("run",),
    n_draws=N_DRAWS,
    seed=1,
)
ds

# %% [markdown]
# Every variable carries its units and a long name. Variables lack the dimensions they do not
# depend on: net energy per kilogram has no `mass` dimension, for example.

# %%
for name in ("gross_kcal_min", "net_kcal_km", "pfj_force_bw", "pfj_force_per_km_bw"):
    print(f"{name:22s} {ds[name].attrs['units']:10s} {ds[name].dims}")

# %% [markdown]
# ## Energy per minute and per kilometre
# Median and 95 % band over the parameter draws, for the force-time (Kram & Taylor) model.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
kcal = ds[["gross_kcal_min", "net_kcal_km"]].sel(model="kram_taylor", mode="run", grade=0.0)
for ax, var in zip(axes, ["gross_kcal_min", "net_kcal_km"]):
    for direction, color in (("forward", "C0"), ("backward", "C1")):
        da = kcal[var].sel(direction=direction, mass=80.0)
        lo, mid, hi = (da.quantile(q, "draw") for q in (0.025, 0.5, 0.975))
        ax.fill_between(ds.speed, lo, hi, color=color, alpha=0.2)
        ax.plot(ds.speed, mid, color=color, label=direction)
    ax.set_xlabel("speed (m/s)")
    ax.set_ylabel(f"{var} [{ds[var].attrs['units']}]")
axes[0].legend()
fig.tight_layout()

# %% [markdown]
# ## Backward versus forward, per draw
# Ratios are taken draw by draw, so their uncertainty is that of the direction effect, not of
# the absolute energy.

# %%
rate = ds["net_rate_w_kg"].sel(model="kram_taylor", mode="run", grade=0.0)
ratio = rate.sel(direction="backward") / rate.sel(direction="forward")
summary = (100 * (ratio.quantile([0.025, 0.5, 0.975], "draw") - 1)).to_pandas().T
summary.columns = ["2.5 %", "median", "97.5 %"]
summary.round(1)

# %% [markdown]
# ## Knee: per contact versus per kilometre
# Backward running takes more, shorter steps, so a lower peak force per contact need not mean
# less load per kilometre.

# %%
knee = {}
for var in ("pfj_force_bw", "pfj_force_per_km_bw"):
    da = ds[var].sel(mode="run", grade=0.0, mass=80.0)
    r = da.sel(direction="backward") / da.sel(direction="forward")
    knee[var] = (100 * (r.median("draw") - 1)).to_pandas()
import pandas as pd

pd.DataFrame(knee).round(1)

# %% [markdown]
# The same grid from the command line:
#
# ```bash
# retrosim simulate --speed 2:4.5:0.25 --mass 60:80:20 --out grid.nc
# ```
