"""retrosim.bayes.results: the Summary object and the PosteriorResults base.

The numbers are checked against :func:`arviz.summary` and NumPy computed here on known
draws; plotting against the given Axes and the unchanged matplotlib backend; NetCDF by a
round trip.
"""

from __future__ import annotations

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from retrosim.bayes import calibration as cal
from retrosim.bayes.results import PosteriorResults, Summary
from retrosim.bayes.sampling import diagnose


def _tree(seed=0, chains=4, draws=500, diverging=0):
    rng = np.random.default_rng(seed)
    post = xr.Dataset(
        {
            "mu": (
                ("chain", "draw", "family"),
                0.2 + 0.1 * rng.standard_normal((chains, draws, 2)),
            ),
            "tau": (("chain", "draw"), np.abs(rng.standard_normal((chains, draws)))),
        },
        coords={"family": ["energy", "knee"]},
    )
    div = np.zeros((chains, draws), bool)
    div.flat[:diverging] = True
    stats = xr.Dataset({"diverging": (("chain", "draw"), div)})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


class _Fit(PosteriorResults):
    _summary_title = "A test fit"
    var_names = ("mu", "tau")

    def __init__(self, idata):
        self.idata = idata
        self.diagnostics = diagnose(idata, self.var_names)


@pytest.fixture
def fit():
    return _Fit(_tree())


def test_summary_numbers_are_arviz_summary(fit):
    ref = az.summary(fit.idata, ci_kind="eti", ci_prob=0.95, round_to="none")
    tab = fit.to_dataframe()
    assert list(tab.index) == ["mu[energy]", "mu[knee]", "tau"]
    for col in ("mean", "sd", "eti95_lb", "eti95_ub", "r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
        np.testing.assert_allclose(tab[col], ref.loc[tab.index, col], rtol=1e-12)
    x = fit.idata["posterior"]["mu"].values[..., 1].ravel()
    assert tab.loc["mu[knee]", "mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert tab.loc["mu[knee]", "sd"] == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert tab.loc["mu[knee]", "median"] == pytest.approx(np.median(x), rel=1e-12)
    assert tab.loc["mu[knee]", "eti95_ub"] == pytest.approx(np.quantile(x, 0.975), rel=1e-12)


def test_summary_text_and_html_show_those_numbers(fit):
    ref = az.summary(fit.idata, ci_kind="eti", ci_prob=0.95, round_to="none")
    summ = fit.summary()
    assert isinstance(summ, Summary)
    text, page = summ.as_text(), summ.as_html()
    assert str(summ) == text and summ._repr_html_() == page
    assert text.splitlines()[0] == "A test fit"
    medians = fit.idata["posterior"].median(dim=("chain", "draw"))
    median = {"mu[energy]": medians["mu"].values[0], "mu[knee]": medians["mu"].values[1],
              "tau": medians["tau"].values}  # fmt: skip
    for label in ref.index:
        row = next(line for line in text.splitlines() if line.startswith(label + " "))
        r = ref.loc[label]
        want = [f"{v:.3f}" for v in (r["mean"], r["sd"], r["eti95_lb"], median[label],
                                     r["eti95_ub"], r["r_hat"])]  # fmt: skip
        want += [f"{r['ess_bulk']:.0f}", f"{r['ess_tail']:.0f}"]
        assert row.split() == [label, *want]
        assert f"{r['mean']:.3f}" in page and label in page
    assert "2.5%" in text and "97.5%" in text and "diagnostics: max R-hat" in text
    pd.testing.assert_frame_equal(summ.to_dataframe(), fit.to_dataframe()[summ.table.columns])


def test_html_is_escaped():
    summ = Summary(pd.DataFrame({"mean": [1.0]}, index=["a<b>"]), title="x & y")
    assert "a&lt;b&gt;" in summ.as_html() and "x &amp; y" in summ.as_html()
    assert "<b>" not in summ.as_html()


def test_diagnostics_as_data_are_arviz_values():
    tree = _tree(diverging=3)
    diag = diagnose(tree)
    tab = diag.to_dataframe()
    rhat = az.rhat(tree["posterior"].to_dataset())
    ess = az.ess(tree["posterior"].to_dataset(), method="tail")
    assert tab.loc["mu[knee]", "r_hat"] == pytest.approx(float(rhat["mu"].sel(family="knee")))
    assert tab.loc["tau", "ess_tail"] == pytest.approx(float(ess["tau"]))
    assert tab["rhat_ok"].all() and tab["ess_ok"].all()
    ds = diag.to_dataset()
    assert ds.attrs["n_divergences"] == 3 and ds.attrs["passed"] == 0  # divergences fail it
    assert float(ds["mu"].sel(diagnostic="ess_bulk", family="energy")) == pytest.approx(
        tab.loc["mu[energy]", "ess_bulk"]
    )
    assert "per_variable" not in diag.as_dict() and diag.as_dict()["passed"] is False


def test_plot_draws_on_the_given_axes_without_switching_backend(fit):
    backend = matplotlib.get_backend()
    ax = Figure().add_subplot()
    out = fit.plot(ax=ax)
    assert out is ax
    line = ax.lines[0]  # the medians (then the zero line)
    np.testing.assert_allclose(line.get_xdata(), fit.to_dataframe()["median"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mu[energy]", "mu[knee]", "tau"]
    assert matplotlib.get_backend() == backend


def test_plot_without_axes_makes_one_figure(fit):
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    before = set(plt.get_fignums())
    ax = fit.plot()
    new = set(plt.get_fignums()) - before
    assert len(new) == 1 and ax.figure.number in new
    plt.close(ax.figure)
    assert matplotlib.get_backend() == backend


def test_to_netcdf_round_trips_atomically(fit, tmp_path):
    path = fit.to_netcdf(tmp_path / "sub" / "fit.nc")
    back = xr.open_datatree(path, engine="h5netcdf")
    xr.testing.assert_equal(back["posterior"].to_dataset(), fit.idata["posterior"].to_dataset())
    assert back["sample_stats"]["diverging"].values.sum() == 0
    assert [p.name for p in path.parent.iterdir()] == ["fit.nc"]  # no temporary file left


def test_calibration_result_speaks_the_api(tmp_path):
    res = cal.fit(draws=500, chains=2, seed=7)
    ds = res.to_dataset()
    assert ds.sizes["sample"] == 1000 and set(cal.FITTED) <= set(ds.data_vars)
    xr.testing.assert_identical(ds, res.posterior)
    assert res.attrs["converged"] == 1
    # the chains ArviZ sees are the draws in order: chain 1 starts at draw 500
    post = res.idata["posterior"]
    assert post["tau_energy"].values[1, 0] == ds["tau_energy"].values[500]
    tab = res.to_dataframe()
    x = ds["dir_contact_time"].values
    assert tab.loc["dir_contact_time", "mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert tab.loc["dir_contact_time", "eti95_lb"] == pytest.approx(np.quantile(x, 0.025))
    text = res.summary().as_text()
    assert f"{x.mean():.3f}" in text and "exact posterior" in text and "r_hat" not in text
    back = xr.open_datatree(res.to_netcdf(tmp_path / "cal.nc"), engine="h5netcdf")
    np.testing.assert_array_equal(back["posterior"]["dir_contact_time"].values.ravel(), x)
    # the draws functions take the result or its Dataset alike
    a = cal.posterior_draws(20, 1, posterior=res)
    b = cal.posterior_draws(20, 1, posterior=ds)
    np.testing.assert_array_equal(a["dir_contact_time"], b["dir_contact_time"])


def test_calibration_fit_requires_a_seed():
    with pytest.raises(TypeError):
        cal.fit(draws=10, chains=1)  # seed is a required keyword, as for every fit
