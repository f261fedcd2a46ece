"""Your own lab trials: the trial table, the hierarchical fit, its report and the claims.

:mod:`~retrosim.trials.schema` (the long-format trial table, :func:`~retrosim.trials.schema.read_trials`,
:func:`~retrosim.trials.schema.validate_trials`), :mod:`~retrosim.trials.fit`
(:func:`~retrosim.trials.fit.fit_trials` -> :class:`~retrosim.trials.fit.TrialFit`),
:mod:`~retrosim.trials.report` (figures, NetCDF, the Markdown report) and
:mod:`~retrosim.trials.claims` (verdicts of the registered claims on one fit).
"""
