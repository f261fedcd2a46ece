"""retrosim: backward versus forward running and walking — models and evidence.

Models (no inference imports): :mod:`retrosim.gait`, :mod:`retrosim.energetics`,
:mod:`retrosim.knee`, :mod:`retrosim.evidence`. Inference on top of them:
:mod:`retrosim.sampling`, :mod:`retrosim.inference`, :mod:`retrosim.claims`,
:mod:`retrosim.trials`. The command line is :mod:`retrosim.cli`.
"""

from ._version import __version__
from .errors import ConvergenceError, InputError, RetrosimError

__all__ = ["ConvergenceError", "InputError", "RetrosimError", "__version__"]

#: Public names loaded on first use, so that ``import retrosim`` stays light.
_LAZY = {"fit_trials": "retrosim.trials"}
__all__ += list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retrosim' has no attribute {name!r}")
