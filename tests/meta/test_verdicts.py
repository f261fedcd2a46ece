"""The public claims pipeline's result object (retrosim.meta.verdicts.ClaimsCheck)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

import retrosim
from retrosim.errors import InputError
from retrosim.meta.verdicts import ClaimsCheck, check_claims


class _Diagnostics:
    def __str__(self):
        return "max R-hat 1.001 (stand-in)"


class _Result:
    converged = True
    diagnostics = _Diagnostics()


def _check(reliable=(True, False)):
    verdicts = pd.DataFrame(
        {
            "claim": ["energy_20_30", "knee_30"],
            "reading": ["running, per minute, same speed", "running, per step, same speed"],
            "claimed": ["+15 to +35 %", "-35 to -25 %"],
            "speed_ref_m_s": [3.0, 3.0],
            "median_pct": [5.4, -21.6],
            "ci_low_pct": [-22.0, -46.0],
            "ci_high_pct": [50.2, 18.0],
            "pred_low_pct": [-29.0, -60.0],
            "pred_high_pct": [73.0, 70.0],
            "p_direction": [0.63, 0.88],
            "p_in_range": [0.18, 0.2],
            "n_studies": [3, 2],
            "verdict": ["inconclusive", "plausible"],
            "reliable": list(reliable),
        }
    )
    return ClaimsCheck(_Result(), verdicts, pd.DataFrame(), {}, pd.DataFrame(), seed=7)


def test_summary_reads_like_the_verdict_table():
    text = _check().summary().as_text()
    assert "energy_20_30" in text and "+5" in text and "-22" in text and "+50" in text
    assert "UNRELIABLE (plausible)" in text  # the unreliable row says so
    assert "max R-hat 1.001 (stand-in)" in text and "seed 7" in text
    html = _check()._repr_html_()
    assert "<table" in html and "energy_20_30" in html
    frame = _check().summary().to_dataframe()
    assert frame.loc["knee_30", "median_pct"] == pytest.approx(-21.6)  # unrounded numbers


def test_plot_draws_on_given_axes_without_switching_backend():
    from matplotlib.figure import Figure

    before = matplotlib.get_backend()
    ax = Figure().subplots()
    assert _check().plot(ax=ax) is ax
    assert len(ax.lines) >= 2  # medians and the zero line
    np.testing.assert_allclose(sorted(ax.lines[0].get_xdata()), [-21.6, 5.4])
    assert matplotlib.get_backend() == before


def test_bad_sampler_settings_are_input_errors():
    with pytest.raises(InputError, match="positive integer"):
        check_claims(draws=0)


def test_top_level_name_is_the_pipeline():
    assert retrosim.check_claims is check_claims
