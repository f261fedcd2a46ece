"""retrosim: backward versus forward running and walking — models and evidence.

Models (no inference imports): :mod:`retrosim.gait`, :mod:`retrosim.energetics`,
:mod:`retrosim.knee`, :mod:`retrosim.evidence`. Inference on top of them:
:mod:`retrosim.sampling`, :mod:`retrosim.inference`, :mod:`retrosim.claims`,
:mod:`retrosim.trials`. The command line is :mod:`retrosim.cli`.
"""

from ._version import __version__
from .errors import ConvergenceError, InputError, RetrosimError

__all__ = ["ConvergenceError", "InputError", "RetrosimError", "__version__"]
