"""Fitting the models to a lab's own trials.

* :mod:`retrosim.trials.schema` — the trial-table schema (columns, units, ranges) and its
  validation, with errors that name file, row and column.
* :mod:`retrosim.trials.fit` — :func:`~retrosim.trials.fit.fit_trials` and
  :class:`~retrosim.trials.fit.TrialFit`: a hierarchical model of backward-versus-forward
  effects per participant, with a frequentist cross-check.
* :mod:`retrosim.trials.report` — figures and NetCDF/CSV outputs of a fit.
* :mod:`retrosim.trials.claims` — the popular claims judged on the lab's own data.

Raw lab files (metabolic carts, force plates) become a trial table with :mod:`retrosim.ingest`.
"""
