"""Bayesian machinery shared by every fit.

* :mod:`retrosim.bayes.sampling` — compiling and sampling PyMC models (nutpie, PyMC NUTS as
  fallback) and the convergence gate (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences).
* :mod:`retrosim.bayes.results` — the one results API: :class:`~retrosim.bayes.results.Summary`
  and the :class:`~retrosim.bayes.results.PosteriorResults` base.
* :mod:`retrosim.bayes.calibration` — calibration of the models' direction effects against the
  published ratios, with hold-outs.
"""
