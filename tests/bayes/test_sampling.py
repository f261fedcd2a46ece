"""The convergence gate: a good posterior passes, a deliberately starved one is caught."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from retrosim.bayes.sampling import sample
from retrosim.errors import ConvergenceError, InputError


@pytest.fixture(scope="module")
def normal_model():
    y = np.random.default_rng(7).normal(2.0, 1.0, 40)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 10)
        sigma = pm.HalfNormal("sigma", 5)
        pm.Normal("y", mu, sigma, observed=y)
    return model, y


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_sampler_recovers_closed_form_mean(normal_model, sampler):
    model, y = normal_model
    idata, diag = sample(model, draws=1000, tune=1000, chains=2, seed=11, sampler=sampler)
    assert diag.passed, str(diag)
    mu = idata["posterior"]["mu"].values
    # With a flat-ish prior the posterior mean is the sample mean, sd ~ s/sqrt(n).
    se = y.std(ddof=1) / np.sqrt(y.size)
    assert abs(mu.mean() - y.mean()) < 0.25 * se + 3 * mu.std() / np.sqrt(diag.min_ess_bulk)
    assert 0.8 * se < mu.std() < 1.25 * se


def test_unconverged_fit_is_caught(normal_model):
    model, _ = normal_model
    with pytest.raises(ConvergenceError, match="convergence gate") as exc:
        sample(model, draws=15, tune=3, chains=2, seed=1)
    assert not exc.value.diagnostics.passed
    idata, diag = sample(model, draws=15, tune=3, chains=2, seed=1, gate="off")
    assert not diag.passed and idata["posterior"].attrs["converged"] == 0


def test_sampling_requires_seed_and_known_sampler(normal_model):
    model, _ = normal_model
    with pytest.raises(InputError, match="sampler"):
        sample(model, seed=1, sampler="stan")
    with pytest.raises(InputError, match="seed"):
        sample(model, seed=None)
