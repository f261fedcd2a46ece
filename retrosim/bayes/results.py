"""One results API for every fit: a printable :class:`Summary` and the :class:`PosteriorResults` base.

Every result object of retrosim (Bayesian meta-analysis, frequentist cross-checks, energetics
calibration, lab-trial fits) answers the same calls, in the style of statsmodels and ArviZ:

* ``summary()`` returns a :class:`Summary`: ``print(res.summary())`` shows the paper-like text
  table, Jupyter renders its HTML (``_repr_html_``), ``to_dataframe()`` gives the numbers;
* ``to_dataframe()`` the summary table as numbers (no rounding);
* ``to_netcdf(path)`` writes the posterior (atomically);
* ``plot(ax=None)`` draws the parameters' medians and intervals on ``ax`` (a new figure only
  when ``ax`` is None) and returns the Axes; it never switches the matplotlib backend;
* ``diagnostics`` the convergence gate's outcome with the per-parameter R-hat and bulk/tail
  ESS as data (:class:`retrosim.bayes.sampling.Diagnostics`: ``to_dataframe()``,
  ``to_dataset()``).

The posterior numbers come from :func:`arviz.summary` (mean, sd, equal-tailed interval, R-hat,
bulk and tail ESS, MCSE; Vehtari et al. 2021 [1]_) and its median, never re-computed here.

Writing a results class
-----------------------
Subclass :class:`PosteriorResults` and provide

``idata``
    An :class:`xarray.DataTree` with a ``posterior`` group (chain, draw, ...), optionally
    ``sample_stats`` (divergences) and ``observed_data`` (attribute or property).
``var_names``
    The parameters that ``summary``, ``to_dataframe``, ``plot`` and the fallback diagnostics
    use (class or instance attribute; ``None``: every posterior variable).
``_summary_title``
    First line of the summary.

and optionally ``diagnostics`` (a :class:`~retrosim.bayes.sampling.Diagnostics`; computed from
``idata`` with :func:`retrosim.bayes.sampling.diagnose` when absent), ``ci_prob`` (central
interval probability, 0.95), ``_summary_header()`` (list of lines under the title),
``_summary_notes()`` (lines under the table), ``_diagnostics_line()`` (the header's last line,
default ``"diagnostics: <gate outcome>"``), ``_summary_columns`` (the printed columns; ``"lo"``
and ``"hi"`` stand for the interval bounds) and ``_decorate_table(table)`` (add columns, e.g.
what each parameter means; added columns are printed after the standard ones).

References
----------
.. [1] A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner, "Rank-normalization,
   folding, and localization: an improved R-hat for assessing convergence of MCMC",
   Bayesian Analysis 16(2), 667-718, 2021. doi:10.1214/20-BA1221
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "PosteriorResults",
    "Summary",
    "interval_columns",
    "posterior_columns",
    "posterior_table",
]

#: Display format of a column in the text and HTML tables (others: 3 decimals).
FORMATS = {
    "r_hat": "{:.3f}",
    "ess_bulk": "{:.0f}",
    "ess_tail": "{:.0f}",
    "ess_mean": "{:.0f}",
    "n": "{:.0f}",
    "k": "{:.0f}",
    "df": "{:.0f}",
}


def _fmt(value, spec: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return "" if value is None else f"{value}"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer) and spec == "{:.3f}":
        return str(int(value))
    try:
        return spec.format(value)
    except (TypeError, ValueError):
        return str(value)


class Summary:
    """A printable summary table: text for ``print``, HTML for Jupyter, numbers for analysis.

    Parameters
    ----------
    table : pandas.DataFrame
        The numbers (index: parameter or row labels). Kept unrounded; only the display rounds.
    title : str
        First line.
    header : sequence of str, optional
        Lines between the title and the table (model, data, diagnostics).
    notes : sequence of str, optional
        Lines under the table.
    formats : dict, optional
        ``column -> format string`` for the display (default :data:`FORMATS`, else 3 decimals).
    labels : dict, optional
        ``column -> heading`` for the display (e.g. ``{"eti95_lb": "2.5%"}``).

    Examples
    --------
    >>> s = Summary(pd.DataFrame({"mean": [0.1]}, index=["alpha"]), title="Example")
    >>> print(s)
    Example
    ============================================================
    parameter     mean
    ------------------------------------------------------------
    alpha        0.100
    ============================================================
    """

    def __init__(self, table, *, title, header=(), notes=(), formats=None, labels=None):
        self.table = pd.DataFrame(table)
        self.title = str(title)
        self.header = [str(h) for h in header]
        self.notes = [str(n) for n in notes]
        self.formats = {**FORMATS, **(formats or {})}
        self.labels = dict(labels or {})

    def to_dataframe(self) -> pd.DataFrame:
        """The numbers of the table (a copy, unrounded)."""
        return self.table.copy()

    def _cells(self) -> pd.DataFrame:
        """The table as display strings, headings relabelled."""
        out = pd.DataFrame(index=[str(i) for i in self.table.index])
        for col in self.table.columns:
            spec = self.formats.get(col, "{:.3f}")
            out[self.labels.get(col, str(col))] = [_fmt(v, spec) for v in self.table[col]]
        out.index.name = self.table.index.name or "parameter"
        return out

    def as_text(self) -> str:
        """Fixed-width text table (what ``print`` shows)."""
        cells = self._cells()
        name = cells.index.name
        w0 = max([len(name), *(len(i) for i in cells.index)]) + 2
        widths = [max([len(c), *(len(v) for v in cells[c])]) + 2 for c in cells.columns]
        line = name.ljust(w0) + "".join(
            c.rjust(w) for c, w in zip(cells.columns, widths, strict=True)
        )
        rows = [
            i.ljust(w0) + "".join(str(v).rjust(w) for v, w in zip(r, widths, strict=True))
            for i, r in zip(cells.index, cells.itertuples(index=False, name=None), strict=True)
        ]
        width = max(len(line), 60)  # longer header lines may overrun the rules
        out = [self.title, "=" * width, *self.header]
        if self.header:
            out.append("-" * width)
        out += [line, "-" * width, *rows, "=" * width, *self.notes]
        return "\n".join(out)

    def as_html(self) -> str:
        """HTML of the title, header lines, table and notes (escaped)."""
        parts = [f"<p><strong>{html.escape(self.title)}</strong></p>"]
        if self.header:
            parts.append("<p>" + "<br>".join(html.escape(h) for h in self.header) + "</p>")
        parts.append(self._cells().to_html(escape=True, border=0))
        if self.notes:
            parts.append("<p>" + "<br>".join(html.escape(n) for n in self.notes) + "</p>")
        return '<div class="retrosim-summary">' + "".join(parts) + "</div>"

    def _repr_html_(self) -> str:
        return self.as_html()

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()


def interval_columns(ci_prob: float) -> tuple[str, str]:
    """Names :func:`arviz.summary` gives the bounds of the equal-tailed interval."""
    pct = f"{100 * ci_prob:g}".replace(".", "_")
    return f"eti{pct}_lb", f"eti{pct}_ub"


def posterior_columns(ci_prob: float = 0.95) -> tuple:
    """Columns of :func:`posterior_table`, in order."""
    lo, hi = interval_columns(ci_prob)
    return ("mean", "sd", "median", lo, hi, "r_hat", "ess_bulk", "ess_tail", "mcse_mean",
            "mcse_sd")  # fmt: skip


def posterior_table(idata, var_names=None, *, ci_prob=0.95) -> pd.DataFrame:
    """:func:`arviz.summary` of ``idata``'s posterior, unrounded, with the median added.

    Columns: ``mean``, ``sd``, ``median``, the equal-tailed ``ci_prob`` interval
    (:func:`interval_columns`), ``r_hat``, ``ess_bulk``, ``ess_tail``, ``mcse_mean``,
    ``mcse_sd``; one row per scalar element, labelled as ArviZ labels them (``alpha[energy]``).
    """
    import arviz as az

    kw = dict(var_names=list(var_names) if var_names is not None else None,
              ci_prob=ci_prob, ci_kind="eti", round_to="none")  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):  # stuck chains: see diagnose()
        tab = pd.DataFrame(az.summary(idata, kind="all", **kw))
        med = pd.DataFrame(az.summary(idata, kind="stats_median", **kw))["median"]
    tab = tab.join(med)[list(posterior_columns(ci_prob))]
    tab.index.name = "parameter"
    return tab


class PosteriorResults:
    """Base of every results object with a posterior (see the module docstring's contract).

    Subclasses provide ``idata``, ``var_names`` and ``_summary_title``; everything else has
    a default.
    """

    _summary_title = "Posterior summary"
    var_names: tuple | None = None
    #: Probability of the central (equal-tailed) interval of the summary and the plot.
    ci_prob = 0.95
    #: Columns the printed summary shows (``to_dataframe`` has them all).
    _summary_columns = ("mean", "sd", "lo", "median", "hi", "r_hat", "ess_bulk", "ess_tail")

    # -- hooks ---------------------------------------------------------------------
    def _summary_header(self) -> list[str]:
        return []

    def _summary_notes(self) -> list[str]:
        return []

    def _decorate_table(self, table: pd.DataFrame) -> pd.DataFrame:
        return table

    def _diagnostics_line(self) -> str:
        return f"diagnostics: {self._gate()}"

    def _present(self, var_names):
        names = self.var_names if var_names is None else var_names
        if names is None:
            return None
        post = self.idata["posterior"]
        return [n for n in names if n in post.data_vars]

    def _gate(self):
        diag = getattr(self, "diagnostics", None)
        if diag is None:
            from retrosim.bayes.sampling import diagnose

            diag = diagnose(self.idata, self._present(None))
        return diag

    # -- the API -------------------------------------------------------------------
    def to_dataframe(self, var_names=None) -> pd.DataFrame:
        """Posterior summary as numbers (:func:`posterior_table`, plus subclass columns)."""
        tab = posterior_table(self.idata, self._present(var_names), ci_prob=self.ci_prob)
        return self._decorate_table(tab)

    def summary(self, var_names=None) -> Summary:
        """The fit's :class:`Summary` (``print`` it, or display it in Jupyter)."""
        tab = self.to_dataframe(var_names)
        lo, hi = interval_columns(self.ci_prob)
        alias = {"lo": lo, "hi": hi}
        cols = [alias.get(c, c) for c in self._summary_columns]
        standard = posterior_columns(self.ci_prob)
        cols += [c for c in tab.columns if c not in standard]  # the subclass's own columns
        tail = (1.0 - self.ci_prob) / 2.0
        labels = {lo: f"{100 * tail:g}%", "median": "50%", hi: f"{100 * (1 - tail):g}%"}
        header = [*self._summary_header(), self._diagnostics_line()]
        return Summary(tab[[c for c in cols if c in tab.columns]], title=self._summary_title,
                       header=header, notes=self._summary_notes(), labels=labels)  # fmt: skip

    def to_netcdf(self, path) -> Path:
        """Write ``idata`` (every group) to NetCDF at ``path``, atomically; return the path."""
        from retrosim._io import NETCDF_ENGINE, atomic_path

        with atomic_path(path, suffix=".nc") as tmp:
            self.idata.to_netcdf(tmp, engine=NETCDF_ENGINE)
        return Path(path)

    def plot(self, ax=None, var_names=None):
        """Median and central ``ci_prob`` interval of every parameter (a forest plot).

        Draws on ``ax``; only when ``ax`` is None a new figure is made (``pyplot.subplots``).
        The matplotlib backend is never changed. Returns the Axes.
        """
        tab = self.to_dataframe(var_names)
        lo, hi = interval_columns(self.ci_prob)
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.0, 1.0 + 0.28 * len(tab)))
        y = np.arange(len(tab))[::-1]
        med = tab["median"].to_numpy(float)
        err = np.vstack([med - tab[lo].to_numpy(float), tab[hi].to_numpy(float) - med])
        ax.errorbar(med, y, xerr=err, fmt="o", color="k", ms=3, lw=1, capsize=0)
        ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
        ax.set_yticks(y)
        ax.set_yticklabels([str(i) for i in tab.index])
        ax.set_xlabel(f"posterior median and {100 * self.ci_prob:g} % interval")
        ax.set_title(self._summary_title, fontsize="medium")
        return ax
