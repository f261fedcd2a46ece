"""retrosim: backward versus forward running and walking — models and evidence.

Models (no inference imports): :mod:`retrosim.models.gait`, :mod:`retrosim.models.energetics`,
:mod:`retrosim.models.knee`, :mod:`retrosim.evidence.tables`. Inference on top of them:
:mod:`retrosim.bayes.sampling`, :mod:`retrosim.meta.model`, :mod:`retrosim.meta.claims`,
:mod:`retrosim.trials.fit`. The command line is :mod:`retrosim.cli`.
"""

from retrosim._version import __version__
from retrosim.errors import ConvergenceError, InputError, RetrosimError

__all__ = ["ConvergenceError", "InputError", "RetrosimError", "__version__"]

#: Public names loaded on first use, so that ``import retrosim`` stays light.
_LAZY = {"fit_trials": "retrosim.trials.fit"}
__all__ += list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retrosim' has no attribute {name!r}")
