"""Physical models of backward and forward locomotion (plain functions, no inference).

* :mod:`retrosim.models.gait` — step frequency, contact time and vertical ground reaction
  force from speed (published regressions and the spring-mass model).
* :mod:`retrosim.models.energetics` — metabolic power and cost of transport (W/kg, J/kg/m,
  kcal/min, kcal/km), forward models by name and backward-versus-forward direction effects.
* :mod:`retrosim.models.knee` — knee extensor moment, patellofemoral joint force and stress
  per contact and per km.
* :mod:`retrosim.models.chain` — :class:`~retrosim.models.chain.RetroChain`, which composes
  the three over grids of speed, body mass, direction, mode and grade into a labelled
  :class:`xarray.Dataset`.

Nothing here imports PyMC, the Bayesian layers or the command line; calibrated parameters
come in as arguments (see :mod:`retrosim.bayes.calibration`).

:func:`threads` and :func:`set_threads` control the threads of the element-wise grid kernels
(default :func:`retrosim.config.threads`, serial).
"""

from retrosim.models._kernels import set_threads, threads

__all__ = ["set_threads", "threads"]
