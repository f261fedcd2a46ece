"""Pooling the published evidence and judging the popular claims.

* :mod:`retrosim.meta.frequentist` — random-effects meta-analysis (REML, DerSimonian-Laird,
  Paule-Mandel, multilevel REML, Hartung-Knapp), small-study tests; the cross-checks.
* :mod:`retrosim.meta.model` — the Bayesian hierarchical meta-regression (families of outcomes,
  study and condition effects, speed, mode, speed matching and grade moderators, direction-only
  results in the likelihood), its checks (SBC, posterior predictive, sensitivity, leave one
  study out).
* :mod:`retrosim.meta.claims` — the claim registry, the readings of each claim stated before
  the data, and the verdict rules.
* :mod:`retrosim.meta.verdicts` — :func:`~retrosim.meta.verdicts.check_claims`, the whole
  pipeline from the shipped evidence to one verdict per claim and reading.
"""
