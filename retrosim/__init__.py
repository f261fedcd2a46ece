"""retrosim: backward versus forward running and walking — models and evidence.

Packages, by layer (lower layers never import higher ones):

* :mod:`retrosim.models` — gait, energetics, knee loading and the composing
  :class:`~retrosim.models.chain.RetroChain` (plain functions; no inference).
* :mod:`retrosim.evidence` — the published comparisons, checked, and their effect sizes.
* :mod:`retrosim.bayes` — sampling with a convergence gate, model calibration, results objects.
* :mod:`retrosim.meta` — frequentist and Bayesian meta-analysis, the claim registry, verdicts.
* :mod:`retrosim.trials` — fitting the same models to a lab's own trials; :mod:`retrosim.ingest`
  reads raw lab files into trials.
* :mod:`retrosim.cli` — the ``retrosim`` command line; :mod:`retrosim.config` — settings.

The names below are loaded on first use, so ``import retrosim`` stays light.
"""

from retrosim._version import __version__
from retrosim.errors import ConvergenceError, InputError, RetrosimError

__all__ = ["ConvergenceError", "InputError", "RetrosimError", "__version__"]

#: Curated public names -> (module, attribute), imported on first use.
_LAZY = {
    "load_evidence": ("retrosim.evidence.tables", "load"),
    "effect_sizes": ("retrosim.evidence.tables", "effect_sizes"),
    "direction_statements": ("retrosim.evidence.tables", "direction_statements"),
    "check_claims": ("retrosim.meta.verdicts", "check_claims"),
    "meta_analysis": ("retrosim.meta.model", "fit"),
    "RetroChain": ("retrosim.models.chain", "RetroChain"),
    "fit_trials": ("retrosim.trials.fit", "fit_trials"),
    "read_trials": ("retrosim.trials.schema", "read_trials"),
    "ingest_folder": ("retrosim.ingest", "ingest_folder"),
    "example_path": ("retrosim.config", "example_path"),
}
__all__ += list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'retrosim' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
