"""Shared test fixtures."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def finite_difference_gradient():
    """Central finite differences of ``logp_grad(x)[0]`` along every coordinate of ``x``."""

    def gradient(logp_grad, x, h=1e-6):
        return np.array(
            [(logp_grad(x + h * e)[0] - logp_grad(x - h * e)[0]) / (2 * h) for e in np.eye(x.size)]
        )

    return gradient
